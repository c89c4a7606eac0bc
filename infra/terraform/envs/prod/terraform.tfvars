# prod: sized for the capacity model (300 M profiles, 1 M titles, 1 M events/s); the arithmetic
# and its assumptions are in infra/terraform/README.md ("Cost at the capacity model's scale").
project_id = "streamrec-prod"
region     = "us-central1"
zones      = ["us-central1-a", "us-central1-b", "us-central1-c"]
env        = "prod"

master_authorized_cidrs = ["203.0.113.0/24"] # the CI runners' egress range (placeholder)

gke_regional          = true
gke_node_machine_type = "n2-standard-8"
gke_node_max_count    = 10
gke_spot_nodes        = false

# ~190 MiB/s produced (events + impressions) at 1 vCPU per 20 MiB/s and 50% headroom.
kafka_vcpu_count = 24
kafka_memory_gib = 96

# docs/capacity.md: SSD write bandwidth for user records binds (7.4 GB/s for the typical profile
# mix, RF 2, defrag). One node = 24 local NVMe SSDs (~4.7 GB/s writes, planned at 50%): 4 nodes
# + 1 for a node loss, rounded up to 2 per zone. All profiles at the bounds would need 12.
aerospike_node_count      = 6
aerospike_machine_type    = "n2-standard-32"
aerospike_local_ssd_count = 24
aerospike_image           = "projects/streamrec-prod/global/images/family/aerospike-server"

runner                     = "dataflow"
pipeline_image             = "us-central1-docker.pkg.dev/streamrec-prod/streamrec/pipeline:v1"
dataflow_template_gcs_path = "gs://streamrec-prod-streamrec-prod-pipeline/templates/streamrec-pipeline.json"
dataflow_machine_type      = "n2-standard-4"
dataflow_min_workers       = 20
dataflow_max_workers       = 100 # ~5k events/s per vCPU assumed: 1 M/s needs ~50-75 workers

serving_image                   = "us-central1-docker.pkg.dev/streamrec-prod/streamrec/serving:v1"
serving_min_replicas            = 12
serving_max_replicas            = 80
serving_requests_per_pod_target = 3000

notification_channels = []
