# FunnelPulse on GCE: a lake bucket that outlives clusters (module.lake) and a
# Ballista cluster without public IPs (module.cluster). `deploy/down.sh` runs
# `terraform destroy -target=module.cluster`, so only the bucket survives it.
# What gets created and why: docs/terraform.md.

locals {
  bucket_name = var.bucket_name != "" ? var.bucket_name : "${var.project_id}-funnelpulse-lake"
  labels      = { app = "funnelpulse" }
}

provider "google" {
  project = var.project_id
  region  = var.region
  zone    = var.zone
  # Every resource that takes labels gets app=funnelpulse (billing reports,
  # `gcloud ... --filter labels.app=funnelpulse`); the modules set them explicitly too.
  default_labels = local.labels
}

module "lake" {
  source = "./modules/lake"

  bucket_name = local.bucket_name
  location    = var.region
  labels      = local.labels
}

module "cluster" {
  source = "./modules/cluster"

  project_id             = var.project_id
  region                 = var.region
  zone                   = var.zone
  name_prefix            = var.name_prefix
  bucket_name            = module.lake.bucket_name
  scheduler_machine_type = var.scheduler_machine_type
  executor_machine_type  = var.executor_machine_type
  executor_count         = var.executor_count
  executor_spot          = var.executor_spot
  idle_minutes           = var.idle_minutes
  release_version        = var.release_version
  labels                 = local.labels

  # The VMs configure themselves from instance metadata (deploy/gce/startup.sh
  # reads the funnelpulse-* attributes); the scheduler installs the watchdog
  # from its own metadata, so a VM needs nothing but the release in the bucket.
  startup_script  = file("${path.root}/../deploy/gce/startup.sh")
  watchdog_script = file("${path.root}/../deploy/gce/watchdog.sh")
}

# The variable is part of the deploy scripts' interface but nothing reads it
# yet. Egress is not restricted by the firewall (GCP's implied allow-egress
# rule stays), so a broker inside this VPC or a peered one needs no change;
# one on the internet would need Cloud NAT, which this cluster deliberately
# does not have. A plan with it set warns instead of pretending.
check "kafka_reserved" {
  assert {
    condition     = var.kafka_bootstrap_servers == ""
    error_message = "kafka_bootstrap_servers is reserved for the Kafka source, which is not built yet: nothing uses it. A broker outside this VPC would also need Cloud NAT or VPC peering."
  }
}
