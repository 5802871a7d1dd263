output "instance_group" {
  description = "The collector workers' managed instance group."
  value       = google_compute_region_instance_group_manager.collector.instance_group
}

output "autoscaler" {
  description = "The autoscaler that sizes the group on the shards' backlog."
  value       = google_compute_region_autoscaler.collector.id
}
