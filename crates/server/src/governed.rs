//! The governed query API: reads of the base libraries under the caller's grants and
//! jurisdiction, each one recorded in the audit log before it is answered.
//!
//! `GET /api/persons/{key}` with `Authorization: Bearer <token>`: the token names a user (role,
//! department, jurisdiction); the person's community comes from where the libraries say they
//! live; `tongban_sharing::policy::decide` decides every field of the golden record (shown with
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
use serde_json::{Map, Value, json};
use tongban_sharing::audit::Event;
use tongban_sharing::catalogue::Resource;
use tongban_sharing::identity::{Identities, ManageError, Principal};
use tongban_sharing::policy::{Decision, Grant, Subject, decide, mask};
use tongban_sharing::writer::AuditLog;

/// What the governed API needs beside the store.
pub struct Sharing {
    pub identities: Identities,
    pub audit: AuditLog,
    pub catalogue: Vec<Resource>,
    /// Reads served under each grant today: (grant, day) → count, counted from the audit log
    /// the first time a grant serves a read on a day, then kept here.
    pub quota_used: std::sync::Mutex<std::collections::HashMap<(String, i64), u64>>,
    /// The community of each entity read recently, and when it was looked up: it changes when
    /// the libraries do (a run, or new records resolved incrementally), and a minute-old answer
    /// is accepted.
    communities: std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>,
    /// Each department's grants as of a moment ago: an approval or revocation takes effect
    /// within [`GRANTS_FRESH_MS`].
    grants: std::sync::Mutex<std::collections::HashMap<String, (Vec<Grant>, i64)>>,
}

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
            communities: Default::default(),
            grants: Default::default(),
        }
    }

    async fn community(
        &self,
        store: &dyn tongban_store::Store,
        kind: &str,
        key: &str,
        now: i64,
    ) -> Result<String, ApiError> {
        if let Ok(map) = self.communities.lock()
            && let Some((c, at)) = map.get(key)
            && now - at < COMMUNITY_FRESH_MS
        {
            return Ok(c.clone());
        }
        let c = tongban_libraries::population::community_of_entity(store, kind, key)
            .await
            .map_err(ApiError::internal)?
            .unwrap_or_default();
        if let Ok(mut map) = self.communities.lock() {
            map.insert(key.to_string(), (c.clone(), now));
        }
        Ok(c)
    }

    async fn grants_of(
        &self,
        store: &dyn tongban_store::Store,
        department: &str,
        now: i64,
    ) -> Result<Vec<Grant>, ApiError> {
        if let Ok(map) = self.grants.lock()
            && let Some((g, at)) = map.get(department)
            && now - at < GRANTS_FRESH_MS
        {
            return Ok(g.clone());
        }
        let g: Vec<Grant> = store
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

/// Reads already served under `grant` on `day`, from memory or, the first time, the audit log.
async fn used_today(
    sharing: &Sharing,
    store: &dyn tongban_store::Store,
    grant: &str,
    day: i64,
) -> Result<u64, ApiError> {
    if let Ok(map) = sharing.quota_used.lock()
        && let Some(&n) = map.get(&(grant.to_string(), day))
    {
        return Ok(n);
    }
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .audit_entries(after, 10_000)
            .await
            .map_err(ApiError::internal)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        entries.extend(page.into_iter().map(tongban_sharing::writer::from_row));
    }
    let n = tongban_sharing::watch::reads_under_grant(&entries, grant, day);
    if let Ok(mut map) = sharing.quota_used.lock() {
        map.entry((grant.to_string(), day)).or_insert(n);
    }
    Ok(n)
}

fn token(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no_token",
                "send your API token as `Authorization: Bearer tb_…`",
            )
        })
}

async fn principal(sharing: &Sharing, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = token(headers)?;
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

fn valid_key(prefix: char, key: &str) -> bool {
    key.len() == 17 && key.starts_with(prefix) && key[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `GET /api/persons/{key}`.
pub async fn person(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read(state, headers, "person", key).await
}

/// `GET /api/entities/{key}`.
pub async fn entity(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read(state, headers, "entity", key).await
}

/// `GET /api/rooms/{key}`.
pub async fn room(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read(state, headers, "room", key).await
}

/// `GET /api/buildings/{key}`.
pub async fn building(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read(state, headers, "building", key).await
}

/// A governed read of one library entity of `kind`.
async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    kind: &'static str,
    key: String,
) -> Result<Json<Value>, ApiError> {
    let prefix = match kind {
        "person" => 'P',
        "entity" => 'E',
        "room" => 'R',
        _ => 'B',
    };
    let Some(sharing) = state.sharing.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sharing_disabled",
            "the governed API is off on this server",
        ));
    };
    let p = principal(sharing, &headers).await?;
    if !valid_key(prefix, &key) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_key",
            format!("a {kind} key is {prefix} and 16 hexadecimal digits"),
        ));
    }
    let store = state.store.as_ref();
    // An unknown key and a key outside the caller's jurisdiction get the same answer, so that
    // answers do not tell which keys exist.
    let not_here = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {kind} {key} within your jurisdiction"),
        )
    };
    let golden = store
        .golden_record(kind, &key)
        .await
        .map_err(ApiError::internal)?;
    let mut record: Value = match &golden {
        Some(g) => serde_json::from_str(&g.record).map_err(ApiError::internal)?,
        None => json!({}),
    };
    // Rooms and buildings keep their few fields at the top of the record; give them the shape
    // of the others.
    if record.get("fields").is_none() {
        let fields: Map<String, Value> = ["address_key", "community"]
            .iter()
            .filter_map(|f| {
                let v = record.get(*f)?.as_str()?.to_string();
                Some((f.to_string(), json!({ "value": v })))
            })
            .collect();
        record["fields"] = Value::Object(fields);
    }
    let community = sharing
        .community(store, kind, &key, tongban_store::now_millis())
        .await?;
    // A citizen's user id is their person key: they may read their own record.
    let subject = Subject {
        key: &key,
        division: &community,
        is_caller: p.role == tongban_sharing::identity::Role::Citizen
            && kind == "person"
            && p.user_id == key,
    };
    let resource_id = format!("library.{kind}");
    let resource = sharing
        .catalogue
        .iter()
        .find(|r| r.id == resource_id)
        .ok_or_else(|| ApiError::internal(format!("the catalogue has no {resource_id}")))?;
    if golden.is_none() {
        return Err(not_here());
    }
    if !tongban_sharing::policy::may_see(&p, &subject) {
        // Recorded too: an attempt outside one's jurisdiction is what anomaly alerts watch.
        let _ = sharing
            .audit
            .append(Event {
                at: tongban_store::now_millis(),
                actor: p.user_id.clone(),
                action: format!("read.{kind}.denied"),
                subject: key.clone(),
                detail: json!({"reason": "outside jurisdiction", "community": community})
                    .to_string(),
            })
            .await;
        return Err(not_here());
    }
    let grants: Vec<Grant> = match &p.department {
        Some(d) => {
            sharing
                .grants_of(store, d, tongban_store::now_millis())
                .await?
        }
        None => Vec::new(),
    };
    let now = tongban_store::now_millis();
    // A grant whose daily quota is spent serves nothing more today.
    let day = tongban_sharing::watch::day_of(now);
    // Each active grant's read is reserved under one lock before the fields are decided, so
    // concurrent reads cannot together exceed the quota; unused reservations are given back.
    let mut exhausted: Vec<String> = Vec::new();
    let mut reserved: Vec<String> = Vec::new();
    for g in grants.iter().filter(|g| g.active(now)) {
        used_today(sharing, store, &g.id, day).await?;
        let mut map = sharing
            .quota_used
            .lock()
            .map_err(|_| ApiError::internal("the quota counter is poisoned"))?;
        let n = map.entry((g.id.clone(), day)).or_insert(0);
        if *n >= u64::from(g.daily_quota) {
            exhausted.push(g.id.clone());
        } else {
            *n += 1;
            reserved.push(g.id.clone());
        }
    }
    let grants: Vec<_> = grants
        .into_iter()
        .filter(|g| !exhausted.contains(&g.id))
        .collect();
    let mut fields = Map::new();
    let mut shown: Vec<&str> = Vec::new();
    let mut masked: Vec<&str> = Vec::new();
    let mut withheld: Vec<&str> = Vec::new();
    let mut served: Vec<Value> = Vec::new();
    let empty = Map::new();
    let golden_fields = record
        .get("fields")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for f in &resource.fields {
        if f.name == "key" {
            continue;
        }
        let Some(kept) = golden_fields.get(&f.name) else {
            continue;
        };
        let value = kept.get("value").and_then(Value::as_str).unwrap_or("");
        match decide(&p, resource, &f.name, &subject, now, &grants).decision {
            Decision::Show { grant } => {
                shown.push(&f.name);
                fields.insert(f.name.clone(), kept.clone());
                if let Some(id) = grant
                    && !served.iter().any(|s| s["grant"] == id.as_str())
                    && let Some(g) = grants.iter().find(|g| g.id == id)
                {
                    served.push(
                        json!({"grant": g.id, "purpose": g.purpose, "legal_basis": g.legal_basis}),
                    );
                }
            }
            Decision::Mask => {
                masked.push(&f.name);
                fields.insert(f.name.clone(), json!({ "masked": mask(&f.name, value) }));
            }
            Decision::Omit => withheld.push(&f.name),
        }
    }
    if let Ok(mut map) = sharing.quota_used.lock() {
        for id in reserved
            .iter()
            .filter(|id| !served.iter().any(|s| s["grant"] == id.as_str()))
        {
            if let Some(n) = map.get_mut(&(id.clone(), day)) {
                *n = n.saturating_sub(1);
            }
        }
    }
    let seq = sharing
        .audit
        .append(Event {
            at: now,
            actor: p.user_id.clone(),
            action: format!("read.{kind}"),
            subject: key.clone(),
            detail: json!({
                "department": p.department, "role": p.role, "shown": shown, "masked": masked,
                "served_under": served,
            })
            .to_string(),
        })
        .await
        // Not recorded, not answered.
        .map_err(|e| {
            eprintln!("audit: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the read could not be recorded, so it is not answered; try again",
            )
        })?;
    Ok(Json(json!({
        "key": key,
        "community": community,
        "fields": fields,
        "withheld": withheld,
        "served_under": served,
        "quota_exhausted": exhausted,
        "audit_entry": seq,
    })))
}

/// One read of a citizen's record, as they are shown it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Access {
    pub at: i64,
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
    let Some(sharing) = state.sharing.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sharing_disabled",
            "the governed API is off on this server",
        ));
    };
    let p = principal(sharing, &headers).await?;
    if p.role != tongban_sharing::identity::Role::Citizen {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "citizens_only",
            "this page lists who read a citizen's own record; sign in as that citizen",
        ));
    }
    let rows = state
        .store
        .audit_of_subject(&p.user_id, 1_000)
        .await
        .map_err(ApiError::internal)?;
    let accesses: Vec<Access> = rows
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
                at: r.at,
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
        .collect();
    Ok(Json(json!({ "person": p.user_id, "accesses": accesses })))
}
