# One service account for every VM of the cluster, with no project-wide data
# access: objects in the lake bucket, its own logs and metrics, and (for the
# idle watchdog) resizing this cluster's executor group.

resource "google_service_account" "vm" {
  account_id   = "${var.name_prefix}-vm"
  display_name = "FunnelPulse cluster VMs (${var.name_prefix})"
  description  = "Runs the FunnelPulse scheduler and executors: lake bucket objects, logs, metrics."
}

locals {
  vm_member = "serviceAccount:${google_service_account.vm.email}"
}

# Bucket-level, not project-level: the VMs can read and write objects in the
# lake bucket and in no other bucket of the project. objectAdmin rather than
# objectUser/creator+viewer because a commit renames (copy + delete) and the
# stages replace tables (delete).
resource "google_storage_bucket_iam_member" "lake_objects" {
  bucket = var.bucket_name
  role   = "roles/storage.objectAdmin"
  member = local.vm_member
}

resource "google_project_iam_member" "log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.vm_member
}

resource "google_project_iam_member" "metric_writer" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = local.vm_member
}

# The idle watchdog (deploy/gce/watchdog.sh, on the scheduler) runs
# `gcloud compute instance-groups managed resize <group> --size 0` and then
# powers its own VM off from inside the guest. The narrowest grant for that:
# - no predefined role fits (roles/compute.instanceAdmin.v1 could create,
#   delete and reconfigure every VM in the project), so a custom role with the
#   two permissions resize uses (update) and gcloud reads (get);
# - bound with an IAM condition on this cluster's group's resource name, so
#   the VMs cannot resize or read any other instance group;
# - no compute.instances.stop: a guest-initiated poweroff stops the instance
#   (TERMINATED, no vCPU/memory billing) without any API call;
# - compute.zoneOperations.get separately and unconditioned: gcloud waits for
#   the resize operation, whose name is random, so a condition on the group's
#   name would deny it and gcloud would report a resize that did happen as a
#   failure. Reading an operation's status reveals nothing and changes nothing.
# Nothing at all when the watchdog is disabled (idle_minutes = 0).
resource "google_project_iam_custom_role" "watchdog" {
  count       = var.idle_minutes > 0 ? 1 : 0
  role_id     = "${replace(var.name_prefix, "-", "_")}_idle_watchdog"
  title       = "FunnelPulse idle watchdog (${var.name_prefix})"
  description = "Resize the FunnelPulse executor group (bound with a condition on its name)."
  permissions = [
    "compute.instanceGroupManagers.get",
    "compute.instanceGroupManagers.update",
  ]
}

resource "google_project_iam_member" "watchdog_resize" {
  count   = var.idle_minutes > 0 ? 1 : 0
  project = var.project_id
  role    = google_project_iam_custom_role.watchdog[0].id
  member  = local.vm_member

  condition {
    title       = "only-${local.executor_group}"
    description = "Only the FunnelPulse executor group of this cluster."
    expression  = "resource.name == \"projects/${var.project_id}/zones/${var.zone}/instanceGroupManagers/${local.executor_group}\""
  }
}

resource "google_project_iam_custom_role" "watchdog_operations" {
  count       = var.idle_minutes > 0 ? 1 : 0
  role_id     = "${replace(var.name_prefix, "-", "_")}_idle_watchdog_ops"
  title       = "FunnelPulse idle watchdog: operation status (${var.name_prefix})"
  description = "Read the status of zonal operations (gcloud waits for the resize)."
  permissions = ["compute.zoneOperations.get"]
}

resource "google_project_iam_member" "watchdog_operations" {
  count   = var.idle_minutes > 0 ? 1 : 0
  project = var.project_id
  role    = google_project_iam_custom_role.watchdog_operations[0].id
  member  = local.vm_member
}
