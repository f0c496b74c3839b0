//! `tongban show`: one base-library entity — its golden record with provenance, and every
//! record linked to it.

use super::store_args::{StoreArgs, closing, runtime};
use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    Person,
    Entity,
    Room,
    Building,
}

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban show person P60bc6d885412762a
  tongban show person --source police_household --record 3205760520002478702
  tongban show person P60bc6d885412762a --records     also print each linked record's cleaned fields
  tongban show person P60bc6d885412762a --json
  tongban show entity --source market_entities --record 91320576MA0000007M
  tongban show room --source housing_rooms --record 3205760520010000001010101")]
pub struct Args {
    pub kind: Kind,
    /// The entity key (as printed by resolve, eval or another show).
    pub key: Option<String>,
    /// Find the entity through one of its records instead: the source id…
    #[arg(long, requires = "record")]
    pub source: Option<String>,
    /// …and the record's key.
    #[arg(long)]
    pub record: Option<String>,
    /// The role the record gives the entity (default: subject).
    #[arg(long, default_value = "subject")]
    pub role: String,
    /// Print every linked record's cleaned fields too.
    #[arg(long)]
    pub records: bool,
    /// At most this many relations and linked records are printed (0: all); --json gives all.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// The golden record, relations and linked records as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let kind = match args.kind {
        Kind::Person => "person",
        Kind::Entity => "entity",
        Kind::Room => "room",
        Kind::Building => "building",
    };
    let rt = runtime()?;
    rt.block_on(async {
        let store = args.store.open_existing().await?;
        closing(store.as_ref(), async {
            let key = match (&args.key, &args.source, &args.record) {
                (Some(k), _, _) => k.clone(),
                (None, Some(s), Some(r)) => match store.entity_of(kind, s, r, &args.role).await? {
                    Some(k) => k,
                    None => anyhow::bail!("no {kind} is linked to {s} record {r} as {}; has `tongban resolve` run?", args.role),
                },
                _ => anyhow::bail!("give an entity key, or --source and --record"),
            };
            let Some(golden) = store.golden_record(kind, &key).await? else {
                anyhow::bail!("no {kind} {key} in the library; keys change only when the records behind them do, so run `tongban resolve` and look again");
            };
            // Each field with its provenance inline, however the record was stored.
            let inline = tongban_libraries::golden_text::spelled_out(&golden.record)
                .with_context(|| format!("{kind} {key}"))?;
            let golden: serde_json::Value =
                serde_json::from_str(inline.as_deref().unwrap_or(&golden.record))?;
            let links = store.links_of_entity(kind, &key).await?;
            let mut linked = Vec::new();
            for l in &links {
                let cleaned = if args.records || args.json {
                    store
                        .record_history(&l.source_id, &l.record_key)
                        .await?
                        .into_iter()
                        .rev()
                        .find(|v| v.status == tongban_store::RecordStatus::Current)
                        // Addresses are stored lean (codes only); people read them spelled out.
                        .map(|v| tongban_intake::clean::expand_cleaned(&v.cleaned))
                } else {
                    None
                };
                linked.push((l, cleaned));
            }
            let relations = store.relations_of(&key).await?;
            if args.json {
                let v = serde_json::json!({
                    "kind": kind,
                    "golden": golden,
                    "relations": relations,
                    "linked": linked.iter().map(|(l, c)| serde_json::json!({"source": l.source_id, "record_key": l.record_key, "role": l.role, "cleaned": c})).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{kind} {key}: {} linked mentions from {}",
                links.len(),
                golden["sources"].as_array().map(|a| a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()
            );
            println!(
                "  {:<20} {:<28} from (source, record, role, date; agreeing/other values)",
                "field", "value"
            );
            if let Some(k) = golden["address_key"].as_str() {
                println!("  address key          {k}");
                println!("  mentions by role     {}", golden["by_role"]);
            }
            if let Some(fields) = golden["fields"].as_object() {
                for (name, f) in fields {
                    let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
                    println!(
                        "  {:<20} {} {} {} {}{} ({}/{})",
                        name,
                        super::left(&s("value"), 28),
                        s("source"),
                        s("record_key"),
                        s("role"),
                        if s("date").is_empty() { String::new() } else { format!(" {}", s("date")) },
                        f["agreeing"],
                        f["disagreeing"]
                    );
                }
            }
            // A company's employees or a building's residents run to thousands: the table
            // shows the first few and says how many it left out.
            let shown = if args.limit == 0 { usize::MAX } else { args.limit };
            let more = |total: usize| {
                if total > shown {
                    println!("    … and {} more (--limit 0 shows all)", total - shown);
                }
            };
            if !relations.is_empty() {
                println!("  relations:");
                for r in relations.iter().take(shown) {
                    println!(
                        "    {} {} {}   ({} {})",
                        r.from_key, r.relation, r.to_key, r.source_id, r.record_key
                    );
                }
                more(relations.len());
            }
            println!("  linked records:");
            for (l, cleaned) in linked.iter().take(shown) {
                println!("    {:<22} {:<24} {}", l.source_id, l.record_key, l.role);
                if let Some(c) = cleaned {
                    println!("        {c}");
                }
            }
            more(linked.len());
            Ok(ExitCode::SUCCESS)
            })
        .await
})
}
