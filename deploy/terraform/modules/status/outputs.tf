output "url" {
  description = "The status page's address; IAP asks who you are first."
  value       = google_cloud_run_v2_service.status.uri
}

output "service_account_email" {
  description = "The status page's identity."
  value       = google_service_account.status.email
}
