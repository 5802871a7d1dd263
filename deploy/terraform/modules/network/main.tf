# The private network the pulling stage and the GPU collector share: no public addresses, Google
# APIs through Private Google Access, flow logs on, and nothing allowed in unless a rule says so.

resource "google_compute_network" "pipeline" {
  project                 = var.project_id
  name                    = var.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "pipeline" {
  project                    = var.project_id
  name                       = "${var.name}-${var.region}"
  region                     = var.region
  network                    = google_compute_network.pipeline.id
  ip_cidr_range              = var.cidr
  private_ip_google_access   = true
  private_ipv6_google_access = "ENABLE_OUTBOUND_VM_ACCESS_TO_GOOGLE"

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# The implied rule already denies ingress; this one makes it explicit and logged.
resource "google_compute_firewall" "deny_ingress" {
  project   = var.project_id
  name      = "${var.name}-deny-ingress"
  network   = google_compute_network.pipeline.id
  direction = "INGRESS"
  priority  = 65000

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
