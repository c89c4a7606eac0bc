# The provider constraints of the whole deployment. The environment roots configure these
# providers and pin exact versions in their own .terraform.lock.hcl.
terraform {
  required_version = ">= 1.6"
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
