output "state_table_name" {
  description = "Name of the state table (BACKUP_STATE_TABLE)."
  value       = aws_dynamodb_table.state.name
}

output "state_table_arn" {
  description = "ARN of the state table."
  value       = aws_dynamodb_table.state.arn
}

output "catalog_table_name" {
  description = "Name of the catalog table (BACKUP_CATALOG_TABLE)."
  value       = aws_dynamodb_table.catalog.name
}

output "catalog_table_arn" {
  description = "ARN of the catalog table."
  value       = aws_dynamodb_table.catalog.arn
}

output "table_arns" {
  description = "ARNs of both tables."
  value       = [aws_dynamodb_table.state.arn, aws_dynamodb_table.catalog.arn]
}

output "index_arns" {
  description = "ARN patterns of both tables' indexes (`<table-arn>/index/*`), for IAM."
  value       = ["${aws_dynamodb_table.state.arn}/index/*", "${aws_dynamodb_table.catalog.arn}/index/*"]
}
