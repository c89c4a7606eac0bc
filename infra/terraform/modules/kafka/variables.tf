variable "project_id" {
  type        = string
  description = "Google Cloud project of the Kafka cluster."
}

variable "region" {
  type        = string
  description = "Region of the Managed Kafka cluster (same as the subnet)."
}

variable "cluster_id" {
  type        = string
  description = "Managed Kafka cluster id (1-63 chars, RFC 1035)."
}

variable "subnet_id" {
  type        = string
  description = "Subnet in which the cluster exposes its Private Service Connect endpoints; only this VPC can reach the brokers."
}

variable "vcpu_count" {
  type        = number
  description = "Total vCPUs of the cluster (minimum 3, a multiple of 3). Rule of thumb: 1 vCPU per 20 MiB/s produced at 50% utilisation."
  default     = 3

  validation {
    condition     = var.vcpu_count >= 3 && var.vcpu_count % 3 == 0
    error_message = "vcpu_count must be at least 3 and a multiple of 3."
  }
}

variable "memory_gib" {
  type        = number
  description = "Total memory of the cluster in GiB (between 1 and 8 GiB per vCPU)."
  default     = 12
}

variable "replication_factor" {
  type        = number
  description = "Replicas per partition; 3 spreads them over the region's three zones."
  default     = 3
}

variable "topic_partitions" {
  type        = map(number)
  description = "Partitions per topic. Must equal streamrec/config.py TOPIC_PARTITIONS (a test checks it); partitions can only grow."
  default = {
    "streamrec.events.v1"      = 12
    "streamrec.catalog.v1"     = 3
    "streamrec.impressions.v1" = 12
    "streamrec.events.dlq.v1"  = 3
  }
}

variable "topic_configs" {
  type        = map(map(string))
  description = "Kafka settings per topic. Must equal streamrec/kafka_topics.py TOPIC_CONFIGS (a test checks it): events replayable for a week, the catalog compacted (latest record per video_id forever), dead letters kept a month."
  default = {
    "streamrec.events.v1" = {
      "cleanup.policy"   = "delete"
      "retention.ms"     = "604800000"
      "compression.type" = "producer"
    }
    "streamrec.catalog.v1" = {
      "cleanup.policy"            = "compact"
      "min.cleanable.dirty.ratio" = "0.1"
      "retention.ms"              = "-1"
    }
    "streamrec.impressions.v1" = {
      "cleanup.policy"   = "delete"
      "retention.ms"     = "259200000"
      "compression.type" = "producer"
    }
    "streamrec.events.dlq.v1" = {
      "cleanup.policy" = "delete"
      "retention.ms"   = "2592000000"
    }
  }
}

variable "min_insync_replicas" {
  type        = number
  description = "Replicas that must have a record before the producer (acks=all) is told it is durable."
  default     = 2
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the cluster."
  default     = {}
}
