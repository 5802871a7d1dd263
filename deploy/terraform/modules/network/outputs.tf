output "network" {
  description = "Network id."
  value       = google_compute_network.pipeline.id
}

output "network_name" {
  description = "Network name."
  value       = google_compute_network.pipeline.name
}

output "subnetwork" {
  description = "Subnetwork id."
  value       = google_compute_subnetwork.pipeline.id
}

output "subnetwork_cidr" {
  description = "Primary range of the subnetwork."
  value       = google_compute_subnetwork.pipeline.ip_cidr_range
}
