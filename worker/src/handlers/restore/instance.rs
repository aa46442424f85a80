//! Restore of an AMI as an instance, stopped unless asked to start (`restore.instance`).

use super::*;

#[async_trait]
impl Handler<RestoreInstance> for Services {
    async fn run(&self, p: &RestoreInstance, ctx: &TaskContext) -> HandlerResult {
        let region = source_region(&p.source).to_owned();
        let existing: Vec<InstanceInfo> = match Started::from_checkpoint(ctx.checkpoint.as_ref()) {
            // Trust the id RunInstances answered with: a tag lookup may not see the instance yet.
            Some(started) => self.block.instance(&region, &started.ids[0]).await?.into_iter().collect(),
            None if self.earlier_attempt_may_have_created(ctx).await? => self
                .block
                .instances_tagged(&region, tags::TASK_ID, ctx.task_id.as_str())
                .await?
                .into_iter()
                .filter(live_instance)
                .collect(),
            None => Vec::new(),
        };
        let mut instance = match single(existing, |i| i.id.clone()) {
            Some(instance) => instance,
            None => {
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                let (artifact, _) = self.restore_source(&p.source, &[ArtifactKind::Ami]).await?;
                let image = self
                    .block
                    .images(&region, std::slice::from_ref(&artifact.id))
                    .await?
                    .into_iter()
                    .next()
                    .ok_or_else(|| TaskError::permanent(format!("image {} does not exist in {region}", artifact.id)))?;
                match &image.status {
                    ArtifactStatus::Failed { reason } => {
                        return Err(TaskError::permanent(format!("image {} failed: {reason}", image.id)))
                    }
                    ArtifactStatus::Pending { .. } => {
                        return Ok(Outcome::Pending {
                            checkpoint: waiting_for("image", &image.id, &image.status),
                            recheck_after: self.timing.recheck,
                        })
                    }
                    ArtifactStatus::Complete => {}
                }
                let new = NewInstance {
                    image_id: image.id.clone(),
                    instance_type: p.instance_type.clone(),
                    subnet_id: p.subnet_id.clone(),
                    tags: restore_tags(&ctx.task_id, &artifact.id, p.drill.then_some("true")),
                    client_token: ctx.task_id.to_string(),
                };
                ctx.may_start("the instance restore")?;
                let launched = match self.block.run_instance(&region, &new).await {
                    Ok(launched) => launched,
                    Err(err) if not_found(&err) || err.code.starts_with("InvalidParameter") => {
                        return Err(TaskError::permanent(format!("cannot launch {} in {region}: {err}", image.id)))
                    }
                    Err(err) => return Err(err.into()),
                };
                self.block.instance(&region, &launched.id).await?.unwrap_or(launched)
            }
        };
        // Stopped by default: a restored machine must not start serving (or writing) on its own.
        if !p.start && instance.state.as_deref() == Some("running") {
            self.block.stop_instance(&region, &instance.id).await?;
            instance = self.block.instance(&region, &instance.id).await?.unwrap_or(instance);
        }
        let done = match instance.state.as_deref() {
            Some("stopped") => true,
            Some("running") => p.start,
            _ => false,
        };
        let result = json!({
            "restore_id": p.restore_id,
            "instance_id": instance.id,
            "region": region,
            "state": instance.state,
            "instance_type": instance.instance_type,
            "subnet_id": instance.subnet_id,
            "availability_zone": instance.availability_zone,
            "volume_ids": instance.volume_ids,
            "restored_from": instance.tags.get(tags::RESTORED_FROM),
        });
        if done {
            Ok(Outcome::done(result))
        } else {
            self.pending_started(ctx, &instance.id, result)
        }
    }
}
