//! `tongban watch`: sharing statistics and anomaly alerts, read off the audit log.

use super::store_args::{StoreArgs, closing, runtime};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tongban_sharing::watch::{Thresholds, alerts, reads_per_day};
use tongban_sharing::writer::from_row;

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban watch stats                  reads per department, resource and day; share of fields shared
  tongban watch alerts                 spikes, bulk enumeration, off-hours reads, refused attempts
  tongban watch alerts --suspend --as admin     and suspend the grants today's alerting reads used

Days and hours are China Standard Time. An alert compares a user's day with their own usual day
(the median), so a busy window clerk is not flagged for being busy.")]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Reads per department, resource and day, and the share of fields each resource shares.
    Stats {
        /// As JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Anomalies in the reads.
    Alerts {
        /// As JSON, for scripts.
        #[arg(long)]
        json: bool,
        /// Suspend for alerts of every day, not only today's; and for off-hours reads too (by
        /// default a late read alone suspends nothing).
        #[arg(long)]
        all: bool,
        /// Revoke the grants that alerting reads were served under.
        #[arg(long, requires = "user")]
        suspend: bool,
        /// Who suspends (a data bureau administrator, or the providing department's official).
        #[arg(long = "as")]
        user: Option<String>,
    },
}

fn date(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let database = args.store.database.clone();
    rt.block_on(async {
        let store = args.store.open_existing().await?;
        closing(store.as_ref(), async {
            let store = store.as_ref();
            let mut entries = Vec::new();
            let mut after = 0;
            loop {
                let page = store.audit_entries(after, 10_000).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                entries.extend(page.into_iter().map(from_row));
            }
            match args.what {
                What::Stats { json } => {
                    let per_day = reads_per_day(&entries);
                    let catalogue = tongban_sharing::catalogue::catalogue(store).await?;
                    if json {
                        let rows: Vec<serde_json::Value> = per_day
                            .iter()
                            .map(|((d, r, day), n)| serde_json::json!({"department": d, "resource": r, "day": date(*day), "reads": n}))
                            .collect();
                        let shares: Vec<serde_json::Value> = catalogue
                            .iter()
                            .map(|r| serde_json::json!({"resource": r.id, "shared_field_share": r.shared_share()}))
                            .collect();
                        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"reads": rows, "fields_shared": shares}))?);
                    } else {
                        println!("reads per department, resource and day:");
                        for ((d, r, day), n) in &per_day {
                            println!("  {} {} {:<18} {n:>8}", date(*day), super::left(d, 20), r);
                        }
                        let total: usize = catalogue.iter().map(|r| r.fields.len()).sum();
                        let shared: f64 = catalogue.iter().map(|r| r.shared_share() * r.fields.len() as f64).sum();
                        println!(
                            "fields shared (open or conditional): {:.0}% of {total} across {} resources",
                            100.0 * shared / total.max(1) as f64,
                            catalogue.len()
                        );
                    }
                }
                What::Alerts {
                    json,
                    all,
                    suspend,
                    user,
                } => {
                    let found = alerts(&entries, &Thresholds::default());
                    if json {
                        println!("{}", serde_json::to_string_pretty(&found)?);
                    } else if found.is_empty() {
                        println!("no alerts in {} audit entries", entries.len());
                    } else {
                        for a in &found {
                            println!("  {} {:<12} {:<17} {}", date(a.day), a.user, a.kind, a.message);
                        }
                    }
                    if suspend && let Some(user) = user {
                        let by = super::grant::acting(store, &user).await?;
                        let catalogue = tongban_sharing::catalogue::catalogue(store).await?;
                        let today = tongban_sharing::watch::day_of(tongban_store::now_millis());
                        for (g, reason) in tongban_sharing::watch::grants_to_suspend(&found, today, all) {
                            match tongban_sharing::policy::revoke_stored(store, &catalogue, &by, &g, &reason).await {
                                Ok(grant) => {
                                    super::audit::record_admin(store, &database, "grant.suspend", &grant.id, serde_json::json!(grant)).await?;
                                    println!("  grant {g} suspended");
                                }
                                Err(e) => println!("  grant {g} not suspended: {e}"),
                            }
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
            })
        .await
})
}
