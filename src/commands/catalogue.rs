//! `tongban catalogue`: the shareable resources, their fields' sharing classes and who provides
//! them.

use super::store_args::{StoreArgs, closing, runtime};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tongban_sharing::catalogue::{catalogue, ckan};

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban catalogue list                          every resource: provider, update frequency, last update
  tongban catalogue show library.person           its fields, each open / conditional / closed
  tongban catalogue show dataset.police_household --ckan     as a CKAN dataset record
  tongban catalogue list --json

Resources are the base-library views (library.person, library.entity, library.room,
library.building) and every registered source (dataset.<source id>). Each field is open (shared
without asking), conditional (under an approved grant) or closed (never shared).")]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Every resource: the responsibility list.
    List {
        /// As JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// One resource and its fields.
    Show {
        /// The resource's id, as `catalogue list` shows it (library.person, say).
        id: String,
        /// As JSON, for scripts.
        #[arg(long)]
        json: bool,
        /// As a CKAN dataset record.
        #[arg(long)]
        ckan: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let store = args.store.open().await?;
        closing(store.as_ref(), async {
            let all = catalogue(store.as_ref()).await?;
            match args.what {
                What::List { json } => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&all)?);
                    } else {
                        println!(
                            "{:<32} {:<22} {:<12} {:>6} last update (China time)",
                            "resource", "provider", "updated", "shared"
                        );
                        for r in &all {
                            let last = r.last_update.map_or("never".to_string(), |t| {
                                tongban_standards::date::china_minute(t)
                            });
                            println!(
                                "{:<32} {} {:<12} {:>5.0}% {last}",
                                r.id,
                                super::left(&r.provider, 22),
                                r.update_frequency,
                                100.0 * r.shared_share()
                            );
                        }
                    }
                }
                What::Show {
                    id,
                    json,
                    ckan: as_ckan,
                } => {
                    let Some(r) = all.iter().find(|r| r.id == id) else {
                        let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
                        anyhow::bail!("no resource {id:?}; the resources are {}", ids.join(", "));
                    };
                    if as_ckan {
                        println!("{}", serde_json::to_string_pretty(&ckan(r))?);
                    } else if json {
                        println!("{}", serde_json::to_string_pretty(r)?);
                    } else {
                        println!(
                            "{} — {} (provider {}, {})",
                            r.id, r.title, r.provider, r.update_frequency
                        );
                        for f in &r.fields {
                            println!(
                                "  {:<28} {:<12} {} {:?}",
                                f.name,
                                format!("{:?}", f.class).to_lowercase(),
                                super::left(f.class.zh(), 10),
                                f.sensitivity
                            );
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        })
        .await
    })
}
