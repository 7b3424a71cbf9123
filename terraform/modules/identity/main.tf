# Who the cluster's VMs are and what they may do, long-lived like the bucket:
# deploy/down.sh destroys only module.cluster, so the service accounts, the
# custom roles and the grants survive it, and the next deploy/up.sh finds them
# in place. (A deleted custom role's id stays blocked for about 37 days: with
# the roles in module.cluster, an up.sh 8-37 days after a down.sh failed with
# "Error creating the custom project role".)
#
# Two accounts, least privilege each:
#   scheduler  runs the scheduler, the funnelpulse client (Kafka stages) and the
#              idle watchdog: the lake, the releases, its logs, and resizing
#              this cluster's executor group (conditioned on its name).
#   executor   runs the executors: the lake, the releases, its logs; nothing
#              else (it cannot resize the group).
# Neither may write releases/: a VM that could would choose the binary the
# next VM runs. Every binary's sha256 also travels in the VMs' metadata.
# No keys anywhere: the VMs authenticate as their attached account through
# the metadata server (CKV_FP_3 refuses google_service_account_key).

locals {
  executor_group = "${var.name_prefix}-executors"

  members = {
    scheduler = "serviceAccount:${google_service_account.scheduler.email}"
    executor  = "serviceAccount:${google_service_account.executor.email}"
  }

  # Object names in IAM conditions on Cloud Storage:
  # projects/_/buckets/<bucket>/objects/<object name>.
  objects = "projects/_/buckets/${var.bucket_name}/objects/"
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "FunnelPulse scheduler VM (${var.name_prefix})"
  description  = "Runs the FunnelPulse scheduler, client and idle watchdog: lake objects, releases (read), logs, resizing its executor group."
}

resource "google_service_account" "executor" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-executor"
  display_name = "FunnelPulse executor VMs (${var.name_prefix})"
  description  = "Runs the FunnelPulse executors: lake objects, releases (read), logs."
}

# ---- the lake bucket: bucket-level grants with IAM conditions ----
# (The bucket uses uniform bucket-level access, which conditions require.)

# Read, write, delete under the writable prefixes (lake/: tables, _staging,
# _commits, _runs, checkpoints, stream input; objectAdmin rather than
# objectUser because a commit renames, i.e. copies and deletes). Listing is a
# permission on the bucket, not on an object, so the condition also admits the
# bucket itself: that lets the VMs list object names anywhere in the bucket,
# and nothing else there (every read or write is on an object, and checked
# against its name).
resource "google_storage_bucket_iam_member" "lake_write" {
  for_each = local.members

  bucket = var.bucket_name
  role   = "roles/storage.objectAdmin"
  member = each.value

  condition {
    title       = "lake-prefixes"
    description = "List the bucket; read and write objects under ${join(", ", var.writable_prefixes)} only."
    expression = join(" || ", concat(
      ["resource.type == \"storage.googleapis.com/Bucket\""],
      [for prefix in var.writable_prefixes : "resource.name.startsWith(\"${local.objects}${prefix}\")"],
    ))
  }
}

# Read only: the binaries (releases/) and the raw input (raw/, uploaded from
# the laptop by deploy/up.sh).
resource "google_storage_bucket_iam_member" "read_only" {
  for_each = local.members

  bucket = var.bucket_name
  role   = "roles/storage.objectViewer"
  member = each.value

  condition {
    title       = "read-only-prefixes"
    description = "Read objects under ${join(", ", var.read_only_prefixes)}."
    expression  = join(" || ", [for prefix in var.read_only_prefixes : "resource.name.startsWith(\"${local.objects}${prefix}\")"])
  }
}

resource "google_project_iam_member" "log_writer" {
  for_each = local.members

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = each.value
}

# ---- the idle watchdog (scheduler only) ----
# deploy/gce/watchdog.sh runs `gcloud compute instance-groups managed resize
# <group> --size 0` and then powers its own VM off from inside the guest
# (no compute.instances.stop needed). The narrowest grant for that:
# - no predefined role fits (roles/compute.instanceAdmin.v1 could create,
#   delete and reconfigure every VM), so a custom role with the permission
#   resize uses (update) and the one gcloud reads the group with (get);
# - bound with a condition on the group's resource name. In IAM conditions a
#   Compute Engine resource is named projects/<project>/zones/<zone>/
#   instanceGroupManagers/<name> (the API's relative name); the condition
#   matches the part after the project, so it holds whether IAM spells the
#   project by id or by number, and the binding itself is on this project only;
# - compute.zoneOperations.get separately and unconditioned: gcloud waits for
#   the resize operation, whose name is random. Reading an operation's status
#   changes nothing.
# The roles always exist (changing idle_minutes never deletes one, so never
# blocks its id); only the bindings depend on the watchdog being on.
resource "google_project_iam_custom_role" "watchdog" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_idle_watchdog"
  title       = "FunnelPulse idle watchdog (${var.name_prefix})"
  description = "Resize the FunnelPulse executor group (bound with a condition on its name)."
  permissions = [
    "compute.instanceGroupManagers.get",
    "compute.instanceGroupManagers.update",
  ]
}

resource "google_project_iam_custom_role" "watchdog_operations" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_idle_watchdog_ops"
  title       = "FunnelPulse idle watchdog: operation status (${var.name_prefix})"
  description = "Read the status of zonal operations (gcloud waits for the resize)."
  permissions = ["compute.zoneOperations.get"]
}

resource "google_project_iam_member" "watchdog_resize" {
  count   = var.watchdog ? 1 : 0
  project = var.project_id
  role    = google_project_iam_custom_role.watchdog.id
  member  = local.members.scheduler

  condition {
    title       = "only-${local.executor_group}"
    description = "Only the FunnelPulse executor group ${local.executor_group} in ${var.zone}."
    expression  = "resource.name.endsWith(\"/zones/${var.zone}/instanceGroupManagers/${local.executor_group}\")"
  }
}

resource "google_project_iam_member" "watchdog_operations" {
  count   = var.watchdog ? 1 : 0
  project = var.project_id
  role    = google_project_iam_custom_role.watchdog_operations.id
  member  = local.members.scheduler
}
