variable "project_id" {
  type        = string
  description = "Google Cloud project of the GKE cluster."
}

variable "location" {
  type        = string
  description = "Region (regional control plane, nodes in every zone) or zone (cheaper, dev) of the cluster."
}

variable "name" {
  type        = string
  description = "Cluster name, e.g. \"streamrec-dev\"."
}

variable "network_id" {
  type        = string
  description = "VPC self link."
}

variable "subnet_id" {
  type        = string
  description = "Subnet self link (with the pods and services secondary ranges)."
}

variable "pods_range_name" {
  type        = string
  description = "Name of the subnet's secondary range for pods."
}

variable "services_range_name" {
  type        = string
  description = "Name of the subnet's secondary range for services."
}

variable "master_cidr" {
  type        = string
  description = "/28 for the private control plane endpoint."
  default     = "172.16.0.0/28"
}

variable "master_authorized_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the Kubernetes API (where terraform and kubectl run from)."
  default     = []
}

variable "node_machine_type" {
  type        = string
  description = "Machine type of the general node pool (serving pods, Flink if chosen)."
  default     = "e2-standard-4"
}

variable "node_min_count" {
  type        = number
  description = "Minimum nodes per zone of the node pool."
  default     = 1
}

variable "node_max_count" {
  type        = number
  description = "Maximum nodes per zone of the node pool."
  default     = 3
}

variable "spot_nodes" {
  type        = bool
  description = "Use Spot VMs for the node pool (dev only: pods get evicted)."
  default     = false
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse terraform destroy of the cluster."
  default     = true
}
