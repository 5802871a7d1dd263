# Collector workers: `bp collector work` in a regional managed instance group that the backlog of
# the collect stage's subscription scales, from none up to max_instances, Spot VMs allowed. One
# variant per backend: genie-sim runs on NVIDIA L4 VMs beside a Genie Sim server on Isaac Sim
# (plaintext gRPC on the VM's loopback only); mujoco runs on CPU VMs, one simulation process per
# shard and no simulator server. No public address, nothing listens for the network, no secret:
# the VMs run as the collect stage's runtime account (modules/stage), whose grants are the
# workers' (pull shards, read exports, create episodes, publish); this module adds only what a VM
# needs beyond them, reading its images from Artifact Registry.

locals {
  registry_host = "${var.artifact_registry_repository.location}-docker.pkg.dev"

  gpu = var.backend == "genie-sim"

  # One simulation process per shard, and a shard admitted only when it can be worked: the
  # autoscaler counts on each VM holding shards_per_instance of the backlog, no more.
  base_env = {
    BP_COLLECTOR_BACKEND         = var.backend
    BP_COLLECTOR_WORKERS         = tostring(var.shards_per_instance)
    BP_WORK_SLOTS                = tostring(var.shards_per_instance)
    BP_FLOW_CONTROL_MAX_MESSAGES = tostring(var.shards_per_instance)
  }

  # The GPU variant's episodes run on the Genie Sim server beside the worker, over the VM's
  # loopback (Genie Sim speaks plaintext); both containers mount the scene folder at one path.
  genie_sim_env = {
    BP_GENIE_SIM_ADDRESS   = "127.0.0.1:50051"
    BP_GENIE_SIM_SCENE_DIR = local.genie_sim_scene_dir
  }
  genie_sim_scene_dir = "/var/lib/bp/genie-sim/scenes"

  # A GPU VM cannot live-migrate, nor can a Spot VM; a standard CPU VM can.
  on_host_maintenance = local.gpu || var.spot ? "TERMINATE" : "MIGRATE"

  # Unless given: the Isaac Sim image alone is tens of GB, and Isaac Sim and its driver take
  # minutes before a GPU VM works; a CPU VM pulls one image of about a GB.
  disk_size_gb = coalesce(var.disk_size_gb, local.gpu ? 200 : 30)
  boot_seconds = coalesce(var.boot_seconds, local.gpu ? 600 : 180)

  # The backlog the autoscaler reads: shards waiting and shards being worked, on the collect
  # stage's subscription; over shards_per_instance, the number of VMs it keeps.
  backlog_filter = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${var.subscription}\""
}

# Container-Optimized OS pulls both images with the VM's account; logs and metrics are the
# stage's grants already.
resource "google_artifact_registry_repository_iam_member" "collector_pulls" {
  project    = var.project_id
  location   = var.artifact_registry_repository.location
  repository = var.artifact_registry_repository.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${var.service_account_email}"
}

resource "google_compute_instance_template" "collector" {
  project        = var.project_id
  name_prefix    = "bp-collector-"
  region         = var.region
  machine_type   = var.machine_type
  can_ip_forward = false
  tags           = ["bp-collector"]
  labels         = var.labels

  # The GPU variant's; the CPU variant has none.
  dynamic "guest_accelerator" {
    for_each = local.gpu ? [var.accelerator_type] : []
    content {
      type  = guest_accelerator.value
      count = var.accelerator_count
    }
  }

  # A Spot VM is deleted when preempted (the group makes another); the 30 s notice reaches the
  # worker as SIGTERM, and it finishes the episode at hand and hands its shard back.
  scheduling {
    on_host_maintenance         = local.on_host_maintenance
    provisioning_model          = var.spot ? "SPOT" : "STANDARD"
    preemptible                 = var.spot
    automatic_restart           = !var.spot
    instance_termination_action = var.spot ? "DELETE" : null
  }

  disk {
    source_image = var.boot_image
    disk_size_gb = local.disk_size_gb
    disk_type    = "pd-balanced"
    boot         = true
    auto_delete  = true
  }

  network_interface {
    subnetwork = var.subnetwork
  }

  service_account {
    email  = var.service_account_email
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
      env               = merge(var.env, local.base_env, local.gpu ? local.genie_sim_env : {})
      gpu               = local.gpu
      registry_host     = local.registry_host
      otel_image        = var.telemetry.image
      otel_config_b64   = base64encode(var.telemetry.config)
      genie_sim_image   = local.gpu ? var.genie_sim_image : ""
      scene_dir         = local.genie_sim_scene_dir
      collector_image   = var.collector_image
      collector_command = join(" ", var.collector_command)
      stop_grace        = var.shutdown_grace_seconds
      stop_timeout      = var.shutdown_grace_seconds + 2
    })
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = !local.gpu || var.genie_sim_image != null
      error_message = "The genie-sim backend runs a Genie Sim server beside each worker: set genie_sim_image."
    }
    precondition {
      condition     = !local.gpu || var.shards_per_instance == 1
      error_message = "A Genie Sim server plays one scene at a time: a GPU VM takes one shard."
    }
  }
}

resource "google_compute_region_instance_group_manager" "collector" {
  project                   = var.project_id
  name                      = "bp-collector"
  region                    = var.region
  base_instance_name        = "bp-collector"
  distribution_policy_zones = var.zones

  version {
    instance_template = google_compute_instance_template.collector.id
  }

  # A new template replaces VMs one at a time; a replaced worker returns its shard on SIGTERM.
  update_policy {
    type                  = "PROACTIVE"
    minimal_action        = "REPLACE"
    max_surge_fixed       = length(var.zones)
    max_unavailable_fixed = 0
  }
}

# As many VMs as the backlog needs, shards_per_instance each: the backlog counts shards waiting
# and shards being worked (held, not yet acked), so a VM at work keeps itself.
resource "google_compute_region_autoscaler" "collector" {
  project = var.project_id
  name    = "bp-collector"
  region  = var.region
  target  = google_compute_region_instance_group_manager.collector.id

  autoscaling_policy {
    min_replicas = var.min_instances
    max_replicas = var.max_instances
    # How long a new VM takes before its load counts.
    cooldown_period = local.boot_seconds
    mode            = "ON"

    metric {
      name                       = "pubsub.googleapis.com/subscription/num_undelivered_messages"
      filter                     = local.backlog_filter
      single_instance_assignment = var.shards_per_instance
    }

    # Scale in slowly: a VM removed mid-shard hands it back and its episodes run again elsewhere.
    scale_in_control {
      max_scaled_in_replicas {
        fixed = 1
      }
      time_window_sec = var.scale_in_window_seconds
    }
  }
}
