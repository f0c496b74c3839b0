//! Answered reads per grant and hour, read off audit entries as they are appended: the counts
//! [`crate::Store::audit_reads_per_grant`] keeps beside the log, so that a day's reads under a
//! grant (for its daily quota) are a sum of a few stored rows instead of a pass over the day's
//! log.
//!
//! Pure: rows in, counts out. It knows of an entry's detail only the `served_under` list the
//! governed API writes; it does not decide what a quota allows (the server does) nor store
//! anything (each backend's append does).

use crate::AuditRow;
use std::collections::{BTreeMap, HashMap};

/// An hour in milliseconds: the unit the counts are kept in.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Whether an entry records an answered read.
fn answered_read(action: &str) -> bool {
    action.starts_with("read.") && !action.ends_with(".denied")
}

/// How many distinct details of a batch [`by_hour`] keeps read.
const DETAILS_KEPT: usize = 8;

/// Answered reads among `rows` per (hour, grant), in that order.
///
/// A detail names the grants, the fields shown and masked and how the subject was found, not
/// the subject, so the reads of one user under one grant mostly share a few details and a batch
/// holds few distinct ones: each is read once (comparing it with the few kept costs far less than
/// reading it, which was a fortieth of a governed lookup's time on SQLite).
pub(crate) fn by_hour(rows: &[AuditRow]) -> BTreeMap<(i64, String), i64> {
    let mut out: BTreeMap<(i64, String), i64> = BTreeMap::new();
    let mut kept: Vec<(&str, Vec<std::borrow::Cow<'_, str>>)> = Vec::new();
    for r in rows.iter().filter(|r| answered_read(&r.action)) {
        let hour = r.at.div_euclid(HOUR_MS);
        let at = match kept.iter().position(|(d, _)| *d == r.detail) {
            Some(at) => at,
            None => {
                if kept.len() == DETAILS_KEPT {
                    kept.remove(0);
                }
                kept.push((&r.detail, grants_served(&r.detail)));
                kept.len() - 1
            }
        };
        for g in &kept[at].1 {
            *out.entry((hour, g.to_string())).or_default() += 1;
        }
    }
    out
}

/// Answered reads per grant among entries already known to be answered reads, given by their
/// details: how entries from before the counts were kept are counted when the database's own
/// JSON functions refuse one of them (a detail changed by hand, or one PostgreSQL's `jsonb`
/// cannot hold, such as an escaped NUL character).
pub(crate) fn count_details<'a>(
    details: impl IntoIterator<Item = &'a str>,
) -> HashMap<String, u64> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for detail in details {
        for g in grants_served(detail) {
            *out.entry(g.into_owned()).or_default() += 1;
        }
    }
    out
}

/// The distinct grants a detail says its read was served under. Read without a JSON tree, since
/// every appended read passes here: a detail the typed reading refuses is read as a tree, with
/// the tree's answer. Only a detail the API never writes (changed by hand, which `tongban audit
/// verify` reports) can be read differently: serde takes an array for a struct, and skips other
/// fields' values unchecked where a tree refuses the whole detail (a number out of range, a
/// lone surrogate).
fn grants_served(detail: &str) -> Vec<std::borrow::Cow<'_, str>> {
    #[derive(serde::Deserialize)]
    struct Detail<'a> {
        #[serde(borrow, default)]
        served_under: Option<Vec<Served<'a>>>,
    }
    #[derive(serde::Deserialize)]
    struct Served<'a> {
        #[serde(borrow, default)]
        grant: Option<std::borrow::Cow<'a, str>>,
    }
    let mut grants: Vec<std::borrow::Cow<'_, str>> = match serde_json::from_str::<Detail>(detail) {
        Ok(d) => d
            .served_under
            .unwrap_or_default()
            .into_iter()
            .filter_map(|g| g.grant)
            .collect(),
        Err(_) => {
            let d: serde_json::Value = serde_json::from_str(detail).unwrap_or_default();
            d.get("served_under")
                .and_then(|v| v.as_array())
                .map(|served| {
                    served
                        .iter()
                        .filter_map(|g| g.get("grant")?.as_str())
                        .map(|g| std::borrow::Cow::Owned(g.to_string()))
                        .collect()
                })
                .unwrap_or_default()
        }
    };
    // A read counts once under a grant however often the grant is listed.
    grants.sort_unstable();
    grants.dedup();
    grants
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_grants_served_are_read_as_a_json_tree_would_read_them() {
        let tree = |detail: &str| -> Vec<String> {
            let d: serde_json::Value = serde_json::from_str(detail).unwrap_or_default();
            let mut g: Vec<String> = d
                .get("served_under")
                .and_then(|v| v.as_array())
                .map(|s| {
                    s.iter()
                        .filter_map(|g| g.get("grant")?.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            g.sort();
            g.dedup();
            g
        };
        for detail in [
            r#"{"department":"民政局","served_under":[{"grant":"G2","purpose":"p"},{"grant":"G1"}]}"#,
            r#"{"served_under":[{"grant":"G\u0031"},{"purpose":"no grant"},{"grant":"G1"}]}"#,
            r#"{"served_under":[{"grant":7},{"grant":"G3"}]}"#,
            r#"{"served_under":[3,{"grant":"G4"}]}"#,
            r#"{"served_under":null}"#,
            r#"{"served_under":{"grant":"G5"}}"#,
            r#"{"query":"a\u0000b","served_under":[{"grant":"G6"}]}"#,
            r#"{"shown":["phone"]}"#,
            r#"[1,2]"#,
            "not json",
            "",
        ] {
            let fast: Vec<String> = super::grants_served(detail)
                .into_iter()
                .map(|g| g.into_owned())
                .collect();
            assert_eq!(fast, tree(detail), "{detail}");
        }
    }

    #[test]
    fn reads_are_counted_by_hour_and_grant() {
        let row = |at: i64, action: &str, detail: &str| crate::AuditRow {
            seq: 1,
            at,
            actor: "u".into(),
            action: action.into(),
            subject: "P".into(),
            detail: detail.into(),
            prev: String::new(),
            hash: String::new(),
        };
        let g1 = r#"{"served_under":[{"grant":"G1"},{"grant":"G1"}]}"#;
        let rows = [
            row(0, "read.person", g1),
            row(super::HOUR_MS - 1, "read.person", g1),
            row(super::HOUR_MS, "read.entity", g1),
            row(-1, "read.person", g1),
            row(5, "read.person.denied", g1),
            row(5, "grant.approve", g1),
        ];
        let counts: Vec<((i64, String), i64)> = super::by_hour(&rows).into_iter().collect();
        assert_eq!(
            counts,
            [
                ((-1, "G1".to_string()), 1),
                ((0, "G1".to_string()), 2),
                ((1, "G1".to_string()), 1)
            ]
        );
        // Details read once and kept give what reading each row's gives: more distinct details
        // than are kept, interleaved and repeated, some without a grant or not JSON.
        let details: Vec<String> = (0..11)
            .map(|i| match i {
                9 => "not json".to_string(),
                10 => r#"{"shown":["phone"]}"#.to_string(),
                _ => format!(
                    r#"{{"served_under":[{{"grant":"G{}"}},{{"grant":"G{i}"}}]}}"#,
                    i % 3
                ),
            })
            .collect();
        let rows: Vec<crate::AuditRow> = (0..400)
            .map(|n: i64| {
                let detail = &details[((n * 7) % 11 + n / 50) as usize % 11];
                row(n * 40_000, "read.person", detail)
            })
            .collect();
        let mut each: std::collections::BTreeMap<(i64, String), i64> = Default::default();
        for r in &rows {
            for g in super::grants_served(&r.detail) {
                *each
                    .entry((r.at.div_euclid(super::HOUR_MS), g.into_owned()))
                    .or_default() += 1;
            }
        }
        assert!(each.len() > 20);
        assert_eq!(super::by_hour(&rows), each);
    }
}
