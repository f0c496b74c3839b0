//! `tongban resolve`: build the base libraries from the store's records.

use super::store_args::{StoreArgs, closing, runtime};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::time::Instant;
use tongban_libraries::build::{Progress, build_all};
use tongban_libraries::person::DEFAULT_TRUST;
use tongban_resolution::config::LibraryConfig;
use tongban_resolution::golden::Survivorship;

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban resolve                       build the person, entity, room and building libraries
  tongban resolve --trust police_household,civil_affairs,grid_collection
  tongban resolve --json > run.json
  tongban resolve --incremental         resolve only the records ingested since the last run
  tongban resolve --config examples/resolution.toml     blocking rules and thresholds of your own

A run reads every current record once and builds four libraries. People: a valid citizen id that
agrees with the record links deterministically, the rest by Fellegi–Sunter on id, name, birth
date, sex, phone and address, learned without labels. Legal entities: a valid credit code links
deterministically, the rest by code, normalised name and address. Rooms and buildings: by the
canonical address key (and a rental's room code). Each library (links and golden records) is
replaced in one transaction; source records are never changed.

With --incremental, records ingested after the last run are resolved one at a time against the
libraries as they stand (the last run's model, blocking rules and constraints), each record's
links, golden records and relations written in one transaction; it prints the latency per record.
A later run from scratch finds the same clusters.")]
pub struct Args {
    /// Source trust order for golden records, most trusted first (comma-separated source ids).
    #[arg(long, value_delimiter = ',')]
    pub trust: Option<Vec<String>>,
    /// As JSON, for scripts.
    #[arg(long)]
    pub json: bool,
    /// Blocking rules, thresholds and block limits for people and legal entities (TOML; see
    /// examples/resolution.toml, which spells out the defaults).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Resolve only the records stored since the last run, one at a time, against the
    /// libraries as they stand (under the configuration that run used).
    #[arg(long, conflicts_with = "config")]
    pub incremental: bool,
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
    fn peak_memory(&self) -> Option<u64> {
        super::bench::peak_rss_bytes()
    }
}

/// "reading 2.10, person preparing 2.31, …": GiB, stages whose figure is unknown left out.
fn peaks_line(peaks: &[(String, Option<u64>)]) -> String {
    let known: Vec<String> = peaks
        .iter()
        .filter_map(|(name, b)| b.map(|b| format!("{name} {:.2}", b as f64 / (1u64 << 30) as f64)))
        .collect();
    known.join(", ")
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let store = args.store.open_existing().await?;
        closing(store.as_ref(), async {
            // A source named in --trust that the store does not have is most likely a typo,
            // which would silently leave the intended source at the bottom of the order.
            if let Some(named) = &args.trust {
                let sources: Vec<String> = store.sources().await?.into_iter().map(|s| s.id).collect();
                if let Some(unknown) = named.iter().find(|n| !sources.contains(n)) {
                    anyhow::bail!(
                        "--trust names source {unknown:?}, which is not registered (registered: {})",
                        sources.join(", ")
                    );
                }
            }
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
            if args.incremental {
                return incremental(store.as_ref(), &args.store.database, trust, &pb, args.json).await;
            }
            let config = match &args.config {
                Some(path) => LibraryConfig::load(path)?,
                None => LibraryConfig::default(),
            };
            let built = build_all(store.as_ref(), &trust, &config, &Bar(pb.clone())).await?;
            let (summaries, stages, writes, peaks) = (built.summaries, built.stages, built.writes, built.peaks);
            let runs: Vec<serde_json::Value> = summaries
                .iter()
                .map(|s| serde_json::json!({"kind": s.kind, "run": s.run_id, "entities": s.entities}))
                .collect();
            super::audit::record_admin(store.as_ref(), &args.store.database, "libraries.resolve", "all", serde_json::json!({ "runs": runs }))
                .await?;
            pb.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            if args.json {
                let v = serde_json::json!({ "libraries": summaries, "stage_seconds": stages, "write_seconds": writes,
                                            "peak_bytes_at_stage_end": peaks, "seconds": secs });
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
                // The writes run beside the stages after the persons' golden records, one after
                // another; "writing" above is only the wait for the last of them.
                let writes: Vec<String> = writes.iter().map(|(n, t)| format!("{n} {t:.1} s")).collect();
                println!("  written beside them: {}", writes.join(", "));
                // Which stage raised the peak: what a run at a larger scale needs to know.
                let peaks = peaks_line(&peaks);
                if !peaks.is_empty() {
                    println!("  peak memory at each stage's end (GiB): {peaks}");
                }
                // The distinct texts the mentions hold, kept to the end of the run: most of what
                // reading leaves in memory besides the mentions themselves.
                let (texts, bytes) = tongban_resolution::interned::stats();
                println!("  interned text: {texts} distinct values, {:.2} GiB", bytes as f64 / (1u64 << 30) as f64);
                // Pairs grow faster than records where a rule's blocks grow with the population:
                // each rule's share says which one to tighten.
                for s in summaries.iter().filter(|s| !s.blocking.is_empty()) {
                    println!("  {} candidate pairs by blocking rule (each pair under the first rule that forms it):", s.kind);
                    for r in &s.blocking {
                        let share = if s.candidate_pairs > 0 { 100.0 * r.pairs as f64 / s.candidate_pairs as f64 } else { 0.0 };
                        print!("    {:<32} {:>12} ({share:.1} %)", r.rule, r.pairs);
                        if r.skipped_blocks > 0 {
                            print!("; {} blocks of {} records left out as too large", r.skipped_blocks, r.skipped_records);
                        }
                        println!();
                    }
                }
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
        .await
})
}

async fn incremental(
    store: &dyn tongban_store::Store,
    database: &str,
    trust: Survivorship,
    pb: &ProgressBar,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use tongban_libraries::incremental::{Incremental, quantile_ms};
    // Incremental resolution adds new records' mentions; it cannot take back the mention of a
    // record's earlier version, which a re-clean replaced. Resolved one at a time, re-cleaned
    // records would stand beside their old versions as further people (seen: 30 persons too
    // many for 504 re-cleaned records), so a re-clean since the last run asks for a full run.
    if let Some(last) = store.latest_resolution("person").await? {
        let prefix = tongban_intake::pipeline::RECLEAN_BATCH_PREFIX;
        if let Some(b) = store.batches(None).await?.into_iter().find(|b| {
            b.file_name.starts_with(prefix)
                && b.started_at >= last.started_at
                && b.counts.inserted + b.counts.updated > 0
        }) {
            anyhow::bail!(
                "records of {} were re-cleaned (batch {}) since the libraries were last built: run `tongban resolve` without --incremental",
                b.source_id,
                b.id
            );
        }
    }
    let started = Instant::now();
    let mut libraries = Incremental::load(store, trust, &Bar(pb.clone())).await?;
    let loaded = started.elapsed().as_secs_f64();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg:>16} {pos} new records resolved ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let report = libraries.run(store, &Bar(pb.clone())).await?;
    pb.finish_and_clear();
    super::audit::record_admin(
        store,
        database,
        "libraries.resolve.incremental",
        "all",
        serde_json::json!({ "records": report.records, "last_record_id": report.last_record_id }),
    )
    .await?;
    let l = &report.latencies;
    let ms = |v: &[std::time::Duration], q: f64| quantile_ms(v, q);
    if json {
        let v = serde_json::json!({
            "report": report,
            "load_seconds": loaded,
            "decide_ms": {"p50": ms(&l.decide, 0.5), "p99": ms(&l.decide, 0.99), "max": ms(&l.decide, 1.0)},
            "total_ms": {"p50": ms(&l.total, 0.5), "p99": ms(&l.total, 0.99), "max": ms(&l.total, 1.0)},
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} new records resolved one at a time (index loaded in {loaded:.1} s):",
        report.records
    );
    for kind in tongban_store::RESOLUTION_KINDS {
        let get = |m: &std::collections::HashMap<String, u64>| m.get(*kind).copied().unwrap_or(0);
        println!(
            "  {kind:<8} {:>7} mentions: {:>6} new, {:>6} merged or re-keyed; {:>9} indexed before",
            get(&report.mentions),
            get(&report.new_entities),
            get(&report.renamed),
            get(&report.indexed),
        );
    }
    println!("  relations added: {}", report.relations);
    println!(
        "  per record: decided p50 {:.3} ms, p99 {:.3} ms; decided and stored p50 {:.3} ms, p99 {:.3} ms, max {:.1} ms",
        ms(&l.decide, 0.5),
        ms(&l.decide, 0.99),
        ms(&l.total, 0.5),
        ms(&l.total, 0.99),
        ms(&l.total, 1.0),
    );
    Ok(ExitCode::SUCCESS)
}
