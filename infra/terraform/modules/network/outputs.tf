output "network_id" {
  description = "Self link of the VPC."
  value       = google_compute_network.vpc.id
}

output "network_name" {
  description = "Name of the VPC."
  value       = google_compute_network.vpc.name
}

output "subnet_id" {
  description = "Self link of the subnet every workload runs in."
  value       = google_compute_subnetwork.main.id
}

output "subnet_name" {
  description = "Name of the subnet."
  value       = google_compute_subnetwork.main.name
}

output "pods_range_name" {
  description = "Name of the secondary range for GKE pods."
  value       = "pods"
}

output "services_range_name" {
  description = "Name of the secondary range for GKE services."
  value       = "services"
}

output "aerospike_tag" {
  description = "Network tag Aerospike VMs must carry for the firewall rules to apply."
  value       = local.aerospike_tag
}

output "dataflow_tag" {
  description = "Network tag Dataflow workers must carry (worker-to-worker shuffle)."
  value       = local.dataflow_tag
}
