output "runner" {
  description = "The runner in use: dataflow or flink."
  value       = var.runner
}

output "job_id" {
  description = "Dataflow job id (runner = dataflow), else null."
  value       = local.use_dataflow ? google_dataflow_flex_template_job.pipeline[0].job_id : null
}

output "flink_deployment" {
  description = "namespace/name of the FlinkDeployment (runner = flink), else null."
  value       = local.use_pyflink ? "${var.flink_namespace}/streamrec-flink-job" : (local.use_flink ? "${var.flink_namespace}/streamrec-pipeline" : null)
}

output "service_account_email" {
  description = "Google service account the pipeline workers run as (Aerospike firewall source)."
  value       = google_service_account.pipeline.email
}

output "bucket" {
  description = "Bucket for Dataflow temp/staging and Flink checkpoints/savepoints."
  value       = google_storage_bucket.pipeline.name
}

output "pipeline_options" {
  description = "The options both runners pass to pipelines.main (without runner-specific ones)."
  value       = local.pipeline_options
}
