//! Logical backups of a real PostgreSQL server (`scripts/postgres.sh`, on loopback) into an
//! Object-Locked backup bucket on the realistic emulator, with credentials from Secrets Manager:
//! the dump lands locked with its SHA-256 and table statistics, verification re-reads it, and a
//! drill restores it into a scratch database and passes or fails on the data itself. A real worker
//! process runs a dump and a drill, and the secret's password appears in none of its logs, task
//! records, messages or catalog records.

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backup_core::artifacts::CatalogRecord;
use backup_logical::Tools;
use backup_schemas::*;
use backup_tests::{postgres, run_task, run_tree, services, Fleet, REGION};
use backup_worker::handlers::logical::{dump_key, scratch_database, LogicalSettings};
use backup_worker::{Handlers, Outcome};
use chrono::{TimeZone, Utc};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

fn ctx(window_hour: u32) -> BackupContext {
    let window = Utc.with_ymd_and_hms(2026, 11, 20, window_hour, 0, 0).unwrap();
    BackupContext {
        plan: "db-nightly".into(),
        tier: Tier::Daily,
        window,
        expires_at: Some(window + chrono::Duration::days(35)),
        copy_to: Vec::new(),
        verify: true,
        retain: None,
        export: None,
    }
}

/// Handlers with the real adapters and the test server's client tools, 5 MiB dump parts.
fn handlers(fleet: &Fleet) -> Arc<Handlers> {
    let mut services = services(fleet);
    services.logical = LogicalSettings {
        tools: Tools::new(Some(postgres().bin_dir.clone())),
        part_size: 5 * 1024 * 1024,
        ..LogicalSettings::default()
    };
    Arc::new(Handlers::with_services(services))
}

/// A versioned, Object Lock enabled backup bucket.
async fn backup_bucket(fleet: &Fleet) -> String {
    let s3 = fleet.aws.clients().s3;
    let bucket = format!("{}-bak", fleet.prefix).to_lowercase();
    s3.create_bucket().bucket(&bucket).object_lock_enabled_for_bucket(true).send().await.expect("create bucket");
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .expect("versioning");
    bucket
}

/// A secret holding the test server's connection to `dbname`; returns its ARN.
async fn secret(fleet: &Fleet, name: &str, dbname: &str) -> String {
    let created = fleet
        .aws
        .clients()
        .secrets
        .create_secret()
        .name(format!("{}-{name}", fleet.prefix))
        .secret_string(postgres().secret_json(dbname))
        .send()
        .await
        .expect("create secret");
    created.arn().expect("secret ARN").to_owned()
}

/// A database with data of many types, a table with a quoted name in its own schema, an empty
/// table, and enough rows for the dump to span several 5 MiB parts.
fn seed_database(prefix: &str) -> String {
    let pg = postgres();
    let db = format!("{}_src", prefix.replace('-', "_")).to_lowercase();
    pg.sql("postgres", &format!("CREATE DATABASE {db}"));
    pg.sql(
        &db,
        "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, joined timestamptz NOT NULL);
         CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric(12,2),
                              placed date, tags text[], payload jsonb, blob bytea, ratio double precision);
         CREATE SCHEMA \"Sales Ops\";
         CREATE TABLE \"Sales Ops\".\"Notes\" (id serial PRIMARY KEY, body text);
         CREATE TABLE empty_table (id int);
         INSERT INTO customers SELECT g, 'customer ' || g, '2026-01-01'::timestamptz + g * interval '1 hour'
           FROM generate_series(1, 500) g;
         INSERT INTO orders SELECT g, 1 + g % 500, (g * 1.37)::numeric(12,2), date '2026-01-01' + g % 300,
                                   ARRAY['a' || g % 7, 'b'], jsonb_build_object('n', g, 'even', g % 2 = 0),
                                   decode(md5(g::text), 'hex'), g / 7.0
           FROM generate_series(1, 20000) g;
         INSERT INTO \"Sales Ops\".\"Notes\" (body)
           SELECT (SELECT string_agg(md5(g::text || '/' || i::text), '') FROM generate_series(1, 100) i)
           FROM generate_series(1, 4000) g;",
    );
    db
}

fn dump_task(name: &str, secret_arn: &str, bucket: &str, window_hour: u32) -> Task {
    Task::DumpDatabase(DumpDatabase {
        region: REGION.into(),
        database: LogicalDatabase { name: name.into(), engine: DbEngine::Postgres, secret_arn: secret_arn.into() },
        dest: S3Destination { bucket: bucket.into(), region: REGION.into(), storage_class: None, lock_days: Some(7) },
        ctx: ctx(window_hour),
    })
}

fn drill_task(name: &str, scratch_secret: &str, checks: Vec<SqlCheck>, window_hour: u32) -> Task {
    Task::RestoreDrill(RestoreDrill {
        plan: "db-drill".into(),
        resource: name.into(),
        resource_type: ResourceType::PostgresDb,
        region: REGION.into(),
        window: Utc.with_ymd_and_hms(2026, 11, 21, window_hour, 0, 0).unwrap(),
        target: DrillTarget {
            scratch_secret_arn: Some(scratch_secret.into()),
            checks,
            max_parallel: Some(1),
            ..DrillTarget::default()
        },
    })
}

fn check(name: &str, sql: &str, expect: &str) -> SqlCheck {
    SqlCheck { name: name.into(), sql: sql.into(), expect: expect.into() }
}

async fn dumps_of(fleet: &Fleet, name: &str) -> Vec<CatalogRecord> {
    let mut records = services(fleet).catalog.by_resource(name).await.expect("catalog");
    records.retain(|r| r.artifact.kind == ArtifactKind::DatabaseDump);
    records.sort_by_key(|r| r.created_at);
    records
}

fn drill_summary(record: &CatalogRecord) -> String {
    record.verification.as_ref().and_then(|v| v.checks.get("drill").cloned()).unwrap_or_default()
}

/// Whether a drill's scratch database exists on the test server.
fn scratch_exists(drill: &Task) -> bool {
    let name = scratch_database(&drill.id());
    postgres().sql("postgres", &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")) != "0"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_lands_locked_with_its_checksum_and_a_drill_proves_the_data_or_names_what_differs() {
    let fleet = Fleet::realistic("logical").await;
    let handlers = handlers(&fleet);
    let bucket = backup_bucket(&fleet).await;
    let db = seed_database(&fleet.prefix);
    let name = format!("{}-orders", fleet.prefix);
    let source_secret = secret(&fleet, "src", &db).await;
    let scratch_secret = secret(&fleet, "scratch", "postgres").await;

    // The dump and its verification (a child), against the realism layer.
    let ran = run_tree(&handlers, dump_task(&name, &source_secret, &bucket, 1)).await;
    for (task, outcome) in &ran {
        assert!(matches!(outcome, Ok(Outcome::Done { .. })), "{} did not succeed: {outcome:?}", task.kind());
    }
    assert_eq!(ran.iter().filter(|(t, _)| t.kind() == TaskKind::Verify).count(), 1, "the dump is verified");
    let dumps = dumps_of(&fleet, &name).await;
    assert_eq!(dumps.len(), 1, "one dump catalogued: {dumps:#?}");
    let dump = &dumps[0];
    let key = dump_key(&name, &ctx(1));
    assert_eq!(dump.details.get("key"), Some(&key));
    assert_eq!(dump.details.get("tables").map(String::as_str), Some("4"));
    assert_eq!(dump.details.get("rows").map(String::as_str), Some(&*(500 + 20000 + 4000).to_string()));
    assert!(dump.verification.as_ref().is_some_and(|v| v.ok), "verification: {:?}", dump.verification);

    // The object: its bytes hash to the recorded SHA-256, it is a pg_dump custom archive, it is
    // under Object Lock, it spans several parts, and the manifest beside it is locked too.
    let s3 = fleet.aws.clients().s3;
    let version = dump.details.get("version_id").cloned();
    let object = s3.get_object().bucket(&bucket).key(&key).set_version_id(version.clone()).send().await.unwrap();
    assert!(object.object_lock_retain_until_date().is_some(), "the dump is under Object Lock");
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert!(bytes.starts_with(b"PGDMP"), "a pg_dump custom-format archive");
    assert!(bytes.len() > 5 * 1024 * 1024, "large enough to need several parts: {} bytes", bytes.len());
    let digest: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(dump.details.get("sha256"), Some(&digest));
    assert_eq!(dump.size_bytes, Some(bytes.len() as u64));
    let manifest_key = format!("{key}.manifest.json");
    let manifest = s3.head_object().bucket(&bucket).key(&manifest_key).send().await.unwrap();
    assert!(manifest.object_lock_retain_until_date().is_some(), "the manifest is under Object Lock");

    // A re-run of the same task finds the manifest and makes no second dump.
    let again = run_task(&handlers, &dump_task(&name, &source_secret, &bucket, 1)).await.expect("re-run");
    let Outcome::Done { result, .. } = again else { panic!("re-run did not finish") };
    assert_eq!(result["adopted"], true, "{result}");
    let versions = s3.list_object_versions().bucket(&bucket).prefix(&key).send().await.unwrap();
    assert_eq!(versions.versions().iter().filter(|v| v.key() == Some(key.as_str())).count(), 1, "one dump version");

    // A drill restores it into a scratch database: the archive, pg_restore, every table and the
    // SQL checks pass, and the scratch database is gone afterwards.
    let checks = vec![
        check("customers", "select count(*) from customers", "500"),
        check(
            "orphans",
            "select count(*) from orders o left join customers c on c.id = o.customer_id where c.id is null",
            "0",
        ),
        check("notes", "select count(*) > 3999 from \"Sales Ops\".\"Notes\"", "t"),
    ];
    let passed_drill = drill_task(&name, &scratch_secret, checks, 1);
    let passed = run_task(&handlers, &passed_drill).await;
    let Ok(Outcome::Done { result, .. }) = passed else { panic!("the drill passes: {passed:?}") };
    let tables = result["checks"]["tables"].as_str().unwrap_or_default();
    assert!(tables.starts_with("ok: 4 tables, 24500 rows, every count and checksum as at backup time"), "{result}");
    for name in ["sha256", "pg_restore", "sql:customers", "sql:orphans", "sql:notes"] {
        assert!(result["checks"][name].as_str().is_some_and(|c| c.starts_with("ok")), "{name}: {result}");
    }
    let drilled = &dumps_of(&fleet, &name).await[0];
    let summary = drill_summary(drilled);
    assert!(summary.starts_with("ok: 6 checks passed"), "recorded on the dump: {summary}");
    assert!(!scratch_exists(&passed_drill), "the drill's scratch database was dropped");

    // A failing SQL check fails the drill and is named.
    let wrong = vec![check("customers", "select count(*) from customers", "501")];
    let failed = run_task(&handlers, &drill_task(&name, &scratch_secret, wrong, 2)).await;
    let err = failed.expect_err("a failing check fails the drill");
    assert!(err.reason.contains("sql:customers") && err.reason.contains("\"500\""), "{}", err.reason);

    // The archive in the bucket is replaced by a valid dump of different data (a version the
    // catalog now points at, with the original manifest): the drill fails on the checksum and
    // names the table whose rows differ.
    postgres().sql(&db, "UPDATE customers SET name = 'changed' WHERE id = 42");
    let other = std::process::Command::new(postgres().bin_dir.join("pg_dump"))
        .args(["--format=custom", "-h", "127.0.0.1", "-U", "postgres", "-p", &postgres().port.to_string(), &db])
        .env("PGPASSWORD", postgres().password)
        .output()
        .expect("pg_dump");
    assert!(other.status.success());
    let swapped = s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(other.stdout.into())
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let mut tampered = dump.clone();
    tampered.artifact.id = format!("{bucket}/{key}#{}", swapped.version_id().unwrap_or("null"));
    tampered.details.insert("version_id".into(), swapped.version_id().unwrap_or("null").into());
    tampered.created_at = dump.created_at + chrono::Duration::seconds(1);
    tampered.verification = None;
    services(&fleet).catalog.put(&tampered).await.unwrap();
    let tampered_drill = drill_task(&name, &scratch_secret, Vec::new(), 3);
    let failed = run_task(&handlers, &tampered_drill).await;
    let err = failed.expect_err("a restore that differs from the backup fails the drill");
    assert!(err.reason.contains("sha256: FAILED"), "{}", err.reason);
    assert!(err.reason.contains("public.customers: same 500 rows but different content"), "{}", err.reason);
    assert!(!scratch_exists(&tampered_drill), "the failed drill's scratch database was dropped too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_worker_dumps_and_drills_without_the_password_reaching_any_log_record_or_message() {
    let fleet = Fleet::realistic("logical-worker").await;
    let bucket = backup_bucket(&fleet).await;
    let db = seed_database(&fleet.prefix);
    let name = format!("{}-db", fleet.prefix);
    let source_secret = secret(&fleet, "src", &db).await;
    let scratch_secret = secret(&fleet, "scratch", "postgres").await;
    let bin_dir = postgres().bin_dir.display().to_string();
    let mut env = fleet.env();
    env.push(("BACKUP_PG_BIN_DIR".into(), bin_dir));
    env.push(("BACKUP_DUMP_PART_MIB".into(), "5".into()));
    env.push(("TEST_WORKER_LOG".into(), "debug".into()));
    let mut args: Vec<&str> = backup_tests::REALISTIC_WORKER_ARGS.to_vec();
    args.push("--exit-when-idle=6");
    let mut worker = backup_tests::FleetProcess::spawn("backup-worker", "worker", &fleet.prefix, &env, &args);

    let dump = dump_task(&name, &source_secret, &bucket, 4);
    let drill =
        drill_task(&name, &scratch_secret, vec![check("customers", "select count(*) from customers", "500")], 4);
    let envelope = |task: &Task| {
        Envelope::new(task.clone(), RunId::new("logical-run"), Origin::Operator { command: "test".into() }, Utc::now())
    };
    let dump_envelope = envelope(&dump);
    fleet.send(&dump_envelope).await;
    let done = fleet.wait_task(&dump.id(), Duration::from_secs(120), |r| r.state.is_terminal()).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:#?}\n{}", worker.log_tail(40));
    let drill_envelope = envelope(&drill);
    fleet.send(&drill_envelope).await;
    let drilled = fleet.wait_task(&drill.id(), Duration::from_secs(120), |r| r.state.is_terminal()).await;
    assert_eq!(drilled.state, TaskState::Succeeded, "{drilled:#?}\n{}", worker.log_tail(40));
    worker.wait_async(Duration::from_secs(60)).await;

    let password = postgres().password;
    let log =
        std::fs::read_to_string(std::env::temp_dir().join("backup-fleet-tests").join(&fleet.prefix).join("worker.log"))
            .expect("worker log");
    assert!(log.contains("logical backup complete"), "the log covers the dump:\n{}", worker.log_tail(20));
    assert!(!log.contains(password), "the password is in the worker's log");
    for record in [&done, &drilled] {
        assert!(!format!("{record:?}").contains(password), "the password is in a task record");
    }
    for envelope in [&dump_envelope, &drill_envelope] {
        assert!(!envelope.encode().unwrap().contains(password), "the password is in a task message");
    }
    let catalog = format!("{:?}", dumps_of(&fleet, &name).await);
    assert!(!catalog.contains(password), "the password is in the catalog");
    let stray: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("backup-fleet-pgpass-{}-", worker.pid())))
        .collect();
    assert!(stray.is_empty(), "password files left behind: {stray:?}");
}
