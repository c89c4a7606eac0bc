# streamrec on Google Cloud, composed once: each component module's outputs feed the next one's
# inputs. The environment roots (envs/dev, envs/prod) call this module with their tfvars and
# configure the providers; nothing here differs between environments except through variables.

locals {
  name   = "streamrec-${var.env}"
  labels = { app = "streamrec", env = var.env }
}

module "network" {
  source = "../network"

  project_id = var.project_id
  region     = var.region
  name       = local.name

  # Dataflow workers reach Aerospike as the pipeline service account; GKE pods by the pods range.
  aerospike_client_service_accounts = [module.pipelines.service_account_email]
}

module "kafka" {
  source = "../kafka"

  project_id = var.project_id
  region     = var.region
  cluster_id = local.name
  subnet_id  = module.network.subnet_id
  vcpu_count = var.kafka.vcpu_count
  memory_gib = var.kafka.memory_gib
  labels     = local.labels
}

module "aerospike" {
  source = "../aerospike"

  project_id      = var.project_id
  region          = var.region
  zones           = var.zones
  name            = "${local.name}-aerospike"
  subnet_id       = module.network.subnet_id
  network_tag     = module.network.aerospike_tag
  node_count      = var.aerospike.node_count
  machine_type    = var.aerospike.machine_type
  local_ssd_count = var.aerospike.local_ssd_count
  image           = var.aerospike.image
  package_url     = var.aerospike.package_url
  labels          = local.labels
}

module "gke" {
  source = "../gke"

  project_id              = var.project_id
  location                = var.gke.regional ? var.region : var.zones[0]
  name                    = local.name
  network_id              = module.network.network_id
  subnet_id               = module.network.subnet_id
  pods_range_name         = module.network.pods_range_name
  services_range_name     = module.network.services_range_name
  master_authorized_cidrs = var.master_authorized_cidrs
  node_machine_type       = var.gke.node_machine_type
  node_max_count          = var.gke.node_max_count
  spot_nodes              = var.gke.spot_nodes
  deletion_protection     = var.env == "prod"
}

module "pipelines" {
  source = "../pipelines"

  project_id      = var.project_id
  region          = var.region
  name            = local.name
  runner          = var.pipeline.runner
  pipeline_image  = var.pipeline.image
  kafka_bootstrap = module.kafka.bootstrap_servers
  store_url       = module.aerospike.store_url
  subnet_id       = module.network.subnet_id
  network_tag     = module.network.dataflow_tag

  dataflow_template_gcs_path = var.pipeline.dataflow_template_gcs_path
  dataflow_machine_type      = var.pipeline.dataflow_machine_type
  dataflow_min_workers       = var.pipeline.dataflow_min_workers
  dataflow_max_workers       = var.pipeline.dataflow_max_workers

  workload_pool      = module.gke.workload_pool
  jar_builder_image  = var.pipeline.jar_builder_image
  flink_parallelism  = var.pipeline.flink_parallelism
  flink_taskmanagers = var.pipeline.flink_taskmanagers
  flink_job          = var.pipeline.flink_job
  pyflink_image      = var.pipeline.pyflink_image
}

module "serving" {
  source = "../serving"

  project_id              = var.project_id
  region                  = var.region
  name                    = local.name
  workload_pool           = module.gke.workload_pool
  image                   = var.serving.image
  domain                  = var.serving.domain
  kafka_bootstrap         = module.kafka.bootstrap_servers
  store_url               = module.aerospike.store_url
  min_replicas            = var.serving.min_replicas
  max_replicas            = var.serving.max_replicas
  requests_per_pod_target = var.serving.requests_per_pod_target
}

module "observability" {
  source = "../observability"

  project_id            = var.project_id
  name                  = local.name
  notification_channels = var.notification_channels
  serving_namespace     = module.serving.namespace
  serving_pod_labels    = module.serving.pod_labels
  serving_metrics_port  = module.serving.metrics_port_name
  runner                = module.pipelines.runner
  dataflow_job_name     = "${local.name}-pipeline"
}
