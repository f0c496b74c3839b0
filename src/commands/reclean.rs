//! `tongban reclean`: clean a source's stored records again with today's rules or a fixed
//! mapping, and keep each record whose cleaned values change as a new version.

use super::store_args::{StoreArgs, closing, runtime};
use anyhow::{Context, bail};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tongban_intake::mapping::Mapping;
use tongban_intake::reclean::{RecleanReport, reclean_source};
use tongban_store::Store;

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban reclean --dry-run                         # what today's rules would change, every source\n  tongban reclean --source police_household\n  tongban reclean --source grid_collection --mapping fixed/grid_collection.toml\n\nIngest finds a re-delivered row unchanged by its raw content, so records stored before a cleaning\nrule improved (or before a mapping was fixed) keep their old cleaned values. This cleans every\ncurrent record of the source again from its stored raw record and stores those whose cleaned\nfields or issues change as a new version (the old one is kept; the raw record and its hash stay\nthe same, so the next ingest of the same file still finds them unchanged). Records that would\nnow be blocked, or whose key the mapping now derives differently, are left as stored and listed.\nRun `tongban resolve` afterwards for the base libraries to see the new values."
)]
pub struct Args {
    /// The source to re-clean (default: every registered source, each with its stored mapping).
    #[arg(long)]
    pub source: Option<String>,
    /// A fixed mapping file to clean with (and to register for the source); needs --source.
    #[arg(long, requires = "source")]
    pub mapping: Option<PathBuf>,
    /// Report what would change without storing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reports = runtime()?.block_on(async {
        let store = args.store.open_existing().await?;
        closing(store.as_ref(), reclean(store.as_ref(), &args)).await
    })?;
    if args.json {
        let v = tongban_standards::date::with_china_times(serde_json::to_value(&reports)?);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for r in &reports {
            print_report(r, args.dry_run);
        }
        // Incremental resolution keeps a changed record's earlier mention until a full run.
        if reports.iter().any(|r| r.stored > 0) {
            println!("run `tongban resolve` for the base libraries to take the new values");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn reclean(store: &dyn Store, args: &Args) -> anyhow::Result<Vec<RecleanReport>> {
    let sources = match &args.source {
        Some(id) => vec![
            store
                .source(id)
                .await?
                .with_context(|| format!("source {id} is not registered"))?,
        ],
        None => store.sources().await?,
    };
    let mut reports = Vec::new();
    for src in sources {
        let (text, origin) = match &args.mapping {
            Some(p) => (
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                p.display().to_string(),
            ),
            None => (
                src.mapping.clone(),
                format!("the stored mapping of {}", src.id),
            ),
        };
        let mapping = Arc::new(Mapping::parse(&text, &origin)?);
        if mapping.source.id != src.id {
            bail!(
                "{origin} declares source {:?}, not {:?}",
                mapping.source.id,
                src.id
            );
        }
        // A mapping that does not fit the stored records is refused before it is registered.
        tongban_intake::reclean::check_mapping(store, &mapping).await?;
        if args.mapping.is_some() && !args.dry_run {
            store
                .put_source(&tongban_intake::pipeline::source_row(&mapping, &text))
                .await?;
            super::audit::record_admin(
                store,
                &args.store.database,
                "intake.source.mapping",
                &src.id,
                serde_json::json!({ "mapping": origin, "by": "reclean" }),
            )
            .await?;
        }
        let (current, _, _) = store.record_counts(&src.id).await?;
        let pb = super::progress_bar(current.max(0) as u64, &src.id);
        let examined = Arc::new(AtomicU64::new(0));
        let ticker = super::tick_from(&pb, &examined);
        let prefix = tongban_intake::pipeline::RECLEAN_BATCH_PREFIX;
        let batch_name = match &args.mapping {
            Some(p) => format!("{prefix} with {}", p.display()),
            None => format!("{prefix} (tongban {})", env!("CARGO_PKG_VERSION")),
        };
        let result = reclean_source(store, &mapping, &batch_name, args.dry_run, &examined).await;
        ticker.abort();
        pb.finish_and_clear();
        let report = result?;
        if let Some(b) = &report.batch {
            super::audit::record_admin(
                store,
                &args.store.database,
                "intake.reclean",
                &report.source_id,
                serde_json::json!({
                    "batch": b.id, "mapping": origin, "examined": report.examined,
                    "stored": report.stored, "fields": report.fields,
                }),
            )
            .await?;
        }
        reports.push(report);
    }
    Ok(reports)
}

fn print_report(r: &RecleanReport, dry_run: bool) {
    let verb = if dry_run { "would store" } else { "stored" };
    let batch = r
        .batch
        .as_ref()
        .map_or(String::new(), |b| format!(" in batch {}", b.id));
    println!(
        "{}: {} records examined, {} clean differently today, {} {verb} as new versions{batch}",
        r.source_id,
        r.examined,
        r.changed,
        if dry_run { r.changed } else { r.stored },
    );
    if r.kept > 0 {
        println!(
            "  {} left as stored: their key changed while this ran",
            r.kept
        );
    }
    if !r.fields.is_empty() {
        let fields: Vec<String> = r.fields.iter().map(|(f, n)| format!("{f} {n}")).collect();
        println!("  fields changed: {}", fields.join(", "));
    }
    for e in &r.examples {
        println!(
            "    {} {}: {} → {}",
            e.key,
            e.field,
            e.before.as_deref().unwrap_or("(absent)"),
            e.after.as_deref().unwrap_or("(absent)")
        );
    }
    if r.now_blocked > 0 {
        println!(
            "  {} would now be blocked; left as stored (fix the mapping, or ingest the department's corrected file):",
            r.now_blocked
        );
        for (key, why) in &r.blocked_examples {
            println!("    {key}: {why}");
        }
    }
    if r.skipped > 0 {
        println!(
            "  {} could not be cleaned again; left as stored:",
            r.skipped
        );
        for (key, why) in &r.skipped_examples {
            println!("    {key}: {why}");
        }
    }
}
