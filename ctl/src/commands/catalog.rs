//! `backupctl catalog list`.

use backup_core::artifacts::CatalogQuery;
use backup_core::outln;
use clap::Subcommand;

use super::Fleet;
use crate::output;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List backups, newest first.
    List {
        /// Only backups of this resource (volume id, instance id, DB identifier, bucket).
        #[arg(long)]
        resource: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        /// Include artifacts retention has deleted.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(fleet: &Fleet, command: Command) -> anyhow::Result<i32> {
    let Command::List { resource, plan, all, json } = command;
    let records = fleet.catalog()?.list(&CatalogQuery { resource, plan, include_deleted: all }).await?;
    if json {
        output::json(&records)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.resource.clone(),
                r.artifact.kind.as_str().to_owned(),
                r.artifact.id.clone(),
                backup_core::accounts::account_label(r.account.as_deref()).to_owned(),
                r.artifact.region.clone(),
                r.plan.clone(),
                r.created_at.format("%Y-%m-%d %H:%M").to_string(),
                r.expires_at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "-".into()),
                if r.copy_of.is_some() { "copy".into() } else { r.copies.len().to_string() },
                match &r.verification {
                    Some(v) if v.ok => "ok".into(),
                    Some(_) => "FAILED".into(),
                    None => "-".into(),
                },
                if r.deleted_at.is_some() { "deleted".into() } else { String::new() },
            ]
        })
        .collect();
    outln!(
        "{}",
        output::table(
            &[
                "RESOURCE", "KIND", "ARTIFACT", "ACCOUNT", "REGION", "PLAN", "CREATED", "EXPIRES", "COPIES",
                "VERIFIED", ""
            ],
            &rows
        )
    )?;
    eprintln!("{} backups", records.len());
    Ok(0)
}
