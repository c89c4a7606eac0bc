output "kafka_bootstrap_servers" {
  description = "STREAMREC_KAFKA_BOOTSTRAP for every client in the VPC."
  value       = module.kafka.bootstrap_servers
}

output "aerospike_seeds" {
  description = "STREAMREC_AEROSPIKE_HOSTS: the Aerospike nodes' reserved IPs."
  value       = module.aerospike.seeds
}

output "store_url" {
  description = "STREAMREC_STORE for serving and the pipeline."
  value       = module.aerospike.store_url
}

output "service_url" {
  description = "Public URL of the feed service."
  value       = module.serving.service_url
}

output "jwt_secret" {
  description = "Secret Manager secret to add the JWT signing key to."
  value       = module.serving.jwt_secret_name
}

output "pipeline" {
  description = "Where the pipeline runs: runner, Dataflow job id or FlinkDeployment, bucket."
  value = {
    runner           = module.pipelines.runner
    dataflow_job_id  = module.pipelines.job_id
    flink_deployment = module.pipelines.flink_deployment
    bucket           = module.pipelines.bucket
  }
}

output "gke_cluster" {
  description = "GKE cluster name and location (gcloud container clusters get-credentials)."
  value       = { name = module.gke.cluster_name, location = module.gke.location }
}

output "kubernetes_api" {
  description = "Endpoint URL and decoded CA certificate of the GKE cluster, for the root's kubernetes provider."
  value = {
    host                   = "https://${module.gke.endpoint}"
    cluster_ca_certificate = base64decode(module.gke.ca_certificate)
  }
}
