//! The person library: every person mention in the store, resolved, with golden records.

use crate::Result;
use crate::build::{KeyedClusters, Library, LibraryGolden, Provenance};
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
        ("citizen_id", &|m| m.valid_id.as_str()),
        ("name", &|m| m.name.as_str()),
        ("sex", &|m| m.sex.as_str()),
        ("birth_date", &|m| m.birth_date.as_str()),
        ("ethnicity", &|m| m.ethnicity.as_str()),
        ("phone", &|m| m.phone.as_str()),
        ("residence", &|m| m.address.as_str()),
        ("registered_address", &|m| m.registered_address.as_str()),
        ("household_no", &|m| m.household_no.as_str()),
        ("household_status", &|m| m.household_status.as_str()),
        ("deceased_on", &|m| m.deceased_on.as_str()),
    ];
    crate::build::golden_record(key, members, trust, &getters, |m| Provenance {
        source: m.source.as_str(),
        record_key: m.record_key.as_str(),
        role: m.role.as_str(),
        date: m.recorded_on.as_str(),
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
    let built = std::cell::RefCell::new(None);
    link_persons(
        trust,
        &all.persons,
        all.read(),
        &LibraryConfig::default(),
        &timed,
        &|library| {
            built.replace(Some(library));
            Ok(())
        },
    )?;
    timed.stage("person writing");
    let library = built
        .into_inner()
        .ok_or(crate::LibraryError::WriterStopped)?;
    library.write(store).await
}

/// Resolve the given person mentions. The person library goes to `hand` as soon as its clusters
/// have keys, so that its writer can put the links in while the golden records are built; they
/// follow through the library, packed (see [`LibraryGolden::Building`]). Returns every
/// mention's cluster label.
pub fn link_persons(
    trust: &Survivorship,
    all: &[Mention],
    read: crate::build::Read,
    config: &LibraryConfig,
    progress: &dyn Progress,
    hand: &dyn Fn(Library) -> Result<()>,
) -> Result<Vec<u32>> {
    let started = tongban_store::now_millis();
    let mut t = table(all);
    let s = config.person_settings();
    let mut on_stage = |stage: Stage| progress.stage(&format!("person {stage:?}").to_lowercase());
    // The table's text goes once its features and keys are made, before the candidate pairs.
    let mut outcome = linker::run_releasing_columns(&mut t, &s, &mut on_stage)?;
    progress.stage("person golden records");
    let mut summary = Summary::from_outcome("person", read.records, all.len(), &s, &outcome);
    // The table, candidate pairs and their weights (a gigabyte at 1 M people) are not needed
    // for the golden records; gone before those are built, their memory takes them in.
    let labels = std::mem::take(&mut outcome.labels);
    drop((outcome, t));
    summary.last_record_id = read.last_record_id;
    summary.config = config.text.clone();
    let (clusters, links) = KeyedClusters::new("P", all, &labels, |members| {
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
    });
    let (built, later) = std::sync::mpsc::channel();
    hand(clusters.library(summary, started, links, LibraryGolden::Building(later)))?;
    let golden = clusters.packed_golden_records(|key, _, members| golden(key, members, trust));
    // A writer that has stopped has dropped the receiver and reports its own error.
    built
        .send(golden)
        .map_err(|_| crate::LibraryError::WriterStopped)?;
    Ok(labels)
}
