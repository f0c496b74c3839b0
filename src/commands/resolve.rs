//! `tongban resolve`: build the base libraries from the store's records.

use super::store_args::{StoreArgs, runtime};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::time::Instant;
use tongban_libraries::person::{self, DEFAULT_TRUST, Progress};
use tongban_resolution::golden::Survivorship;

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban resolve                       link every person mention in the store into the person library
  tongban resolve --trust police_household,civil_affairs,grid_collection
  tongban resolve --json > run.json

A run reads every current record, links the people they mention (a valid citizen id that agrees
with the record links deterministically; the rest by Fellegi–Sunter on id, name, birth date, sex,
phone and address, learned without labels), and replaces the person library (links and golden
records) in one transaction. Source records are never changed.")]
pub struct Args {
    /// Source trust order for golden records, most trusted first (comma-separated source ids).
    #[arg(long, value_delimiter = ',')]
    pub trust: Option<Vec<String>>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn stage(&self, name: &str) {
        self.0.set_message(name.to_string());
    }
    fn records(&self, read: u64) {
        self.0.set_position(read);
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let store = args.store.open().await?;
        let trust_list: Vec<String> = args
            .trust
            .unwrap_or_else(|| DEFAULT_TRUST.iter().map(|s| s.to_string()).collect());
        let trust_refs: Vec<&str> = trust_list.iter().map(String::as_str).collect();
        let trust = Survivorship::new(&trust_refs);
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg:>16} {pos} records read ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(std::time::Duration::from_millis(200));
        let started = Instant::now();
        let summary = person::resolve(store.as_ref(), &trust, &Bar(pb.clone())).await?;
        pb.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        if args.json {
            let mut v = serde_json::to_value(&summary)?;
            v["seconds"] = serde_json::json!(secs);
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!(
                "person library: {} records → {} person mentions → {} persons ({:.1} s, run {})",
                summary.records, summary.mentions, summary.persons, secs, summary.run_id
            );
            println!(
                "  {} candidate pairs, {} linked, {} refused because two different valid ids would merge",
                summary.candidate_pairs, summary.linked_pairs, summary.refused_by_constraint
            );
            let stages: Vec<String> = summary.stage_seconds.iter().map(|(n, t)| format!("{n} {t:.1} s")).collect();
            println!("  stages: {}", stages.join(", "));
            println!("  weights (log2 m/u) learned without labels; prior {:+.2}:", summary.prior);
            for (name, levels) in &summary.weights {
                let l: Vec<String> = levels.iter().map(|(n, w)| format!("{n} {w:+.2}")).collect();
                println!("    {name:<12} {}", l.join(" · "));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
