output "push_services" {
  description = "HTTPS address of each push stage (internal ingress: Pub/Sub reaches them, the internet does not)."
  value       = { for name, s in module.stage : name => s.service_uri if s.service_uri != null }
}

output "dead_letter_subscriptions" {
  description = "Where dead letters wait, per stage (bp dlq list / replay)."
  value       = { for name, s in module.stage : name => s.dead_letter_subscription }
}

output "service_accounts" {
  description = "Runtime identity per stage (collect's is the collector VMs') and of the reconciler."
  value = merge(
    { for name, s in module.stage : name => s.service_account_email },
    { reconciler = module.reconciler.service_account_email },
  )
}

output "scenes_bucket" {
  description = "Drop scenes at gs://BUCKET/scenes/{scene_id}/scene.usda."
  value       = google_storage_bucket.scenes.name
}

output "datasets_bucket" {
  description = "Firebase Storage bucket with the published datasets."
  value       = google_storage_bucket.datasets.name
}

output "image_registry" {
  description = "Push the images here, tagged with var.image_tag."
  value       = local.registry
}

output "collectors" {
  description = "The collector workers' managed instance group: CPU VMs for mujoco, GPU VMs for genie-sim."
  value       = module.collector.instance_group
}

output "dashboard" {
  description = "The Cloud Monitoring dashboard."
  value       = module.monitoring.dashboard_id
}

output "status_page" {
  description = "The status page behind IAP (members in var.status_page_members)."
  value       = module.status.url
}
