//! Restore of an RDS DB snapshot, or of a point in time of its automated backups, as a DB
//! instance (`restore.db_instance`).

use super::*;

#[async_trait]
impl Handler<RestoreDbInstance> for Services {
    async fn run(&self, p: &RestoreDbInstance, ctx: &TaskContext) -> HandlerResult {
        let region = source_region(&p.source).to_owned();
        // RDS stores identifiers lowercased; look up what it will report.
        let target = p.target_identifier.to_ascii_lowercase();
        let db = match self.databases.instance(&region, &target).await? {
            Some(db) => {
                owned_db("DB instance", &target, &db.tags, &ctx.task_id)?;
                db
            }
            None => {
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                let started = match &p.source {
                    RestoreSource::PointInTime { resource, to, .. } => {
                        let (at, replica) = self.point_in_time(&region, false, resource, *to).await?;
                        let tags = restore_tags(&ctx.task_id, &format!("{resource}@{to}"), p.drill.then_some("true"));
                        ctx.may_start("the point-in-time restore")?;
                        let source = match &replica {
                            Some(arn) => PitrSource::ReplicatedBackups(arn),
                            None => PitrSource::Instance(resource),
                        };
                        self.databases
                            .restore_instance_to_time(
                                &region,
                                source,
                                &target,
                                at,
                                p.instance_class.as_deref(),
                                p.subnet_group.as_deref(),
                                &tags,
                            )
                            .await
                    }
                    source => {
                        let (artifact, _) = self.restore_source(source, &[ArtifactKind::RdsSnapshot]).await?;
                        let snapshot =
                            self.databases.snapshot(&region, false, &artifact.id).await?.ok_or_else(|| {
                                TaskError::permanent(format!("DB snapshot {} does not exist in {region}", artifact.id))
                            })?;
                        match &snapshot.status {
                            ArtifactStatus::Failed { reason } => {
                                return Err(TaskError::permanent(format!(
                                    "DB snapshot {} failed: {reason}",
                                    artifact.id
                                )))
                            }
                            ArtifactStatus::Pending { .. } => {
                                return Ok(Outcome::Pending {
                                    checkpoint: waiting_for("DB snapshot", &artifact.id, &snapshot.status),
                                    recheck_after: self.timing.recheck,
                                })
                            }
                            ArtifactStatus::Complete => {}
                        }
                        let tags = restore_tags(&ctx.task_id, &artifact.id, p.drill.then_some("true"));
                        ctx.may_start("the DB instance restore")?;
                        self.databases
                            .restore_instance(
                                &region,
                                &artifact.id,
                                &target,
                                p.instance_class.as_deref(),
                                p.subnet_group.as_deref(),
                                &tags,
                            )
                            .await
                    }
                };
                match started {
                    Ok(db) => db,
                    // An earlier attempt (or someone else) took the name, and a Describe does
                    // not show it yet: the re-check adopts it once visible if it is ours, and
                    // refuses it if not.
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
            "db_instance_id": db.identifier,
            "arn": db.arn,
            "region": region,
            "status": db.status,
            "class": db.class,
            "engine": db.engine,
            "allocated_gib": db.allocated_gib,
            "restored_from": db.tags.get(tags::RESTORED_FROM),
        });
        self.db_outcome(ctx, "DB instance", &db.identifier, db.status.as_deref(), result)
    }
}
