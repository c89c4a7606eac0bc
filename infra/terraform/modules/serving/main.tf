# The aiohttp feed service on GKE: a Deployment behind an HTTPS load balancer (GKE Ingress, managed
# certificate for var.domain, HTTP redirected to HTTPS) on a global static IP,
# a horizontal autoscaler on CPU (and request rate when the custom metrics adapter is present),
# probes on /readyz and /livez, and the JWT key mounted from Secret Manager as a file.
# The pod runs as a Google service account through Workload Identity: it may publish to Managed
# Kafka (roles/managedkafka.client) and read the JWT secret, nothing else.

locals {
  app_labels   = { "app.kubernetes.io/name" = "streamrec-serving" }
  ksa_name     = "streamrec-serving"
  lb_name      = "streamrec-serving"
  jwt_key_dir  = "/var/run/secrets/streamrec"
  jwt_key_file = "jwt-key"

  env = merge({
    STREAMREC_KAFKA_BOOTSTRAP = var.kafka_bootstrap
    STREAMREC_STORE           = var.store_url
    STREAMREC_JWT_KEY_FILE    = "${local.jwt_key_dir}/${local.jwt_key_file}"
    # Managed Kafka accepts only TLS with SASL; OAUTHBEARER carries the pod's Google identity.
    STREAMREC_KAFKA_SECURITY_PROTOCOL = "SASL_SSL"
    STREAMREC_KAFKA_SASL_MECHANISM    = "OAUTHBEARER"
  }, var.extra_env)
}

resource "google_service_account" "serving" {
  project      = var.project_id
  account_id   = substr("${var.name}-serving", 0, 30)
  display_name = "streamrec serving (${var.name})"
}

resource "google_project_iam_member" "serving_kafka" {
  project = var.project_id
  role    = "roles/managedkafka.client"
  member  = "serviceAccount:${google_service_account.serving.email}"
}

resource "google_service_account_iam_member" "serving_workload_identity" {
  service_account_id = google_service_account.serving.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.workload_pool}[${var.namespace}/${local.ksa_name}]"
}

resource "google_secret_manager_secret" "jwt_key" {
  project   = var.project_id
  secret_id = var.jwt_secret_id

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_iam_member" "serving_jwt_key" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.jwt_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.serving.email}"
}

# The external Application Load Balancer (a GKE Ingress) terminates TLS with a Google-managed
# certificate for var.domain and redirects plain HTTP to HTTPS: bearer tokens never cross the
# internet in clear. Point var.domain's DNS A record at lb_address.
resource "google_compute_global_address" "lb" {
  project = var.project_id
  name    = "${var.name}-serving"
}

resource "google_compute_ssl_policy" "serving" {
  project         = var.project_id
  name            = "${var.name}-serving"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "kubernetes_namespace_v1" "serving" {
  metadata {
    name = var.namespace
  }
}

resource "kubernetes_service_account_v1" "serving" {
  metadata {
    name      = local.ksa_name
    namespace = kubernetes_namespace_v1.serving.metadata[0].name
    annotations = {
      "iam.gke.io/gcp-service-account" = google_service_account.serving.email
    }
  }
}

# The GKE Secret Manager add-on mounts the latest secret version as a file.
resource "kubernetes_manifest" "jwt_key" {
  manifest = {
    apiVersion = "secrets-store.csi.x-k8s.io/v1"
    kind       = "SecretProviderClass"
    metadata = {
      name      = "streamrec-jwt-key"
      namespace = kubernetes_namespace_v1.serving.metadata[0].name
    }
    spec = {
      provider = "gke"
      parameters = {
        secrets = yamlencode([{
          resourceName = "${google_secret_manager_secret.jwt_key.id}/versions/latest"
          path         = local.jwt_key_file
        }])
      }
    }
  }
}

resource "kubernetes_deployment_v1" "serving" {
  metadata {
    name      = "streamrec-serving"
    namespace = kubernetes_namespace_v1.serving.metadata[0].name
    labels    = local.app_labels
  }

  spec {
    # The autoscaler owns the replica count after creation.
    replicas = var.min_replicas

    selector {
      match_labels = local.app_labels
    }

    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_surge       = "25%"
        max_unavailable = "0"
      }
    }

    template {
      metadata {
        labels = local.app_labels
      }

      spec {
        service_account_name = kubernetes_service_account_v1.serving.metadata[0].name

        topology_spread_constraint {
          max_skew           = 1
          topology_key       = "topology.kubernetes.io/zone"
          when_unsatisfiable = "ScheduleAnyway"
          label_selector {
            match_labels = local.app_labels
          }
        }

        container {
          name    = "serving"
          image   = var.image
          command = var.command

          port {
            name           = "http"
            container_port = var.container_port
          }

          dynamic "env" {
            for_each = local.env
            content {
              name  = env.key
              value = env.value
            }
          }

          resources {
            requests = {
              cpu    = var.cpu_request
              memory = var.memory_request
            }
            limits = {
              memory = var.memory_request
            }
          }

          # Ready = can serve reads: the store answers, or degraded answers have titles to show.
          # Kafka is not part of it (a broker outage must not empty the load balancer while feeds
          # still answer); ingest health is /readyz/ingest, for alerts, not for routing.
          readiness_probe {
            http_get {
              path = "/readyz"
              port = "http"
            }
            period_seconds    = 5
            timeout_seconds   = 2
            failure_threshold = 2
          }

          # Alive = the event loop answers; restarts only a wedged process, never for a slow store.
          liveness_probe {
            http_get {
              path = "/livez"
              port = "http"
            }
            initial_delay_seconds = 10
            period_seconds        = 10
            timeout_seconds       = 2
            failure_threshold     = 3
          }

          volume_mount {
            name       = "jwt-key"
            mount_path = local.jwt_key_dir
            read_only  = true
          }
        }

        volume {
          name = "jwt-key"
          csi {
            driver    = "secrets-store-gke.csi.k8s.io"
            read_only = true
            volume_attributes = {
              secretProviderClass = kubernetes_manifest.jwt_key.manifest.metadata.name
            }
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [spec[0].replicas]
  }
}

# Reached only through the Ingress (container-native load balancing on NEGs), never directly.
resource "kubernetes_service_v1" "serving" {
  metadata {
    name      = local.lb_name
    namespace = kubernetes_namespace_v1.serving.metadata[0].name
    annotations = {
      "cloud.google.com/neg"            = jsonencode({ ingress = true })
      "cloud.google.com/backend-config" = jsonencode({ default = local.lb_name })
    }
  }

  spec {
    type     = "ClusterIP"
    selector = local.app_labels

    port {
      name        = "http"
      port        = 80
      target_port = "http"
    }
  }
}

resource "kubernetes_manifest" "certificate" {
  manifest = {
    apiVersion = "networking.gke.io/v1"
    kind       = "ManagedCertificate"
    metadata = {
      name      = local.lb_name
      namespace = kubernetes_namespace_v1.serving.metadata[0].name
    }
    spec = {
      domains = [var.domain]
    }
  }
}

# Plain HTTP answers only with a redirect to HTTPS; TLS 1.2+ with modern ciphers.
resource "kubernetes_manifest" "frontend_config" {
  manifest = {
    apiVersion = "networking.gke.io/v1beta1"
    kind       = "FrontendConfig"
    metadata = {
      name      = local.lb_name
      namespace = kubernetes_namespace_v1.serving.metadata[0].name
    }
    spec = {
      sslPolicy = google_compute_ssl_policy.serving.name
      redirectToHttps = {
        enabled          = true
        responseCodeName = "MOVED_PERMANENTLY_DEFAULT"
      }
    }
  }
}

# The load balancer's health check asks what the readiness probe asks: can this pod serve reads.
resource "kubernetes_manifest" "backend_config" {
  manifest = {
    apiVersion = "cloud.google.com/v1"
    kind       = "BackendConfig"
    metadata = {
      name      = local.lb_name
      namespace = kubernetes_namespace_v1.serving.metadata[0].name
    }
    spec = {
      healthCheck = {
        type        = "HTTP"
        requestPath = "/readyz"
        port        = var.container_port
      }
    }
  }
}

resource "kubernetes_ingress_v1" "serving" {
  metadata {
    name      = local.lb_name
    namespace = kubernetes_namespace_v1.serving.metadata[0].name
    annotations = {
      "kubernetes.io/ingress.class"                 = "gce"
      "kubernetes.io/ingress.global-static-ip-name" = google_compute_global_address.lb.name
      "networking.gke.io/managed-certificates"      = local.lb_name
      "networking.gke.io/v1beta1.FrontendConfig"    = local.lb_name
    }
  }

  spec {
    default_backend {
      service {
        name = kubernetes_service_v1.serving.metadata[0].name
        port {
          number = 80
        }
      }
    }
  }

  depends_on = [
    kubernetes_manifest.certificate,
    kubernetes_manifest.frontend_config,
    kubernetes_manifest.backend_config,
  ]
}

resource "kubernetes_pod_disruption_budget_v1" "serving" {
  metadata {
    name      = "streamrec-serving"
    namespace = kubernetes_namespace_v1.serving.metadata[0].name
  }

  # One pod at a time may be drained away; the rest keep serving.
  spec {
    max_unavailable = "1"
    selector {
      match_labels = local.app_labels
    }
  }
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "serving" {
  metadata {
    name      = "streamrec-serving"
    namespace = kubernetes_namespace_v1.serving.metadata[0].name
  }

  spec {
    min_replicas = var.min_replicas
    max_replicas = var.max_replicas

    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.serving.metadata[0].name
    }

    metric {
      type = "Resource"
      resource {
        name = "cpu"
        target {
          type                = "Utilization"
          average_utilization = var.cpu_target_percent
        }
      }
    }

    dynamic "metric" {
      for_each = var.requests_per_pod_target == null ? [] : [var.requests_per_pod_target]
      iterator = requests_per_pod
      content {
        type = "Pods"
        pods {
          metric {
            name = var.requests_metric
          }
          target {
            type          = "AverageValue"
            average_value = tostring(requests_per_pod.value)
          }
        }
      }
    }
  }
}
