//! Restore of an EBS snapshot as a volume (`restore.volume`).

use super::*;

#[async_trait]
impl Handler<RestoreVolume> for Services {
    async fn run(&self, p: &RestoreVolume, ctx: &TaskContext) -> HandlerResult {
        let region = source_region(&p.source).to_owned();
        let existing: Vec<VolumeInfo> = match Started::from_checkpoint(ctx.checkpoint.as_ref()) {
            // Trust the id the create answered with: a tag lookup may not see the volume yet.
            Some(started) => self.block.volume(&region, &started.ids[0]).await?.into_iter().collect(),
            None if self.earlier_attempt_may_have_created(ctx).await? => self
                .block
                .volumes_tagged(&region, tags::TASK_ID, ctx.task_id.as_str())
                .await?
                .into_iter()
                .filter(live_volume)
                .collect(),
            None => Vec::new(),
        };
        let volume = match single(existing, |v| v.id.clone()) {
            Some(volume) => volume,
            None => {
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                let (artifact, _) = self.restore_source(&p.source, &[ArtifactKind::EbsSnapshot]).await?;
                let new = NewVolume {
                    snapshot_id: artifact.id.clone(),
                    availability_zone: p.availability_zone.clone(),
                    volume_type: p.volume_type.clone(),
                    kms_key: p.kms_key.clone(),
                    tags: restore_tags(&ctx.task_id, &artifact.id, p.drill.then_some("true")),
                    client_token: ctx.task_id.to_string(),
                };
                ctx.may_start("the volume restore")?;
                match self.start_volume(&region, &artifact.id, new).await? {
                    Ok(volume) => volume,
                    Err(progress) => {
                        // A restore from the archive tier takes hours: re-check it less often.
                        let archived = progress.get("restore_days").is_some();
                        let recheck_after = if archived { self.timing.tier_recheck } else { self.timing.recheck };
                        return Ok(Outcome::Pending { checkpoint: progress, recheck_after });
                    }
                }
            }
        };
        let restored_from = volume.tags.get(tags::RESTORED_FROM).cloned();
        match volume.state.as_deref() {
            Some("available" | "in-use") => Ok(Outcome::done(json!({
                "restore_id": p.restore_id,
                "volume_id": volume.id,
                "region": region,
                "availability_zone": volume.availability_zone,
                "size_gib": volume.size_gib,
                "volume_type": volume.volume_type,
                "encrypted": volume.encrypted,
                "restored_from": restored_from,
            }))),
            Some("error") => {
                // Delete it so that a replay starts afresh.
                let _ = self.block.delete_volume(&region, &volume.id).await;
                Err(TaskError::permanent(format!("volume {} failed to restore (state error)", volume.id)))
            }
            state => self.pending_started(
                ctx,
                &volume.id,
                json!({ "volume_id": volume.id, "state": state, "restored_from": restored_from }),
            ),
        }
    }
}
