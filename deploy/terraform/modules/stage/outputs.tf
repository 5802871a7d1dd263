output "service_account_email" {
  description = "Runtime identity of the stage; workers that run elsewhere run as it."
  value       = google_service_account.runtime.email
}

output "push_service_account_email" {
  description = "Identity in the push subscription's OIDC token (null for the pulling stage)."
  value       = one(google_service_account.push[*].email)
}

output "push_audience" {
  description = "Audience of the push OIDC token (null for the pulling stage)."
  value       = local.push ? local.push_audience : null
}

output "subscription" {
  description = "The stage's subscription name (bp-{stage})."
  value       = google_pubsub_subscription.stage.name
}

output "dead_letter_topic" {
  description = "The stage's dead-letter topic name (bp-{stage}-dead-letter)."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription" {
  description = "Where dead letters wait for `bp dlq` (bp-{stage}-dead-letter)."
  value       = google_pubsub_subscription.dead_letter.name
}

output "service_uri" {
  description = "HTTPS address of the push service (null for a pulling stage)."
  value       = one(google_cloud_run_v2_service.push[*].uri)
}

output "environment" {
  description = "The stage's environment (its settings, the telemetry's, and what var.env adds); what workers that run elsewhere must be given."
  value       = local.environment
}
