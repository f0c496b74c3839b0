//! `tongban quarantine`: inspect held records and re-admit them after the mapping is fixed.

use super::store_args::{StoreArgs, closing, runtime};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tongban_intake::clean::Issue;
use tongban_intake::mapping::Mapping;
use tongban_store::{QuarantineEntry, QuarantineStatus, Store};

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban quarantine list --source grid_collection\n  tongban quarantine show 17\n  tongban quarantine release 17 --mapping mappings/synth/grid_collection.toml\n  tongban quarantine release --all --source grid_collection --mapping fixed.toml\n  tongban quarantine dismiss --source grid_collection --delivered --reason \"delivered again in the corrected file\"\n  tongban quarantine dismiss 17 18 --reason \"test rows, not records\""
)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// List held records with their first reason.
    List {
        /// Only this source's entries.
        #[arg(long)]
        source: Option<String>,
        /// Also list closed entries: released, dismissed and redelivered ones.
        #[arg(long)]
        all: bool,
        /// At most this many entries (the oldest first); the list says when there are more.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        /// As JSON, each entry's reasons as a list of issues.
        #[arg(long)]
        json: bool,
    },
    /// Show one entry: where it came from, its raw values and every reason.
    Show {
        /// The entry's id, as `quarantine list` shows it.
        id: i64,
    },
    /// Re-clean held records with the source's mapping (or a fixed one) and store those that now
    /// pass; the others stay held and their reasons are printed.
    Release {
        /// The entry to release.
        id: Option<i64>,
        /// Release every held entry of --source.
        #[arg(long, requires = "source")]
        all: bool,
        /// The source whose entries --all releases.
        #[arg(long)]
        source: Option<String>,
        /// A fixed mapping file to clean with (and to register for the source).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Also release duplicate-key entries and entries whose key a later batch delivered,
        /// replacing the stored version.
        #[arg(long)]
        replace: bool,
    },
    /// Set held entries aside without storing them (they stay listed with `--all`): given ones,
    /// those of --source whose record the department delivered again in a later batch
    /// (--delivered; each ingest closes these by itself, as `redelivered`, so this is for
    /// stores written before it did), or every held entry of --source (--all). Audited with the
    /// reason.
    Dismiss {
        /// The entries to dismiss.
        ids: Vec<i64>,
        /// The source whose entries --delivered or --all dismiss.
        #[arg(long)]
        source: Option<String>,
        /// Entries of --source whose record a later batch delivered readable.
        #[arg(long, requires = "source", conflicts_with = "all")]
        delivered: bool,
        /// Every held entry of --source.
        #[arg(long, requires = "source")]
        all: bool,
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.store.open_existing().await?;
        closing(store.as_ref(), async {
            match args.what {
                What::List {
                    source,
                    all,
                    limit,
                    json,
                } => {
                    let status = if all {
                        None
                    } else {
                        Some(QuarantineStatus::Held)
                    };
                    if let Some(s) = &source
                        && store.source(s).await?.is_none()
                    {
                        bail!("source {s} is not registered");
                    }
                    // One more than asked for tells whether the list was cut.
                    let mut entries = store
                        .quarantine_list(source.as_deref(), status, limit.saturating_add(1))
                        .await?;
                    let cut = entries.len() as i64 > limit;
                    entries.truncate(limit as usize);
                    if json {
                        // The reasons are stored as JSON text; a client wants them as a list.
                        let shown: Vec<serde_json::Value> = entries
                            .iter()
                            .map(|e| {
                                let mut v = serde_json::to_value(e)?;
                                v["reasons"] =
                                    serde_json::from_str(&e.reasons).unwrap_or_else(|_| {
                                        serde_json::Value::String(e.reasons.clone())
                                    });
                                Ok(v)
                            })
                            .collect::<Result<_, serde_json::Error>>()?;
                        let v = tongban_standards::date::with_china_times(
                            serde_json::Value::Array(shown),
                        );
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else if entries.is_empty() {
                        println!("no quarantined records");
                    } else {
                        println!(
                            "{:>6}  {:<22} {:<12} {:<11} reason",
                            "id", "source", "where", "status"
                        );
                        for e in &entries {
                            println!(
                                "{:>6}  {:<22} {:<12} {:<11} {}",
                                e.id,
                                e.source_id,
                                e.location,
                                e.status.as_str(),
                                tongban_intake::pipeline::first_message(&e.reasons)
                            );
                        }
                        if cut {
                            println!("(the first {limit}; --limit shows more)");
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                What::Show { id } => {
                    let Some(e) = store.quarantine_entry(id).await? else {
                        bail!("no quarantine entry {id}");
                    };
                    println!(
                        "entry {} of source {}, batch {}, {} ({})",
                        e.id,
                        e.source_id,
                        e.batch_id,
                        e.location,
                        e.status.as_str()
                    );
                    if let Some(k) = &e.key {
                        println!("record key {k}");
                    }
                    println!("raw: {}", e.raw);
                    let issues: Vec<Issue> = serde_json::from_str(&e.reasons).unwrap_or_default();
                    for i in issues {
                        println!("  {:?} {} [{}] {}", i.severity, i.code, i.field, i.message);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                What::Release {
                    id,
                    all,
                    source,
                    mapping,
                    replace,
                } => {
                    let database = args.store.database.clone();
                    release(store.as_ref(), &database, id, all, source, mapping, replace).await
                }
                What::Dismiss {
                    ids,
                    source,
                    delivered,
                    all,
                    reason,
                } => {
                    let database = args.store.database.clone();
                    dismiss(
                        store.as_ref(),
                        &database,
                        ids,
                        source,
                        delivered,
                        all,
                        &reason,
                    )
                    .await
                }
            }
        })
        .await
    })
}

/// `quarantine dismiss`: see [`What::Dismiss`].
async fn dismiss(
    store: &dyn Store,
    database: &str,
    ids: Vec<i64>,
    source: Option<String>,
    delivered: bool,
    all: bool,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    if reason.trim().is_empty() {
        bail!("--reason says why the entries are set aside, for the audit log");
    }
    let chosen: Vec<QuarantineEntry> = match (ids.is_empty(), &source) {
        (false, None) if !delivered && !all => {
            let mut chosen = Vec::new();
            for id in ids {
                let e = store
                    .quarantine_entry(id)
                    .await?
                    .with_context(|| format!("no quarantine entry {id}"))?;
                if e.status != QuarantineStatus::Held {
                    bail!("entry {id} is {}, not held", e.status.as_str());
                }
                chosen.push(e);
            }
            chosen
        }
        (true, Some(s)) if delivered || all => {
            store
                .source(s)
                .await?
                .with_context(|| format!("source {s} is not registered"))?;
            if all {
                store
                    .quarantine_list(Some(s), Some(QuarantineStatus::Held), i64::MAX)
                    .await?
            } else {
                tongban_intake::pipeline::find_redelivered(store, s).await?
            }
        }
        _ => bail!("give entry ids, or --source SOURCE with --delivered or --all"),
    };
    let mut dismissed: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for e in &chosen {
        store.dismiss_quarantined(e.id).await?;
        dismissed.entry(e.source_id.clone()).or_default().push(e.id);
    }
    for (source, ids) in &dismissed {
        super::audit::record_admin(
            store,
            database,
            "intake.quarantine.dismiss",
            source,
            serde_json::json!({ "dismissed": ids, "reason": reason }),
        )
        .await?;
    }
    println!("{} dismissed", chosen.len());
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
async fn release(
    store: &dyn Store,
    database: &str,
    id: Option<i64>,
    all: bool,
    source: Option<String>,
    mapping_file: Option<PathBuf>,
    replace: bool,
) -> anyhow::Result<ExitCode> {
    let entries = match (id, all) {
        (Some(id), false) => vec![
            store
                .quarantine_entry(id)
                .await?
                .with_context(|| format!("no quarantine entry {id}"))?,
        ],
        (None, true) => {
            store
                .quarantine_list(source.as_deref(), Some(QuarantineStatus::Held), i64::MAX)
                .await?
        }
        _ => bail!("give either an entry id or --all --source SOURCE"),
    };
    let Some(source_id) = entries.first().map(|e| e.source_id.clone()) else {
        println!("nothing to release");
        return Ok(ExitCode::SUCCESS);
    };
    let src = store
        .source(&source_id)
        .await?
        .with_context(|| format!("source {source_id} is not registered"))?;
    let (text, origin) = match &mapping_file {
        Some(p) => (
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            p.display().to_string(),
        ),
        None => (
            src.mapping.clone(),
            format!("the stored mapping of {source_id}"),
        ),
    };
    let mapping = Arc::new(Mapping::parse(&text, &origin)?);
    if mapping.source.id != source_id {
        bail!(
            "{origin} declares source {:?}, but the entries belong to {source_id:?}",
            mapping.source.id
        );
    }
    if mapping_file.is_some() {
        store
            .put_source(&tongban_intake::pipeline::source_row(&mapping, &text))
            .await?;
    }
    let report =
        tongban_intake::pipeline::release_quarantined(store, &mapping, &entries, replace).await?;
    for (id, why) in &report.held {
        println!("{id}: {why}");
    }
    let already: Vec<i64> = entries
        .iter()
        .filter(|e| e.status != QuarantineStatus::Held)
        .map(|e| e.id)
        .collect();
    for e in entries
        .iter()
        .filter(|e| e.status != QuarantineStatus::Held)
    {
        println!("{}: already {}", e.id, e.status.as_str());
    }
    println!(
        "{} released, {} still held",
        report.released.len(),
        report.held.len()
    );
    if !report.released.is_empty() {
        let source = entries.first().map_or("", |e| e.source_id.as_str());
        super::audit::record_admin(
            store,
            database,
            "intake.quarantine.release",
            source,
            serde_json::json!({ "released": report.released, "replace": replace }),
        )
        .await?;
    }
    let still_held = report.held.len() + already.len();
    Ok(if still_held == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
