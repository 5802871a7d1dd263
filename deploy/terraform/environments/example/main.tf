# The example environment: the whole pipeline in one project. Names of topics, subscriptions and
# dead letters follow bp_common.topology; tests/deploy/test_terraform.py holds the two together.

locals {
  topics = ["scene-uploads", "scenes-exported", "collection-shards", "episodes-collected", "datasets-ready", "datasets-published"]

  # work_slots: what cpu and memory hold for one delivery of the stage (its footprint in code:
  # export 1 cpu and 1 GiB, submit 0.25 cpu and 256 MiB, collect 1 cpu and 1.5 GB (its simulation
  # process), import 1 cpu and 2 GiB, upload 0.5 cpu and 512 MiB; three quarters of the memory
  # count); tests/deploy holds the two together. service: the image (bp-{service}) that runs it.
  # concurrency: messages an instance admits (null: four per slot); a shard worker admits only
  # what it works on, so a shard never waits in one worker's buffer while another sits idle.
  # collect runs on no Cloud Run resource but on the collector VMs (modules/collector): its cpu
  # and memory are the CPU variant's machine (cpu_collector_machine_type's default,
  # c2d-standard-8), and its work slots the shards one such VM takes; a GPU VM takes one.
  stages = {
    export  = { service = "export", consumes = "scene-uploads", produces = "scenes-exported", delivery = "push", ack_deadline = 600, cpu = "2", memory = "4Gi", work_slots = 2, concurrency = null }
    submit  = { service = "submit", consumes = "scenes-exported", produces = "collection-shards", delivery = "pull", ack_deadline = 60, cpu = "1", memory = "1Gi", work_slots = 3, concurrency = null }
    collect = { service = "collector", consumes = "collection-shards", produces = "episodes-collected", delivery = "pull", ack_deadline = 60, cpu = "8", memory = "32Gi", work_slots = 8, concurrency = 8 }
    import  = { service = "import", consumes = "episodes-collected", produces = "datasets-ready", delivery = "pull", ack_deadline = 60, cpu = "2", memory = "8Gi", work_slots = 2, concurrency = null }
    upload  = { service = "upload", consumes = "datasets-ready", produces = "datasets-published", delivery = "push", ack_deadline = 600, cpu = "2", memory = "2Gi", work_slots = 3, concurrency = null }
  }

  # Who reads which secret. These are the only accessor grants Terraform makes. Nothing dials
  # the gRPC collector in the cloud (submit publishes shards), so no collector certificate is
  # deployed, and collector workers hold no secret at all.
  stage_secrets = {
    export  = []
    submit  = []
    collect = []
    import  = []
    upload  = ["firebase-service-account"]
  }
  secrets = toset(flatten(values(local.stage_secrets)))

  # Objects of the pipeline bucket as IAM conditions name them.
  scenes_objects = "projects/_/buckets/${google_storage_bucket.scenes.name}/objects/"

  # The collect stage's account, which the collector VMs run as (issue 11, decision 0104): the
  # workers read a run's export and its episodes, and create objects under
  # runs/{scene}/{run}/episodes/ only. objectCreator holds no delete, so a
  # committed episode, shard or manifest can never be overwritten by a worker; nor can a worker
  # list the bucket or read scenes, imports or datasets.
  collector_bucket_roles = {
    read_exports_and_episodes = {
      bucket = google_storage_bucket.scenes.name
      role   = "roles/storage.objectViewer"
      condition = {
        title      = "run exports and episodes"
        expression = "resource.name.startsWith(\"${local.scenes_objects}runs/\") && (resource.name.extract(\"/objects/runs/{run}/export/\") != \"\" || resource.name.extract(\"/objects/runs/{run}/episodes/\") != \"\")"
      }
    }
    create_episodes = {
      bucket = google_storage_bucket.scenes.name
      role   = "roles/storage.objectCreator"
      condition = {
        title      = "run episodes, create only"
        expression = "resource.name.startsWith(\"${local.scenes_objects}runs/\") && resource.name.extract(\"/objects/runs/{run}/episodes/\") != \"\""
      }
    }
  }

  stage_bucket_roles = {
    export  = { scenes = { bucket = google_storage_bucket.scenes.name, role = "roles/storage.objectUser", condition = null } }
    submit  = { scenes = { bucket = google_storage_bucket.scenes.name, role = "roles/storage.objectUser", condition = null } }
    collect = local.collector_bucket_roles
    import  = { scenes = { bucket = google_storage_bucket.scenes.name, role = "roles/storage.objectUser", condition = null } }
    upload  = { scenes = { bucket = google_storage_bucket.scenes.name, role = "roles/storage.objectViewer", condition = null } }
  }

  # The shards ask for one simulator, and a worker refuses shards for another: submit and every
  # collector worker read the same BP_COLLECTOR_BACKEND, and only that backend's workers run.
  stage_extra_env = {
    export  = {}
    submit  = { BP_COLLECTOR_BACKEND = var.collector_backend }
    collect = { BP_COLLECTOR_BACKEND = var.collector_backend }
    import  = {}
    upload  = {}
  }

  # The collector workers' variant for each backend (modules/collector): the group runs the
  # chosen backend's, and no other collect worker runs anywhere.
  collector_variants = {
    mujoco = {
      machine_type        = var.cpu_collector_machine_type
      max_instances       = var.cpu_collectors_max
      shards_per_instance = local.stages.collect.work_slots
    }
    "genie-sim" = {
      machine_type        = var.gpu_collector_machine_type
      max_instances       = var.gpu_collectors_max
      shards_per_instance = 1
    }
  }
  collector = local.collector_variants[var.collector_backend]

  common_env = {
    BP_BUCKET          = google_storage_bucket.scenes.name
    BP_FIREBASE_BUCKET = google_storage_bucket.datasets.name
    # The ledger stamps an ended run's expire_at this far ahead; Firestore's TTL policy reads it.
    BP_RETENTION_DAYS = tostring(var.run_retention_days)
  }

  # The raw episode format's files (libs/episode-format): what the raw-episode rule matches under
  # runs/. Cloud Storage matches a name's start and end only, never a folder in between; the
  # pipeline bucket's copy of an imported dataset's ground truth shares the two .mkv names and so
  # goes with the raw episodes (decision 0077). The published copy lives in the datasets bucket.
  raw_episode_files = ["/episode.json", "/states.npz", "/rgb.mp4", "/depth.mkv", "/segmentation.mkv"]

  registry = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"

  labels = {
    system      = "blueprint-pipeline"
    environment = var.pipeline_env
  }

  apis = toset([
    "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtrace.googleapis.com",
    "compute.googleapis.com",
    "dns.googleapis.com",
    "firebase.googleapis.com",
    "firebasestorage.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iap.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "apis" {
  for_each           = local.apis
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_project_service_identity" "pubsub" {
  provider   = google-beta
  project    = var.project_id
  service    = "pubsub.googleapis.com"
  depends_on = [google_project_service.apis]
}

# IAP invokes the status page as this agent.
resource "google_project_service_identity" "iap" {
  provider   = google-beta
  project    = var.project_id
  service    = "iap.googleapis.com"
  depends_on = [google_project_service.apis]
}

data "google_storage_project_service_account" "gcs" {
  project    = var.project_id
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "pipeline" {
  #checkov:skip=CKV_GCP_83:Messages carry references (bucket, object, run ids), never scene or dataset bytes; Google-managed keys encrypt them at rest.
  for_each                   = toset(local.topics)
  project                    = var.project_id
  name                       = each.value
  message_retention_duration = "604800s"
  labels                     = local.labels
  depends_on                 = [google_project_service.apis]
}

resource "google_storage_bucket" "scenes" {
  project                     = var.project_id
  name                        = var.scenes_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  # Retention (decision 0077): raw episodes, then every run artefact, by age under runs/. The
  # scenes users drop (scenes/) are never matched, nor anything in the datasets bucket.
  lifecycle_rule {
    condition {
      age            = var.raw_episode_retention_days
      matches_prefix = ["runs/"]
      matches_suffix = local.raw_episode_files
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.run_retention_days
      matches_prefix = ["runs/"]
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  depends_on = [google_project_service.apis]
}

# Access logs of the two data buckets.
resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This is the access-log sink; logging it into itself or a third bucket adds nothing.
  project                     = var.project_id
  name                        = "${var.scenes_bucket}-access-logs"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# Cloud Storage writes the usage logs as this group.
resource "google_storage_bucket_iam_member" "access_log_writer" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}

# OBJECT_FINALIZE under scenes/ becomes a SceneUpload on scene-uploads.
resource "google_pubsub_topic_iam_member" "gcs_publishes_scene_uploads" {
  project = var.project_id
  topic   = google_pubsub_topic.pipeline["scene-uploads"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "scene_uploads" {
  bucket             = google_storage_bucket.scenes.name
  topic              = google_pubsub_topic.pipeline["scene-uploads"].id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = "scenes/"
  depends_on         = [google_pubsub_topic_iam_member.gcs_publishes_scene_uploads]
}

resource "google_firebase_project" "pipeline" {
  provider   = google-beta
  project    = var.project_id
  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "datasets" {
  project                     = var.project_id
  name                        = var.datasets_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  depends_on = [google_project_service.apis]
}

resource "google_firebase_storage_bucket" "datasets" {
  provider   = google-beta
  project    = var.project_id
  bucket_id  = google_storage_bucket.datasets.name
  depends_on = [google_firebase_project.pipeline]
}

# The upload stage publishes with the Firebase key from its secret; that identity may write
# this one bucket.
resource "google_storage_bucket_iam_member" "firebase_publisher" {
  count  = var.firebase_service_account_email == null ? 0 : 1
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${var.firebase_service_account_email}"
}

resource "google_firestore_database" "ledger" {
  project                           = var.project_id
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"
  depends_on                        = [google_project_service.apis]
}

# FirestoreLedgerStore.scan(scene_id=...) orders a scene's runs by updated_at.
resource "google_firestore_index" "runs_by_scene" {
  project     = var.project_id
  database    = google_firestore_database.ledger.name
  collection  = "runs"
  query_scope = "COLLECTION"

  fields {
    field_path = "scene_id"
    order      = "ASCENDING"
  }

  fields {
    field_path = "updated_at"
    order      = "DESCENDING"
  }
}

# Retention of ledger entries: the ledger sets expire_at when a run ends (BP_RETENTION_DAYS
# ahead, as a timestamp); Firestore deletes the run's document once it has passed.
resource "google_firestore_field" "runs_expire_at" {
  project    = var.project_id
  database   = google_firestore_database.ledger.name
  collection = "runs"
  field      = "expire_at"

  ttl_config {}

  # A TTL field needs no query index.
  index_config {}
}

# Content claims (identical re-drops) expire after the same retention, counted from the claim,
# so that content whose run is gone runs again when dropped again.
resource "google_firestore_field" "contents_expire_at" {
  project    = var.project_id
  database   = google_firestore_database.ledger.name
  collection = "runs_contents"
  field      = "expire_at"

  ttl_config {}

  index_config {}
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Images hold our code and no data or secrets; Google-managed keys encrypt them at rest.
  project       = var.project_id
  location      = var.region
  repository_id = "blueprint-pipeline"
  format        = "DOCKER"
  description   = "Images of the four stages, the collector and the mirrored Genie Sim server."
  labels        = local.labels

  docker_config {
    immutable_tags = true
  }

  depends_on = [google_project_service.apis]
}

# Secrets hold no value in Terraform: versions are added with gcloud (docs/operations.md).
resource "google_secret_manager_secret" "pipeline" {
  for_each  = local.secrets
  project   = var.project_id
  secret_id = each.value
  labels    = local.labels

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.apis]
}

module "network" {
  source     = "../../modules/network"
  project_id = var.project_id
  region     = var.region
  depends_on = [google_project_service.apis]
}

module "telemetry" {
  source     = "../../modules/telemetry"
  project_id = var.project_id
}

module "stage" {
  source   = "../../modules/stage"
  for_each = local.stages

  project_id           = var.project_id
  region               = var.region
  stage                = each.key
  delivery             = each.value.delivery
  consumes_topic       = google_pubsub_topic.pipeline[each.value.consumes].name
  produces_topic       = google_pubsub_topic.pipeline[each.value.produces].name
  image                = "${local.registry}/bp-${each.value.service}:${var.image_tag}"
  pipeline_env         = var.pipeline_env
  env                  = merge(local.common_env, local.stage_extra_env[each.key])
  secrets              = [for s in local.stage_secrets[each.key] : google_secret_manager_secret.pipeline[s].secret_id]
  bucket_roles         = local.stage_bucket_roles[each.key]
  pubsub_service_agent = google_project_service_identity.pubsub.email

  telemetry = {
    image       = module.telemetry.image
    config      = module.telemetry.config
    health_port = module.telemetry.health_port
    env         = module.telemetry.app_env
  }

  max_delivery_attempts = var.max_delivery_attempts
  ack_deadline_seconds  = each.value.ack_deadline
  cpu                   = each.value.cpu
  memory                = each.value.memory
  work_slots            = each.value.work_slots
  concurrency           = each.value.concurrency
  min_instances         = each.value.delivery == "pull" ? 1 : 0
  # Shards are worked by the collector VMs (module.collector) alone, never a Cloud Run pool.
  runs_elsewhere      = each.key == "collect"
  network_tags        = ["bp-${each.key}"]
  deletion_protection = var.deletion_protection
  labels              = local.labels

  depends_on = [google_project_service.apis, google_firestore_database.ledger]
}

# The collector workers on the collect stage's subscription, scaled on its backlog from none up
# to the variant's maximum: CPU VMs for mujoco, GPU VMs beside Genie Sim for genie-sim.
module "collector" {
  source = "../../modules/collector"

  project_id          = var.project_id
  region              = var.region
  zones               = var.collector_zones
  subnetwork          = module.network.subnetwork
  backend             = var.collector_backend
  collector_image     = "${local.registry}/bp-collector:${var.image_tag}"
  genie_sim_image     = var.genie_sim_image
  machine_type        = local.collector.machine_type
  max_instances       = local.collector.max_instances
  shards_per_instance = local.collector.shards_per_instance
  spot                = var.collector_spot
  labels              = local.labels

  # The collect stage's own environment (its dead letters, delivery limits, telemetry); the
  # module adds the variant's: the backend, its shards per VM, and Genie Sim's address.
  env = module.stage["collect"].environment

  # The VMs are the collect stage's workers and run as its account, with its grants: one
  # identity, one copy of the workers' permissions.
  service_account_email = module.stage["collect"].service_account_email
  subscription          = module.stage["collect"].subscription

  telemetry = {
    image  = module.telemetry.image
    config = module.telemetry.config
  }

  artifact_registry_repository = {
    location = google_artifact_registry_repository.images.location
    name     = google_artifact_registry_repository.images.repository_id
  }

  depends_on = [google_project_service.apis]
}

# `bp collector reconcile` every few minutes: heals a run whose last shard committed but whose
# episodes-collected never went out, and sends again shards that no one works on.
module "reconciler" {
  source = "../../modules/reconciler"

  project_id          = var.project_id
  region              = var.region
  image               = "${local.registry}/bp-collector:${var.image_tag}"
  pipeline_env        = var.pipeline_env
  shards_topic        = google_pubsub_topic.pipeline["collection-shards"].name
  stuck_after_seconds = var.shard_stuck_after_seconds
  env                 = { BP_BUCKET = google_storage_bucket.scenes.name }
  deletion_protection = var.deletion_protection
  labels              = local.labels
  depends_on          = [google_project_service.apis, google_firestore_database.ledger]
}

resource "google_monitoring_notification_channel" "email" {
  count        = var.alert_email == null ? 0 : 1
  project      = var.project_id
  display_name = "BlueprintPipeline on-call"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
}

module "monitoring" {
  source     = "../../modules/monitoring"
  project_id = var.project_id

  stages = {
    for name, s in local.stages : name => {
      subscription             = module.stage[name].subscription
      dead_letter_subscription = module.stage[name].dead_letter_subscription
      push                     = s.delivery == "push"
      stuck_after_seconds      = var.stuck_after_seconds[name]
    }
  }

  otel_metric_prefix    = module.telemetry.metric_prefix
  notification_channels = google_monitoring_notification_channel.email[*].id
  depends_on            = [google_project_service.apis]
}

module "status" {
  source = "../../modules/status"

  project_id                = var.project_id
  region                    = var.region
  image                     = "${local.registry}/bp-ops:${var.image_tag}"
  pipeline_env              = var.pipeline_env
  bucket                    = google_storage_bucket.scenes.name
  dead_letter_subscriptions = [for name in keys(local.stages) : module.stage[name].dead_letter_subscription]
  replay_topics             = [for s in values(local.stages) : google_pubsub_topic.pipeline[s.consumes].name]
  members                   = var.status_page_members
  iap_service_agent         = google_project_service_identity.iap.email
  deletion_protection       = var.deletion_protection
  labels                    = local.labels
  depends_on                = [google_project_service.apis, google_firestore_database.ledger]
}
