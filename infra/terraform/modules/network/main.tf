# One VPC per environment. Nothing here has a public IP except the serving load balancer (made in
# the serving module); Kafka and Aerospike are reachable only from inside this network, and
# Aerospike only from the pods range and the client service accounts (GKE nodes, Dataflow workers).

locals {
  # Network tags the other modules put on their VMs; firewall rules match on them.
  aerospike_tag = "${var.name}-aerospike"
  dataflow_tag  = "${var.name}-dataflow"
}

resource "google_compute_network" "vpc" {
  project                 = var.project_id
  name                    = var.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "main" {
  project       = var.project_id
  name          = "${var.name}-${var.region}"
  region        = var.region
  network       = google_compute_network.vpc.id
  ip_cidr_range = var.subnet_cidr

  # Private VMs reach Google APIs (Artifact Registry, Secret Manager, GCS) without NAT.
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }
}

# Aerospike client port (3000): only from GKE pods (serving, Flink) and from VMs running as the
# client service accounts (Dataflow workers). Pod traffic leaves from alias IPs, which source
# service accounts do not match, hence a rule on the pods range of its own.
resource "google_compute_firewall" "aerospike_pods" {
  project       = var.project_id
  name          = "${var.name}-aerospike-pods"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  target_tags   = [local.aerospike_tag]
  source_ranges = [var.pods_cidr]

  allow {
    protocol = "tcp"
    ports    = ["3000"]
  }
}

resource "google_compute_firewall" "aerospike_clients" {
  count                   = length(var.aerospike_client_service_accounts) > 0 ? 1 : 0
  project                 = var.project_id
  name                    = "${var.name}-aerospike-clients"
  network                 = google_compute_network.vpc.id
  direction               = "INGRESS"
  target_tags             = [local.aerospike_tag]
  source_service_accounts = var.aerospike_client_service_accounts

  allow {
    protocol = "tcp"
    ports    = ["3000"]
  }
}

# Heartbeat (3002), fabric (3001) and info (3003) between Aerospike nodes only.
resource "google_compute_firewall" "aerospike_mesh" {
  project     = var.project_id
  name        = "${var.name}-aerospike-mesh"
  network     = google_compute_network.vpc.id
  direction   = "INGRESS"
  source_tags = [local.aerospike_tag]
  target_tags = [local.aerospike_tag]

  allow {
    protocol = "tcp"
    ports    = ["3000-3003"]
  }
}

# Dataflow workers shuffle among themselves on 12345-12346.
resource "google_compute_firewall" "dataflow_workers" {
  project     = var.project_id
  name        = "${var.name}-dataflow-workers"
  network     = google_compute_network.vpc.id
  direction   = "INGRESS"
  source_tags = [local.dataflow_tag]
  target_tags = [local.dataflow_tag]

  allow {
    protocol = "tcp"
    ports    = ["12345-12346"]
  }
}

# Operators reach VMs through IAP TCP forwarding only (no public SSH).
resource "google_compute_firewall" "iap_ssh" {
  project       = var.project_id
  name          = "${var.name}-iap-ssh"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"]
  target_tags   = [local.aerospike_tag]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

resource "google_compute_router" "nat" {
  count   = var.enable_nat ? 1 : 0
  project = var.project_id
  name    = "${var.name}-nat"
  region  = var.region
  network = google_compute_network.vpc.id
}

resource "google_compute_router_nat" "nat" {
  count                              = var.enable_nat ? 1 : 0
  project                            = var.project_id
  name                               = "${var.name}-nat"
  region                             = var.region
  router                             = google_compute_router.nat[0].name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
}
