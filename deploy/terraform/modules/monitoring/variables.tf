variable "project_id" {
  description = "Project whose metrics the dashboard and alerts read."
  type        = string
}

variable "stages" {
  description = "Per stage: its subscription, dead-letter subscription, whether it is a push service, and how old its oldest unacked message may get before the run counts as stuck."
  type = map(object({
    subscription             = string
    dead_letter_subscription = string
    push                     = bool
    stuck_after_seconds      = number
  }))
}

variable "otel_metric_prefix" {
  description = "Where the OpenTelemetry metrics land in Cloud Monitoring (the exporter's prefix)."
  type        = string
  default     = "custom.googleapis.com/opentelemetry"
}

variable "error_rate_threshold" {
  description = "Share of deliveries per stage that may end in retry or dead letter over the window."
  type        = number
  default     = 0.1

  validation {
    condition     = var.error_rate_threshold > 0 && var.error_rate_threshold < 1
    error_message = "A share between 0 and 1."
  }
}

variable "notification_channels" {
  description = "Notification channel ids every alert policy notifies."
  type        = list(string)
  default     = []
}

variable "runbook_url" {
  description = "Where the runbook lives; each alert links it."
  type        = string
  default     = "docs/operations.md"
}
