# The OpenTelemetry Collector that runs beside every workload (a Cloud Run sidecar, a container on
# the collector VMs): it receives OTLP on loopback from our processes and writes traces to Cloud
# Trace and metrics to Cloud Monitoring under `metric_prefix` (decision 0040). Our code knows
# only the standard OTEL_* variables; which backend receives the data is decided here.

locals {
  pipeline = ["memory_limiter", "resourcedetection", "batch"]

  config = {
    receivers = {
      otlp = {
        protocols = {
          grpc = { endpoint = "127.0.0.1:${var.grpc_port}" }
          http = { endpoint = "127.0.0.1:${var.http_port}" }
        }
      }
    }
    processors = {
      memory_limiter = { check_interval = "1s", limit_percentage = 70, spike_limit_percentage = 20 }
      # Cloud Run instance or VM: tells the exporter which monitored resource each series is on.
      resourcedetection = { detectors = ["env", "gcp"], timeout = "10s", override = false }
      batch             = { send_batch_size = 200, timeout = "5s" }
    }
    exporters = {
      googlecloud = {
        project = var.project_id
        metric  = { prefix = var.metric_prefix }
      }
    }
    extensions = {
      health_check = { endpoint = "0.0.0.0:${var.health_port}" }
    }
    service = {
      extensions = ["health_check"]
      pipelines = {
        traces  = { receivers = ["otlp"], processors = local.pipeline, exporters = ["googlecloud"] }
        metrics = { receivers = ["otlp"], processors = local.pipeline, exporters = ["googlecloud"] }
      }
    }
  }

  # What a process beside this Collector is told: the standard variables and nothing else.
  app_env = {
    OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:${var.http_port}"
    OTEL_EXPORTER_OTLP_PROTOCOL = "http/protobuf"
  }
}
