//! `bootstrap` creates the fleet's resources idempotently.

use backup_aws::bootstrap::{bootstrap, BootstrapSettings};
use backup_core::ports::TaskQueue;
use backup_tests::{aws, unique_prefix, REGION};

#[tokio::test]
async fn bootstrap_twice_changes_nothing_and_wires_redrive() {
    let aws = aws(REGION).await;
    let settings = BootstrapSettings::new(unique_prefix("bootstrap"));
    let first = bootstrap(&aws, &settings).await.expect("first bootstrap");
    let second = bootstrap(&aws, &settings).await.expect("second bootstrap succeeds too");
    assert_eq!(first, second, "a second run finds the same resources");

    let queue = backup_aws::sqs::SqsQueue::new(aws.clients().sqs, &first.task_queue_url);
    let queue_settings = queue.settings().await.expect("queue attributes");
    assert_eq!(queue_settings.visibility_timeout_secs, settings.task_visibility_timeout_secs);
    assert_eq!(queue_settings.max_receive_count, Some(settings.task_max_receive_count));
    assert_eq!(queue_settings.retention_secs, settings.retention_secs);
    assert!(queue_settings.dead_letter_target_arn.unwrap().ends_with("-tasks-dlq"));

    let events = backup_aws::sqs::SqsQueue::new(aws.clients().sqs, &first.event_queue_url);
    assert_eq!(events.settings().await.unwrap().max_receive_count, Some(settings.event_max_receive_count));

    let dynamodb = aws.clients().dynamodb;
    for table in [&first.state_table, &first.catalog_table] {
        let ttl = dynamodb.describe_time_to_live().table_name(table).send().await.unwrap();
        let description = ttl.time_to_live_description.expect("ttl description");
        assert_eq!(description.attribute_name.as_deref(), Some(backup_aws::dynamo::TTL_ATTRIBUTE), "{table}");
    }
    let state = dynamodb.describe_table().table_name(&first.state_table).send().await.unwrap();
    let indexes: Vec<String> = state
        .table
        .unwrap()
        .global_secondary_indexes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.index_name)
        .collect();
    assert_eq!(indexes, vec!["by_run".to_owned()]);

    // Converges: a changed setting is applied to the existing queue on the next run.
    let mut changed = settings.clone();
    changed.task_max_receive_count = 4;
    bootstrap(&aws, &changed).await.expect("bootstrap with changed settings");
    assert_eq!(queue.settings().await.unwrap().max_receive_count, Some(4));
}
