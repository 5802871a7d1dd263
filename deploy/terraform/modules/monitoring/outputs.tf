output "dashboard_id" {
  description = "The pipeline dashboard."
  value       = google_monitoring_dashboard.pipeline.id
}

output "alert_policies" {
  description = "Alert policy ids by purpose."
  value = {
    dead_letters     = google_monitoring_alert_policy.dead_letters.id
    dead_letter_rate = google_monitoring_alert_policy.dead_letter_rate.id
    error_rate       = google_monitoring_alert_policy.error_rate.id
    stuck_runs       = google_monitoring_alert_policy.stuck_runs.id
    slo_burn         = { for k, p in google_monitoring_alert_policy.slo_burn : k => p.id }
  }
}

output "log_metrics" {
  description = "Log-based metrics the dashboard and alerts read."
  value = [
    google_logging_metric.stage_outcomes.name,
    google_logging_metric.stage_errors.name,
    google_logging_metric.permanent_errors.name,
  ]
}

output "slos" {
  description = "The service-level objectives, by purpose."
  value = {
    run_latency = google_monitoring_slo.run_latency.id
    deliveries  = google_monitoring_slo.deliveries.id
  }
}
