//! `tongban population`: residents and floating population per community, from the libraries.

use super::store_args::{StoreArgs, closing, runtime};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tongban_libraries::population::{population, truth_by_community};

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban population
  tongban population --truth tongban-data/synth/truth     beside the generator's own figures
  tongban population --json

Counts every living person once, in the community where they live (by their residence records,
else the room they rent, else where they are registered): as a registered resident (户籍人口)
when a household-register entry places them in a room of the area, otherwise as floating
population (流动人口). Communities come from the building and room registers, which number
buildings within their community. Run `tongban resolve` first.")]
pub struct Args {
    /// A synthetic city's truth directory: print its figures beside the libraries'.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// As JSON, for scripts.
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
            if store.latest_resolution("person").await?.is_none() {
                anyhow::bail!("no library has been built yet: run `tongban resolve` first");
            }
            let p = population(store.as_ref()).await?;
            let truth = match &args.truth {
                Some(dir) => Some(truth_by_community(dir)?),
                None => None,
            };
            if args.json {
                let v = serde_json::json!({ "population": p, "truth": truth });
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let with_truth = truth.is_some();
            print!("{:<13} {:<20} {:>10} {:>10} {:>10}", "community", "name", "registered", "floating", "total");
            if with_truth {
                print!("   {:>10} {:>10}", "truth reg.", "truth flt.");
            }
            println!();
            let (mut error, mut total) = (0u64, 0u64);
            for c in &p.communities {
                print!(
                    "{:<13} {} {:>10} {:>10} {:>10}",
                    c.code,
                    super::left(&c.name, 20),
                    c.registered,
                    c.floating,
                    c.registered + c.floating
                );
                if let Some(t) = &truth {
                    let (r, f) = t.get(&c.code).copied().unwrap_or((0, 0));
                    print!("   {r:>10} {f:>10}");
                    error += c.registered.abs_diff(r) + c.floating.abs_diff(f);
                    total += r + f;
                }
                println!();
            }
            println!(
                "{:<13} {:<20} {:>10} {:>10} {:>10}",
                "all",
                "",
                p.registered(),
                p.floating(),
                p.registered() + p.floating()
            );
            println!(
                "{} deceased not counted; {} living persons placed in no known community",
                p.deceased, p.unplaced
            );
            if let Some(t) = &truth {
                let missing: u64 = t
                    .iter()
                    .filter(|(code, _)| !p.communities.iter().any(|c| &c.code == *code))
                    .map(|(_, (r, f))| r + f)
                    .sum();
                let (tr, tf): (u64, u64) = t.values().fold((0, 0), |a, (r, f)| (a.0 + r, a.1 + f));
                println!(
                    "truth: {tr} registered, {tf} floating; per-community absolute error {} ({:.2}% of the truth)",
                    error + missing,
                    100.0 * (error + missing) as f64 / (total + missing).max(1) as f64
                );
            }
            Ok(ExitCode::SUCCESS)
            })
        .await
})
}
