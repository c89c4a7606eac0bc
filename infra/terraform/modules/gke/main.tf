# The GKE cluster that runs serving (and the Flink alternative of the pipelines): VPC-native,
# private nodes, Workload Identity (pods act as Google service accounts, no keys), Managed Service
# for Prometheus (scrapes /metrics through PodMonitoring) and the Secret Manager add-on (mounts the
# JWT key as a file).

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = substr("${var.name}-gke-nodes", 0, 30)
  display_name = "GKE nodes (${var.name})"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "main" {
  project             = var.project_id
  name                = var.name
  location            = var.location
  network             = var.network_id
  subnetwork          = var.subnet_id
  deletion_protection = var.deletion_protection

  # Node pools are managed below, so the default one is removed right away.
  remove_default_node_pool = true
  initial_node_count       = 1

  release_channel {
    channel = "REGULAR"
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = var.pods_range_name
    services_secondary_range_name = var.services_range_name
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.master_cidr
  }

  # With no CIDRs given (dev) the public endpoint stays open to authenticated callers; with CIDRs
  # only those ranges reach the Kubernetes API.
  dynamic "master_authorized_networks_config" {
    for_each = length(var.master_authorized_cidrs) > 0 ? [1] : []
    content {
      dynamic "cidr_blocks" {
        for_each = var.master_authorized_cidrs
        content {
          cidr_block = cidr_blocks.value
        }
      }
    }
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    managed_prometheus {
      enabled = true
    }
  }

  secret_manager_config {
    enabled = true
  }
}

resource "google_container_node_pool" "general" {
  project  = var.project_id
  name     = "general"
  location = var.location
  cluster  = google_container_cluster.main.name

  autoscaling {
    min_node_count = var.node_min_count
    max_node_count = var.node_max_count
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.node_machine_type
    spot            = var.spot_nodes
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }
}

# A private cluster's control plane reaches nodes only on 443/10250 by default; admission webhooks
# (the Flink Kubernetes Operator's, cert-manager's) listen on other ports.
resource "google_compute_firewall" "control_plane_webhooks" {
  project                 = var.project_id
  name                    = "${var.name}-gke-webhooks"
  network                 = var.network_id
  direction               = "INGRESS"
  source_ranges           = [var.master_cidr]
  target_service_accounts = [google_service_account.nodes.email]

  allow {
    protocol = "tcp"
    ports    = ["8443", "9443"]
  }
}
