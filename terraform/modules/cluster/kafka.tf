# Optional: Google Cloud Managed Service for Apache Kafka on this cluster's
# subnet (terraform/modules/kafka), for stage 04's Kafka source. Inside this
# module rather than beside it: the Kafka cluster needs the subnet and the
# service account, and the scheduler's metadata needs its address, and
# `deploy/down.sh` (destroy -target=module.cluster) removes it with the VMs.

module "kafka" {
  source = "../kafka"
  count  = var.managed_kafka ? 1 : 0

  project_id            = var.project_id
  region                = var.region
  name_prefix           = var.name_prefix
  subnetwork_id         = google_compute_subnetwork.subnet.id
  service_account_email = var.scheduler_service_account_email
  topic                 = var.kafka_topic
  partitions            = var.kafka_partitions
  vcpu_count            = var.kafka_vcpu_count
  memory_gib            = var.kafka_memory_gib
  labels                = var.labels
}

locals {
  # What the funnelpulse client on the scheduler VM connects to: the given
  # brokers, or none. A managed cluster's bootstrap address is not known to
  # Terraform: the provider's bootstrap_address attribute was merged upstream
  # after the newest release we could check (docs/terraform.md, "Provider
  # arguments"), so the deploy scripts read it with
  # `gcloud managed-kafka clusters describe` (output
  # managed_kafka_bootstrap_command) and pass it to the client explicitly.
  kafka_bootstrap_servers = var.kafka_bootstrap_servers
}
