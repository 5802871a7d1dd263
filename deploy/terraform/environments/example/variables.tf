variable "project_id" {
  description = "Project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the services, the buckets' location and the collector."
  type        = string
  default     = "us-central1"
}

variable "collector_zones" {
  description = "Zones of the collector workers; they must offer the chosen machine type (and, for genie-sim, the GPU)."
  type        = list(string)
  default     = ["us-central1-a", "us-central1-b", "us-central1-c"]
}

variable "pipeline_env" {
  description = "PIPELINE_ENV of every service."
  type        = string
  default     = "production"

  validation {
    condition     = contains(["dev", "staging", "production"], var.pipeline_env)
    error_message = "A deployed pipeline runs as dev, staging or production (local is for laptops)."
  }
}

variable "scenes_bucket" {
  description = "Pipeline bucket (scenes/ in, runs/ artefacts); BP_BUCKET. Globally unique."
  type        = string
}

variable "datasets_bucket" {
  description = "Firebase Storage bucket the datasets are published to; BP_FIREBASE_BUCKET. Globally unique."
  type        = string
}

variable "firestore_location" {
  description = "Firestore location (a region or a multi-region such as nam5)."
  type        = string
  default     = "nam5"
}

variable "image_tag" {
  description = "Tag every image is deployed at (immutable tags in Artifact Registry; use the release's git sha)."
  type        = string

  validation {
    condition     = var.image_tag != "latest"
    error_message = "Deploy an immutable tag, not latest."
  }
}

variable "genie_sim_image" {
  description = "Genie Sim 3.x server image mirrored into the project's Artifact Registry, pinned by digest; needed for the genie-sim backend only."
  type        = string
  default     = null
}

variable "collector_backend" {
  description = "The simulator the shards ask for (BP_COLLECTOR_BACKEND of submit and of every collector worker), and so which variant the collector group runs: mujoco on CPU VMs, genie-sim on GPU VMs beside a Genie Sim server (modules/collector). Drain bp-collect before switching: a worker refuses another backend's shards."
  type        = string
  default     = "mujoco"

  validation {
    condition     = contains(["mujoco", "genie-sim"], var.collector_backend)
    error_message = "collector_backend is mujoco (CPU workers) or genie-sim (GPU workers)."
  }
}

variable "cpu_collector_machine_type" {
  description = "CPU collector worker machine type (backend mujoco). Each VM takes as many shards as collect's work_slots in main.tf (one per core, 1.5 GB each): change the two together."
  type        = string
  default     = "c2d-standard-8"
}

variable "cpu_collectors_max" {
  description = "Upper bound of the CPU collector workers (backend mujoco); the autoscaler runs as many as the shards waiting need, none when there are none."
  type        = number
  default     = 16

  validation {
    condition     = var.cpu_collectors_max >= 1
    error_message = "At least one CPU worker must be allowed."
  }
}

variable "gpu_collector_machine_type" {
  description = "GPU collector worker machine type (backend genie-sim; G2 = NVIDIA L4)."
  type        = string
  default     = "g2-standard-16"
}

variable "gpu_collectors_max" {
  description = "Upper bound of the GPU collector workers (backend genie-sim); the autoscaler runs as many as the shards waiting need, none when there are none."
  type        = number
  default     = 8

  validation {
    condition     = var.gpu_collectors_max >= 1
    error_message = "At least one GPU worker must be allowed."
  }
}

variable "collector_spot" {
  description = "Run the collector workers (CPU or GPU) as Spot VMs: far cheaper, preempted at any time; a preempted worker finishes the episode at hand, hands its shard back, and another takes it up where the episodes stopped."
  type        = bool
  default     = true
}

variable "shard_stuck_after_seconds" {
  description = "The reconciler publishes again the shards of a run that has made no progress for this long (and that no worker holds)."
  type        = number
  default     = 1800

  validation {
    condition     = var.shard_stuck_after_seconds >= 60
    error_message = "Give workers at least a minute before their shards are sent again."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message is dead-lettered, for every stage subscription."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts max_delivery_attempts from 5 to 100."
  }
}

variable "raw_episode_retention_days" {
  description = "Days raw episodes stay in the pipeline bucket (runs/.../episodes/); import reads them within hours of collection. Published datasets are never matched."
  type        = number
  default     = 30

  validation {
    condition     = var.raw_episode_retention_days >= 1
    error_message = "Raw episodes must stay at least a day: a run imports them after collecting."
  }
}

variable "run_retention_days" {
  description = "Days a run's artefacts stay under runs/ in the pipeline bucket, and its ledger entry after it ends (Firestore TTL on expire_at); keep it above raw_episode_retention_days and the longest run. Published datasets are never matched."
  type        = number
  default     = 90

  validation {
    condition     = var.run_retention_days >= 1
    error_message = "A run's artefacts must stay at least a day after it ends."
  }
}

variable "stuck_after_seconds" {
  description = "Per stage: age of the oldest unacked message that raises the stuck-runs alert. A collect message is held while its shard is worked, so its bound is the longest shard."
  type        = map(number)
  default = {
    export  = 1800
    submit  = 1800
    collect = 7200
    import  = 3600
    upload  = 3600
  }
}

variable "firebase_service_account_email" {
  description = "The account whose key is in the firebase-service-account secret; granted write on the datasets bucket only. Null to manage that grant elsewhere."
  type        = string
  default     = null
}

variable "alert_email" {
  description = "Where alerts go; null for no email channel."
  type        = string
  default     = null
}

variable "status_page_members" {
  description = "Who may open the status page through IAP: user:, group: or domain: members (e.g. group:pipeline-oncall@example.com)."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect Cloud Run resources, Firestore and the buckets from terraform destroy."
  type        = bool
  default     = true
}
