variable "project_id" {
  description = "Project that holds the collector workers."
  type        = string
}

variable "region" {
  description = "Region of the managed instance group."
  type        = string
}

variable "backend" {
  description = "The simulator the workers run (BP_COLLECTOR_BACKEND): genie-sim on GPU VMs beside a Genie Sim server, mujoco on CPU VMs."
  type        = string

  validation {
    condition     = contains(["mujoco", "genie-sim"], var.backend)
    error_message = "backend is mujoco (CPU VMs) or genie-sim (GPU VMs)."
  }
}

variable "zones" {
  description = "Zones of the group; they must offer the machine type (and, for genie-sim, the GPU: NVIDIA L4 is in most regions' a/b/c zones; check before applying)."
  type        = list(string)
}

variable "subnetwork" {
  description = "Subnetwork of the VMs (private: Google APIs through Private Google Access)."
  type        = string
}

variable "collector_image" {
  description = "Our collector image (bp collector work), pinned by digest or an immutable tag."
  type        = string
}

variable "genie_sim_image" {
  description = "Genie Sim 3.x server image (Isaac Sim), mirrored into the project's Artifact Registry and pinned by digest; backend genie-sim only."
  type        = string
  default     = null
}

variable "collector_command" {
  description = "Command of the collector container."
  type        = list(string)
  default     = ["bp", "collector", "work"]
}

variable "service_account_email" {
  description = "The collect stage's runtime account (modules/stage output service_account_email), which the VMs run as: it holds the workers' grants (subscriber on bp-collect, publisher on its result, dead-letter and shards topics, the conditioned bucket roles, Firestore, log, metric and trace writer)."
  type        = string
}

variable "subscription" {
  description = "The collect stage's subscription (bp-collect): what the workers pull and what the autoscaler reads the backlog of."
  type        = string
}

variable "machine_type" {
  description = "Machine type: genie-sim, a G2 (NVIDIA L4, RTX-class, which Isaac Sim needs for rendering); mujoco, a CPU machine with a core and 1.5 GB per shard (c2d-standard-8, e2-standard-4)."
  type        = string
}

variable "accelerator_type" {
  description = "GPU model (backend genie-sim; CPU VMs have none)."
  type        = string
  default     = "nvidia-l4"
}

variable "accelerator_count" {
  description = "GPUs per VM (backend genie-sim)."
  type        = number
  default     = 1
}

variable "spot" {
  description = "Spot VMs: preempted at any time with a 30 s notice, deleted and made again by the group."
  type        = bool
  default     = true
}

variable "shutdown_grace_seconds" {
  description = "Seconds the worker gets between SIGTERM and SIGKILL to finish or return its shard; within a Spot VM's 30 s preemption notice."
  type        = number
  default     = 25

  validation {
    condition     = var.shutdown_grace_seconds >= 5 && var.shutdown_grace_seconds <= 28
    error_message = "Between 5 s and 28 s: a preempted Spot VM stops 30 s after its notice."
  }
}

variable "min_instances" {
  description = "VMs kept when no shard waits (0: none, the first shard waits for a VM to boot)."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Upper bound of VMs (and of GPUs in use, for genie-sim)."
  type        = number
  default     = 8

  validation {
    condition     = var.max_instances >= 1
    error_message = "At least one VM must be allowed."
  }
}

variable "shards_per_instance" {
  description = "Backlog (shards waiting and being worked) one VM takes: its simulation processes (BP_COLLECTOR_WORKERS), work slots and flow control. genie-sim: 1, one per Genie Sim server; mujoco: what its cores and memory hold, a core and 1.5 GB each."
  type        = number
  default     = 1

  validation {
    condition     = var.shards_per_instance >= 1
    error_message = "A VM takes at least one shard."
  }
}

variable "boot_seconds" {
  description = "Autoscaler cool-down: how long a new VM takes before its load counts; null for the variant's (600 s for the driver and Isaac Sim, 180 s for a CPU VM)."
  type        = number
  default     = null
}

variable "scale_in_window_seconds" {
  description = "At most one VM is removed per this many seconds."
  type        = number
  default     = 600
}

variable "boot_image" {
  description = "Boot image; Container-Optimized OS runs the containers and installs the NVIDIA driver with cos-extensions."
  type        = string
  default     = "projects/cos-cloud/global/images/family/cos-stable"
}

variable "disk_size_gb" {
  description = "Boot disk size; null for the variant's (200 GB: the Isaac Sim image alone is tens of GB; 30 GB for a CPU VM)."
  type        = number
  default     = null
}

variable "artifact_registry_repository" {
  description = "Repository the VMs pull both images from: { location, name }."
  type = object({
    location = string
    name     = string
  })
}

variable "env" {
  description = "Environment of the worker container: the collect stage's (modules/stage output environment), with the telemetry's; the backend, the shards per VM and the Genie Sim settings are added here."
  type        = map(string)
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "telemetry" {
  description = "The OpenTelemetry Collector each VM runs beside the worker (modules/telemetry): its image and configuration."
  type = object({
    image  = string
    config = string
  })
}
