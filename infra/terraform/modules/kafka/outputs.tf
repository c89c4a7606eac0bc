output "bootstrap_servers" {
  description = "Kafka bootstrap address for clients in the VPC (TLS + SASL OAUTHBEARER on 9092): STREAMREC_KAFKA_BOOTSTRAP."
  # The DNS name Managed Kafka publishes for a cluster; `gcloud managed-kafka clusters describe`
  # shows the same under bootstrapAddress.
  value = "bootstrap.${google_managed_kafka_cluster.main.cluster_id}.${var.region}.managedkafka.${var.project_id}.cloud.goog:9092"
}

output "cluster_name" {
  description = "Full resource name of the cluster."
  value       = google_managed_kafka_cluster.main.name
}

output "topics" {
  description = "Topic name to partition count, as created."
  value       = { for name, topic in google_managed_kafka_topic.topics : name => topic.partition_count }
}
