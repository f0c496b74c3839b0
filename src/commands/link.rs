//! `tongban link`: deduplicate one CSV file or link two with the Fellegi–Sunter engine.

use super::progress_bar;
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tongban_resolution::eval;
use tongban_resolution::link::{LinkConfig, load};
use tongban_resolution::linker::{self, Stage};

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban link --config examples/febrl/febrl.toml --input dataset3.csv --output clusters.csv
  tongban link --config examples/febrl/febrl.toml --input dataset4a.csv --input dataset4b.csv \\
               --output clusters.csv --pairs pairs.csv
  tongban link --config link.toml --input people.csv --output out.csv --explain rec-1-org,rec-1-dup-0

One --input deduplicates it; two link them (only pairs across the inputs are compared). The output
is `rec_id,cluster_id` (with a third column `input`, 1 or 2, when linking); the cluster id is the
id of the cluster's first record. When the configuration has a [truth] section, the run scores
itself: pairwise and cluster precision, recall and F1. See examples/febrl/README.md.")]
pub struct Args {
    /// The linking configuration (TOML): id column, comparisons, blocking rules, threshold.
    #[arg(long)]
    pub config: PathBuf,
    /// Input CSV file (once to deduplicate, twice to link).
    #[arg(long, required = true)]
    pub input: Vec<PathBuf>,
    /// Where to write `rec_id,cluster_id`.
    #[arg(long)]
    pub output: PathBuf,
    /// Also write scored candidate pairs (match weight and probability) to this file.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Only pairs with at least this match probability go to --pairs.
    #[arg(long, default_value_t = 0.01)]
    pub pairs_min_probability: f64,
    /// Explain the comparison of two records, given as `ID1,ID2`.
    #[arg(long)]
    pub explain: Vec<String>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Freed memory goes back at once rather than within 10 ms: a stage's freed memory was
    // otherwise still resident, by chance, when the next took its own (at a million FEBRL-style
    // records the peak varied between 404 and 479 MiB over runs; at once, 381-397 MiB, in the
    // same time within this machine's noise).
    crate::return_freed_memory_within(0);
    crate::without_huge_pages();
    let started = Instant::now();
    let config = LinkConfig::load(&args.config)?;
    let mut loaded = load(&config, &args.input)?;
    let loaded_at = started.elapsed();
    let peak_after_load = super::bench::peak_rss_bytes();
    let pb = progress_bar(6, "linking");
    // Each stage's start time and the process's peak memory when it starts (the peak at the
    // end of the stage before it): where a run's memory goes is what its peak alone hides.
    let mut stage_times: Vec<(Stage, Instant, Option<u64>)> = Vec::new();
    let mut on_stage = |s: Stage| {
        stage_times.push((s, Instant::now(), super::bench::peak_rss_bytes()));
        pb.set_position(s as u64);
        pb.set_message(format!("{s:?}").to_lowercase());
    };
    // From training on the run reads the values only through its features, so their text goes
    // before training and the candidate pairs (at a million FEBRL-style records the peak went
    // from 493-516 to 389-395 MiB); only `--explain`, which shows the values, keeps it.
    let outcome = if args.explain.is_empty() {
        linker::run_releasing_columns(&mut loaded.table, &config.settings, &mut on_stage)?
    } else {
        linker::run(&loaded.table, &config.settings, &mut on_stage)?
    };
    let table = &loaded.table;
    let link_done = Instant::now();
    let peak_after_link = super::bench::peak_rss_bytes();
    let stage_seconds: Vec<(String, f64)> = stage_times
        .iter()
        .enumerate()
        .map(|(i, (s, t, _))| {
            let end = stage_times.get(i + 1).map_or(link_done, |n| n.1);
            (format!("{s:?}").to_lowercase(), (end - *t).as_secs_f64())
        })
        .collect();
    // The peak at each stage's end: the next stage's start, or the link's end for the last.
    let stage_peaks: Vec<(String, Option<u64>)> =
        std::iter::once(("load".to_string(), peak_after_load))
            .chain(stage_times.iter().enumerate().map(|(i, (s, _, _))| {
                let end = stage_times.get(i + 1).map_or(peak_after_link, |n| n.2);
                (format!("{s:?}").to_lowercase(), end)
            }))
            .collect();
    pb.finish_and_clear();
    let linked_at = started.elapsed();

    write_clusters(&args.output, table, &outcome.labels)?;
    if let Some(path) = &args.pairs {
        write_pairs(path, table, &outcome, args.pairs_min_probability)?;
    }
    let total = started.elapsed();

    let scores = loaded
        .truth
        .as_ref()
        .map(|truth| eval::score(&outcome.labels, truth, 5));
    let rss = super::bench::peak_rss_bytes();
    let s = &outcome.stats;
    let mut summary = serde_json::json!({
        "records": s.records,
        "mode": if table.split.is_some() { "link" } else { "dedupe" },
        "candidate_pairs": s.candidate_pairs,
        "linked_pairs": s.linked_pairs,
        "refused_by_constraint": s.refused_by_constraint,
        "clusters": s.clusters,
        "lambda": outcome.model.lambda, "candidate_lambda": s.candidate_lambda,
        "stage_seconds": stage_seconds.iter().map(|(s, t)| (s.clone(), serde_json::json!(t))).collect::<serde_json::Map<_, _>>(),
        "seconds": { "load": loaded_at.as_secs_f64(), "link": (linked_at - loaded_at).as_secs_f64(), "total": total.as_secs_f64() },
        "peak_rss_mib": rss.map(|b| b as f64 / 1048576.0),
        "peak_rss_mib_at_stage_end": stage_peaks.iter().map(|(s, b)| (s.clone(), serde_json::json!(b.map(|b| b as f64 / 1048576.0)))).collect::<serde_json::Map<_, _>>(),
        "rules": s.rules.iter().map(|r| serde_json::json!({"rule": r.rule, "pairs": r.pairs, "skipped_blocks": r.skipped_blocks, "skipped_records": r.skipped_records})).collect::<Vec<_>>(),
    });
    if let Some(sc) = &scores {
        summary["scores"] = serde_json::json!({
            "pairwise": { "precision": sc.pairwise.precision(), "recall": sc.pairwise.recall(), "f1": sc.pairwise.f1() },
            "cluster": { "precision": sc.clusters.precision(), "recall": sc.clusters.recall(), "f1": sc.clusters.f1() },
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{} records ({}), {} candidate pairs, {} linked, {} clusters; prior {:.3e} (among candidates {:.4})",
            s.records,
            if table.split.is_some() {
                "link"
            } else {
                "dedupe"
            },
            s.candidate_pairs,
            s.linked_pairs,
            s.clusters,
            outcome.model.lambda,
            s.candidate_lambda
        );
        for r in &s.rules {
            let skipped = if r.skipped_blocks > 0 {
                format!(
                    " ({} blocks of {} records skipped as too large)",
                    r.skipped_blocks, r.skipped_records
                )
            } else {
                String::new()
            };
            println!("  blocking {:<40} {:>10} pairs{skipped}", r.rule, r.pairs);
        }
        println!("  weights (log2 m/u) per comparison level:");
        for (c, cmp) in config.settings.comparisons.iter().enumerate() {
            let levels: Vec<String> = (1..cmp.kind.levels())
                .map(|l| {
                    format!(
                        "{} {:+.2}",
                        cmp.kind.labels()[l],
                        outcome.model.weight(c, l)
                    )
                })
                .collect();
            println!("    {:<16} {}", cmp.name, levels.join(" · "));
        }
        if let Some(sc) = &scores {
            println!(
                "  pairwise  precision {:.4} recall {:.4} F1 {:.4}",
                sc.pairwise.precision(),
                sc.pairwise.recall(),
                sc.pairwise.f1()
            );
            println!(
                "  clusters  precision {:.4} recall {:.4} F1 {:.4}",
                sc.clusters.precision(),
                sc.clusters.recall(),
                sc.clusters.f1()
            );
        }
        println!(
            "  time: load {:.2} s, link {:.2} s, total {:.2} s; peak memory {}",
            loaded_at.as_secs_f64(),
            (linked_at - loaded_at).as_secs_f64(),
            total.as_secs_f64(),
            rss.map_or("unknown".into(), |b| format!(
                "{:.0} MiB",
                b as f64 / 1048576.0
            ))
        );
        let stages: Vec<String> = stage_seconds
            .iter()
            .map(|(s, t)| format!("{s} {t:.2} s"))
            .collect();
        println!("  link stages: {}", stages.join(", "));
        let peaks: Vec<String> = stage_peaks
            .iter()
            .filter_map(|(s, b)| Some(format!("{s} {:.0}", (*b)? as f64 / 1048576.0)))
            .collect();
        if !peaks.is_empty() {
            println!(
                "  peak memory at each stage's end (MiB): {}",
                peaks.join(", ")
            );
        }
        println!("  wrote {}", args.output.display());
    }
    for pair in &args.explain {
        let Some((x, y)) = pair.split_once(',') else {
            anyhow::bail!("--explain {pair}: give two record ids separated by a comma");
        };
        let find = |id: &str| (0..table.len()).find(|&i| table.ids.get(i) == id.trim());
        let (Some(a), Some(b)) = (find(x), find(y)) else {
            anyhow::bail!("--explain {pair}: no record with that id in the inputs");
        };
        let e = linker::explain(
            table,
            &config.settings,
            &outcome.features,
            &outcome.model,
            a,
            b,
        );
        println!(
            "\n{} ↔ {}: weight {:+.2} (prior {:+.2}), probability {:.4} → {}",
            x.trim(),
            y.trim(),
            e.total,
            e.prior,
            e.probability,
            if e.linked { "linked" } else { "not linked" }
        );
        for f in &e.fields {
            println!(
                "  {:<16} {} | {} {:<32} {:+.2}{}",
                f.comparison,
                super::right(&f.left, 20),
                super::left(&f.right, 20),
                f.level,
                f.weight,
                if f.tf_adjustment != 0.0 {
                    format!(" (term frequency {:+.2})", f.tf_adjustment)
                } else {
                    String::new()
                }
            );
        }
    }
    // The process ends here: handing a gigabyte of tables back to the allocator piece by piece
    // would only delay the exit (by about half a second at a million records).
    std::mem::forget(outcome);
    std::mem::forget(loaded);
    Ok(ExitCode::SUCCESS)
}

fn write_clusters(
    path: &PathBuf,
    table: &tongban_resolution::table::Table,
    labels: &[u32],
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let link = table.split;
    if link.is_some() {
        writeln!(w, "rec_id,cluster_id,input")?;
    } else {
        writeln!(w, "rec_id,cluster_id")?;
    }
    let mut csv = csv::Writer::from_writer(w);
    for (i, &label) in labels.iter().enumerate() {
        let id = table.ids.get(i);
        let cluster = table.ids.get(label as usize);
        match link {
            Some(s) => csv.write_record([id, cluster, if i < s { "1" } else { "2" }])?,
            None => csv.write_record([id, cluster])?,
        }
    }
    csv.flush()?;
    Ok(())
}

fn write_pairs(
    path: &PathBuf,
    table: &tongban_resolution::table::Table,
    outcome: &linker::Outcome,
    min_probability: f64,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut csv = csv::Writer::from_writer(std::io::BufWriter::new(file));
    csv.write_record([
        "rec_id_l",
        "rec_id_r",
        "match_weight",
        "match_probability",
        "same_cluster",
    ])?;
    for (p, &w) in outcome.pairs.iter().zip(&outcome.weights) {
        let prob = outcome.model.probability(f64::from(w));
        if prob < min_probability {
            continue;
        }
        let same = outcome.labels[p.a as usize] == outcome.labels[p.b as usize];
        csv.write_record([
            table.ids.get(p.a as usize),
            table.ids.get(p.b as usize),
            &format!("{w:.3}"),
            &format!("{prob:.6}"),
            if same { "1" } else { "0" },
        ])?;
    }
    csv.flush()?;
    Ok(())
}
