# One pipeline stage: its runtime identity, its subscription with a dead-letter queue, and the
# Cloud Run resource that consumes it (a push service, or a worker pool for a pulling stage),
# unless its workers run elsewhere (the collector VMs, modules/collector, which run as this
# stage's runtime account).

locals {
  push = var.delivery == "push"
  pool = !local.push && !var.runs_elsewhere

  # Messages one instance takes at once, working or waiting for their unit's holder (decision
  # 0054): four per work slot unless given. Cloud Run's request concurrency is the same number.
  concurrency = coalesce(var.concurrency, 4 * var.work_slots)

  # The push token's audience; a fixed string so the service can be told it before its URL exists.
  push_audience = "https://bp-${var.stage}.push.${var.project_id}.blueprint-pipeline"

  # Settings' defaults (files under /secrets) are what this module mounts. BP_SECRETS_BACKEND and
  # BP_SECRETS_DIR are left unset: production's safety check reads any *SECRET* variable as a
  # leaked secret and would refuse to start.
  secrets_dir = "/secrets"

  base_env = {
    PIPELINE_ENV             = var.pipeline_env
    BP_STAGE                 = var.stage
    BP_PROJECT_ID            = var.project_id
    BP_DEAD_LETTER_TOPIC     = google_pubsub_topic.dead_letter.name
    BP_MAX_DELIVERY_ATTEMPTS = tostring(var.max_delivery_attempts)
    BP_ACK_DEADLINE_S        = tostring(var.ack_deadline_seconds)
    BP_LEASE_EXTENSION_S     = tostring(var.ack_deadline_seconds)
    # Deliveries that run the stage at once, and messages admitted (bp_common.runtime.limits).
    BP_WORK_SLOTS                = tostring(var.work_slots)
    BP_FLOW_CONTROL_MAX_MESSAGES = tostring(local.concurrency)
    BP_LEDGER_BACKEND            = "firestore"
    BP_REQUIRE_EMBEDDINGS        = "true"
  }

  push_env = {
    BP_PUSH_AUDIENCE        = local.push_audience
    BP_PUSH_SERVICE_ACCOUNT = one(google_service_account.push[*].email)
  }

  environment = merge(
    var.env, local.base_env, var.telemetry.env, { for k, v in local.push_env : k => v if local.push }
  )

  # The OpenTelemetry Collector sidecar (modules/telemetry): it gets the CPU and memory it needs
  # from the instance, reads its configuration from one variable and answers probes on health_port.
  collector_name = "otel-collector"

  runtime_member = "serviceAccount:${google_service_account.runtime.email}"

  project_roles = [
    "roles/datastore.user",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/cloudtrace.agent",
  ]
}

resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "bp-${var.stage}"
  display_name = "BlueprintPipeline ${var.stage} stage"
  description  = "Runtime identity of the ${var.stage} stage's workers; nothing else runs as it."
}

# Pub/Sub signs push requests as this account; it may invoke this one service and nothing else.
resource "google_service_account" "push" {
  count        = local.push ? 1 : 0
  project      = var.project_id
  account_id   = "bp-${var.stage}-push"
  display_name = "BlueprintPipeline ${var.stage} push identity"
  description  = "Identity in the OIDC token of the bp-${var.stage} push subscription."
}

resource "google_project_iam_member" "runtime" {
  for_each = toset(local.project_roles)
  project  = var.project_id
  role     = each.value
  member   = local.runtime_member
}

resource "google_storage_bucket_iam_member" "runtime" {
  for_each = var.bucket_roles
  bucket   = each.value.bucket
  role     = each.value.role
  member   = local.runtime_member

  dynamic "condition" {
    for_each = each.value.condition == null ? [] : [each.value.condition]
    content {
      title      = condition.value.title
      expression = condition.value.expression
    }
  }
}

resource "google_secret_manager_secret_iam_member" "runtime" {
  for_each  = toset(var.secrets)
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Dead letters are the pipeline's reference messages (ids, no scene or dataset bytes); Google-managed keys encrypt them at rest.
  project                    = var.project_id
  name                       = "bp-${var.stage}-dead-letter"
  message_retention_duration = var.message_retention
  labels                     = var.labels
}

resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "bp-${var.stage}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = var.message_retention
  labels                     = var.labels

  # Dead letters wait for a person: never let the subscription lapse for inactivity.
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "stage" {
  project                    = var.project_id
  name                       = "bp-${var.stage}"
  topic                      = "projects/${var.project_id}/topics/${var.consumes_topic}"
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "${var.minimum_backoff_seconds}s"
    maximum_backoff = "${var.maximum_backoff_seconds}s"
  }

  dynamic "push_config" {
    for_each = google_cloud_run_v2_service.push
    content {
      push_endpoint = "${push_config.value.uri}/push"

      oidc_token {
        service_account_email = google_service_account.push[0].email
        audience              = local.push_audience
      }
    }
  }

  depends_on = [
    google_pubsub_topic_iam_member.agent_publishes_dead_letters,
    google_service_account_iam_member.agent_signs_push_tokens,
  ]
}

# The Pub/Sub service agent forwards undeliverable messages: it publishes to the dead-letter
# topic and acknowledges them on the source subscription.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent}"
}

resource "google_pubsub_subscription_iam_member" "agent_acks_source" {
  project      = var.project_id
  subscription = google_pubsub_subscription.stage.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}

# Projects created before April 2021 need this for push tokens; scoped to the one push account.
resource "google_service_account_iam_member" "agent_signs_push_tokens" {
  count              = local.push ? 1 : 0
  service_account_id = google_service_account.push[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent}"
}

resource "google_pubsub_topic_iam_member" "runtime_publishes_result" {
  project = var.project_id
  topic   = var.produces_topic
  role    = "roles/pubsub.publisher"
  member  = local.runtime_member
}

# A stage dead-letters a permanently bad message itself (TopicDeadLetterSink), then acks it.
resource "google_pubsub_topic_iam_member" "runtime_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.runtime_member
}

# A delivery that waits too long for the holder of its unit is handed back as a fresh copy on
# the topic it came from (bp_common.runtime.sinks.TopicRedelivery).
resource "google_pubsub_topic_iam_member" "runtime_hands_back" {
  project = var.project_id
  topic   = var.consumes_topic
  role    = "roles/pubsub.publisher"
  member  = local.runtime_member
}

resource "google_pubsub_subscription_iam_member" "runtime_pulls" {
  count        = local.push ? 0 : 1
  project      = var.project_id
  subscription = google_pubsub_subscription.stage.name
  role         = "roles/pubsub.subscriber"
  member       = local.runtime_member
}

resource "google_cloud_run_v2_service" "push" {
  count               = local.push ? 1 : 0
  project             = var.project_id
  name                = "bp-${var.stage}"
  location            = var.region
  description         = "BlueprintPipeline ${var.stage} stage: Pub/Sub push endpoint at /push."
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  custom_audiences    = [local.push_audience]
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account                  = google_service_account.runtime.email
    timeout                          = "${min(var.request_timeout_seconds, var.ack_deadline_seconds)}s"
    max_instance_request_concurrency = local.concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    labels                           = var.labels

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      name       = "stage"
      image      = var.image
      depends_on = [local.collector_name]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # CPU between requests too: the sidecar exports metrics every minute, not only while a
        # push request happens to be running (decision 0040).
        cpu_idle          = false
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.environment
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "volume_mounts" {
        for_each = toset(var.secrets)
        content {
          name       = "secret-${volume_mounts.value}"
          mount_path = "${local.secrets_dir}/${volume_mounts.value}"
        }
      }

      startup_probe {
        period_seconds    = 5
        failure_threshold = 24
        http_get {
          path = "/readyz"
        }
      }

      liveness_probe {
        period_seconds = 30
        http_get {
          path = "/healthz"
        }
      }
    }

    containers {
      name  = local.collector_name
      image = var.telemetry.image
      args  = ["--config=env:OTELCOL_CONFIG"]

      env {
        name  = "OTELCOL_CONFIG"
        value = var.telemetry.config
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "256Mi"
        }
        cpu_idle = false
      }

      startup_probe {
        period_seconds    = 5
        failure_threshold = 12
        http_get {
          path = "/"
          port = var.telemetry.health_port
        }
      }
    }

    dynamic "volumes" {
      for_each = toset(var.secrets)
      content {
        name = "secret-${volumes.value}"
        secret {
          secret       = volumes.value
          default_mode = 292 # 0444: the image runs as a non-root user
          items {
            version = "latest"
            path    = "latest"
          }
        }
      }
    }

    dynamic "vpc_access" {
      for_each = var.vpc_subnetwork == null ? [] : [var.vpc_subnetwork]
      content {
        egress = "ALL_TRAFFIC"
        network_interfaces {
          network    = var.vpc_network
          subnetwork = vpc_access.value
          tags       = var.network_tags
        }
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.runtime]
}

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  count    = local.push ? 1 : 0
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.push[0].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push[0].email}"
}

# A pulling stage has no HTTP surface, so it runs as a worker pool: always-on CPU, no port.
resource "google_cloud_run_v2_worker_pool" "pull" {
  count               = local.pool ? 1 : 0
  project             = var.project_id
  name                = "bp-${var.stage}"
  location            = var.region
  description         = "BlueprintPipeline ${var.stage} stage: streaming pull on bp-${var.stage}."
  deletion_protection = var.deletion_protection
  labels              = var.labels

  scaling {
    scaling_mode          = "MANUAL"
    manual_instance_count = max(1, var.min_instances)
  }

  template {
    service_account = google_service_account.runtime.email
    labels          = var.labels

    containers {
      name       = "stage"
      image      = var.image
      depends_on = [local.collector_name]

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
      }

      dynamic "env" {
        for_each = local.environment
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "volume_mounts" {
        for_each = toset(var.secrets)
        content {
          name       = "secret-${volume_mounts.value}"
          mount_path = "${local.secrets_dir}/${volume_mounts.value}"
        }
      }
    }

    containers {
      name  = local.collector_name
      image = var.telemetry.image
      args  = ["--config=env:OTELCOL_CONFIG"]

      env {
        name  = "OTELCOL_CONFIG"
        value = var.telemetry.config
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "256Mi"
        }
      }

      startup_probe {
        period_seconds    = 5
        failure_threshold = 12
        http_get {
          path = "/"
          port = var.telemetry.health_port
        }
      }
    }

    dynamic "volumes" {
      for_each = toset(var.secrets)
      content {
        name = "secret-${volumes.value}"
        secret {
          secret       = volumes.value
          default_mode = 292 # 0444: the image runs as a non-root user
          items {
            version = "latest"
            path    = "latest"
          }
        }
      }
    }

    dynamic "vpc_access" {
      for_each = var.vpc_subnetwork == null ? [] : [var.vpc_subnetwork]
      content {
        egress = "ALL_TRAFFIC"
        network_interfaces {
          network    = var.vpc_network
          subnetwork = vpc_access.value
          tags       = var.network_tags
        }
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.runtime]
}
