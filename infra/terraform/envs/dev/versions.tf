terraform {
  required_version = ">= 1.6"

  # State in a GCS bucket made beforehand: terraform init -backend-config="bucket=<state bucket>".
  backend "gcs" {
    prefix = "streamrec/dev"
  }

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.20, < 8"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.20, < 8"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.30, < 4"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}

# The Kubernetes resources (serving, Flink, PodMonitoring) talk to the cluster made by module.gke,
# so a fresh environment is applied in two steps (see infra/terraform/README.md).
provider "kubernetes" {
  host                   = "https://${module.gke.endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = base64decode(module.gke.ca_certificate)
}
