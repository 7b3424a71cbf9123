output "scheduler_instance" {
  value = google_compute_instance.scheduler.name
}

output "scheduler_internal_ip" {
  value = google_compute_address.scheduler.address
}

output "executor_group" {
  value = google_compute_instance_group_manager.executors.name
}

output "health_check" {
  value = google_compute_health_check.executor.name
}

output "kafka_bootstrap_servers" {
  description = "The brokers the scheduler's client uses: the managed cluster's, the given ones, or empty."
  value       = local.kafka_bootstrap_servers
}

output "managed_kafka_cluster" {
  value = var.managed_kafka ? module.kafka[0].cluster_name : ""
}

output "managed_kafka_cluster_id" {
  value = var.managed_kafka ? module.kafka[0].cluster_id : ""
}
