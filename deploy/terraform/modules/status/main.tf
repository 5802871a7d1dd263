# The status page (`bp status serve`, the bp-ops image) on Cloud Run behind IAP: IAP signs each
# caller in and checks `members`, then invokes the service as its own service agent; the page
# trusts it (BP_STATUS_PLATFORM_AUTH) and still demands its CSRF token on every POST. It runs as
# an account of its own that may read the ledger, the bucket's quality reports and the
# dead-letter queues, and publish replays to the topics the stages consume.

locals {
  member = "serviceAccount:${google_service_account.status.email}"

  environment = {
    PIPELINE_ENV            = var.pipeline_env
    BP_PROJECT_ID           = var.project_id
    BP_LEDGER_BACKEND       = "firestore"
    BP_BUCKET               = var.bucket
    BP_STATUS_PLATFORM_AUTH = "true"
  }
}

resource "google_service_account" "status" {
  project      = var.project_id
  account_id   = "bp-status"
  display_name = "BlueprintPipeline status page"
  description  = "Runs the status page: reads runs, reports and dead letters; replays and purges dead letters."
}

resource "google_project_iam_member" "status" {
  for_each = toset(["roles/datastore.viewer", "roles/logging.logWriter"])
  project  = var.project_id
  role     = each.value
  member   = local.member
}

resource "google_storage_bucket_iam_member" "reports" {
  bucket = var.bucket
  role   = "roles/storage.objectViewer"
  member = local.member
}

# Counting, replaying and purging dead letters pulls them from these subscriptions.
resource "google_pubsub_subscription_iam_member" "dead_letters" {
  for_each     = toset(var.dead_letter_subscriptions)
  project      = var.project_id
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = local.member
}

# A replay re-publishes to the topic the dead letter's stage consumes.
resource "google_pubsub_topic_iam_member" "replays" {
  for_each = toset(var.replay_topics)
  project  = var.project_id
  topic    = each.value
  role     = "roles/pubsub.publisher"
  member   = local.member
}

resource "google_cloud_run_v2_service" "status" {
  project             = var.project_id
  name                = "bp-status"
  location            = var.region
  description         = "BlueprintPipeline status page, behind IAP."
  ingress             = "INGRESS_TRAFFIC_ALL"
  iap_enabled         = true
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account = google_service_account.status.email
    labels          = var.labels

    # One instance: the CSRF key lives in the process, so a token must come back to it.
    scaling {
      min_instance_count = 0
      max_instance_count = 1
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle = true
      }

      dynamic "env" {
        for_each = local.environment
        content {
          name  = env.key
          value = env.value
        }
      }

      startup_probe {
        period_seconds    = 5
        failure_threshold = 12
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [
    google_project_iam_member.status,
    google_pubsub_subscription_iam_member.dead_letters,
  ]
}

# IAP calls the service as its service agent once a caller passed its check; nobody else may.
resource "google_cloud_run_v2_service_iam_member" "iap_invokes" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.status.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.iap_service_agent}"
}

resource "google_iap_web_cloud_run_service_iam_member" "operators" {
  for_each               = toset(var.members)
  project                = var.project_id
  location               = var.region
  cloud_run_service_name = google_cloud_run_v2_service.status.name
  role                   = "roles/iap.httpsResourceAccessor"
  member                 = each.value
}
