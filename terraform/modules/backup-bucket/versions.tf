terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
      # `aws.replica` is the DR region's provider. It is required even when replication is
      # disabled (pass the primary provider twice in that case).
      configuration_aliases = [aws.replica]
    }
  }
}
