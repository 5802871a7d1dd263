# What operators watch: one dashboard row per stage, then collection, import, upload and the runs
# as a whole; SLOs with burn-rate alerts; alerts on dead letters, error rate and stuck runs; and
# log-based metrics from the services' JSON logs. Every metric a chart, alert or SLO reads is one
# our code emits (tests/telemetry checks it against a real run) or one Google's services emit.

locals {
  otel = var.otel_metric_prefix

  outcomes_metric  = "logging.googleapis.com/user/${google_logging_metric.stage_outcomes.name}"
  errors_metric    = "logging.googleapis.com/user/${google_logging_metric.stage_errors.name}"
  permanent_metric = "logging.googleapis.com/user/${google_logging_metric.permanent_errors.name}"

  subscription_filter = "resource.type = \"pubsub_subscription\""

  dead_letter_subscriptions = [for s in values(var.stages) : s.dead_letter_subscription]

  # The collect stage's subscription: collection shards (bp_common.topology).
  shards_subscription = var.stages["collect"].subscription

  rate_by = {
    alignmentPeriod    = "60s"
    perSeriesAligner   = "ALIGN_RATE"
    crossSeriesReducer = "REDUCE_SUM"
  }

  percentiles = {
    alignmentPeriod  = "300s"
    perSeriesAligner = "ALIGN_DELTA"
  }

  stage_rows = [
    for name, s in var.stages : [
      {
        title = "${name}: messages/s by outcome"
        xyChart = {
          dataSets = [
            {
              legendTemplate = "$${metric.labels.outcome}"
              plotType       = "STACKED_AREA"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "metric.type = \"${local.otel}/bp.stage.messages\" AND metric.labels.stage = \"${name}\""
                  aggregation = merge(local.rate_by, { groupByFields = ["metric.label.outcome"] })
                }
              }
            }, # The same deliveries counted from the logs: if the two disagree, telemetry is not
            # reaching Cloud Monitoring.
            {
              legendTemplate = "logs: $${metric.labels.outcome}"
              plotType       = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "metric.type = \"${local.outcomes_metric}\" AND metric.labels.stage = \"${name}\""
                  aggregation = merge(local.rate_by, { groupByFields = ["metric.label.outcome"] })
                }
              }
            },
            {
              legendTemplate = "logs: ERROR lines"
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
        title = "${name}: handling time (s, p50 / p95) and work in flight"
        xyChart = {
          dataSets = concat(
            [
              for p in ["50", "95"] : {
                legendTemplate = "p${p}"
                plotType       = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type = \"${local.otel}/bp.stage.duration\" AND metric.labels.stage = \"${name}\""
                    aggregation = merge(local.percentiles, { crossSeriesReducer = "REDUCE_PERCENTILE_${p}" })
                  }
                }
              }
            ],
            [
              {
                legendTemplate = "in flight"
                plotType       = "LINE"
                targetAxis     = "Y2"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type = \"${local.otel}/bp.stage.in_flight\" AND metric.labels.stage = \"${name}\""
                    aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM" }
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
                    filter      = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"bp-${name}\" AND metric.type = \"run.googleapis.com/request_latencies\""
                    aggregation = merge(local.percentiles, { crossSeriesReducer = "REDUCE_PERCENTILE_95" })
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
        title = "${name}: dead letters (sent per minute by reason; waiting on ${s.dead_letter_subscription})"
        xyChart = {
          dataSets = [
            {
              legendTemplate = "sent: $${metric.labels.reason}"
              plotType       = "STACKED_BAR"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type = \"${local.otel}/bp.dead_letters\" AND metric.labels.subscription = \"${s.dead_letter_subscription}\""
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = "ALIGN_DELTA"
                    crossSeriesReducer = "REDUCE_SUM"
                    groupByFields      = ["metric.label.reason"]
                  }
                }
              }
            },
            {
              legendTemplate = "waiting"
              plotType       = "LINE"
              targetAxis     = "Y2"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "${local.subscription_filter} AND resource.labels.subscription_id = \"${s.dead_letter_subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
                }
              }
            },
          ]
        }
      },
    ]
  ]

  pipeline_rows = [
    {
      title = "Collection: episodes per minute by robot and outcome"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "$${metric.labels.robot} $${metric.labels.outcome}"
            plotType       = "STACKED_BAR"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "metric.type = \"${local.otel}/bp.collection.episodes\""
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
      title = "Collection: simulation real-time factor (p50 by robot; simulated s per wall s)"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "$${metric.labels.robot}"
            plotType       = "LINE"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "metric.type = \"${local.otel}/bp.collection.realtime_factor\""
                aggregation = merge(local.percentiles, {
                  crossSeriesReducer = "REDUCE_PERCENTILE_50"
                  groupByFields      = ["metric.label.robot"]
                })
              }
            }
          },
        ]
      }
    },
    {
      # The shards' backlog is what the GPU workers scale on (modules/collector): shards waiting
      # and shards being worked.
      title = "Collection backlog: shards waiting or being worked on ${local.shards_subscription}"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "shards"
            plotType       = "LINE"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter      = "${local.subscription_filter} AND resource.labels.subscription_id = \"${local.shards_subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
                aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
              }
            }
          },
        ]
      }
    },
    {
      title = "Import: frames written per second, by robot"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "$${metric.labels.robot}"
            plotType       = "STACKED_AREA"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter      = "metric.type = \"${local.otel}/bp.import.frames\""
                aggregation = merge(local.rate_by, { groupByFields = ["metric.label.robot"] })
              }
            }
          },
          {
            legendTemplate = "p50 while writing: $${metric.labels.robot}"
            plotType       = "LINE"
            targetAxis     = "Y2"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "metric.type = \"${local.otel}/bp.import.frame_rate\""
                aggregation = merge(local.percentiles, {
                  crossSeriesReducer = "REDUCE_PERCENTILE_50"
                  groupByFields      = ["metric.label.robot"]
                })
              }
            }
          },
        ]
      }
    },
    {
      title = "Import: quality pass rate (episodes included / assessed, hourly, by robot)"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "$${metric.labels.robot}"
            plotType       = "LINE"
            timeSeriesQuery = {
              timeSeriesFilterRatio = {
                numerator = {
                  filter      = "metric.type = \"${local.otel}/bp.import.episodes\" AND metric.labels.verdict = \"included\""
                  aggregation = merge(local.rate_by, { alignmentPeriod = "3600s", groupByFields = ["metric.label.robot"] })
                }
                denominator = {
                  filter      = "metric.type = \"${local.otel}/bp.import.episodes\""
                  aggregation = merge(local.rate_by, { alignmentPeriod = "3600s", groupByFields = ["metric.label.robot"] })
                }
              }
            }
          },
        ]
      }
    },
    {
      title = "Import: episodes excluded per hour by reason; datasets by gate verdict"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "excluded: $${metric.labels.reason}"
            plotType       = "STACKED_BAR"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "metric.type = \"${local.otel}/bp.import.excluded_episodes\""
                aggregation = {
                  alignmentPeriod    = "3600s"
                  perSeriesAligner   = "ALIGN_DELTA"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["metric.label.reason"]
                }
              }
            }
          },
          {
            legendTemplate = "datasets $${metric.labels.verdict}"
            plotType       = "LINE"
            targetAxis     = "Y2"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "metric.type = \"${local.otel}/bp.import.datasets\""
                aggregation = {
                  alignmentPeriod    = "3600s"
                  perSeriesAligner   = "ALIGN_DELTA"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["metric.label.verdict"]
                }
              }
            }
          },
        ]
      }
    },
    {
      title = "Upload: throughput (bytes/s sent; p50 per dataset)"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "sent"
            plotType       = "STACKED_AREA"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter      = "metric.type = \"${local.otel}/bp.upload.bytes\""
                aggregation = local.rate_by
              }
            }
          },
          {
            legendTemplate = "p50 per dataset"
            plotType       = "LINE"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter      = "metric.type = \"${local.otel}/bp.upload.throughput\""
                aggregation = merge(local.percentiles, { crossSeriesReducer = "REDUCE_PERCENTILE_50" })
              }
            }
          },
        ]
      }
    },
    {
      title = "Upload: verification failures per hour, by robot"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "$${metric.labels.robot}"
            plotType       = "STACKED_BAR"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "metric.type = \"${local.otel}/bp.upload.verification_failures\""
                aggregation = {
                  alignmentPeriod    = "3600s"
                  perSeriesAligner   = "ALIGN_DELTA"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["metric.label.robot"]
                }
              }
            }
          },
        ]
      }
    },
    {
      title = "Runs: scene upload to datasets published (s, p50 / p95)"
      xyChart = {
        thresholds = [{ value = var.run_latency_objective_seconds, color = "RED", direction = "ABOVE", label = "objective" }]
        dataSets = [
          for p in ["50", "95"] : {
            legendTemplate = "p${p}"
            plotType       = "LINE"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter      = "metric.type = \"${local.otel}/bp.run.duration\""
                aggregation = merge(local.percentiles, { alignmentPeriod = "3600s", crossSeriesReducer = "REDUCE_PERCENTILE_${p}" })
              }
            }
          }
        ]
      }
    },
    {
      title = "Permanent errors per hour by stage and type (from the logs)"
      xyChart = {
        dataSets = [
          {
            legendTemplate = "$${metric.labels.stage}: $${metric.labels.error_type}"
            plotType       = "STACKED_BAR"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "metric.type = \"${local.permanent_metric}\""
                aggregation = {
                  alignmentPeriod    = "3600s"
                  perSeriesAligner   = "ALIGN_DELTA"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["metric.label.stage", "metric.label.error_type"]
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
        content = "One row per stage: messages by outcome, handling time and work in flight, the age of the oldest unacknowledged message (a run the stage has not finished) and its dead letters. Then collection, import, upload and whole runs. Every metric is listed with its unit and labels in docs/observability.md. Alerts and what to do: ${var.runbook_url}."
      }
    },
  ]

  slo_alerts = {
    run_latency = google_monitoring_slo.run_latency
    deliveries  = google_monitoring_slo.deliveries
  }

  # Multi-window burn rates: a fast burn pages within the hour, a slow one within a day.
  burn_windows = {
    fast = { lookback = "3600s", rate = 14.4, severity = "CRITICAL" }
    slow = { lookback = "21600s", rate = 6, severity = "WARNING" }
  }
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

# Delivery logs a typed error with error_type (its class) and error_kind (permanent/transient).
resource "google_logging_metric" "permanent_errors" {
  project     = var.project_id
  name        = "bp_permanent_errors"
  description = "Permanent (dead-lettered) failures by stage and error type, from the services' JSON logs."
  filter      = "jsonPayload.error_kind=\"permanent\" AND jsonPayload.stage:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "BlueprintPipeline permanent errors"

    labels {
      key         = "stage"
      value_type  = "STRING"
      description = "Pipeline stage."
    }

    labels {
      key         = "error_type"
      value_type  = "STRING"
      description = "The error's class (InvalidInput, ExportMismatch...)."
    }
  }

  label_extractors = {
    stage      = "EXTRACT(jsonPayload.stage)"
    error_type = "EXTRACT(jsonPayload.error_type)"
  }
}

resource "google_monitoring_dashboard" "pipeline" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "BlueprintPipeline"
    gridLayout = {
      columns = "4"
      widgets = concat(flatten(local.stage_rows), local.pipeline_rows)
    }
  })
}

resource "google_monitoring_custom_service" "pipeline" {
  project      = var.project_id
  service_id   = "blueprint-pipeline"
  display_name = "BlueprintPipeline"
}

resource "google_monitoring_slo" "run_latency" {
  project             = var.project_id
  service             = google_monitoring_custom_service.pipeline.service_id
  slo_id              = "run-latency"
  display_name        = "${var.run_latency_goal * 100}% of runs published within ${var.run_latency_objective_seconds / 3600} h of the scene upload"
  goal                = var.run_latency_goal
  rolling_period_days = var.slo_period_days

  request_based_sli {
    distribution_cut {
      distribution_filter = "metric.type = \"${local.otel}/bp.run.duration\""
      range {
        max = var.run_latency_objective_seconds
      }
    }
  }
}

resource "google_monitoring_slo" "deliveries" {
  project             = var.project_id
  service             = google_monitoring_custom_service.pipeline.service_id
  slo_id              = "deliveries-not-dead-lettered"
  display_name        = "${var.delivery_goal * 100}% of deliveries end without a dead letter"
  goal                = var.delivery_goal
  rolling_period_days = var.slo_period_days

  request_based_sli {
    good_total_ratio {
      bad_service_filter   = "metric.type = \"${local.otel}/bp.dead_letters\""
      total_service_filter = "metric.type = \"${local.otel}/bp.stage.messages\""
    }
  }
}

resource "google_monitoring_alert_policy" "slo_burn" {
  for_each = {
    for pair in setproduct(keys(local.slo_alerts), keys(local.burn_windows)) :
    "${pair[0]}_${pair[1]}" => { slo = pair[0], window = pair[1] }
  }
  project               = var.project_id
  display_name          = "BlueprintPipeline: ${local.slo_alerts[each.value.slo].display_name} (${each.value.window} burn)"
  combiner              = "OR"
  severity              = local.burn_windows[each.value.window].severity
  notification_channels = var.notification_channels

  conditions {
    display_name = "error budget burning ${local.burn_windows[each.value.window].rate}x faster than the SLO allows over ${local.burn_windows[each.value.window].lookback}"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${local.slo_alerts[each.value.slo].name}\", \"${local.burn_windows[each.value.window].lookback}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = local.burn_windows[each.value.window].rate
      duration        = "0s"

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
    content   = "The SLO \"${local.slo_alerts[each.value.slo].display_name}\" is spending its error budget too fast. Runs too slow: look at the stage rows' handling time and oldest unacked message, and the collection backlog. Dead letters: `bp dlq list` and the permanent errors chart. Runbook: ${var.runbook_url}."
  }
}

resource "google_monitoring_alert_policy" "dead_letter_rate" {
  project               = var.project_id
  display_name          = "BlueprintPipeline: more than ${var.dead_letters_per_hour} dead letters per hour"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "dead letters sent over the last hour, all stages"
    condition_threshold {
      filter          = "metric.type = \"${local.otel}/bp.dead_letters\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.dead_letters_per_hour
      duration        = "0s"

      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "7200s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More runs than usual end in a dead letter: a bad release, a dependency down, or a batch of bad scenes. See the permanent errors chart and `bp dlq list`; fix, then `bp dlq replay`. Runbook: ${var.runbook_url}."
  }
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
    display_name = "transient and permanent failures above ${var.error_rate_threshold * 100}% of deliveries"
    condition_threshold {
      filter             = "metric.type = \"${local.otel}/bp.stage.messages\" AND metric.labels.outcome = one_of(\"transient\", \"permanent\")"
      denominator_filter = "metric.type = \"${local.otel}/bp.stage.messages\""
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
    content   = "Stage $${metric.label.stage} fails more than ${var.error_rate_threshold * 100}% of its deliveries. Read its error logs (`jsonPayload.stage=\"$${metric.label.stage}\" severity>=ERROR`, or the log-based `bp_stage_outcomes` if the metrics stopped) and `bp runs`. Runbook: ${var.runbook_url}."
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
    content   = "A run has not left a stage within its deadline: the stage keeps failing it without dead-lettering yet, or is crash-looping; for collect, a shard has been worked longer than its bound (no worker, or workers preempted over and over: see the collection backlog and `bp runs show`). Find the run with `bp runs` and the stage's logs. Runbook: ${var.runbook_url}."
  }
}
