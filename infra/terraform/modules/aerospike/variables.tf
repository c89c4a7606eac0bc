variable "project_id" {
  type        = string
  description = "Google Cloud project of the Aerospike VMs."
}

variable "region" {
  type        = string
  description = "Region of the regional managed instance group."
}

variable "zones" {
  type        = list(string)
  description = "Zones the nodes are spread over; each zone is one Aerospike rack, so replication factor 2 keeps one copy per zone."
}

variable "name" {
  type        = string
  description = "Prefix of instance, template and address names, e.g. \"streamrec-dev-aerospike\"."
}

variable "subnet_id" {
  type        = string
  description = "Subnet the nodes get their (reserved) internal IPs in."
}

variable "network_tag" {
  type        = string
  description = "Network tag the network module's firewall rules match for Aerospike."
}

variable "node_count" {
  type        = number
  description = "Number of Aerospike nodes; at least replication_factor, ideally a multiple of the zone count."
  default     = 2

  validation {
    condition     = var.node_count >= 2
    error_message = "node_count must be at least 2 (replication factor 2)."
  }
}

variable "machine_type" {
  type        = string
  description = "Machine type of a node; the primary index lives in RAM (64 B per record and copy)."
  default     = "n2-highmem-4"
}

variable "local_ssd_count" {
  type        = number
  description = "Local NVMe SSDs (375 GB each) per node, used raw by Aerospike as storage devices. The allowed counts depend on the machine type."
  default     = 1

  validation {
    condition     = var.local_ssd_count >= 1 && var.local_ssd_count <= 24
    error_message = "local_ssd_count must be between 1 and 24."
  }
}

variable "image" {
  type        = string
  description = "Boot image; ideally one with aerospike-server baked in (then package_url can stay empty)."
  default     = "projects/debian-cloud/global/images/family/debian-12"
}

variable "package_url" {
  type        = string
  description = "URL of an aerospike-server .tgz to install at boot when the image lacks it (needs NAT); empty = the image has it."
  default     = ""
}

variable "namespace" {
  type        = string
  description = "Aerospike namespace the store uses (STREAMREC_AEROSPIKE_NAMESPACE)."
  default     = "streamrec"
}

variable "replication_factor" {
  type        = number
  description = "Copies of every record."
  default     = 2
}

variable "default_ttl" {
  type        = number
  description = "Namespace default TTL in seconds; 0 = records never expire unless the client sets a TTL."
  default     = 0
}

variable "nsup_period" {
  type        = number
  description = "Seconds between expiration/eviction sweeps; must be > 0 for TTLs to work."
  default     = 120

  validation {
    condition     = var.nsup_period > 0
    error_message = "nsup_period must be > 0, otherwise records with a TTL never expire and TTL writes are refused."
  }
}

variable "max_record_size" {
  type        = string
  description = "Largest record the namespace accepts (Aerospike size syntax)."
  default     = "1M"
}

variable "evict_used_pct" {
  type        = number
  description = "Device use (percent) above which records with a TTL are evicted early."
  default     = 60
}

variable "stop_writes_used_pct" {
  type        = number
  description = "Device use (percent) at which the namespace refuses writes."
  default     = 70
}

variable "service_account_email" {
  type        = string
  description = "Service account of the nodes (logging and monitoring only); null creates one."
  default     = null
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the instances."
  default     = {}
}
