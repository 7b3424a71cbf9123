output "ok" {
  description = "Both set, and a sha256 for each binary."
  value       = local.ok
}

output "error" {
  value = local.error
}
