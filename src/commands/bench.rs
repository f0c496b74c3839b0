//! `tongban bench`: measured speed and memory, reported rather than asserted.
//!
//! Peak memory is the process's high-water mark of resident memory (VmHWM in /proc/self/status),
//! so a benchmark run should be the only work of its process.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Instant;
use tongban_synth::SynthConfig;

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban bench synth --people 1000000\n  tongban bench synth --people 10000000 --out /tmp/city10m\n  tongban bench link --records 1000000\n  tongban bench link --records 1000000 --data /tmp/febrl-1m.csv   (keep the records, e.g. for another tool)\n  tongban bench incremental --people 1000000 --data /tmp/city1m --verify\n  tongban bench api --persons 20000 --connections 32 --seconds 10\n  tongban bench api --seconds 30 --rounds 15   (more, shorter rounds)\n  tongban bench api --wrk          (the load from wrk in a separate process)"
)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Generate a synthetic city and report people per second and peak memory.
    Synth {
        #[arg(long, default_value_t = 1_000_000)]
        people: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write (a temporary directory, removed afterwards, if not given).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Ingest the household-register export: plain CSV parsing, then read → clean → store, in
    /// one run, with records per second, the ratio between the two and peak memory; then the
    /// same file again (every record unchanged, as in a quiet day's snapshot), with the bytes
    /// each load wrote.
    Ingest {
        /// People in the synthetic street whose household register is ingested (about 0.37
        /// register rows a person).
        #[arg(long, default_value_t = 2_000_000)]
        people: u64,
        /// An existing export to ingest instead of generating one.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The store (default: a fresh SQLite file in a temporary directory). A PostgreSQL URL
        /// should name an empty database.
        #[arg(long)]
        database: Option<String>,
    },
    /// Deduplicate FEBRL-style person records with `tongban link`: writes the records (or takes
    /// an existing file), then links them and reports time, peak memory and F1.
    Link {
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The linking configuration.
        #[arg(long, default_value = "examples/febrl/febrl.toml")]
        config: std::path::PathBuf,
        /// Keep the generated records in this file (by default they go to a temporary one).
        #[arg(long)]
        data: Option<std::path::PathBuf>,
        /// Link this existing file instead of generating one.
        #[arg(long)]
        input: Option<std::path::PathBuf>,
    },
    /// Build the libraries from every export but the held-back ones, ingest those, resolve
    /// their records one at a time, and report the latency per record; with --verify, then
    /// rebuild from scratch and compare the clusters.
    Incremental {
        #[arg(long, default_value_t = 300_000)]
        people: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Exports (source ids) held back from the first run and resolved incrementally.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "floating_population,housing_rentals"
        )]
        held_back: Vec<String>,
        /// Keep the synthetic exports here (reused when they are already there).
        #[arg(long)]
        data: Option<std::path::PathBuf>,
        /// The store (default: a fresh SQLite file in a temporary directory). A PostgreSQL URL
        /// should name an empty database.
        #[arg(long)]
        database: Option<String>,
        /// Where the mapping files are.
        #[arg(long, default_value = "mappings/synth")]
        mappings: std::path::PathBuf,
        /// Afterwards, rebuild the libraries from scratch and compare the clusters.
        #[arg(long)]
        verify: bool,
        /// Take only the first N records of each held-back export (all by default).
        #[arg(long)]
        new_records: Option<usize>,
    },
    /// Governed single-person lookups over HTTP with the audit log on, against a bare axum
    /// handler in the same run: requests per second and latency.
    Api {
        #[arg(long, default_value_t = 20_000)]
        persons: usize,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds of measured load on each server, in all rounds together.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Rounds the measured seconds are cut into, each loading the bare handler and then the
        /// governed server, so that both see the same moments of a machine whose speed drifts.
        #[arg(long, default_value_t = 5)]
        rounds: u64,
        /// The store (default: a fresh SQLite file in a temporary directory).
        #[arg(long)]
        database: Option<String>,
        /// Load with wrk (Debian's package) from a separate process instead of this process's
        /// own client.
        #[arg(long)]
        wrk: bool,
    },
}

/// The peak resident memory of this process in bytes, where the platform tells it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes this process has passed to write calls and read calls so far (`wchar` and `rchar` of
/// /proc/self/io: files, the WAL and the database included, whether or not they reached the
/// disk yet); `None` where /proc is not there.
pub fn io_bytes() -> Option<(u64, u64)> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| -> Option<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("wchar:")?, field("rchar:")?))
}

/// CPU seconds this process has used so far, user and system (`utime` and `stime` of
/// /proc/self/stat, in the kernel's clock ticks of 1/100 s); `None` where /proc is not there.
/// Wall time alone hides how much of two cores a stage takes: the ingest target is a CPU
/// budget per record (300 k records/s on two cores is 6.7 µs of CPU a record).
pub fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name in parentheses may hold spaces; the fields counted from after it.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| -> Option<f64> { Some(fields.get(i)?.parse::<f64>().ok()? / 100.0) };
    Some((ticks(11)?, ticks(12)?))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Ingest {
            people,
            file,
            database,
        } => bench_ingest(people, file, database)?,
        What::Link {
            records,
            seed,
            config,
            data,
            input,
        } => return bench_link(records, seed, config, data, input),
        What::Incremental {
            people,
            seed,
            held_back,
            data,
            database,
            mappings,
            verify,
            new_records,
        } => super::bench_incremental::run(super::bench_incremental::Options {
            people,
            seed,
            held_back,
            data,
            database,
            mappings,
            verify,
            new_records,
        })?,
        What::Api {
            persons,
            connections,
            seconds,
            rounds,
            database,
            wrk,
        } => super::bench_api::run(super::bench_api::Options {
            persons,
            connections,
            seconds,
            rounds,
            database,
            wrk,
        })?,
        What::Synth { people, seed, out } => {
            // Without --out the files go to a temporary directory that is removed afterwards;
            // a directory the user named is never removed.
            let (dir, scratch) = match out {
                Some(d) => (d, None),
                None => {
                    let t = tempfile::tempdir()?;
                    (t.path().to_path_buf(), Some(t))
                }
            };
            let cfg = SynthConfig {
                seed,
                people,
                ..SynthConfig::default()
            };
            let started = Instant::now();
            let summary = super::synth::generate(cfg, &dir)?;
            let secs = started.elapsed().as_secs_f64();
            let bytes: u64 = walk_size(&dir);
            let rows: u64 = summary.files.values().sum();
            println!(
                "bench synth: {} people, {} households, {} entities",
                summary.people, summary.households, summary.entities
            );
            println!("  wall time      {secs:.2} s");
            println!("  people/s       {:.0}", summary.people as f64 / secs);
            println!(
                "  rows written   {rows} ({:.0} rows/s), {:.1} MiB",
                rows as f64 / secs,
                bytes as f64 / 1048576.0
            );
            match peak_rss_bytes() {
                Some(b) => println!("  peak memory    {:.1} MiB (VmHWM)", b as f64 / 1048576.0),
                None => println!("  peak memory    not available on this platform"),
            }
            println!("  threads        {}", rayon_threads());
            println!(
                "  id collisions  {} resolved",
                summary.id_collisions_resolved
            );
            drop(scratch);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_link(
    records: usize,
    seed: u64,
    config: std::path::PathBuf,
    data: Option<std::path::PathBuf>,
    input: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::tempdir()?;
    let input = match input {
        Some(i) => i,
        None => {
            let path = data.unwrap_or_else(|| scratch.path().join("febrl-style.csv"));
            let started = Instant::now();
            let file = std::fs::File::create(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            tongban_synth::febrl::write(seed, records, &mut w)?;
            std::io::Write::flush(&mut w)?;
            println!(
                "bench link: wrote {records} FEBRL-style records to {} in {:.1} s",
                path.display(),
                started.elapsed().as_secs_f64()
            );
            path
        }
    };
    super::link::run(super::link::Args {
        config,
        input: vec![input],
        output: scratch.path().join("clusters.csv"),
        pairs: None,
        pairs_min_probability: 1.0,
        explain: Vec::new(),
        json: false,
    })
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The CPU used between two readings of [`cpu_seconds`].
fn cpu_span(before: Option<(f64, f64)>, after: Option<(f64, f64)>) -> Option<(f64, f64)> {
    let ((u0, s0), (u1, s1)) = before.zip(after)?;
    Some((u1 - u0, s1 - s0))
}

fn walk_size(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => walk_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn bench_ingest(
    people: u64,
    file: Option<std::path::PathBuf>,
    database: Option<String>,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    use tongban_intake::mapping::Mapping;
    let scratch = tempfile::tempdir()?;
    let file = match file {
        Some(f) => f,
        None => {
            let dir = scratch.path().join("synth");
            let cfg = SynthConfig {
                people,
                ..SynthConfig::default()
            };
            super::synth::generate(cfg, &dir)?;
            dir.join("police_household.csv")
        }
    };
    let mapping_text = include_str!("../../mappings/synth/police_household.toml");
    let mapping = Arc::new(Mapping::parse(
        mapping_text,
        "mappings/synth/police_household.toml",
    )?);
    let size = std::fs::metadata(&file)?.len();
    let rss_before = peak_rss_bytes();

    // Plain CSV parsing of the same file: the floor any ingest pays.
    let cpu_parse = cpu_seconds();
    let started = Instant::now();
    let mut rdr = csv::Reader::from_path(&file)?;
    let mut rec = csv::StringRecord::new();
    let mut rows = 0u64;
    while rdr.read_record(&mut rec)? {
        rows += 1;
    }
    let parse = started.elapsed().as_secs_f64();
    let cpu_clean = cpu_seconds();

    // Reading and cleaning without storing: what the store adds is the rest.
    let started = Instant::now();
    let mut cleaned = 0u64;
    let mut chunk = Vec::with_capacity(tongban_intake::pipeline::CHUNK);
    let mut flush = |chunk: &mut Vec<tongban_intake::reader::Item>| {
        let items = std::mem::take(chunk);
        cleaned += tongban_intake::pipeline::prepare_chunk(&mapping, items)
            .0
            .len() as u64;
    };
    tongban_intake::reader::read_file::<std::convert::Infallible>(&file, &mapping, &mut |item| {
        chunk.push(item);
        if chunk.len() >= tongban_intake::pipeline::CHUNK {
            flush(&mut chunk);
        }
        Ok(())
    })?;
    flush(&mut chunk);
    let clean = started.elapsed().as_secs_f64();
    let cpu_after_clean = cpu_seconds();

    let database = database
        .unwrap_or_else(|| format!("sqlite://{}", scratch.path().join("bench.db").display()));
    let store_args = super::store_args::StoreArgs {
        database: database.clone(),
    };
    let rt = super::store_args::runtime()?;
    // The same file twice, each as `tongban ingest` runs it (the store opened, the file stored,
    // the store closed): a first load, then what a department's next daily snapshot costs when
    // nothing in it changed. Seconds until stored, and bytes written until closed (this
    // process's write calls: the SQLite files and their logs, the logs' copy into the files
    // included; on PostgreSQL only what went to the server).
    let mut runs = Vec::new();
    for _ in 0..2 {
        let wrote = io_bytes().map(|(w, _)| w);
        let cpu_before = cpu_seconds();
        // Opening (and on a new store, migrating) counts, as it did before session 20.
        let started = Instant::now();
        let (report, secs) = rt.block_on(async {
            let store = store_args.open().await?;
            let work = async {
                let r = tongban_intake::pipeline::ingest_file(
                    store.as_ref(),
                    mapping.clone(),
                    mapping_text,
                    &file,
                    Arc::new(std::sync::atomic::AtomicU64::new(0)),
                    false,
                )
                .await?;
                anyhow::Ok((r, started.elapsed().as_secs_f64()))
            };
            super::store_args::closing(store.as_ref(), work).await
        })?;
        let written = wrote.zip(io_bytes()).map(|(w, (now, _))| now - w);
        let cpu = cpu_span(cpu_before, cpu_seconds());
        runs.push((report, secs, written, cpu));
    }
    let (again, again_secs, again_written, again_cpu) = runs.pop().context("two runs")?;
    let (report, ingest, written, ingest_cpu) = runs.pop().context("two runs")?;
    let n = report.batch.counts.records;
    println!(
        "bench ingest: {} ({:.1} MiB, {rows} rows) into {}",
        file.display(),
        size as f64 / 1048576.0,
        super::store_args::redact(&database)
    );
    println!(
        "  plain CSV parse   {parse:.2} s  {:>10.0} rows/s",
        rows as f64 / parse
    );
    println!(
        "  read+clean        {clean:.2} s  {:>10.0} records/s  (no store)",
        cleaned as f64 / clean
    );
    println!(
        "  read+clean+store  {ingest:.2} s  {:>10.0} records/s  ({n} stored, {} quarantined)",
        n as f64 / ingest,
        report.batch.counts.quarantined
    );
    println!("  ingest / parse    {:.1}×", ingest / parse);
    // CPU per record, user + system, of the process (on PostgreSQL the server's is not counted).
    let per_record = |span: Option<(f64, f64)>, n: u64| {
        span.map_or("?".to_string(), |(u, s)| {
            format!(
                "{:.2} µs a record ({:.2} user + {:.2} system s)",
                (u + s) * 1e6 / n.max(1) as f64,
                u,
                s
            )
        })
    };
    println!(
        "  CPU               parse {}; read+clean {}; read+clean+store {}; same file again {}",
        per_record(cpu_span(cpu_parse, cpu_clean), rows),
        per_record(cpu_span(cpu_clean, cpu_after_clean), cleaned),
        per_record(ingest_cpu, n as u64),
        per_record(again_cpu, again.batch.counts.records as u64)
    );
    let mib =
        |b: Option<u64>| b.map_or("?".to_string(), |b| format!("{:.1}", b as f64 / 1048576.0));
    if database.starts_with("sqlite:") {
        println!(
            "  written           {} MiB by the first load; {} MiB by the same file again",
            mib(written),
            mib(again_written)
        );
    } else {
        println!(
            "  written           not counted here: the database server writes, not this process"
        );
    }
    println!(
        "  same file again   {again_secs:.2} s  {:>10.0} records/s  ({} unchanged, {} withdrawn)",
        again.batch.counts.records as f64 / again_secs,
        again.batch.counts.unchanged,
        again.batch.withdrawn
    );
    if let (Some(before), Some(after)) = (rss_before, peak_rss_bytes()) {
        println!(
            "  peak memory       {:.1} MiB (VmHWM; {:.1} MiB before ingesting)",
            after as f64 / 1048576.0,
            before as f64 / 1048576.0
        );
    }
    Ok(())
}
