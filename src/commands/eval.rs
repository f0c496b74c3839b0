//! `tongban eval`: score the base libraries against the synthetic city's truth.

use super::store_args::{StoreArgs, closing, runtime};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tongban_libraries::evaluate::evaluate;

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban eval --truth tongban-data/synth/truth
  tongban eval --truth data/synth/truth --json

Scores the latest resolution run against truth/records.csv written by `tongban synth`: pairwise
and cluster precision, recall and F1, per source, and the worst false merges and splits.")]
pub struct Args {
    /// The truth directory of a synthetic city (holds records.csv).
    #[arg(long)]
    pub truth: PathBuf,
    /// The scores as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let store = args.store.open_existing().await?;
        closing(store.as_ref(), async {
            let mut reports = Vec::new();
            for (kind, prefix) in [("person", "P"), ("entity", "E"), ("room", "R"), ("building", "B")] {
                if store.latest_resolution(kind).await?.is_some() {
                    reports.push(evaluate(store.as_ref(), kind, &args.truth, prefix).await?);
                }
            }
            if reports.is_empty() {
                anyhow::bail!("no library has been built yet: run `tongban resolve` first");
            }
            let mut all_json = Vec::new();
            for r in &reports {
            let s = &r.scores;
            if args.json {
                let v = serde_json::json!({
                    "kind": r.kind,
                    "mentions": r.mentions,
                    "unknown_to_truth": r.unknown_to_truth,
                    "pairwise": {"precision": s.pairwise.precision(), "recall": s.pairwise.recall(), "f1": s.pairwise.f1()},
                    "cluster": {"precision": s.clusters.precision(), "recall": s.clusters.recall(), "f1": s.clusters.f1()},
                    "by_source": r.by_source,
                    "false_merges": s.merges.iter().map(|m| serde_json::json!({"cluster": r.cluster_names[m.cluster as usize], "wrong_pairs": m.wrong_pairs, "true_entities": m.parts.iter().map(|(t, n)| (r.true_names[*t as usize].clone(), n)).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                    "false_splits": s.splits.iter().map(|x| serde_json::json!({"entity": r.true_names[x.entity as usize], "missed_pairs": x.missed_pairs, "clusters": x.parts.iter().map(|(c, n)| (r.cluster_names[*c as usize].clone(), n)).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                });
                all_json.push(v);
                continue;
            }
            println!("{} library: {} mentions scored ({} not in the truth)", r.kind, r.mentions, r.unknown_to_truth);
            println!(
                "  pairwise  precision {:.4}  recall {:.4}  F1 {:.4}",
                s.pairwise.precision(),
                s.pairwise.recall(),
                s.pairwise.f1()
            );
            println!(
                "  clusters  precision {:.4}  recall {:.4}  F1 {:.4}  ({} predicted, {} true)",
                s.clusters.precision(),
                s.clusters.recall(),
                s.clusters.f1(),
                s.clusters.predicted,
                s.clusters.actual
            );
            println!("  per source (pairs with at least one mention from it):");
            for b in &r.by_source {
                println!(
                    "    {:<22} {:>8} mentions  precision {:.4}  recall {:.4}  F1 {:.4}",
                    b.source, b.mentions, b.precision, b.recall, b.f1
                );
            }
            if s.merges.is_empty() {
                println!("  no false merges");
            } else {
                println!("  worst false merges:");
            }
            for m in s.merges.iter().take(5) {
                let parts: Vec<String> = m.parts.iter().map(|(t, n)| format!("{}×{n}", r.true_names[*t as usize])).collect();
                println!("    {} holds {} ({} wrong pairs)", r.cluster_names[m.cluster as usize], parts.join(" + "), m.wrong_pairs);
                if let Some(ex) = r.examples.get(&m.cluster) {
                    for (src, key, role) in ex {
                        println!("        {src} {key} {role}");
                    }
                }
            }
            if s.splits.is_empty() {
                println!("  no false splits");
            } else {
                println!("  worst false splits:");
            }
            for x in s.splits.iter().take(5) {
                let parts: Vec<String> = x.parts.iter().map(|(c, n)| format!("{}×{n}", r.cluster_names[*c as usize])).collect();
                println!("    {} split into {} ({} missed pairs)", r.true_names[x.entity as usize], parts.join(" + "), x.missed_pairs);
            }
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&all_json)?);
            }
            Ok(ExitCode::SUCCESS)
            })
        .await
})
}
