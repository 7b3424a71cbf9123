output "scheduler_service_account_email" {
  value = google_service_account.scheduler.email
}

output "executor_service_account_email" {
  value = google_service_account.executor.email
}

output "executor_group" {
  description = "Name of the executor group: module.cluster creates it under this name, the watchdog's grant is conditioned on it."
  value       = local.executor_group
}
