output "seeds" {
  description = "Aerospike seed list host:port,host:port for clients: STREAMREC_AEROSPIKE_HOSTS."
  value       = join(",", [for address in google_compute_address.node[*].address : "${address}:3000"])
}

output "namespace" {
  description = "Namespace the store uses (STREAMREC_AEROSPIKE_NAMESPACE)."
  value       = var.namespace
}

output "store_url" {
  description = "STREAMREC_STORE URL for serving and pipelines."
  value       = "aerospike://${join(",", [for address in google_compute_address.node[*].address : "${address}:3000"])}/${var.namespace}"
}

output "aerospike_conf" {
  description = "The rendered aerospike.conf (before the per-zone rack id is filled in at boot)."
  value       = local.aerospike_conf
}

output "instance_group" {
  description = "Self link of the managed instance group."
  value       = google_compute_region_instance_group_manager.nodes.instance_group
}
