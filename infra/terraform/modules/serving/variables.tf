variable "project_id" {
  type        = string
  description = "Google Cloud project of the service."
}

variable "region" {
  type        = string
  description = "Region of the deployment (Google-side regional resources)."
}

variable "domain" {
  type        = string
  description = "Public DNS name of the feed service: the managed TLS certificate is issued for it; its A record must point at lb_address."
}

variable "name" {
  type        = string
  description = "Prefix of Google-side names (service account, IP, secret), e.g. \"streamrec-dev\"."
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace of the service."
  default     = "streamrec"
}

variable "workload_pool" {
  type        = string
  description = "Workload Identity pool of the GKE cluster (gke module output)."
}

variable "image" {
  type        = string
  description = "Container image of the aiohttp service (streamrec installed), e.g. REGION-docker.pkg.dev/PROJECT/streamrec/serving:TAG."
}

variable "command" {
  type        = list(string)
  description = "Container command that starts the service listening on container_port."
  default     = ["streamrec", "serve", "--host", "0.0.0.0", "--port", "8080"]
}

variable "container_port" {
  type        = number
  description = "Port the service listens on inside the pod."
  default     = 8080
}

variable "kafka_bootstrap" {
  type        = string
  description = "Kafka bootstrap servers (kafka module output): STREAMREC_KAFKA_BOOTSTRAP."
}

variable "store_url" {
  type        = string
  description = "Store URL (aerospike module output): STREAMREC_STORE."
}

variable "extra_env" {
  type        = map(string)
  description = "More environment variables for the service (feed cache TTL, thumbnail template...)."
  default     = {}
}

variable "min_replicas" {
  type        = number
  description = "Fewest pods the autoscaler keeps."
  default     = 2
}

variable "max_replicas" {
  type        = number
  description = "Most pods the autoscaler may run."
  default     = 10
}

variable "cpu_target_percent" {
  type        = number
  description = "Average CPU utilisation (of the request) the autoscaler aims for."
  default     = 60
}

variable "requests_per_pod_target" {
  type        = number
  description = "Requests/s per pod the autoscaler aims for, from the Prometheus counter below; null = scale on CPU only. Needs the Custom Metrics Stackdriver Adapter in the cluster."
  default     = null
}

variable "requests_metric" {
  type        = string
  description = "Managed Prometheus counter of served requests, as the custom metrics adapter names it."
  default     = "prometheus.googleapis.com|streamrec_http_requests_total|counter"
}

variable "cpu_request" {
  type        = string
  description = "CPU request of a pod (one aiohttp process uses one core)."
  default     = "1"
}

variable "memory_request" {
  type        = string
  description = "Memory request and limit of a pod."
  default     = "1Gi"
}

variable "jwt_secret_id" {
  type        = string
  description = "Secret Manager secret id holding the JWT signing key; created empty here, its value is added out of band so it never enters Terraform state."
  default     = "streamrec-jwt-key"
}
