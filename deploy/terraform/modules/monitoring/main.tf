# What operators watch: one dashboard row per stage, the pipeline's output, and three alerts
# (dead letters waiting, stage error rate, stuck runs). Each widget and alert says what it reads.

locals {
  otel = var.otel_metric_prefix

  outcomes_metric = "logging.googleapis.com/user/${google_logging_metric.stage_outcomes.name}"
  errors_metric   = "logging.googleapis.com/user/${google_logging_metric.stage_errors.name}"

  subscription_filter = "resource.type = \"pubsub_subscription\""

  dead_letter_subscriptions = [for s in values(var.stages) : s.dead_letter_subscription]

  rate_by = {
    alignmentPeriod    = "60s"
    perSeriesAligner   = "ALIGN_RATE"
    crossSeriesReducer = "REDUCE_SUM"
  }

  stage_rows = [
    for name, s in var.stages : [
      {
        title = "${name}: throughput (messages/s by outcome)"
        xyChart = {
          dataSets = [
            {
              legendTemplate = "$${metric.labels.outcome} (OpenTelemetry)"
              plotType       = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "metric.type = \"${local.otel}/bp.messages.handled\" AND metric.labels.stage = \"${name}\""
                  aggregation = merge(local.rate_by, { groupByFields = ["metric.label.outcome"] })
                }
              }
            },
            {
              legendTemplate = "$${metric.labels.outcome} (logs)"
              plotType       = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "metric.type = \"${local.outcomes_metric}\" AND metric.labels.stage = \"${name}\""
                  aggregation = merge(local.rate_by, { groupByFields = ["metric.label.outcome"] })
                }
              }
            },
          ]
        }
      },
      {
        title = "${name}: errors (failed deliveries/s, error logs/s)"
        xyChart = {
          dataSets = [
            {
              legendTemplate = "failed: $${metric.labels.outcome}"
              plotType       = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "metric.type = \"${local.otel}/bp.messages.failed\" AND metric.labels.stage = \"${name}\""
                  aggregation = merge(local.rate_by, { groupByFields = ["metric.label.outcome"] })
                }
              }
            },
            {
              legendTemplate = "ERROR logs"
              plotType       = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "metric.type = \"${local.errors_metric}\" AND metric.labels.stage = \"${name}\""
                  aggregation = local.rate_by
                }
              }
            },
          ]
        }
      },
      {
        title = "${name}: stage latency (s, p50 / p95)"
        xyChart = {
          dataSets = concat(
            [
              for p in ["50", "95"] : {
                legendTemplate = "p${p} stage time"
                plotType       = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type = \"${local.otel}/bp.stage.duration\" AND metric.labels.stage = \"${name}\""
                    aggregation = {
                      alignmentPeriod    = "300s"
                      perSeriesAligner   = "ALIGN_DELTA"
                      crossSeriesReducer = "REDUCE_PERCENTILE_${p}"
                    }
                  }
                }
              }
            ],
            s.push ? [
              {
                legendTemplate = "p95 push request (Cloud Run)"
                plotType       = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"bp-${name}\" AND metric.type = \"run.googleapis.com/request_latencies\""
                    aggregation = {
                      alignmentPeriod    = "300s"
                      perSeriesAligner   = "ALIGN_DELTA"
                      crossSeriesReducer = "REDUCE_PERCENTILE_95"
                    }
                  }
                }
              }
            ] : [],
          )
        }
      },
      {
        title = "${name}: oldest unacked message (s) on ${s.subscription}"
        xyChart = {
          thresholds = [{ value = s.stuck_after_seconds, color = "RED", direction = "ABOVE", label = "stuck" }]
          dataSets = [
            {
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "${local.subscription_filter} AND resource.labels.subscription_id = \"${s.subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
                }
              }
            },
          ]
        }
      },
      {
        title = "${name}: dead letters waiting on ${s.dead_letter_subscription}"
        xyChart = {
          dataSets = [
            {
              legendTemplate = "waiting"
              plotType       = "STACKED_BAR"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "${local.subscription_filter} AND resource.labels.subscription_id = \"${s.dead_letter_subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
                }
              }
            },
            {
              legendTemplate = "forwarded by Pub/Sub"
              plotType       = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "${local.subscription_filter} AND resource.labels.subscription_id = \"${s.subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\""
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA" }
                }
              }
            },
          ]
        }
      },
    ]
  ]

  pipeline_row = [
    {
      title = "Episodes collected (per minute, by robot and outcome)"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "$${metric.labels.robot} $${metric.labels.outcome}"
            plotType       = "STACKED_BAR"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "metric.type = \"${local.otel}/bp.episodes.collected\""
                aggregation = {
                  alignmentPeriod    = "60s"
                  perSeriesAligner   = "ALIGN_DELTA"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["metric.label.robot", "metric.label.outcome"]
                }
              }
            }
          },
        ]
      }
    },
    {
      title = "Quality pass rate (datasets passing the import gates, share)"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "$${metric.labels.robot}"
            plotType       = "LINE"
            timeSeriesQuery = {
              timeSeriesFilterRatio = {
                numerator = {
                  filter = "metric.type = \"${local.otel}/bp.quality.evaluated\" AND metric.labels.verdict = \"passed\""
                  aggregation = merge(local.rate_by, {
                    alignmentPeriod = "3600s"
                    groupByFields   = ["metric.label.robot"]
                  })
                }
                denominator = {
                  filter = "metric.type = \"${local.otel}/bp.quality.evaluated\""
                  aggregation = merge(local.rate_by, {
                    alignmentPeriod = "3600s"
                    groupByFields   = ["metric.label.robot"]
                  })
                }
              }
            }
          },
        ]
      }
    },
    {
      title = "Backlog per subscription (undelivered messages)"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "$${resource.labels.subscription_id}"
            plotType       = "LINE"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter      = "${local.subscription_filter} AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.labels.subscription_id = starts_with(\"bp-\")"
                aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
              }
            }
          },
        ]
      }
    },
    {
      title = "How to read this dashboard"
      text = {
        format  = "MARKDOWN"
        content = "One row per stage: throughput, errors, latency, the age of the oldest unacknowledged message (a run the stage has not finished) and the dead letters waiting for `bp dlq`. Each chart's sources are listed in deploy/terraform/README.md. Alerts and what to do: ${var.runbook_url}."
      }
    },
  ]
}

resource "google_logging_metric" "stage_outcomes" {
  project     = var.project_id
  name        = "bp_stage_outcomes"
  description = "Deliveries by stage and outcome (ack, retry, dead_letter), counted from the services' JSON logs."
  filter      = "jsonPayload.stage:* AND jsonPayload.outcome:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "BlueprintPipeline deliveries"

    labels {
      key         = "stage"
      value_type  = "STRING"
      description = "Pipeline stage."
    }

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "ack, retry or dead_letter."
    }
  }

  label_extractors = {
    stage   = "EXTRACT(jsonPayload.stage)"
    outcome = "EXTRACT(jsonPayload.outcome)"
  }
}

resource "google_logging_metric" "stage_errors" {
  project     = var.project_id
  name        = "bp_stage_errors"
  description = "ERROR-or-worse log entries by stage."
  filter      = "severity >= ERROR AND jsonPayload.stage:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "BlueprintPipeline error logs"

    labels {
      key         = "stage"
      value_type  = "STRING"
      description = "Pipeline stage."
    }
  }

  label_extractors = {
    stage = "EXTRACT(jsonPayload.stage)"
  }
}

resource "google_monitoring_dashboard" "pipeline" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "BlueprintPipeline"
    gridLayout = {
      columns = "5"
      widgets = concat(flatten(local.stage_rows), local.pipeline_row)
    }
  })
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "BlueprintPipeline: dead letters waiting"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "a dead-letter subscription holds messages"
    condition_threshold {
      filter          = "${local.subscription_filter} AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.labels.subscription_id = one_of(${join(", ", [for s in local.dead_letter_subscriptions : "\"${s}\""])})"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A message failed its stage permanently or ran out of delivery attempts and waits on $${resource.label.subscription_id}. Inspect it with `bp dlq list`, fix the cause, then `bp dlq replay`. Runbook: ${var.runbook_url}."
  }
}

resource "google_monitoring_alert_policy" "error_rate" {
  project               = var.project_id
  display_name          = "BlueprintPipeline: stage error rate"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "retries and dead letters above ${var.error_rate_threshold * 100}% of deliveries"
    condition_threshold {
      filter             = "metric.type = \"${local.outcomes_metric}\" AND metric.labels.outcome = one_of(\"retry\", \"dead_letter\")"
      denominator_filter = "metric.type = \"${local.outcomes_metric}\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_rate_threshold
      duration           = "600s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.stage"]
      }

      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.stage"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Stage $${metric.label.stage} is retrying or dead-lettering more than ${var.error_rate_threshold * 100}% of its deliveries. Read its error logs (`jsonPayload.stage=\"$${metric.label.stage}\" severity>=ERROR`) and `bp runs`. Runbook: ${var.runbook_url}."
  }
}

resource "google_monitoring_alert_policy" "stuck_runs" {
  project               = var.project_id
  display_name          = "BlueprintPipeline: stuck runs"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  dynamic "conditions" {
    for_each = var.stages
    content {
      display_name = "${conditions.key}: a message has waited more than ${conditions.value.stuck_after_seconds}s on ${conditions.value.subscription}"
      condition_threshold {
        filter          = "${local.subscription_filter} AND resource.labels.subscription_id = \"${conditions.value.subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
        comparison      = "COMPARISON_GT"
        threshold_value = conditions.value.stuck_after_seconds
        duration        = "300s"

        aggregations {
          alignment_period   = "60s"
          per_series_aligner = "ALIGN_MAX"
        }

        trigger {
          count = 1
        }
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A run has not left a stage within its deadline: the stage keeps failing it without dead-lettering yet, is crash-looping, or (submit) the collector stopped reporting progress. Find the run with `bp runs` and the stage's logs. Runbook: ${var.runbook_url}."
  }
}
