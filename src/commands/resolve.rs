//! `tongban resolve`: build the base libraries from the store's records.

use super::store_args::{StoreArgs, runtime};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::time::Instant;
use tongban_libraries::build::{Progress, build_all};
use tongban_libraries::person::DEFAULT_TRUST;
use tongban_resolution::golden::Survivorship;

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban resolve                       build the person, entity, room and building libraries
  tongban resolve --trust police_household,civil_affairs,grid_collection
  tongban resolve --json > run.json

A run reads every current record once and builds four libraries. People: a valid citizen id that
agrees with the record links deterministically, the rest by Fellegi–Sunter on id, name, birth
date, sex, phone and address, learned without labels. Legal entities: a valid credit code links
deterministically, the rest by code, normalised name and address. Rooms and buildings: by the
canonical address key (and a rental's room code). Each library (links and golden records) is
replaced in one transaction; source records are never changed.")]
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
        let (summaries, stages) = build_all(store.as_ref(), &trust, &Bar(pb.clone())).await?;
        pb.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        if args.json {
            let v = serde_json::json!({ "libraries": summaries, "stage_seconds": stages, "seconds": secs });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            let records = summaries.first().map_or(0, |s| s.records);
            println!("base libraries built from {records} records in {secs:.1} s:");
            for s in &summaries {
                let plural = if s.kind == "entity" { "entities".to_string() } else { format!("{}s", s.kind) };
                print!("  {:<8} {:>9} mentions → {:>9} {plural} (run {})", s.kind, s.mentions, s.entities, s.run_id);
                if s.candidate_pairs > 0 {
                    print!(
                        "; {} candidate pairs, {} linked, {} refused by two different valid ids",
                        s.candidate_pairs, s.linked_pairs, s.refused_by_constraint
                    );
                }
                println!();
            }
            let stages: Vec<String> = stages.iter().map(|(n, t)| format!("{n} {t:.1} s")).collect();
            println!("  stages: {}", stages.join(", "));
            for s in summaries.iter().filter(|s| !s.weights.is_empty()) {
                println!("  {} weights (log2 m/u), learned without labels; prior {:+.2}:", s.kind, s.prior);
                for (name, levels) in &s.weights {
                    let l: Vec<String> = levels.iter().map(|(n, w)| format!("{n} {w:+.2}")).collect();
                    println!("    {name:<12} {}", l.join(" · "));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
