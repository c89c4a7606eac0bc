# An environment root: providers, the inputs terraform.tfvars sets, and one call of
# modules/streamrec, which composes everything. envs/dev/main.tf and envs/prod/main.tf are the
# same file (tests/infra checks it); an environment differs only in backend.tf and terraform.tfvars.
# Provider version constraints are in modules/streamrec/versions.tf; `terraform init` pins them
# per environment in .terraform.lock.hcl.

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}

# The Kubernetes resources (serving, Flink, PodMonitoring) talk to the cluster this same
# configuration creates, so a fresh environment is applied in two steps (infra/terraform/README.md).
provider "kubernetes" {
  host                   = module.streamrec.kubernetes_api.host
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = module.streamrec.kubernetes_api.cluster_ca_certificate
}

module "streamrec" {
  source = "../../modules/streamrec"

  project_id              = var.project_id
  env                     = var.env
  region                  = var.region
  zones                   = var.zones
  master_authorized_cidrs = var.master_authorized_cidrs
  notification_channels   = var.notification_channels
  gke                     = var.gke
  kafka                   = var.kafka
  aerospike               = var.aerospike
  pipeline                = var.pipeline
  serving                 = var.serving
}

# --- inputs: set in terraform.tfvars; null = the module's default ------------------------------
# Types, defaults and the meaning of each field are declared once, in modules/streamrec
# (variables.tf, README.md); a wrong value fails there, naming the field.

variable "project_id" {
  type        = string
  description = "Google Cloud project of the environment."
}

variable "env" {
  type        = string
  description = "Environment name, part of every resource name (streamrec-<env>)."
}

variable "region" {
  type        = string
  description = "Region of every resource, and the providers' default region (so no default here)."
}

variable "zones" {
  type        = list(string)
  description = "Zones for Aerospike racks (and GKE nodes when gke.regional)."
  default     = null
}

variable "master_authorized_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the Kubernetes API (where terraform runs)."
  default     = null
}

variable "notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channels for the alerts."
  default     = null
}

variable "gke" {
  type        = any
  description = "GKE cluster settings: modules/streamrec variable gke."
  default     = null
}

variable "kafka" {
  type        = any
  description = "Managed Kafka size: modules/streamrec variable kafka."
  default     = null
}

variable "aerospike" {
  type        = any
  description = "Aerospike cluster settings: modules/streamrec variable aerospike."
  default     = null
}

variable "pipeline" {
  type        = any
  description = "Pipeline runner, images and workers: modules/streamrec variable pipeline."
}

variable "serving" {
  type        = any
  description = "Feed service image and replicas: modules/streamrec variable serving."
}

# --- outputs: what the application and the operator need ----------------------------------------

output "kafka_bootstrap_servers" {
  description = "STREAMREC_KAFKA_BOOTSTRAP for every client in the VPC."
  value       = module.streamrec.kafka_bootstrap_servers
}

output "aerospike_seeds" {
  description = "STREAMREC_AEROSPIKE_HOSTS: the Aerospike nodes' reserved IPs."
  value       = module.streamrec.aerospike_seeds
}

output "store_url" {
  description = "STREAMREC_STORE for serving and the pipeline."
  value       = module.streamrec.store_url
}

output "service_url" {
  description = "Public URL of the feed service."
  value       = module.streamrec.service_url
}

output "jwt_secret" {
  description = "Secret Manager secret to add the JWT signing key to."
  value       = module.streamrec.jwt_secret
}

output "pipeline" {
  description = "Where the pipeline runs: runner, Dataflow job id or FlinkDeployment, bucket."
  value       = module.streamrec.pipeline
}

output "gke_cluster" {
  description = "GKE cluster name and location (gcloud container clusters get-credentials)."
  value       = module.streamrec.gke_cluster
}
