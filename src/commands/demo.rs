//! `tongban demo`: the main job. For now it generates the default street into the data directory
//! (or reuses it) and prints its summary; later issues add ingest, resolution and the server.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tongban_synth::SynthConfig;

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban demo\n  tongban demo --data-dir /var/lib/tongban --fresh"
)]
pub struct Args {
    /// Where Tongban keeps its data; the synthetic street goes to DATA_DIR/synth.
    #[arg(long, default_value = "tongban-data")]
    pub data_dir: PathBuf,
    /// Regenerate even if the data directory already holds a street.
    #[arg(long)]
    pub fresh: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = args.data_dir.join("synth");
    let manifest = dir.join("manifest.json");
    if manifest.exists() && !args.fresh {
        let text = std::fs::read_to_string(&manifest)?;
        let value: serde_json::Value = serde_json::from_str(&text)?;
        let summary: tongban_synth::Summary = serde_json::from_value(value["summary"].clone())?;
        println!(
            "Reusing the street in {} (use --fresh to regenerate).\n",
            dir.display()
        );
        super::synth::print_summary(&summary, &dir);
    } else {
        let started = std::time::Instant::now();
        let summary = super::synth::generate(SynthConfig::default(), &dir)?;
        super::synth::print_summary(&summary, &dir);
        println!("\nGenerated in {:.1} s.", started.elapsed().as_secs_f64());
    }
    println!(
        "\nNext steps (later issues): ingest these exports, resolve them into the base libraries, serve the console."
    );
    Ok(ExitCode::SUCCESS)
}
