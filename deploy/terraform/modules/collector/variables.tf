variable "project_id" {
  description = "Project that holds the collector."
  type        = string
}

variable "region" {
  description = "Region of the managed instance group and its internal load balancer."
  type        = string
}

variable "zones" {
  description = "Zones with the chosen GPU (NVIDIA L4 is in most regions' a/b/c zones; check before applying)."
  type        = list(string)
}

variable "network" {
  description = "Network id."
  type        = string
}

variable "subnetwork" {
  description = "Subnetwork id for the VMs and the load balancer address."
  type        = string
}

variable "client_tags" {
  description = "Network tags of the callers allowed to reach the collector port (the submit worker pool)."
  type        = list(string)
}

variable "collector_image" {
  description = "Our collector image (bp collector serve), pinned by digest."
  type        = string
}

variable "genie_sim_image" {
  description = "Genie Sim 3.x server image (Isaac Sim), mirrored into the project's Artifact Registry and pinned by digest."
  type        = string
}

variable "collector_command" {
  description = "Command of the collector container."
  type        = list(string)
  default     = ["bp", "collector", "serve", "--host", "0.0.0.0", "--port", "50061"]
}

variable "port" {
  description = "TCP port of the collector's gRPC + mTLS endpoint."
  type        = number
  default     = 50061
}

variable "machine_type" {
  description = "Machine type; G2 carries NVIDIA L4 (RTX-class, which Isaac Sim needs for rendering)."
  type        = string
  default     = "g2-standard-16"
}

variable "accelerator_type" {
  description = "GPU model."
  type        = string
  default     = "nvidia-l4"
}

variable "accelerator_count" {
  description = "GPUs per VM."
  type        = number
  default     = 1
}

variable "instances" {
  description = "Collector VMs; jobs are not shared between VMs, so more than one needs submit-side affinity (see README)."
  type        = number
  default     = 1
}

variable "boot_image" {
  description = "Boot image; Container-Optimized OS installs the NVIDIA driver with cos-extensions."
  type        = string
  default     = "projects/cos-cloud/global/images/family/cos-stable"
}

variable "disk_size_gb" {
  description = "Boot disk size; the Isaac Sim image alone is tens of GB."
  type        = number
  default     = 200
}

variable "secrets" {
  description = "Secret Manager secret ids the collector reads (its server certificate, key and the client CA)."
  type        = list(string)
}

variable "bucket_roles" {
  description = "Bucket-level roles of the collector's account: { label = { bucket, role } }."
  type = map(object({
    bucket = string
    role   = string
  }))
  default = {}
}

variable "artifact_registry_repository" {
  description = "Repository the VMs pull both images from: { location, name }."
  type = object({
    location = string
    name     = string
  })
}

variable "pipeline_env" {
  description = "PIPELINE_ENV of the collector; outside local it serves only TLS with client certificates."
  type        = string
  default     = "production"
}

variable "env" {
  description = "Non-secret environment of the collector container."
  type        = map(string)
  default     = {}
}

variable "dns_name" {
  description = "Private DNS name of the collector (must be in its server certificate); ends with a dot."
  type        = string
  default     = "collector.bp.internal."
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "telemetry" {
  description = "The OpenTelemetry Collector each VM runs beside our collector (modules/telemetry): its image, configuration, and the OTEL_* variables our collector exports to it with."
  type = object({
    image  = string
    config = string
    env    = map(string)
  })
}
