//! The EventBridge rules a policy needs: one schedule rule per plan and the AWS event patterns
//! the producer consumes. `backup-producer rules --json` prints them for Terraform
//! (`var.rules`) and for `backupctl bootstrap`.

use backup_core::policy::{Plan, Policy};
use backup_schemas::ResourceType;
use serde::Serialize;
use serde_json::json;

/// Schedule rules are named `<RULE_PREFIX><plan>`; a Scheduled Event names its rule, which is how
/// the producer maps it back to the plan.
pub const RULE_PREFIX: &str = "backup-fleet-plan-";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
    /// The event pattern as a JSON string (what EventBridge's API and Terraform take).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_pattern: Option<String>,
}

/// The plan a schedule rule name stands for.
pub fn plan_of_rule<'a>(policy: &'a Policy, rule_name: &str) -> Option<&'a Plan> {
    policy.plan(rule_name.strip_prefix(RULE_PREFIX).unwrap_or(rule_name))
}

pub fn rules(policy: &Policy) -> Vec<Rule> {
    let mut rules: Vec<Rule> = policy
        .plans
        .iter()
        .map(|plan| Rule {
            name: format!("{RULE_PREFIX}{}", plan.name),
            description: format!("backup-fleet: {} plan {}", plan.kind.as_str(), plan.name),
            schedule_expression: Some(plan.schedule.expression()),
            event_pattern: None,
        })
        .collect();
    let covers = |resource: ResourceType| policy.plans.iter().any(|p| !p.is_drill() && p.covers(resource));
    let mut pattern = |name: &str, description: &str, pattern: serde_json::Value| {
        rules.push(Rule {
            name: format!("backup-fleet-{name}"),
            description: description.to_owned(),
            schedule_expression: None,
            event_pattern: Some(pattern.to_string()),
        })
    };
    let ec2 = covers(ResourceType::Ec2Volume) || covers(ResourceType::Ec2Instance);
    if ec2 {
        pattern(
            "ebs-snapshots",
            "EBS snapshot and copy completions: start the next step (copy, verify) sooner",
            json!({ "source": ["aws.ec2"], "detail-type": ["EBS Snapshot Notification", "EBS Multi-Volume Snapshots Completion Status"], "detail": { "event": ["createSnapshot", "createSnapshots", "copySnapshot"], "result": ["succeeded"] } }),
        );
    }
    if policy.plans.iter().any(|p| p.final_snapshot_on_stop && p.covers(ResourceType::Ec2Instance)) {
        pattern(
            "ec2-stopping",
            "EC2 instances stopping or shutting down: final snapshot",
            json!({ "source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"], "detail": { "state": ["stopping", "shutting-down"] } }),
        );
    }
    if covers(ResourceType::RdsInstance) || covers(ResourceType::RdsCluster) {
        pattern(
            "rds-snapshots",
            "RDS manual snapshots created: start the cross-region copy sooner",
            json!({ "source": ["aws.rds"], "detail-type": ["RDS DB Snapshot Event", "RDS DB Cluster Snapshot Event"] }),
        );
    }
    if covers(ResourceType::S3Bucket) {
        pattern(
            "s3-object-created",
            "S3 objects created in buckets with EventBridge notifications: copy them now",
            json!({ "source": ["aws.s3"], "detail-type": ["Object Created"] }),
        );
    }
    if policy.plans.iter().any(|p| p.backup_on_create && !p.is_drill()) {
        let mut sources = Vec::new();
        let mut names = Vec::new();
        if ec2 {
            sources.push("ec2.amazonaws.com");
            names.extend(["RunInstances", "CreateVolume"]);
        }
        if covers(ResourceType::RdsInstance) || covers(ResourceType::RdsCluster) {
            sources.push("rds.amazonaws.com");
            names.extend(["CreateDBInstance", "CreateDBCluster"]);
        }
        if covers(ResourceType::S3Bucket) {
            sources.push("s3.amazonaws.com");
            names.push("CreateBucket");
        }
        if !sources.is_empty() {
            pattern(
                "resource-created",
                "New resources (CloudTrail): their first backup",
                json!({ "detail-type": ["AWS API Call via CloudTrail"], "detail": { "eventSource": sources, "eventName": names } }),
            );
        }
    }
    rules
}
