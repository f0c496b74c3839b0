//! `tongban source`: register and list sources without ingesting a file (for systems that push).

use super::store_args::{StoreArgs, closing, runtime};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tongban_intake::mapping::Mapping;

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban source add mappings/synth/grid_collection.toml\n  tongban source list"
)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Register (or update) a source from its mapping file.
    Add {
        /// The source's mapping file (TOML), as `ingest --source` takes it.
        mapping: PathBuf,
    },
    /// List registered sources with their batches.
    List,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.store.open().await?;
        closing(store.as_ref(), async {
            match args.what {
                What::Add { mapping } => {
                    let text = std::fs::read_to_string(&mapping).with_context(|| format!("reading {}", mapping.display()))?;
                    let m = Mapping::parse(&text, &mapping.display().to_string())?;
                    store.put_source(&tongban_intake::pipeline::source_row(&m, &text)).await?;
                    println!("registered source {} ({} {})", m.source.id, m.source.department, m.source.name);
                }
                What::List => {
                    let sources = store.sources().await?;
                    if sources.is_empty() {
                        println!("no sources registered (tongban ingest or tongban source add registers one)");
                    }
                    for s in sources {
                        let batches = store.batches(Some(&s.id)).await?;
                        let (current, superseded, withdrawn) = store.record_counts(&s.id).await?;
                        println!(
                            "{:<22} {} {:>8} current {:>6} old versions {:>6} withdrawn {:>4} batches",
                            s.id, super::left(&s.department, 14), current, superseded, withdrawn, batches.len()
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
            })
        .await
})
}
