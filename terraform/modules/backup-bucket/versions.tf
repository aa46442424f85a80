terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.70: transition_default_minimum_object_size on aws_s3_bucket_lifecycle_configuration.
      version = "~> 5.70"
      # `aws.replica` is the DR region's provider. It is required even when replication is
      # disabled (pass the primary provider twice in that case).
      configuration_aliases = [aws.replica]
    }
  }
}
