variable "project_id" {
  description = "Project that holds the network."
  type        = string
}

variable "region" {
  description = "Region of the subnetwork."
  type        = string
}

variable "name" {
  description = "Network name; the subnetwork is named {name}-{region}."
  type        = string
  default     = "bp-pipeline"
}

variable "cidr" {
  description = "Primary range: the collector VMs and the worker pool's Direct VPC egress addresses (at least a /26)."
  type        = string
  default     = "10.20.0.0/20"
}
