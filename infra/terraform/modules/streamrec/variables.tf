# What an environment chooses. Everything else (topics, ports, the wiring between the parts) is
# fixed here or in the component modules, so dev and prod cannot drift apart in structure.

variable "project_id" {
  type        = string
  description = "Google Cloud project of the environment."
}

variable "env" {
  type        = string
  description = "Environment name (dev, prod, ...), part of every resource name: streamrec-<env>."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*$", var.env))
    error_message = "env must be lowercase letters, digits or dashes, starting with a letter: it goes into resource names."
  }
}

variable "region" {
  type        = string
  description = "Region of every resource."
  default     = "us-central1"
  nullable    = false
}

variable "zones" {
  type        = list(string)
  description = "Zones for Aerospike racks (and GKE nodes when gke.regional)."
  default     = ["us-central1-a", "us-central1-b"]
  nullable    = false
}

variable "master_authorized_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the Kubernetes API (where terraform runs)."
  default     = []
  nullable    = false
}

variable "notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channels for the alerts."
  default     = []
  nullable    = false
}

variable "gke" {
  type = object({
    regional          = optional(bool, false)
    node_machine_type = optional(string, "e2-standard-4")
    node_max_count    = optional(number, 3)
    spot_nodes        = optional(bool, true)
  })
  description = "GKE cluster: regional (control plane and nodes in every zone) or zonal (zones[0]), node machine type, most nodes per zone, Spot VMs (dev only)."
  default     = {}
  nullable    = false
}

variable "kafka" {
  type = object({
    vcpu_count = optional(number, 3)
    memory_gib = optional(number, 12)
  })
  description = "Managed Kafka cluster size: vCPUs (a multiple of 3) and memory in GiB. Topics are not set here: they come from streamrec/config.py through the kafka module."
  default     = {}
  nullable    = false
}

variable "aerospike" {
  type = object({
    node_count      = optional(number, 2)
    machine_type    = optional(string, "n2-highmem-4")
    local_ssd_count = optional(number, 1)
    image           = optional(string, "projects/debian-cloud/global/images/family/debian-12")
    package_url     = optional(string, "")
  })
  description = "Aerospike cluster: nodes, machine type, local NVMe SSDs (375 GB) per node, boot image (ideally with aerospike-server baked in), and the aerospike-server .tgz installed at boot when the image lacks it."
  default     = {}
  nullable    = false
}

variable "pipeline" {
  type = object({
    runner                     = optional(string, "dataflow")
    image                      = string
    dataflow_template_gcs_path = optional(string, "")
    dataflow_machine_type      = optional(string, "n2-standard-4")
    dataflow_min_workers       = optional(number, 1)
    dataflow_max_workers       = optional(number, 3)
    jar_builder_image          = optional(string, "")
    flink_parallelism          = optional(number, 2)
    flink_taskmanagers         = optional(number, 1)
    flink_job                  = optional(string, "pyflink")
    pyflink_image              = optional(string, "")
  })
  description = "Streaming pipeline: runner (dataflow or flink), the Beam SDK image with streamrec installed, the Flex Template spec path and worker range (dataflow), the jar builder image, parallelism and TaskManagers (flink), and what Flink runs: the PyFlink job (flink_job = pyflink, its image) or the Beam pipeline (beam)."
}

variable "serving" {
  type = object({
    image                   = string
    domain                  = string
    min_replicas            = optional(number, 2)
    max_replicas            = optional(number, 6)
    requests_per_pod_target = optional(number)
  })
  description = "Feed service: container image, public DNS name (its TLS certificate), fewest and most pods, requests/s per pod for the autoscaler (null = CPU only)."
}
