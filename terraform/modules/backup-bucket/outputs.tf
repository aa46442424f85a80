output "bucket_name" {
  description = "Name of the backup bucket."
  value       = aws_s3_bucket.backup.id
}

output "bucket_arn" {
  description = "ARN of the backup bucket."
  value       = aws_s3_bucket.backup.arn
}

output "log_bucket_name" {
  description = "Name of the access-log bucket."
  value       = aws_s3_bucket.logs.id
}

output "replica_bucket_arn" {
  description = "ARN of the DR replica bucket, or null when replication is disabled."
  value       = try(aws_s3_bucket.replica["dr"].arn, null)
}

output "replication_role_arn" {
  description = "ARN of the S3 replication role, or null when replication is disabled."
  value       = try(aws_iam_role.replication["dr"].arn, null)
}
