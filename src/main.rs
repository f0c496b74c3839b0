//! `tongban`: the one binary a city's data bureau runs.
//!
//! This file only parses the command line and hands each subcommand to its module under
//! `commands/`. The work itself lives in the library crates (`crates/standards`, `crates/synth`,
//! and those that follow), which know nothing of the terminal.

mod commands;

// Ingest and generation allocate many short strings on several threads; mimalloc's thread-local
// free lists handle that pattern markedly better than the system allocator (measured with
// `tongban bench ingest`; see the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Asks the allocator to hand memory freed by the program back to the system within `ms`
/// milliseconds rather than mimalloc 3's default of a second.
///
/// A batch command that frees a large table stage by stage and then builds the next one would
/// otherwise hold both for a moment: the freed one still resident, the new one on fresh pages.
/// `tongban link` on a million records peaked at 605–665 MiB with the default and 555–573 MiB
/// with 10 ms (mimalloc 2's default), in the same time; since session 32 it asks for 0 (at once),
/// which made its peak the same from run to run. A server keeps the default, under which
/// freed memory is reused without going back and forth to the system.
///
/// `mi_option_set` is declared here because the binding crate exposes it only behind a feature
/// whose dependency is not available offline; it is the allocator's own C function, linked in
/// with it. `PURGE_DELAY` is `mi_option_purge_delay`'s place in `mi_option_t` (15 in both the
/// mimalloc 2 and 3 headers vendored by libmimalloc-sys 0.1.49). Should a later version move
/// it, the option found there would not hold mimalloc 3's default of 1,000 (no other option
/// does), and nothing is set. Nor is anything set when the operator chose a delay through
/// `MIMALLOC_PURGE_DELAY`.
pub(crate) fn return_freed_memory_within(ms: u16) {
    use std::ffi::{c_int, c_long};
    const PURGE_DELAY: c_int = 15;
    const MIMALLOC_3_DEFAULT: c_long = 1_000;
    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
        fn mi_option_set(option: c_int, value: c_long);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: both functions only read or store one option's `long`; any option number below
    // the enum's end is valid (15 is, in every mimalloc 2 and 3). Called first in a command,
    // before it starts any thread of its own, so no other thread of ours reads the option
    // while it is stored.
    unsafe {
        if mi_option_get(PURGE_DELAY) == MIMALLOC_3_DEFAULT {
            mi_option_set(PURGE_DELAY, c_long::from(ms));
        }
    }
}

/// Asks the kernel not to back this process's memory with transparent huge pages from now on.
///
/// mimalloc marks its arenas for huge pages, and a batch command that frees memory stage by
/// stage (handing it back within milliseconds, see [`return_freed_memory_within`]) then has the
/// kernel clear two whole megabytes on the next touch of any freed piece: at a million records
/// `tongban link` gave back 1.4 GB over a run and the kernel's page clearing took a tenth to a
/// seventh of its samples. With small pages it clears only what is touched: the same run
/// peaked at 512–515 MiB instead of 552–557 and read its input in 0.8 s instead of 1.3.
/// Linux only (`PR_SET_THP_DISABLE`); elsewhere, and if the kernel refuses, nothing changes.
pub(crate) fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::{c_int, c_ulong};
        const PR_SET_THP_DISABLE: c_int = 41;
        unsafe extern "C" {
            fn prctl(option: c_int, ...) -> c_int;
        }
        // SAFETY: PR_SET_THP_DISABLE takes one integer argument and only sets a flag on this
        // process's memory map; the others must be zero. A failure (an old kernel) is harmless.
        unsafe {
            prctl(
                PR_SET_THP_DISABLE,
                1 as c_ulong,
                0 as c_ulong,
                0 as c_ulong,
                0 as c_ulong,
            );
        }
    }
}

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tongban",
    version,
    about = "Tongban (通办): connect department data silos, clean and link their records into shared base libraries, and share them under rules",
    after_help = "Examples:\n  tongban demo                                  generate the default street (唯亭街道) and print its summary\n  tongban synth --seed 1 --out data/synth       write eleven department exports and the ground truth\n  tongban check id 11010519491231002X           validate and explain a citizen id\n  tongban check address '园区唯亭青剑湖花园12-3-1001'\n  tongban ingest --source mappings/synth/grid_collection.toml data/synth/grid_collection.jsonl\n  tongban quality --source grid_collection\n  tongban resolve                               build the person, entity, room and building libraries\n  tongban eval --truth data/synth/truth         score them against the synthetic truth\n  tongban population                            residents and floating population per community\n  tongban audit verify                          check the audit chain and its signed checkpoints\n  tongban identity token issue clerk01          an API token for a user (shown once)\n  tongban grant request --as clerk01 --resource library.person --fields phone ...\n  tongban serve                                 the governed API and the intake endpoint on 127.0.0.1:8080\n  tongban show person --source police_household --record 3205760520012555100\n  tongban link --config examples/febrl/febrl.toml --input a.csv --output clusters.csv\n  tongban divisions 唯亭                         look a division up by name, abbreviation or code\n  tongban bench synth --people 1000000          measure generation speed and peak memory"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: a synthetic street generated, ingested, resolved and shared, then served (console and API).
    Demo(commands::demo::Args),
    /// Generate a synthetic city: department exports plus the ground truth behind them.
    Synth(commands::synth::Args),
    /// Validate, clean and explain one value against the national standards.
    Check(commands::check::Args),
    /// Look up administrative divisions by code, name or abbreviation.
    Divisions(commands::divisions::Args),
    /// Ingest one department file, declared by its mapping, into the store.
    Ingest(commands::ingest::Args),
    /// Inspect quarantined records and re-admit them after fixing the mapping.
    Quarantine(commands::quarantine::Args),
    /// Clean stored records again with today's rules or a fixed mapping; keep changes as versions.
    Reclean(commands::reclean::Args),
    /// The data-quality scorecard per source and field.
    Quality(commands::quality::Args),
    /// Register and list sources (for department systems that push instead of sending files).
    Source(commands::source::Args),
    /// Run the HTTP server on 127.0.0.1: the governed query API, the web console and the intake push endpoint.
    Serve(commands::serve::Args),
    /// Build the base libraries (people, legal entities, rooms, buildings) from every stored record.
    Resolve(commands::resolve::Args),
    /// Residents and floating population per community, from the base libraries.
    Population(commands::population::Args),
    /// The tamper-evident audit log: verify it, export it, record an event.
    Audit(commands::audit::Args),
    /// Departments, users (role and jurisdiction) and their API tokens.
    Identity(commands::identity::Args),
    /// The shareable resources, each field's sharing class, and who provides them.
    Catalogue(commands::catalogue::Args),
    /// Data requests and grants: request, approve, reject, revoke.
    Grant(commands::grant::Args),
    /// Sharing statistics and anomaly alerts, from the audit log.
    Watch(commands::watch::Args),
    /// Explain why two person mentions are, or are not, one person (each field's level and weight).
    Explain(commands::explain::Args),
    /// Show one base-library entity: its golden record with provenance and every linked record.
    Show(commands::show::Args),
    /// Score the base libraries against a synthetic city's truth.
    Eval(commands::eval::Args),
    /// Deduplicate one CSV file of person-like records, or link two (Fellegi–Sunter).
    Link(commands::link::Args),
    /// Measure speed and memory (benchmarks, never timed tests).
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A command that prints ends quietly when its reader goes away; the server must not, since
    // a client closing its connection early would then kill it.
    #[cfg(unix)]
    if !matches!(cli.command, Command::Serve(_)) {
        restore_default_sigpipe();
    }
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Synth(a) => commands::synth::run(a),
        Command::Check(a) => commands::check::run(a),
        Command::Divisions(a) => commands::divisions::run(a),
        Command::Ingest(a) => commands::ingest::run(a),
        Command::Quarantine(a) => commands::quarantine::run(a),
        Command::Reclean(a) => commands::reclean::run(a),
        Command::Quality(a) => commands::quality::run(a),
        Command::Source(a) => commands::source::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Link(a) => commands::link::run(a),
        Command::Resolve(a) => commands::resolve::run(a),
        Command::Population(a) => commands::population::run(a),
        Command::Audit(a) => commands::audit::run(a),
        Command::Identity(a) => commands::identity::run(a),
        Command::Catalogue(a) => commands::catalogue::run(a),
        Command::Grant(a) => commands::grant::run(a),
        Command::Watch(a) => commands::watch::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Show(a) => commands::show::run(a),
        Command::Explain(a) => commands::explain::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Gives SIGPIPE back its default action, which the Rust runtime sets to "ignore" before `main`.
///
/// While it is ignored, a write to a pipe whose reader has gone (`tongban demo | head -3`) fails,
/// and `println!` turns that failure into a panic ("failed printing to stdout: Broken pipe").
/// With the default action the process ends quietly the moment its reader goes away, as `cat`,
/// `grep` and every other Unix filter do (the shell sees status 141, and `head`'s status is the
/// pipeline's). Every subcommand today is a one-shot command printing to a terminal or a pipe; a
/// long-running server subcommand must not do this, since it writes to sockets whose peers leave.
///
/// `signal` is declared here rather than taken from the libc crate so that the binary needs no
/// extra dependency; its signature and the two constants are the same on every Unix Rust
/// supports.
#[cfg(unix)]
fn restore_default_sigpipe() {
    use std::ffi::c_int;
    const SIGPIPE: c_int = 13;
    const SIG_DFL: usize = 0;
    unsafe extern "C" {
        fn signal(signum: c_int, handler: usize) -> usize;
    }
    // SAFETY: `signal` with SIG_DFL installs no handler of ours, so nothing can run in signal
    // context; it is called first in `main`, before any thread of ours exists.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}
