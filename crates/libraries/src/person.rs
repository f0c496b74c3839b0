//! The person library: every person mention in the store, resolved, with golden records.

use crate::Result;
use crate::build::Provenance;
pub use crate::build::{Progress, Summary, Timed};
use tongban_resolution::config::LibraryConfig;
use tongban_resolution::golden::Survivorship;
use tongban_resolution::linker::{self, Stage};
use tongban_resolution::person::{Mention, table};
use tongban_store::Store;

/// The default trust order of sources for person fields: the household register first, the
/// grid workers' door-to-door survey last.
pub const DEFAULT_TRUST: &[&str] = &[
    "police_household",
    "civil_affairs",
    "health_births",
    "education_students",
    "social_insurance",
    "floating_population",
    "housing_rentals",
    "housing_rooms",
    "market_entities",
    "grid_collection",
];

/// The golden record of one person from its mentions.
pub fn golden(key: &str, members: &[&Mention], trust: &Survivorship) -> String {
    let getters: [(&str, &crate::build::FieldOf<Mention>); 11] = [
        ("citizen_id", &|m| m.valid_id),
        ("name", &|m| m.name),
        ("sex", &|m| m.sex),
        ("birth_date", &|m| m.birth_date),
        ("ethnicity", &|m| m.ethnicity),
        ("phone", &|m| m.phone),
        ("residence", &|m| m.address),
        ("registered_address", &|m| m.registered_address),
        ("household_no", &|m| m.household_no),
        ("household_status", &|m| m.household_status),
        ("deceased_on", &|m| m.deceased_on),
    ];
    crate::build::golden_record(key, members, trust, &getters, |m| Provenance {
        source: m.source,
        record_key: m.record_key,
        role: m.role,
        date: m.recorded_on,
    })
}

/// Resolve every person mention in the store and replace the person library.
pub async fn resolve(
    store: &dyn Store,
    trust: &Survivorship,
    progress: &dyn Progress,
) -> Result<Summary> {
    let timed = Timed::new(progress);
    timed.stage("reading");
    let all = crate::build::read_all(store, &timed).await?;
    let (mut library, _) = link_persons(
        trust,
        &all.persons,
        all.read(),
        &LibraryConfig::default(),
        &timed,
    )?;
    timed.stage("person writing");
    library.write(store).await?;
    Ok(library.summary)
}

/// Resolve the given person mentions: the person library, to be written, and every mention's
/// cluster label.
pub fn link_persons(
    trust: &Survivorship,
    all: &[Mention],
    read: crate::build::Read,
    config: &LibraryConfig,
    progress: &dyn Progress,
) -> Result<(crate::build::Library, Vec<u32>)> {
    let started = tongban_store::now_millis();
    let t = table(all);
    let s = config.person_settings();
    let mut on_stage = |stage: Stage| progress.stage(&format!("person {stage:?}").to_lowercase());
    let outcome = linker::run(&t, &s, &mut on_stage)?;
    progress.stage("person golden records");
    let mut summary = Summary::from_outcome("person", read.records, all.len(), &s, &outcome);
    summary.last_record_id = read.last_record_id;
    summary.config = config.text.clone();
    let library = crate::build::key_kind(
        summary,
        "P",
        started,
        all,
        &outcome.labels,
        |members| {
            // Anchor: the cluster's valid id if it has one (at most one, by the cannot-link
            // constraint), else its first mention.
            members
                .iter()
                .find(|m| !m.valid_id.is_empty())
                .map(|m| format!("id:{}", m.valid_id))
                .unwrap_or_else(|| {
                    format!(
                        "mention:{}|{}|{}",
                        members[0].source, members[0].record_key, members[0].role
                    )
                })
        },
        |key, _, members| golden(key, members, trust),
    );
    Ok((library, outcome.labels))
}
