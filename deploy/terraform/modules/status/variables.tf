variable "project_id" {
  description = "Project the status page runs in and reads."
  type        = string
}

variable "region" {
  description = "Cloud Run region."
  type        = string
}

variable "image" {
  description = "The operator image (libs/ops/Dockerfile): `bp status serve` on $PORT."
  type        = string
}

variable "pipeline_env" {
  description = "PIPELINE_ENV of the page (production refuses to serve without IAP or OIDC)."
  type        = string
}

variable "bucket" {
  description = "The scenes bucket, where import writes the quality reports the page serves."
  type        = string
}

variable "dead_letter_subscriptions" {
  description = "Every stage's dead-letter subscription (bp-{stage}-dead-letter)."
  type        = list(string)
}

variable "replay_topics" {
  description = "The topics the stages consume, where a replay re-publishes a dead letter."
  type        = list(string)
}

variable "members" {
  description = "Who may open the page through IAP (user:, group: or domain: members)."
  type        = list(string)
  default     = []
}

variable "iap_service_agent" {
  description = "The project's IAP service agent (service-PROJECT_NUMBER@gcp-sa-iap.iam.gserviceaccount.com), which invokes the service."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the service while true."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every resource."
  type        = map(string)
  default     = {}
}
