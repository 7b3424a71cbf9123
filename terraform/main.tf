# FunnelPulse on GCE: a lake bucket that outlives clusters (module.lake) and a
# Ballista cluster without public IPs (module.cluster; with managed_kafka, it
# includes a Managed Service for Apache Kafka cluster on its subnet,
# module.cluster.module.kafka). `deploy/down.sh` runs
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

  # Kafka for stage 04: an existing broker, or (managed_kafka) a Managed
  # Service for Apache Kafka cluster that the module makes on its subnet. Its
  # brokers get internal addresses (Private Service Connect endpoints, with
  # DNS names the service registers) in that subnet, so the scheduler VM
  # reaches them without NAT or any firewall change; nothing outside the VPC
  # does. Only the scheduler gets the address and the topic (its metadata,
  # which startup.sh writes into /etc/funnelpulse/client.env): the client
  # runs there (deploy/submit.sh), not on the executors.
  kafka_bootstrap_servers = var.kafka_bootstrap_servers
  kafka_topic             = var.kafka_topic
  managed_kafka           = var.managed_kafka
  kafka_partitions        = var.kafka_partitions
  kafka_vcpu_count        = var.kafka_vcpu_count
  kafka_memory_gib        = var.kafka_memory_gib

  # The VMs configure themselves from instance metadata (deploy/gce/startup.sh
  # reads the funnelpulse-* attributes); the scheduler installs the watchdog
  # from its own metadata, so a VM needs nothing but the release in the bucket.
  startup_script  = file("${path.root}/../deploy/gce/startup.sh")
  watchdog_script = file("${path.root}/../deploy/gce/watchdog.sh")
}

# A broker outside this VPC (another project's VPC, on premises, the
# internet) is reached only over what connects the networks: VPC peering,
# Cloud VPN or Interconnect for private addresses (egress is not restricted
# here; the broker's side must admit the cluster's subnet, 10.42.0.0/24), or
# Cloud NAT for public ones, which this cluster deliberately does not have
# (docs/terraform.md, "Kafka").
