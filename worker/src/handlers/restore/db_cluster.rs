//! Restore of a DB cluster snapshot, or of a point in time of the cluster's automated backups,
//! as a DB cluster without instances (`restore.db_cluster`).

use super::*;

#[async_trait]
impl Handler<RestoreDbCluster> for Services {
    async fn run(&self, p: &RestoreDbCluster, ctx: &TaskContext) -> HandlerResult {
        let region = source_region(&p.source).to_owned();
        let target = p.target_identifier.to_ascii_lowercase();
        let cluster = match self.databases.cluster(&region, &target).await? {
            Some(cluster) => {
                owned_db("DB cluster", &target, &cluster.tags, &ctx.task_id)?;
                cluster
            }
            None => {
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                let started = match &p.source {
                    RestoreSource::PointInTime { resource, to, .. } => {
                        let (at, _) = self.point_in_time(&region, true, resource, *to).await?;
                        let tags = restore_tags(&ctx.task_id, &format!("{resource}@{to}"), p.drill.then_some("true"));
                        ctx.may_start("the point-in-time restore")?;
                        self.databases
                            .restore_cluster_to_time(&region, resource, &target, at, p.subnet_group.as_deref(), &tags)
                            .await
                    }
                    source => {
                        let (artifact, record) =
                            self.restore_source(source, &[ArtifactKind::RdsClusterSnapshot]).await?;
                        let snapshot =
                            self.databases.snapshot(&region, true, &artifact.id).await?.ok_or_else(|| {
                                TaskError::permanent(format!(
                                    "DB cluster snapshot {} does not exist in {region}",
                                    artifact.id
                                ))
                            })?;
                        match &snapshot.status {
                            ArtifactStatus::Failed { reason } => {
                                return Err(TaskError::permanent(format!(
                                    "DB cluster snapshot {} failed: {reason}",
                                    artifact.id
                                )))
                            }
                            ArtifactStatus::Pending { .. } => {
                                return Ok(Outcome::Pending {
                                    checkpoint: waiting_for("DB cluster snapshot", &artifact.id, &snapshot.status),
                                    recheck_after: self.timing.recheck,
                                })
                            }
                            ArtifactStatus::Complete => {}
                        }
                        let engine = p
                            .engine
                            .clone()
                            .or(snapshot.engine.clone())
                            .or_else(|| record.and_then(|r| r.details.get("engine").cloned()))
                            .ok_or_else(|| {
                                TaskError::permanent(format!(
                                    "the engine of {} is unknown: pass it explicitly",
                                    artifact.id
                                ))
                            })?;
                        let tags = restore_tags(&ctx.task_id, &artifact.id, p.drill.then_some("true"));
                        ctx.may_start("the DB cluster restore")?;
                        self.databases
                            .restore_cluster(&region, &artifact.id, &target, &engine, p.subnet_group.as_deref(), &tags)
                            .await
                    }
                };
                match started {
                    Ok(cluster) => cluster,
                    Err(err) if already_exists(&err) => {
                        return self.pending_started(
                            ctx,
                            &target,
                            json!({ "target": target, "status": "exists, not visible yet" }),
                        )
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        let result = json!({
            "restore_id": p.restore_id,
            "db_cluster_id": cluster.identifier,
            "arn": cluster.arn,
            "region": region,
            "status": cluster.status,
            "engine": cluster.engine,
            "members": cluster.members,
            "restored_from": cluster.tags.get(tags::RESTORED_FROM),
        });
        self.db_outcome(ctx, "DB cluster", &cluster.identifier, cluster.status.as_deref(), result)
    }
}
