//! Restore of S3 backup versions, as of an instant, into a target bucket (`restore.s3_objects`).

use super::*;

#[async_trait]
impl Handler<RestoreObjects> for Services {
    async fn run(&self, p: &RestoreObjects, ctx: &TaskContext) -> HandlerResult {
        let base = format!("{}/", p.source_bucket);
        let listing = format!("{base}{}", p.prefix);
        let versions = match self.objects.list_versions(&p.region, &p.backup_bucket, &listing).await {
            Ok(versions) => versions,
            Err(err) if err.is_code("NoSuchBucket") => {
                return Err(TaskError::permanent(format!(
                    "backup bucket {} does not exist in {}",
                    p.backup_bucket, p.region
                )))
            }
            Err(err) => return Err(err.into()),
        };
        let chosen = select_as_of(&versions, p.as_of);
        if chosen.is_empty() {
            return Err(TaskError::permanent(format!(
                "no backup under {}/{listing} {}",
                p.backup_bucket,
                p.as_of.map_or_else(|| "(latest)".to_owned(), |t| format!("as of {}", t.to_rfc3339()))
            )));
        }
        let copies: Vec<_> = chosen
            .iter()
            .map(|version| {
                let key = version.key.strip_prefix(&base).unwrap_or(&version.key);
                let restore = restore_tags(&ctx.task_id, &version.version_id, p.drill.then_some("true"));
                let copy = VersionCopy {
                    region: &p.region,
                    backup_bucket: &p.backup_bucket,
                    backup_key: &version.key,
                    version_id: &version.version_id,
                    size: version.size,
                    target_bucket: &p.target_bucket,
                    target_key: format!("{}{key}", p.target_prefix),
                };
                async move { (version.key.clone(), self.restore_version(copy, &restore, ctx).await) }
            })
            .collect();
        let outcomes: Vec<(String, Result<RestoredObject, TaskError>)> =
            futures::stream::iter(copies).buffer_unordered(OBJECT_CONCURRENCY).collect().await;
        let (mut restored, mut unchanged, mut bytes, mut archived) = (0u64, 0u64, 0u64, 0u64);
        let mut failures: Vec<(String, TaskError)> = Vec::new();
        for (key, outcome) in outcomes {
            match outcome {
                Ok(object) if object.waiting_for_archive => archived += 1,
                Ok(object) if object.copied => {
                    restored += 1;
                    bytes += object.head.size;
                }
                Ok(_) => unchanged += 1,
                Err(err) => failures.push((key, err)),
            }
        }
        if !failures.is_empty() {
            // What was restored stays restored: the retry skips it. Cancellation wins, then
            // retryable, then permanent.
            let pick = |class: fn(&ErrorClass) -> bool| failures.iter().find(|(_, e)| class(&e.class));
            let (key, first) = pick(|c| matches!(c, ErrorClass::Cancelled))
                .or_else(|| pick(|c| matches!(c, ErrorClass::Retry(_))))
                .unwrap_or(&failures[0]);
            let reason = format!(
                "{} of {} objects failed (restored {restored}, already there {unchanged}); first: {key:?}: {}",
                failures.len(),
                chosen.len(),
                first.reason
            );
            return Err(TaskError { class: first.class, reason, retry_after: first.retry_after });
        }
        if archived > 0 {
            // Everything else is restored; the archived versions follow once S3 has restored
            // them (the next attempt copies them and skips what is already there).
            return Ok(Outcome::Pending {
                checkpoint: json!({
                    "waiting_for": "temporary restores from GLACIER / DEEP_ARCHIVE (hours)",
                    "archived_objects": archived,
                    "restored": restored,
                    "already_there": unchanged,
                }),
                recheck_after: self.timing.tier_recheck,
            });
        }
        Ok(Outcome::done(json!({
            "restore_id": p.restore_id,
            "backup_bucket": p.backup_bucket,
            "source_bucket": p.source_bucket,
            "prefix": p.prefix,
            "as_of": p.as_of,
            "target_bucket": p.target_bucket,
            "target_prefix": p.target_prefix,
            "objects": chosen.len(),
            "restored": restored,
            "already_there": unchanged,
            "bytes": bytes,
        })))
    }
}
