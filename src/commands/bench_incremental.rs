//! `tongban bench incremental`: the latency of resolving new records one at a time against
//! libraries already built, and whether a run from scratch agrees with the result.

use super::bench::peak_rss_bytes;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;
use tongban_intake::mapping::Mapping;
use tongban_libraries::build::{Progress, build_all};
use tongban_libraries::incremental::{Incremental, quantile_ms};
use tongban_libraries::person::DEFAULT_TRUST;
use tongban_resolution::config::LibraryConfig;
use tongban_resolution::golden::Survivorship;
use tongban_store::Store;
use tongban_synth::SynthConfig;
use tongban_synth::exports::Sink;

pub struct Options {
    pub people: u64,
    pub seed: u64,
    pub held_back: Vec<String>,
    pub data: Option<std::path::PathBuf>,
    pub database: Option<String>,
    pub mappings: std::path::PathBuf,
    pub verify: bool,
    pub new_records: Option<usize>,
}

/// The first `n` records of an export (its header line kept for CSV), written to `to`. The
/// synthetic exports hold one record per line.
fn head(from: &std::path::Path, to: &std::path::Path, n: usize) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    let header = from.extension().is_some_and(|e| e == "csv");
    let input = std::io::BufReader::new(std::fs::File::open(from)?);
    let mut out = std::io::BufWriter::new(std::fs::File::create(to)?);
    for line in input.lines().take(n + usize::from(header)) {
        writeln!(out, "{}", line?)?;
    }
    out.flush()?;
    Ok(())
}

struct Bar(ProgressBar);
impl Progress for Bar {
    fn stage(&self, name: &str) {
        self.0.set_message(name.to_string());
    }
    fn records(&self, n: u64) {
        self.0.set_position(n);
    }
}

fn spinner(what: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {{msg:>20}} {{pos}} {what} ({{elapsed}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

/// Each kind's clusters, each as the sorted hashes of its mentions: enough to tell whether two
/// results partition the mentions alike, at a fraction of the memory of the mentions themselves.
async fn partitions(
    store: &dyn Store,
) -> anyhow::Result<HashMap<&'static str, BTreeSet<Vec<u64>>>> {
    let mut out = HashMap::new();
    for kind in tongban_store::RESOLUTION_KINDS {
        let mut groups: HashMap<String, Vec<u64>> = HashMap::new();
        let mut pages = tongban_store::LinkPages::new(kind, 100_000);
        while let Some(page) = pages.next(store).await? {
            for l in page {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (&l.source_id, &l.record_key, &l.role).hash(&mut h);
                groups.entry(l.entity_key).or_default().push(h.finish());
            }
        }
        out.insert(
            *kind,
            groups
                .into_values()
                .map(|mut v| {
                    v.sort_unstable();
                    v
                })
                .collect(),
        );
    }
    Ok(out)
}

pub fn run(o: Options) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let dir = o
        .data
        .clone()
        .unwrap_or_else(|| scratch.path().join("synth"));
    let started = Instant::now();
    if !dir.join("manifest.json").exists() {
        let cfg = SynthConfig {
            seed: o.seed,
            people: o.people,
            ..SynthConfig::default()
        };
        super::synth::generate(cfg, &dir)?;
        println!(
            "bench incremental: generated {} people in {:.1} s into {}",
            o.people,
            started.elapsed().as_secs_f64(),
            dir.display()
        );
    } else {
        println!(
            "bench incremental: reusing the exports in {}",
            dir.display()
        );
    }
    let database = o
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", scratch.path().join("bench.db").display()));
    let store_args = super::store_args::StoreArgs {
        database: database.clone(),
    };
    let trust = Survivorship::new(DEFAULT_TRUST);
    let rt = super::store_args::runtime()?;
    rt.block_on(async {
        let store = store_args.open().await?;
        let store = store.as_ref();
        let ingest = |sink: Sink, limit: Option<usize>| {
            let dir = dir.clone();
            let mappings = o.mappings.clone();
            let scratch = scratch.path().to_path_buf();
            async move {
                let mut file = dir.join(sink.path());
                if let Some(n) = limit {
                    let name = file.file_name().map(|f| f.to_owned()).unwrap_or_default();
                    let part = scratch.join(name);
                    head(&file, &part, n)?;
                    file = part;
                }
                let stem = sink.path().split('.').next().unwrap_or_default().to_string();
                let path = mappings.join(format!("{stem}.toml"));
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                let mapping = Arc::new(Mapping::parse(&text, &path.display().to_string())?);
                let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
                let r = tongban_intake::pipeline::ingest_file(
                    store,
                    mapping,
                    &text,
                    &file,
                    bytes,
                    false,
                )
                .await?;
                anyhow::Ok(r.batch.counts.records)
            }
        };
        let is_held = |s: &Sink| {
            let stem = s.path().split('.').next().unwrap_or_default();
            o.held_back.iter().any(|h| h == stem)
        };
        let t = Instant::now();
        let mut first = 0;
        for sink in Sink::ALL.iter().filter(|s| s.department().is_some() && !is_held(s)) {
            first += ingest(*sink, None).await?;
        }
        println!("  ingested {first} records in {:.1} s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        let pb = spinner("records read");
        let summaries = build_all(store, &trust, &LibraryConfig::default(), &Bar(pb.clone())).await?.summaries;
        pb.finish_and_clear();
        let entities: Vec<String> = summaries
            .iter()
            .map(|s| format!("{} {}", s.entities, s.kind))
            .collect();
        println!(
            "  libraries built in {:.1} s: {}",
            t.elapsed().as_secs_f64(),
            entities.join(", ")
        );
        let t = Instant::now();
        let mut held = 0;
        for sink in Sink::ALL.iter().filter(|s| s.department().is_some() && is_held(s)) {
            held += ingest(*sink, o.new_records).await?;
        }
        println!(
            "  held back: {} ({held} records), ingested in {:.1} s",
            o.held_back.join(", "),
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let pb = spinner("records");
        let mut libraries = Incremental::load(store, trust.clone(), &Bar(pb.clone())).await?;
        let loaded = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let io_before = super::bench::io_bytes();
        let report = libraries.run(store, &Bar(pb.clone())).await?;
        let io_after = super::bench::io_bytes();
        pb.finish_and_clear();
        let secs = t.elapsed().as_secs_f64();
        let l = &report.latencies;
        let indexed: Vec<String> = tongban_store::RESOLUTION_KINDS
            .iter()
            .map(|k| format!("{} {k}", report.indexed.get(*k).copied().unwrap_or(0)))
            .collect();
        println!("  index loaded in {loaded:.1} s: {}", indexed.join(", "));
        println!(
            "  {} new records resolved one at a time in {secs:.1} s ({:.0} records/s), {} relations added",
            report.records,
            report.records as f64 / secs.max(1e-9),
            report.relations
        );
        for kind in tongban_store::RESOLUTION_KINDS {
            let get = |m: &HashMap<String, u64>| m.get(*kind).copied().unwrap_or(0);
            println!(
                "    {kind:<8} {:>8} mentions, {:>7} new entities, {:>6} merged or re-keyed",
                get(&report.mentions),
                get(&report.new_entities),
                get(&report.renamed)
            );
        }
        for (name, v) in [("decided (in memory)", &l.decide), ("decided and stored", &l.total)] {
            println!(
                "  per record, {name:<20} p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.1} ms",
                quantile_ms(v, 0.5),
                quantile_ms(v, 0.9),
                quantile_ms(v, 0.99),
                quantile_ms(v, 1.0)
            );
        }
        // What the durable writes cost in I/O on SQLite: a record's few rows dirty whole pages,
        // each written to the WAL and, by the checkpoints that run meanwhile, to the database.
        // (On PostgreSQL these counters would be socket traffic, so they are not shown.)
        if let (Some((w0, r0)), Some((w1, r1)), true) =
            (io_before, io_after, database.starts_with("sqlite://"))
        {
            let per = |bytes: u64| bytes as f64 / 1024.0 / (report.records.max(1) as f64);
            println!(
                "  while resolving: {:.0} MiB written ({:.0} KiB a record), {:.0} MiB read ({:.0} KiB a record), by this process",
                w1.saturating_sub(w0) as f64 / 1048576.0,
                per(w1.saturating_sub(w0)),
                r1.saturating_sub(r0) as f64 / 1048576.0,
                per(r1.saturating_sub(r0))
            );
        }
        if let Some(b) = peak_rss_bytes() {
            println!("  peak memory {:.1} MiB (VmHWM, whole run)", b as f64 / 1048576.0);
        }
        if o.verify {
            let incremental = partitions(store).await?;
            drop(libraries);
            let t = Instant::now();
            let pb = spinner("records read");
            build_all(store, &trust, &LibraryConfig::default(), &Bar(pb.clone())).await?;
            pb.finish_and_clear();
            println!("  rebuilt from scratch in {:.1} s", t.elapsed().as_secs_f64());
            let full = partitions(store).await?;
            for kind in tongban_store::RESOLUTION_KINDS {
                let (a, b) = (&incremental[kind], &full[kind]);
                println!(
                    "  {kind:<8} {} clusters from scratch; {} only incremental, {} only from scratch",
                    b.len(),
                    a.difference(b).count(),
                    b.difference(a).count()
                );
            }
        }
        anyhow::Ok(())
    })?;
    println!("  database {}", super::store_args::redact(&database));
    Ok(())
}
