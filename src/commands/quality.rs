//! `tongban quality`: the scorecard per source and field, as a table or JSON.

use super::store_args::{StoreArgs, closing, runtime};
use clap::Parser;
use std::process::ExitCode;
use tongban_intake::pipeline::scorecard;
use tongban_intake::quality::Scorecard;

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban quality\n  tongban quality --source grid_collection\n  tongban quality --source grid_collection --json > grid-scorecard.json"
)]
pub struct Args {
    /// One source (default: every registered source).
    #[arg(long)]
    pub source: Option<String>,
    /// As JSON, for scripts.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
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
            "  {:<28} {} {:>13} {:>10}",
            f.field,
            super::left(&f.column, 18),
            pct(f.completeness),
            pct(f.validity)
        );
    }
    if !s.top_issues.is_empty() {
        println!("  top issues:");
        for i in s.top_issues.iter().take(10) {
            // The field beside the code: the same code (name.traditional, say) can come from
            // several fields of one source.
            println!(
                "    {:>8} {:<9} {:<40} e.g. {}",
                i.count,
                format!("{:?}", i.severity),
                format!("{} ({})", i.code, i.field),
                i.examples.join(" · ")
            );
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.store.open_existing().await?;
        closing(store.as_ref(), async {
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
                let v = tongban_standards::date::with_china_times(serde_json::to_value(&cards)?);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for c in &cards {
                    print(c);
                    println!();
                }
            }
            Ok(ExitCode::SUCCESS)
        })
        .await
    })
}
