# dev: the smallest that runs the whole system end to end (a few thousand events/s).
project_id = "streamrec-dev"
region     = "us-central1"
zones      = ["us-central1-a", "us-central1-b"]
env        = "dev"

gke_regional          = false
gke_node_machine_type = "e2-standard-4"
gke_node_max_count    = 3
gke_spot_nodes        = true

kafka_vcpu_count = 3
kafka_memory_gib = 12

aerospike_node_count      = 2
aerospike_machine_type    = "n2-highmem-4"
aerospike_local_ssd_count = 1

runner                     = "dataflow"
pipeline_image             = "us-central1-docker.pkg.dev/streamrec-dev/streamrec/pipeline:latest"
dataflow_template_gcs_path = "gs://streamrec-dev-streamrec-dev-pipeline/templates/streamrec-pipeline.json"
dataflow_machine_type      = "n2-standard-2"
dataflow_min_workers       = 1
dataflow_max_workers       = 3

serving_image        = "us-central1-docker.pkg.dev/streamrec-dev/streamrec/serving:latest"
serving_min_replicas = 2
serving_max_replicas = 4
