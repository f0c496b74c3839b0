//! The governed query API: reads of the base libraries under the caller's grants and
//! jurisdiction, each one recorded in the audit log before it is answered.
//!
//! `GET /api/persons/{key}` with `Authorization: Bearer <token>`: the token names a user (role,
//! department, jurisdiction); the person's community comes from where the libraries say they
//! live; `tongban_sharing::policy::decision` decides every field of the golden record (shown with
//! its provenance, masked, or withheld); the read is appended to the audit log — fields shown and
//! the grants and purposes they were served under — and only once that entry is committed does
//! the answer go out, naming those grants. `GET /api/me/accesses` shows a citizen (whose user id
//! is their person key) who read their record: when, which department and role, for which
//! purpose and grant, which fields. This module decides nothing itself: identity,
//! policy and audit live in `tongban-sharing`.

use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tongban_sharing::audit::Event;
use tongban_sharing::catalogue::Resource;
use tongban_sharing::identity::{Identities, ManageError, Principal};
use tongban_sharing::policy::{Decision, Grant, Subject, decision, mask};
use tongban_sharing::writer::AuditLog;

/// What the governed API needs beside the store.
pub struct Sharing {
    pub identities: Identities,
    pub audit: AuditLog,
    pub catalogue: Vec<Resource>,
    /// Reads served under each grant: (grant, day) → count, taken from the store for every
    /// grant at once at the first read of a day (see [`used_today`]), then kept here.
    quota_used: std::sync::Arc<std::sync::Mutex<QuotaCounts>>,
    /// Held while a day's reads are counted (for every grant at once), so that the many
    /// requests that find the day uncounted do not each count it. Held by the counting task,
    /// not the request (see [`used_today`]). Also when the last count failed, so that the
    /// tasks queued behind a failed count do not each try again at once.
    quota_counting: std::sync::Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
    /// The community of each entity read recently, and when it was looked up: it changes when
    /// the libraries do (a run, or new records resolved incrementally), and a minute-old answer
    /// is accepted.
    communities: std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>,
    /// The communities of rooms and buildings met on the way, and since when: renewed every
    /// [`COMMUNITY_FRESH_MS`].
    places: std::sync::Mutex<(
        std::sync::Arc<tongban_libraries::population::PlaceCommunities>,
        i64,
    )>,
    /// Each department's grants as of a moment ago: an approval or revocation takes effect
    /// within [`GRANTS_FRESH_MS`].
    grants: std::sync::Mutex<std::collections::HashMap<String, (DepartmentGrants, i64)>>,
    /// Whether the background watch suspends the grants that alerting reads were served under
    /// (see `tongban_sharing::watch::grants_to_suspend`); off unless the server is told.
    pub suspend_on_alert: std::sync::atomic::AtomicBool,
    /// The console dashboard's figures, recomputed in the background.
    pub dashboard: std::sync::RwLock<Option<std::sync::Arc<crate::console::dashboard::Dashboard>>>,
    /// Golden records read recently, split into their fields (see [`Sharing::golden`]).
    golden: std::sync::Mutex<GoldenCache>,
}

/// A department's grants as read at one moment, shared by the reads that use them.
pub type DepartmentGrants = std::sync::Arc<[Grant]>;

/// Reads served under each grant, by grant and day; found by the grant's id as it is, since
/// every governed read looks up and moves each of the caller's grants.
#[derive(Default)]
struct QuotaCounts {
    served: std::collections::HashMap<String, std::collections::HashMap<i64, u64>>,
    /// The days whose reads were counted from the audit log, for every grant at once: a grant
    /// without a count on such a day had served nothing. (Without this, each of a department's
    /// grants that had served nothing that day counted the log again at its first read: with
    /// ten such grants on a log of 240 k entries, PostgreSQL, that was half a minute in which
    /// no read was answered.)
    counted_days: std::collections::BTreeSet<i64>,
}

impl QuotaCounts {
    fn get(&self, grant: &str, day: i64) -> Option<u64> {
        match self.served.get(grant).and_then(|days| days.get(&day)) {
            Some(&n) => Some(n),
            None => self.counted_days.contains(&day).then_some(0),
        }
    }

    /// The count of `grant` on `day`, if there is one.
    fn existing(&mut self, grant: &str, day: i64) -> Option<&mut u64> {
        self.served.get_mut(grant)?.get_mut(&day)
    }

    /// The count of `grant` on `day`, made `or` if there is none.
    fn slot(&mut self, grant: &str, day: i64, or: u64) -> &mut u64 {
        if !self.served.contains_key(grant) {
            self.served.insert(grant.to_string(), Default::default());
        }
        // Invariant: the grant has its map, inserted just above if it had none. (Returning
        // from a first `get_mut` instead is what the borrow checker cannot yet accept.)
        let days = self
            .served
            .get_mut(grant)
            .map(|d| d.entry(day).or_insert(or));
        days.expect("the grant's map was inserted above")
    }

    /// Keep a day's counts as read from the audit log, for every grant, and remember that the
    /// day was counted. Counts already kept (moved on since by reads) stay as they are.
    fn counted(&mut self, day: i64, counts: std::collections::HashMap<String, u64>) {
        for (g, c) in counts {
            self.slot(&g, day, c);
        }
        self.counted_days.insert(day);
    }
}

/// Parsed golden records by entity key, all read under one generation of the store
/// (`Store::data_generation`): reading one from SQLite and taking it apart was a third of a
/// governed lookup's instructions (callgrind), and the same subjects are read again and again.
#[derive(Default)]
struct GoldenCache {
    generation: u64,
    entries: std::collections::HashMap<String, (&'static str, std::sync::Arc<ParsedGolden>)>,
}

/// The most golden records kept parsed; past it the cache starts again (a person's is a few
/// kilobytes parsed, so about 100–200 MB at most).
const GOLDEN_CACHE_ENTRIES: usize = 50_000;

/// How long a community lookup is reused.
const COMMUNITY_FRESH_MS: i64 = 60_000;
/// How long a department's grants are reused.
pub const GRANTS_FRESH_MS: i64 = 1_000;

impl Sharing {
    pub fn new(identities: Identities, audit: AuditLog, catalogue: Vec<Resource>) -> Sharing {
        Sharing {
            identities,
            audit,
            catalogue,
            quota_used: Default::default(),
            quota_counting: Default::default(),
            communities: Default::default(),
            places: Default::default(),
            grants: Default::default(),
            suspend_on_alert: Default::default(),
            dashboard: Default::default(),
            golden: Default::default(),
        }
    }

    /// The catalogue's resource of a base library (`person` → `library.person`).
    pub fn library(&self, kind: &str) -> Option<&Resource> {
        self.catalogue
            .iter()
            .find(|r| r.id.strip_prefix("library.") == Some(kind))
    }

    /// The golden record of `key`, parsed: from the cache while the store's generation says the
    /// golden records did not change since it was read, else read and parsed anew (and kept,
    /// while the store can tell generations apart: a PostgreSQL store whose listening
    /// connection is lost cannot, and reads every time until it listens again).
    pub async fn golden(
        &self,
        store: &dyn tongban_store::Store,
        kind: &'static str,
        key: &str,
    ) -> Result<Option<std::sync::Arc<ParsedGolden>>, ApiError> {
        let generation = store.data_generation().await.map_err(ApiError::internal)?;
        if let Some(parsed) = self.kept_golden(generation, kind, key) {
            return Ok(Some(parsed));
        }
        let Some(golden) = store
            .golden_record(kind, key)
            .await
            .map_err(ApiError::internal)?
        else {
            return Ok(None);
        };
        Ok(Some(self.keep_golden(
            generation,
            kind,
            key,
            &golden.record,
        )?))
    }

    /// [`Sharing::golden`] for a subject about to be looked at ([`look`]): when neither its
    /// golden record nor its community is kept, a person's or company's record and the
    /// relations its community is found from are read together
    /// ([`tongban_store::Store::golden_with_relations_from`], one round trip on PostgreSQL
    /// instead of two), and the community is kept for `look`, which asks for it next.
    pub async fn golden_for_look(
        &self,
        store: &dyn tongban_store::Store,
        kind: &'static str,
        key: &str,
        now: i64,
    ) -> Result<Option<std::sync::Arc<ParsedGolden>>, ApiError> {
        if !matches!(kind, "person" | "entity") || self.kept_community(key, now).is_some() {
            return self.golden(store, kind, key).await;
        }
        let generation = store.data_generation().await.map_err(ApiError::internal)?;
        if let Some(parsed) = self.kept_golden(generation, kind, key) {
            return Ok(Some(parsed));
        }
        let (golden, relations) = store
            .golden_with_relations_from(kind, key)
            .await
            .map_err(ApiError::internal)?;
        // Only a subject that exists has its community kept, so that asking for keys that
        // are not there fills no cache.
        let Some(golden) = golden else {
            return Ok(None);
        };
        let parsed = self.keep_golden(generation, kind, key, &golden.record)?;
        let places = self.places_now(now)?;
        let c = tongban_libraries::population::community_from_relations(
            store, kind, key, &relations, &places,
        )
        .await
        .map_err(ApiError::internal)?
        .unwrap_or_default();
        self.keep_community(key, c, now);
        Ok(Some(parsed))
    }

    /// The parsed golden record of `key` if it is kept and still of the store's `generation`.
    fn kept_golden(
        &self,
        generation: Option<u64>,
        kind: &'static str,
        key: &str,
    ) -> Option<std::sync::Arc<ParsedGolden>> {
        let g = generation?;
        let cache = self.golden.lock().ok()?;
        if cache.generation != g {
            return None;
        }
        let (k, parsed) = cache.entries.get(key)?;
        (*k == kind).then(|| parsed.clone())
    }

    /// Parses a golden record read under `generation` and keeps it if the store can tell
    /// generations apart.
    fn keep_golden(
        &self,
        generation: Option<u64>,
        kind: &'static str,
        key: &str,
        record: &str,
    ) -> Result<std::sync::Arc<ParsedGolden>, ApiError> {
        let parsed = std::sync::Arc::new(ParsedGolden::parse(record)?);
        if let Some(g) = generation
            && let Ok(mut cache) = self.golden.lock()
        {
            // Generations only grow: an older one's read is not kept, a newer one starts over.
            if g > cache.generation {
                cache.entries.clear();
                cache.generation = g;
            }
            if g == cache.generation {
                if cache.entries.len() >= GOLDEN_CACHE_ENTRIES {
                    cache.entries.clear();
                }
                cache
                    .entries
                    .insert(key.to_string(), (kind, parsed.clone()));
            }
        }
        Ok(parsed)
    }

    async fn community(
        &self,
        store: &dyn tongban_store::Store,
        kind: &str,
        key: &str,
        now: i64,
    ) -> Result<String, ApiError> {
        if let Some(c) = self.kept_community(key, now) {
            return Ok(c);
        }
        let places = self.places_now(now)?;
        let c = tongban_libraries::population::community_of_entity(store, kind, key, &places)
            .await
            .map_err(ApiError::internal)?
            .unwrap_or_default();
        self.keep_community(key, c.clone(), now);
        Ok(c)
    }

    /// A subject's community if it was found less than [`COMMUNITY_FRESH_MS`] ago.
    fn kept_community(&self, key: &str, now: i64) -> Option<String> {
        let map = self.communities.lock().ok()?;
        let (c, at) = map.get(key)?;
        (now - at < COMMUNITY_FRESH_MS).then(|| c.clone())
    }

    fn keep_community(&self, key: &str, community: String, now: i64) {
        if let Ok(mut map) = self.communities.lock() {
            map.insert(key.to_string(), (community, now));
        }
    }

    /// The rooms' and buildings' communities, kept for as long as the subjects' are.
    fn places_now(
        &self,
        now: i64,
    ) -> Result<std::sync::Arc<tongban_libraries::population::PlaceCommunities>, ApiError> {
        if let Ok(mut places) = self.places.lock()
            && now - places.1 > COMMUNITY_FRESH_MS
        {
            *places = (Default::default(), now);
        }
        self.places
            .lock()
            .map(|p| std::sync::Arc::clone(&p.0))
            .map_err(|_| ApiError::internal("the place cache is poisoned"))
    }

    /// Give back one read of each grant's quota reserved on `day` for a read not answered.
    fn give_back<'a>(&self, grants: impl Iterator<Item = &'a str>, day: i64) {
        if let Ok(mut map) = self.quota_used.lock() {
            for id in grants {
                if let Some(n) = map.existing(id, day) {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }

    async fn grants_of(
        &self,
        store: &dyn tongban_store::Store,
        department: &str,
        now: i64,
    ) -> Result<DepartmentGrants, ApiError> {
        if let Ok(map) = self.grants.lock()
            && let Some((g, at)) = map.get(department)
            && now - at < GRANTS_FRESH_MS
        {
            return Ok(g.clone());
        }
        let g: DepartmentGrants = store
            .grants(Some(department))
            .await
            .map_err(ApiError::internal)?
            .iter()
            .map(tongban_sharing::policy::from_row)
            .collect();
        if let Ok(mut map) = self.grants.lock() {
            map.insert(department.to_string(), (g.clone(), now));
        }
        Ok(g)
    }
}

/// Reads already served under `grant` on `day`, from memory or, the first time, from the counts
/// the store keeps per hour and grant beside the audit log (`Store::audit_reads_per_grant`).
async fn used_today(sharing: &Sharing, grant: &str, day: i64) -> Result<u64, ApiError> {
    if let Some(n) = known_use(&sharing.quota_used, grant, day) {
        return Ok(n);
    }
    // The count runs as a task of its own, so that it finishes and is kept even when the
    // request that started it is dropped. A client that stops waiting drops its request; when
    // a busy day's log took longer to count than clients waited (2 s, wrk's default), each
    // waiter in turn started the count and was dropped before it ended, and the server
    // answered nothing for as long as the load lasted (PostgreSQL, 240 k entries of the day).
    let counting = sharing.quota_counting.clone();
    let counts = sharing.quota_used.clone();
    let store = sharing.audit.store().clone();
    let task_grant = grant.to_string();
    tokio::spawn(async move {
        // One count at a time; whoever waited finds the count made meanwhile.
        let mut failed_at = counting.lock_owned().await;
        if let Some(n) = known_use(&counts, &task_grant, day) {
            return Ok(n);
        }
        // A count that failed a moment ago (the database away, say) is not tried again by
        // every request queued behind it, each of whom may long have gone.
        if failed_at.is_some_and(|t| t.elapsed() < COUNT_RETRY_AFTER) {
            return Err(ApiError::internal(
                "the day's reads could not be counted just now",
            ));
        }
        let counted = count_day(store.as_ref(), &counts, &task_grant, day).await;
        *failed_at = counted.is_err().then(std::time::Instant::now);
        counted
    })
    .await
    .map_err(|e| ApiError::internal(format!("counting the day's reads: {e}")))?
}

/// How long after a failed count of the day's reads the next is tried.
const COUNT_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

fn known_use(counts: &std::sync::Mutex<QuotaCounts>, grant: &str, day: i64) -> Option<u64> {
    counts.lock().ok().and_then(|map| map.get(grant, day))
}

/// Take the reads of `day` under every grant from the store (its counts per hour and grant,
/// and the log for entries older than those), keep them, and return `grant`'s. Counted once a
/// day per process: reads other servers make on the same store afterwards are not seen here,
/// so with several servers each enforces a grant's quota on its own reads after its first of
/// the day.
async fn count_day(
    store: &dyn tongban_store::Store,
    counts: &std::sync::Mutex<QuotaCounts>,
    grant: &str,
    day: i64,
) -> Result<u64, ApiError> {
    // The store keeps the counts per hour and grant; only entries from before it did are
    // counted from the log, and of those only the ones since the day began (China Standard
    // Time), found by a search by stamp.
    let day_start = tongban_sharing::watch::start_of_day(day);
    let after = tongban_sharing::writer::read_after_for(store, day_start)
        .await
        .map_err(ApiError::internal)?;
    let (first_hour, end_hour) = tongban_sharing::watch::hours_of_day(day);
    // Every grant's count of the day is kept from this one count, so that the day's first
    // reads under the other grants find theirs.
    let day_counts = store
        .audit_reads_per_grant(after, first_hour, end_hour)
        .await
        .map_err(ApiError::internal)?;
    let mut map = counts
        .lock()
        .map_err(|_| ApiError::internal("the quota counter is poisoned"))?;
    map.counted(day, day_counts);
    Ok(map.get(grant, day).unwrap_or(0))
}

fn token(headers: &HeaderMap) -> Result<&str, ApiError> {
    crate::bearer(headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no_token",
            "send your API token as `Authorization: Bearer tb_…`",
        )
    })
}

/// The principal a token (an API token or a console session) belongs to.
pub async fn principal_of(sharing: &Sharing, token: &str) -> Result<Principal, ApiError> {
    sharing
        .identities
        .authenticate(token, tongban_store::now_millis())
        .await
        .map_err(|e| match e {
            ManageError::Identity(i) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "bad_token", i.to_string())
            }
            ManageError::Store(s) => ApiError::internal(s),
        })
}

async fn principal(sharing: &Sharing, headers: &HeaderMap) -> Result<Principal, ApiError> {
    principal_of(sharing, token(headers)?).await
}

fn valid_key(prefix: char, key: &str) -> bool {
    key.len() == 17 && key.starts_with(prefix) && key[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The kinds the governed API serves, with their key prefixes.
pub fn key_prefix(kind: &str) -> char {
    match kind {
        "person" => 'P',
        "entity" => 'E',
        "room" => 'R',
        _ => 'B',
    }
}

fn sharing_of(state: &AppState) -> Result<&Sharing, ApiError> {
    state.sharing.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sharing_disabled",
            "the governed API is off on this server",
        )
    })
}

/// A caller with their department's grants as of now.
pub struct Caller {
    pub principal: Principal,
    /// Shared with the cache of the department's grants: a read does not copy them.
    pub grants: DepartmentGrants,
    pub now: i64,
}

impl Caller {
    pub async fn new(
        sharing: &Sharing,
        store: &dyn tongban_store::Store,
        principal: Principal,
    ) -> Result<Caller, ApiError> {
        let now = tongban_store::now_millis();
        let grants = match &principal.department {
            Some(d) => sharing.grants_of(store, d, now).await?,
            None => std::sync::Arc::from(Vec::new()),
        };
        Ok(Caller {
            principal,
            grants,
            now,
        })
    }
}

/// What a caller gets of one field of a subject.
#[derive(Debug, Clone)]
pub enum Shown {
    /// The golden record's own JSON for the field (its value with source, record and date),
    /// kept as text: a read answers it as it is, without taking it apart and putting it back.
    Kept(Box<RawValue>),
    /// The value with its middle hidden.
    Masked(String),
}

/// The fields of a view in catalogue order, each shown or masked (withheld ones are absent).
#[derive(Debug, Clone, Default)]
pub struct ViewFields(Vec<(String, Shown)>);

impl ViewFields {
    fn push(&mut self, name: &str, shown: Shown) {
        self.0.push((name.to_string(), shown));
    }

    /// The field as JSON: `{"value": …, "source": …, …}` when shown, `{"masked": …}` when masked.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| match s {
                Shown::Kept(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
                Shown::Masked(m) => json!({ "masked": m }),
            })
    }
}

impl serde::Serialize for ViewFields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        #[derive(serde::Serialize)]
        struct Masked<'a> {
            masked: &'a str,
        }
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, shown) in &self.0 {
            match shown {
                Shown::Kept(raw) => map.serialize_entry(name, raw)?,
                Shown::Masked(m) => map.serialize_entry(name, &Masked { masked: m })?,
            }
        }
        map.end()
    }
}

/// A golden record split into its fields, each kept as its JSON (the value with its provenance),
/// not parsed further, beside the text of its value; owned, so that it can be cached.
#[derive(Debug)]
pub struct ParsedGolden {
    fields: Vec<KeptField>,
}

/// One field of a [`ParsedGolden`].
#[derive(Debug)]
struct KeptField {
    name: String,
    /// The field's JSON, answered as it is when the field is shown.
    raw: Box<RawValue>,
    /// The field as a masked field shows it: [`mask`] of the field's name and the text of its
    /// value (empty text when the value is not text). Made once, when the record is parsed,
    /// since most fields of most reads are masked and the record is cached: taking the text
    /// out at each read was a tenth of a read's own work, and masking it at each read (three
    /// or four fields a read, their characters counted each time) about 1.5 % of a governed
    /// lookup's server time.
    masked: String,
}

impl KeptField {
    fn new(name: String, raw: Box<RawValue>) -> KeptField {
        #[derive(serde::Deserialize)]
        struct Text<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>);
        #[derive(serde::Deserialize)]
        struct KeptValue<'a> {
            #[serde(borrow, default)]
            value: Option<Text<'a>>,
        }
        let text = serde_json::from_str::<KeptValue>(raw.get())
            .ok()
            .and_then(|k| k.value);
        let masked = mask(&name, text.as_ref().map_or("", |t| &t.0));
        KeptField { name, raw, masked }
    }
}

impl ParsedGolden {
    pub fn parse(record: &str) -> Result<ParsedGolden, ApiError> {
        // A person's or entity's record cites each of its records once; the API answers each
        // field with its provenance inline, spelled out here (a record read by key is then
        // cached; a search's candidates are parsed each time).
        let inline =
            tongban_libraries::golden_text::spelled_out(record).map_err(ApiError::internal)?;
        let record = inline.as_deref().unwrap_or(record);
        let doc: GoldenDoc = serde_json::from_str(record).map_err(ApiError::internal)?;
        let fields = match doc.fields {
            Some(fields) => fields
                .into_iter()
                .map(|(name, raw)| KeptField::new(name.into_owned(), raw.to_owned()))
                .collect(),
            // Rooms and buildings keep their few fields at the top of the record; give them
            // the shape of the others.
            None => [
                ("address_key", &doc.address_key),
                ("community", &doc.community),
            ]
            .into_iter()
            .filter_map(|(f, v)| {
                let raw =
                    serde_json::value::to_raw_value(&json!({ "value": v.as_ref()?.as_str()? }));
                Some(KeptField::new(f.to_string(), raw.ok()?))
            })
            .collect(),
        };
        Ok(ParsedGolden { fields })
    }

    /// What is kept of field `name`.
    fn kept(&self, name: &str) -> Option<&KeptField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A golden record read only as far as a view needs: each field's JSON is located, not parsed.
/// Rooms and buildings keep their few fields (`address_key`, `community`) at the top.
#[derive(serde::Deserialize)]
struct GoldenDoc<'a> {
    #[serde(borrow, default)]
    fields: Option<std::collections::BTreeMap<std::borrow::Cow<'a, str>, &'a RawValue>>,
    #[serde(default)]
    address_key: Option<Value>,
    #[serde(default)]
    community: Option<Value>,
}

/// One subject as a caller may see it: each field shown with its provenance, masked, or
/// withheld, and the grants the shown fields were served under.
#[derive(Debug, Clone)]
pub struct View {
    pub kind: &'static str,
    pub key: String,
    pub community: String,
    pub fields: ViewFields,
    pub shown: Vec<String>,
    pub masked: Vec<String>,
    pub withheld: Vec<String>,
    pub served: Vec<Value>,
    pub exhausted: Vec<String>,
}

impl View {
    /// The view as the API answers it.
    pub fn into_json(self) -> Value {
        json!({
            "key": self.key,
            "community": self.community,
            "fields": self.fields,
            "withheld": self.withheld,
            "served_under": self.served,
            "quota_exhausted": self.exhausted,
        })
    }

    /// The audit event of this read. `via` says how the subject was reached (a read by key,
    /// a search, a bulk lookup, a console page).
    pub fn event(&self, caller: &Caller, via: &str) -> Event {
        /// The event's detail, in this order; serialised straight from borrowed parts.
        #[derive(serde::Serialize)]
        struct Detail<'a> {
            department: &'a Option<String>,
            role: tongban_sharing::identity::Role,
            shown: &'a [String],
            masked: &'a [String],
            served_under: &'a [Value],
            via: &'a str,
        }
        let p = &caller.principal;
        let detail = Detail {
            department: &p.department,
            role: p.role,
            shown: &self.shown,
            masked: &self.masked,
            served_under: &self.served,
            via,
        };
        Event {
            at: caller.now,
            actor: p.user_id.clone(),
            action: format!("read.{}", self.kind),
            subject: self.key.clone(),
            // Serialising strings and JSON values with string keys cannot fail; were it ever
            // to, the entry would still record the read, with an empty object for detail.
            detail: serde_json::to_string(&detail).unwrap_or_else(|_| "{}".into()),
        }
    }
}

/// What a look at one subject came to.
pub enum Seen {
    /// The caller may see the subject; the read still has to be audited before it is answered.
    Shown(View),
    /// The subject is outside the caller's jurisdiction; the attempt is audited and the caller
    /// told only that there is no such subject.
    Denied(Event),
    /// No such subject, or (for a search) one whose matched fields the caller may not see.
    Nothing,
}

/// Decide every field of one subject of `kind` for `caller`. `required` are fields the caller
/// must be shown for the subject to be returned at all (a search's matched fields); quota
/// reserved for a subject that is not returned is given back.
pub async fn look(
    sharing: &Sharing,
    store: &dyn tongban_store::Store,
    caller: &Caller,
    kind: &'static str,
    key: &str,
    golden: Option<&ParsedGolden>,
    required: &[&str],
) -> Result<Seen, ApiError> {
    let p = &caller.principal;
    let now = caller.now;
    let Some(doc) = golden else {
        return Ok(Seen::Nothing);
    };
    let kept_of = |name: &str| doc.kept(name);
    let community = sharing.community(store, kind, key, now).await?;
    // A citizen's user id is their person key: they may read their own record.
    let subject = Subject {
        key,
        division: &community,
        is_caller: p.role == tongban_sharing::identity::Role::Citizen
            && kind == "person"
            && p.user_id == key,
    };
    let resource = sharing
        .library(kind)
        .ok_or_else(|| ApiError::internal(format!("the catalogue has no library.{kind}")))?;
    if !tongban_sharing::policy::may_see(p, &subject) {
        // Recorded too: an attempt outside one's jurisdiction is what anomaly alerts watch.
        return Ok(Seen::Denied(Event {
            at: now,
            actor: p.user_id.clone(),
            action: format!("read.{kind}.denied"),
            subject: key.to_string(),
            detail: json!({"reason": "outside jurisdiction", "community": community}).to_string(),
        }));
    }
    // A grant whose daily quota is spent serves nothing more today.
    let day = tongban_sharing::watch::day_of(now);
    // Each active grant's read is reserved under one lock before the fields are decided, so
    // concurrent reads cannot together exceed the quota; unused reservations are given back.
    let mut exhausted: Vec<String> = Vec::new();
    let mut reserved: Vec<&str> = Vec::new();
    for g in caller.grants.iter().filter(|g| g.active(now)) {
        used_today(sharing, &g.id, day).await?;
        let mut map = sharing
            .quota_used
            .lock()
            .map_err(|_| ApiError::internal("the quota counter is poisoned"))?;
        let n = map.slot(&g.id, day, 0);
        if *n >= u64::from(g.daily_quota) {
            exhausted.push(g.id.clone());
        } else {
            *n += 1;
            reserved.push(&g.id);
        }
    }
    // Usually no grant is spent, and the caller's grants are used as they are.
    let usable: std::borrow::Cow<[Grant]> = if exhausted.is_empty() {
        std::borrow::Cow::Borrowed(&caller.grants)
    } else {
        caller
            .grants
            .iter()
            .filter(|g| !exhausted.contains(&g.id))
            .cloned()
            .collect()
    };
    let mut view = View {
        kind,
        key: key.to_string(),
        community: community.clone(),
        fields: ViewFields::default(),
        shown: Vec::new(),
        masked: Vec::new(),
        withheld: Vec::new(),
        served: Vec::new(),
        exhausted,
    };
    for f in &resource.fields {
        if f.name == "key" {
            continue;
        }
        let Some(kept) = kept_of(&f.name) else {
            continue;
        };
        match decision(p, resource, &f.name, &subject, now, &usable) {
            Decision::Show { grant } => {
                view.shown.push(f.name.clone());
                view.fields.push(&f.name, Shown::Kept(kept.raw.clone()));
                if let Some(id) = grant
                    && !view.served.iter().any(|s| s["grant"] == id.as_str())
                    && let Some(g) = usable.iter().find(|g| g.id == id)
                {
                    view.served.push(
                        json!({"grant": g.id, "purpose": g.purpose, "legal_basis": g.legal_basis}),
                    );
                }
            }
            Decision::Mask => {
                // A field whose JSON has no text value masks as empty.
                view.masked.push(f.name.clone());
                view.fields
                    .push(&f.name, Shown::Masked(kept.masked.clone()));
            }
            Decision::Omit => view.withheld.push(f.name.clone()),
        }
    }
    let returned = required.iter().all(|r| view.shown.iter().any(|s| s == r));
    sharing.give_back(
        reserved
            .iter()
            .copied()
            .filter(|id| !returned || !view.served.iter().any(|s| s["grant"] == *id)),
        day,
    );
    Ok(if returned {
        Seen::Shown(view)
    } else {
        Seen::Nothing
    })
}

/// Record the events of reads that were decided (and any other events), in one batch; if they
/// cannot be recorded the reads are not answered, so the quota they reserved is given back.
pub async fn record_reads(
    sharing: &Sharing,
    views: &[&View],
    events: Vec<Event>,
    now: i64,
) -> Result<Vec<i64>, ApiError> {
    let result = record(sharing, events).await;
    if result.is_err() {
        sharing.give_back(
            views
                .iter()
                .flat_map(|v| v.served.iter().filter_map(|s| s["grant"].as_str())),
            tongban_sharing::watch::day_of(now),
        );
    }
    result
}

/// Record every event, in one batch, before anything is answered: not recorded, not answered.
pub async fn record(sharing: &Sharing, events: Vec<Event>) -> Result<Vec<i64>, ApiError> {
    sharing.audit.append_all(events).await.map_err(|e| {
        eprintln!("audit: {e}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the read could not be recorded, so it is not answered; try again",
        )
    })
}

/// `GET /api/persons/{key}`.
pub async fn person(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    read(state, headers, "person", key).await
}

/// `GET /api/entities/{key}`.
pub async fn entity(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    read(state, headers, "entity", key).await
}

/// `GET /api/rooms/{key}`.
pub async fn room(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    read(state, headers, "room", key).await
}

/// `GET /api/buildings/{key}`.
pub async fn building(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    read(state, headers, "building", key).await
}

fn not_here(kind: &str, key: &str) -> ApiError {
    // An unknown key and a key outside the caller's jurisdiction get the same answer, so that
    // answers do not tell which keys exist.
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no {kind} {key} within your jurisdiction"),
    )
}

/// A governed read of one library entity of `kind`.
async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    kind: &'static str,
    key: String,
) -> Result<axum::response::Response, ApiError> {
    let sharing = sharing_of(&state)?;
    let p = principal(sharing, &headers).await?;
    let prefix = key_prefix(kind);
    if !valid_key(prefix, &key) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_key",
            format!("a {kind} key is {prefix} and 16 hexadecimal digits"),
        ));
    }
    let store = state.store.as_ref();
    let caller = Caller::new(sharing, store, p).await?;
    let golden = sharing
        .golden_for_look(store, kind, &key, caller.now)
        .await?;
    match look(sharing, store, &caller, kind, &key, golden.as_deref(), &[]).await? {
        Seen::Shown(view) => {
            let seq = record_reads(
                sharing,
                &[&view],
                vec![view.event(&caller, "key")],
                caller.now,
            )
            .await?;
            // The view's fields go out as the golden record spells them (see `Shown::Kept`).
            #[derive(serde::Serialize)]
            struct Answer<'a> {
                key: &'a str,
                community: &'a str,
                fields: &'a ViewFields,
                withheld: &'a [String],
                served_under: &'a [Value],
                quota_exhausted: &'a [String],
                audit_entry: Option<i64>,
            }
            Ok(Json(Answer {
                key: &view.key,
                community: &view.community,
                fields: &view.fields,
                withheld: &view.withheld,
                served_under: &view.served,
                quota_exhausted: &view.exhausted,
                audit_entry: seq.first().copied(),
            })
            .into_response())
        }
        Seen::Denied(event) => {
            let _ = record(sharing, vec![event]).await;
            Err(not_here(kind, &key))
        }
        Seen::Nothing => Err(not_here(kind, &key)),
    }
}

/// The most results a search returns.
pub const MAX_RESULTS: i64 = 20;
/// The most candidates a search looks at to find them.
pub const MAX_CANDIDATES: i64 = 200;

/// Run a search for `caller` and audit it: one entry for the search itself (which fields were
/// searched and how many results were returned) and one read entry per result.
pub async fn run_search(
    sharing: &Sharing,
    store: &dyn tongban_store::Store,
    caller: &Caller,
    kind: &'static str,
    search: &crate::search::Search,
    via: &str,
) -> Result<(Vec<View>, bool), ApiError> {
    let criteria: Vec<(&str, &str)> = search
        .criteria
        .iter()
        .map(|(p, v)| (*p, v.as_str()))
        .collect();
    // Candidates outside the caller's jurisdiction (or whose matched fields they may not see)
    // are skipped, so more are read than are returned; `truncated` says only that more results
    // the caller may see could follow.
    let found = store
        .search_golden(kind, &criteria, MAX_CANDIDATES + 1)
        .await
        .map_err(ApiError::internal)?;
    let mut truncated = false;
    let mut views = Vec::new();
    let mut events = Vec::new();
    for (i, g) in found.into_iter().enumerate() {
        if views.len() as i64 == MAX_RESULTS || i as i64 == MAX_CANDIDATES {
            truncated = true;
            break;
        }
        let key = g.entity_key.clone();
        let parsed = ParsedGolden::parse(&g.record)?;
        match look(
            sharing,
            store,
            caller,
            kind,
            &key,
            Some(&parsed),
            &search.required,
        )
        .await?
        {
            Seen::Shown(v) => {
                events.push(v.event(caller, via));
                views.push(v);
            }
            // Out of jurisdiction results of a search are not attempts at a subject: the
            // caller did not name them.
            Seen::Denied(_) | Seen::Nothing => {}
        }
    }
    let p = &caller.principal;
    events.push(Event {
        at: caller.now,
        actor: p.user_id.clone(),
        action: format!("search.{kind}"),
        subject: String::new(),
        detail: json!({
            "department": p.department, "role": p.role, "by": search.required,
            "results": views.len(), "via": via,
        })
        .to_string(),
    });
    let decided: Vec<&View> = views.iter().collect();
    record_reads(sharing, &decided, events, caller.now).await?;
    Ok((views, truncated))
}

type QueryParams =
    Result<axum::extract::Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// `GET /api/persons?…`, `/api/entities?…`, `/api/rooms?…`, `/api/buildings?…`.
async fn search(
    state: AppState,
    headers: HeaderMap,
    kind: &'static str,
    params: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let sharing = sharing_of(&state)?;
    let p = principal(sharing, &headers).await?;
    let axum::extract::Query(params) = params.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "the query string is not valid URL encoding",
        )
    })?;
    let search = crate::search::parse_in(kind, &params, Some(&p.jurisdiction))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_search", e.to_string()))?;
    let store = state.store.as_ref();
    let caller = Caller::new(sharing, store, p).await?;
    let (views, truncated) = run_search(sharing, store, &caller, kind, &search, "search").await?;
    let mut answer = json!({
        "results": views.into_iter().map(View::into_json).collect::<Vec<_>>(),
        "truncated": truncated,
    });
    let unseen = fields_searched_unseen(sharing, &caller, kind, &search.required);
    if !unseen.is_empty() {
        // Said from the caller's grants alone, never from what the search found, so that the
        // note cannot tell whether a phone number or id is in the libraries.
        answer["note"] = json!(format!(
            "a search returns only people and places whose searched fields you may see; without an active grant for {} of library.{kind}, a search by it finds no one",
            unseen.join(", ")
        ));
    }
    Ok(Json(answer))
}

/// The catalogue's searched fields the caller may never see unmasked under their department's
/// grants in force ([`tongban_sharing::policy::ever_shown`]). A citizen, who reads only their
/// own record, gets no such note.
pub(crate) fn fields_searched_unseen(
    sharing: &Sharing,
    caller: &Caller,
    kind: &str,
    required: &[&'static str],
) -> Vec<&'static str> {
    if caller.principal.role == tongban_sharing::identity::Role::Citizen {
        return Vec::new();
    }
    let Some(resource) = sharing.library(kind) else {
        return Vec::new();
    };
    required
        .iter()
        .copied()
        .filter(|f| {
            resource.field(f).is_some()
                && !tongban_sharing::policy::ever_shown(
                    &caller.principal,
                    resource,
                    f,
                    caller.now,
                    &caller.grants,
                )
        })
        .collect()
}

pub async fn search_persons(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Json<Value>, ApiError> {
    search(state, headers, "person", params).await
}

pub async fn search_entities(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Json<Value>, ApiError> {
    search(state, headers, "entity", params).await
}

pub async fn search_rooms(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Json<Value>, ApiError> {
    search(state, headers, "room", params).await
}

pub async fn search_buildings(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Json<Value>, ApiError> {
    search(state, headers, "building", params).await
}

/// A body, or why it could not be read (in practice: larger than the server's limit).
type BulkBody = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

/// The most keys one bulk lookup takes.
pub const MAX_BULK: usize = 100;
/// The largest bulk-lookup body.
pub const MAX_BULK_BODY: usize = 64 * 1024;

/// `POST /api/{kind}/lookup` with `{"keys": [...]}`: up to [`MAX_BULK`] governed reads in one
/// request, audited in one batch. Keys that are unknown or outside the caller's jurisdiction are
/// listed together as not found.
async fn bulk(
    state: AppState,
    headers: HeaderMap,
    kind: &'static str,
    body: BulkBody,
) -> Result<Json<Value>, ApiError> {
    let sharing = sharing_of(&state)?;
    let p = principal(sharing, &headers).await?;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a bulk lookup body is at most {MAX_BULK_BODY} bytes"),
        )
    };
    let body = body.map_err(|_| too_large())?;
    if body.len() > MAX_BULK_BODY {
        return Err(too_large());
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        keys: Vec<String>,
    }
    let parsed: Body = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("expected {{\"keys\": [\"…\"]}}: {e}"),
        )
    })?;
    if parsed.keys.is_empty() || parsed.keys.len() > MAX_BULK {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("give 1 to {MAX_BULK} keys; got {}", parsed.keys.len()),
        ));
    }
    let prefix = key_prefix(kind);
    if let Some(bad) = parsed.keys.iter().find(|k| !valid_key(prefix, k)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_key",
            format!(
                "keys[{}] {:?}: a {kind} key is {prefix} and 16 hexadecimal digits",
                parsed.keys.iter().position(|k| k == bad).unwrap_or(0),
                bad.chars().take(40).collect::<String>()
            ),
        ));
    }
    let store = state.store.as_ref();
    let caller = Caller::new(sharing, store, p).await?;
    let mut seen = std::collections::HashSet::new();
    let keys: Vec<String> = parsed
        .keys
        .into_iter()
        .filter(|k| seen.insert(k.clone()))
        .collect();
    let mut views = Vec::new();
    let mut events = Vec::new();
    let mut not_found = Vec::new();
    for key in keys {
        let golden = sharing
            .golden_for_look(store, kind, &key, caller.now)
            .await?;
        match look(sharing, store, &caller, kind, &key, golden.as_deref(), &[]).await? {
            Seen::Shown(v) => {
                events.push(v.event(&caller, "bulk"));
                views.push(v);
            }
            Seen::Denied(e) => {
                events.push(e);
                not_found.push(key);
            }
            Seen::Nothing => not_found.push(key),
        }
    }
    let decided: Vec<&View> = views.iter().collect();
    record_reads(sharing, &decided, events, caller.now).await?;
    Ok(Json(json!({
        "results": views.into_iter().map(View::into_json).collect::<Vec<_>>(),
        "not_found": not_found,
    })))
}

pub async fn bulk_persons(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: BulkBody,
) -> Result<Json<Value>, ApiError> {
    bulk(state, headers, "person", body).await
}

pub async fn bulk_entities(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: BulkBody,
) -> Result<Json<Value>, ApiError> {
    bulk(state, headers, "entity", body).await
}

pub async fn bulk_rooms(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: BulkBody,
) -> Result<Json<Value>, ApiError> {
    bulk(state, headers, "room", body).await
}

pub async fn bulk_buildings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: BulkBody,
) -> Result<Json<Value>, ApiError> {
    bulk(state, headers, "building", body).await
}

/// One read of a citizen's record, as they are shown it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Access {
    /// When, as RFC 3339 in China Standard Time (`2026-12-05T12:07:45.123+08:00`).
    pub at: String,
    /// The same moment in milliseconds, for pages that format it themselves.
    #[serde(skip)]
    pub at_ms: i64,
    pub user: String,
    pub department: Option<String>,
    pub role: Option<String>,
    pub fields: Vec<String>,
    pub served_under: Value,
}

/// `GET /api/me/accesses`: who read the calling citizen's record.
pub async fn my_accesses(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let sharing = sharing_of(&state)?;
    let p = principal(sharing, &headers).await?;
    if p.role != tongban_sharing::identity::Role::Citizen {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "citizens_only",
            "this page lists who read a citizen's own record; sign in as that citizen",
        ));
    }
    let accesses = accesses_of(state.store.as_ref(), &p.user_id).await?;
    Ok(Json(json!({ "person": p.user_id, "accesses": accesses })))
}

/// The reads of a person's record, newest first, as the person is shown them.
pub async fn accesses_of(
    store: &dyn tongban_store::Store,
    person: &str,
) -> Result<Vec<Access>, ApiError> {
    let rows = store
        .audit_of_subject(person, 1_000)
        .await
        .map_err(ApiError::internal)?;
    Ok(rows
        .into_iter()
        .filter(|r| r.action == "read.person")
        .map(|r| {
            let d: Value = serde_json::from_str(&r.detail).unwrap_or_default();
            let list = |k: &str| -> Vec<String> {
                d.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Access {
                at: tongban_standards::date::china_time(r.at),
                at_ms: r.at,
                user: r.actor,
                department: d
                    .get("department")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                role: d.get("role").and_then(Value::as_str).map(str::to_string),
                fields: list("shown"),
                served_under: d.get("served_under").cloned().unwrap_or(json!([])),
            }
        })
        .collect())
}

/// `GET /api/catalogue`: every resource with its fields' sharing classes, the responsibility
/// list (provider, update frequency, last update) and the share of fields shared.
pub async fn catalogue(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let sharing = sharing_of(&state)?;
    principal(sharing, &headers).await?;
    let resources: Vec<Value> = sharing
        .catalogue
        .iter()
        .map(|r| {
            let mut v = json!(r);
            v["shared_share"] = json!(r.shared_share());
            v
        })
        .collect();
    Ok(Json(json!({ "resources": resources })))
}

/// `GET /api/catalogue/{id}`, or with `?format=ckan` in the shape of a CKAN dataset record.
pub async fn catalogue_resource(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let sharing = sharing_of(&state)?;
    principal(sharing, &headers).await?;
    let ckan = match params {
        Ok(axum::extract::Query(p)) => p.iter().any(|(k, v)| k == "format" && v == "ckan"),
        Err(_) => false,
    };
    let resource = sharing
        .catalogue
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no resource {:?} in the catalogue",
                    id.chars().take(64).collect::<String>()
                ),
            )
        })?;
    Ok(Json(if ckan {
        tongban_sharing::catalogue::ckan(resource)
    } else {
        json!(resource)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_fields_go_out_as_stored_and_read_back_as_json() {
        let record = r#"{"key":"P1","fields":{"name":{"value":"王小明","source":"police_household","date":"2020-01-01"},"phone":{"value":"13912345678"}}}"#;
        let doc: GoldenDoc = serde_json::from_str(record).unwrap();
        let fields = doc.fields.unwrap();
        let mut view = ViewFields::default();
        view.push("name", Shown::Kept(fields["name"].to_owned()));
        view.push("phone", Shown::Masked(mask("phone", "13912345678")));
        // Catalogue order, each shown field byte for byte as the golden record keeps it.
        assert_eq!(
            serde_json::to_string(&view).unwrap(),
            r#"{"name":{"value":"王小明","source":"police_household","date":"2020-01-01"},"phone":{"masked":"139******78"}}"#
        );
        assert_eq!(view.get("name").unwrap()["source"], "police_household");
        assert_eq!(view.get("phone").unwrap(), json!({"masked": "139******78"}));
        assert!(view.get("address").is_none());
        // A room's record keeps its fields at the top; a value that is not text is left out.
        let room: GoldenDoc =
            serde_json::from_str(r#"{"address_key":"苏州|1幢|101","community":7}"#).unwrap();
        assert!(room.fields.is_none());
        assert_eq!(room.address_key.unwrap(), "苏州|1幢|101");
        assert!(room.community.unwrap().as_str().is_none());
    }

    #[test]
    fn a_stored_record_is_read_with_each_fields_provenance_or_not_at_all() {
        let kept = |value, record_key| tongban_libraries::golden_text::Kept {
            value,
            source: "police_household",
            record_key,
            role: "subject",
            date: "",
            agreeing: 1,
            disagreeing: 0,
        };
        let stored = tongban_libraries::golden_text::golden_text(
            "P1",
            2,
            &["police_household"],
            &[
                ("name", kept("王小明", "H1")),
                ("phone", kept("13912345678", "H2")),
            ],
        );
        let parsed = ParsedGolden::parse(&stored).unwrap();
        let phone: Value = serde_json::from_str(parsed.kept("phone").unwrap().raw.get()).unwrap();
        assert_eq!(phone["record_key"], "H2");
        // Masked once, when parsed, as a read masks it.
        assert_eq!(parsed.kept("phone").unwrap().masked, "139******78");
        assert_eq!(parsed.kept("name").unwrap().masked, mask("name", "王小明"));
        // A field citing a record the list lacks is an error, not a field shown without
        // its provenance.
        assert!(ParsedGolden::parse(&stored.replace(r#""cited":1"#, r#""cited":5"#)).is_err());
    }

    #[test]
    fn a_counted_day_knows_every_grant_and_other_days_none() {
        let mut q = super::QuotaCounts::default();
        assert_eq!(q.get("G1", 7), None);
        *q.slot("G1", 7, 0) += 1;
        q.counted(7, [("G1".to_string(), 5), ("G2".to_string(), 3)].into());
        // G1's count made by a read stays; G2's comes from the log; G3 served nothing.
        assert_eq!(q.get("G1", 7), Some(1));
        assert_eq!(q.get("G2", 7), Some(3));
        assert_eq!(q.get("G3", 7), Some(0));
        assert_eq!(q.get("G3", 8), None);
        assert!(q.existing("G3", 7).is_none());
        *q.slot("G3", 7, 0) += 2;
        assert_eq!(q.get("G3", 7), Some(2));
    }
}
