# FunnelPulse on GCE, in two lifetimes:
#   long-lived  module.project  (the APIs, the optional billing budget),
#               module.identity (the VMs' service accounts, custom roles, grants),
#               module.lake     (the bucket: lake/, raw/, releases/);
#   per cluster module.cluster  (network, firewall, VMs, executor group, health
#               check, IAP access; with managed_kafka a Managed Service for
#               Apache Kafka cluster, module.cluster.module.kafka).
# `deploy/down.sh` runs `terraform destroy -target=module.cluster`: only the
# cluster goes, and the next `deploy/up.sh` finds everything else in place.
# What gets created and why: docs/terraform.md.

locals {
  bucket_name = var.bucket_name != "" ? var.bucket_name : "${var.project_id}-funnelpulse-lake"
  # app=funnelpulse for the billing reports and `--filter labels.app=funnelpulse`;
  # funnelpulse-deployment=<name_prefix> tells deployments apart, and lets a
  # script find what one deployment made without its Terraform state.
  labels = merge(var.labels, {
    "app"                    = "funnelpulse"
    "funnelpulse-deployment" = var.name_prefix
  })
}

provider "google" {
  project = var.project_id
  region  = var.region
  zone    = var.zone
  # Every resource that takes labels gets them; the modules set them explicitly too.
  default_labels = local.labels
  # The billing budget API bills its calls to a project: with user
  # credentials (gcloud auth application-default login) that must be named,
  # or the call lands on gcloud's own project and fails. Only with a budget.
  user_project_override = var.billing_account != ""
  billing_project       = var.billing_account != "" ? var.project_id : null
}

module "project" {
  source = "./modules/project"

  project_id        = var.project_id
  name_prefix       = var.name_prefix
  managed_kafka     = var.managed_kafka
  billing_account   = var.billing_account
  budget_amount     = var.budget_amount
  budget_thresholds = var.budget_thresholds
}

module "lake" {
  source = "./modules/lake"

  bucket_name = local.bucket_name
  location    = var.region
  labels      = local.labels

  depends_on = [module.project]
}

module "identity" {
  source = "./modules/identity"

  project_id  = var.project_id
  zone        = var.zone
  name_prefix = var.name_prefix
  bucket_name = module.lake.bucket_name
  watchdog    = var.idle_minutes > 0

  depends_on = [module.project]
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
  release_sha256         = var.release_sha256
  labels                 = local.labels

  # Long-lived identities (module.identity), so that down.sh keeps them.
  scheduler_service_account_email = module.identity.scheduler_service_account_email
  executor_service_account_email  = module.identity.executor_service_account_email
  executor_group                  = module.identity.executor_group

  # Who may open IAP tunnels to the scheduler; Compute Engine's own stop
  # after so many seconds of running; autohealing's grace period.
  iap_members                     = var.iap_members
  scheduler_max_run_seconds       = var.scheduler_max_run_seconds
  executor_autoheal_delay_seconds = var.executor_autoheal_delay_seconds

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

  depends_on = [module.project]
}

# The custom roles lived in module.cluster before: moved, not destroyed and
# created again (a deleted custom role's id is blocked for about 37 days).
# The old shared account funnelpulse-vm is replaced by the two accounts of
# module.identity (a different account_id: nothing to move).
moved {
  from = module.cluster.google_project_iam_custom_role.watchdog[0]
  to   = module.identity.google_project_iam_custom_role.watchdog
}

moved {
  from = module.cluster.google_project_iam_custom_role.watchdog_operations[0]
  to   = module.identity.google_project_iam_custom_role.watchdog_operations
}

# A broker outside this VPC (another project's VPC, on premises, the
# internet) is reached only over what connects the networks: VPC peering,
# Cloud VPN or Interconnect for private addresses (egress is not restricted
# here; the broker's side must admit the cluster's subnet, 10.42.0.0/24), or
# Cloud NAT for public ones, which this cluster deliberately does not have
# (docs/terraform.md, "Kafka").
