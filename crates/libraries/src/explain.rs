//! Why two person (or legal-entity) mentions are, or are not, one: each field's comparison level
//! and the weight the latest run learned for it.
//!
//! The run stores its learned weights in its summary; this module reads the two records, rebuilds
//! their mentions exactly as resolution does, compares them field by field and adds the weights.
//! Term-frequency adjustment (a rare name counts for more) is not stored per value and is left
//! out, which the explanation says.

use crate::build::Summary;
use crate::{LibraryError, Result};
use serde_json::Value;
use tongban_resolution::entity::EntityMention;
use tongban_resolution::fields::Fields;
use tongban_resolution::linker::{Features, Settings, pattern};
use tongban_resolution::model::level_of;
use tongban_resolution::person::{Mention, RecordView, mentions, settings, table};
use tongban_resolution::table::Table;
use tongban_store::{RecordStatus, Store};

/// A mention's address: source, record key and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentionRef {
    pub source: String,
    pub record_key: String,
    pub role: String,
}

impl std::str::FromStr for MentionRef {
    type Err = String;
    /// `SOURCE:KEY` or `SOURCE:KEY:ROLE` (role defaults to subject).
    fn from_str(s: &str) -> std::result::Result<MentionRef, String> {
        let mut parts = s.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(source), Some(key), role) if !source.is_empty() && !key.is_empty() => {
                Ok(MentionRef {
                    source: source.to_string(),
                    record_key: key.to_string(),
                    role: role.unwrap_or("subject").to_string(),
                })
            }
            _ => Err(format!(
                "{s:?}: write SOURCE:RECORD_KEY or SOURCE:RECORD_KEY:ROLE"
            )),
        }
    }
}

/// One field's part.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldPart {
    pub field: String,
    pub left: String,
    pub right: String,
    pub level: String,
    pub weight: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PairExplanation {
    pub fields: Vec<FieldPart>,
    pub prior: f64,
    pub total: f64,
    pub probability: f64,
    /// "must link" (the same valid id agreeing with both records), "cannot link" (two different
    /// valid ids), or "" when the weights decide.
    pub rule: String,
    /// The persons (or legal entities) the latest run put them in.
    pub persons: (Option<String>, Option<String>),
}

/// The cleaned record a mention reference names, with the source's subject and the raw values
/// of identifier fields that failed cleaning.
async fn record_of(
    store: &dyn Store,
    r: &MentionRef,
) -> Result<(String, String, Vec<(String, String)>)> {
    let missing = |what: &str| LibraryError::Truth {
        file: format!("{}:{}", r.source, r.record_key),
        message: what.to_string(),
    };
    let source = store
        .source(&r.source)
        .await?
        .ok_or_else(|| missing("no such source"))?;
    let version = store
        .record_history(&r.source, &r.record_key)
        .await?
        .into_iter()
        .rev()
        .find(|v| v.status == RecordStatus::Current)
        .ok_or_else(|| missing("no current record with that key"))?;
    let invalid: Vec<(String, String)> = serde_json::from_str::<Vec<Value>>(&version.issues)
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            Some((
                i.get("field")?.as_str()?.to_string(),
                i.get("raw")?.as_str()?.to_string(),
            ))
        })
        .filter(|(f, _)| f.ends_with("citizen_id") || f.ends_with("credit_code"))
        .collect();
    Ok((source.subject, version.cleaned, invalid))
}

fn not_named(r: &MentionRef, what: &str) -> LibraryError {
    LibraryError::Truth {
        file: format!("{}:{}", r.source, r.record_key),
        message: format!("the record names no {what} as {}", r.role),
    }
}

/// The mention `r` names, read off its record by `of` (person or entity mentions).
async fn mention_at<M: crate::build::MentionOf>(
    store: &dyn Store,
    r: &MentionRef,
    of: fn(&RecordView) -> Vec<M>,
    what: &str,
) -> Result<M> {
    let (subject, cleaned, invalid) = record_of(store, r).await?;
    let cleaned = Fields::parse(&cleaned);
    let view = RecordView {
        source: &r.source,
        subject: &subject,
        key: &r.record_key,
        cleaned: &cleaned,
        invalid: &invalid,
    };
    of(&view)
        .into_iter()
        .find(|m| m.at().2 == r.role)
        .ok_or_else(|| not_named(r, what))
}

async fn mention_of(store: &dyn Store, r: &MentionRef) -> Result<Mention> {
    mention_at(store, r, mentions, "person").await
}

async fn entity_mention_of(store: &dyn Store, r: &MentionRef) -> Result<EntityMention> {
    mention_at(
        store,
        r,
        tongban_resolution::entity::mentions,
        "legal entity",
    )
    .await
}

/// The latest run of a kind and its summary.
async fn latest(store: &dyn Store, kind: &str) -> Result<Summary> {
    let run = store
        .latest_resolution(kind)
        .await?
        .ok_or_else(|| LibraryError::Truth {
            file: format!("{kind} library"),
            message: "no run yet: run `tongban resolve` first".into(),
        })?;
    serde_json::from_str(&run.summary).map_err(|e| LibraryError::Truth {
        file: format!("resolution run {}", run.id),
        message: format!("its summary cannot be read: {e}"),
    })
}

/// Each field's part in a pair (rows 0 and 1 of `t`) under a run's learned weights.
fn field_parts(t: &Table, s: &Settings, summary: &Summary) -> Vec<FieldPart> {
    let features = Features::new(t, s);
    let p = pattern(s, &features, 0, 1);
    s.comparisons
        .iter()
        .enumerate()
        .map(|(c, cmp)| {
            let l = level_of(p, c);
            let label = cmp.kind.labels()[l];
            let weight = summary
                .weights
                .iter()
                .find(|(n, _)| *n == cmp.name)
                .and_then(|(_, levels)| levels.iter().find(|(n, _)| n == label))
                .map_or(0.0, |(_, w)| *w);
            let col = &t.columns[cmp.column];
            FieldPart {
                field: cmp.name.clone(),
                left: col.get(0).to_string(),
                right: col.get(1).to_string(),
                level: label.to_string(),
                weight,
            }
        })
        .collect()
}

/// Explain two legal-entity mentions under the latest entity run's weights.
pub async fn explain_entities(
    store: &dyn Store,
    a: &MentionRef,
    b: &MentionRef,
) -> Result<PairExplanation> {
    let summary = latest(store, "entity").await?;
    let (ma, mb) = (
        entity_mention_of(store, a).await?,
        entity_mention_of(store, b).await?,
    );
    let pair = [ma.clone(), mb.clone()];
    let t = tongban_resolution::entity::table(&pair);
    let s = tongban_resolution::entity::settings();
    let fields = field_parts(&t, &s, &summary);
    let total: f64 = fields.iter().map(|f| f.weight).sum();
    let probability = 1.0 / (1.0 + (-(total + summary.prior)).exp2());
    let rule =
        if !ma.valid_code.is_empty() && !mb.valid_code.is_empty() && ma.valid_code != mb.valid_code
        {
            "cannot link: two different valid credit codes".to_string()
        } else if !ma.valid_code.is_empty() && ma.valid_code == mb.valid_code {
            "must link: the same valid credit code".to_string()
        } else {
            String::new()
        };
    let entities = (
        store
            .entity_of("entity", &a.source, &a.record_key, &a.role)
            .await?,
        store
            .entity_of("entity", &b.source, &b.record_key, &b.role)
            .await?,
    );
    Ok(PairExplanation {
        fields,
        prior: summary.prior,
        total,
        probability,
        rule,
        persons: entities,
    })
}

/// Explain the pair under the latest person run's weights.
pub async fn explain_persons(
    store: &dyn Store,
    a: &MentionRef,
    b: &MentionRef,
) -> Result<PairExplanation> {
    let summary = latest(store, "person").await?;
    let (ma, mb) = (mention_of(store, a).await?, mention_of(store, b).await?);
    let pair = [ma.clone(), mb.clone()];
    let t = table(&pair);
    let fields = field_parts(&t, &settings(), &summary);
    let total: f64 = fields.iter().map(|f| f.weight).sum();
    let probability = 1.0 / (1.0 + (-(total + summary.prior)).exp2());
    let rule = if !ma.valid_id.is_empty() && !mb.valid_id.is_empty() && ma.valid_id != mb.valid_id {
        "cannot link: two different valid citizen ids".to_string()
    } else if ma.id_agrees && mb.id_agrees && ma.valid_id == mb.valid_id {
        "must link: the same valid citizen id, agreeing with both records".to_string()
    } else {
        String::new()
    };
    let persons = (
        store
            .entity_of("person", &a.source, &a.record_key, &a.role)
            .await?,
        store
            .entity_of("person", &b.source, &b.record_key, &b.role)
            .await?,
    );
    Ok(PairExplanation {
        fields,
        prior: summary.prior,
        total,
        probability,
        rule,
        persons,
    })
}
