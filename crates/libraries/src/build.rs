//! Building the libraries: one pass over the store's records, then each kind resolved and
//! written back.
//!
//! Reading is shared: every current record is read once (in storage order, the next page fetched
//! while the last is parsed) and turned into person, entity and place mentions together.
//! [`KeyedClusters`] names each cluster with a stable key and builds golden records on all cores:
//! a [`Library`] to be written ([`key_kind`] does both at once). [`build_all`] builds every
//! library on one thread and writes each, in one transaction of its own, on another while the
//! next is built; the person library goes to the writer before its golden records are built.

use crate::golden_text::golden_text;
use crate::{LibraryError, Result, entity_key};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc::error::TrySendError;
use tongban_resolution::config::LibraryConfig;
use tongban_resolution::entity::EntityMention;
use tongban_resolution::fields::Fields;
use tongban_resolution::golden::{Candidate, Kept, Survivorship};
use tongban_resolution::interned::{Text, intern};
use tongban_resolution::linker::{self, Outcome, Settings, Stage};
use tongban_resolution::person::{Mention, RecordView};
use tongban_resolution::place::PlaceMention;
use tongban_resolution::{entity, person, place};
use tongban_store::{
    CleanedRecord, GoldenPart, GoldenRecord, GoldenRecords, LinkRef, RelationRef, Store,
};

/// Progress reports: a stage name and, while reading, records read so far.
pub trait Progress: Sync {
    fn stage(&self, name: &str);
    fn records(&self, _read: u64) {}
    /// The process's peak resident memory so far in bytes, where the caller can tell it (this
    /// crate reads no operating-system files itself).
    fn peak_memory(&self) -> Option<u64> {
        None
    }
}

/// No progress shown, for callers with nobody to show it to (tests).
impl Progress for () {
    fn stage(&self, _: &str) {}
}

/// Records when each stage starts, and the peak memory then, and passes stages on to the
/// caller's progress.
pub struct Timed<'a> {
    inner: &'a dyn Progress,
    marks: std::sync::Mutex<Vec<Mark>>,
}

/// A stage's name, when it started and the process's peak memory then.
type Mark = (String, std::time::Instant, Option<u64>);

impl<'a> Timed<'a> {
    pub fn new(inner: &'a dyn Progress) -> Timed<'a> {
        Timed {
            inner,
            marks: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The stage under way, if any.
    fn current(&self) -> Option<String> {
        self.marks
            .lock()
            .ok()?
            .last()
            .map(|(name, _, _)| name.clone())
    }

    /// Seconds per stage so far, in order.
    pub fn seconds(&self) -> Vec<(String, f64)> {
        let now = (String::new(), std::time::Instant::now(), None);
        self.at_each_end(now, |start, end| (end.1 - start.1).as_secs_f64())
    }

    /// The process's peak memory (bytes) at each stage's end so far, in order: at the next
    /// stage's start, or now for the last. A stage whose figure is above the one before it
    /// raised the peak (it, or a write running beside it). None where the caller cannot tell.
    pub fn peaks(&self) -> Vec<(String, Option<u64>)> {
        let now = (
            String::new(),
            std::time::Instant::now(),
            self.inner.peak_memory(),
        );
        self.at_each_end(now, |_, end| end.2)
    }

    /// Each stage's name with `figure` of its own mark and the mark that ends it: the next
    /// stage's, or `now` for the last.
    fn at_each_end<T>(&self, now: Mark, figure: impl Fn(&Mark, &Mark) -> T) -> Vec<(String, T)> {
        let marks = self.marks.lock().map(|m| m.clone()).unwrap_or_default();
        marks
            .iter()
            .enumerate()
            .map(|(i, mark)| {
                (
                    mark.0.clone(),
                    figure(mark, marks.get(i + 1).unwrap_or(&now)),
                )
            })
            .collect()
    }
}

impl Progress for Timed<'_> {
    fn stage(&self, name: &str) {
        let peak = self.inner.peak_memory();
        if let Ok(mut m) = self.marks.lock() {
            m.push((name.to_string(), std::time::Instant::now(), peak));
        }
        self.inner.stage(name);
    }
    fn records(&self, read: u64) {
        self.inner.records(read);
    }
    fn peak_memory(&self) -> Option<u64> {
        self.inner.peak_memory()
    }
}

/// What one kind's resolution run did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub kind: String,
    pub records: u64,
    pub mentions: u64,
    /// Entities of the kind found (persons, legal entities, rooms or buildings).
    pub entities: u64,
    pub candidate_pairs: u64,
    pub linked_pairs: u64,
    pub refused_by_constraint: u64,
    pub run_id: i64,
    /// Weight (log2 m/u) of every comparison level, as learned (empty for rooms and buildings,
    /// which group by key).
    pub weights: Vec<(String, Vec<(String, f64)>)>,
    pub prior: f64,
    /// The learned model itself (m and u per comparison and level, and λ among all pairs), so
    /// that incremental resolution scores new records exactly as this run scored its pairs.
    #[serde(default)]
    pub m: Vec<Vec<f64>>,
    #[serde(default)]
    pub u: Vec<Vec<f64>>,
    #[serde(default)]
    pub lambda: f64,
    /// The last stored record (by row id) this run saw: incremental resolution takes up the
    /// records after it.
    #[serde(default)]
    pub last_record_id: i64,
    /// "batch" for a run from scratch, "incremental" for new records resolved one at a time.
    #[serde(default)]
    pub mode: String,
    /// The resolution configuration (TOML) the run used; empty for the built-in defaults.
    #[serde(default)]
    pub config: String,
    /// The candidate pairs each blocking rule formed (those an earlier rule formed are counted
    /// there), and the blocks it left out as larger than the configured largest block: what a
    /// data engineer tunes blocking by, since pairs grow faster than records where a rule's
    /// blocks grow with the population. Empty for rooms and buildings, and for runs stored
    /// before it was kept.
    #[serde(default)]
    pub blocking: Vec<RuleCount>,
}

/// One blocking rule's part in a run (see [`Summary::blocking`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleCount {
    pub rule: String,
    pub pairs: u64,
    pub skipped_blocks: u64,
    pub skipped_records: u64,
}

impl Summary {
    pub fn from_outcome(
        kind: &str,
        records: u64,
        mentions: usize,
        s: &Settings,
        outcome: &Outcome,
    ) -> Summary {
        let weights = s
            .comparisons
            .iter()
            .enumerate()
            .map(|(c, cmp)| {
                let levels = (1..cmp.kind.levels())
                    .map(|l| (cmp.kind.labels()[l].to_string(), outcome.model.weight(c, l)))
                    .collect();
                (cmp.name.clone(), levels)
            })
            .collect();
        Summary {
            kind: kind.to_string(),
            records,
            mentions: mentions as u64,
            entities: outcome.stats.clusters as u64,
            candidate_pairs: outcome.stats.candidate_pairs,
            linked_pairs: outcome.stats.linked_pairs,
            refused_by_constraint: outcome.stats.refused_by_constraint,
            run_id: 0,
            weights,
            prior: outcome.model.prior_weight(),
            m: outcome.model.m.clone(),
            u: outcome.model.u.clone(),
            lambda: outcome.model.lambda,
            last_record_id: 0,
            mode: "batch".into(),
            config: String::new(),
            blocking: outcome
                .stats
                .rules
                .iter()
                .map(|r| RuleCount {
                    rule: r.rule.clone(),
                    pairs: r.pairs,
                    skipped_blocks: r.skipped_blocks,
                    skipped_records: r.skipped_records,
                })
                .collect(),
        }
    }

    /// A summary for kinds grouped by key rather than linked; `key_kind` counts the entities.
    pub(crate) fn grouped(kind: &str, records: u64, mentions: usize) -> Summary {
        Summary {
            kind: kind.to_string(),
            records,
            mentions: mentions as u64,
            entities: 0,
            candidate_pairs: 0,
            linked_pairs: 0,
            refused_by_constraint: 0,
            run_id: 0,
            weights: Vec::new(),
            prior: 0.0,
            m: Vec::new(),
            u: Vec::new(),
            lambda: 0.0,
            last_record_id: 0,
            mode: "batch".into(),
            config: String::new(),
            blocking: Vec::new(),
        }
    }
}

/// Every mention of every kind in the store's current records.
#[derive(Debug, Default)]
pub struct Mentions {
    pub records: u64,
    /// The row id of the last record read.
    pub last_record_id: i64,
    pub persons: Vec<Mention>,
    pub entities: Vec<EntityMention>,
    pub places: Vec<PlaceMention>,
}

impl Mentions {
    /// How much was read, for the summaries of the runs made from these mentions.
    pub fn read(&self) -> Read {
        Read {
            records: self.records,
            last_record_id: self.last_record_id,
        }
    }

    /// Makes room for the mentions of every record up to row `bound`, guessed from the first
    /// page's: the page's mentions scaled by how many of its spans of row ids fit below
    /// `bound`, a twentieth to spare. At a million
    /// people the person mentions take about a gigabyte, and growing them by doubling as pages
    /// come in copied each one about twice and had the kernel zero twice their pages (a sixth
    /// of the reading stage's samples). The guess can be far too large (row ids count every
    /// version ever stored, and the first page shows only the first source's mix), and where
    /// the system does not overcommit memory (`vm.overcommit_memory = 2`) a reservation counts
    /// against its commit limit even untouched: so each vector asks for at most 4 GiB, and a
    /// reservation refused is no failure, the vectors then growing from there as before. Room
    /// reserved and never filled is never touched, so it takes no memory: moving each vector
    /// into an allocation of its length afterwards (as sessions 34 and 35 did) held both copies
    /// at once and raised the memory in use at the end of reading a 1 M city from 815 to
    /// 1,094 MB, the old copies' pages not handed back.
    fn reserve_like(&mut self, first: &Mentions, bound: i64) {
        fn room<T>(v: &mut Vec<T>, seen: usize, scale: f64) {
            let most = (4usize << 30) / std::mem::size_of::<T>().max(1);
            let wanted = ((seen as f64 * scale * 1.05) as usize).min(most);
            // `reserve` would abort the process where the allocation is refused.
            let _ = v.try_reserve(wanted.saturating_sub(v.len()));
        }
        let covered = first.last_record_id.max(1) as f64;
        let scale = (bound as f64 / covered).max(1.0);
        room(&mut self.persons, first.persons.len(), scale);
        room(&mut self.entities, first.entities.len(), scale);
        room(&mut self.places, first.places.len(), scale);
    }
}

/// How many records a run read, and the row id of the last one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Read {
    pub records: u64,
    pub last_record_id: i64,
}

/// Raw values of identifier fields that failed cleaning, from a record's issues JSON: an invalid
/// id is still evidence.
fn invalid_values(issues: &str) -> Vec<(String, String)> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(issues) else {
        return Vec::new();
    };
    items
        .iter()
        .filter(|i| i.get("severity").and_then(Value::as_str) != Some("info"))
        .filter_map(|i| {
            let field = i.get("field")?.as_str()?;
            let raw = i.get("raw")?.as_str()?;
            (field.ends_with("citizen_id") || field.ends_with("credit_code"))
                .then(|| (field.to_string(), raw.to_string()))
        })
        .collect()
}

/// The mentions of every kind in one stored record. `subjects` maps a source to its subject.
pub fn record_mentions(
    subjects: &HashMap<String, String>,
    r: &CleanedRecord,
) -> (Vec<Mention>, Vec<EntityMention>, Vec<PlaceMention>) {
    let cleaned = Fields::parse(&r.cleaned);
    let invalid = if r.issues.len() > 2 {
        invalid_values(&r.issues)
    } else {
        Vec::new()
    };
    let subject = subjects.get(&r.source_id).map_or("", String::as_str);
    let view = RecordView {
        source: &r.source_id,
        subject,
        key: &r.key,
        cleaned: &cleaned,
        invalid: &invalid,
    };
    (
        person::mentions(&view),
        entity::mentions(&view),
        place::mentions(&view),
    )
}

fn parse_page(subjects: &HashMap<String, String>, page: &[CleanedRecord]) -> Mentions {
    let found: Vec<(Vec<Mention>, Vec<EntityMention>, Vec<PlaceMention>)> = page
        .par_iter()
        .map(|r| record_mentions(subjects, r))
        .collect();
    let mut out = Mentions {
        records: page.len() as u64,
        last_record_id: page.last().map_or(0, |r| r.id),
        ..Mentions::default()
    };
    for (p, e, pl) in found {
        out.persons.extend(p);
        out.entities.extend(e);
        out.places.extend(pl);
    }
    out
}

/// Each source's subject ("person", "entity", …).
pub async fn subjects(store: &dyn Store) -> Result<HashMap<String, String>> {
    Ok(store
        .sources()
        .await?
        .into_iter()
        .map(|s| (s.id, s.subject))
        .collect())
}

/// Read every current record once and extract the mentions of every kind.
pub async fn read_all(store: &dyn Store, progress: &dyn Progress) -> Result<Mentions> {
    read_up_to(store, i64::MAX, progress).await
}

/// Read every current record with a row id up to `last` and extract the mentions of every kind.
pub async fn read_up_to(store: &dyn Store, last: i64, progress: &dyn Progress) -> Result<Mentions> {
    const PAGE: i64 = 20_000;
    let subjects: Arc<HashMap<String, String>> = Arc::new(subjects(store).await?);
    let mut all = Mentions::default();
    let (page, newest) = tokio::join!(store.all_current_cleaned(0, PAGE), store.last_record_id());
    let (mut page, bound) = (page?, newest?.min(last));
    page.retain(|r| r.id <= last);
    loop {
        let full = page.len() as i64 == PAGE;
        let after = page.last().map(|r| r.id);
        // The next page is fetched while this one is parsed on the other cores.
        let subjects = subjects.clone();
        let parse = tokio::task::spawn_blocking(move || parse_page(&subjects, &page));
        let fetch = async {
            match (after, full) {
                (Some(a), true) => store.all_current_cleaned(a, PAGE).await.map(Some),
                _ => Ok(None),
            }
        };
        let (parsed, next) = tokio::join!(parse, fetch);
        let parsed = parsed.unwrap_or_default();
        if all.records == 0 && full {
            all.reserve_like(&parsed, bound);
        }
        all.records += parsed.records;
        all.last_record_id = all.last_record_id.max(parsed.last_record_id);
        all.persons.extend(parsed.persons);
        all.entities.extend(parsed.entities);
        all.places.extend(parsed.places);
        progress.records(all.records);
        match next? {
            Some(mut p) if !p.is_empty() => {
                p.retain(|r| r.id <= last);
                if p.is_empty() {
                    break;
                }
                page = p;
            }
            _ => break,
        }
    }
    Ok(all)
}

/// Where a mention sits: (source, record key, role).
pub trait MentionOf: Sync {
    fn at(&self) -> (&'static str, &'static str, &'static str);
    /// [`MentionOf::at`] as the interned texts it is read from.
    fn at_texts(&self) -> (Text, Text, Text);
}

impl MentionOf for Mention {
    fn at(&self) -> (&'static str, &'static str, &'static str) {
        (
            self.source.as_str(),
            self.record_key.as_str(),
            self.role.as_str(),
        )
    }
    fn at_texts(&self) -> (Text, Text, Text) {
        (self.source, self.record_key, self.role)
    }
}
impl MentionOf for EntityMention {
    fn at(&self) -> (&'static str, &'static str, &'static str) {
        (
            self.source.as_str(),
            self.record_key.as_str(),
            self.role.as_str(),
        )
    }
    fn at_texts(&self) -> (Text, Text, Text) {
        (self.source, self.record_key, self.role)
    }
}
impl MentionOf for PlaceMention {
    fn at(&self) -> (&'static str, &'static str, &'static str) {
        (
            self.source.as_str(),
            self.record_key.as_str(),
            self.role.as_str(),
        )
    }
    fn at_texts(&self) -> (Text, Text, Text) {
        (self.source, self.record_key, self.role)
    }
}

/// A mention's link to its entity as a run keeps it: four interned texts, 16 bytes. A run keeps
/// every library's links until the relations are derived from them, ten million at a million
/// people; as [`LinkRef`]s (four `&str`, 64 bytes) they took about 660 MB there. A library
/// makes its `LinkRef`s only while it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub source_id: Text,
    pub record_key: Text,
    pub role: Text,
    pub entity_key: Text,
}

impl Link {
    /// The link as the store takes it.
    pub fn as_ref(&self) -> LinkRef<'static> {
        LinkRef {
            source_id: self.source_id.as_str(),
            record_key: self.record_key.as_str(),
            role: self.role.as_str(),
            entity_key: self.entity_key.as_str(),
        }
    }
}

/// A run's links as the store reads them, each made a [`LinkRef`] as it is written: at a million
/// people the person library's links as `LinkRef`s were 245 MB, held for as long as it was
/// written.
struct LinkRows<'l>(&'l [Link]);

impl tongban_store::Rows<LinkRef<'static>> for LinkRows<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn row(&self, i: usize) -> LinkRef<'static> {
        self.0[i].as_ref()
    }
}

impl crate::relations::LinkText<'static> for Link {
    fn source_id(&self) -> &'static str {
        self.source_id.as_str()
    }
    fn record_key(&self) -> &'static str {
        self.record_key.as_str()
    }
    fn role(&self) -> &'static str {
        self.role.as_str()
    }
    fn entity_key(&self) -> &'static str {
        self.entity_key.as_str()
    }
}

/// One kind's library built in memory and not yet written: the run's summary, a link for every
/// mention and a golden record for every entity. Links are shared, since relations are derived
/// from them while the library is being written.
pub struct Library {
    pub summary: Summary,
    /// When the run began, as the store records it.
    pub started: i64,
    pub links: Arc<Vec<Link>>,
    pub golden: LibraryGolden,
}

/// A library's golden records: built, or still being built when the library is handed to the
/// writer (the person library, whose writer would otherwise wait for them; see
/// [`tongban_store::GoldenRecords`]).
pub enum LibraryGolden {
    Built(Vec<GoldenRecord>),
    /// Sent packed when they are built (see [`PackedGolden`]).
    Building(std::sync::mpsc::Receiver<Vec<PackedGolden>>),
}

impl Library {
    /// Replaces the kind's library in the store with this one, in one transaction, and returns
    /// its summary with the run's id. Golden records still being built are taken when the links
    /// are in.
    pub async fn write(self, store: &dyn Store) -> Result<Summary> {
        let Library {
            mut summary,
            started,
            links,
            golden,
        } = self;
        let text = serde_json::to_string(&summary).unwrap_or_default();
        let built;
        let golden = match golden {
            LibraryGolden::Built(golden) => {
                built = golden;
                GoldenRecords::Ready(&built)
            }
            LibraryGolden::Building(packed) => GoldenRecords::Later(unpack_for_writer(packed)),
        };
        // Each link is made a `LinkRef` only as it is written (see `tongban_store::Rows`).
        summary.run_id = store
            .replace_resolution_with(&summary.kind, started, &text, &LinkRows(&links), golden)
            .await?;
        Ok(summary)
    }
}

/// The clusters of one kind with their stable keys, in label order: what a library's links are
/// made of first, and its golden records after.
pub struct KeyedClusters<'m, M> {
    clusters: Vec<KeyedCluster<'m, M>>,
}

struct KeyedCluster<'m, M> {
    key: String,
    anchor: String,
    members: Vec<&'m M>,
}

impl<'m, M: MentionOf> KeyedClusters<'m, M> {
    /// Keys the clusters given by `labels` (`anchor` names what a cluster's key is derived from)
    /// and links every mention to its cluster's key, the links in the store's key order.
    pub fn new(
        prefix: &str,
        mentions: &'m [M],
        labels: &[u32],
        anchor: impl Fn(&[&M]) -> String + Sync,
    ) -> (KeyedClusters<'m, M>, Vec<Link>) {
        let mut clusters: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, &label) in labels.iter().enumerate() {
            clusters.entry(label).or_default().push(i as u32);
        }
        let mut ordered: Vec<(u32, Vec<u32>)> = clusters.into_iter().collect();
        ordered.sort_unstable_by_key(|(l, _)| *l);
        let keyed: Vec<(u32, KeyedCluster<'m, M>)> = ordered
            .par_iter()
            .map(|(label, members)| {
                let members: Vec<&M> = members.iter().map(|&i| &mentions[i as usize]).collect();
                let anchor = anchor(&members);
                let key = entity_key(prefix, &anchor);
                let cluster = KeyedCluster {
                    key,
                    anchor,
                    members,
                };
                (*label, cluster)
            })
            .collect();
        drop(ordered);
        // Anchors are unique per cluster by construction; should two ever coincide, the second
        // keeps a key of its own rather than overwrite the first's golden record.
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut key_of: HashMap<u32, Text> = HashMap::with_capacity(keyed.len());
        let mut clusters = Vec::with_capacity(keyed.len());
        for (label, mut cluster) in keyed {
            if !seen.insert(cluster.key.clone()) {
                let unique = entity_key(prefix, &format!("{}#{label}", cluster.key));
                seen.insert(unique.clone());
                cluster.key = unique;
            }
            // Interned, so that every link of a cluster borrows its one copy.
            key_of.insert(label, intern(&cluster.key));
            clusters.push(cluster);
        }
        let mut links: Vec<Link> = mentions
            .iter()
            .zip(labels)
            .map(|(m, label)| {
                let (source_id, record_key, role) = m.at_texts();
                Link {
                    source_id,
                    record_key,
                    role,
                    entity_key: key_of.get(label).copied().unwrap_or_default(),
                }
            })
            .collect();
        // In the store's key order (`tongban_store::link_order`: texts compare as their text),
        // sorted here on all cores rather than by the store on its one writing thread, the
        // longest part of a build.
        links.par_sort_unstable_by(|a, b| {
            (a.source_id, a.record_key, a.role).cmp(&(b.source_id, b.record_key, b.role))
        });
        (KeyedClusters { clusters }, links)
    }

    /// The library of these clusters: `summary` counts them, `links` are the ones
    /// [`KeyedClusters::new`] gave.
    pub fn library(
        &self,
        mut summary: Summary,
        started: i64,
        links: Vec<Link>,
        golden: LibraryGolden,
    ) -> Library {
        summary.entities = self.clusters.len() as u64;
        Library {
            summary,
            started,
            links: Arc::new(links),
            golden,
        }
    }

    /// Every cluster's golden record, built by `golden` from its key, anchor and members on all
    /// cores, in the store's key order.
    pub fn golden_records(
        &self,
        golden: impl Fn(&str, &str, &[&M]) -> String + Sync,
    ) -> Vec<GoldenRecord> {
        self.in_key_order()
            .par_iter()
            .map(|&i| self.golden_record(i, &golden))
            .collect()
    }

    /// As [`KeyedClusters::golden_records`], packed in parts of [`GOLDEN_PART`] (see
    /// [`PackedGolden`]): each part built and packed on one core, so that no more than a part a
    /// core is held unpacked.
    pub fn packed_golden_records(
        &self,
        golden: impl Fn(&str, &str, &[&M]) -> String + Sync,
    ) -> Vec<PackedGolden> {
        self.in_key_order()
            .par_chunks(GOLDEN_PART)
            .map(|part| {
                let records: Vec<GoldenRecord> = part
                    .iter()
                    .map(|&i| self.golden_record(i, &golden))
                    .collect();
                PackedGolden::pack(&records)
            })
            .collect()
    }

    fn golden_record(
        &self,
        i: u32,
        golden: &(impl Fn(&str, &str, &[&M]) -> String + Sync),
    ) -> GoldenRecord {
        let c = &self.clusters[i as usize];
        GoldenRecord {
            record: golden(&c.key, &c.anchor, &c.members),
            entity_key: c.key.clone(),
        }
    }

    /// The clusters' positions in the store's key order.
    fn in_key_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.clusters.len() as u32).collect();
        order.par_sort_unstable_by(|&a, &b| {
            self.clusters[a as usize]
                .key
                .cmp(&self.clusters[b as usize].key)
        });
        order
    }
}

/// Golden records packed at a time (see [`PackedGolden`]): about 19 MB of person records.
pub const GOLDEN_PART: usize = 25_000;

/// A part of a library's golden records, compressed while they wait for the writer.
///
/// At a million people the person library's golden records are a gigabyte of text, built while
/// its writer puts the links in (some twenty seconds) and held until it takes them, beside
/// everything the entity linking builds meanwhile: they were the largest thing a run held.
/// Packed with zstd at its fastest level they take an eighth of that (19.9 MB of records to
/// 2.5 MB), for about two seconds of the build's cores, and a thread of the writer's unpacks one part at a
/// time. Building them in parts only as the writer asks instead held the writer up: it waited
/// for parts built on cores the entity linking was using, and a run took twice as long.
pub struct PackedGolden {
    /// Each record as its key's length and bytes, then its record's (lengths as `u32`, little
    /// endian), compressed.
    packed: Vec<u8>,
    /// The length before compression; `None` for bytes kept as they are.
    unpacked: Option<usize>,
}

/// zstd's fastest level: the packing is on the build's cores, beside the entity linking.
const PACK_LEVEL: i32 = 1;

impl PackedGolden {
    pub fn pack(records: &[GoldenRecord]) -> PackedGolden {
        let mut bytes = Vec::with_capacity(
            records
                .iter()
                .map(|r| 8 + r.entity_key.len() + r.record.len())
                .sum(),
        );
        for r in records {
            for text in [&r.entity_key, &r.record] {
                bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
                bytes.extend_from_slice(text.as_bytes());
            }
        }
        // Compressing into a buffer of zstd's bound fails only for want of memory; were it to,
        // the part is kept as it is, larger but whole.
        match zstd::bulk::compress(&bytes, PACK_LEVEL) {
            Ok(packed) => PackedGolden {
                packed,
                unpacked: Some(bytes.len()),
            },
            Err(_) => PackedGolden {
                packed: bytes,
                unpacked: None,
            },
        }
    }

    /// The records again, in the order they were packed; `None` for a part not made by
    /// [`PackedGolden::pack`].
    pub fn unpack(&self) -> Option<Vec<GoldenRecord>> {
        let unpacked;
        let mut bytes: &[u8] = match self.unpacked {
            None => &self.packed,
            Some(len) => {
                unpacked = zstd::bulk::decompress(&self.packed, len).ok()?;
                &unpacked
            }
        };
        fn text(bytes: &mut &[u8]) -> Option<String> {
            let (len, rest) = bytes.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let (text, rest) = (rest.get(..len)?, rest.get(len..)?);
            *bytes = rest;
            String::from_utf8(text.to_vec()).ok()
        }
        let mut records = Vec::new();
        while !bytes.is_empty() {
            records.push(GoldenRecord {
                entity_key: text(&mut bytes)?,
                record: text(&mut bytes)?,
            });
        }
        Some(records)
    }

    /// The bytes held.
    pub fn size(&self) -> usize {
        self.packed.len()
    }
}

/// Unpacks golden records on a thread of its own, a part at a time, for a writer that takes
/// them through the returned channel (see [`tongban_store::GoldenRecords::Later`]). The parts
/// come through `packed` all at once when they are built; should they never come, or a part
/// not unpack, the channel closes before [`GoldenPart::End`] and the write fails.
fn unpack_for_writer(
    packed: std::sync::mpsc::Receiver<Vec<PackedGolden>>,
) -> std::sync::mpsc::Receiver<GoldenPart> {
    // At most three parts are held unpacked: the one being written, one in the channel and
    // one waiting to be sent. Each packed part is freed once it is unpacked.
    let (to_writer, parts) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let Ok(all) = packed.recv() else {
            return;
        };
        for part in all {
            let Some(records) = part.unpack() else {
                return;
            };
            drop(part);
            if to_writer.send(GoldenPart::Records(records)).is_err() {
                return;
            }
        }
        // A writer that has stopped has dropped the channel and reports its own error.
        let _ = to_writer.send(GoldenPart::End);
    });
    parts
}

/// Key the clusters given by `labels` and build their golden records: the library of the
/// summary's kind, ready to be written. `anchor` names what a cluster's key is derived from;
/// `golden` builds its record from the key, the anchor and the members.
pub fn key_kind<M: MentionOf>(
    summary: Summary,
    prefix: &str,
    started: i64,
    mentions: &[M],
    labels: &[u32],
    anchor: impl Fn(&[&M]) -> String + Sync,
    golden: impl Fn(&str, &str, &[&M]) -> String + Sync,
) -> Library {
    let (clusters, links) = KeyedClusters::new(prefix, mentions, labels, anchor);
    let golden = LibraryGolden::Built(clusters.golden_records(golden));
    clusters.library(summary, started, links, golden)
}

/// The default trust order for entity fields: the market register first.
pub const ENTITY_TRUST: &[&str] = &["market_entities", "social_insurance", "floating_population"];

/// Where a mention's values come from, for golden-record provenance.
pub struct Provenance<'a> {
    pub source: &'a str,
    pub record_key: &'a str,
    pub role: &'a str,
    pub date: &'a str,
}

/// Reads one field of a mention of type `M`.
pub type FieldOf<M> = dyn Fn(&M) -> &str;

/// A golden record: for each named field, the value that survives among the members' values
/// (see [`Survivorship`]) with its provenance; plus the mention count and the sources.
pub fn golden_record<M>(
    key: &str,
    members: &[&M],
    trust: &Survivorship,
    getters: &[(&str, &FieldOf<M>)],
    provenance: impl Fn(&M) -> Provenance<'_>,
) -> String {
    let provenances: Vec<Provenance> = members.iter().map(|m| provenance(m)).collect();
    let mut candidates: Vec<Candidate> = Vec::with_capacity(members.len());
    let mut fields: Vec<(&str, Kept)> = Vec::with_capacity(getters.len());
    for (name, get) in getters {
        candidates.clear();
        candidates.extend(members.iter().zip(&provenances).map(|(m, p)| Candidate {
            value: get(m),
            source: p.source,
            record_key: p.record_key,
            role: p.role,
            date: p.date,
        }));
        if let Some(kept) = trust.survive(&candidates) {
            fields.push((name, kept));
        }
    }
    let mut sources: Vec<&str> = provenances.iter().map(|p| p.source).collect();
    sources.sort_unstable();
    sources.dedup();
    golden_text(key, members.len(), &sources, &fields)
}

/// The golden-record fields of a legal entity, in order.
pub(crate) const ENTITY_FIELDS: [&str; 7] = [
    "credit_code",
    "name",
    "entity_type",
    "industry",
    "founded",
    "legal_rep",
    "address",
];

/// Field `i` of [`ENTITY_FIELDS`] as a mention states it.
pub(crate) fn entity_field(m: &EntityMention, i: usize) -> &str {
    match i {
        0 => m.valid_code.as_str(),
        1 => m.name.as_str(),
        2 => m.entity_type.as_str(),
        3 => m.industry.as_str(),
        4 => m.founded.as_str(),
        5 => m.legal_rep.as_str(),
        6 => m.address.as_str(),
        _ => "",
    }
}

pub(crate) fn entity_golden(key: &str, members: &[&EntityMention], trust: &Survivorship) -> String {
    let getters: Vec<(&str, Box<FieldOf<EntityMention>>)> = ENTITY_FIELDS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let get: Box<FieldOf<EntityMention>> = Box::new(move |m| entity_field(m, i));
            (*name, get)
        })
        .collect();
    let getters: Vec<(&str, &FieldOf<EntityMention>)> =
        getters.iter().map(|(n, g)| (*n, g.as_ref())).collect();
    golden_record(key, members, trust, &getters, |m| Provenance {
        source: m.source.as_str(),
        record_key: m.record_key.as_str(),
        role: m.role.as_str(),
        date: m.founded.as_str(),
    })
}

/// Resolve legal entities: the entity library, to be written.
pub fn link_entities(
    all: &[EntityMention],
    read: Read,
    config: &LibraryConfig,
    progress: &dyn Progress,
) -> Result<Library> {
    let started = tongban_store::now_millis();
    // Thousands of employees name their employer identically; each distinct way of naming an
    // entity is linked once and every mention follows its representative. Linking every copy
    // would pair all of a large employer's mentions with each other.
    let mut distinct: HashMap<(Text, Text, Text, Text), u32> = HashMap::new();
    let mut representatives: Vec<EntityMention> = Vec::new();
    let rep_of: Vec<u32> = all
        .iter()
        .map(|m| {
            let next = representatives.len() as u32;
            let id = *distinct
                .entry((m.valid_code, m.code, m.name_key, m.address))
                .or_insert(next);
            if id == next {
                representatives.push(m.clone());
            }
            id
        })
        .collect();
    let mut t = entity::table(&representatives);
    let s = config.entity_settings();
    let mut on_stage = |stage: Stage| progress.stage(&format!("entity {stage:?}").to_lowercase());
    // The table's text goes once its features and keys are made, before the candidate pairs.
    let outcome = linker::run_releasing_columns(&mut t, &s, &mut on_stage)?;
    let labels: Vec<u32> = rep_of.iter().map(|&r| outcome.labels[r as usize]).collect();
    let mut summary = Summary::from_outcome("entity", read.records, all.len(), &s, &outcome);
    // The table, candidate pairs and their weights are not needed for the golden records; gone
    // before those are built, their memory takes them in.
    drop((outcome, t, representatives, distinct, rep_of));
    summary.last_record_id = read.last_record_id;
    summary.config = config.text.clone();
    let trust = Survivorship::new(ENTITY_TRUST);
    progress.stage("entity golden records");
    Ok(key_kind(
        summary,
        "E",
        started,
        all,
        &labels,
        |members| {
            members
                .iter()
                .find(|m| !m.valid_code.is_empty())
                .map(|m| format!("code:{}", m.valid_code))
                .unwrap_or_else(|| {
                    format!(
                        "mention:{}|{}|{}",
                        members[0].source, members[0].record_key, members[0].role
                    )
                })
        },
        |key, _, members| entity_golden(key, members, &trust),
    ))
}

pub(crate) fn place_anchor(members: &[&PlaceMention], key: fn(&PlaceMention) -> &str) -> String {
    // The most common key among the members (ties: the smallest), else the first mention.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in members {
        let k = key(m);
        if !k.is_empty() {
            *counts.entry(k).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| format!("key:{k}"))
        .unwrap_or_else(|| {
            format!(
                "mention:{}|{}|{}",
                members[0].source, members[0].record_key, members[0].role
            )
        })
}

/// The most common of the counted codes (ties: the smallest); "" when none was counted.
fn most_common(counts: HashMap<&str, usize>) -> &str {
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(c, _)| c)
        .unwrap_or("")
}

pub(crate) fn place_golden(key: &str, members: &[&PlaceMention], place_key: &str) -> String {
    // Roles in the order they first appear, as the stored records have always listed them.
    let mut roles: Vec<(&str, usize)> = Vec::new();
    for m in members {
        match roles.iter_mut().find(|(r, _)| *r == m.role) {
            Some((_, n)) => *n += 1,
            None => roles.push((m.role.as_str(), 1)),
        }
    }
    let mut sources: Vec<&str> = members.iter().map(|m| m.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    // The community the registers place it in: the most common one stated (ties: the smallest).
    let mut communities: HashMap<&str, usize> = HashMap::new();
    for m in members.iter().filter(|m| !m.community.is_empty()) {
        *communities.entry(m.community.as_str()).or_default() += 1;
    }
    let community = most_common(communities);
    // The division its addresses name (a street, else a county): where a place that no
    // register puts in a community lies, for jurisdictions (see `population::place_division`).
    let mut divisions: HashMap<&str, usize> = HashMap::new();
    for m in members.iter().filter(|m| !m.division.is_empty()) {
        *divisions.entry(m.division.as_str()).or_default() += 1;
    }
    let division = most_common(divisions);
    struct Roles<'r>(Vec<(&'r str, usize)>);
    impl serde::Serialize for Roles<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(role, n)| (role, n)))
        }
    }
    #[derive(serde::Serialize)]
    struct Record<'r> {
        key: &'r str,
        address_key: &'r str,
        community: &'r str,
        division: &'r str,
        mentions: usize,
        by_role: Roles<'r>,
        sources: Vec<&'r str>,
    }
    // Serialising strings, numbers and maps with string keys into memory cannot fail.
    serde_json::to_string(&Record {
        key,
        address_key: place_key,
        community,
        division,
        mentions: members.len(),
        by_role: Roles(roles),
        sources,
    })
    .unwrap_or_default()
}

/// Group rooms and buildings by canonical key: the room library and the building library, in
/// that order, to be written.
pub fn group_places(
    all: &[PlaceMention],
    hints: &[Vec<Text>],
    read: Read,
    progress: &dyn Progress,
) -> Vec<Library> {
    let mut out = Vec::new();
    for kind in ["room", "building"] {
        let started = tongban_store::now_millis();
        progress.stage(&format!("{kind} grouping"));
        // Rooms are keyed by the room key they stand for once a missing unit is resolved (an
        // ambiguous one stands for none and keys by its mention), so no two rooms share a key.
        // Premises and the building register's records name buildings and stay out of the room
        // library (see `PlaceMention::names_room`).
        let rooms: Vec<PlaceMention>;
        let (labels, prefix, all): (Vec<u32>, &str, &[PlaceMention]) = if kind == "room" {
            let (mut mentions, room_hints): (Vec<PlaceMention>, Vec<Vec<Text>>) = all
                .iter()
                .zip(hints.iter().chain(std::iter::repeat(&Vec::new())))
                .filter(|(m, _)| m.names_room())
                .map(|(m, h)| (m.clone(), h.clone()))
                .unzip();
            let context = place::PlaceContext::from_mentions(all);
            let (labels, keys) = place::cluster_rooms_in(&context, &mentions, &room_hints);
            for (m, k) in mentions.iter_mut().zip(keys) {
                m.room_key = k.unwrap_or_default();
            }
            rooms = mentions;
            (labels, "R", &rooms)
        } else {
            (place::cluster_buildings(all), "B", all)
        };
        let pick: fn(&PlaceMention) -> &str = if kind == "room" {
            |m| m.room_key.as_str()
        } else {
            |m| m.building_key.as_str()
        };
        let mut summary = Summary::grouped(kind, read.records, all.len());
        summary.last_record_id = read.last_record_id;
        out.push(key_kind(
            summary,
            prefix,
            started,
            all,
            &labels,
            |members| place_anchor(members, pick),
            |key, anchor, members| {
                place_golden(key, members, anchor.strip_prefix("key:").unwrap_or(""))
            },
        ));
    }
    out
}

/// The persons whose homes place mentions tell of, by record: each record's subject and, in a
/// rental, its tenant (see `place::household_person_role`). Keyed by the record's interned
/// numbers, eight bytes an entry (there is one for every record naming a person).
pub(crate) struct HouseholdPersons(foldhash::HashMap<u64, [u32; 2]>);

impl HouseholdPersons {
    const NONE: u32 = u32::MAX;

    /// From person mentions, each given the value `value(i)` (a cluster label, an index).
    pub(crate) fn new(persons: &[Mention], value: impl Fn(usize) -> u32) -> HouseholdPersons {
        let mut by_record = foldhash::HashMap::default();
        for (i, m) in persons.iter().enumerate() {
            let slot = match m.role.as_str() {
                "subject" => 0,
                "tenant" => 1,
                _ => continue,
            };
            by_record
                .entry(place::record_number(m.source, m.record_key))
                .or_insert([Self::NONE; 2])[slot] = value(i);
        }
        HouseholdPersons(by_record)
    }

    /// The value of the person whose home `p` tells of, if its record names one.
    pub(crate) fn of(&self, p: &PlaceMention) -> Option<u32> {
        let slot = usize::from(place::household_person_role(p.role.as_str()) == "tenant");
        self.0
            .get(&place::record_number(p.source, p.record_key))
            .map(|persons| persons[slot])
            .filter(|&v| v != Self::NONE)
    }
}

/// Household context for rooms: for each place mention made by a person's record (a residence),
/// the full room keys (with a unit) where that person lives, is registered or rents according to
/// any of their records. An address written without its unit, or with a compound name that could
/// be two, can then take the key the person's other records give.
fn household_hints(persons: &[Mention], labels: &[u32], places: &[PlaceMention]) -> Vec<Vec<Text>> {
    // `labels` holds one label per person mention (the linker's clustering of `persons`).
    let by_record = HouseholdPersons::new(persons, |i| labels[i]);
    let mut full_keys: HashMap<u32, Vec<Text>> = HashMap::new();
    for p in places.iter().filter(|p| place::tells_home(p.role.as_str())) {
        let complete = p.room_key.split('|').nth(3).is_some_and(|u| !u.is_empty());
        if let (true, Some(person)) = (complete, by_record.of(p)) {
            let keys = full_keys.entry(person).or_default();
            if !keys.contains(&p.room_key) {
                keys.push(p.room_key);
            }
        }
    }
    places
        .iter()
        .map(|p| {
            by_record
                .of(p)
                .and_then(|person| full_keys.get(&person))
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// What a whole build did: each kind's summary (persons, entities, rooms, buildings), how long
/// each stage of building them in memory took, in order, and how long each write took. The
/// writes run beside the later stages, so their seconds overlap the stages' rather than add to
/// them; the stage "writing" is the time the build waited for the last writes after everything
/// else was done. `peaks` gives the process's peak memory at the end of each of those stages,
/// where the caller's progress can tell it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub summaries: Vec<Summary>,
    pub stages: Vec<(String, f64)>,
    pub writes: Vec<(String, f64)>,
    pub peaks: Vec<(String, Option<u64>)>,
}

/// What the building side hands to the writing side, in the order it is to be written.
enum Write {
    Library(Box<Library>),
    /// Relations name the links they were read off (see [`crate::relations::Stated`]).
    Relations(RunRelations),
}

/// How many finished libraries may wait for the writer while it writes another. The writer is
/// the slower side (at a million people it finished 107–130 s after everything was built), so
/// building further ahead saves no time and only holds more in memory: with no limit, the person
/// library was still being written while the entities, rooms, buildings and the relations were
/// all built and waiting, and the peak (6.97 GB) came while the relations were derived.
/// It is the capacity of the channel to the writer, so at least 1.
const WAITING_FOR_THE_WRITER: usize = 1;

/// More writes than a run hands to the writer (five: the person and entity libraries, rooms,
/// buildings and the relations). When the two sides do not run at once (a single-threaded
/// runtime builds everything first), the channel holds all of them, so the builder never waits
/// for a writer that cannot run until it is done.
const MORE_THAN_A_RUN_WRITES: usize = 16;

/// Hands `item` to the writer. While the channel is full (a library already waits) a builder
/// that `may_wait` (one on a thread of its own) waits, and the wait is a stage of its own, not
/// part of the stage it interrupts, which goes on under its own name afterwards. A writer that
/// has stopped has dropped its end, and the builder stops at once, waiting or not.
fn hand_to_writer<T>(
    to_writer: &tokio::sync::mpsc::Sender<T>,
    item: T,
    may_wait: bool,
    timed: &Timed,
) -> Result<()> {
    let item = match to_writer.try_send(item) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Closed(_)) => return Err(LibraryError::WriterStopped),
        Err(TrySendError::Full(item)) => item,
    };
    // A builder that may not wait never fills the channel (see `MORE_THAN_A_RUN_WRITES`); if it
    // did, its writer could not run until it returned, so it stops rather than wait forever.
    if !may_wait {
        return Err(LibraryError::WriterStopped);
    }
    let interrupted = timed.current();
    timed.stage("waiting for the writer");
    let sent = to_writer
        .blocking_send(item)
        .map_err(|_| LibraryError::WriterStopped);
    if let Some(name) = interrupted {
        timed.stage(&name);
    }
    sent
}

/// Build every library: one read of the store, then persons, entities, rooms, buildings and the
/// relations between them.
///
/// Writing a library is the store's work on one thread, and at a million people it takes longer
/// than building all of them, so the two overlap: each library is written while the next is
/// built (at most [`WAITING_FOR_THE_WRITER`] waiting), in the same order as before and each in
/// its own transaction. With a single-threaded runtime (tests) the libraries are built first and
/// written after.
pub async fn build_all(
    store: &dyn Store,
    trust: &Survivorship,
    config: &LibraryConfig,
    progress: &dyn Progress,
) -> Result<Built> {
    let timed = Timed::new(progress);
    timed.stage("reading");
    let all = read_all(store, &timed).await?;
    // The channel is the limit on libraries waiting: while it is full the builder waits, and
    // once the writer has stopped (an error, a panic) sending fails at once.
    let bounded = runs_side_by_side();
    let (to_writer, from_builder) = tokio::sync::mpsc::channel(if bounded {
        WAITING_FOR_THE_WRITER
    } else {
        MORE_THAN_A_RUN_WRITES
    });
    let build = || {
        let built = build_in_memory(all, trust, config, &timed, &|write| {
            hand_to_writer(&to_writer, write, bounded, &timed)
        });
        // Dropping the sender tells the writer that nothing more will come.
        drop(to_writer);
        timed.stage("writing");
        built
    };
    let write = write_in_order(store, from_builder, progress);
    let (built, written) = side_by_side(build, write).await;
    // The writer's error explains a build stopped for want of a writer, and the build's error a
    // writer whose golden records never came, unless the build stopped only because the writer
    // had (their parts did not unpack).
    let (summaries, writes) = match (written, built) {
        (Err(LibraryError::Store(tongban_store::StoreError::GoldenNeverCame(_))), Err(error))
            if !matches!(error, LibraryError::WriterStopped) =>
        {
            return Err(error);
        }
        (Err(error), _) => return Err(error),
        (Ok(written), built) => built.map(|()| written)?,
    };
    Ok(Built {
        summaries,
        stages: timed.seconds(),
        peaks: timed.peaks(),
        writes,
    })
}

/// The building side of [`build_all`]: every library and the relations, each handed to `write`
/// as soon as it is complete. Each kind's mentions are freed once nothing more is built from
/// them.
fn build_in_memory(
    all: Mentions,
    trust: &Survivorship,
    config: &LibraryConfig,
    progress: &dyn Progress,
    write: &dyn Fn(Write) -> Result<()>,
) -> Result<()> {
    let read = all.read();
    let Mentions {
        persons,
        entities,
        places,
        ..
    } = all;
    let person_links = std::cell::RefCell::new(Arc::new(Vec::new()));
    let person_labels =
        crate::person::link_persons(trust, &persons, read, config, progress, &|library| {
            person_links.replace(library.links.clone());
            write(Write::Library(Box::new(library)))
        })?;
    let person_links = person_links.into_inner();
    let entity_library = link_entities(&entities, read, config, progress)?;
    drop(entities);
    let entity_links = entity_library.links.clone();
    write(Write::Library(Box::new(entity_library)))?;
    let mut places = places;
    place::resolve_compound_aliases(&mut places);
    let hints = household_hints(&persons, &person_labels, &places);
    drop((person_labels, persons));
    let mut place_links = Vec::new();
    for library in group_places(&places, &hints, read, progress) {
        place_links.push(library.links.clone());
        write(Write::Library(Box::new(library)))?;
    }
    drop((hints, places));
    progress.stage("relations");
    let none = Arc::new(Vec::new());
    let (rooms, buildings) = (
        place_links.first().unwrap_or(&none),
        place_links.get(1).unwrap_or(&none),
    );
    let links = [person_links, entity_links, rooms.clone(), buildings.clone()];
    drop(place_links);
    let stated = crate::relations::derive_stated(links.each_ref().map(|l| l.as_slice()));
    write(Write::Relations(RunRelations { links, stated }))
}

/// A run's relations and the links they name, as the store reads them: each made a
/// [`RelationRef`] only as it is written.
struct RunRelations {
    links: [Arc<Vec<Link>>; 4],
    stated: Vec<crate::relations::Stated>,
}

impl tongban_store::Rows<RelationRef<'static>> for RunRelations {
    fn len(&self) -> usize {
        self.stated.len()
    }
    fn row(&self, i: usize) -> RelationRef<'static> {
        self.stated[i].of(self.links.each_ref().map(|l| l.as_slice()))
    }
}

/// The writing side of [`build_all`]: each library and then the relations, in the order they
/// come, one at a time. Stops at the first failure. Returns the libraries' summaries with their
/// run ids, and the seconds each write took.
async fn write_in_order(
    store: &dyn Store,
    mut from_builder: tokio::sync::mpsc::Receiver<Write>,
    progress: &dyn Progress,
) -> Result<(Vec<Summary>, Vec<(String, f64)>)> {
    let mut summaries = Vec::new();
    let mut seconds = Vec::new();
    while let Some(write) = from_builder.recv().await {
        let started = std::time::Instant::now();
        let name = match write {
            Write::Library(library) => {
                let name = format!("{} writing", library.summary.kind);
                progress.stage(&name);
                summaries.push(library.write(store).await?);
                name
            }
            Write::Relations(relations) => {
                progress.stage("relations writing");
                store.replace_relations_from(&relations).await?;
                "relations writing".to_string()
            }
        };
        seconds.push((name, started.elapsed().as_secs_f64()));
    }
    Ok((summaries, seconds))
}

/// Whether [`side_by_side`] runs its two sides at once here: on a multi-threaded runtime.
fn runs_side_by_side() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Runs `build` on a thread of its own while `write` runs on this one, when the runtime lets
/// this thread block (a multi-threaded runtime, whose other tasks move to another thread
/// meanwhile); otherwise runs `build` to its end and then `write`. A panic while building is
/// passed on once the writer has finished what it was given.
async fn side_by_side<A: Send, B>(
    build: impl FnOnce() -> A + Send,
    write: impl std::future::Future<Output = B>,
) -> (A, B) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if runs_side_by_side() => tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let builder = scope.spawn(build);
                let written = handle.block_on(write);
                match builder.join() {
                    Ok(built) => (built, written),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            })
        }),
        _ => {
            let built = build();
            (built, write.await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Packed golden records come back as they were, in order, through the writer's channel;
    /// a part that was not packed here is refused, never a panic.
    #[test]
    fn golden_records_come_back_as_they_were_packed() {
        let records: Vec<GoldenRecord> = (0..1_000)
            .map(|i| GoldenRecord {
                entity_key: format!("P{i:016x}"),
                record: format!(r#"{{"name":"张{i}","note":"{}"}}"#, "户".repeat(i % 7)),
            })
            .collect();
        let packed = PackedGolden::pack(&records);
        assert!(packed.size() < records.iter().map(|r| r.record.len()).sum::<usize>() / 4);
        assert_eq!(packed.unpack().as_deref(), Some(&records[..]));
        assert_eq!(PackedGolden::pack(&[]).unpack(), Some(vec![]));

        let (send, packed_parts) = std::sync::mpsc::channel();
        let parts = unpack_for_writer(packed_parts);
        let halves = [&records[..500], &records[500..]].map(PackedGolden::pack);
        send.send(halves.into()).unwrap();
        let mut back = Vec::new();
        while let Ok(GoldenPart::Records(part)) = parts.recv() {
            back.extend(part);
        }
        assert_eq!(back, records);

        // Parts that never come close the channel without an end.
        let (send, packed_parts) = std::sync::mpsc::channel::<Vec<PackedGolden>>();
        let parts = unpack_for_writer(packed_parts);
        drop(send);
        assert!(parts.recv().is_err());
        let cut = PackedGolden {
            packed: packed.packed[..packed.packed.len() / 2].to_vec(),
            unpacked: packed.unpacked,
        };
        assert_eq!(cut.unpack(), None);
        // A key that is not UTF-8, even as the last thing in a part, is refused, not dropped.
        let raw = |bytes: &[u8]| PackedGolden {
            packed: bytes.to_vec(),
            unpacked: None,
        };
        assert_eq!(
            raw(&[1, 0, 0, 0, b'P', 0, 0, 0, 0])
                .unpack()
                .map(|r| r.len()),
            Some(1)
        );
        assert_eq!(raw(&[1, 0, 0, 0, 0xff, 0, 0, 0, 0]).unpack(), None);
        assert_eq!(raw(&[1, 0, 0, 0, b'P']).unpack(), None);
    }

    proptest::proptest! {
        /// Unpacking any bytes gives records or `None`, never a panic.
        #[test]
        fn unpacking_any_bytes_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            claimed in proptest::option::of(0usize..256),
        ) {
            let part = PackedGolden { packed: bytes, unpacked: claimed };
            let _ = part.unpack();
        }
    }

    /// The builder waits only while a library already waits, goes on once the writer takes
    /// one, stops when the writer stops (waiting or not), and comes back to the stage it was in;
    /// one that may not wait never does.
    #[test]
    fn the_builder_waits_only_while_the_writer_is_busy() {
        let timed = Timed::new(&());
        timed.stage("building");
        let waiting = || timed.current().as_deref() == Some("waiting for the writer");
        let (to_writer, mut from_builder) = tokio::sync::mpsc::channel::<u32>(1);
        hand_to_writer(&to_writer, 1, true, &timed).unwrap();
        assert_eq!(timed.current().as_deref(), Some("building"), "no wait");

        std::thread::scope(|s| {
            let builder = s.spawn(|| hand_to_writer(&to_writer, 2, true, &timed));
            while !waiting() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            assert_eq!(from_builder.blocking_recv(), Some(1));
            builder.join().unwrap().unwrap();
        });
        assert_eq!(timed.current().as_deref(), Some("building"));

        std::thread::scope(|s| {
            let builder = s.spawn(|| hand_to_writer(&to_writer, 3, true, &timed));
            while !waiting() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            drop(from_builder);
            let stopped = builder.join().unwrap();
            assert!(matches!(stopped, Err(LibraryError::WriterStopped)));
        });
        assert_eq!(timed.current().as_deref(), Some("building"));
        let stopped = hand_to_writer(&to_writer, 4, true, &timed);
        assert!(matches!(stopped, Err(LibraryError::WriterStopped)));

        let (to_writer, _from_builder) = tokio::sync::mpsc::channel::<u32>(1);
        hand_to_writer(&to_writer, 1, false, &timed).unwrap();
        let full = hand_to_writer(&to_writer, 2, false, &timed);
        assert!(matches!(full, Err(LibraryError::WriterStopped)));
        assert_eq!(timed.current().as_deref(), Some("building"));
    }

    fn person(source: &str, key: &str, role: &str, name: &str, date: &str) -> Mention {
        Mention {
            source: intern(source),
            record_key: intern(key),
            role: intern(role),
            name: intern(name),
            recorded_on: intern(date),
            phone: intern(if role == "subject" { "13800000000" } else { "" }),
            ..Mention::default()
        }
    }

    /// The first page's mentions, scaled to the newest row id, size what the read collects:
    /// no regrowth for a store like its first page, and never less than the page itself.
    #[test]
    fn room_is_made_for_every_page_like_the_first() {
        let first = Mentions {
            records: 100,
            last_record_id: 200,
            persons: (0..300)
                .map(|i| person("s", &format!("k{i}"), "", "张三", "2020-01-01"))
                .collect(),
            ..Mentions::default()
        };
        let mut all = Mentions::default();
        all.reserve_like(&first, 20_000);
        assert!(
            all.persons.capacity() >= 300 * 100,
            "{}",
            all.persons.capacity()
        );
        assert!(all.persons.capacity() <= 300 * 100 * 11 / 10);
        assert_eq!(all.entities.capacity(), 0, "none seen, none made room for");
        // A bound below what the page covered (a read up to an earlier row) keeps the page's.
        let mut few = Mentions::default();
        few.reserve_like(&first, 50);
        assert!(few.persons.capacity() >= 300);
    }

    #[test]
    fn a_tenants_rented_room_is_household_context_for_their_other_records() {
        let persons = [
            person("floating_population", "F1", "subject", "黄昊斌", ""),
            person("housing_rentals", "Z1", "landlord", "杜娜佳", ""),
            person("housing_rentals", "Z1", "tenant", "黄昊斌", ""),
            person("grid_collection", "G1", "subject", "黄昊斌", ""),
        ];
        // The floating-population and grid records and the rental's tenant are one person (0);
        // the landlord is another (1).
        let labels = [0, 1, 0, 0];
        let place = |source: &str, key: &str, role: &str, room: &str| PlaceMention {
            source: intern(source),
            record_key: intern(key),
            role: intern(role),
            room_key: intern(room),
            ..PlaceMention::default()
        };
        let rented = "320576|兰桥花园|6|1|602";
        let places = [
            place(
                "floating_population",
                "F1",
                "residence",
                "320576|兰桥|6|1|602",
            ),
            place("housing_rentals", "Z1", "room", rented),
            place(
                "grid_collection",
                "G1",
                "residence",
                "320576|兰桥花园|6||602",
            ),
        ];
        let hints = household_hints(&persons, &labels, &places);
        assert!(hints[0].contains(&intern(rented)));
        assert!(hints[2].contains(&intern(rented)));
        assert!(
            !hints[1].is_empty(),
            "the tenant's own records, for the rental too"
        );
        let mut with_namesake = places.to_vec();
        with_namesake.push(place(
            "housing_rooms",
            "H1",
            "subject",
            "320576|兰桥新村|6|1|602",
        ));
        with_namesake[3].room_code = intern("H1");
        let no_hints = vec![Vec::new(); with_namesake.len()];
        let mut hints = household_hints(&persons, &labels, &with_namesake);
        hints.push(Vec::new());
        let (rooms, _) = place::cluster_rooms_with(&with_namesake, &hints);
        assert_eq!(rooms[0], rooms[1], "settled by the rental");
        assert_eq!(rooms[2], rooms[1]);
        assert_ne!(rooms[3], rooms[1]);
        let (rooms, _) = place::cluster_rooms_with(&with_namesake, &no_hints);
        assert_ne!(rooms[0], rooms[1], "兰桥 could be either compound");
    }

    #[test]
    fn building_records_and_premises_make_no_rooms() {
        let place = |source: &str, key: &str, role: &str, room: &str, code: &str| PlaceMention {
            source: intern(source),
            record_key: intern(key),
            role: intern(role),
            room_key: intern(room),
            building_key: intern("320576|青剑湖花园|1"),
            room_code: intern(code),
            community: intern("320576052001"),
            division: intern("320576052"),
        };
        let room = "320576|青剑湖花园|1|1|101";
        let places = [
            place("housing_rooms", "R1", "subject", room, "R1"),
            place("grid_collection", "G1", "residence", room, ""),
            place("housing_buildings", "B1", "subject", "", ""),
            place("market_entities", "C1", "premises", "", ""),
        ];
        let read = Read {
            records: 4,
            last_record_id: 4,
        };
        let libraries = group_places(&places, &[], read, &());
        let entities = |library: &Library| {
            let mut by_entity: HashMap<&str, Vec<&str>> = HashMap::new();
            for l in library.links.iter() {
                by_entity
                    .entry(l.entity_key.as_str())
                    .or_default()
                    .push(l.source_id.as_str());
            }
            let mut sources: Vec<Vec<&str>> = by_entity.into_values().collect();
            sources.iter_mut().for_each(|s| s.sort());
            sources
        };
        assert_eq!(
            entities(&libraries[0]),
            vec![vec!["grid_collection", "housing_rooms"]],
            "one room, of the room register's record and the residence"
        );
        let mut buildings = entities(&libraries[1]);
        buildings.iter_mut().for_each(|b| b.sort());
        assert_eq!(
            buildings,
            vec![vec![
                "grid_collection",
                "housing_buildings",
                "housing_rooms",
                "market_entities"
            ]]
        );
    }

    /// Golden records are written straight to text; spelled out, they must read exactly as
    /// the `serde_json::Value` trees they were built as before, members in the same order.
    #[test]
    fn golden_text_is_what_the_value_tree_gave() {
        let members = [
            person("grid_collection", "G1", "subject", "章伟", "2024-01-01"),
            person("police_household", "H1", "subject", "张伟", ""),
            person("health_births", "B1", "mother", "张伟", "2020-02-02"),
        ];
        let refs: Vec<&Mention> = members.iter().collect();
        let trust = Survivorship::new(crate::person::DEFAULT_TRUST);
        let text = crate::person::golden("P1", &refs, &trust);
        let kept = |value: &str, source: &str, key: &str, date: &str, votes: (usize, usize)| {
            let mut k =
                json!({"value": value, "source": source, "record_key": key, "role": "subject"});
            if !date.is_empty() {
                k["date"] = json!(date);
            }
            k["agreeing"] = json!(votes.0);
            k["disagreeing"] = json!(votes.1);
            k
        };
        let expected = json!({
            "key": "P1",
            "mentions": 3,
            "sources": ["grid_collection", "health_births", "police_household"],
            "fields": {
                "name": kept("张伟", "police_household", "H1", "", (2, 1)),
                "phone": kept("13800000000", "police_household", "H1", "", (2, 0)),
            }
        });
        assert_eq!(
            crate::golden_text::spelled_out(&text).unwrap(),
            Some(expected.to_string())
        );

        let place = |role: &str, source: &str, community: &str| PlaceMention {
            source: intern(source),
            role: intern(role),
            community: intern(community),
            ..PlaceMention::default()
        };
        let places = [
            place("residence", "police_household", "320506001001"),
            place("subject", "housing_rooms", ""),
            place("residence", "grid_collection", "320506001001"),
        ];
        let refs: Vec<&PlaceMention> = places.iter().collect();
        let expected = json!({
            "key": "R1", "address_key": "k", "community": "320506001001", "division": "",
            "mentions": 3,
            "by_role": {"residence": 2, "subject": 1},
            "sources": ["grid_collection", "housing_rooms", "police_household"]
        });
        assert_eq!(place_golden("R1", &refs, "k"), expected.to_string());
    }
}
