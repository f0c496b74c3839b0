//! `tongban quality`: the scorecard per source and field, as a table or JSON.

use super::store_args::{StoreArgs, runtime};
use clap::Parser;
use std::process::ExitCode;
use tongban_intake::clean::Issue;
use tongban_intake::mapping::Mapping;
use tongban_intake::quality::{Scorecard, ScorecardBuilder};
use tongban_store::{BatchStatus, QuarantineStatus, Store};

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban quality\n  tongban quality --source grid_collection\n  tongban quality --source grid_collection --json > grid-scorecard.json"
)]
pub struct Args {
    /// One source (default: every registered source).
    #[arg(long)]
    pub source: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Builds a source's scorecard from the store.
pub async fn scorecard(store: &dyn Store, source_id: &str) -> anyhow::Result<Scorecard> {
    let src = store
        .source(source_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("source {source_id} is not registered"))?;
    let mapping = Mapping::parse(&src.mapping, &format!("the stored mapping of {source_id}"))?;
    let mut b = ScorecardBuilder::new(mapping);
    let mut after: Option<String> = None;
    loop {
        let page = store
            .current_records(source_id, after.as_deref(), 10_000)
            .await?;
        for r in &page {
            let cleaned: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&r.cleaned).unwrap_or_default();
            let issues: Vec<Issue> = serde_json::from_str(&r.issues).unwrap_or_default();
            b.add_record(&cleaned, &issues);
        }
        match page.last() {
            Some(last) if page.len() == 10_000 => after = Some(last.key.clone()),
            _ => break,
        }
    }
    for q in store
        .quarantine_list(Some(source_id), Some(QuarantineStatus::Held), i64::MAX)
        .await?
    {
        let raw: serde_json::Value =
            serde_json::from_str(&q.raw).unwrap_or(serde_json::Value::Null);
        let reasons: Vec<Issue> = serde_json::from_str(&q.reasons).unwrap_or_default();
        b.add_quarantined(&raw, &reasons);
    }
    let last = store
        .batches(Some(source_id))
        .await?
        .iter()
        .filter(|b| b.status == BatchStatus::Complete)
        .filter_map(|b| b.finished_at)
        .max();
    Ok(b.finish(last, tongban_store::now_millis()))
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

pub fn print(s: &Scorecard) {
    println!(
        "{} — {} {} ({} delivered: {} current, {} quarantined)",
        s.source_id, s.department, s.name, s.delivered, s.current, s.quarantined
    );
    let fresh = match (s.freshness.age_hours, s.freshness.fresh) {
        (Some(a), Some(f)) => format!(
            "last batch {a:.1} h ago, {}",
            if f { "fresh" } else { "STALE" }
        ),
        (Some(a), None) => format!("last batch {a:.1} h ago"),
        _ => "no complete batch".to_string(),
    };
    println!(
        "  key uniqueness {} ({} duplicate keys), {fresh}",
        pct(s.key_uniqueness),
        s.duplicate_keys
    );
    println!(
        "  {:<28} {:<18} {:>13} {:>10}",
        "field", "column", "completeness", "validity"
    );
    for f in &s.fields {
        println!(
            "  {:<28} {:<18} {:>13} {:>10}",
            f.field,
            f.column,
            pct(f.completeness),
            pct(f.validity)
        );
    }
    if !s.top_issues.is_empty() {
        println!("  top issues:");
        for i in s.top_issues.iter().take(10) {
            println!(
                "    {:>8} {:<9} {:<40} e.g. {}",
                i.count,
                format!("{:?}", i.severity),
                i.code,
                i.examples.join(" · ")
            );
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.store.open().await?;
        let ids: Vec<String> = match &args.source {
            Some(s) => vec![s.clone()],
            None => store.sources().await?.into_iter().map(|s| s.id).collect(),
        };
        if ids.is_empty() {
            println!("no sources registered yet: ingest one with `tongban ingest`");
            return Ok(ExitCode::SUCCESS);
        }
        let mut cards = Vec::new();
        for id in &ids {
            cards.push(scorecard(store.as_ref(), id).await?);
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&cards)?);
        } else {
            for c in &cards {
                print(c);
                println!();
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
