terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source = "hashicorp/google"
      # iap_enabled on Cloud Run services without the beta provider.
      version = ">= 7.21, < 8.0"
    }
  }
}
