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
  description = "Where our OpenTelemetry metrics land in Cloud Monitoring: the Collector's googlecloud exporter prefix (modules/telemetry)."
  type        = string
  default     = "workload.googleapis.com"
}

variable "run_latency_objective_seconds" {
  description = "The run-latency SLO's bound: a run is good when its datasets are published within this many seconds. One of bp.run.duration's bucket bounds (bp_common.metrics.RUN_SECONDS), so the SLO counts exactly."
  type        = number
  default     = 14400

  validation {
    condition     = contains([60, 300, 600, 1800, 3600, 7200, 10800, 14400, 21600, 28800, 43200, 86400], var.run_latency_objective_seconds)
    error_message = "Use a bucket bound of bp.run.duration: 60, 300, 600, 1800, 3600, 7200, 10800, 14400, 21600, 28800, 43200 or 86400."
  }
}

variable "run_latency_goal" {
  description = "Share of runs that must be published within run_latency_objective_seconds."
  type        = number
  default     = 0.99
}

variable "delivery_goal" {
  description = "Share of deliveries that must end without a dead letter."
  type        = number
  default     = 0.995
}

variable "slo_period_days" {
  description = "Rolling window of both SLOs."
  type        = number
  default     = 28
}

variable "dead_letters_per_hour" {
  description = "Alert when more dead letters than this were sent in an hour, all stages together."
  type        = number
  default     = 5
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
