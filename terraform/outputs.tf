output "project_id" {
  value = var.project_id
}

output "zone" {
  value = var.zone
}

output "bucket" {
  value = module.lake.bucket_name
}

output "lake_url" {
  value = "gs://${module.lake.bucket_name}/lake"
}

output "raw_url" {
  value = "gs://${module.lake.bucket_name}/raw"
}

output "release_prefix" {
  description = "deploy/up.sh uploads the binaries to <release_prefix>/<release_version>/."
  value       = "gs://${module.lake.bucket_name}/releases"
}

output "scheduler_instance" {
  value = module.cluster.scheduler_instance
}

output "scheduler_internal_ip" {
  value = module.cluster.scheduler_internal_ip
}

output "executor_group" {
  value = module.cluster.executor_group
}

output "service_account_email" {
  description = "The scheduler VM's service account (the one IAP SSH logs in to); kept for the deploy scripts, same as scheduler_service_account_email."
  value       = module.identity.scheduler_service_account_email
}

output "scheduler_service_account_email" {
  value = module.identity.scheduler_service_account_email
}

output "executor_service_account_email" {
  value = module.identity.executor_service_account_email
}

output "region" {
  value = var.region
}

output "release_version" {
  description = "The release the VMs were applied with (null when none)."
  value       = var.release_version
}

output "deployment_label" {
  description = "The label every labelled resource of this deployment carries, as a gcloud --filter."
  value       = "labels.funnelpulse-deployment=${var.name_prefix}"
}

output "apis" {
  description = "The APIs Terraform declares (module.project; never disabled by Terraform)."
  value       = module.project.apis
}

output "tunnel_command" {
  description = "Forwards localhost:50050 to the scheduler through IAP; then use --scheduler df://localhost:50050."
  value       = "gcloud compute start-iap-tunnel ${module.cluster.scheduler_instance} 50050 --local-host-port=localhost:50050 --zone ${var.zone} --project ${var.project_id}"
}

output "kafka_bootstrap_servers" {
  description = "The brokers given in kafka_bootstrap_servers, or empty; with managed_kafka always empty: read the managed cluster's address with managed_kafka_bootstrap_command."
  value       = module.cluster.kafka_bootstrap_servers

  precondition {
    condition     = !(var.managed_kafka && var.kafka_bootstrap_servers != "")
    error_message = "Set either managed_kafka (Terraform creates a Kafka cluster and uses its address) or kafka_bootstrap_servers (an existing broker), not both."
  }
}

output "kafka_topic" {
  value = var.kafka_topic
}

output "managed_kafka_cluster" {
  description = "The Managed Service for Apache Kafka cluster (projects/<project>/locations/<region>/clusters/<id>), or empty."
  value       = module.cluster.managed_kafka_cluster
}

output "managed_kafka_bootstrap_command" {
  description = "With managed_kafka: a shell command (quoted for eval) that prints the managed cluster's bootstrap address (add :9092 when it has no port); empty otherwise."
  value       = var.managed_kafka ? "gcloud managed-kafka clusters describe ${module.cluster.managed_kafka_cluster_id} --location ${var.region} --project ${var.project_id} --format='value(bootstrapAddress)'" : ""
}
