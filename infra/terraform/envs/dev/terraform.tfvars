# dev: the smallest that runs the whole system end to end (a few thousand events/s).
# Fields and defaults: modules/streamrec/README.md.
project_id = "streamrec-dev"
region     = "us-central1"
zones      = ["us-central1-a", "us-central1-b"]
env        = "dev"

gke = {
  regional          = false
  node_machine_type = "e2-standard-4"
  node_max_count    = 3
  spot_nodes        = true
}

kafka = {
  vcpu_count = 3
  memory_gib = 12
}

aerospike = {
  node_count      = 2
  machine_type    = "n2-highmem-4"
  local_ssd_count = 1
}

pipeline = {
  runner                     = "dataflow"
  image                      = "us-central1-docker.pkg.dev/streamrec-dev/streamrec/pipeline:latest"
  dataflow_template_gcs_path = "gs://streamrec-dev-streamrec-dev-pipeline/templates/streamrec-pipeline.json"
  dataflow_machine_type      = "n2-standard-2"
  dataflow_min_workers       = 1
  dataflow_max_workers       = 3
}

serving = {
  image        = "us-central1-docker.pkg.dev/streamrec-dev/streamrec/serving:latest"
  domain       = "feed.dev.streamrec.example.com"
  min_replicas = 2
  max_replicas = 4
}
