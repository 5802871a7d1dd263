# The GPU collector: our gRPC collector, on its genie-sim backend, beside a Genie Sim server on
# Isaac Sim (plaintext gRPC, on the VM's loopback only), on NVIDIA L4 VMs in a regional managed instance group, reachable
# only from the submit worker through an internal load balancer with a private DNS name. No
# public address; secrets come from Secret Manager.

locals {
  member        = "serviceAccount:${google_service_account.collector.email}"
  registry_host = "${var.artifact_registry_repository.location}-docker.pkg.dev"

  # Source ranges of Google's load-balancer health checks.
  health_check_ranges = ["35.191.0.0/16", "130.211.0.0/22"]

  base_env = {
    PIPELINE_ENV  = var.pipeline_env
    BP_PROJECT_ID = var.project_id
    # checkov:skip=CKV_SECRET_6:The name of a secrets backend, not a secret value.
    BP_SECRETS_BACKEND    = "secret-manager"
    BP_LEDGER_BACKEND     = "firestore"
    # Episodes run on the Genie Sim server beside the collector, over the VM's loopback (Genie
    # Sim speaks plaintext); both containers mount the scene folder at the same path.
    BP_COLLECTOR_BACKEND   = "genie-sim"
    BP_GENIE_SIM_ADDRESS   = "127.0.0.1:50051"
    BP_GENIE_SIM_SCENE_DIR = local.genie_sim_scene_dir
  }
  genie_sim_scene_dir = "/var/lib/bp/genie-sim/scenes"

  project_roles = [
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/cloudtrace.agent",
  ]
}

resource "google_service_account" "collector" {
  project      = var.project_id
  account_id   = "bp-collector"
  display_name = "BlueprintPipeline GPU collector"
  description  = "Identity of the collector VMs; reads its own TLS secrets and pulls its images."
}

resource "google_project_iam_member" "collector" {
  for_each = toset(local.project_roles)
  project  = var.project_id
  role     = each.value
  member   = local.member
}

resource "google_secret_manager_secret_iam_member" "collector" {
  for_each  = toset(var.secrets)
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.member
}

resource "google_storage_bucket_iam_member" "collector" {
  for_each = var.bucket_roles
  bucket   = each.value.bucket
  role     = each.value.role
  member   = local.member
}

resource "google_artifact_registry_repository_iam_member" "collector_pulls" {
  project    = var.project_id
  location   = var.artifact_registry_repository.location
  repository = var.artifact_registry_repository.name
  role       = "roles/artifactregistry.reader"
  member     = local.member
}

resource "google_compute_instance_template" "collector" {
  project        = var.project_id
  name_prefix    = "bp-collector-"
  region         = var.region
  machine_type   = var.machine_type
  can_ip_forward = false
  tags           = ["bp-collector"]
  labels         = var.labels

  guest_accelerator {
    type  = var.accelerator_type
    count = var.accelerator_count
  }

  # GPU VMs cannot live-migrate.
  scheduling {
    on_host_maintenance = "TERMINATE"
    automatic_restart   = true
    preemptible         = false
  }

  disk {
    source_image = var.boot_image
    disk_size_gb = var.disk_size_gb
    disk_type    = "pd-balanced"
    boot         = true
    auto_delete  = true
  }

  network_interface {
    subnetwork = var.subnetwork
  }

  service_account {
    email  = google_service_account.collector.email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  metadata = {
    block-project-ssh-keys    = "true"
    enable-oslogin            = "TRUE"
    serial-port-enable        = "false"
    google-logging-enabled    = "true"
    google-monitoring-enabled = "true"
    user-data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
      port              = var.port
      env               = merge(var.env, local.base_env, var.telemetry.env)
      registry_host     = local.registry_host
      otel_image        = var.telemetry.image
      otel_config_b64   = base64encode(var.telemetry.config)
      genie_sim_image   = var.genie_sim_image
      scene_dir         = local.genie_sim_scene_dir
      collector_image   = var.collector_image
      collector_command = join(" ", var.collector_command)
    })
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_region_health_check" "collector" {
  project             = var.project_id
  name                = "bp-collector"
  region              = var.region
  check_interval_sec  = 10
  timeout_sec         = 5
  healthy_threshold   = 2
  unhealthy_threshold = 6

  # A TCP check: the gRPC port demands a client certificate, which health checkers do not have.
  tcp_health_check {
    port = var.port
  }

  log_config {
    enable = true
  }
}

resource "google_compute_region_instance_group_manager" "collector" {
  project                   = var.project_id
  name                      = "bp-collector"
  region                    = var.region
  base_instance_name        = "bp-collector"
  distribution_policy_zones = var.zones
  target_size               = var.instances

  version {
    instance_template = google_compute_instance_template.collector.id
  }

  named_port {
    name = "grpc"
    port = var.port
  }

  # Isaac Sim takes minutes to boot; do not recreate a VM that is still starting.
  auto_healing_policies {
    health_check      = google_compute_region_health_check.collector.id
    initial_delay_sec = 1200
  }

  update_policy {
    type                  = "PROACTIVE"
    minimal_action        = "REPLACE"
    max_surge_fixed       = length(var.zones)
    max_unavailable_fixed = 0
  }
}

resource "google_compute_region_backend_service" "collector" {
  project               = var.project_id
  name                  = "bp-collector"
  region                = var.region
  protocol              = "TCP"
  load_balancing_scheme = "INTERNAL"
  health_checks         = [google_compute_region_health_check.collector.id]
  # A job lives on the VM that started it; keep a caller on one VM.
  session_affinity = "CLIENT_IP"

  backend {
    group          = google_compute_region_instance_group_manager.collector.instance_group
    balancing_mode = "CONNECTION"
  }

  log_config {
    enable      = true
    sample_rate = 1.0
  }
}

resource "google_compute_address" "collector" {
  project      = var.project_id
  name         = "bp-collector"
  region       = var.region
  subnetwork   = var.subnetwork
  address_type = "INTERNAL"
}

resource "google_compute_forwarding_rule" "collector" {
  project               = var.project_id
  name                  = "bp-collector"
  region                = var.region
  load_balancing_scheme = "INTERNAL"
  backend_service       = google_compute_region_backend_service.collector.id
  ip_address            = google_compute_address.collector.address
  ip_protocol           = "TCP"
  ports                 = [tostring(var.port)]
  network               = var.network
  subnetwork            = var.subnetwork
  allow_global_access   = false
  labels                = var.labels
}

resource "google_compute_firewall" "collector_from_submit" {
  project                 = var.project_id
  name                    = "bp-collector-from-submit"
  network                 = var.network
  direction               = "INGRESS"
  priority                = 1000
  source_tags             = var.client_tags
  target_service_accounts = [google_service_account.collector.email]

  allow {
    protocol = "tcp"
    ports    = [tostring(var.port)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "collector_health_checks" {
  project                 = var.project_id
  name                    = "bp-collector-health-checks"
  network                 = var.network
  direction               = "INGRESS"
  priority                = 1000
  source_ranges           = local.health_check_ranges
  target_service_accounts = [google_service_account.collector.email]

  allow {
    protocol = "tcp"
    ports    = [tostring(var.port)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_dns_managed_zone" "internal" {
  project     = var.project_id
  name        = "bp-internal"
  dns_name    = join(".", slice(split(".", var.dns_name), 1, length(split(".", var.dns_name))))
  description = "Private names of the pipeline (the collector's address in its TLS certificate)."
  visibility  = "private"
  labels      = var.labels

  private_visibility_config {
    networks {
      network_url = var.network
    }
  }
}

resource "google_dns_record_set" "collector" {
  project      = var.project_id
  managed_zone = google_dns_managed_zone.internal.name
  name         = var.dns_name
  type         = "A"
  ttl          = 300
  rrdatas      = [google_compute_address.collector.address]
}
