//! `tongban ingest`: one department file, declared by its mapping, into the store.

use super::store_args::{StoreArgs, closing, runtime};
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tongban_intake::mapping::Mapping;
use tongban_intake::pipeline::ingest_file;

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban ingest --source mappings/synth/police_household.toml data/synth/police_household.csv\n  tongban ingest --source mappings/synth/civil_affairs.toml data/synth/civil_affairs.csv --database postgres://tongban@127.0.0.1/tongban\n\nRe-running the same file changes nothing; a changed record becomes a new version; for a snapshot\nsource, records missing from the file are marked withdrawn. Records that cannot be read or fail a\nblocking check go to quarantine (see `tongban quarantine`)."
)]
pub struct Args {
    /// The source's mapping file (TOML).
    #[arg(long)]
    pub source: PathBuf,
    /// The data file.
    pub file: PathBuf,
    /// Let an empty snapshot withdraw every record of the source.
    #[arg(long)]
    pub allow_empty: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the batch as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mapping_text = std::fs::read_to_string(&args.source)
        .with_context(|| format!("reading {}", args.source.display()))?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let store = args.store.open().await?;
        closing(store.as_ref(), async {
            ingest_with_bar(
                store.as_ref(),
                &args.store.database,
                &mapping_text,
                &args.source.display().to_string(),
                &args.file,
                args.allow_empty,
            )
            .await
        })
        .await
    })?;
    let b = &report.batch;
    if args.json {
        let mut v = tongban_standards::date::with_china_times(serde_json::to_value(b)?);
        v["redelivered"] = serde_json::json!(report.redelivered);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} batch {}: {} records read, {} new, {} changed, {} unchanged, {} quarantined, {} withdrawn{}",
            b.source_id,
            b.id,
            report.read.records + report.read.unreadable,
            b.counts.inserted,
            b.counts.updated,
            b.counts.unchanged,
            b.counts.quarantined,
            b.withdrawn,
            if report.read.had_bom {
                " (byte-order mark removed)"
            } else {
                ""
            }
        );
        if b.counts.quarantined > 0 {
            println!(
                "  see them with: tongban quarantine list --source {}",
                b.source_id
            );
        }
        if !report.redelivered.is_empty() {
            println!(
                "  {} held quarantine entries closed as redelivered: this file delivered their records readable ({})",
                report.redelivered.len(),
                report
                    .redelivered
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Ingest `file` under a mapping (its text, and where it came from for messages) with a
/// progress bar by bytes, and record the batch in the audit log.
pub async fn ingest_with_bar(
    store: &dyn tongban_store::Store,
    database: &str,
    mapping_text: &str,
    mapping_origin: &str,
    file: &std::path::Path,
    allow_empty: bool,
) -> anyhow::Result<tongban_intake::pipeline::IngestReport> {
    let mapping = Arc::new(Mapping::parse(mapping_text, mapping_origin)?);
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let bytes = Arc::new(AtomicU64::new(0));
    let pb = super::progress_bar(size, &mapping.source.id);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>20} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let ticker = super::tick_from(&pb, &bytes);
    let result = ingest_file(
        store,
        mapping.clone(),
        mapping_text,
        file,
        bytes,
        allow_empty,
    )
    .await;
    ticker.abort();
    pb.finish_and_clear();
    let result = result?;
    let b = &result.batch;
    super::audit::record_admin(
        store,
        database,
        "intake.ingest",
        &b.source_id,
        serde_json::json!({
            "batch": b.id, "file": file.display().to_string(),
            "inserted": b.counts.inserted, "updated": b.counts.updated,
            "quarantined": b.counts.quarantined, "withdrawn": b.withdrawn,
            "redelivered": result.redelivered,
        }),
    )
    .await?;
    Ok(result)
}
