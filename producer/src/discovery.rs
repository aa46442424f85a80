//! Discovery: the resources a plan selects, per region, paginated to the end. EC2 filters by tag
//! server-side; RDS and S3 have no tag filter on their list calls, so their tags are matched
//! client-side with the same selector.

use backup_core::policy::{Plan, Selector};
use backup_core::services::block::{BlockStorage, TagFilter};
use backup_core::services::database::DatabaseSnapshots;
use backup_core::services::objects::ObjectStore;
use backup_core::AwsError;
use backup_schemas::ResourceType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A selected resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub resource_type: ResourceType,
    pub id: String,
    pub region: String,
    pub tags: BTreeMap<String, String>,
}

/// The AWS ports discovery reads.
#[derive(Clone)]
pub struct Discovery {
    pub block: Arc<dyn BlockStorage>,
    pub databases: Arc<dyn DatabaseSnapshots>,
    pub objects: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Discovery")
    }
}

/// Server-side filters for the selector's required tags (a `*` value filters on the key only).
fn tag_filters(selector: &Selector) -> Vec<TagFilter> {
    selector
        .tags
        .iter()
        .map(|(key, value)| TagFilter {
            key: key.clone(),
            values: if value == "*" { Vec::new() } else { vec![value.clone()] },
        })
        .collect()
}

impl Discovery {
    /// Every resource of the plan's types selected in `region`.
    pub async fn discover(
        &self,
        plan: &Plan,
        region: &str,
        exclude_buckets: &[String],
    ) -> Result<Vec<Resource>, AwsError> {
        let mut found = Vec::new();
        // Databases named in the policy: selected by name, not by tags.
        let mut named = Vec::new();
        let filters = tag_filters(&plan.select);
        let mut push = |resource_type: ResourceType, id: String, tags: BTreeMap<String, String>| {
            // Server-side filters cannot express exclusions: the selector decides.
            if plan.select.matches(&tags) {
                found.push(Resource { resource_type, id, region: region.to_owned(), tags });
            }
        };
        for resource_type in &plan.resources {
            match resource_type {
                // Named in the policy, not discovered; listed once per plan (with its first
                // region), in the region of its secret (a drill plan's: the plan's region).
                ResourceType::PostgresDb => {
                    if plan.regions.first().map(String::as_str) == Some(region) {
                        named.extend(plan.databases.iter().map(|database| Resource {
                            resource_type: ResourceType::PostgresDb,
                            id: database.name.clone(),
                            region: database.region().unwrap_or(region).to_owned(),
                            tags: BTreeMap::new(),
                        }));
                    }
                }
                ResourceType::Ec2Volume => {
                    for volume in self.block.list_volumes(region, &filters).await? {
                        push(ResourceType::Ec2Volume, volume.id, volume.tags);
                    }
                }
                ResourceType::Ec2Instance => {
                    for instance in self.block.list_instances(region, &filters).await? {
                        push(ResourceType::Ec2Instance, instance.id, instance.tags);
                    }
                }
                ResourceType::RdsInstance => {
                    for instance in self.databases.list_instances(region).await? {
                        // Aurora members are backed up by their cluster's snapshot.
                        if instance.cluster_id.is_none() {
                            push(ResourceType::RdsInstance, instance.identifier, instance.tags);
                        }
                    }
                }
                ResourceType::RdsCluster => {
                    for cluster in self.databases.list_clusters(region).await? {
                        push(ResourceType::RdsCluster, cluster.identifier, cluster.tags);
                    }
                }
                ResourceType::S3Bucket => {
                    for bucket in self.objects.list_buckets(region).await? {
                        // Never back up a backup bucket into itself.
                        if !exclude_buckets.contains(&bucket.name) {
                            push(ResourceType::S3Bucket, bucket.name, bucket.tags);
                        }
                    }
                }
            }
        }
        found.extend(named);
        found.sort_by(|a, b| (a.resource_type, &a.id).cmp(&(b.resource_type, &b.id)));
        Ok(found)
    }
}
