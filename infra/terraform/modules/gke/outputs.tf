output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = google_container_cluster.main.name
}

output "location" {
  description = "Location of the GKE cluster."
  value       = google_container_cluster.main.location
}

output "endpoint" {
  description = "Kubernetes API endpoint (for the kubernetes and helm providers)."
  value       = google_container_cluster.main.endpoint
}

output "ca_certificate" {
  description = "Base64 cluster CA certificate (for the kubernetes and helm providers)."
  value       = google_container_cluster.main.master_auth[0].cluster_ca_certificate
}

output "node_service_account" {
  description = "Service account of the GKE nodes."
  value       = google_service_account.nodes.email
}

output "workload_pool" {
  description = "Workload Identity pool; a Kubernetes service account ns/ksa is serviceAccount:<pool>[ns/ksa]."
  value       = google_container_cluster.main.workload_identity_config[0].workload_pool
}
