variable "project_id" {
  description = "Project that holds the pipeline."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run job and its schedule."
  type        = string
}

variable "image" {
  description = "The collector image (it carries `bp collector reconcile`), pinned by digest or an immutable tag."
  type        = string
}

variable "pipeline_env" {
  description = "PIPELINE_ENV of the job."
  type        = string
  default     = "production"
}

variable "shards_topic" {
  description = "The shards' topic (collection-shards), the only one the job publishes to."
  type        = string
}

variable "stuck_after_seconds" {
  description = "`--stuck-after`: a run without progress this long has its unheld shards published again."
  type        = number
  default     = 1800
}

variable "schedule" {
  description = "When Cloud Scheduler starts the job (cron, UTC)."
  type        = string
  default     = "*/5 * * * *"
}

variable "timeout_seconds" {
  description = "Longest one reconciliation may take."
  type        = number
  default     = 300
}

variable "env" {
  description = "Further non-secret environment variables (BP_BUCKET)."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Refuse to destroy the job from Terraform."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = {}
}
