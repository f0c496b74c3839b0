//! `tongban synth`: generate a synthetic city and print what was written.
//!
//! Arguments and printing only; the generator is `tongban_synth::generate`.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tongban_synth::{Noise, Summary, SynthConfig, config};

#[derive(Parser, Debug, Clone)]
#[command(
    after_help = "Examples:\n  tongban synth --seed 1 --out data/synth\n  tongban synth --people 1000000 --out /tmp/city --grid-id-typo 0.05\n  tongban synth --out data/clean --floating-messy-address 0 --grid-homophone 0 --grid-id-typo 0 --grid-missing-id 0"
)]
pub struct Args {
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (created if missing; existing files are overwritten).
    #[arg(long, default_value = "data/synth")]
    pub out: PathBuf,
    /// About how many people (residents and floating together); up to 20,000,000.
    #[arg(long, default_value_t = config::DEFAULT_PEOPLE)]
    pub people: u64,
    /// The street (9-digit code); its communities must be in the shipped table (Suzhou).
    #[arg(long, default_value = config::DEFAULT_STREET)]
    pub street: String,
    /// Share of floating population among the people.
    #[arg(long, default_value_t = config::DEFAULT_FLOATING_SHARE)]
    pub floating_share: f64,
    #[command(flatten)]
    pub noise: NoiseArgs,
    /// Print the summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Noise rates, each the probability that one record carries the defect.
#[derive(Parser, Debug, Clone)]
pub struct NoiseArgs {
    /// Household register: share of pre-2000 births with an old 15-digit id.
    #[arg(long, default_value_t = Noise::default().police_id15)]
    pub police_id15: f64,
    /// Civil affairs: share of names written in traditional characters (names without a traditional form stay as they are).
    #[arg(long, default_value_t = Noise::default().civil_traditional)]
    pub civil_traditional: f64,
    /// Floating population: share of messy addresses.
    #[arg(long, default_value_t = Noise::default().floating_messy_address)]
    pub floating_messy_address: f64,
    /// Grid collection: share of names with a homophone typo (names without a known homophone stay as they are).
    #[arg(long, default_value_t = Noise::default().grid_homophone)]
    pub grid_homophone: f64,
    /// Grid collection: share of ids with a mistyped or swapped digit.
    #[arg(long, default_value_t = Noise::default().grid_id_typo)]
    pub grid_id_typo: f64,
    /// Grid collection: share of records without an id.
    #[arg(long, default_value_t = Noise::default().grid_missing_id)]
    pub grid_missing_id: f64,
    /// Grid collection: share of messy addresses.
    #[arg(long, default_value_t = Noise::default().grid_messy_address)]
    pub grid_messy_address: f64,
    /// Grid collection: share of living members a round reaches.
    #[arg(long, default_value_t = Noise::default().grid_coverage)]
    pub grid_coverage: f64,
    /// Floating and grid: share of addresses whose room cannot be told for certain (unit left out, compound suffix dropped).
    #[arg(long, default_value_t = Noise::default().hard_address)]
    pub hard_address: f64,
    /// Share of phone numbers in a non-canonical form.
    #[arg(long, default_value_t = Noise::default().phone_format)]
    pub phone_format: f64,
    /// Share of phone numbers left empty.
    #[arg(long, default_value_t = Noise::default().missing_phone)]
    pub missing_phone: f64,
    /// Birth certificates: share of newborns not yet named.
    #[arg(long, default_value_t = Noise::default().birth_unnamed)]
    pub birth_unnamed: f64,
    /// Birth certificates: share without the father.
    #[arg(long, default_value_t = Noise::default().birth_without_father)]
    pub birth_without_father: f64,
}

impl NoiseArgs {
    fn to_noise(&self) -> anyhow::Result<Noise> {
        let n = Noise {
            police_id15: self.police_id15,
            civil_traditional: self.civil_traditional,
            floating_messy_address: self.floating_messy_address,
            grid_homophone: self.grid_homophone,
            grid_id_typo: self.grid_id_typo,
            grid_missing_id: self.grid_missing_id,
            grid_messy_address: self.grid_messy_address,
            grid_coverage: self.grid_coverage,
            hard_address: self.hard_address,
            phone_format: self.phone_format,
            missing_phone: self.missing_phone,
            birth_unnamed: self.birth_unnamed,
            birth_without_father: self.birth_without_father,
        };
        for (flag, v) in [
            ("--police-id15", n.police_id15),
            ("--civil-traditional", n.civil_traditional),
            ("--floating-messy-address", n.floating_messy_address),
            ("--grid-homophone", n.grid_homophone),
            ("--grid-id-typo", n.grid_id_typo),
            ("--grid-missing-id", n.grid_missing_id),
            ("--grid-messy-address", n.grid_messy_address),
            ("--grid-coverage", n.grid_coverage),
            ("--hard-address", n.hard_address),
            ("--phone-format", n.phone_format),
            ("--missing-phone", n.missing_phone),
            ("--birth-unnamed", n.birth_unnamed),
            ("--birth-without-father", n.birth_without_father),
        ] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&v),
                "{flag} must be a rate between 0 and 1, got {v}"
            );
        }
        Ok(n)
    }
}

impl Args {
    pub fn config(&self) -> anyhow::Result<SynthConfig> {
        Ok(SynthConfig {
            seed: self.seed,
            street: self.street.clone(),
            people: self.people,
            floating_share: self.floating_share,
            noise: self.noise.to_noise()?,
            ..SynthConfig::default()
        })
    }
}

/// Generates with a progress bar.
pub fn generate(cfg: SynthConfig, out: &std::path::Path) -> anyhow::Result<Summary> {
    let pb = super::progress_bar(0, "generating");
    let summary = tongban_synth::generate(cfg, out, &|done, total| {
        pb.set_length(total);
        pb.set_position(done);
    })
    .with_context(|| format!("generating into {}", out.display()))?;
    pb.finish_and_clear();
    Ok(summary)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = args.config()?;
    let summary = generate(cfg, &args.out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary, &args.out);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_summary(s: &Summary, out: &std::path::Path) {
    println!(
        "{} (seed {}): {} households, {} people ({} residents, {} floating, {} deceased), {} legal entities",
        s.street, s.seed, s.households, s.people, s.residents, s.floating, s.deceased, s.entities
    );
    println!("\nFiles in {}:", out.display());
    println!("  {:<28} {:>10}  department", "file", "rows");
    for sink in tongban_synth::exports::Sink::ALL {
        let rows = s.files.get(sink.path()).copied().unwrap_or(0);
        println!(
            "  {:<28} {:>10}  {}",
            sink.path(),
            rows,
            sink.department().unwrap_or("ground truth")
        );
    }
    println!("\nCommunities:");
    println!(
        "  {:<14} {:<18} {:>10} {:>10} {:>10}",
        "code", "name", "households", "residents", "floating"
    );
    for c in &s.communities {
        println!(
            "  {:<14} {} {:>10} {:>10} {:>10}",
            c.code,
            pad(&c.name, 18),
            c.households,
            c.residents,
            c.floating
        );
    }
    println!("\nNoise applied:");
    for (k, v) in &s.noise {
        println!("  {k:<16} {v:>10}");
    }
    if s.id_collisions_resolved > 0 {
        println!(
            "  ({} id collisions resolved by the next free sequence number)",
            s.id_collisions_resolved
        );
    }
}

/// Pads to a terminal width, counting CJK characters as two columns as terminals draw them.
fn pad(s: &str, width: usize) -> String {
    let w: usize = s
        .chars()
        .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
        .sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}
