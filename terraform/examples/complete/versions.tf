terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# The DR Region (replica bucket and its key). Declared even when replication is off: the
# backup-bucket module always takes an `aws.replica` provider.
provider "aws" {
  alias  = "replica"
  region = var.dr_region

  default_tags {
    tags = local.tags
  }
}
