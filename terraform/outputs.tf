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
  value = module.cluster.service_account_email
}

output "tunnel_command" {
  description = "Forwards localhost:50050 to the scheduler through IAP; then use --scheduler df://localhost:50050."
  value       = "gcloud compute start-iap-tunnel ${module.cluster.scheduler_instance} 50050 --local-host-port=localhost:50050 --zone ${var.zone} --project ${var.project_id}"
}

output "kafka_bootstrap_servers" {
  description = "The brokers the funnelpulse client on the scheduler VM uses: the managed cluster's bootstrap address (port 9092, SASL_SSL), kafka_bootstrap_servers, or empty."
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
