//! Incremental resolution: records ingested after the last run, resolved one at a time against
//! the libraries as they stand, without a full re-run.
//!
//! [`Incremental::load`] reads the records the latest runs saw, their links and the person and
//! entity models those runs learned, and builds in memory what resolving one more record needs:
//! a `tongban_resolution::incremental::Index` per linked kind (persons, legal entities), the
//! room and building keys with what is known about compounds and units, and each entity's
//! members and key. [`Incremental::resolve_record`] then decides one record's mentions of every
//! kind exactly as a batch run would decide them under the same model, and returns what changed
//! — links, golden records, entities that now go by another key, and the relations the record
//! states — which [`Incremental::run`] writes in one transaction per record.
//!
//! Keys follow the batch run's anchors (a valid citizen id or credit code, the most common room
//! or building key, else the first mention), so a cluster gets the key a re-run from scratch
//! would give it. What this deliberately does not do: retrain the model (the next batch run
//! does), forget the earlier version of a changed record (its mention stays among its entity's
//! members until the next batch run), or revisit a room whose most common key shifts.

use crate::build::{
    ENTITY_FIELDS, ENTITY_TRUST, MentionOf, Mentions, Progress, Summary, entity_field,
    place_anchor, place_golden, read_up_to, record_mentions, subjects,
};
use crate::golden_text::golden_text;
use crate::{LibraryError, Result, entity_key};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tongban_resolution::cluster::{NO_TAG, UnionFind};
use tongban_resolution::config::LibraryConfig;
use tongban_resolution::entity::{self, EntityMention, RegisteredNames};
use tongban_resolution::golden::{Candidate, Kept, Survivorship, Tally};
use tongban_resolution::incremental::Index;
use tongban_resolution::interned::Text;
use tongban_resolution::model::Model;
use tongban_resolution::person::{self, Mention};
use tongban_resolution::place::{self, PlaceContext, PlaceMention};
use tongban_store::{
    CleanedRecord, EntityLink, GoldenRecord, LibraryChanges, Relation, RelationRef, Store,
};

/// A mention's place in the store: (source, record key, role).
type At = (String, String, String);

/// Members and keys of the clusters of one kind, by cluster label.
#[derive(Default)]
struct Book {
    members: HashMap<u32, Vec<u32>>,
    keys: HashMap<u32, String>,
}

impl Book {
    /// The members of the given clusters.
    fn members_of(&self, labels: &[u32]) -> Vec<u32> {
        labels
            .iter()
            .filter_map(|l| self.members.get(l))
            .flatten()
            .copied()
            .collect()
    }

    /// Fold the clusters `joined` (and the new mention `mention`) into cluster `label` keyed
    /// `key`; returns the keys that went away as (old, new).
    fn merge(
        &mut self,
        joined: &[u32],
        label: u32,
        mention: Option<u32>,
        key: impl FnOnce(&[u32]) -> String,
    ) -> (Vec<(String, String)>, String) {
        let mut members: Vec<u32> = Vec::new();
        let mut old_keys: Vec<String> = Vec::new();
        for l in joined {
            members.extend(self.members.remove(l).unwrap_or_default());
            old_keys.extend(self.keys.remove(l));
        }
        members.extend(mention);
        members.sort_unstable();
        members.dedup();
        let new_key = key(&members);
        let renamed = old_keys
            .into_iter()
            .filter(|k| *k != new_key)
            .map(|k| (k, new_key.clone()))
            .collect();
        self.members.insert(label, members);
        self.keys.insert(label, new_key.clone());
        (renamed, new_key)
    }
}

/// A kind resolved by the probabilistic linker: persons or legal entities.
struct Linked<M> {
    prefix: &'static str,
    /// How a cluster's cannot-link value anchors its key ("id:" or "code:").
    tag_anchor: &'static str,
    mentions: Vec<M>,
    /// The index row of each mention (entities share a row among identical mentions).
    row_of: Vec<u32>,
    /// Distinct mentions → their row, where identical mentions share one.
    distinct: Option<HashMap<String, u32>>,
    index: Index,
    book: Book,
}

fn mention_anchor<M: MentionOf>(m: &M) -> String {
    let (s, k, r) = m.at();
    format!("mention:{s}|{k}|{r}")
}

fn at_of<M: MentionOf>(m: &M) -> At {
    let (s, k, r) = m.at();
    (s.to_string(), k.to_string(), r.to_string())
}

/// What adding one mention to a kind did.
struct Added {
    /// The clusters the mention joined, by their labels before.
    joined: Vec<u32>,
    key: String,
    renamed: Vec<(String, String)>,
    label: u32,
    /// Whether the mention started an entity of its own.
    new_entity: bool,
}

impl<M: MentionOf + Clone> Linked<M> {
    /// Build from the mentions a run saw and the links it wrote. `rows` gives each mention's
    /// index row and the distinct rows' table values come from `table`.
    #[allow(clippy::too_many_arguments)]
    fn build(
        prefix: &'static str,
        tag_anchor: &'static str,
        mentions: Vec<M>,
        row_of: Vec<u32>,
        distinct: Option<HashMap<String, u32>>,
        table: tongban_resolution::table::Table,
        settings: tongban_resolution::linker::Settings,
        model: Model,
        links: &HashMap<At, String>,
    ) -> Linked<M> {
        // Rows linked to the same stored entity form one cluster; a row whose mention has no
        // link (it came after the run) stays alone.
        let rows = table.len();
        let mut label_of_key: HashMap<&str, u32> = HashMap::new();
        let mut labels: Vec<u32> = (0..rows as u32).collect();
        let mut row_seen = vec![false; rows];
        for (m, &row) in mentions.iter().zip(&row_of) {
            if std::mem::replace(&mut row_seen[row as usize], true) {
                continue;
            }
            if let Some(key) = links.get(&at_of(m)) {
                labels[row as usize] = *label_of_key.entry(key.as_str()).or_insert(row);
            }
        }
        let mut index = Index::build(table, &labels, settings, model);
        let mut book = Book::default();
        for (i, (m, &row)) in mentions.iter().zip(&row_of).enumerate() {
            let label = index.label(row);
            book.members.entry(label).or_default().push(i as u32);
            if let Some(key) = links.get(&at_of(m)) {
                book.keys.entry(label).or_insert_with(|| key.clone());
            }
        }
        // A cluster without any stored link (none should exist) gets the key a run would give.
        let unkeyed: Vec<u32> = book
            .members
            .keys()
            .filter(|l| !book.keys.contains_key(l))
            .copied()
            .collect();
        for label in unkeyed {
            let first = book.members[&label][0] as usize;
            let anchor = match index.cluster_tag(label) {
                Some(tag) => format!("{tag_anchor}{tag}"),
                None => mention_anchor(&mentions[first]),
            };
            book.keys.insert(label, entity_key(prefix, &anchor));
        }
        Linked {
            prefix,
            tag_anchor,
            mentions,
            row_of,
            distinct,
            index,
            book,
        }
    }

    /// Add one mention with its table values; `distinct` is its identity where identical
    /// mentions share a row.
    fn add(&mut self, m: M, values: &[&str], distinct: Option<String>) -> Added {
        let mention = self.mentions.len() as u32;
        let existing = match (&self.distinct, &distinct) {
            (Some(map), Some(d)) => map.get(d).copied(),
            _ => None,
        };
        let (row, joined) = match existing {
            Some(row) => {
                let label = self.index.label(row);
                (row, vec![label])
            }
            None => {
                let d = self.index.resolve(&mention.to_string(), values);
                if let (Some(map), Some(key)) = (&mut self.distinct, distinct) {
                    map.insert(key, d.row);
                }
                (d.row, d.joined)
            }
        };
        self.mentions.push(m);
        self.row_of.push(row);
        let label = self.index.label(row);
        let tag = self.index.cluster_tag(row).map(str::to_string);
        let (prefix, tag_anchor) = (self.prefix, self.tag_anchor);
        let mentions = &self.mentions;
        let (renamed, key) = self.book.merge(&joined, label, Some(mention), |members| {
            let anchor = match &tag {
                Some(tag) => format!("{tag_anchor}{tag}"),
                None => mention_anchor(&mentions[members[0] as usize]),
            };
            entity_key(prefix, &anchor)
        });
        Added {
            new_entity: joined.is_empty(),
            joined,
            key,
            renamed,
            label,
        }
    }

    fn members(&self, label: u32) -> Vec<&M> {
        self.book
            .members
            .get(&label)
            .map(|ms| ms.iter().map(|&i| &self.mentions[i as usize]).collect())
            .unwrap_or_default()
    }
}

/// A kind grouped by keys: rooms (room key or room code) and buildings (building key).
struct Grouped {
    kind: &'static str,
    prefix: &'static str,
    clusters: UnionFind,
    /// Grouping key → the first row with it.
    first: HashMap<String, u32>,
    book: Book,
}

impl Grouped {
    fn new(kind: &'static str, prefix: &'static str) -> Grouped {
        Grouped {
            kind,
            prefix,
            clusters: UnionFind::new(Vec::new()),
            first: HashMap::new(),
            book: Book::default(),
        }
    }

    /// Add row `row` (its index in the place mentions) grouped by `keys`; returns the labels of
    /// the clusters it joined and its label.
    fn group(&mut self, row: u32, keys: &[String]) -> (Vec<u32>, u32) {
        let pushed = self.clusters.push(NO_TAG);
        debug_assert_eq!(pushed, row);
        let mut joined = Vec::new();
        for key in keys.iter().filter(|k| !k.is_empty()) {
            match self.first.get(key) {
                Some(&first) => {
                    let label = self.clusters.smallest(first);
                    if self.clusters.find(first) != self.clusters.find(row) {
                        self.clusters.union(first, row);
                        if !joined.contains(&label) {
                            joined.push(label);
                        }
                    }
                }
                None => {
                    self.first.insert(key.clone(), row);
                }
            }
        }
        (joined, self.clusters.smallest(row))
    }

    /// Join an existing row's cluster with the cluster of `key` (or make the row the key's
    /// first); returns the labels of both clusters before, when they were two.
    fn attach(&mut self, row: u32, key: &str) -> Option<(u32, u32)> {
        match self.first.get(key) {
            Some(&first) if self.clusters.find(first) != self.clusters.find(row) => {
                let labels = (self.clusters.smallest(first), self.clusters.smallest(row));
                self.clusters.union(first, row);
                Some(labels)
            }
            Some(_) => None,
            None => {
                self.first.insert(key.to_string(), row);
                None
            }
        }
    }
}

/// Whether a room key names its unit (county|compound|building|unit|room).
fn has_unit(key: &str) -> bool {
    place::room_key_parts(key).is_some_and(|[_, _, _, unit, _]| !unit.is_empty())
}

/// A room key with a unit (county|compound|building|unit|room) without its compound:
/// `county|building|unit|room`; with `short`, only when the compound may be written without its
/// generic ending.
fn room_without_compound(key: &str, short: bool) -> Option<String> {
    let [county, compound, building, unit, room] = place::room_key_parts(key)?;
    let compound_fits = !short || !place::written_in_full(compound);
    (!compound.is_empty() && !unit.is_empty() && compound_fits)
        .then(|| format!("{county}|{building}|{unit}|{room}"))
}

/// The same room key without its unit.
fn without_unit(key: &str) -> Option<String> {
    let [county, compound, building, unit, room] = place::room_key_parts(key)?;
    (!unit.is_empty()).then(|| format!("{county}|{compound}|{building}||{room}"))
}

/// A legal entity's golden record kept up to date one mention at a time: a large employer is
/// named by thousands of employees' records, and rebuilding its record from all of them for
/// each new one would dominate the time a record takes. Gives exactly the batch run's record.
#[derive(Default)]
struct EntityTally {
    fields: Vec<Tally>,
    mentions: usize,
    sources: std::collections::BTreeSet<&'static str>,
}

impl EntityTally {
    fn add(&mut self, trust: &Survivorship, m: &EntityMention) {
        self.fields.resize_with(ENTITY_FIELDS.len(), Tally::default);
        for (i, tally) in self.fields.iter_mut().enumerate() {
            trust.add(
                tally,
                &Candidate {
                    value: entity_field(m, i),
                    source: m.source.as_str(),
                    record_key: m.record_key.as_str(),
                    role: m.role.as_str(),
                    date: m.founded.as_str(),
                },
            );
        }
        self.mentions += 1;
        self.sources.insert(m.source.as_str());
    }

    fn merge(&mut self, trust: &Survivorship, other: EntityTally) {
        self.fields.resize_with(ENTITY_FIELDS.len(), Tally::default);
        for (into, from) in self.fields.iter_mut().zip(other.fields) {
            trust.merge(into, from);
        }
        self.mentions += other.mentions;
        self.sources.extend(other.sources);
    }

    fn golden(&self, key: &str, trust: &Survivorship) -> String {
        let fields: Vec<(&str, Kept)> = ENTITY_FIELDS
            .iter()
            .zip(&self.fields)
            .filter_map(|(name, tally)| Some((*name, trust.kept(tally)?)))
            .collect();
        let sources: Vec<&str> = self.sources.iter().copied().collect();
        golden_text(key, self.mentions, &sources, &fields)
    }
}

/// Latency of each record, resolved (in memory) and stored.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latencies {
    pub decide: Vec<Duration>,
    pub total: Vec<Duration>,
}

/// The value at quantile `q` (0–1) of some durations, in milliseconds.
pub fn quantile_ms(values: &[Duration], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v: Vec<Duration> = values.to_vec();
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1000.0
}

/// What an incremental run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub records: u64,
    /// Mentions resolved, per kind.
    pub mentions: HashMap<String, u64>,
    /// Entities started by the new records, per kind.
    pub new_entities: HashMap<String, u64>,
    /// Entities merged into another (or re-keyed) because of the new records, per kind.
    pub renamed: HashMap<String, u64>,
    pub relations: u64,
    /// Entities indexed when the run began, per kind.
    pub indexed: HashMap<String, u64>,
    #[serde(skip)]
    pub latencies: Latencies,
    pub last_record_id: i64,
}

/// The libraries in memory, ready to take new records one at a time.
pub struct Incremental {
    trust: Survivorship,
    entity_trust: Survivorship,
    subjects: HashMap<String, String>,
    persons: Linked<Mention>,
    entities: Linked<EntityMention>,
    /// Golden-record tallies of the entities new records have named so far, by cluster label.
    entity_tallies: HashMap<u32, EntityTally>,
    /// Normalised entity names and the valid credit codes that go by them.
    registered_names: RegisteredNames,
    /// Every place mention; `room_key` holds the room key it stands for ("" when ambiguous).
    places: Vec<PlaceMention>,
    /// Place mentions whose room is still ambiguous (an address without its unit in a building
    /// with several rooms of that number, or a compound written without its ending that two
    /// compounds with that room could be), with the key as written: household context arriving
    /// later may still settle them, as may a record naming the room in full in just one of the
    /// compounds, as in a run from scratch.
    unsettled: HashMap<u32, Text>,
    /// The unsettled mentions (some may have been settled since) by their key without the
    /// compound (`county|building|unit|room`), each with its building key as written (before
    /// it was read as some compound's): a record naming such a room is the one that can settle
    /// them ([`Incremental::settle_from_new_rooms`]).
    unsettled_by_room: HashMap<String, Vec<(u32, Text)>>,
    /// The person (a mention index) whose home each place mention tells of, if any (its
    /// record's subject, or a rental's tenant: `place::household_person_role`), and the place
    /// mentions of each such person.
    person_of_place: Vec<u32>,
    places_of_person: HashMap<u32, Vec<u32>>,
    context: PlaceContext,
    rooms: Grouped,
    buildings: Grouped,
    /// The run each kind's new links are recorded under, and its summary.
    runs: HashMap<&'static str, (i64, Summary)>,
    /// The last record resolved.
    cursor: i64,
}

fn model_of(summary: &Summary, kind: &str) -> Result<Model> {
    if summary.m.is_empty() || summary.u.is_empty() {
        return Err(LibraryError::Truth {
            file: format!("{kind} library"),
            message: "the latest run did not store its model; run `tongban resolve` once more"
                .into(),
        });
    }
    Ok(Model {
        m: summary.m.clone(),
        u: summary.u.clone(),
        lambda: summary.lambda,
    })
}

async fn all_links(store: &dyn Store, kind: &str) -> Result<HashMap<At, String>> {
    let mut out = HashMap::new();
    let mut pages = tongban_store::LinkPages::new(kind, 50_000);
    while let Some(page) = pages.next(store).await? {
        for l in page {
            out.insert((l.source_id, l.record_key, l.role), l.entity_key);
        }
    }
    Ok(out)
}

/// The identity under which identical entity mentions share a row (as in the batch run).
fn entity_identity(m: &EntityMention) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        m.valid_code, m.code, m.name_key, m.address
    )
}

fn row_values(t: &tongban_resolution::table::Table) -> Vec<&str> {
    t.columns.iter().map(|c| c.get(0)).collect()
}

impl Incremental {
    /// Read the libraries the latest runs left and index them.
    pub async fn load(
        store: &dyn Store,
        trust: Survivorship,
        progress: &dyn Progress,
    ) -> Result<Incremental> {
        let mut runs: HashMap<&'static str, (i64, Summary)> = HashMap::new();
        for kind in tongban_store::RESOLUTION_KINDS {
            let run = store
                .latest_resolution(kind)
                .await?
                .ok_or_else(|| LibraryError::Truth {
                    file: format!("{kind} library"),
                    message: "no run yet: run `tongban resolve` first".into(),
                })?;
            let summary: Summary =
                serde_json::from_str(&run.summary).map_err(|e| LibraryError::Truth {
                    file: format!("resolution run {}", run.id),
                    message: format!("its summary cannot be read: {e}"),
                })?;
            runs.insert(kind, (run.id, summary));
        }
        // Every kind resumes from the record the least advanced run saw: a record already
        // resolved is resolved again to the same decision, and upserted.
        let cursor = runs
            .values()
            .map(|(_, s)| s.last_record_id)
            .min()
            .unwrap_or(0);
        if cursor == 0 {
            return Err(LibraryError::Truth {
                file: "libraries".into(),
                message: "the latest runs did not record where they stopped reading; run `tongban resolve` once more".into(),
            });
        }
        // New records are blocked and linked under the configuration the runs used.
        let text = &runs["person"].1.config;
        let config = if text.is_empty() {
            LibraryConfig::default()
        } else {
            LibraryConfig::parse("the latest person run's configuration", text).map_err(|e| {
                LibraryError::Truth {
                    file: "person library".into(),
                    message: e.to_string(),
                }
            })?
        };
        progress.stage("reading");
        let Mentions {
            persons,
            entities,
            places: mut place_mentions,
            ..
        } = read_up_to(store, cursor, progress).await?;
        progress.stage("indexing persons");
        let (person_of_place, places_of_person) = household(&persons, &place_mentions, 0);
        let person_links = all_links(store, "person").await?;
        let person_table = person::table(&persons);
        let rows: Vec<u32> = (0..persons.len() as u32).collect();
        let persons = Linked::build(
            "P",
            "id:",
            persons,
            rows,
            None,
            person_table,
            config.person_settings(),
            model_of(&runs["person"].1, "person")?,
            &person_links,
        );
        drop(person_links);

        progress.stage("indexing entities");
        let entity_links = all_links(store, "entity").await?;
        let mut distinct: HashMap<String, u32> = HashMap::new();
        let mut representatives: Vec<EntityMention> = Vec::new();
        let rows: Vec<u32> = entities
            .iter()
            .map(|m| {
                let next = representatives.len() as u32;
                let row = *distinct.entry(entity_identity(m)).or_insert(next);
                if row == next {
                    representatives.push(m.clone());
                }
                row
            })
            .collect();
        let mut registered_names = RegisteredNames::default();
        for m in &entities {
            registered_names.add(m);
        }
        let entity_table = entity::table(&representatives);
        let entities = Linked::build(
            "E",
            "code:",
            entities,
            rows,
            Some(distinct),
            entity_table,
            config.entity_settings(),
            model_of(&runs["entity"].1, "entity")?,
            &entity_links,
        );
        drop(entity_links);

        progress.stage("indexing places");
        place::resolve_compound_aliases(&mut place_mentions);
        let context = PlaceContext::from_mentions(&place_mentions);
        let mut rooms = Grouped::new("room", "R");
        let mut buildings = Grouped::new("building", "B");
        let room_links = all_links(store, "room").await?;
        let building_links = all_links(store, "building").await?;
        let mut unsettled: HashMap<u32, Text> = HashMap::new();
        let effective: Vec<Option<Text>> = place_mentions
            .iter()
            .map(|m| context.effective_room_key(m))
            .collect();
        for (i, m) in place_mentions.iter().enumerate() {
            if effective[i].is_none() && !m.room_key.is_empty() && m.names_room() {
                unsettled.insert(i as u32, m.room_key);
            }
        }
        for (i, (m, room_key)) in place_mentions.iter_mut().zip(effective).enumerate() {
            let row = i as u32;
            let at = at_of(m);
            // The batch run's grouping is taken as stored: a mention joins the room its link
            // names, and its keys point there for the mentions to come.
            let room_key = room_key.unwrap_or_default();
            let code = if m.room_code.is_empty() {
                String::new()
            } else {
                format!("code:{}", m.room_code)
            };
            let linked = |links: &HashMap<At, String>| {
                links
                    .get(&at)
                    .map(|k| format!("entity:{k}"))
                    .unwrap_or_default()
            };
            rooms.group(row, &[linked(&room_links), room_key.to_string(), code]);
            m.room_key = room_key;
            buildings.group(row, &[linked(&building_links), m.building_key.to_string()]);
        }
        for (grouped, links) in [(&mut rooms, &room_links), (&mut buildings, &building_links)] {
            grouped.book.members.clear();
            for (i, m) in place_mentions.iter().enumerate() {
                let label = grouped.clusters.smallest(i as u32);
                grouped
                    .book
                    .members
                    .entry(label)
                    .or_default()
                    .push(i as u32);
                if let Some(key) = links.get(&at_of(m)) {
                    grouped
                        .book
                        .keys
                        .entry(label)
                        .or_insert_with(|| key.clone());
                }
            }
        }
        let mut libraries = Incremental {
            trust,
            entity_trust: Survivorship::new(ENTITY_TRUST),
            subjects: subjects(store).await?,
            persons,
            entities,
            entity_tallies: HashMap::new(),
            registered_names,
            places: place_mentions,
            unsettled,
            unsettled_by_room: HashMap::new(),
            person_of_place,
            places_of_person,
            context,
            rooms,
            buildings,
            runs,
            cursor,
        };
        libraries.reserve();
        // Mentions the batch run settled from household context take the key it gave them
        // (their link already puts them in that room), so that anchors count them as it did.
        let pending: Vec<u32> = libraries.unsettled.keys().copied().collect();
        for row in pending {
            let person = libraries.person_of_place[row as usize];
            if person == NO_PERSON {
                continue;
            }
            let label = libraries
                .persons
                .index
                .label(libraries.persons.row_of[person as usize]);
            let hints = libraries.full_room_keys(label);
            let mut m = libraries.places[row as usize].clone();
            m.room_key = libraries.unsettled[&row];
            if let Some(key) = place::room_key_from_hints(&libraries.context, &m, &hints) {
                libraries.places[row as usize].room_key = key;
                libraries.unsettled.remove(&row);
            }
        }
        let still: Vec<(u32, Text)> = libraries
            .unsettled
            .iter()
            .map(|(&row, &key)| (row, key))
            .collect();
        for (row, key) in still {
            let building = libraries.places[row as usize].building_key;
            libraries.index_unsettled(row, key, building);
        }
        Ok(libraries)
    }

    /// Remember an unsettled mention under its key without the compound, when its compound is
    /// written without its ending (the only kind a later record can settle without household
    /// context: more units of a building only make a room without its unit more ambiguous).
    fn index_unsettled(&mut self, row: u32, written: Text, building: Text) {
        if let Some(room) = room_without_compound(written.as_str(), true) {
            self.unsettled_by_room
                .entry(room)
                .or_default()
                .push((row, building));
        }
    }

    /// Settle the unsettled mentions that a record's room keys (`keys`, full, with a unit) now
    /// decide: a compound written without its ending fits several compounds, and the new record
    /// makes just one of them known to have that room, so a run from scratch would read the
    /// mention as that room, and its building (as written, before it was perhaps read as the
    /// only compound then known to have that building) as that compound's. The building moves
    /// only when the mention is alone in the building it was grouped in: union-find cannot take
    /// it out of a group with other mentions, so there it stays until the next full run.
    fn settle_from_new_rooms(
        &mut self,
        keys: &[Text],
        rooms: &mut LibraryChanges,
        buildings: &mut LibraryChanges,
        report: &mut Report,
    ) {
        for key in keys {
            // Any compound name: one ending in 苑 alone may be written in full too.
            let Some(room) = room_without_compound(key.as_str(), false) else {
                continue;
            };
            let Some(rows) = self.unsettled_by_room.get_mut(&room) else {
                continue;
            };
            rows.retain(|(r, _)| self.unsettled.contains_key(r));
            let rows = rows.clone();
            for (row, written_building) in rows {
                let written = self.unsettled[&row];
                let mut m = self.places[row as usize].clone();
                m.room_key = written;
                m.building_key = written_building;
                self.context.rewrite_place(&mut m);
                if m.room_key == written {
                    continue;
                }
                let Some(settled) = self.context.effective_room_key(&m) else {
                    continue;
                };
                self.unsettled.remove(&row);
                self.places[row as usize].room_key = settled;
                self.attach_room(row, settled, rooms, report);
                if m.building_key != self.places[row as usize].building_key {
                    self.move_lone_building(row, m.building_key, buildings, report);
                }
            }
            if let Some(rows) = self.unsettled_by_room.get_mut(&room) {
                rows.retain(|(r, _)| self.unsettled.contains_key(r));
                if rows.is_empty() {
                    self.unsettled_by_room.remove(&room);
                }
            }
        }
    }

    /// A place mention alone in its building cluster moves to the building `key` (joining the
    /// cluster of that key, or taking the key), and the changed building is written. A mention
    /// grouped with others stays (see [`Incremental::settle_from_new_rooms`]).
    fn move_lone_building(
        &mut self,
        row: u32,
        key: Text,
        changes: &mut LibraryChanges,
        report: &mut Report,
    ) {
        let label = self.buildings.clusters.smallest(row);
        if self.buildings.book.members.get(&label).map(Vec::len) != Some(1) {
            return;
        }
        let old = self.places[row as usize].building_key;
        // Later mentions written with the short key must not find this row under it.
        if self.buildings.first.get(old.as_str()) == Some(&row) {
            self.buildings.first.remove(old.as_str());
        }
        self.places[row as usize].building_key = key;
        let joined = match self.buildings.attach(row, key.as_str()) {
            Some((a, b)) => vec![a, b],
            None => vec![label],
        };
        let label = self.buildings.clusters.smallest(row);
        let (added, golden) = regroup(&mut self.buildings, &self.places, &joined, label, None);
        *report.renamed.entry("building".into()).or_default() += added.renamed.len() as u64;
        push_change(changes, None, added, golden);
    }

    /// A place mention that now stands for room `key` joins that room's cluster, and the
    /// changed room is written.
    fn attach_room(
        &mut self,
        row: u32,
        key: Text,
        changes: &mut LibraryChanges,
        report: &mut Report,
    ) {
        if let Some((a, b)) = self.rooms.attach(row, key.as_str()) {
            let label = self.rooms.clusters.smallest(row);
            let (added, golden) = regroup(&mut self.rooms, &self.places, &[a, b], label, None);
            *report.renamed.entry("room".into()).or_default() += added.renamed.len() as u64;
            push_change(changes, None, added, golden);
        }
    }

    /// Allocate room for a tenth more mentions of every kind (at least 10,000) ahead: a vector
    /// of a million mentions that doubles when full stalls the record that fills it for as long
    /// as the copy takes (two seconds were measured at a million people).
    fn reserve(&mut self) {
        let room = |n: usize| (n / 10).max(10_000);
        let persons = room(self.persons.mentions.len());
        self.persons.mentions.reserve_exact(persons);
        self.persons.row_of.reserve_exact(persons);
        self.persons.index.reserve(persons);
        let entities = room(self.entities.mentions.len());
        self.entities.mentions.reserve_exact(entities);
        self.entities.row_of.reserve_exact(entities);
        self.entities.index.reserve(entities);
        let places = room(self.places.len());
        self.places.reserve_exact(places);
        self.person_of_place.reserve_exact(places);
        self.rooms.clusters.reserve(places);
        self.buildings.clusters.reserve(places);
        for book in [
            &mut self.persons.book,
            &mut self.entities.book,
            &mut self.rooms.book,
            &mut self.buildings.book,
        ] {
            book.members.reserve(persons);
            book.keys.reserve(persons);
        }
        if let Some(distinct) = &mut self.entities.distinct {
            distinct.reserve(entities);
        }
        self.rooms.first.reserve(places);
        self.buildings.first.reserve(places);
        self.places_of_person.reserve(persons);
        self.registered_names.reserve(entities);
    }

    /// The full room keys (with a unit) where the person of cluster `label` lives, is
    /// registered or rents according to their records: the household context of the batch run.
    fn full_room_keys(&self, label: u32) -> Vec<Text> {
        let mut keys: Vec<Text> = Vec::new();
        for person in self.persons.book.members.get(&label).into_iter().flatten() {
            for &row in self.places_of_person.get(person).into_iter().flatten() {
                let p = &self.places[row as usize];
                if place::tells_home(p.role.as_str())
                    && has_unit(p.room_key.as_str())
                    && !keys.contains(&p.room_key)
                {
                    keys.push(p.room_key);
                }
            }
        }
        keys
    }

    /// Settle the ambiguous place mentions of a person's records that the person's household
    /// context now decides, as a run from scratch would.
    fn settle_from_household(
        &mut self,
        subject: u32,
        changes: &mut LibraryChanges,
        report: &mut Report,
    ) {
        let label = self
            .persons
            .index
            .label(self.persons.row_of[subject as usize]);
        let mut rows: Vec<u32> = Vec::new();
        for person in self.persons.book.members.get(&label).into_iter().flatten() {
            for &row in self.places_of_person.get(person).into_iter().flatten() {
                if self.unsettled.contains_key(&row) {
                    rows.push(row);
                }
            }
        }
        if rows.is_empty() {
            return;
        }
        let hints = self.full_room_keys(label);
        for row in rows {
            let mut m = self.places[row as usize].clone();
            m.room_key = self.unsettled[&row];
            let Some(key) = place::room_key_from_hints(&self.context, &m, &hints) else {
                continue;
            };
            self.unsettled.remove(&row);
            self.places[row as usize].room_key = key;
            self.attach_room(row, key, changes, report);
        }
    }

    /// The golden record of the entity a mention was just added to, from the tallies of the
    /// clusters it joined (built from their members the first time).
    fn entity_golden(&mut self, added: &Added) -> String {
        let trust = &self.entity_trust;
        let newest = self.entities.mentions.len() - 1;
        let mut tallies: Vec<EntityTally> = added
            .joined
            .iter()
            .filter_map(|l| self.entity_tallies.remove(l))
            .collect();
        let tally = if tallies.len() == added.joined.len() && !tallies.is_empty() {
            let mut tally = tallies.swap_remove(0);
            for other in tallies {
                tally.merge(trust, other);
            }
            tally.add(trust, &self.entities.mentions[newest]);
            tally
        } else {
            let mut tally = EntityTally::default();
            for m in self.entities.members(added.label) {
                tally.add(trust, m);
            }
            tally
        };
        let golden = tally.golden(&added.key, trust);
        self.entity_tallies.insert(added.label, tally);
        golden
    }

    /// Entities indexed, per kind.
    pub fn indexed(&self) -> HashMap<String, u64> {
        [
            ("person", self.persons.book.keys.len()),
            ("entity", self.entities.book.keys.len()),
            ("room", self.rooms.book.keys.len()),
            ("building", self.buildings.book.keys.len()),
        ]
        .into_iter()
        .map(|(k, n)| (k.to_string(), n as u64))
        .collect()
    }

    /// Resolve one record: every person, entity and place it mentions. Returns the changes to
    /// store and the relations the record states.
    pub fn resolve_record(
        &mut self,
        record: &CleanedRecord,
        report: &mut Report,
    ) -> (Vec<LibraryChanges>, Vec<Relation>) {
        let (persons, entities, places) = record_mentions(&self.subjects, record);
        let mut person_changes = LibraryChanges {
            kind: "person".into(),
            ..Default::default()
        };
        // The record's own person and, in a rental, its tenant, whose other records give
        // household context to its places (see `place::household_person_role`).
        let (mut subject, mut tenant) = (NO_PERSON, NO_PERSON);
        for m in persons {
            let t = person::table(std::slice::from_ref(&m));
            let at = at_of(&m);
            if at.2 == "subject" {
                subject = self.persons.mentions.len() as u32;
            } else if at.2 == "tenant" {
                tenant = self.persons.mentions.len() as u32;
            }
            let added = self.persons.add(m, &row_values(&t), None);
            let golden =
                crate::person::golden(&added.key, &self.persons.members(added.label), &self.trust);
            count(report, "person", &added);
            push_change(&mut person_changes, Some(at), added, golden);
        }

        let mut entity_changes = LibraryChanges {
            kind: "entity".into(),
            ..Default::default()
        };

        for m in entities {
            self.registered_names.add(&m);
            let values = self.registered_names.row(&m);
            let at = at_of(&m);
            let identity = entity_identity(&m);
            let added = self.entities.add(m, &values, Some(identity));
            let golden = self.entity_golden(&added);
            count(report, "entity", &added);
            push_change(&mut entity_changes, Some(at), added, golden);
        }

        let mut room_changes = LibraryChanges {
            kind: "room".into(),
            ..Default::default()
        };
        let mut building_changes = LibraryChanges {
            kind: "building".into(),
            ..Default::default()
        };
        let first_place = self.places.len();
        for mut m in places {
            self.context.add_names(&m);
            let written_building = m.building_key;
            self.context.rewrite_place(&mut m);
            let first_unit = self.context.add_units(&m);
            let row = self.places.len() as u32;
            let room_key = match self.context.effective_room_key(&m) {
                Some(k) => k,
                None => {
                    if !m.room_key.is_empty() && m.names_room() {
                        self.unsettled.insert(row, m.room_key);
                        self.index_unsettled(row, m.room_key, written_building);
                    }
                    Text::EMPTY
                }
            };
            let code = if m.room_code.is_empty() {
                String::new()
            } else {
                format!("code:{}", m.room_code)
            };
            // The first unit known for a building's room number settles every mention of that
            // room written without its unit: they are one room now.
            let unitless = first_unit
                .then(|| without_unit(&room_key))
                .flatten()
                .unwrap_or_default();
            m.room_key = room_key;
            let at = at_of(&m);
            let building_key = m.building_key;
            let names_room = m.names_room();
            let person = match place::household_person_role(m.role.as_str()) {
                "tenant" => tenant,
                _ => subject,
            };
            self.places.push(m);
            self.person_of_place.push(person);
            if person != NO_PERSON {
                self.places_of_person.entry(person).or_default().push(row);
            }
            // Premises and building records name a building only and stay out of the room
            // library.
            if !names_room {
                self.rooms.clusters.push(NO_TAG);
            } else {
                let (joined, label) = self
                    .rooms
                    .group(row, &[room_key.to_string(), code, unitless.clone()]);
                if !unitless.is_empty() {
                    let members = self.rooms.book.members_of(&joined);
                    for i in members {
                        if self.places[i as usize].room_key.as_str() == unitless {
                            self.places[i as usize].room_key = room_key;
                        }
                    }
                }
                let added = regroup(&mut self.rooms, &self.places, &joined, label, Some(row));
                count(report, "room", &added.0);
                push_change(&mut room_changes, Some(at.clone()), added.0, added.1);
            }
            let (joined, label) = self.buildings.group(row, &[building_key.to_string()]);
            let added = regroup(&mut self.buildings, &self.places, &joined, label, Some(row));
            count(report, "building", &added.0);
            push_change(&mut building_changes, Some(at), added.0, added.1);
        }
        let full_rooms: Vec<Text> = self.places[first_place..]
            .iter()
            .filter(|m| m.names_room() && has_unit(m.room_key.as_str()))
            .map(|m| m.room_key)
            .collect();
        if !self.unsettled_by_room.is_empty() && !full_rooms.is_empty() {
            self.settle_from_new_rooms(
                &full_rooms,
                &mut room_changes,
                &mut building_changes,
                report,
            );
        }
        for person in [subject, tenant].into_iter().filter(|&p| p != NO_PERSON) {
            self.settle_from_household(person, &mut room_changes, report);
        }
        let borrowed = EntityLink::all_borrowed;
        let relations = crate::relations::derive(
            &borrowed(&person_changes.links),
            &borrowed(&entity_changes.links),
            &borrowed(&room_changes.links),
            &borrowed(&building_changes.links),
        )
        .iter()
        .map(RelationRef::to_relation)
        .collect::<Vec<Relation>>();
        report.records += 1;
        report.relations += relations.len() as u64;
        report.last_record_id = record.id;
        self.cursor = record.id;
        (
            vec![
                person_changes,
                entity_changes,
                room_changes,
                building_changes,
            ],
            relations,
        )
    }

    /// Resolve every record stored after the cursor, one at a time, each written in its own
    /// transaction; then record an incremental run per kind.
    pub async fn run(&mut self, store: &dyn Store, progress: &dyn Progress) -> Result<Report> {
        const PAGE: i64 = 2_000;
        let started = tongban_store::now_millis();
        let mut report = Report {
            indexed: self.indexed(),
            last_record_id: self.cursor,
            ..Report::default()
        };
        progress.stage("resolving new records");
        loop {
            let page = store.all_current_cleaned(self.cursor, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for record in &page {
                let t0 = Instant::now();
                let (changes, relations) = self.resolve_record(record, &mut report);
                let decided = t0.elapsed();
                store.apply_library_changes(&changes, &relations).await?;
                report.latencies.decide.push(decided);
                report.latencies.total.push(t0.elapsed());
                progress.records(report.records);
            }
        }
        for kind in tongban_store::RESOLUTION_KINDS {
            let Some((_, base)) = self.runs.get(kind) else {
                continue;
            };
            let mut summary = base.clone();
            summary.mode = "incremental".into();
            summary.last_record_id = self.cursor;
            summary.records = report.records;
            let (links, entities) = store.library_counts(kind).await?;
            summary.mentions = links as u64;
            summary.entities = entities as u64;
            let text = serde_json::to_string(&summary).unwrap_or_default();
            let id = store
                .add_resolution_run(kind, started, &text, links, entities)
                .await?;
            summary.run_id = id;
            self.runs.insert(kind, (id, summary));
        }
        Ok(report)
    }
}

/// No person.
const NO_PERSON: u32 = u32::MAX;

/// The person (mention index, offset by `base`) whose home each place mention tells of (its
/// record's subject, or a rental's tenant), and the place mentions of each such person.
fn household(
    persons: &[Mention],
    places: &[PlaceMention],
    base: u32,
) -> (Vec<u32>, HashMap<u32, Vec<u32>>) {
    let by_record = crate::build::HouseholdPersons::new(persons, |i| base + i as u32);
    let mut of_person: HashMap<u32, Vec<u32>> = HashMap::new();
    let person_of_place = places
        .iter()
        .enumerate()
        .map(|(row, p)| match by_record.of(p) {
            Some(person) => {
                of_person.entry(person).or_default().push(row as u32);
                person
            }
            None => NO_PERSON,
        })
        .collect();
    (person_of_place, of_person)
}

/// Fold the clusters `joined` (and the new row, if any) of a place kind into cluster `label`:
/// its key by the batch run's anchor, the keys that went away, and its golden record.
fn regroup(
    grouped: &mut Grouped,
    places: &[PlaceMention],
    joined: &[u32],
    label: u32,
    row: Option<u32>,
) -> (Added, String) {
    let prefix = grouped.prefix;
    let pick: fn(&PlaceMention) -> &str = if grouped.kind == "room" {
        |m| m.room_key.as_str()
    } else {
        |m| m.building_key.as_str()
    };
    let mut anchor = String::new();
    let (renamed, key) = grouped.book.merge(joined, label, row, |members| {
        let ms: Vec<&PlaceMention> = members.iter().map(|&i| &places[i as usize]).collect();
        anchor = place_anchor(&ms, pick);
        entity_key(prefix, &anchor)
    });
    let members: Vec<&PlaceMention> = grouped.book.members[&label]
        .iter()
        .map(|&i| &places[i as usize])
        .collect();
    let golden = place_golden(&key, &members, anchor.strip_prefix("key:").unwrap_or(""));
    (
        Added {
            joined: joined.to_vec(),
            key,
            renamed,
            label,
            new_entity: joined.is_empty() && row.is_some(),
        },
        golden,
    )
}

fn count(report: &mut Report, kind: &str, added: &Added) {
    *report.mentions.entry(kind.to_string()).or_default() += 1;
    if added.new_entity {
        *report.new_entities.entry(kind.to_string()).or_default() += 1;
    }
    *report.renamed.entry(kind.to_string()).or_default() += added.renamed.len() as u64;
}

fn push_change(changes: &mut LibraryChanges, at: Option<At>, added: Added, golden: String) {
    if let Some(at) = at {
        changes.links.push(EntityLink {
            source_id: at.0,
            record_key: at.1,
            role: at.2,
            entity_key: added.key.clone(),
        });
    }
    // A link written earlier in this record to a key that has just gone follows it.
    for (old, new) in &added.renamed {
        for l in changes.links.iter_mut().filter(|l| l.entity_key == *old) {
            l.entity_key = new.clone();
        }
    }
    changes.golden.retain(|g| g.entity_key != added.key);
    changes.golden.push(GoldenRecord {
        entity_key: added.key,
        record: golden,
    });
    for (old, new) in added.renamed {
        changes.golden.retain(|g| g.entity_key != old);
        changes.renamed.push((old, new));
    }
}
