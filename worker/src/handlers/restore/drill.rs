//! Restore drills (`restore.drill`): restore the newest backup of a resource into an isolated
//! target, validate it, record the outcome and the time to restore, and always clean up.

use super::*;

/// What a parked drill remembers: when the restore started (the time to restore is measured from
/// it) and which backups it is restoring (a newer backup landing meanwhile must not switch them).
#[derive(Debug, Default, Serialize, Deserialize)]
struct DrillCheckpoint {
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    artifacts: Vec<ArtifactRef>,
    #[serde(default)]
    progress: Value,
}

/// What a drill's earlier attempt started (its database restore), from the checkpoint.
fn drill_started(ctx: &TaskContext) -> Option<Started> {
    let started = ctx.checkpoint.as_ref()?.pointer("/progress/started")?;
    serde_json::from_value(started.clone()).ok()
}

/// A drill's validation: each check as `ok: …` or `FAILED: …`.
#[derive(Debug, Default)]
struct DrillChecks {
    checks: BTreeMap<String, String>,
    ok: bool,
    restored: Vec<String>,
}

impl DrillChecks {
    fn new() -> Self {
        Self { ok: true, ..Self::default() }
    }

    fn check(&mut self, name: impl Into<String>, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        self.checks.insert(name.into(), if ok { format!("ok: {detail}") } else { format!("FAILED: {detail}") });
        self.ok &= ok;
    }

    fn failed(reason: impl Into<String>) -> Self {
        let mut checks = Self::new();
        checks.check("restore", false, reason);
        checks
    }

    fn summary(&self) -> String {
        let failed: Vec<String> =
            self.checks.iter().filter(|(_, v)| v.starts_with("FAILED")).map(|(k, v)| format!("{k}: {v}")).collect();
        if failed.is_empty() {
            format!("ok: {} checks passed", self.checks.len())
        } else {
            format!("FAILED: {}", failed.join("; "))
        }
    }
}

/// Where a drill stands after one attempt.
enum DrillStep {
    /// Still restoring; the progress goes into the checkpoint.
    Waiting(Value),
    /// Restored (or given up) and validated.
    Validated(DrillChecks),
}

/// The newest backup of the drilled resource in its own region (copies are not drilled): for an
/// instance the whole snapshot set, for a bucket the newest version of up to [`DRILL_OBJECTS`]
/// keys. Verification is not consulted: a drill tests the newest backup, whatever was said of it.
fn drill_choice(records: &[CatalogRecord], p: &RestoreDrill) -> Vec<CatalogRecord> {
    let kinds: &[ArtifactKind] = match p.resource_type {
        ResourceType::Ec2Volume => &[ArtifactKind::EbsSnapshot],
        ResourceType::Ec2Instance => &[ArtifactKind::EbsSnapshot, ArtifactKind::Ami],
        ResourceType::RdsInstance => &[ArtifactKind::RdsSnapshot],
        ResourceType::RdsCluster => &[ArtifactKind::RdsClusterSnapshot],
        ResourceType::S3Bucket => &[ArtifactKind::S3Object],
        ResourceType::PostgresDb => &[ArtifactKind::DatabaseDump],
    };
    let mut live: Vec<&CatalogRecord> = records
        .iter()
        .filter(|r| {
            r.deleted_at.is_none()
                && r.copy_of.is_none()
                && r.resource_region == p.region
                && kinds.contains(&r.artifact.kind)
        })
        .collect();
    live.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.artifact.id.cmp(&b.artifact.id)));
    let Some(newest) = live.first() else { return Vec::new() };
    match newest.artifact.kind {
        // A snapshot set shares its task: restore every snapshot of it.
        ArtifactKind::EbsSnapshot => live
            .iter()
            .filter(|r| r.artifact.kind == ArtifactKind::EbsSnapshot && r.task_id == newest.task_id)
            .map(|r| (*r).clone())
            .collect(),
        ArtifactKind::S3Object => {
            let mut seen = BTreeSet::new();
            live.iter()
                .filter(|r| seen.insert(s3_location(r).map(|(b, k, _)| (b.to_owned(), k.to_owned()))))
                .take(DRILL_OBJECTS)
                .map(|r| (*r).clone())
                .collect()
        }
        _ => vec![(*newest).clone()],
    }
}

/// Backup bucket, key and version id of an S3 backup record (its details; else its id,
/// `<bucket>/<key>#<version>`).
fn s3_location(record: &CatalogRecord) -> Option<(&str, &str, &str)> {
    let details = &record.details;
    if let (Some(bucket), Some(key), Some(version)) =
        (details.get("bucket"), details.get("key"), details.get("version_id"))
    {
        return Some((bucket, key, version));
    }
    let (location, version) = record.artifact.id.rsplit_once('#')?;
    let (bucket, key) = location.split_once('/')?;
    Some((bucket, key, version))
}

/// The records an earlier attempt of this drill already validated and recorded.
fn recorded_drill(records: &[CatalogRecord], task_id: &TaskId) -> Vec<CatalogRecord> {
    records
        .iter()
        .filter(|r| {
            r.verification.as_ref().and_then(|v| v.checks.get(CHECK_DRILL_TASK)).map(String::as_str)
                == Some(task_id.as_str())
        })
        .cloned()
        .collect()
}

/// A full-object SHA-256 (S3 suffixes composite ones `-<parts>`; moto drops the suffix, so the
/// catalog's `multipart` detail says it too).
fn full_checksum(record: &CatalogRecord) -> Option<&str> {
    let multipart = record.details.get("multipart").is_some_and(|m| m == "true");
    record.details.get("checksum_sha256").map(String::as_str).filter(|c| !c.contains('-') && !multipart)
}

impl Services {
    /// Restores what `chosen` backs up into the drill's isolated targets (find or create), and
    /// validates it once everything is available.
    async fn drill_step(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        chosen: &[CatalogRecord],
        timed_out: bool,
    ) -> Result<DrillStep, TaskError> {
        match chosen[0].artifact.kind {
            ArtifactKind::EbsSnapshot | ArtifactKind::Ami => self.drill_volumes(p, ctx, chosen, timed_out).await,
            ArtifactKind::RdsSnapshot => self.drill_db(p, ctx, &chosen[0], false, timed_out).await,
            ArtifactKind::RdsClusterSnapshot => self.drill_db(p, ctx, &chosen[0], true, timed_out).await,
            ArtifactKind::S3Object => self.drill_objects(p, ctx, chosen).await,
            ArtifactKind::DatabaseDump => {
                let drilled = self.drill_dump(p, ctx, &chosen[0]).await?;
                let mut checks = DrillChecks::new();
                for (name, ok, detail) in drilled.checks {
                    checks.check(name, ok, detail);
                }
                checks.restored.push(format!("{} (scratch database, dropped)", chosen[0].artifact.id));
                Ok(DrillStep::Validated(checks))
            }
            ArtifactKind::SnapshotExport => {
                Ok(DrillStep::Validated(DrillChecks::failed("snapshot exports are not drilled: drill the snapshots")))
            }
        }
    }

    async fn drill_volumes(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        chosen: &[CatalogRecord],
        timed_out: bool,
    ) -> Result<DrillStep, TaskError> {
        let region = &p.region;
        // (snapshot, the size it should restore to, where it is catalogued)
        let mut wanted: Vec<(String, Option<u64>, String)> = Vec::new();
        for record in chosen {
            match record.artifact.kind {
                ArtifactKind::EbsSnapshot => {
                    wanted.push((record.artifact.id.clone(), record.size_bytes, "catalog".into()));
                }
                _ => {
                    let image = self
                        .block
                        .images(region, std::slice::from_ref(&record.artifact.id))
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| {
                            TaskError::permanent(format!("image {} no longer exists in {region}", record.artifact.id))
                        })?;
                    // An AMI records no size in the catalog: its snapshots' own sizes are the reference.
                    for snapshot in self.block.snapshots(region, &image.snapshot_ids).await? {
                        wanted.push((snapshot.id, snapshot.size_gib.map(|g| g as u64 * GIB), "snapshot".into()));
                    }
                }
            }
        }
        if wanted.is_empty() {
            return Ok(DrillStep::Validated(DrillChecks::failed("the backup has no snapshots to restore")));
        }
        let existing: Vec<VolumeInfo> = self
            .block
            .volumes_tagged(region, tags::TASK_ID, ctx.task_id.as_str())
            .await?
            .into_iter()
            .filter(live_volume)
            .collect();
        // Volumes an earlier attempt of this drill created, by the ids their creates answered
        // with (a tag lookup may not see a new volume yet).
        let known: BTreeMap<String, String> = ctx
            .checkpoint
            .as_ref()
            .and_then(|c| c.pointer("/progress/volumes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["snapshot_id"].as_str()?.to_owned(), v["volume_id"].as_str()?.to_owned())))
            .collect();
        let mut volumes: Vec<(String, Option<u64>, String, VolumeInfo)> = Vec::new();
        let mut waiting = Vec::new();
        for (snapshot_id, expected, reference) in wanted {
            let mut found = existing.iter().find(|v| v.tags.get(tags::RESTORED_FROM) == Some(&snapshot_id)).cloned();
            if let (None, Some(volume_id)) = (&found, known.get(&snapshot_id)) {
                found = self.block.volume(region, volume_id).await?;
                if found.is_none() {
                    waiting.push(
                        json!({ "snapshot_id": snapshot_id, "volume_id": volume_id, "state": "not visible yet" }),
                    );
                    continue;
                }
            }
            let volume = match found {
                Some(volume) => volume,
                None => {
                    let source_volume = chosen
                        .iter()
                        .find(|r| r.artifact.id == snapshot_id)
                        .and_then(|r| r.details.get("volume_id").cloned());
                    // The drill plan's isolated subnet decides the zone; without one, next to the
                    // source volume when it still exists, else the region's first zone.
                    let zone = match (&p.target.subnet_id, source_volume) {
                        (Some(subnet), _) => Some(self.block.subnet_zone(region, subnet).await?.ok_or_else(|| {
                            TaskError::permanent(format!("drill.target_subnet {subnet} does not exist in {region}"))
                        })?),
                        (None, Some(volume)) => {
                            self.block.volume(region, &volume).await?.and_then(|v| v.availability_zone)
                        }
                        (None, None) => None,
                    };
                    let mut token = format!("{}-{snapshot_id}", ctx.task_id);
                    token.truncate(64);
                    let new = NewVolume {
                        snapshot_id: snapshot_id.clone(),
                        availability_zone: zone.unwrap_or_else(|| format!("{region}a")),
                        volume_type: None,
                        kms_key: None,
                        tags: restore_tags(&ctx.task_id, &snapshot_id, Some(&p.plan)),
                        client_token: token,
                    };
                    ctx.may_start("the drill's volume restore")?;
                    match self.start_volume(region, &snapshot_id, new).await? {
                        Ok(volume) => volume,
                        Err(progress) => {
                            waiting.push(progress);
                            continue;
                        }
                    }
                }
            };
            volumes.push((snapshot_id, expected, reference, volume));
        }
        let pending = !waiting.is_empty()
            || volumes.iter().any(|(_, _, _, v)| !matches!(v.state.as_deref(), Some("available" | "error")));
        if pending && !timed_out {
            let states: Vec<Value> = volumes
                .iter()
                .map(|(s, _, _, v)| json!({ "snapshot_id": s, "volume_id": v.id, "state": v.state }))
                .chain(waiting.iter().filter(|w| w.get("volume_id").is_some()).cloned())
                .collect();
            return Ok(DrillStep::Waiting(json!({ "volumes": states, "waiting": waiting })));
        }
        let mut checks = DrillChecks::new();
        if !waiting.is_empty() {
            checks.check("restore", false, format!("snapshots still not restorable: {waiting:?}"));
        }
        for (snapshot_id, expected, reference, volume) in volumes {
            checks.restored.push(volume.id.clone());
            let available = volume.state.as_deref() == Some("available");
            checks.check(
                format!("{snapshot_id}.available"),
                available,
                format!("volume {} is {}", volume.id, volume.state.as_deref().unwrap_or("unknown")),
            );
            let actual = volume.size_gib as u64 * GIB;
            match expected {
                Some(expected) => checks.check(
                    format!("{snapshot_id}.size"),
                    actual == expected,
                    format!("{} GiB restored, {reference} says {} bytes", volume.size_gib, expected),
                ),
                None => {
                    checks.check(format!("{snapshot_id}.size"), actual > 0, format!("{} GiB restored", volume.size_gib))
                }
            }
        }
        Ok(DrillStep::Validated(checks))
    }

    async fn drill_db(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        record: &CatalogRecord,
        cluster: bool,
        timed_out: bool,
    ) -> Result<DrillStep, TaskError> {
        let region = &p.region;
        let target = drill_identifier(&ctx.task_id);
        let noun = if cluster { "DB cluster" } else { "DB instance" };
        let found = if cluster {
            self.databases.cluster(region, &target).await?.map(|c| (c.status, c.allocated_gib, c.tags))
        } else {
            self.databases.instance(region, &target).await?.map(|i| (i.status, i.allocated_gib, i.tags))
        };
        let (status, allocated_gib) = match found {
            Some((status, gib, tags)) => {
                owned_db(noun, &target, &tags, &ctx.task_id)?;
                (status, gib)
            }
            None => {
                // Started by an earlier attempt and not visible yet: restoring again would
                // replace (or be refused), so wait for it to show.
                if let Some(started) = drill_started(ctx).filter(|s| s.ids.contains(&target)) {
                    if self.maybe_not_visible_yet(&started) {
                        return Ok(DrillStep::Waiting(
                            json!({ "target": target, "status": "not visible yet", "started": started }),
                        ));
                    }
                }
                let snapshot_id = &record.artifact.id;
                let snapshot = self.databases.snapshot(region, cluster, snapshot_id).await?.ok_or_else(|| {
                    TaskError::permanent(format!("snapshot {snapshot_id} no longer exists in {region}"))
                })?;
                match &snapshot.status {
                    ArtifactStatus::Failed { reason } => {
                        return Ok(DrillStep::Validated(DrillChecks::failed(format!(
                            "snapshot {snapshot_id} failed: {reason}"
                        ))))
                    }
                    ArtifactStatus::Pending { .. } if !timed_out => {
                        return Ok(DrillStep::Waiting(waiting_for("snapshot", snapshot_id, &snapshot.status)))
                    }
                    _ => {}
                }
                let tags = restore_tags(&ctx.task_id, snapshot_id, Some(&p.plan));
                ctx.may_start("the drill's database restore")?;
                let restored = if cluster {
                    let engine = snapshot
                        .engine
                        .clone()
                        .or_else(|| record.details.get("engine").cloned())
                        .ok_or_else(|| TaskError::permanent(format!("the engine of {snapshot_id} is unknown")))?;
                    self.databases
                        .restore_cluster(
                            region,
                            snapshot_id,
                            &target,
                            &engine,
                            p.target.db_subnet_group.as_deref(),
                            &tags,
                        )
                        .await
                        .map(|c| (c.status, c.allocated_gib))
                } else {
                    self.databases
                        .restore_instance(
                            region,
                            snapshot_id,
                            &target,
                            p.target.instance_class.as_deref(),
                            p.target.db_subnet_group.as_deref(),
                            &tags,
                        )
                        .await
                        .map(|i| (i.status, i.allocated_gib))
                };
                match restored {
                    Ok(restored) => restored,
                    // Made by an earlier attempt and not visible yet (the name is this task's):
                    // look again; ownership is checked once it shows.
                    Err(err) if already_exists(&err) => {
                        let started = drill_started(ctx)
                            .filter(|s| s.ids.contains(&target))
                            .unwrap_or_else(|| Started::now(vec![target.clone()]));
                        return Ok(DrillStep::Waiting(
                            json!({ "target": target, "status": "exists, not visible yet", "started": started }),
                        ));
                    }
                    Err(err) if matches!(err.class, ErrorClass::Permanent) => {
                        return Ok(DrillStep::Validated(DrillChecks::failed(format!("restore refused: {err}"))))
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        let available = status.as_deref() == Some("available");
        if !available && !db_failed(status.as_deref()) && !timed_out {
            let started = drill_started(ctx)
                .filter(|s| s.ids.contains(&target))
                .unwrap_or_else(|| Started::now(vec![target.clone()]));
            return Ok(DrillStep::Waiting(json!({ "target": target, "status": status, "started": started })));
        }
        let mut checks = DrillChecks::new();
        checks.restored.push(target.clone());
        checks.check("available", available, format!("{noun} {target} is {}", status.as_deref().unwrap_or("unknown")));
        match (allocated_gib, record.size_bytes) {
            (Some(gib), Some(expected)) => checks.check(
                "size",
                gib as u64 * GIB == expected,
                format!("{gib} GiB restored, catalog says {expected} bytes"),
            ),
            (gib, expected) => {
                checks.check("size", true, format!("not comparable ({gib:?} GiB, catalog {expected:?})"))
            }
        }
        Ok(DrillStep::Validated(checks))
    }

    async fn drill_objects(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        chosen: &[CatalogRecord],
    ) -> Result<DrillStep, TaskError> {
        let prefix = drill_prefix(&ctx.task_id);
        let restore = restore_tags(&ctx.task_id, "", Some(&p.plan));
        let copies: Vec<_> = chosen
            .iter()
            .filter_map(|record| {
                let (bucket, key, version) = s3_location(record)?;
                let mut tags = restore.clone();
                tags.insert(tags::RESTORED_FROM.to_owned(), version.to_owned());
                let copy = VersionCopy {
                    region: &record.artifact.region,
                    backup_bucket: bucket,
                    backup_key: key,
                    version_id: version,
                    size: record.size_bytes.unwrap_or_default(),
                    target_bucket: bucket,
                    target_key: format!("{prefix}{key}"),
                };
                Some(async move { (record, self.restore_version(copy, &tags, ctx).await) })
            })
            .collect();
        let outcomes: Vec<(&CatalogRecord, Result<RestoredObject, TaskError>)> =
            futures::stream::iter(copies).buffer_unordered(OBJECT_CONCURRENCY).collect().await;
        let mut checks = DrillChecks::new();
        if outcomes.len() < chosen.len() {
            checks.check("records", false, format!("{} records name no object", chosen.len() - outcomes.len()));
        }
        for (record, outcome) in outcomes {
            let name = record.details.get("key").cloned().unwrap_or_else(|| record.artifact.id.clone());
            let object = match outcome {
                Ok(object) if object.waiting_for_archive => {
                    // A drill samples instantly readable backups; an archived one would keep
                    // it waiting for hours.
                    checks.check(format!("{name}.restore"), false, "the backup is in GLACIER or DEEP_ARCHIVE");
                    continue;
                }
                Ok(object) => object,
                Err(err) if matches!(err.class, ErrorClass::Permanent) => {
                    checks.check(format!("{name}.restore"), false, err.reason);
                    continue;
                }
                Err(err) => return Err(err),
            };
            checks.restored.push(object.key.clone());
            if let Some(expected) = record.size_bytes {
                checks.check(
                    format!("{name}.size"),
                    object.head.size == expected,
                    format!("{} bytes restored, catalog says {expected}", object.head.size),
                );
            }
            let Some(expected) = full_checksum(record) else {
                checks.check(format!("{name}.checksum"), true, "no full-object checksum in the catalog: size only");
                continue;
            };
            let restored = object.head.checksum_sha256.as_deref().filter(|c| !c.contains('-') && !object.multipart);
            let actual = match restored {
                Some(actual) => Some(actual.to_owned()),
                None if object.head.size <= HASH_LIMIT => {
                    let (region, bucket) = (&record.artifact.region, s3_location(record).map_or("", |l| l.0));
                    let bytes =
                        self.objects.get_bytes(region, bucket, &object.key, object.head.version_id.as_deref()).await?;
                    Some(sha256_base64(&bytes))
                }
                None => None,
            };
            match actual {
                Some(actual) => checks.check(
                    format!("{name}.checksum"),
                    actual == expected,
                    format!("sha256 {actual}, catalog {expected}"),
                ),
                None => checks.check(format!("{name}.checksum"), true, "too large to read back: size only"),
            }
        }
        Ok(DrillStep::Validated(checks))
    }

    /// Whether the drill's database (instance or cluster) exists, is not being deleted already,
    /// and is ours: only what carries this task's id may be deleted (and must be accounted for).
    async fn live_drill_database(
        &self,
        region: &str,
        cluster: bool,
        target: &str,
        task: &str,
    ) -> Result<bool, TaskError> {
        let live = |tags: &Tags, status: Option<&str>| {
            tags.get(tags::TASK_ID).map(String::as_str) == Some(task) && status != Some("deleting")
        };
        Ok(if cluster {
            self.databases.cluster(region, target).await?.is_some_and(|c| live(&c.tags, c.status.as_deref()))
        } else {
            self.databases.instance(region, target).await?.is_some_and(|db| live(&db.tags, db.status.as_deref()))
        })
    }

    /// Deletes everything this drill restored, found by the task id (EC2 tags, the RDS identifier,
    /// the S3 prefix) rather than by what this attempt remembers, then confirms nothing is left.
    async fn drill_cleanup(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        buckets: &BTreeSet<(String, String)>,
    ) -> Result<Vec<String>, TaskError> {
        let region = &p.region;
        let task = ctx.task_id.as_str();
        let mut deleted = Vec::new();
        let mut left = Vec::new();
        match p.resource_type {
            ResourceType::Ec2Volume | ResourceType::Ec2Instance => {
                for instance in self.block.instances_tagged(region, tags::TASK_ID, task).await? {
                    if live_instance(&instance) {
                        self.block.terminate_instance(region, &instance.id).await?;
                        deleted.push(instance.id);
                    }
                }
                for volume in self.block.volumes_tagged(region, tags::TASK_ID, task).await? {
                    if live_volume(&volume) {
                        self.block.delete_volume(region, &volume.id).await?;
                        deleted.push(volume.id);
                    }
                }
                left.extend(
                    self.block
                        .volumes_tagged(region, tags::TASK_ID, task)
                        .await?
                        .into_iter()
                        .filter(live_volume)
                        .map(|v| v.id),
                );
                left.extend(
                    self.block
                        .instances_tagged(region, tags::TASK_ID, task)
                        .await?
                        .into_iter()
                        .filter(live_instance)
                        .map(|i| i.id),
                );
            }
            ResourceType::RdsInstance | ResourceType::RdsCluster => {
                // A drill's cluster has no instances (restores make none), so it deletes at once.
                let cluster = p.resource_type == ResourceType::RdsCluster;
                let target = drill_identifier(&ctx.task_id);
                if self.live_drill_database(region, cluster, &target, task).await? {
                    if cluster {
                        self.databases.delete_cluster(region, &target).await?;
                    } else {
                        self.databases.delete_instance(region, &target).await?;
                    }
                    deleted.push(target.clone());
                }
                if self.live_drill_database(region, cluster, &target, task).await? {
                    left.push(target);
                }
            }
            ResourceType::PostgresDb => {
                // The scratch database is dropped by the drill itself; drop it again in case an
                // attempt died between creating and dropping it.
                if let Some(secret) = p.target.scratch_secret_arn.as_deref() {
                    let secret_region = backup_core::services::secrets::secret_region(secret).unwrap_or(region);
                    let server = self.connection(secret_region, secret).await?;
                    let scratch = crate::handlers::logical::scratch_database(&ctx.task_id);
                    self.logical
                        .tools
                        .drop_database(&server, &scratch)
                        .await
                        .map_err(crate::handlers::logical::pg_error)?;
                }
            }
            ResourceType::S3Bucket => {
                let prefix = drill_prefix(&ctx.task_id);
                for (bucket_region, bucket) in buckets {
                    for version in self.objects.list_versions(bucket_region, bucket, &prefix).await? {
                        self.objects.delete_version(bucket_region, bucket, &version.key, &version.version_id).await?;
                        deleted.push(format!("{bucket}/{}", version.key));
                    }
                    left.extend(
                        self.objects
                            .list_versions(bucket_region, bucket, &prefix)
                            .await?
                            .into_iter()
                            .map(|v| format!("{bucket}/{}#{}", v.key, v.version_id)),
                    );
                }
            }
        }
        if !left.is_empty() {
            return Err(retry(format!("drill clean-up incomplete: still present: {left:?}")));
        }
        Ok(deleted)
    }

    /// Records the drill on each drilled backup's verification, keeping the other checks.
    async fn record_drill(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        chosen: &[CatalogRecord],
        checks: &DrillChecks,
        restore_seconds: f64,
    ) -> Result<(), TaskError> {
        let now = Utc::now();
        for record in chosen {
            let mut all = record.verification.as_ref().map(|v| v.checks.clone()).unwrap_or_default();
            all.retain(|key, _| !is_drill_check(key));
            let backup_ok = all.values().all(|v| v.starts_with("ok"));
            all.insert(CHECK_DRILL.into(), checks.summary());
            all.insert(CHECK_RESTORE_SECONDS.into(), format!("{restore_seconds:.1}"));
            all.insert(CHECK_DRILL_TASK.into(), ctx.task_id.to_string());
            all.insert(CHECK_DRILL_PLAN.into(), p.plan.clone());
            all.insert(CHECK_DRILL_TYPE.into(), p.resource_type.as_str().to_owned());
            let verification = Verification { verified_at: now, ok: backup_ok && checks.ok, checks: all };
            self.catalog.set_verification(&record.artifact, &verification).await?;
        }
        Ok(())
    }
}

/// The S3 backup buckets a drill of `records` restores into.
fn drill_buckets(records: &[CatalogRecord]) -> BTreeSet<(String, String)> {
    records
        .iter()
        .filter(|r| r.artifact.kind == ArtifactKind::S3Object)
        .filter_map(|r| s3_location(r).map(|(bucket, _, _)| (r.artifact.region.clone(), bucket.to_owned())))
        .collect()
}

fn drill_result(
    p: &RestoreDrill,
    chosen: &[CatalogRecord],
    ok: bool,
    summary: &str,
    restore_seconds: Option<f64>,
    checks: Option<&BTreeMap<String, String>>,
    cleaned: &[String],
) -> Value {
    json!({
        "plan": p.plan,
        "resource": p.resource,
        "resource_type": p.resource_type,
        "region": p.region,
        "ok": ok,
        "drill": summary,
        "restore_seconds": restore_seconds,
        "artifacts": chosen.iter().map(|r| &r.artifact.id).collect::<Vec<_>>(),
        "checks": checks,
        "cleaned_up": cleaned,
    })
}

/// The fleet-wide pool of a drill plan's concurrent drills (`drill.max_parallel`).
fn drill_pool(plan: &str) -> String {
    format!("drill:{plan}")
}

#[async_trait]
impl Handler<RestoreDrill> for Services {
    /// Holds one of the plan's `max_parallel` drill slots while the drill runs (parking
    /// included): a drill that finds them all taken waits for capacity. The slot goes back on
    /// every outcome that ends the drill.
    async fn run(&self, p: &RestoreDrill, ctx: &TaskContext) -> HandlerResult {
        let Some(limit) = p.target.max_parallel else { return self.run_drill(p, ctx).await };
        let pool = drill_pool(&p.plan);
        // A re-check of a running drill renews the slot it holds: never refused from a worker's
        // memory of a full pool.
        let held = if ctx.checkpoint.is_some() {
            self.slots.renew(&pool, &ctx.task_id, limit, self.timing.slot_hold).await?
        } else {
            self.slots.acquire(&pool, &ctx.task_id, limit, self.timing.slot_hold).await?
        };
        if !held {
            return Err(TaskError::capacity(format!("{limit} drills of plan {} already running", p.plan))
                .with_retry_after(self.timing.recheck));
        }
        let result = self.run_drill(p, ctx).await;
        let keep = match &result {
            Ok(Outcome::Pending { .. }) => true,
            Ok(Outcome::Done { .. }) => false,
            Err(err) => err.is_retryable() && !err.is_capacity(),
        };
        if !keep {
            if let Err(err) = self.slots.release(&pool, &ctx.task_id).await {
                tracing::warn!(error = %err, "could not release a drill slot; its hold expires on its own");
            }
        }
        result
    }
}

impl Services {
    async fn run_drill(&self, p: &RestoreDrill, ctx: &TaskContext) -> HandlerResult {
        let checkpoint: DrillCheckpoint =
            ctx.checkpoint.clone().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
        let started_at = checkpoint.started_at.unwrap_or_else(Utc::now);
        let records = self.catalog.by_resource(&p.resource).await?;

        // An earlier attempt validated and recorded this drill, then could not finish cleaning up.
        let recorded = recorded_drill(&records, &ctx.task_id);
        if let Some(verification) = recorded.first().and_then(|r| r.verification.clone()) {
            let cleaned = self.drill_cleanup(p, ctx, &drill_buckets(&recorded)).await?;
            let summary = verification.checks.get(CHECK_DRILL).cloned().unwrap_or_default();
            let seconds = verification.checks.get(CHECK_RESTORE_SECONDS).and_then(|s| s.parse().ok());
            let ok = summary.starts_with("ok");
            let result = drill_result(p, &recorded, ok, &summary, seconds, None, &cleaned);
            return if ok {
                Ok(Outcome::done(result))
            } else {
                Err(TaskError::permanent(format!("restore drill of {} failed: {summary}", p.resource)))
            };
        }

        let chosen: Vec<CatalogRecord> = if checkpoint.artifacts.is_empty() {
            drill_choice(&records, p)
        } else {
            records.iter().filter(|r| checkpoint.artifacts.contains(&r.artifact)).cloned().collect()
        };
        if chosen.is_empty() {
            return Err(TaskError::permanent(format!(
                "no backup of {} in {} to drill ({} catalog records)",
                p.resource,
                p.region,
                records.len()
            )));
        }
        let buckets = drill_buckets(&chosen);
        // Past its deadline (or the drill's own time limit) a drill waits no longer: it validates
        // what was restored, records the outcome and cleans up, never leaving restores behind.
        let timed_out = Utc::now() - started_at > chrono::Duration::hours(DRILL_TIMEOUT_HOURS) || ctx.past_deadline();
        let checks = match self.drill_step(p, ctx, &chosen, timed_out).await {
            Ok(DrillStep::Waiting(progress)) => {
                let checkpoint = DrillCheckpoint {
                    started_at: Some(started_at),
                    artifacts: chosen.iter().map(|r| r.artifact.clone()).collect(),
                    progress,
                };
                return Ok(Outcome::Pending {
                    checkpoint: serde_json::to_value(checkpoint).unwrap_or_default(),
                    recheck_after: self.timing.recheck,
                });
            }
            Ok(DrillStep::Validated(checks)) => checks,
            // Draining: the next owner finds what this attempt restored.
            Err(err) if matches!(err.class, ErrorClass::Cancelled) => return Err(err),
            Err(err) => {
                // Never leave restores behind: clean up before giving the error back, and record
                // a drill that cannot succeed.
                if let Err(cleanup) = self.drill_cleanup(p, ctx, &buckets).await {
                    return Err(retry(format!("{}; and the drill clean-up failed: {}", err.reason, cleanup.reason)));
                }
                if !err.is_retryable() {
                    let checks = DrillChecks::failed(err.reason.clone());
                    self.record_drill(p, ctx, &chosen, &checks, 0.0).await?;
                }
                return Err(err);
            }
        };
        let restore_seconds = (Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
        let recorded = self.record_drill(p, ctx, &chosen, &checks, restore_seconds).await;
        let cleaned = match self.drill_cleanup(p, ctx, &buckets).await {
            Ok(cleaned) => cleaned,
            Err(err) => {
                return Err(retry(format!(
                    "drill {}; clean-up failed: {}",
                    if checks.ok { "passed" } else { "failed" },
                    err.reason
                )))
            }
        };
        recorded?;
        let summary = checks.summary();
        tracing::info!(resource = %p.resource, ok = checks.ok, restore_seconds, %summary, "restore drill finished");
        if checks.ok {
            let mut result =
                drill_result(p, &chosen, true, &summary, Some(restore_seconds), Some(&checks.checks), &cleaned);
            result["restored"] = json!(checks.restored);
            Ok(Outcome::done(result))
        } else {
            Err(TaskError::permanent(format!(
                "restore drill of {} failed validation ({} restored, cleaned up): {summary}",
                p.resource,
                checks.restored.join(", ")
            )))
        }
    }
}
