variable "project_id" {
  description = "Project the Collector writes traces and metrics to."
  type        = string
}

variable "image" {
  description = "The Google-Built OpenTelemetry Collector (it has the googlecloud exporter and the gcp resource detector); pin a version."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/google-cloud-opentelemetry-collector/otelcol-google:0.144.0"
}

variable "metric_prefix" {
  description = "Where our metrics land in Cloud Monitoring: the metric type is PREFIX/NAME (bp.stage.messages...)."
  type        = string
  default     = "workload.googleapis.com"
}

variable "grpc_port" {
  description = "Loopback port of the OTLP/gRPC receiver."
  type        = number
  default     = 4317
}

variable "http_port" {
  description = "Loopback port of the OTLP/HTTP receiver, the one our processes use."
  type        = number
  default     = 4318
}

variable "health_port" {
  description = "Port of the Collector's health check (the sidecar's startup and liveness probes)."
  type        = number
  default     = 13133
}
