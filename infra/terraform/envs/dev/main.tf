# An environment: the modules composed, each output feeding the next one's inputs.

locals {
  name   = "streamrec-${var.env}"
  labels = { app = "streamrec", env = var.env }
}

module "network" {
  source = "../../modules/network"

  project_id = var.project_id
  region     = var.region
  name       = local.name

  # Dataflow workers reach Aerospike as the pipeline service account; GKE pods by the pods range.
  aerospike_client_service_accounts = [module.pipelines.service_account_email]
}

module "kafka" {
  source = "../../modules/kafka"

  project_id = var.project_id
  region     = var.region
  cluster_id = local.name
  subnet_id  = module.network.subnet_id
  vcpu_count = var.kafka_vcpu_count
  memory_gib = var.kafka_memory_gib
  labels     = local.labels
}

module "aerospike" {
  source = "../../modules/aerospike"

  project_id      = var.project_id
  region          = var.region
  zones           = var.zones
  name            = "${local.name}-aerospike"
  subnet_id       = module.network.subnet_id
  network_tag     = module.network.aerospike_tag
  node_count      = var.aerospike_node_count
  machine_type    = var.aerospike_machine_type
  local_ssd_count = var.aerospike_local_ssd_count
  image           = var.aerospike_image
  package_url     = var.aerospike_package_url
  labels          = local.labels
}

module "gke" {
  source = "../../modules/gke"

  project_id              = var.project_id
  location                = var.gke_regional ? var.region : var.zones[0]
  name                    = local.name
  network_id              = module.network.network_id
  subnet_id               = module.network.subnet_id
  pods_range_name         = module.network.pods_range_name
  services_range_name     = module.network.services_range_name
  master_authorized_cidrs = var.master_authorized_cidrs
  node_machine_type       = var.gke_node_machine_type
  node_max_count          = var.gke_node_max_count
  spot_nodes              = var.gke_spot_nodes
  deletion_protection     = var.env == "prod"
}

module "pipelines" {
  source = "../../modules/pipelines"

  project_id      = var.project_id
  region          = var.region
  name            = local.name
  runner          = var.runner
  pipeline_image  = var.pipeline_image
  kafka_bootstrap = module.kafka.bootstrap_servers
  store_url       = module.aerospike.store_url
  subnet_id       = module.network.subnet_id
  network_tag     = module.network.dataflow_tag

  dataflow_template_gcs_path = var.dataflow_template_gcs_path
  dataflow_machine_type      = var.dataflow_machine_type
  dataflow_min_workers       = var.dataflow_min_workers
  dataflow_max_workers       = var.dataflow_max_workers

  workload_pool      = module.gke.workload_pool
  jar_builder_image  = var.jar_builder_image
  flink_parallelism  = var.flink_parallelism
  flink_taskmanagers = var.flink_taskmanagers
}

module "serving" {
  source = "../../modules/serving"

  project_id              = var.project_id
  region                  = var.region
  name                    = local.name
  workload_pool           = module.gke.workload_pool
  image                   = var.serving_image
  kafka_bootstrap         = module.kafka.bootstrap_servers
  store_url               = module.aerospike.store_url
  min_replicas            = var.serving_min_replicas
  max_replicas            = var.serving_max_replicas
  requests_per_pod_target = var.serving_requests_per_pod_target
}

module "observability" {
  source = "../../modules/observability"

  project_id            = var.project_id
  name                  = local.name
  notification_channels = var.notification_channels
  serving_namespace     = module.serving.namespace
  serving_pod_labels    = module.serving.pod_labels
  serving_metrics_port  = module.serving.metrics_port_name
  runner                = module.pipelines.runner
  dataflow_job_name     = "${local.name}-pipeline"
}
