output "apis" {
  description = "The APIs this configuration declares (and never disables)."
  value       = sort([for api in google_project_service.apis : api.service])
}
