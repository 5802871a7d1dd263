# The collection reconciler: `bp collector reconcile` as a Cloud Run job that Cloud Scheduler
# starts every few minutes. It reads the ledger and publishes shard messages again (a run whose
# last shard committed but whose episodes-collected never went out, shards no one works on);
# a run it nudges is healed by the workers' own delivery. Its own account, and a second one that
# may only start this job.

locals {
  member = "serviceAccount:${google_service_account.reconciler.email}"

  environment = merge(var.env, {
    PIPELINE_ENV      = var.pipeline_env
    BP_PROJECT_ID     = var.project_id
    BP_LEDGER_BACKEND = "firestore"
  })

  project_roles = [
    "roles/datastore.viewer",
    "roles/logging.logWriter",
  ]
}

resource "google_service_account" "reconciler" {
  project      = var.project_id
  account_id   = "bp-reconciler"
  display_name = "BlueprintPipeline collection reconciler"
  description  = "Identity of the bp-reconciler job: reads the ledger, publishes collection-shards."
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "bp-reconciler-trigger"
  display_name = "BlueprintPipeline reconciler schedule"
  description  = "Cloud Scheduler starts the bp-reconciler job as this account; it may do nothing else."
}

resource "google_project_iam_member" "reconciler" {
  for_each = toset(local.project_roles)
  project  = var.project_id
  role     = each.value
  member   = local.member
}

resource "google_pubsub_topic_iam_member" "reconciler_publishes_shards" {
  project = var.project_id
  topic   = var.shards_topic
  role    = "roles/pubsub.publisher"
  member  = local.member
}

resource "google_cloud_run_v2_job" "reconciler" {
  project             = var.project_id
  name                = "bp-reconciler"
  location            = var.region
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    labels      = var.labels
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.reconciler.email
      timeout         = "${var.timeout_seconds}s"
      # The next run comes within minutes; a failed one is not retried on top of it.
      max_retries = 0

      containers {
        image   = var.image
        command = ["bp"]
        args    = ["collector", "reconcile", "--stuck-after", tostring(var.stuck_after_seconds)]

        resources {
          limits = {
            cpu    = "1"
            memory = "512Mi"
          }
        }

        dynamic "env" {
          for_each = local.environment
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }
}

resource "google_cloud_run_v2_job_iam_member" "trigger_runs_job" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.reconciler.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_scheduler_job" "reconciler" {
  project          = var.project_id
  region           = var.region
  name             = "bp-reconciler"
  description      = "Starts the bp-reconciler Cloud Run job (bp collector reconcile)."
  schedule         = var.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/${google_cloud_run_v2_job.reconciler.id}:run"

    oauth_token {
      service_account_email = google_service_account.trigger.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.trigger_runs_job]
}
