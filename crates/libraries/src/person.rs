//! The person library: every person mention in the store, resolved, with golden records.

use crate::Result;
use crate::build::{KeyedClusters, Library, LibraryGolden, Provenance};
pub use crate::build::{Progress, Summary, Timed};
use tongban_resolution::config::LibraryConfig;
use tongban_resolution::golden::Survivorship;
use tongban_resolution::linker::{self, Stage};
use tongban_resolution::person::{Mention, table};
use tongban_store::{GoldenPart, Store};

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
    // The write begins only once every golden record is built, so all of them may wait.
    let (_, golden) = link_persons(
        trust,
        &all.persons,
        all.read(),
        &LibraryConfig::default(),
        &timed,
        None,
        &|library| {
            built.replace(Some(library));
            Ok(())
        },
    )?;
    golden.send()?;
    timed.stage("person writing");
    let library = built
        .into_inner()
        .ok_or(crate::LibraryError::WriterStopped)?;
    library.write(store).await
}

/// Resolve the given person mentions. The person library goes to `hand` as soon as its clusters
/// have keys, so that its writer can put the links in while the golden records are built; they
/// are built and follow through the library's channel when the returned [`PendingGolden`] is
/// sent (see [`LibraryGolden::Building`]), at most `parts_waiting` parts ahead of the writer
/// (None: all of them, for a caller that writes only after sending). Returns every mention's
/// cluster label too.
pub fn link_persons<'m>(
    trust: &'m Survivorship,
    all: &'m [Mention],
    read: crate::build::Read,
    config: &LibraryConfig,
    progress: &dyn Progress,
    parts_waiting: Option<usize>,
    hand: &dyn Fn(Library) -> Result<()>,
) -> Result<(Vec<u32>, PendingGolden<'m>)> {
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
    // The end of the records is a message of its own.
    let bound = parts_waiting.unwrap_or(clusters.golden_parts() + 1);
    let (to_writer, later) = std::sync::mpsc::sync_channel(bound);
    hand(clusters.library(summary, started, links, LibraryGolden::Building(later)))?;
    let golden = PendingGolden {
        clusters,
        trust,
        to_writer,
    };
    Ok((labels, golden))
}

/// The person library's golden records, still to be built from its clusters and sent to its
/// writer.
pub struct PendingGolden<'m> {
    clusters: KeyedClusters<'m, Mention>,
    trust: &'m Survivorship,
    to_writer: std::sync::mpsc::SyncSender<GoldenPart>,
}

impl PendingGolden<'_> {
    /// Builds the golden records part by part and sends each, waiting while as many parts as
    /// the channel holds wait for the writer; then sends the end.
    pub fn send(self) -> Result<()> {
        let PendingGolden {
            clusters,
            trust,
            to_writer,
        } = self;
        // A writer that has stopped has dropped the receiver and reports its own error.
        let send = |part| {
            to_writer
                .send(part)
                .map_err(|_| crate::LibraryError::WriterStopped)
        };
        clusters.each_golden_part(
            |key, _, members| golden(key, members, trust),
            |part| send(GoldenPart::Records(part)),
        )?;
        send(GoldenPart::End)
    }
}
