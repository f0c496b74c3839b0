//! `tongban explain`: why two person (or legal-entity) mentions are, or are not, one.

use super::store_args::{StoreArgs, closing, runtime};
use clap::Parser;
use std::process::ExitCode;
use tongban_libraries::explain::{MentionRef, explain_entities, explain_persons};

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban explain police_household:3205760520012555100 grid_collection:6d4b6acd3aa95c9b
  tongban explain health_births:O20140001255512:father civil_affairs:JH2013000125551
  tongban explain A B --json
  tongban explain --kind entity market_entities:91320576MA0000007M social_insurance:SI0001:employer

Each mention is SOURCE:RECORD_KEY[:ROLE] (role: subject, spouse, guardian, mother, father,
landlord, tenant, owner, legal_rep; default subject). Prints every field's comparison level and
the weight the latest `tongban resolve` learned for it, the prior, the match probability, any
deterministic rule that applies, and which persons the run put the two mentions in. With
--kind entity the mentions are legal entities (role: subject or employer).")]
pub struct Args {
    /// person or entity.
    #[arg(long, default_value = "person", value_parser = ["person", "entity"])]
    pub kind: String,
    /// The first mention: SOURCE:RECORD_KEY[:ROLE].
    pub a: MentionRef,
    /// The second mention, written the same way.
    pub b: MentionRef,
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
            let e = if args.kind == "entity" {
                explain_entities(store.as_ref(), &args.a, &args.b).await?
            } else {
                explain_persons(store.as_ref(), &args.a, &args.b).await?
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&e)?);
                return Ok(ExitCode::SUCCESS);
            }
            for f in &e.fields {
                println!(
                    "  {:<12} {} | {} {:<32} {:+.2}",
                    f.field,
                    super::right(&f.left, 24),
                    super::left(&f.right, 24),
                    f.level,
                    f.weight
                );
            }
            println!(
                "  total {:+.2}, prior {:+.2} → match probability {:.6} (term-frequency adjustment of names left out)",
                e.total, e.prior, e.probability
            );
            if !e.rule.is_empty() {
                println!("  rule: {}", e.rule);
            }
            let show = |p: &Option<String>| p.clone().unwrap_or_else(|| "not linked".into());
            let same = e.persons.0.is_some() && e.persons.0 == e.persons.1;
            println!(
                "  latest run: {} and {} ({})",
                show(&e.persons.0),
                show(&e.persons.1),
                match (same, args.kind.as_str()) {
                    (true, "entity") => "the same legal entity",
                    (false, "entity") => "different legal entities",
                    (true, _) => "the same person",
                    (false, _) => "different persons",
                }
            );
            Ok(ExitCode::SUCCESS)
            })
        .await
})
}
