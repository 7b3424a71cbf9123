# The lake bucket: tables (lake/), raw input (raw/) and the binaries the VMs
# run (releases/). It outlives every cluster: prevent_destroy makes even a
# plain `terraform destroy` refuse, and deploy/down.sh only destroys module.cluster.

resource "google_storage_bucket" "lake" {
  #checkov:skip=CKV_GCP_62:Access logs would go to a second bucket for a single-tenant analytics lake; Cloud Audit Logs (data access) can be switched on in the project if needed.
  #checkov:skip=CKV_GCP_78:Versioning off on purpose: every stage run replaces whole tables, so versions would keep every past table; the soft delete policy below already keeps deleted and overwritten objects recoverable for a week.
  name          = var.bucket_name
  location      = var.location
  storage_class = "STANDARD"
  labels        = var.labels

  # IAM only (no object ACLs), and never public, whatever an object's ACL or a
  # later IAM binding says.
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = false
  }

  # Deleted and overwritten objects stay restorable for soft_delete_days
  # (an accidental `gcloud storage rm -r`, a bad run): the recovery that
  # versioning would give, bounded in time and so in cost.
  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  # A run writes its tables under lake/_staging/<run>/ and removes them after
  # the commit; only runs that died leave files there. A week is far longer
  # than any run, and any interrupted commit is completed by the next stage
  # run before that (its journal under lake/_commits/ is never deleted here).
  # There is no rule for lake/checkpoints/: stage 04 prunes its own batches,
  # and a lifecycle rule must not remove the state a stream resumes from.
  lifecycle_rule {
    condition {
      age            = var.staging_retention_days
      matches_prefix = ["lake/_staging/"]
    }
    action {
      type = "Delete"
    }
  }

  # Binaries (tens of MB per version; deploy/up.sh uploads a new version
  # whenever they change). A running cluster keeps its copy on disk; a VM
  # created later (a new executor) needs the object, so this is kept long
  # past an idle-stopped cluster's life, and up.sh re-uploads on every run.
  lifecycle_rule {
    condition {
      age            = var.release_retention_days
      matches_prefix = ["releases/"]
    }
    action {
      type = "Delete"
    }
  }

  # Parts of uploads that were never completed (a killed writer).
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}
