output "image" {
  description = "The Collector image to run beside each workload."
  value       = var.image
}

output "config" {
  description = "The Collector's configuration (YAML); the sidecar reads it from OTELCOL_CONFIG (--config=env:OTELCOL_CONFIG)."
  value       = yamlencode(local.config)
}

output "app_env" {
  description = "The OTEL_* variables a process beside the Collector needs to export to it."
  value       = local.app_env
}

output "health_port" {
  description = "Where the Collector answers health checks (GET /)."
  value       = var.health_port
}

output "metric_prefix" {
  description = "The prefix of our metrics' types in Cloud Monitoring, for the dashboards and alerts."
  value       = var.metric_prefix
}
