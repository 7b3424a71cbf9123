output "scheduler_instance" {
  value = google_compute_instance.scheduler.name
}

output "scheduler_internal_ip" {
  value = google_compute_address.scheduler.address
}

output "executor_group" {
  value = google_compute_instance_group_manager.executors.name
}

output "service_account_email" {
  value = google_service_account.vm.email
}

output "kafka_bootstrap_servers" {
  description = "The brokers the scheduler's client uses: the managed cluster's, the given ones, or empty."
  value       = local.kafka_bootstrap_servers
}

output "managed_kafka_cluster" {
  value = var.managed_kafka ? module.kafka[0].cluster_name : ""
}
