//! The policy file: the documented examples parse into the expected values, every validation rule
//! reports the plan and key at fault, and tag selectors behave as documented.

use backup_core::policy::{InstanceBackup, PlanKind, Policy, PolicyError, Selector};
use backup_core::schedule::Schedule;
use backup_schemas::{CopyTarget, ResourceType, RetentionRules, S3Destination, Tier};
use chrono::{Duration, TimeZone, Utc};
use std::collections::BTreeMap;
use std::path::Path;

const BRIEF_EXAMPLE: &str = r#"
[[plan]]
name = "daily"                       # unique
schedule = "cron(0 2 * * ? *)"       # EventBridge cron() or rate() syntax, UTC
resources = ["ec2-volume", "ec2-instance", "rds-instance", "rds-cluster", "s3-bucket"]
regions = ["us-east-1"]              # where to discover; default: AWS_REGION
select.tags = { backup = "daily" }   # all must match (AND)
select.exclude_tags = { backup-skip = "true" }
retain = { days = 7, count = 7, min_keep = 3 }
copy_to = [{ region = "us-west-2", retain_days = 30, kms_key = "alias/backup" }]
s3 = { backup_bucket = "org-backups", storage_class = "STANDARD_IA", lock_days = 30 }
"#;

/// A valid plan named "p", one line per key so tests can drop or replace keys.
const BASE: &[(&str, &str)] = &[
    ("name", r#"name = "p""#),
    ("schedule", r#"schedule = "cron(0 2 * * ? *)""#),
    ("resources", r#"resources = ["ec2-volume"]"#),
    ("regions", r#"regions = ["us-east-1"]"#),
    ("select", r#"select.tags = { backup = "daily" }"#),
    ("retain", "retain = { days = 7 }"),
];

/// The base plan without the keys in `drop`, plus `extra` lines (which may redefine dropped keys).
fn plan(drop: &[&str], extra: &str) -> String {
    let mut text = String::from("[[plan]]\n");
    for (key, line) in BASE {
        if !drop.contains(key) {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(extra);
    text.push('\n');
    text
}

fn parse(text: &str) -> Policy {
    Policy::from_toml_str(text, "eu-west-1").unwrap_or_else(|e| panic!("should parse: {e}\n{text}"))
}

fn error(text: &str) -> String {
    match Policy::from_toml_str(text, "eu-west-1") {
        Ok(policy) => panic!("should fail:\n{text}\nparsed: {policy:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts the error names `plan` (e.g. `plan "p"` or `plan #2`) and `key`, and says `what`.
#[track_caller]
fn assert_error(text: &str, plan: &str, key: &str, what: &str) {
    let message = error(text);
    let prefix = format!("{plan}: key \"{key}\": ");
    assert!(message.starts_with(&prefix), "{message:?} should start with {prefix:?}");
    assert!(message.contains(what), "{message:?} should contain {what:?}");
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn brief_example_parses_into_expected_values() {
    let policy = parse(BRIEF_EXAMPLE);
    assert_eq!(policy.plans.len(), 1);
    let plan = policy.plan("daily").expect("plan daily");
    assert_eq!(plan.name, "daily");
    assert_eq!(plan.schedule, "cron(0 2 * * ? *)".parse::<Schedule>().unwrap());
    assert_eq!(
        plan.resources,
        ResourceType::ALL.into_iter().filter(|r| *r != ResourceType::PostgresDb).collect::<Vec<_>>()
    );
    assert_eq!(plan.regions, ["us-east-1"]);
    assert_eq!(plan.select.tags, tags(&[("backup", "daily")]));
    assert_eq!(plan.select.exclude_tags, tags(&[("backup-skip", "true")]));
    assert_eq!(plan.retain, RetentionRules { days: Some(7), count: Some(7), min_keep: 3, ..Default::default() });
    assert_eq!(
        plan.copy_to,
        [CopyTarget {
            region: "us-west-2".into(),
            kms_key: Some("alias/backup".into()),
            retain_days: Some(30),
            ..Default::default()
        }]
    );
    let s3 = plan.s3.as_ref().expect("s3 settings");
    assert_eq!(s3.backup_bucket, "org-backups");
    assert_eq!(s3.storage_class.as_deref(), Some("STANDARD_IA"));
    assert_eq!(s3.lock_days, Some(30));
    assert_eq!(s3.prefix, None);
    // Defaults.
    assert_eq!(plan.tier, Tier::Daily);
    assert_eq!(plan.instance_backup, InstanceBackup::Snapshots);
    assert!(plan.verify);
    assert!(!plan.final_snapshot_on_stop);
    assert!(plan.backup_on_create);
    assert_eq!(plan.deadline, None);
    assert!(plan.accounts.is_empty());
    assert_eq!(plan.kind, PlanKind::Backup);
    assert_eq!(plan.drill, None);
    assert!(policy.plan("weekly").is_none());
}

#[test]
fn context_expiry_and_s3_destination() {
    let policy = parse(BRIEF_EXAMPLE);
    let daily = &policy.plans[0];
    let window = Utc.with_ymd_and_hms(2024, 3, 10, 2, 0, 0).unwrap();
    let ctx = daily.context(window);
    assert_eq!(ctx.plan, "daily");
    assert_eq!(ctx.tier, Tier::Daily);
    assert_eq!(ctx.window, window);
    assert_eq!(ctx.expires_at, Some(Utc.with_ymd_and_hms(2024, 3, 17, 2, 0, 0).unwrap()));
    assert_eq!(ctx.copy_to, daily.copy_to);
    assert!(ctx.verify);
    assert_eq!(
        daily.s3_destination("us-east-1"),
        Some(S3Destination {
            bucket: "org-backups".into(),
            region: "us-east-1".into(),
            storage_class: Some("STANDARD_IA".into()),
            lock_days: Some(30),
        })
    );
    // Without a storage class, S3 backups take the plan's tier's (always instantly readable).
    let s3 = |tier: &str, class: &str| {
        let text = plan(
            &["resources"],
            &format!(
                "resources = [\"s3-bucket\"]\ntier = \"{tier}\"\ns3 = {{ backup_bucket = \"org-backups\"{class} }}"
            ),
        );
        parse(&text).plans[0].s3_destination("us-east-1").unwrap().storage_class
    };
    assert_eq!(s3("daily", ""), None, "the bucket's default, STANDARD");
    assert_eq!(s3("weekly", "").as_deref(), Some("STANDARD_IA"));
    assert_eq!(s3("monthly", "").as_deref(), Some("GLACIER_IR"));
    assert_eq!(s3("yearly", "").as_deref(), Some("GLACIER_IR"));
    assert_eq!(
        s3("yearly", ", storage_class = \"DEEP_ARCHIVE\"").as_deref(),
        Some("DEEP_ARCHIVE"),
        "the plan's own wins"
    );
    // Count-only retention: no expiry date.
    let policy = parse(&plan(&["retain"], "retain = { count = 5 }"));
    assert_eq!(policy.plans[0].expires_at(window), None);
    assert_eq!(policy.plans[0].s3_destination("us-east-1"), None);
}

#[test]
fn example_file_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policy.toml");
    let policy = Policy::load(&path, "eu-west-1").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let names: Vec<&str> = policy.plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["daily", "member-accounts", "weekly", "monthly", "web-ami", "orders-logical", "monthly-drill", "orders-drill"]
    );
    let members = policy.plan("member-accounts").unwrap();
    assert_eq!(members.accounts.len(), 2);
    assert!(!members.own_account);
    assert_eq!(members.copy_to[0].account.as_ref().map(|a| a.account_id.as_str()), Some("444455556666"));

    let daily = policy.plan("daily").unwrap();
    assert_eq!(daily.copy_to.len(), 2);
    assert_eq!(daily.s3.as_ref().and_then(|s| s.prefix.as_deref()), Some("data/"));
    assert!(daily.final_snapshot_on_stop);
    assert_eq!(daily.deadline, Some(Duration::hours(20)));
    assert!(daily.accounts.is_empty());
    assert!(daily.select.matches(&tags(&[("backup", "daily")])));
    assert!(!daily.select.matches(&tags(&[("backup", "daily"), ("ephemeral", "")])));

    let weekly = policy.plan("weekly").unwrap();
    assert_eq!(weekly.tier, Tier::Weekly);
    assert_eq!(weekly.regions, ["eu-west-1"], "default region");
    assert_eq!(weekly.retain, RetentionRules { weekly: Some(4), monthly: Some(12), min_keep: 4, ..Default::default() });
    assert_eq!(weekly.schedule.nominal_period(), Duration::days(7));
    assert_eq!(weekly.copy_to.len(), 1, "[[plan.copy_to]] sub-table");
    assert!(weekly.copy_to[0].kms_key.as_deref().is_some_and(|k| k.starts_with("arn:aws:kms:us-west-2:")));

    let monthly = policy.plan("monthly").unwrap();
    assert_eq!(monthly.tier, Tier::Monthly);
    let rule = monthly.retain.archive.as_ref().expect("archive rule");
    assert_eq!((rule.after_days, rule.unique_percent, rule.verify), (30, 40, true));
    assert!(rule.period_days.is_some_and(|d| d >= 28) && rule.copy_regions.is_empty(), "{rule:?}");

    let ami = policy.plan("web-ami").unwrap();
    assert_eq!(ami.instance_backup, InstanceBackup::Ami);
    assert_eq!(ami.schedule.nominal_period(), Duration::hours(12));
    assert!(!ami.verify && !ami.backup_on_create);

    let drill = policy.plan("monthly-drill").unwrap();
    assert!(drill.is_drill());
    assert_eq!(drill.retain, RetentionRules::default());
    assert!(drill.copy_to.is_empty() && !drill.verify && !drill.backup_on_create);
    let settings = drill.drill.as_ref().unwrap();
    assert_eq!((settings.sample, settings.max_parallel), (3, 2));
    assert_eq!(settings.target_subnet.as_deref(), Some("subnet-0a1b2c3d4e5f67890"));
    assert_eq!(settings.instance_class.as_deref(), Some("db.t3.micro"));

    let export = daily.context(chrono::Utc::now()).export.expect("daily exports its RDS snapshots");
    assert_eq!((export.bucket.as_str(), export.retain_days), ("org-backups", Some(365)));
    let logical = policy.plan("orders-logical").unwrap();
    let orders = logical.database("orders").and_then(|d| d.logical()).expect("orders is backed up logically");
    assert_eq!(orders.engine, backup_schemas::DbEngine::Postgres);
    assert_eq!(logical.database("orders").unwrap().region(), Some("us-east-1"));
    let drill = policy.plan("orders-drill").unwrap();
    assert_eq!(drill.database("orders").unwrap().checks.len(), 2);
    assert_eq!(drill.database("orders").unwrap().checks[0].expect, "t", "booleans read as psql prints them");
    assert!(drill.drill.as_ref().unwrap().scratch_secret_arn.is_some());
}

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";

fn db_plan(extra: &str) -> String {
    plan(
        &["resources", "select"],
        &format!("resources = [\"postgres-db\"]\ns3 = {{ backup_bucket = \"org-backups\" }}\n{extra}"),
    )
}

#[test]
fn databases_are_named_with_their_secret_and_every_mistake_is_refused() {
    let policy = parse(&db_plan(&format!("databases = [{{ name = \"orders\", secret_arn = \"{SECRET}\" }}]")));
    assert_eq!(policy.plans[0].databases[0].name, "orders");
    assert_error(&db_plan(""), "plan \"p\"", "databases", "missing");
    assert_error(&db_plan("databases = [{ name = \"orders\" }]"), "plan \"p\"", "databases[0].secret_arn", "missing");
    assert_error(
        &db_plan("databases = [{ name = \"orders\", secret_arn = \"orders-db\" }]"),
        "plan \"p\"",
        "databases[0].secret_arn",
        "not a Secrets Manager secret ARN",
    );
    assert_error(
        &db_plan(&format!("databases = [{{ name = \"orders\", secret_arn = \"{SECRET}\", engine = \"mysql\" }}]")),
        "plan \"p\"",
        "databases[0].engine",
        "only \"postgres\"",
    );
    assert_error(
        &db_plan(&format!(
            "databases = [{{ name = \"a\", secret_arn = \"{SECRET}\" }}, {{ name = \"a\", secret_arn = \"{SECRET}\" }}]"
        )),
        "plan \"p\"",
        "databases[1].name",
        "listed twice",
    );
    assert_error(
        &db_plan(&format!(
            "databases = [{{ name = \"a\", secret_arn = \"{SECRET}\", checks = [{{ name = \"c\", sql = \"select 1\", expect = 1 }}] }}]"
        )),
        "plan \"p\"",
        "databases[0].checks",
        "restore-drill plan",
    );
    // A plan without postgres-db may not list databases; one with it needs the bucket.
    assert_error(
        &plan(&[], &format!("databases = [{{ name = \"a\", secret_arn = \"{SECRET}\" }}]")),
        "plan \"p\"",
        "databases",
        "do not include postgres-db",
    );
    assert_error(
        &plan(
            &["resources", "select"],
            &format!("resources = [\"postgres-db\"]\ndatabases = [{{ name = \"a\", secret_arn = \"{SECRET}\" }}]"),
        ),
        "plan \"p\"",
        "s3",
        "postgres-db resources",
    );
}

#[test]
fn drills_of_databases_need_a_scratch_server_and_take_checks() {
    let drill = |extra: &str| {
        plan(
            &["retain", "resources", "select"],
            &format!("kind = \"restore-drill\"\nresources = [\"postgres-db\"]\n{extra}"),
        )
    };
    let ok = parse(&drill(&format!(
        "databases = [{{ name = \"orders\", checks = [{{ name = \"n\", sql = \"select count(*) from t\", expect = 3 }}] }}]\ndrill = {{ scratch_secret_arn = \"{SECRET}\" }}"
    )));
    assert_eq!(ok.plans[0].databases[0].checks[0].expect, "3");
    assert_error(
        &drill("databases = [{ name = \"orders\" }]\ndrill = {}"),
        "plan \"p\"",
        "drill.scratch_secret_arn",
        "missing",
    );
    assert_error(
        &drill(&format!("databases = [{{ name = \"orders\", secret_arn = \"{SECRET}\" }}]\ndrill = {{ scratch_secret_arn = \"{SECRET}\" }}")),
        "plan \"p\"",
        "databases[0].secret_arn",
        "not used by restore-drill plans",
    );
    assert_error(
        &drill(&format!(
            "databases = [{{ name = \"o\", checks = [{{ name = \"n\", sql = \"select 1\" }}] }}]\ndrill = {{ scratch_secret_arn = \"{SECRET}\" }}"
        )),
        "plan \"p\"",
        "databases[0].checks[0].expect",
        "missing",
    );
}

#[test]
fn exports_need_rds_a_role_a_key_a_bucket_and_a_lifetime() {
    let rds = |extra: &str| plan(&["resources"], &format!("resources = [\"rds-instance\"]\n{extra}"));
    let role = "arn:aws:iam::123456789012:role/rds-export";
    let full = format!("export = {{ iam_role_arn = \"{role}\", kms_key = \"alias/exports\", retain_days = 365 }}");
    let policy = parse(&rds(&format!("{full}\ns3 = {{ backup_bucket = \"org-backups\" }}")));
    let export = policy.plans[0].context(chrono::Utc::now()).export.unwrap();
    assert_eq!((export.iam_role_arn.as_str(), export.kms_key.as_str()), (role, "alias/exports"));
    assert_error(&rds(&full), "plan \"p\"", "s3", "export");
    assert_error(
        &rds(&format!(
            "export = {{ iam_role_arn = \"{role}\", kms_key = \"k\" }}\ns3 = {{ backup_bucket = \"org-backups\" }}"
        )),
        "plan \"p\"",
        "export.retain_days",
        "missing",
    );
    assert_error(
        &rds("export = { iam_role_arn = \"rds-export\", kms_key = \"k\", retain_days = 1 }\ns3 = { backup_bucket = \"org-backups\" }"),
        "plan \"p\"",
        "export.iam_role_arn",
        "not an IAM role ARN",
    );
    assert_error(
        &plan(&[], &format!("{full}\ns3 = {{ backup_bucket = \"org-backups\" }}")),
        "plan \"p\"",
        "export",
        "only RDS and Aurora",
    );
}

#[test]
fn drill_defaults() {
    let policy =
        parse(&plan(&["retain", "resources"], "kind = \"restore-drill\"\ndrill = {}\nresources = [\"rds-cluster\"]"));
    let drill = policy.plans[0].drill.as_ref().unwrap();
    assert_eq!((drill.sample, drill.max_parallel, drill.target_subnet.as_deref()), (1, 1, None));
}

#[test]
fn default_region_and_regions() {
    let policy = parse(&plan(&["regions"], ""));
    assert_eq!(policy.plans[0].regions, ["eu-west-1"]);
    let policy = parse(&plan(&["regions"], r#"regions = ["us-gov-west-1", "ap-southeast-2"]"#));
    assert_eq!(policy.plans[0].regions, ["us-gov-west-1", "ap-southeast-2"]);
    let e = Policy::from_toml_str(&plan(&["regions"], ""), "").unwrap_err().to_string();
    assert_eq!(e, "plan \"p\": key \"regions\": missing, and no default region (AWS_REGION) is set");
    let e = Policy::from_toml_str(&plan(&["regions"], ""), "moon").unwrap_err().to_string();
    assert!(e.starts_with("plan \"p\": key \"regions\": ") && e.contains("\"moon\""), "{e}");
}

#[test]
fn rate_schedules_and_tiers() {
    let policy = parse(&plan(&["schedule"], "schedule = \"rate(1 day)\"\ntier = \"monthly\""));
    assert_eq!(policy.plans[0].schedule.expression(), "rate(1 day)");
    assert_eq!(policy.plans[0].tier, Tier::Monthly);
}

// ---- file-level errors ----------------------------------------------------------------------

#[test]
fn empty_file_is_an_error() {
    assert!(error("").contains("empty"));
    assert!(error("  \n\n").contains("empty"));
}

#[test]
fn file_without_plans_is_an_error() {
    assert_eq!(error("# nothing here\n"), "policy: no plans: define at least one [[plan]]");
    assert!(error("plan = []").contains("no plans"));
}

#[test]
fn invalid_toml_is_an_error() {
    let e = error("[[plan]\nname = ");
    assert!(e.starts_with("policy is not valid TOML: "), "{e}");
}

#[test]
fn unknown_top_level_key_is_an_error() {
    let e = error(&plan(&[], "").replace("[[plan]]", "[[plans]]"));
    assert!(e.contains("key \"plans\": unknown key") && e.contains("did you mean [[plan]]"), "{e}");
    let e = error(&format!("version = 2\n{}", plan(&[], "")));
    assert!(e.contains("key \"version\": unknown key"), "{e}");
}

#[test]
fn plan_must_be_an_array_of_tables() {
    assert!(error("plan = \"daily\"").contains("expected [[plan]] tables"));
    let e = error("[plan]\nname = \"x\"");
    assert!(e.contains("expected [[plan]] tables"), "{e}");
}

// ---- name ---------------------------------------------------------------------------------------

#[test]
fn missing_name_is_reported_by_index() {
    let text = format!("{}{}", plan(&[], ""), plan(&["name"], ""));
    assert_eq!(error(&text), "plan #2: key \"name\": missing");
    assert_error(&plan(&["name"], "name = \"\""), "plan #1", "name", "empty");
    assert_error(&plan(&["name"], "name = 7"), "plan #1", "name", "expected a string, found integer");
}

#[test]
fn invalid_names_are_errors() {
    assert_error(&plan(&["name"], "name = \"my plan\""), "plan \"my plan\"", "name", "letters, digits");
    let long = "x".repeat(65);
    assert_error(&plan(&["name"], &format!("name = \"{long}\"")), &format!("plan \"{long}\""), "name", "1 to 64");
    parse(&plan(&["name"], &format!("name = \"{}\"", "x".repeat(64))));
    parse(&plan(&["name"], "name = \"Prod_db-2\""));
}

#[test]
fn duplicate_names_are_errors() {
    let text = format!("{}{}", plan(&[], ""), plan(&[], ""));
    assert_error(&text, "plan \"p\"", "name", "duplicate: plan #1");
}

// ---- unknown keys and types ---------------------------------------------------------------------

#[test]
fn unknown_keys_are_errors_with_suggestions() {
    assert_eq!(
        error(&plan(&[], "retian = { days = 3 }")),
        "plan \"p\": key \"retian\": unknown key (did you mean \"retain\"?)"
    );
    assert_eq!(
        error(&plan(&["retain"], "retain = { days = 7, dayz = 3 }")),
        "plan \"p\": key \"retain.dayz\": unknown key (did you mean \"retain.days\"?)"
    );
    assert_error(&plan(&[], "colour = \"blue\""), "plan \"p\"", "colour", "expected one of: name, kind, schedule");
    assert_error(&plan(&["select"], "select.tag = { a = \"b\" }"), "plan \"p\"", "select.tag", "did you mean");
    assert_error(
        &plan(&[], "copy_to = [{ region = \"us-west-2\", retain = 3 }]"),
        "plan \"p\"",
        "copy_to[0].retain",
        "unknown key",
    );
    assert_error(&plan(&[], "accounts = [{ account = \"1\" }]"), "plan \"p\"", "accounts[0].account", "unknown key");
    // A typo in the name key is reported as such, by index.
    assert_error(&plan(&["name"], "nmae = \"x\""), "plan #1", "nmae", "did you mean \"name\"");
}

#[test]
fn wrong_types_are_errors() {
    assert_error(&plan(&[], "verify = \"yes\""), "plan \"p\"", "verify", "expected true or false, found string");
    assert_error(&plan(&["resources"], "resources = \"ec2-volume\""), "plan \"p\"", "resources", "an array of strings");
    assert_error(&plan(&["resources"], "resources = [1]"), "plan \"p\"", "resources[0]", "expected a string");
    assert_error(&plan(&["retain"], "retain = { days = \"7\" }"), "plan \"p\"", "retain.days", "a whole number");
    assert_error(&plan(&["retain"], "retain = { days = -1 }"), "plan \"p\"", "retain.days", "negative");
    assert_error(&plan(&["retain"], "retain = 7"), "plan \"p\"", "retain", "expected a table, found integer");
    assert_error(&plan(&["select"], "select.tags = { backup = true }"), "plan \"p\"", "select.tags.backup", "a string");
    assert_error(&plan(&[], "copy_to = { region = \"us-west-2\" }"), "plan \"p\"", "copy_to", "an array of tables");
}

// ---- schedule -----------------------------------------------------------------------------------

#[test]
fn schedule_errors() {
    assert_eq!(error(&plan(&["schedule"], "")), "plan \"p\": key \"schedule\": missing");
    assert_eq!(
        error(&plan(&["schedule"], "schedule = \"rate(1 minutes)\"")),
        "plan \"p\": key \"schedule\": rate(1 minutes): use 'minute' for a value of 1"
    );
    assert_error(
        &plan(&["schedule"], "schedule = \"cron(0 2 * * * *)\""),
        "plan \"p\"",
        "schedule",
        "cron(0 2 * * * *): day-of-week: ",
    );
    assert_error(&plan(&["schedule"], "schedule = \"cron(0 0 30 2 ? *)\""), "plan \"p\"", "schedule", "day-of-month");
    assert_error(&plan(&["schedule"], "schedule = \"daily\""), "plan \"p\"", "schedule", "expected cron(");
}

// ---- resources and regions ----------------------------------------------------------------------

#[test]
fn resource_errors() {
    assert_error(&plan(&["resources"], ""), "plan \"p\"", "resources", "missing");
    assert_error(&plan(&["resources"], "resources = []"), "plan \"p\"", "resources", "empty");
    assert_error(
        &plan(&["resources"], "resources = [\"ebs\"]"),
        "plan \"p\"",
        "resources",
        "unknown resource type \"ebs\"",
    );
    assert_error(
        &plan(&["resources"], "resources = [\"ec2-volume\", \"ec2-volume\"]"),
        "plan \"p\"",
        "resources",
        "ec2-volume is listed twice",
    );
}

#[test]
fn region_errors() {
    for bad in ["US-EAST-1", "us-east", "useast-1", "us-east-12", "moon-base-1", "us_east_1"] {
        assert_error(
            &plan(&["regions"], &format!("regions = [\"{bad}\"]")),
            "plan \"p\"",
            "regions",
            "not an AWS region",
        );
    }
    assert_error(&plan(&["regions"], "regions = []"), "plan \"p\"", "regions", "empty");
    assert_error(
        &plan(&["regions"], "regions = [\"us-east-1\", \"us-east-1\"]"),
        "plan \"p\"",
        "regions",
        "listed twice",
    );
}

// ---- copy_to ------------------------------------------------------------------------------------

#[test]
fn copy_errors() {
    assert_error(&plan(&[], "copy_to = [{ retain_days = 3 }]"), "plan \"p\"", "copy_to[0].region", "missing");
    assert_error(
        &plan(&[], "copy_to = [{ region = \"mars-1\" }]"),
        "plan \"p\"",
        "copy_to[0].region",
        "not an AWS region",
    );
    assert_error(
        &plan(&[], "copy_to = [{ region = \"us-east-1\" }]"),
        "plan \"p\"",
        "copy_to[0].region",
        "us-east-1 is a source region of this plan",
    );
    assert_error(
        &plan(&[], "copy_to = [{ region = \"us-west-2\" }, { region = \"us-west-2\" }]"),
        "plan \"p\"",
        "copy_to[1].region",
        "listed twice",
    );
    assert_error(
        &plan(&[], "copy_to = [{ region = \"us-west-2\", retain_days = 0 }]"),
        "plan \"p\"",
        "copy_to[0].retain_days",
        "at least 1",
    );
    assert_error(
        &plan(&[], "copy_to = [{ region = \"us-west-2\", kms_key = \"\" }]"),
        "plan \"p\"",
        "copy_to[0].kms_key",
        "empty",
    );
    // The source region is the default region when the plan lists none.
    assert_error(
        &plan(&["regions"], "copy_to = [{ region = \"eu-west-1\" }]"),
        "plan \"p\"",
        "copy_to[0].region",
        "source region",
    );
}

// ---- retain -------------------------------------------------------------------------------------

#[test]
fn retain_errors() {
    assert_error(&plan(&["retain"], ""), "plan \"p\"", "retain", "missing");
    assert_error(&plan(&["retain"], "retain = { min_keep = 3 }"), "plan \"p\"", "retain", "at least one of days");
    assert_error(&plan(&["retain"], "retain = {}"), "plan \"p\"", "retain", "at least one of days");
    assert_eq!(
        error(&plan(&["name", "retain"], "name = \"daily\"\nretain = { count = 3, min_keep = 5 }")),
        "plan \"daily\": key \"retain.min_keep\": 5 exceeds retain.count 3"
    );
    assert_error(&plan(&["retain"], "retain = { days = 0 }"), "plan \"p\"", "retain.days", "at least 1");
    assert_error(&plan(&["retain"], "retain = { days = 36501 }"), "plan \"p\"", "retain.days", "exceeds 36500");
    assert_error(&plan(&["retain"], "retain = { weekly = 0 }"), "plan \"p\"", "retain.weekly", "at least 1");
    // GFS-only and min_keep without count are fine.
    let policy = parse(&plan(&["retain"], "retain = { daily = 7, weekly = 4, monthly = 6, min_keep = 10 }"));
    assert_eq!(policy.plans[0].retain.monthly, Some(6));
}

// ---- s3 -----------------------------------------------------------------------------------------

fn s3_plan(s3: &str) -> String {
    plan(&["resources"], &format!("resources = [\"s3-bucket\"]\n{s3}"))
}

#[test]
fn s3_errors() {
    assert_error(&s3_plan(""), "plan \"p\"", "s3", "missing: s3-bucket resources need s3.backup_bucket");
    assert_error(
        &plan(&[], "s3 = { backup_bucket = \"b-backups\" }"),
        "plan \"p\"",
        "s3",
        "nothing of this plan goes to a bucket",
    );
    assert_error(&s3_plan("s3 = { lock_days = 3 }"), "plan \"p\"", "s3.backup_bucket", "missing");
    assert_error(
        &s3_plan("s3 = { backup_bucket = \"Org_Backups\" }"),
        "plan \"p\"",
        "s3.backup_bucket",
        "not a valid S3 bucket name",
    );
    assert_error(
        &s3_plan("s3 = { backup_bucket = \"org-backups\", storage_class = \"COLD\" }"),
        "plan \"p\"",
        "s3.storage_class",
        "expected one of STANDARD, STANDARD_IA",
    );
    assert_error(
        &s3_plan("s3 = { backup_bucket = \"org-backups\", lock_days = 0 }"),
        "plan \"p\"",
        "s3.lock_days",
        "at least 1",
    );
    assert_error(
        &s3_plan("s3 = { backup_bucket = \"org-backups\", lock_days = 36501 }"),
        "plan \"p\"",
        "s3.lock_days",
        "exceeds 36500",
    );
    assert_error(
        &s3_plan("s3 = { backup_bucket = \"org-backups\", prefix = \"\" }"),
        "plan \"p\"",
        "s3.prefix",
        "empty",
    );
    for class in
        ["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"]
    {
        parse(&s3_plan(&format!(
            "s3 = {{ backup_bucket = \"org-backups\", storage_class = \"{class}\", lock_days = 36500 }}"
        )));
    }
}

// ---- other plan keys ----------------------------------------------------------------------------

#[test]
fn tier_errors() {
    assert_error(&plan(&[], "tier = \"hourly\""), "plan \"p\"", "tier", "expected \"daily\"");
    // Event and manual tiers are assigned by the fleet, never by a plan.
    assert_error(&plan(&[], "tier = \"event\""), "plan \"p\"", "tier", "expected \"daily\"");
    assert_error(&plan(&[], "tier = \"Weekly\""), "plan \"p\"", "tier", "expected \"daily\"");
}

#[test]
fn instance_backup_errors() {
    assert_error(
        &plan(&[], "instance_backup = \"image\""),
        "plan \"p\"",
        "instance_backup",
        "\"snapshots\" or \"ami\"",
    );
}

#[test]
fn deadline_errors() {
    assert_error(&plan(&[], "deadline_hours = 0"), "plan \"p\"", "deadline_hours", "expected 1 to 8760");
    assert_error(&plan(&[], "deadline_hours = 1.5"), "plan \"p\"", "deadline_hours", "a whole number, found float");
    assert_eq!(parse(&plan(&[], "deadline_hours = 24")).plans[0].deadline, Some(Duration::hours(24)));
}

#[test]
fn account_errors() {
    let account =
        |id: &str, arn: &str| plan(&[], &format!("accounts = [{{ account_id = \"{id}\", role_arn = \"{arn}\" }}]"));
    assert_error(&account("12345", "arn:aws:iam::12345:role/x"), "plan \"p\"", "accounts[0].account_id", "12-digit");
    assert_error(
        &account("111122223333", "arn:aws:iam::111122223333:user/x"),
        "plan \"p\"",
        "accounts[0].role_arn",
        "not an IAM role ARN",
    );
    assert_error(&account("111122223333", "backup-role"), "plan \"p\"", "accounts[0].role_arn", "not an IAM role ARN");
    assert_error(
        &account("111122223333", "arn:aws:iam::444455556666:role/x"),
        "plan \"p\"",
        "accounts[0].role_arn",
        "the role is in account 444455556666, but account_id is 111122223333",
    );
    assert_error(
        &plan(&[], "accounts = [{ account_id = \"111122223333\" }]"),
        "plan \"p\"",
        "accounts[0].role_arn",
        "missing",
    );
    let twice = "accounts = [{ account_id = \"111122223333\", role_arn = \"arn:aws:iam::111122223333:role/a\" }, \
                 { account_id = \"111122223333\", role_arn = \"arn:aws:iam::111122223333:role/b\" }]";
    assert_error(&plan(&[], twice), "plan \"p\"", "accounts[1].account_id", "listed twice");
    let member = "{ account_id = \"111122223333\", role_arn = \"arn:aws:iam::111122223333:role/backup-fleet-member\" }";
    // Accounts are refused with a clear reason where the fleet cannot act in them yet, never
    // accepted and ignored.
    assert_error(
        &plan(
            &["resources"],
            &format!("resources = [\"s3-bucket\"]\ns3 = {{ backup_bucket = \"org-backups\" }}\naccounts = [{member}]"),
        ),
        "plan \"p\"",
        "accounts",
        "s3-bucket resources of other accounts are not supported yet",
    );
    assert_error(&plan(&[], "own_account = false"), "plan \"p\"", "own_account", "would back up nothing");
}

#[test]
fn accounts_name_every_account_a_plan_covers_and_the_own_account_is_explicit() {
    let member = "{ account_id = \"111122223333\", role_arn = \"arn:aws-us-gov:iam::111122223333:role/path/to/role\" }";
    let both = parse(&plan(&[], &format!("accounts = [{member}]"))).plans.remove(0);
    assert!(both.own_account, "the fleet's own account is covered unless the plan says otherwise");
    let targets: Vec<Option<&str>> = both.target_accounts().iter().map(|a| a.map(|a| a.account_id.as_str())).collect();
    assert_eq!(targets, [None, Some("111122223333")]);
    let only = parse(&plan(&[], &format!("accounts = [{member}]\nown_account = false"))).plans.remove(0);
    let targets: Vec<Option<&str>> = only.target_accounts().iter().map(|a| a.map(|a| a.account_id.as_str())).collect();
    assert_eq!(targets, [Some("111122223333")]);
    let policy = parse(&plan(&[], &format!("accounts = [{member}]\nown_account = false")));
    assert!(policy.for_account(None).plans.is_empty(), "a plan without its own account serves none of its events");
    assert_eq!(policy.for_account(Some(&only.accounts[0])).plans.len(), 1);
}

#[test]
fn copies_into_a_backup_account_need_its_role_and_its_own_key() {
    let vault = "account_id = \"444455556666\", role_arn = \"arn:aws:iam::444455556666:role/backup-fleet-vault\"";
    let ok = parse(&plan(
        &[],
        &format!(
            "copy_to = [{{ region = \"us-west-2\" }}, {{ {vault}, region = \"us-east-1\", kms_key = \"arn:aws:kms:us-east-1:444455556666:key/k\", share_kms_key = \"alias/share\", retain_days = 90 }}]"
        ),
    ));
    let copies = &ok.plans[0].copy_to;
    assert_eq!(copies.len(), 2);
    assert!(copies[0].account.is_none());
    let to_vault = &copies[1];
    assert_eq!(to_vault.account.as_ref().map(|a| a.account_id.as_str()), Some("444455556666"));
    assert_eq!(to_vault.region, "us-east-1", "a copy into another account may stay in the source region");
    assert_eq!(to_vault.share_kms_key.as_deref(), Some("alias/share"));
    assert_eq!(ok.plans[0].context(chrono::Utc::now()).copy_to, *copies, "tasks carry the account copy");

    assert_error(
        &plan(&[], &format!("copy_to = [{{ {vault}, region = \"us-east-1\" }}]")),
        "plan \"p\"",
        "copy_to[0].kms_key",
        "that account's own key",
    );
    assert_error(
        &plan(&[], "copy_to = [{ account_id = \"444455556666\", region = \"us-east-1\", kms_key = \"k\" }]"),
        "plan \"p\"",
        "copy_to[0].role_arn",
        "missing",
    );
    assert_error(
        &plan(&[], "copy_to = [{ region = \"us-west-2\", share_kms_key = \"k\" }]"),
        "plan \"p\"",
        "copy_to[0].share_kms_key",
        "only for a copy into another account",
    );
    assert_error(
        &plan(&[], "copy_to = [{ region = \"us-east-1\" }]"),
        "plan \"p\"",
        "copy_to[0].region",
        "source region",
    );
    assert_error(
        &plan(
            &["resources"],
            &format!("resources = [\"ec2-instance\"]\ninstance_backup = \"ami\"\ncopy_to = [{{ {vault}, region = \"us-east-1\", kms_key = \"k\" }}]"),
        ),
        "plan \"p\"",
        "copy_to[0].account_id",
        "not supported for AMIs",
    );
    assert_error(
        &plan(
            &[],
            &format!(
                "copy_to = [{{ {vault}, region = \"us-east-1\", kms_key = \"k\" }}, {{ {vault}, region = \"us-west-2\", kms_key = \"k\" }}]"
            ),
        ),
        "plan \"p\"",
        "copy_to[1].account_id",
        "one copy per backup account",
    );
    assert_error(
        &monthly_plan(
            "monthly = 12",
            &format!("archive = {{ after_days = 30, unique_percent = 40 }}\ncopy_to = [{{ {vault}, region = \"us-east-1\", kms_key = \"k\" }}]"),
        ),
        "plan \"p\"",
        "copy_to[0].account_id",
        "plans that archive",
    );
}

// ---- archive ------------------------------------------------------------------------------------

fn monthly_plan(retain: &str, extra: &str) -> String {
    plan(
        &["retain", "schedule"],
        &format!("schedule = \"cron(0 4 1 * ? *)\"\ntier = \"monthly\"\nretain = {{ {retain} }}\n{extra}"),
    )
}

#[test]
fn archive_is_accepted_only_where_it_can_act() {
    let ok = parse(&monthly_plan(
        "monthly = 12",
        "archive = { after_days = 30, unique_percent = 40 }\ncopy_to = [{ region = \"us-west-2\" }]\nverify = false",
    ));
    let rule = ok.plans[0].retain.archive.clone().expect("archive rule");
    assert_eq!((rule.after_days, rule.unique_percent), (30, 40));
    assert_eq!(rule.copy_regions, ["us-west-2"], "archived only once the DR copy exists");
    assert!(!rule.verify);
    // A "monthly" tier on a daily schedule: count and GFS rules keep most backups briefly.
    assert_error(
        &plan(
            &["retain"],
            "tier = \"monthly\"\nretain = { monthly = 12 }\narchive = { after_days = 30, unique_percent = 40 }",
        ),
        "plan \"p\"",
        "archive",
        "monthly or yearly schedules",
    );
    // The rules go with every backup's context, so the prune task carries the archive rule.
    assert_eq!(ok.plans[0].context(chrono::Utc::now()).retain.and_then(|r| r.archive).map(|a| a.after_days), Some(30));

    let archive = "archive = { after_days = 30, unique_percent = 40 }";
    assert_error(&plan(&[], archive), "plan \"p\"", "archive", "set tier = \"monthly\" or \"yearly\"");
    assert_error(
        &monthly_plan("monthly = 12", "archive = { after_days = 30 }"),
        "plan \"p\"",
        "archive.unique_percent",
        "missing",
    );
    assert_error(
        &monthly_plan("monthly = 12", "archive = { after_days = 30, unique_percent = 0 }"),
        "plan \"p\"",
        "archive.unique_percent",
        "expected 1 to 100",
    );
    assert_error(
        &monthly_plan("monthly = 12", "archive = { unique_percent = 40 }"),
        "plan \"p\"",
        "archive.after_days",
        "missing",
    );
    assert_error(
        &monthly_plan("monthly = 12", "archive = { after_days = 30, unique_percent = 40, tier = 1 }"),
        "plan \"p\"",
        "archive.tier",
        "unknown key",
    );
    // Kept 100 days: never 30 + 90.
    assert_error(&monthly_plan("days = 100", archive), "plan \"p\"", "archive", "kept 100 days");
    // Weekly rules say nothing about how long a monthly backup lives.
    assert_error(&monthly_plan("weekly = 4", archive), "plan \"p\"", "archive", "no known lifetime");
    // Only EBS snapshots have an archive tier.
    let rds = plan(
        &["resources", "retain"],
        &format!("resources = [\"rds-instance\"]\ntier = \"monthly\"\nretain = {{ monthly = 12 }}\n{archive}"),
    );
    assert_error(&rds, "plan \"p\"", "archive", "only EBS snapshots");
    let ami = plan(
        &["resources", "retain"],
        &format!("resources = [\"ec2-instance\"]\ninstance_backup = \"ami\"\ntier = \"yearly\"\nretain = {{ count = 3 }}\n{archive}"),
    );
    assert_error(&ami, "plan \"p\"", "archive", "only EBS snapshots");
    // Drills make no backups.
    assert_error(&drill_plan(archive), "plan \"p\"", "archive", "not used by restore-drill plans");
}

// ---- kind and drill -----------------------------------------------------------------------------

fn drill_plan(extra: &str) -> String {
    plan(&["retain"], &format!("kind = \"restore-drill\"\n{extra}"))
}

#[test]
fn drill_errors() {
    assert_error(&plan(&[], "kind = \"drill\""), "plan \"p\"", "kind", "\"backup\" or \"restore-drill\"");
    assert_error(&drill_plan(""), "plan \"p\"", "drill", "missing");
    assert_error(
        &plan(&[], "drill = { sample = 1 }"),
        "plan \"p\"",
        "drill",
        "only for plans with kind = \"restore-drill\"",
    );
    assert_error(&drill_plan("drill = { sample = 1 }"), "plan \"p\"", "drill.target_subnet", "missing");
    let subnet = "target_subnet = \"subnet-0123abcd\"";
    parse(&drill_plan(&format!("drill = {{ {subnet} }}")));
    assert_error(
        &drill_plan(&format!("drill = {{ {subnet}, sample = 0 }}")),
        "plan \"p\"",
        "drill.sample",
        "at least 1",
    );
    assert_error(
        &drill_plan(&format!("drill = {{ {subnet}, max_parallel = 0 }}")),
        "plan \"p\"",
        "drill.max_parallel",
        "at least 1",
    );
    assert_error(
        &drill_plan("drill = { target_subnet = \"vpc-1\" }"),
        "plan \"p\"",
        "drill.target_subnet",
        "not a subnet id",
    );
    assert_error(
        &drill_plan(&format!("drill = {{ {subnet}, instance_class = \"t3.micro\" }}")),
        "plan \"p\"",
        "drill.instance_class",
        "not an RDS instance class",
    );
    assert_error(
        &drill_plan(&format!("drill = {{ {subnet}, instance_type = \"db.t3.micro\" }}")),
        "plan \"p\"",
        "drill.instance_type",
        "not an EC2 instance type",
    );
    assert_error(
        &drill_plan(&format!("drill = {{ {subnet}, instance_type = \"t3.micro\" }}")),
        "plan \"p\"",
        "drill.instance_type",
        "without launching it",
    );
    assert_error(&drill_plan(&format!("drill = {{ {subnet}, size = 1 }}")), "plan \"p\"", "drill.size", "unknown key");
}

#[test]
fn drill_plans_refuse_backup_only_keys() {
    let drill = "drill = { target_subnet = \"subnet-0123abcd\" }";
    for key in [
        "retain = { days = 7 }",
        "copy_to = [{ region = \"us-west-2\" }]",
        "tier = \"weekly\"",
        "verify = true",
        "final_snapshot_on_stop = true",
        "backup_on_create = true",
    ] {
        let name = key.split(' ').next().unwrap();
        assert_error(&drill_plan(&format!("{drill}\n{key}")), "plan \"p\"", name, "not used by restore-drill plans");
    }
}

// ---- load ---------------------------------------------------------------------------------------

#[test]
fn load_reports_unreadable_files() {
    let err = Policy::load("/nonexistent/policy.toml", "us-east-1").unwrap_err();
    assert!(matches!(err, PolicyError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/policy.toml"), "{err}");
}

#[test]
fn errors_expose_plan_and_key() {
    let text = format!("{}{}", plan(&[], ""), plan(&["name", "retain"], "name = \"q\"\nretain = { count = 0 }"));
    match Policy::from_toml_str(&text, "us-east-1").unwrap_err() {
        PolicyError::Plan { plan, key, message } => {
            assert_eq!(plan.to_string(), "plan \"q\"");
            assert_eq!(key, "retain.count");
            assert_eq!(message, "must be at least 1");
        }
        other => panic!("{other:?}"),
    }
}

// ---- selector -----------------------------------------------------------------------------------

fn selector(include: &[(&str, &str)], exclude: &[(&str, &str)]) -> Selector {
    Selector { tags: tags(include), exclude_tags: tags(exclude) }
}

#[test]
fn selector_requires_all_tags() {
    let s = selector(&[("backup", "daily"), ("env", "prod")], &[]);
    assert!(s.matches(&tags(&[("backup", "daily"), ("env", "prod"), ("team", "x")])));
    assert!(!s.matches(&tags(&[("backup", "daily")])));
    assert!(!s.matches(&tags(&[("backup", "daily"), ("env", "dev")])));
    assert!(!s.matches(&tags(&[])));
    // Case-sensitive, like AWS tags.
    assert!(!s.matches(&tags(&[("backup", "Daily"), ("env", "prod")])));
    assert!(!s.matches(&tags(&[("Backup", "daily"), ("env", "prod")])));
}

#[test]
fn selector_exclusions_win() {
    let s = selector(&[("backup", "daily")], &[("backup-skip", "true"), ("env", "dev")]);
    assert!(s.matches(&tags(&[("backup", "daily")])));
    assert!(s.matches(&tags(&[("backup", "daily"), ("backup-skip", "false")])));
    assert!(!s.matches(&tags(&[("backup", "daily"), ("backup-skip", "true")])));
    assert!(!s.matches(&tags(&[("backup", "daily"), ("env", "dev")])));
}

#[test]
fn selector_wildcards() {
    let s = selector(&[("backup", "*")], &[("ephemeral", "*")]);
    assert!(s.matches(&tags(&[("backup", "anything")])));
    assert!(s.matches(&tags(&[("backup", "")])));
    assert!(!s.matches(&tags(&[("other", "x")])), "wildcard needs the tag present");
    assert!(!s.matches(&tags(&[("backup", "x"), ("ephemeral", "")])));
    assert!(s.matches(&tags(&[("backup", "x"), ("Ephemeral", "yes")])));
}

#[test]
fn empty_selector_selects_everything_not_excluded() {
    assert!(Selector::default().matches(&tags(&[])));
    let s = selector(&[], &[("backup-skip", "*")]);
    assert!(s.matches(&tags(&[("a", "b")])));
    assert!(!s.matches(&tags(&[("backup-skip", "no")])));
    let policy = parse(&plan(&["select"], "select.exclude_tags = { backup-skip = \"*\" }"));
    assert!(policy.plans[0].select.tags.is_empty());
}

#[test]
fn s3_inventory_scans_are_set_per_plan_and_every_mistake_is_refused() {
    let s3 = |keys: &str| {
        plan(&["resources"], &format!("resources = [\"s3-bucket\"]\ns3 = {{ backup_bucket = \"org-backups\"{keys} }}"))
    };
    let settings = |keys: &str| parse(&s3(keys)).plans[0].s3.clone().unwrap();
    assert_eq!(settings("").inventory_scan(), None, "scans list unless a plan names an inventory");
    let scan = settings(", inventory_id = \"nightly-1.x_y\"").inventory_scan().unwrap();
    assert_eq!((scan.id.as_str(), scan.max_age_hours, scan.report), ("nightly-1.x_y", 48, None));
    let scan = settings(", inventory_id = \"nightly\", inventory_max_age_hours = 30").inventory_scan().unwrap();
    assert_eq!(scan.max_age_hours, 30);

    assert_error(
        &s3(", inventory_id = \"no spaces\""),
        "plan \"p\"",
        "s3.inventory_id",
        "not an S3 Inventory configuration id",
    );
    assert_error(&s3(&format!(", inventory_id = \"{}\"", "x".repeat(65))), "plan \"p\"", "s3.inventory_id", "1-64");
    assert_error(
        &s3(", inventory_max_age_hours = 24"),
        "plan \"p\"",
        "s3.inventory_max_age_hours",
        "inventory_id is not",
    );
    assert_error(
        &s3(", inventory_id = \"n\", inventory_max_age_hours = 721"),
        "plan \"p\"",
        "s3.inventory_max_age_hours",
        "at most 720",
    );
    assert_error(
        &s3(", inventory_id = \"n\", inventory_max_age_hours = 0"),
        "plan \"p\"",
        "s3.inventory_max_age_hours",
        "at least 1",
    );
    let dumps = plan(
        &["resources"],
        "resources = [\"postgres-db\"]\ns3 = { backup_bucket = \"org-backups\", inventory_id = \"n\" }\ndatabases = [{ name = \"app\", secret = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:db\" }]",
    );
    assert!(error(&dumps).contains("s3.inventory_id"), "{}", error(&dumps));
}
