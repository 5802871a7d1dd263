output "service_account_email" {
  description = "The reconciler job's identity."
  value       = google_service_account.reconciler.email
}

output "job" {
  description = "The Cloud Run job (run it by hand: gcloud run jobs execute bp-reconciler)."
  value       = google_cloud_run_v2_job.reconciler.name
}
