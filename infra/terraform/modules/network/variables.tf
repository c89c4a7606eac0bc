variable "project_id" {
  type        = string
  description = "Google Cloud project that holds the network."
}

variable "region" {
  type        = string
  description = "Region of the subnet (every other module runs in this region)."
}

variable "name" {
  type        = string
  description = "Prefix for every network resource, e.g. \"streamrec-dev\"."
}

variable "subnet_cidr" {
  type        = string
  description = "Primary range of the subnet: Aerospike nodes, GKE nodes, Dataflow workers, Kafka endpoints."
  default     = "10.10.0.0/20"
}

variable "pods_cidr" {
  type        = string
  description = "Secondary range for GKE pods (VPC-native cluster)."
  default     = "10.20.0.0/16"
}

variable "services_cidr" {
  type        = string
  description = "Secondary range for GKE services."
  default     = "10.30.0.0/20"
}

variable "aerospike_client_service_accounts" {
  type        = list(string)
  description = "Service account e-mails whose VMs may open Aerospike's client port (GKE nodes, Dataflow workers)."
  default     = []
}

variable "enable_nat" {
  type        = bool
  description = "Create Cloud NAT so private VMs can reach the internet (package mirrors, the Flink operator's Helm chart)."
  default     = true
}
