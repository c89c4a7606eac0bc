# State in a GCS bucket made beforehand: terraform init -backend-config="bucket=<state bucket>".
# The prefix keeps this environment's state apart from every other environment's.
terraform {
  required_version = ">= 1.6"

  backend "gcs" {
    prefix = "streamrec/prod"
  }
}
