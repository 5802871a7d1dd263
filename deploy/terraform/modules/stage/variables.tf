variable "project_id" {
  description = "Project that holds the pipeline."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run service or worker pool."
  type        = string
}

variable "stage" {
  description = "Stage name as bp_common.topology knows it (export, submit, collect, import, upload)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,16}$", var.stage))
    error_message = "A stage name is 2-17 lowercase letters, digits or dashes."
  }
}

variable "delivery" {
  description = "push: a Cloud Run service behind a push subscription; pull: a Cloud Run worker pool on a pull subscription."
  type        = string

  validation {
    condition     = contains(["push", "pull"], var.delivery)
    error_message = "delivery is push or pull."
  }
}

variable "consumes_topic" {
  description = "Topic the stage consumes (short name)."
  type        = string
}

variable "produces_topic" {
  description = "Topic the stage publishes its result to (short name)."
  type        = string
}

variable "image" {
  description = "Container image, pinned by digest or an immutable tag."
  type        = string
}

variable "pipeline_env" {
  description = "PIPELINE_ENV of the service; production refuses unsafe settings at start."
  type        = string
  default     = "production"
}

variable "env" {
  description = "Further non-secret environment variables (BP_BUCKET and the like)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Secret Manager secret ids mounted at /secrets/{id}/latest; this stage's account alone is granted access to them."
  type        = list(string)
  default     = []
}

variable "bucket_roles" {
  description = "Bucket-level roles of the runtime account, keyed by a stable label: { label = { bucket, role, condition } }; a condition (an IAM condition's title and CEL expression) narrows the grant, to object-name prefixes for instance."
  type = map(object({
    bucket = string
    role   = string
    condition = optional(object({
      title      = string
      expression = string
    }))
  }))
  default = {}
}

variable "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent (service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com)."
  type        = string
}

variable "max_delivery_attempts" {
  description = "Deliveries before Pub/Sub moves a message to the dead-letter topic."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts max_delivery_attempts from 5 to 100."
  }
}

variable "minimum_backoff_seconds" {
  description = "Retry policy: first redelivery delay."
  type        = number
  default     = 10

  validation {
    condition     = var.minimum_backoff_seconds >= 0 && var.minimum_backoff_seconds <= 600
    error_message = "Backoff is 0..600 s."
  }
}

variable "maximum_backoff_seconds" {
  description = "Retry policy: longest redelivery delay."
  type        = number
  default     = 600

  validation {
    condition     = var.maximum_backoff_seconds >= 0 && var.maximum_backoff_seconds <= 600
    error_message = "Backoff is 0..600 s."
  }
}

variable "ack_deadline_seconds" {
  description = "Ack deadline of the stage subscription. Push: how long Pub/Sub waits for the response. Pull: also each lease extension, so a crashed worker's message returns this soon."
  type        = number
  default     = 600

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "Pub/Sub accepts ack deadlines from 10 to 600 s."
  }
}

variable "message_retention" {
  description = "How long unacknowledged messages are kept, on the stage and on the dead-letter subscription."
  type        = string
  default     = "604800s"
}

variable "cpu" {
  description = "CPU limit of the container."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit of the container."
  type        = string
  default     = "1Gi"
}

variable "request_timeout_seconds" {
  description = "Push services: Cloud Run request timeout; no longer than the ack deadline."
  type        = number
  default     = 600
}

variable "work_slots" {
  description = "Deliveries one instance works on at once (BP_WORK_SLOTS): what its cpu and memory hold for one delivery of the stage (decision 0054)."
  type        = number
  default     = 1

  validation {
    condition     = var.work_slots >= 1 && var.work_slots <= 256
    error_message = "work_slots is 1..256."
  }
}

variable "concurrency" {
  description = "Messages one instance takes at once, working or waiting for the holder of their unit (BP_FLOW_CONTROL_MAX_MESSAGES, and Cloud Run's request concurrency for push services); null for four per work slot."
  type        = number
  default     = null
}

variable "runs_elsewhere" {
  description = "The stage's workers run outside this module (the collector VMs): no Cloud Run resource here, only the subscription, dead letters, the identity those workers run as with its grants (output service_account_email), and the environment they are given (output environment)."
  type        = bool
  default     = false
}

variable "min_instances" {
  description = "Instances kept warm (push) or running (pull worker pool; at least 1)."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Push services: upper bound on instances."
  type        = number
  default     = 10
}

variable "vpc_network" {
  description = "Network for Direct VPC egress (needed by submit to reach the collector); null for none."
  type        = string
  default     = null
}

variable "vpc_subnetwork" {
  description = "Subnetwork for Direct VPC egress."
  type        = string
  default     = null
}

variable "network_tags" {
  description = "Network tags of the instances on the VPC (firewall rules select on them)."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Refuse to destroy the Cloud Run resource from Terraform."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "telemetry" {
  description = "The OpenTelemetry Collector sidecar (modules/telemetry): its image, configuration, health port, and the OTEL_* variables the stage exports to it with."
  type = object({
    image       = string
    config      = string
    health_port = number
    env         = map(string)
  })
}
