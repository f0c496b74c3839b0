//! The person library: every person mention in the store, resolved, with golden records.

use crate::{Result, entity_key};
use rayon::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tongban_resolution::golden::{Candidate, Survivorship};
use tongban_resolution::linker::{self, Stage};
use tongban_resolution::person::{Mention, RecordView, mentions, settings, table};
use tongban_store::{EntityLink, GoldenRecord, Store};

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

/// What a person resolution run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub records: u64,
    pub mentions: u64,
    pub persons: u64,
    pub candidate_pairs: u64,
    pub linked_pairs: u64,
    pub refused_by_constraint: u64,
    pub run_id: i64,
    /// Weight (log2 m/u) of every comparison level, as learned.
    pub weights: Vec<(String, Vec<(String, f64)>)>,
    pub prior: f64,
    /// Seconds per stage, in order.
    pub stage_seconds: Vec<(String, f64)>,
}

/// Records when each stage starts, and passes stages on to the caller's progress.
struct Timed<'a> {
    inner: &'a dyn Progress,
    marks: std::sync::Mutex<Vec<(String, std::time::Instant)>>,
}

impl Progress for Timed<'_> {
    fn stage(&self, name: &str) {
        if let Ok(mut m) = self.marks.lock() {
            m.push((name.to_string(), std::time::Instant::now()));
        }
        self.inner.stage(name);
    }
    fn records(&self, read: u64) {
        self.inner.records(read);
    }
}

impl Timed<'_> {
    fn seconds(&self) -> Vec<(String, f64)> {
        let now = std::time::Instant::now();
        let marks = self.marks.lock().map(|m| m.clone()).unwrap_or_default();
        marks
            .iter()
            .enumerate()
            .map(|(i, (name, t))| {
                let end = marks.get(i + 1).map_or(now, |n| n.1);
                (name.clone(), (end - *t).as_secs_f64())
            })
            .collect()
    }
}

/// Progress reports: a stage name and, for reading, records read so far.
pub trait Progress: Sync {
    fn stage(&self, name: &str);
    fn records(&self, _read: u64) {}
}

/// Raw values of fields that failed cleaning, from a record's issues JSON.
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
            field
                .ends_with("citizen_id")
                .then(|| (field.to_string(), raw.to_string()))
        })
        .collect()
}

/// Every person mention of every current record in the store.
pub async fn read_mentions(
    store: &dyn Store,
    progress: &dyn Progress,
) -> Result<(Vec<Mention>, u64)> {
    const PAGE: i64 = 20_000;
    let mut all = Vec::new();
    let mut records = 0u64;
    for source in store.sources().await? {
        let (id, subject) = (source.id.clone(), source.subject.clone());
        let mut page = store.current_cleaned(&id, None, PAGE).await?;
        loop {
            records += page.len() as u64;
            progress.records(records);
            let full = page.len() as i64 == PAGE;
            let after = page.last().map(|r| r.key.clone());
            // The next page is fetched while this one is parsed on the other cores: reading and
            // JSON parsing each take about as long as the other.
            let (id2, subject2) = (id.clone(), subject.clone());
            let parse = tokio::task::spawn_blocking(move || parse_page(&id2, &subject2, &page));
            let fetch = async {
                match (&after, full) {
                    (Some(a), true) => store.current_cleaned(&id, Some(a), PAGE).await.map(Some),
                    _ => Ok(None),
                }
            };
            let (parsed, next) = tokio::join!(parse, fetch);
            all.extend(parsed.unwrap_or_default());
            match next? {
                Some(p) if !p.is_empty() => page = p,
                _ => break,
            }
        }
    }
    Ok((all, records))
}

fn parse_page(source: &str, subject: &str, page: &[tongban_store::CleanedRecord]) -> Vec<Mention> {
    let found: Vec<Vec<Mention>> = page
        .par_iter()
        .map(|r| {
            let cleaned: Map<String, Value> = serde_json::from_str(&r.cleaned).unwrap_or_default();
            let invalid = if r.issues.len() > 2 {
                invalid_values(&r.issues)
            } else {
                Vec::new()
            };
            mentions(&RecordView {
                source,
                subject,
                key: &r.key,
                cleaned: &cleaned,
                invalid: &invalid,
            })
        })
        .collect();
    found.into_iter().flatten().collect()
}

/// Reads one field of a mention.
type Getter = dyn Fn(&Mention) -> &str;

/// The golden record of one person from its mentions.
pub fn golden(key: &str, members: &[&Mention], trust: &Survivorship) -> Value {
    let field = |get: &dyn Fn(&Mention) -> &str| {
        let candidates: Vec<Candidate> = members
            .iter()
            .map(|m| Candidate {
                value: get(m),
                source: &m.source,
                record_key: &m.record_key,
                role: &m.role,
                date: &m.recorded_on,
            })
            .collect();
        trust.survive(&candidates)
    };
    let mut fields = Map::new();
    let getters: [(&str, &Getter); 9] = [
        ("citizen_id", &|m| m.valid_id.as_str()),
        ("name", &|m| m.name.as_str()),
        ("sex", &|m| m.sex.as_str()),
        ("birth_date", &|m| m.birth_date.as_str()),
        ("ethnicity", &|m| m.ethnicity.as_str()),
        ("phone", &|m| m.phone.as_str()),
        ("residence", &|m| m.address.as_str()),
        ("registered_address", &|m| m.registered_address.as_str()),
        ("household_no", &|m| m.household_no.as_str()),
    ];
    for (name, get) in getters {
        if let Some(kept) = field(get) {
            fields.insert(name.to_string(), json!(kept));
        }
    }
    let mut sources: Vec<&str> = members.iter().map(|m| m.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    json!({ "key": key, "mentions": members.len(), "sources": sources, "fields": fields })
}

/// Resolve every person mention in the store and replace the person library.
pub async fn resolve(
    store: &dyn Store,
    trust: &Survivorship,
    progress: &dyn Progress,
) -> Result<Summary> {
    let started = tongban_store::now_millis();
    let timed = Timed {
        inner: progress,
        marks: std::sync::Mutex::new(Vec::new()),
    };
    let progress: &dyn Progress = &timed;
    progress.stage("reading");
    let (all, records) = read_mentions(store, progress).await?;
    let t = table(&all);
    let s = settings();
    let mut on_stage = |stage: Stage| progress.stage(&format!("{stage:?}").to_lowercase());
    let outcome = linker::run(&t, &s, &mut on_stage)?;
    progress.stage("golden records");
    let mut clusters: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, &label) in outcome.labels.iter().enumerate() {
        clusters.entry(label).or_default().push(i as u32);
    }
    let mut keyed: Vec<(u32, String)> = clusters
        .iter()
        .map(|(&label, members)| {
            // Anchor: the cluster's valid id if it has one (there is at most one, by the
            // cannot-link constraint), else its first mention.
            let anchor = members
                .iter()
                .map(|&i| &all[i as usize])
                .find(|m| !m.valid_id.is_empty())
                .map(|m| format!("id:{}", m.valid_id))
                .unwrap_or_else(|| {
                    let m = &all[members[0] as usize];
                    format!("mention:{}|{}|{}", m.source, m.record_key, m.role)
                });
            (label, entity_key("P", &anchor))
        })
        .collect();
    keyed.sort_unstable();
    let key_of: HashMap<u32, &str> = keyed.iter().map(|(l, k)| (*l, k.as_str())).collect();
    let golden_records: Vec<GoldenRecord> = keyed
        .par_iter()
        .map(|(label, key)| {
            let members: Vec<&Mention> =
                clusters[label].iter().map(|&i| &all[i as usize]).collect();
            GoldenRecord {
                entity_key: key.clone(),
                record: golden(key, &members, trust).to_string(),
            }
        })
        .collect();
    let links: Vec<EntityLink> = all
        .iter()
        .zip(&outcome.labels)
        .map(|(m, label)| EntityLink {
            source_id: m.source.clone(),
            record_key: m.record_key.clone(),
            role: m.role.clone(),
            entity_key: key_of[label].to_string(),
        })
        .collect();
    let weights: Vec<(String, Vec<(String, f64)>)> = s
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
    let mut summary = Summary {
        records,
        mentions: all.len() as u64,
        persons: keyed.len() as u64,
        candidate_pairs: outcome.stats.candidate_pairs,
        linked_pairs: outcome.stats.linked_pairs,
        refused_by_constraint: outcome.stats.refused_by_constraint,
        run_id: 0,
        weights,
        prior: outcome.model.prior_weight(),
        stage_seconds: Vec::new(),
    };
    progress.stage("writing");
    let text = serde_json::to_string(&summary).unwrap_or_default();
    summary.run_id = store
        .replace_resolution("person", started, &text, &links, &golden_records)
        .await?;
    summary.stage_seconds = timed.seconds();
    Ok(summary)
}
