//! `tongban demo`: the main job. On a realistic street (唯亭街道, about 270 thousand people) it
//! walks the whole path once: generate the departments' exports, ingest every one under its
//! mapping, resolve them into the base libraries, set up departments, users (one per role) and a
//! few grants, then serve the API and the console on 127.0.0.1:8080 and print a login per role.
//!
//! Every step leaves its result in the data directory, and a finished setup leaves a marker file:
//! a second start finds it and goes straight to serving. A start interrupted half-way simply
//! repeats the steps (ingest is idempotent, resolution replaces the libraries as a whole, the
//! identities are upserted and the grants made only once).
//!
//! This module only strings the commands together; each step is the same code the separate
//! commands (`synth`, `ingest`, `resolve`, `identity`, `grant`, `serve`) run.

use super::store_args::{StoreArgs, closing, runtime};
use anyhow::Context;
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tongban_sharing::identity::{Identities, Principal, Role};
use tongban_store::Store;
use tongban_synth::SynthConfig;

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban demo                                   set up the street (or reuse it) and serve it
  tongban demo --data-dir /var/lib/tongban --listen 127.0.0.1:9000
  tongban demo --fresh                           start again from a new street
  tongban demo --no-serve                        set up only (for scripts and tests)

Every demo user's password is the one printed at the end (tongban-demo unless --password is
given). The data are synthetic, made by Tongban's own generator.")]
pub struct Args {
    /// Where Tongban keeps its data: the street in DATA_DIR/synth, the store in
    /// DATA_DIR/tongban.db, the node's audit key beside it.
    #[arg(long, default_value = "tongban-data")]
    pub data_dir: PathBuf,
    /// Throw the data directory's street, store and key away and start again.
    #[arg(long)]
    pub fresh: bool,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = super::serve::listen_address)]
    pub listen: std::net::SocketAddr,
    /// Set up, then stop instead of serving.
    #[arg(long)]
    pub no_serve: bool,
    /// The demo users' console password.
    #[arg(long, default_value = DEMO_PASSWORD)]
    pub password: String,
    /// About how many people the street has (the default is the real street's size).
    #[arg(long)]
    pub people: Option<u64>,
}

/// The demo users' password unless another is given.
pub const DEMO_PASSWORD: &str = "tongban-demo";

/// The mapping of every synthetic export, built into the binary so that the demo runs from any
/// directory.
const MAPPINGS: &[(&str, &str)] = &[
    (
        "police_household",
        include_str!("../../mappings/synth/police_household.toml"),
    ),
    (
        "civil_affairs",
        include_str!("../../mappings/synth/civil_affairs.toml"),
    ),
    (
        "health_births",
        include_str!("../../mappings/synth/health_births.toml"),
    ),
    (
        "education_students",
        include_str!("../../mappings/synth/education_students.toml"),
    ),
    (
        "social_insurance",
        include_str!("../../mappings/synth/social_insurance.toml"),
    ),
    (
        "market_entities",
        include_str!("../../mappings/synth/market_entities.toml"),
    ),
    (
        "housing_buildings",
        include_str!("../../mappings/synth/housing_buildings.toml"),
    ),
    (
        "housing_rooms",
        include_str!("../../mappings/synth/housing_rooms.toml"),
    ),
    (
        "housing_rentals",
        include_str!("../../mappings/synth/housing_rentals.toml"),
    ),
    (
        "floating_population",
        include_str!("../../mappings/synth/floating_population.toml"),
    ),
    (
        "grid_collection",
        include_str!("../../mappings/synth/grid_collection.toml"),
    ),
];

/// The file that says the setup finished.
const READY: &str = "demo-ready.json";

/// The street the demo is about and its first community.
const STREET: &str = "320576052";
const COMMUNITY: &str = "320576052001";
const DISTRICT: &str = "320576";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let dir = &args.data_dir;
    let store_args = StoreArgs {
        database: format!("sqlite://{}", dir.join("tongban.db").display()),
    };
    if args.fresh {
        for f in [
            "synth",
            "tongban.db",
            "tongban.db-wal",
            "tongban.db-shm",
            "tongban.audit.db",
            "tongban.audit.db-wal",
            "tongban.audit.db-shm",
            READY,
        ] {
            let p = dir.join(f);
            if p.is_dir() {
                std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
            } else if p.exists() {
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    let ready = dir.join(READY);
    let reused = ready.exists();
    let logins = if reused {
        println!(
            "Reusing the demo in {} (use --fresh to start again).",
            dir.display()
        );
        if args.people.is_some() || args.password != DEMO_PASSWORD {
            println!(
                "  --people and --password apply when the demo is set up: the street and the users' passwords stay as they were (add --fresh to set up again with them)."
            );
        }
        let text = std::fs::read_to_string(&ready)?;
        serde_json::from_str::<Vec<Login>>(&text)
            .with_context(|| format!("reading {}", ready.display()))?
    } else {
        let logins = set_up(&args, &store_args)?;
        std::fs::write(&ready, serde_json::to_string_pretty(&logins)?)
            .with_context(|| format!("writing {}", ready.display()))?;
        logins
    };
    let secs = started.elapsed().as_secs_f64();
    if args.no_serve {
        println!(
            "\nReady in {secs:.1} s. `tongban demo` (or `tongban serve`) serves it; sign in as:"
        );
    } else {
        println!(
            "\nReady in {secs:.1} s. Open http://{}/ and sign in:",
            args.listen
        );
    }
    for l in &logins {
        // The user id first: CJK role names would throw a padded column out of line.
        println!("  {:<20} {} — {}", l.user, l.role, l.what);
    }
    let password = if reused {
        "the one given when the demo was set up (tongban-demo unless --password was given then)"
    } else {
        args.password.as_str()
    };
    if args.no_serve {
        println!("  password for each: {password}");
    } else {
        println!(
            "  password for each: {password}   ·   API docs: http://{}/api/docs",
            args.listen
        );
    }
    if args.no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    super::serve::run(super::serve::Args {
        listen: args.listen,
        intake_key: None,
        suspend_on_alert: false,
        store: store_args,
    })
}

/// One demo user as printed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Login {
    pub role: String,
    pub user: String,
    pub what: String,
}

fn set_up(args: &Args, store_args: &StoreArgs) -> anyhow::Result<Vec<Login>> {
    let dir = args.data_dir.join("synth");
    let step = |n: u32, what: &str| println!("\n[{n}/4] {what}");
    step(1, "Generating the street's department exports");
    if dir.join("manifest.json").exists() {
        println!("  reusing the street in {}", dir.display());
    } else {
        let mut config = SynthConfig::default();
        if let Some(p) = args.people {
            config.people = p;
        }
        let t = Instant::now();
        let summary = super::synth::generate(config, &dir)?;
        super::synth::print_summary(&summary, &dir);
        println!("  generated in {:.1} s", t.elapsed().as_secs_f64());
    }
    step(2, "Ingesting every export under its mapping");
    runtime()?.block_on(async {
        let store = store_args.open().await?;
        closing(store.as_ref(), async {
            for (stem, mapping) in MAPPINGS {
                let file = export_file(&dir, stem)?;
                let t = Instant::now();
                let r = super::ingest::ingest_with_bar(
                    store.as_ref(),
                    &store_args.database,
                    mapping,
                    &format!("mappings/synth/{stem}.toml"),
                    &file,
                    false,
                )
                .await?;
                let b = &r.batch;
                println!(
                    "  {stem:<20} {:>8} records: {:>8} new, {:>6} quarantined ({:.1} s)",
                    b.counts.records,
                    b.counts.inserted,
                    b.counts.quarantined,
                    t.elapsed().as_secs_f64()
                );
            }
            anyhow::Ok(())
        })
        .await
    })?;
    step(3, "Resolving them into the base libraries");
    super::resolve::run(super::resolve::Args {
        trust: None,
        json: false,
        config: None,
        incremental: false,
        store: store_args.clone(),
    })?;
    step(4, "Setting up departments, users and grants");
    runtime()?.block_on(async {
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(store_args.open().await?);
        closing(store.as_ref(), async {
            let logins = identities(store.clone(), &store_args.database, &args.password).await?;
            anyhow::Ok(logins)
        })
        .await
    })
}

/// The export of `stem` in the street's directory, whatever its extension.
fn export_file(dir: &Path, stem: &str) -> anyhow::Result<PathBuf> {
    ["csv", "jsonl", "json"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .find(|p| p.exists())
        .with_context(|| format!("no export {stem}.* in {}", dir.display()))
}

fn acting(user: &str, department: &str, role: Role, jurisdiction: &str) -> Principal {
    Principal {
        user_id: user.into(),
        name: user.into(),
        department: Some(department.into()),
        role,
        jurisdiction: jurisdiction.into(),
        token_id: "demo-setup".into(),
    }
}

/// Departments, one user per role, their passwords, and grants: one approved for civil affairs,
/// one waiting for the data bureau's decision. Returns the logins to print.
async fn identities(
    store: std::sync::Arc<dyn Store>,
    database: &str,
    password: &str,
) -> anyhow::Result<Vec<Login>> {
    let ids = Identities::new(store.clone());
    for (id, name) in [
        ("data_bureau", "园区大数据管理局"),
        ("police", "园区公安分局"),
        ("civil_affairs", "园区社会事业局（民政）"),
        ("government_services", "园区政务服务中心"),
        ("weiting_street", "唯亭街道办事处"),
    ] {
        ids.add_department(id, name, DISTRICT).await?;
    }
    // The citizen is a real person of the libraries: the first, in key order, who lives in the
    // street's first community. Their user id is their person key.
    let citizen = first_resident(store.as_ref()).await?;
    // (id, name, department, role, jurisdiction, what the login shows)
    type DemoUser<'a> = (&'a str, String, Option<&'a str>, Role, &'a str, String);
    let users: Vec<DemoUser> = vec![
        (
            "admin",
            "数据局管理员".into(),
            Some("data_bureau"),
            Role::DataBureauAdmin,
            DISTRICT,
            "data bureau admin: approvals, audit, alerts, quality".into(),
        ),
        (
            "minzheng01",
            "民政科员".into(),
            Some("civil_affairs"),
            Role::DepartmentOfficial,
            STREET,
            "civil affairs official, granted names and addresses".into(),
        ),
        (
            "window01",
            "窗口受理员".into(),
            Some("government_services"),
            Role::WindowClerk,
            STREET,
            "window clerk without grants: sees masked fields".into(),
        ),
        (
            "shequ01",
            "社区网格员".into(),
            Some("weiting_street"),
            Role::CommunityWorker,
            COMMUNITY,
            "community worker: one community's residents only".into(),
        ),
    ];
    let mut logins = Vec::new();
    for (id, name, department, role, jurisdiction, what) in users {
        ids.add_user(id, &name, department, role, jurisdiction)
            .await?;
        ids.set_password(id, password).await?;
        logins.push(Login {
            role: role.zh().to_string(),
            user: id.to_string(),
            what,
        });
    }
    if let Some((key, name, community)) = &citizen {
        ids.add_user(key, name, None, Role::Citizen, community)
            .await?;
        ids.set_password(key, password).await?;
        logins.push(Login {
            role: Role::Citizen.zh().to_string(),
            user: key.clone(),
            what: format!("citizen {name}: my records and who read them"),
        });
    }
    let catalogue = tongban_sharing::catalogue::catalogue(store.as_ref()).await?;
    if store.grants(None).await?.is_empty() {
        let official = acting(
            "minzheng01",
            "civil_affairs",
            Role::DepartmentOfficial,
            STREET,
        );
        let admin = acting("admin", "data_bureau", Role::DataBureauAdmin, DISTRICT);
        let approved = tongban_sharing::policy::request(
            store.as_ref(),
            &catalogue,
            &official,
            tongban_sharing::policy::Request {
                resource: "library.person".into(),
                // Social assistance weighs the whole household: who lives where, registered
                // where, with whom.
                fields: [
                    "name",
                    "sex",
                    "birth_date",
                    "residence",
                    "registered_address",
                    "household_no",
                    "household_status",
                    "family",
                ]
                .map(String::from)
                .to_vec(),
                purpose: "social_assistance.eligibility".into(),
                legal_basis: "《社会救助暂行办法》第十一条".into(),
                scope: STREET.into(),
                days: 365,
                daily_quota: 5_000,
            },
        )
        .await?;
        tongban_sharing::policy::decide_stored(
            store.as_ref(),
            &catalogue,
            &admin,
            &approved.id,
            true,
            "低保资格核查，范围限唯亭街道",
        )
        .await?;
        let clerk = acting("window01", "government_services", Role::WindowClerk, STREET);
        tongban_sharing::policy::request(
            store.as_ref(),
            &catalogue,
            &clerk,
            tongban_sharing::policy::Request {
                resource: "library.person".into(),
                fields: ["name", "phone"].map(String::from).to_vec(),
                purpose: "one_thing.newborn".into(),
                legal_basis: "《国务院关于加快推进政务服务“一网通办”的指导意见》".into(),
                scope: STREET.into(),
                days: 90,
                daily_quota: 500,
            },
        )
        .await?;
    }
    super::audit::record_admin(
        store.as_ref(),
        database,
        "identity.demo_setup",
        "demo",
        serde_json::json!({ "users": logins.iter().map(|l| &l.user).collect::<Vec<_>>() }),
    )
    .await?;
    println!(
        "  {} departments, {} users, {} grants",
        store.departments().await?.len(),
        store.users().await?.len(),
        store.grants(None).await?.len()
    );
    Ok(logins)
}

/// The first person, in key order, with a name and a phone, who lives in the street's first
/// community.
async fn first_resident(store: &dyn Store) -> anyhow::Result<Option<(String, String, String)>> {
    let mut after: Option<String> = None;
    loop {
        let page = store.golden_page("person", after.as_deref(), 500).await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        after = Some(last.entity_key.clone());
        for g in page {
            let record: serde_json::Value = serde_json::from_str(&g.record)?;
            let Some(name) = record["fields"]["name"]["value"].as_str() else {
                continue;
            };
            // A living person with a phone on record, so that the walk-through can show a
            // phone unmasked by a grant.
            if record["fields"]["deceased_on"]["value"].is_string()
                || !record["fields"]["phone"]["value"].is_string()
            {
                continue;
            }
            let community = tongban_libraries::population::community_of(store, &g.entity_key)
                .await?
                .unwrap_or_default();
            if community == COMMUNITY {
                return Ok(Some((g.entity_key, name.to_string(), community)));
            }
        }
    }
}
