//! `backupctl report coverage` and `report rpo` against live discovery on the realistic emulator:
//! a volume tagged for a plan but never backed up is a violation for both (exit 3), a backed-up
//! one is protected, an excluded one says why, and the HTML report renders in a real headless
//! Chromium (from the OS packages, `scripts/browser.sh install`) with the JSON's numbers.

use aws_sdk_ec2::types::{ResourceType as Ec2ResourceType, Tag, TagSpecification};
use backup_schemas::*;
use backup_tests::{binary, policy_file, run_task, services, Fleet, REGION};
use backup_worker::{Handlers, Outcome};
use chrono::Utc;
use std::process::Command;
use std::sync::Arc;

async fn volume(fleet: &Fleet, tags: &[(&str, &str)]) -> String {
    let spec = TagSpecification::builder()
        .resource_type(Ec2ResourceType::Volume)
        .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
        .build();
    let out = fleet
        .aws
        .clients()
        .ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(4)
        .tag_specifications(spec)
        .send()
        .await
        .unwrap();
    out.volume_id.unwrap()
}

fn backupctl(fleet: &Fleet, policy: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(binary("backupctl"))
        .args(args)
        .env("BACKUP_POLICY_FILE", policy)
        .envs(fleet.env_at(&fleet.endpoint))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn chromium() -> String {
    let out = Command::new("bash").args(["../scripts/browser.sh", "path"]).output().expect("run scripts/browser.sh");
    assert!(
        out.status.success(),
        "no Chromium: `bash scripts/browser.sh install` installs it (make test does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The DOM Chromium built from the page (it parses and lays it out headless).
fn rendered_dom(page: &std::path::Path) -> String {
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the first element carrying `attribute="value"`.
fn cell(dom: &str, attribute: &str, value: &str) -> String {
    let marker = format!("{attribute}=\"{value}\"");
    let at = dom.find(&marker).unwrap_or_else(|| panic!("no {marker} in the rendered page"));
    let start = dom[at..].find('>').unwrap() + at + 1;
    let end = dom[start..].find('<').unwrap() + start;
    dom[start..end].trim().to_owned()
}

#[tokio::test]
async fn coverage_finds_what_was_never_backed_up_and_the_html_report_renders_with_the_same_numbers() {
    let fleet = Fleet::realistic("coverage").await;
    let handlers = Arc::new(Handlers::with_services(services(&fleet)));
    let tag = format!("cov-{}", fleet.prefix);
    let policy = policy_file(
        &fleet.prefix,
        &format!(
            r#"
[controls]
min_retention_days = 7

[[plan]]
name = "cov"
schedule = "cron(0 2 * * ? *)"
resources = ["ec2-volume"]
regions = ["{REGION}"]
select.tags = {{ backup = "{tag}" }}
select.exclude_tags = {{ skip = "yes" }}
retain = {{ days = 7 }}
verify = false
"#
        ),
    );
    let backed_up = volume(&fleet, &[("backup", &tag), ("Name", "backed up")]).await;
    let never = volume(&fleet, &[("backup", &tag), ("Name", "<never> & \"backed\" up")]).await;
    let skipped = volume(&fleet, &[("backup", &tag), ("skip", "yes")]).await;
    let plan = backup_core::policy::Policy::load(&policy, REGION).unwrap();
    let window = plan.plans[0].schedule.window_containing(Utc::now()).unwrap().start;
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: backed_up.clone(),
        ctx: plan.plans[0].context(window),
    });
    let Outcome::Done { .. } = run_task(&handlers, &task).await.unwrap() else { panic!("the backup completes") };
    // Past the realism layer's consistency window, so discovery sees every volume.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let page = std::env::temp_dir().join(format!("{}-coverage.html", fleet.prefix));
    let (code, stdout, stderr) =
        backupctl(&fleet, &policy, &["report", "coverage", "--json", "--html", page.to_str().unwrap()]);
    assert_eq!(code, Some(3), "a selected volume was never backed up: {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let row = |id: &str| {
        report["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed"))
    };
    assert_eq!(row(&backed_up)["status"], "protected", "{}", row(&backed_up));
    assert_eq!(row(&never)["status"], "never-backed-up");
    assert_eq!(row(&skipped)["status"], "excluded");
    assert_eq!(row(&skipped)["excluded_by"], "plan cov: skip=yes");
    assert!(row(&backed_up)["controls"].as_array().unwrap().iter().all(|c| c["ok"] == true));

    // The page renders in a real browser, and shows the JSON's numbers.
    let dom = rendered_dom(&page);
    for status in ["protected", "stale", "failing", "never-backed-up", "excluded", "unprotected"] {
        assert_eq!(cell(&dom, "data-status", status), report["summary"][status].to_string(), "{status}");
    }
    assert_eq!(
        cell(&dom, "data-total", &report["resources"].as_array().unwrap().len().to_string()),
        report["resources"].as_array().unwrap().len().to_string()
    );
    assert!(dom.contains("<svg") && dom.contains("class=\"bar\""), "the chart is in the page");
    let bar = report["by_type_region"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["resource_type"] == "ec2-volume" && b["region"] == REGION)
        .unwrap();
    assert!(
        dom.contains(&format!(
            "data-type=\"ec2-volume\" data-region=\"{REGION}\" data-protected=\"{}\" data-not-protected=\"{}\"",
            bar["protected"], bar["not_protected"]
        )),
        "the chart's volume bar carries the JSON's counts"
    );
    // Text from AWS is escaped, not markup.
    assert!(
        dom.contains("&lt;never&gt; &amp; \"backed\" up") || dom.contains("&lt;never&gt; &amp; &quot;backed&quot; up")
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "self-contained: nothing is fetched");

    // Filters narrow what is shown; --strict also fails on unprotected resources.
    let (code, stdout, _) =
        backupctl(&fleet, &policy, &["report", "coverage", "--json", "--plan", "cov", "--status", "protected"]);
    assert_eq!(code, Some(0), "only protected resources shown: nothing to fail on");
    let narrowed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(narrowed["resources"].as_array().unwrap().iter().all(|r| r["status"] == "protected"));
    let (code, _, stderr) = backupctl(&fleet, &policy, &["report", "coverage", "--status", "nonsense"]);
    assert_eq!(code, Some(2), "{stderr}");

    // report rpo sees the never-backed-up volume too, though the catalog has nothing of it.
    let (code, stdout, stderr) = backupctl(&fleet, &policy, &["report", "rpo", "--json"]);
    assert_eq!(code, Some(3), "{stderr}");
    let rpo: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let violation =
        rpo["resources"].as_array().unwrap().iter().find(|r| r["resource"] == never).expect("listed by rpo");
    assert_eq!(violation["status"], "violation");
    assert!(violation["note"].as_str().unwrap().contains("never backed up"));
}
