# Aerospike on Compute Engine: a regional managed instance group whose nodes keep their names and
# reserved internal IPs (stateful per-instance configs), so the mesh seed list rendered into
# aerospike.conf stays true when a node is recreated. Data sits on raw local NVMe SSDs; losing a
# node's SSDs is survived by the replica in the other rack (zone) and re-migrated.

locals {
  service_port   = 3000
  fabric_port    = 3001
  heartbeat_port = 3002
  info_port      = 3003

  node_names = [for index in range(var.node_count) : "${var.name}-${index}"]

  # Stable names of local NVMe SSDs on Compute Engine, independent of enumeration order.
  devices = [for index in range(var.local_ssd_count) : "/dev/disk/by-id/google-local-nvme-ssd-${index}"]

  aerospike_conf = templatefile("${path.module}/templates/aerospike.conf.tftpl", {
    cluster_name         = var.name
    namespace            = var.namespace
    replication_factor   = var.replication_factor
    default_ttl          = var.default_ttl
    nsup_period          = var.nsup_period
    max_record_size      = var.max_record_size
    evict_used_pct       = var.evict_used_pct
    stop_writes_used_pct = var.stop_writes_used_pct
    proto_fd_max         = 15000
    seeds                = google_compute_address.node[*].address
    devices              = local.devices
    service_port         = local.service_port
    fabric_port          = local.fabric_port
    heartbeat_port       = local.heartbeat_port
    info_port            = local.info_port
  })

  service_account_email = coalesce(var.service_account_email, try(google_service_account.node[0].email, null))
}

resource "google_service_account" "node" {
  count        = var.service_account_email == null ? 1 : 0
  project      = var.project_id
  account_id   = substr("${var.name}-node", 0, 30)
  display_name = "Aerospike nodes (${var.name})"
}

resource "google_project_iam_member" "node_logging" {
  for_each = var.service_account_email == null ? toset(["roles/logging.logWriter", "roles/monitoring.metricWriter"]) : toset([])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.node[0].email}"
}

# One reserved internal IP per node: the mesh seeds and the clients' seed list.
resource "google_compute_address" "node" {
  count        = var.node_count
  project      = var.project_id
  region       = var.region
  name         = local.node_names[count.index]
  subnetwork   = var.subnet_id
  address_type = "INTERNAL"
}

resource "google_compute_instance_template" "node" {
  project      = var.project_id
  name_prefix  = "${var.name}-"
  machine_type = var.machine_type
  tags         = [var.network_tag]
  labels       = var.labels

  disk {
    source_image = var.image
    boot         = true
    auto_delete  = true
    disk_type    = "pd-balanced"
    disk_size_gb = 20
  }

  dynamic "disk" {
    for_each = range(var.local_ssd_count)
    content {
      type         = "SCRATCH"
      disk_type    = "local-ssd"
      interface    = "NVME"
      disk_size_gb = 375
    }
  }

  network_interface {
    subnetwork = var.subnet_id
  }

  service_account {
    email  = local.service_account_email
    scopes = ["cloud-platform"]
  }

  scheduling {
    automatic_restart   = true
    on_host_maintenance = "MIGRATE"
  }

  metadata = {
    startup-script = templatefile("${path.module}/templates/startup.sh.tftpl", {
      aerospike_conf = local.aerospike_conf
      package_url    = var.package_url
      zones          = var.zones
    })
    enable-oslogin = "TRUE"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_region_instance_group_manager" "nodes" {
  project                   = var.project_id
  name                      = var.name
  region                    = var.region
  base_instance_name        = var.name
  distribution_policy_zones = var.zones

  version {
    instance_template = google_compute_instance_template.node.id
  }

  # Instances come only from the per-instance configs below: creating one creates its VM and
  # raises the target size, so target_size is neither set nor diffed here.
  # Aerospike must wait for partition migrations between node restarts, which a MIG cannot see:
  # template changes are rolled out by an operator, node by node (see README).
  update_policy {
    type                         = "OPPORTUNISTIC"
    minimal_action               = "REPLACE"
    replacement_method           = "RECREATE"
    instance_redistribution_type = "NONE"
    max_surge_fixed              = 0
    max_unavailable_fixed        = length(var.zones)
  }

  lifecycle {
    ignore_changes = [target_size]
  }
}

resource "google_compute_region_per_instance_config" "node" {
  count                         = var.node_count
  project                       = var.project_id
  region                        = var.region
  region_instance_group_manager = google_compute_region_instance_group_manager.nodes.name
  name                          = local.node_names[count.index]

  # Lowering node_count deletes the highest-numbered nodes: quiesce them first (README).
  remove_instance_on_destroy = true

  preserved_state {
    internal_ip {
      interface_name = "nic0"
      auto_delete    = "NEVER"
      ip_address {
        address = google_compute_address.node[count.index].self_link
      }
    }
  }
}
