# The release the cluster's VMs run, checked before any VM is created or
# changed (the message names nothing that could be unknown at plan time, or
# Terraform would report an invalid message instead of it): release_version names gs://<bucket>/releases/<version>/, and
# release_sha256 gives the sha256 of each binary there, which the VMs get in
# their metadata and compare with what they download. Both may be null only
# when nothing creates or changes a VM (deploy/down.sh's destroy, or an
# apply of the long-lived modules alone): a precondition is not evaluated on
# destroy. No provider here, so terraform/tests/offline_checks.py plans this
# module on its own with the bundled Terraform (`release`).

locals {
  binaries = ["funnelpulse-scheduler", "funnelpulse-executor", "funnelpulse"]
  ok = var.release_version != null && alltrue([
    for b in local.binaries : can(regex("^[0-9a-f]{64}$", try(var.release_sha256[b], "")))
  ])
  error = "release_version and release_sha256 are required to create or change the VMs: upload the three binaries to gs://<bucket>/releases/<version>/ (output release_prefix) and pass -var release_version=<version> -var 'release_sha256={\"funnelpulse-scheduler\"=\"<sha256>\",\"funnelpulse-executor\"=\"<sha256>\",\"funnelpulse\"=\"<sha256>\"}' (deploy/up.sh does both)."
}

resource "terraform_data" "checked" {
  input = var.release_version

  lifecycle {
    precondition {
      condition     = local.ok
      error_message = local.error
    }
  }
}
