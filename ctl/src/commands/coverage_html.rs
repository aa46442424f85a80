//! `backupctl report coverage --html`: one self-contained page (inline CSS and SVG, no script,
//! no fetch) for a person or an audit file: the summary, protected against not protected by type
//! and region, every resource with the age of its newest good backup against its RPO, drills, and
//! the failing controls. Every number carries a `data-*` attribute so a test can compare the
//! rendered page with the JSON report.

use backup_core::coverage::{CoverageReport, CoverageRow, CoverageStatus};
use backup_core::policy::Policy;
use std::fmt::Write as _;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn age(secs: i64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("{:.1} d", s as f64 / 86_400.0),
        s if s >= 2 * 3600 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{} min", s / 60),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}\
table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}\
th{background:#f3f3f3}.failing,.never-backed-up,.stale,.unprotected{color:#a40000;font-weight:600}\
.protected{color:#196619}.excluded{color:#666}.summary td{font-size:1.1rem}\
.note{color:#555;font-size:.85rem}";

/// Renders the report; `policy` names the plans and the controls that were checked.
pub fn render(report: &CoverageReport, policy: &Policy) -> String {
    let mut h = String::new();
    let generated = report.generated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Backup coverage report {g}</title><style>{STYLE}</style></head><body>\n\
         <h1>Backup coverage report</h1>\n<p class=\"note\">Generated <time data-generated=\"{g}\">{g}</time> \
         by backup-fleet from live discovery in {regions}, the backup catalog and the fleet's task state.</p>",
        g = escape(&generated),
        regions = escape(&report.regions.join(", ")),
    );
    if !report.incomplete.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"failing\" id=\"incomplete\">Discovery incomplete: {}</p>",
            escape(&report.incomplete.join("; "))
        );
    }

    // Summary.
    h.push_str("<h2>Summary</h2>\n<table class=\"summary\" id=\"summary\"><tr>");
    for status in CoverageStatus::ALL {
        let _ = write!(h, "<th>{}</th>", status.as_str());
    }
    h.push_str("<th>resources</th><th>failing controls</th></tr>\n<tr>");
    for status in CoverageStatus::ALL {
        let n = report.summary.get(status.as_str()).copied().unwrap_or(0);
        let _ = write!(h, "<td class=\"{s}\" data-status=\"{s}\">{n}</td>", s = status.as_str());
    }
    let _ = writeln!(
        h,
        "<td data-total=\"{t}\">{t}</td><td data-failing-controls=\"{f}\">{f}</td></tr></table>",
        t = report.resources.len(),
        f = report.failing_controls
    );

    // Chart: one stacked bar per type and region.
    h.push_str("<h2>Protected and not protected, by type and region</h2>\n");
    let bars = &report.by_type_region;
    let widest = bars.iter().map(|b| b.protected + b.not_protected + b.excluded).max().unwrap_or(1).max(1);
    let (label_w, bar_w, row_h) = (260.0, 420.0, 26.0);
    let height = row_h * bars.len() as f64 + 30.0;
    let _ = writeln!(
        h,
        "<svg id=\"chart\" role=\"img\" aria-label=\"protected and not protected resources by type and region\" \
         xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\">",
        w = label_w + bar_w + 60.0
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = row_h * i as f64;
        let scale = bar_w / widest as f64;
        let label = format!("{} {}", bar.resource_type.as_str(), bar.region);
        let _ = write!(
            h,
            "<g class=\"bar\" data-type=\"{t}\" data-region=\"{r}\" data-protected=\"{p}\" data-not-protected=\"{n}\" data-excluded=\"{e}\">\
             <text x=\"0\" y=\"{ty}\" font-size=\"12\">{label}</text>",
            t = bar.resource_type.as_str(),
            r = escape(&bar.region),
            p = bar.protected,
            n = bar.not_protected,
            e = bar.excluded,
            ty = y + 16.0,
            label = escape(&label),
        );
        let mut x = label_w;
        for (count, color) in [(bar.protected, "#2e8b3e"), (bar.not_protected, "#c62828"), (bar.excluded, "#9e9e9e")] {
            let w = count as f64 * scale;
            if w > 0.0 {
                let _ = write!(
                    h,
                    "<rect x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"{}\" fill=\"{color}\"/>",
                    y + 4.0,
                    row_h - 8.0
                );
            }
            x += w;
        }
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\">{}/{}</text></g>",
            x + 6.0,
            y + 16.0,
            bar.protected,
            bar.protected + bar.not_protected
        );
    }
    let _ = writeln!(
        h,
        "<text x=\"0\" y=\"{}\" font-size=\"11\" fill=\"#555\">green: protected, red: stale, failing, never backed up or unprotected, grey: excluded</text></svg>",
        height - 8.0
    );

    // Every resource.
    h.push_str(
        "<h2>Resources</h2>\n<table id=\"resources\"><tr><th>status</th><th>type</th><th>resource</th><th>name</th>\
                <th>account</th><th>region</th><th>plans</th><th>newest good backup</th><th>age / RPO</th><th>last drill</th>\
                <th>failing controls</th><th>why</th></tr>\n",
    );
    for row in &report.resources {
        resource_row(&mut h, row);
    }
    h.push_str("</table>\n");

    // Drills.
    h.push_str("<h2>Restore drills</h2>\n");
    let drilled: Vec<&CoverageRow> = report.resources.iter().filter(|r| r.last_drill.is_some()).collect();
    if drilled.is_empty() {
        h.push_str("<p id=\"drills\" data-drills=\"0\">No restore drill is recorded for these resources.</p>\n");
    } else {
        let _ = writeln!(
            h,
            "<table id=\"drills\" data-drills=\"{}\"><tr><th>resource</th><th>outcome</th><th>when</th></tr>",
            drilled.len()
        );
        for row in drilled {
            let d = row.last_drill.as_ref().expect("filtered");
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(&row.id),
                if d.ok { "protected" } else { "failing" },
                if d.ok { "passed" } else { "failed" },
                d.at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        h.push_str("</table>\n");
    }

    // Controls.
    h.push_str("<h2>Failing controls</h2>\n");
    let c = &policy.controls;
    let checked: Vec<String> = [
        c.encrypted.then(|| "encrypted".to_owned()),
        c.cross_region_copy.then(|| "cross-region copy".to_owned()),
        c.s3_object_lock_days.map(|d| format!("S3 Object Lock at least {d} days")),
        c.min_retention_days.map(|d| format!("retention at least {d} days")),
        c.drill_within_days.map(|d| format!("a passing drill within {d} days")),
        c.rds_pitr_days.map(|d| format!("RDS point-in-time restore at least {d} days")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if checked.is_empty() {
        h.push_str("<p class=\"note\">The policy sets no [controls].</p>\n");
    } else {
        let _ = writeln!(h, "<p class=\"note\">Checked: {}.</p>", escape(&checked.join("; ")));
    }
    let failing: Vec<(&CoverageRow, &backup_core::coverage::ControlResult)> =
        report.resources.iter().flat_map(|r| r.failing_controls().map(move |c| (r, c))).collect();
    let _ = writeln!(
        h,
        "<table id=\"controls\" data-failing=\"{}\"><tr><th>resource</th><th>control</th><th>detail</th></tr>",
        failing.len()
    );
    for (row, control) in failing {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"failing\">{}</td><td>{}</td></tr>",
            escape(&row.id),
            control.control,
            escape(&control.detail)
        );
    }
    h.push_str("</table>\n");
    let plans: Vec<String> =
        policy.plans.iter().map(|p| format!("{} ({}, {})", p.name, p.kind.as_str(), p.schedule)).collect();
    let _ = writeln!(h, "<p class=\"note\">Plans: {}.</p>\n</body></html>", escape(&plans.join("; ")));
    h
}

fn resource_row(h: &mut String, row: &CoverageRow) {
    let status = row.status.as_str();
    let plans: Vec<&str> = row.plans.iter().map(|p| p.plan.as_str()).collect();
    let newest = row.plans.iter().filter_map(|p| p.latest_backup.as_deref()).next().unwrap_or("-");
    let age_rpo = row
        .plans
        .iter()
        .map(|p| match p.age_secs {
            Some(a) => format!("{} / {}", age(a), age(p.rpo_secs)),
            None => format!("- / {}", age(p.rpo_secs)),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let drill = match &row.last_drill {
        Some(d) => format!("{} {}", if d.ok { "passed" } else { "failed" }, d.at.format("%Y-%m-%d")),
        None => "-".into(),
    };
    let failing: Vec<&str> = row.failing_controls().map(|c| c.control).collect();
    let why = row.plans.iter().find_map(|p| p.reason.clone()).or_else(|| row.excluded_by.clone()).unwrap_or_default();
    let _ = writeln!(
        h,
        "<tr data-resource=\"{id}\" data-status=\"{status}\"><td class=\"{status}\">{status}</td><td>{t}</td><td>{id}</td>\
         <td>{name}</td><td>{account}</td><td>{region}</td><td>{plans}</td><td>{newest}</td><td>{age_rpo}</td><td>{drill}</td>\
         <td>{failing}</td><td>{why}</td></tr>",
        id = escape(&row.id),
        t = row.resource_type.as_str(),
        name = escape(row.name.as_deref().unwrap_or("")),
        account = escape(&row.account),
        region = escape(&row.region),
        plans = escape(&if plans.is_empty() { "-".to_owned() } else { plans.join(", ") }),
        newest = escape(newest),
        age_rpo = escape(&age_rpo),
        failing = escape(&if failing.is_empty() { "-".to_owned() } else { failing.join(", ") }),
        why = escape(&why),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_elements_and_attributes() {
        assert_eq!(escape(r#"<b>"a" & 'b'</b>"#), "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;");
    }
}
