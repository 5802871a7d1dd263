output "service_account_email" {
  description = "The collector's identity."
  value       = google_service_account.collector.email
}

output "address" {
  description = "host:port that submit dials (BP_COLLECTOR_ADDRESS)."
  value       = "${trimsuffix(var.dns_name, ".")}:${var.port}"
}

output "internal_ip" {
  description = "Internal load-balancer address of the collector."
  value       = google_compute_address.collector.address
}

output "instance_group" {
  description = "The collector's managed instance group."
  value       = google_compute_region_instance_group_manager.collector.instance_group
}
