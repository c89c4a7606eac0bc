# Google Cloud Managed Service for Apache Kafka: one cluster, the project's four topics.
# Clients authenticate with their Google service account (SASL OAUTHBEARER over TLS, port 9092);
# the serving and pipeline service accounts get roles/managedkafka.client in their own modules.

locals {
  # Every topic needs a settings entry; a topic without one fails the plan rather than silently
  # getting the cluster defaults.
  topic_configs = {
    for topic in keys(var.topic_partitions) : topic => merge(
      var.topic_configs[topic],
      { "min.insync.replicas" = tostring(var.min_insync_replicas) },
    )
  }
}

resource "google_managed_kafka_cluster" "main" {
  project    = var.project_id
  cluster_id = var.cluster_id
  location   = var.region
  labels     = var.labels

  capacity_config {
    vcpu_count   = tostring(var.vcpu_count)
    memory_bytes = tostring(var.memory_gib * 1024 * 1024 * 1024)
  }

  gcp_config {
    access_config {
      network_configs {
        subnet = var.subnet_id
      }
    }
  }

  # New brokers take partitions over when the cluster is scaled up.
  rebalance_config {
    mode = "AUTO_REBALANCE_ON_SCALE_UP"
  }
}

resource "google_managed_kafka_topic" "topics" {
  for_each = var.topic_partitions

  project            = var.project_id
  location           = var.region
  cluster            = google_managed_kafka_cluster.main.cluster_id
  topic_id           = each.key
  partition_count    = each.value
  replication_factor = var.replication_factor
  configs            = local.topic_configs[each.key]
}
