output "service_url" {
  description = "Public URL of the feed service (HTTPS; plain HTTP is redirected)."
  value       = "https://${var.domain}"
}

output "lb_address" {
  description = "Global static IP of the HTTPS load balancer: the A record of domain."
  value       = google_compute_global_address.lb.address
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
