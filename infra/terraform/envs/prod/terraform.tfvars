# prod: sized for the capacity model (300 M profiles, 1 M titles, 1 M events/s); the arithmetic
# and its assumptions are in infra/terraform/README.md ("Cost at the capacity model's scale").
# Fields and defaults: modules/streamrec/README.md.
project_id = "streamrec-prod"
region     = "us-central1"
zones      = ["us-central1-a", "us-central1-b", "us-central1-c"]
env        = "prod"

master_authorized_cidrs = ["203.0.113.0/24"] # the CI runners' egress range (placeholder)

gke = {
  regional          = true
  node_machine_type = "n2-standard-8"
  node_max_count    = 10
  spot_nodes        = false
}

# ~190 MiB/s produced (events + impressions) at 1 vCPU per 20 MiB/s and 50% headroom.
kafka = {
  vcpu_count = 24
  memory_gib = 96
}

# docs/capacity.md: SSD write bandwidth for user records binds (7.4 GB/s for the typical profile
# mix, RF 2, defrag). One node = 24 local NVMe SSDs (~4.7 GB/s writes, planned at 50%): 4 nodes
# + 1 for a node loss, rounded up to 2 per zone. All profiles at the bounds would need 12.
aerospike = {
  node_count      = 6
  machine_type    = "n2-standard-32"
  local_ssd_count = 24
  image           = "projects/streamrec-prod/global/images/family/aerospike-server"
}

pipeline = {
  runner                     = "dataflow"
  image                      = "us-central1-docker.pkg.dev/streamrec-prod/streamrec/pipeline:v1"
  dataflow_template_gcs_path = "gs://streamrec-prod-streamrec-prod-pipeline/templates/streamrec-pipeline.json"
  dataflow_machine_type      = "n2-standard-4"
  dataflow_min_workers       = 20
  dataflow_max_workers       = 100 # ~5k events/s per vCPU assumed: 1 M/s needs ~50-75 workers
}

serving = {
  image                   = "us-central1-docker.pkg.dev/streamrec-prod/streamrec/serving:v1"
  domain                  = "feed.streamrec.example.com"
  min_replicas            = 12
  max_replicas            = 80
  requests_per_pod_target = 3000
}

notification_channels = []
