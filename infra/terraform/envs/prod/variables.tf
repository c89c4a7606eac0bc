variable "project_id" {
  type        = string
  description = "Google Cloud project of the environment."
}

variable "region" {
  type        = string
  description = "Region of every resource."
  default     = "us-central1"
}

variable "zones" {
  type        = list(string)
  description = "Zones for Aerospike racks (and GKE nodes when gke_regional)."
  default     = ["us-central1-a", "us-central1-b"]
}

variable "env" {
  type        = string
  description = "Environment name, used in every resource name."
  default     = "dev"
}

variable "master_authorized_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the Kubernetes API (where terraform runs)."
  default     = []
}

variable "gke_regional" {
  type        = bool
  description = "Regional GKE control plane and nodes in every zone (prod) instead of one zone (dev)."
  default     = false
}

variable "gke_node_machine_type" {
  type        = string
  description = "Machine type of the GKE node pool."
  default     = "e2-standard-4"
}

variable "gke_node_max_count" {
  type        = number
  description = "Most GKE nodes per zone."
  default     = 3
}

variable "gke_spot_nodes" {
  type        = bool
  description = "Spot VMs for GKE nodes (dev only)."
  default     = true
}

variable "kafka_vcpu_count" {
  type        = number
  description = "vCPUs of the Managed Kafka cluster (multiple of 3)."
  default     = 3
}

variable "kafka_memory_gib" {
  type        = number
  description = "Memory of the Managed Kafka cluster in GiB."
  default     = 12
}

variable "aerospike_node_count" {
  type        = number
  description = "Aerospike nodes."
  default     = 2
}

variable "aerospike_machine_type" {
  type        = string
  description = "Aerospike node machine type."
  default     = "n2-highmem-4"
}

variable "aerospike_local_ssd_count" {
  type        = number
  description = "Local NVMe SSDs (375 GB) per Aerospike node."
  default     = 1
}

variable "aerospike_image" {
  type        = string
  description = "Boot image of Aerospike nodes (ideally with aerospike-server baked in)."
  default     = "projects/debian-cloud/global/images/family/debian-12"
}

variable "aerospike_package_url" {
  type        = string
  description = "aerospike-server .tgz installed at boot when the image lacks it."
  default     = ""
}

variable "runner" {
  type        = string
  description = "Pipeline runner: dataflow or flink."
  default     = "dataflow"
}

variable "pipeline_image" {
  type        = string
  description = "Beam SDK image with streamrec installed (Dataflow workers, Flink worker-pool sidecar)."
}

variable "dataflow_template_gcs_path" {
  type        = string
  description = "gs:// path of the Flex Template spec (runner = dataflow)."
  default     = ""
}

variable "dataflow_machine_type" {
  type        = string
  description = "Dataflow worker machine type."
  default     = "n2-standard-4"
}

variable "dataflow_min_workers" {
  type        = number
  description = "Dataflow autoscaling floor."
  default     = 1
}

variable "dataflow_max_workers" {
  type        = number
  description = "Dataflow autoscaling ceiling."
  default     = 3
}

variable "jar_builder_image" {
  type        = string
  description = "Image that builds the Flink job jar with `python -m pipelines.main --runner=FlinkRunner` (runner = flink)."
  default     = ""
}

variable "flink_parallelism" {
  type        = number
  description = "Pipeline parallelism on Flink."
  default     = 2
}

variable "flink_taskmanagers" {
  type        = number
  description = "Flink TaskManager pods."
  default     = 1
}

variable "serving_image" {
  type        = string
  description = "Container image of the feed service."
}

variable "serving_min_replicas" {
  type        = number
  description = "Fewest serving pods."
  default     = 2
}

variable "serving_max_replicas" {
  type        = number
  description = "Most serving pods."
  default     = 6
}

variable "serving_requests_per_pod_target" {
  type        = number
  description = "Requests/s per serving pod for the autoscaler; null = CPU only."
  default     = null
}

variable "notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channels for the alerts."
  default     = []
}
