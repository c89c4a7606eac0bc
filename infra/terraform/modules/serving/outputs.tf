output "service_url" {
  description = "Public URL of the feed service (plain HTTP on the L4 load balancer; put TLS in front for clients)."
  value       = "http://${google_compute_address.lb.address}"
}

output "service_account_email" {
  description = "Google service account the serving pods run as."
  value       = google_service_account.serving.email
}

output "namespace" {
  description = "Kubernetes namespace of the service."
  value       = kubernetes_namespace_v1.serving.metadata[0].name
}

output "pod_labels" {
  description = "Labels of the serving pods (for PodMonitoring selectors)."
  value       = local.app_labels
}

output "metrics_port_name" {
  description = "Name of the container port that serves /metrics."
  value       = "http"
}

output "jwt_secret_name" {
  description = "Secret Manager secret to add the JWT key to (gcloud secrets versions add)."
  value       = google_secret_manager_secret.jwt_key.id
}
