//! The catalogue (目录): every shareable resource — the base-library views and each
//! department's dataset — with its fields, each field's sharing class and sensitivity, and the
//! responsibility list (who provides it, how often, when it last changed).
//!
//! Zhejiang's rule is 无条件归集、有条件使用: everything is collected, and each field is open
//! (shared without asking), conditional (shared under an approved grant) or closed (not shared).
//! The classes here are the defaults a data bureau starts from, chosen by what a field holds:
//! identifiers and contact details of people are conditional, ethnicity is closed (sensitive
//! personal information), what a company register publishes anyway is open. This module only
//! describes resources; deciding a read is the policy's job. It can also render a resource in
//! the shape of a CKAN dataset record, for portals that harvest CKAN.

use serde::{Deserialize, Serialize};

/// How a field may be shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// 无条件共享: any authenticated department may read it.
    Open,
    /// 有条件共享: readable under an approved grant.
    Conditional,
    /// 不予共享: never shared.
    Closed,
}

impl Class {
    pub fn zh(self) -> &'static str {
        match self {
            Class::Open => "无条件共享",
            Class::Conditional => "有条件共享",
            Class::Closed => "不予共享",
        }
    }
}

/// How much harm its disclosure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Public or about organisations.
    Public,
    /// Personal information.
    Personal,
    /// Sensitive personal information (identity numbers, ethnicity, health).
    Sensitive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub class: Class,
    pub sensitivity: Sensitivity,
}

/// A shareable resource. It is serialised for clients (the API, `catalogue --json`), never read
/// back: the catalogue is built from the store each time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// `library.person`, `dataset.police_household`, …
    pub id: String,
    pub title: String,
    /// "library" (a base-library view) or "dataset" (a department's source).
    pub kind: String,
    /// The providing department (the data bureau for the libraries).
    pub provider: String,
    pub update_frequency: String,
    /// When it last changed (milliseconds), if known; serialised as RFC 3339 in China Standard
    /// Time, as every time the API gives.
    #[serde(serialize_with = "china_time_or_null")]
    pub last_update: Option<i64>,
    pub fields: Vec<Field>,
}

impl Resource {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The share of fields that are open or conditional, for the sharing statistics.
    pub fn shared_share(&self) -> f64 {
        let shared = self
            .fields
            .iter()
            .filter(|f| f.class != Class::Closed)
            .count();
        shared as f64 / self.fields.len().max(1) as f64
    }
}

/// The default class and sensitivity of a field, by its name (the part after a role prefix such
/// as `mother.`), its cleaning step, and whether its records are about people (then every field
/// is personal information, conditional at least).
pub fn classify(name: &str, step: Option<&str>, personal: bool) -> (Class, Sensitivity) {
    let base = name.rsplit('.').next().unwrap_or(name);
    match (base, step) {
        ("ethnicity", _) | (_, Some("ethnicity")) => (Class::Closed, Sensitivity::Sensitive),
        ("citizen_id", _) | (_, Some("citizen_id")) => (Class::Conditional, Sensitivity::Sensitive),
        ("credit_code", _) | (_, Some("credit_code")) => (Class::Open, Sensitivity::Public),
        // A person's name is cleaned as a name; a company's name is plain text.
        (_, Some("name")) | (_, Some("phone")) => (Class::Conditional, Sensitivity::Personal),
        (
            "phone" | "birth_date" | "sex" | "residence" | "residence_address"
            | "registered_address" | "household_no" | "household_status" | "deceased_on",
            _,
        ) => (Class::Conditional, Sensitivity::Personal),
        _ if personal => (Class::Conditional, Sensitivity::Personal),
        _ => (Class::Open, Sensitivity::Public),
    }
}

fn field(name: &str, class: Class, sensitivity: Sensitivity) -> Field {
    Field {
        name: name.into(),
        class,
        sensitivity,
    }
}

/// The base-library views the data bureau provides.
pub fn library_resources() -> Vec<Resource> {
    use Class::*;
    use Sensitivity::*;
    let person = [
        ("key", Open, Public),
        ("name", Conditional, Personal),
        ("citizen_id", Conditional, Sensitive),
        ("sex", Conditional, Personal),
        ("birth_date", Conditional, Personal),
        ("ethnicity", Closed, Sensitive),
        ("phone", Conditional, Personal),
        ("residence", Conditional, Personal),
        ("registered_address", Conditional, Personal),
        ("household_no", Conditional, Personal),
        ("household_status", Conditional, Personal),
        ("deceased_on", Conditional, Personal),
        // Not fields of the golden record but its links (see `policy::link_rule`): family
        // members, and the companies one works for or represents.
        ("family", Conditional, Personal),
        ("employer", Conditional, Personal),
    ];
    let entity = [
        ("key", Open, Public),
        ("credit_code", Open, Public),
        ("name", Open, Public),
        ("entity_type", Open, Public),
        ("industry", Open, Public),
        ("founded", Open, Public),
        ("legal_rep", Conditional, Personal),
        ("address", Open, Public),
    ];
    let place = [
        ("key", Open, Public),
        ("address_key", Open, Public),
        ("community", Open, Public),
    ];
    let make = |id: &str, title: &str, fields: &[(&str, Class, Sensitivity)]| Resource {
        id: format!("library.{id}"),
        title: title.into(),
        kind: "library".into(),
        provider: "data_bureau".into(),
        update_frequency: "continuous".into(),
        last_update: None,
        fields: fields.iter().map(|(n, c, s)| field(n, *c, *s)).collect(),
    };
    vec![
        make("person", "人口库 · population library", &person),
        make("entity", "法人库 · legal-entity library", &entity),
        make("room", "房屋库 · rooms", &place),
        make("building", "房屋库 · buildings", &place),
    ]
}

/// A department's dataset, from its mapping: each mapped field with its cleaning step.
/// `personal` says whether its records are about people (subject person or relation).
pub fn dataset_resource(
    id: &str,
    title: &str,
    department: &str,
    update_frequency: Option<&str>,
    last_update: Option<i64>,
    personal: bool,
    fields: &[(String, String)],
) -> Resource {
    Resource {
        id: format!("dataset.{id}"),
        title: title.into(),
        kind: "dataset".into(),
        provider: department.into(),
        update_frequency: update_frequency.unwrap_or("irregular").into(),
        last_update,
        fields: fields
            .iter()
            .map(|(name, step)| {
                let (class, sensitivity) = classify(name, Some(step), personal);
                field(name, class, sensitivity)
            })
            .collect(),
    }
}

/// Errors of reading the catalogue.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error(transparent)]
    Store(#[from] tongban_store::StoreError),
    #[error("source {source_id}: its stored mapping cannot be read: {message}")]
    Mapping { source_id: String, message: String },
}

/// Every resource: the library views (with when each was last built), then each registered
/// source as a dataset (fields from its mapping, last update from its last finished batch).
pub async fn catalogue(store: &dyn tongban_store::Store) -> Result<Vec<Resource>, CatalogueError> {
    let mut out = library_resources();
    for kind in tongban_store::RESOLUTION_KINDS {
        let last = store.latest_resolution(kind).await?.map(|r| r.finished_at);
        if let Some(r) = out.iter_mut().find(|r| r.id == format!("library.{kind}")) {
            r.last_update = last;
        }
    }
    for source in store.sources().await? {
        let mapping = tongban_intake::mapping::Mapping::parse(&source.mapping, &source.id)
            .map_err(|e| CatalogueError::Mapping {
                source_id: source.id.clone(),
                message: e.to_string(),
            })?;
        let fields: Vec<(String, String)> = mapping
            .fields
            .iter()
            .map(|f| {
                let step = serde_json::to_value(f.clean)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                (f.field.clone(), step)
            })
            .collect();
        let last = store
            .batches(Some(&source.id))
            .await?
            .iter()
            .filter_map(|b| b.finished_at)
            .max();
        out.push(dataset_resource(
            &source.id,
            &source.name,
            &source.department,
            source.update_frequency.as_deref(),
            last,
            matches!(source.subject.as_str(), "person" | "relation"),
            &fields,
        ));
    }
    Ok(out)
}

/// A time as RFC 3339 in China Standard Time, or null when unknown.
fn china_time_or_null<S: serde::Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&tongban_standards::date::china_time(*t)),
        None => s.serialize_none(),
    }
}

/// A CKAN dataset record (the shape of `package_show`'s result) for a resource.
pub fn ckan(r: &Resource) -> serde_json::Value {
    let name: String =
        r.id.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
    let fields: Vec<serde_json::Value> = r
        .fields
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f.name, "type": "text",
                "info": {"sharing_class": f.class, "sharing_class_zh": f.class.zh(), "sensitivity": f.sensitivity},
            })
        })
        .collect();
    serde_json::json!({
        "name": name,
        "title": r.title,
        "type": "dataset",
        "private": r.fields.iter().all(|f| f.class != Class::Open),
        "organization": {"name": r.provider, "title": r.provider},
        "notes": format!("{} ({}), provided by {}, updated {}.", r.title, r.kind, r.provider, r.update_frequency),
        "tags": [{"name": r.kind}],
        "extras": [
            {"key": "update_frequency", "value": r.update_frequency},
            {"key": "last_update", "value": r.last_update.map(tongban_standards::date::china_time).unwrap_or_default()},
            {"key": "shared_field_share", "value": format!("{:.2}", r.shared_share())},
        ],
        "resources": [{
            "name": r.id,
            "format": "JSON",
            "url": format!("/api/catalogue/{}", r.id),
            "fields": fields,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_fields_are_conditional_or_closed_and_registers_open() {
        let libs = library_resources();
        let person = &libs[0];
        assert_eq!(person.field("ethnicity").unwrap().class, Class::Closed);
        assert_eq!(
            person.field("citizen_id").unwrap().class,
            Class::Conditional
        );
        assert_eq!(
            person.field("citizen_id").unwrap().sensitivity,
            Sensitivity::Sensitive
        );
        assert!(person.shared_share() < 1.0);
        let entity = &libs[1];
        assert_eq!(entity.field("credit_code").unwrap().class, Class::Open);
        assert_eq!(entity.field("legal_rep").unwrap().class, Class::Conditional);

        let ds = dataset_resource(
            "police_household",
            "户籍管理",
            "公安局",
            Some("daily"),
            Some(1),
            true,
            &[
                ("citizen_id".into(), "citizen_id".into()),
                ("name".into(), "name".into()),
                ("ethnicity".into(), "ethnicity".into()),
                ("mother.name".into(), "name".into()),
                ("registered_address".into(), "address".into()),
                ("status".into(), "text".into()),
            ],
        );
        let class = |n: &str| ds.field(n).unwrap().class;
        assert_eq!(class("citizen_id"), Class::Conditional);
        assert_eq!(class("name"), Class::Conditional);
        assert_eq!(class("mother.name"), Class::Conditional);
        assert_eq!(class("ethnicity"), Class::Closed);
        assert_eq!(class("registered_address"), Class::Conditional);
        assert_eq!(class("status"), Class::Conditional, "a person's record");
        let register = dataset_resource(
            "market_entities",
            "市场主体",
            "市场监管局",
            None,
            None,
            false,
            &[
                ("name".into(), "text".into()),
                ("credit_code".into(), "credit_code".into()),
                ("legal_rep.name".into(), "name".into()),
                ("legal_rep.citizen_id".into(), "citizen_id".into()),
            ],
        );
        let class = |n: &str| register.field(n).unwrap().class;
        assert_eq!(class("name"), Class::Open);
        assert_eq!(class("credit_code"), Class::Open);
        assert_eq!(class("legal_rep.name"), Class::Conditional);
        assert_eq!(class("legal_rep.citizen_id"), Class::Conditional);
    }

    #[test]
    fn a_ckan_record_carries_fields_classes_and_the_provider() {
        let libs = library_resources();
        let c = ckan(&libs[0]);
        assert_eq!(c["name"], "library-person");
        assert_eq!(c["organization"]["name"], "data_bureau");
        let fields = c["resources"][0]["fields"].as_array().unwrap();
        assert_eq!(fields.len(), libs[0].fields.len());
        assert_eq!(fields[5]["info"]["sharing_class"], "closed");
    }
}
