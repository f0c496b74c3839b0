//! Search requests read: which golden-record fields a search names and the values to match, each
//! value put into the form the libraries keep (a cleaned name, a canonical phone, an 18-digit id,
//! an address key), and which fields the caller must be allowed to see in a result for it to be
//! returned — a search by phone answers only with people whose phone the caller may see, so that
//! a search cannot tell what a read would hide.
//!
//! Pure: no store, no policy. The governed API runs the search and decides each result.

use tongban_standards::{address, citizen_id, credit_code, date, names, phone};

/// A search as the store runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// (golden-record JSON path, value), all of which must match.
    pub criteria: Vec<(&'static str, String)>,
    /// The fields whose values the search matched: a result is returned only if the caller may
    /// see each of them.
    pub required: Vec<&'static str>,
}

/// Why a search request cannot be run, naming the parameter and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("unknown parameter {0:?}: {1}")]
    Unknown(String, &'static str),
    #[error("parameter {0} given twice")]
    Twice(String),
    #[error("{field} {value:?}: {message}")]
    Invalid {
        field: &'static str,
        value: String,
        message: String,
    },
    #[error("{0}")]
    Shape(&'static str),
}

/// The searches each kind offers, as the error messages spell them.
pub fn offered(kind: &str) -> &'static str {
    match kind {
        "person" => "search persons by name and birth_date, by phone, by citizen_id or by address",
        "entity" => "search entities by name or by credit_code",
        _ => "search rooms and buildings by address",
    }
}

/// The longest value any parameter may have; longer ones are refused unread.
const MAX_VALUE: usize = 200;

fn invalid(field: &'static str, value: &str, message: impl Into<String>) -> SearchError {
    SearchError::Invalid {
        field,
        value: value.chars().take(MAX_VALUE).collect(),
        message: message.into(),
    }
}

/// Read a search of `kind` from query parameters.
pub fn parse(kind: &str, params: &[(String, String)]) -> Result<Search, SearchError> {
    parse_in(kind, params, None)
}

/// Read a search of `kind` made by someone whose jurisdiction is the division `within`: an
/// address that leaves out the district, street or city it lies in is read as lying within it,
/// as a street's clerk writes 青剑湖花园12幢 for an address in their street. A grid's code
/// is read as its community's (grids are not in the division table).
pub fn parse_in(
    kind: &str,
    params: &[(String, String)],
    within: Option<&str>,
) -> Result<Search, SearchError> {
    let within = within.map(|w| w.get(..12).unwrap_or(w));
    let allowed: &[&str] = match kind {
        "person" => &["name", "birth_date", "phone", "citizen_id", "address"],
        "entity" => &["name", "credit_code"],
        _ => &["address"],
    };
    let mut given: Vec<(&'static str, &str)> = Vec::new();
    for (k, v) in params {
        let Some(name) = allowed.iter().find(|a| **a == k) else {
            return Err(SearchError::Unknown(
                k.chars().take(64).collect(),
                offered(kind),
            ));
        };
        if given.iter().any(|(g, _)| g == name) {
            return Err(SearchError::Twice(k.clone()));
        }
        if v.len() > MAX_VALUE {
            return Err(invalid(name, v, format!("longer than {MAX_VALUE} bytes")));
        }
        given.push((name, v.trim()));
    }
    given.sort_by_key(|(n, _)| allowed.iter().position(|a| a == n));
    let names: Vec<&str> = given.iter().map(|(n, _)| *n).collect();
    let value = |n: &str| given.iter().find(|(g, _)| *g == n).map_or("", |(_, v)| *v);
    match (kind, names.as_slice()) {
        ("person", ["name", "birth_date"]) => {
            let name = clean_name(value("name"))?;
            let raw = value("birth_date");
            let birth = date::parse_date(raw)
                .map_err(|e| invalid("birth_date", raw, format!("not a date: {e}")))?;
            Ok(Search {
                criteria: vec![
                    ("fields.name.value", name),
                    (
                        "fields.birth_date.value",
                        birth.format("%Y-%m-%d").to_string(),
                    ),
                ],
                required: vec!["name", "birth_date"],
            })
        }
        ("person", ["name"]) => Err(SearchError::Shape(
            "a search by name also needs birth_date (YYYY-MM-DD): names alone are too common",
        )),
        ("person", ["phone"]) => {
            let raw = value("phone");
            let p = phone::parse_phone(raw, None)
                .map_err(|e| invalid("phone", raw, format!("not a phone number: {e}")))?;
            Ok(Search {
                criteria: vec![("fields.phone.value", p.canonical)],
                required: vec!["phone"],
            })
        }
        ("person", ["citizen_id"]) => {
            let raw = value("citizen_id");
            let id = citizen_id::CitizenId::parse(raw)
                .map_err(|e| invalid("citizen_id", raw, format!("not a citizen id: {e}")))?;
            Ok(Search {
                criteria: vec![("fields.citizen_id.value", id.as_str().to_string())],
                required: vec!["citizen_id"],
            })
        }
        ("person", ["address"]) => {
            let key = address_key(value("address"), within)?;
            Ok(Search {
                criteria: vec![("fields.residence.value", key)],
                required: vec!["residence"],
            })
        }
        ("entity", ["name"]) => {
            let raw = value("name");
            if raw.is_empty() {
                return Err(invalid("name", raw, "empty"));
            }
            Ok(Search {
                criteria: vec![("fields.name.value", raw.to_string())],
                required: vec!["name"],
            })
        }
        ("entity", ["credit_code"]) => {
            let raw = value("credit_code");
            let c = credit_code::parse_detailed(raw)
                .map_err(|e| invalid("credit_code", raw, format!("not a credit code: {e}")))?;
            Ok(Search {
                criteria: vec![("fields.credit_code.value", c.code.as_str().to_string())],
                required: vec!["credit_code"],
            })
        }
        ("room", ["address"]) => {
            let raw = value("address");
            let key = address_key(raw, within)?;
            if key.ends_with('|') {
                return Err(invalid("address", raw, "the address names no room"));
            }
            Ok(Search {
                criteria: vec![("address_key", key)],
                required: vec!["address_key"],
            })
        }
        ("building", ["address"]) => {
            let key = address_key(value("address"), within)?;
            // A building's key is the first three parts of the full key: county, place and
            // building number (empty for a door-numbered premises).
            let building: Vec<&str> = key.split('|').take(3).collect();
            Ok(Search {
                criteria: vec![("address_key", building.join("|"))],
                required: vec!["address_key"],
            })
        }
        (_, []) => Err(SearchError::Shape(
            "give search parameters, or a key in the path",
        )),
        _ => Err(SearchError::Shape(
            "these parameters do not make a search; use one of the forms the documentation lists",
        )),
    }
}

fn clean_name(raw: &str) -> Result<String, SearchError> {
    names::clean_name(raw)
        .map(|n| n.name)
        .map_err(|e| invalid("name", raw, format!("not a name: {e}")))
}

fn address_key(raw: &str, within: Option<&str>) -> Result<String, SearchError> {
    let a = address::parse_address_in(raw, within)
        .map_err(|e| invalid("address", raw, format!("not an address: {e}")))?;
    address::canonical_key(&a).ok_or_else(|| {
        invalid(
            "address",
            raw,
            "the address needs its district or county (unless your jurisdiction lies within one) and a compound or road",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_take_the_form_the_libraries_keep() {
        let s = parse(
            "person",
            &p(&[("birth_date", "1990年1月2日"), ("name", " 張三 ")]),
        )
        .unwrap();
        assert_eq!(
            s.criteria,
            vec![
                ("fields.name.value", "张三".to_string()),
                ("fields.birth_date.value", "1990-01-02".to_string())
            ]
        );
        let s = parse("person", &p(&[("phone", "+86 138-1234-5678")])).unwrap();
        assert_eq!(s.criteria[0].1, "13812345678");
        assert_eq!(s.required, ["phone"]);
        let s = parse(
            "person",
            &p(&[("address", "江苏省苏州市苏州工业园区华湾花园1幢3单元402室")]),
        )
        .unwrap();
        assert_eq!(s.criteria[0].1, "320576|华湾花园|1|3|402");
        let s = parse(
            "building",
            &p(&[("address", "苏州工业园区华湾花园1幢3单元402室")]),
        )
        .unwrap();
        assert_eq!(s.criteria[0].1, "320576|华湾花园|1");
    }

    #[test]
    fn an_address_without_its_district_is_read_within_the_callers_jurisdiction() {
        let bare = p(&[("address", "华湾花园1幢3单元402室")]);
        let e = parse("room", &bare).unwrap_err();
        assert!(e.to_string().contains("district or county"), "{e}");
        // A street's clerk, a community worker, a grid worker: all within the district.
        for within in ["320576052", "320576052001", "320576052001003"] {
            let s = parse_in("room", &bare, Some(within)).unwrap();
            assert_eq!(s.criteria[0].1, "320576|华湾花园|1|3|402", "{within}");
        }
        // A city-wide admin's jurisdiction names no district: still refused.
        assert!(parse_in("room", &bare, Some("3205")).is_err());
        // A district the address names itself wins over the caller's.
        let s = parse_in(
            "building",
            &p(&[("address", "苏州工业园区华湾花园1幢")]),
            Some("320505"),
        );
        assert_eq!(
            s.map(|s| s.criteria[0].1.clone()).ok().as_deref(),
            Some("320576|华湾花园|1")
        );
    }

    #[test]
    fn bad_searches_say_what_is_wrong() {
        assert!(matches!(
            parse("person", &p(&[("name", "张三")])),
            Err(SearchError::Shape(_))
        ));
        assert!(matches!(
            parse("person", &p(&[("nme", "张三")])),
            Err(SearchError::Unknown(k, _)) if k == "nme"
        ));
        assert!(matches!(
            parse("person", &p(&[("phone", "1"), ("phone", "2")])),
            Err(SearchError::Twice(_))
        ));
        let e = parse("person", &p(&[("citizen_id", "' OR 1=1 --")])).unwrap_err();
        assert!(e.to_string().contains("citizen_id"), "{e}");
        assert!(matches!(
            parse("person", &p(&[("phone", &"1".repeat(500))])),
            Err(SearchError::Invalid { field: "phone", .. })
        ));
        assert!(parse("room", &p(&[("address", "苏州工业园区华湾花园1幢")])).is_err());
        assert!(parse("person", &[]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(kind in "person|entity|room|building", k in "[a-z_]{0,12}", v in ".{0,80}") {
            let _ = parse(&kind, &[(k.clone(), v.clone())]);
            let _ = parse_in(&kind, &[(k, v)], Some("320576052"));
        }
    }
}
