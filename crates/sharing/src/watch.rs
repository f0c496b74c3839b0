//! Watching the reads: sharing statistics and anomaly alerts, both read off the audit log.
//!
//! Statistics count answered reads per department, resource and day. Alerts compare each user's
//! reads with what is usual: a day far above the user's own baseline (a spike), many distinct
//! subjects in one day (bulk enumeration), reads outside working hours, and attempts refused
//! for being outside the user's jurisdiction (repeated ones, or any at all when a user has no
//! business there). Pure: entries in, counts and alerts out; suspending a grant is the caller's
//! decision.

use crate::audit::Entry;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Days since the Unix epoch of a millisecond time, in China Standard Time (UTC+8, no DST).
pub fn day_of(at: i64) -> i64 {
    (at + 8 * 3_600_000).div_euclid(86_400_000)
}

/// When day `day` (as [`day_of`] numbers them) begins, in milliseconds since the epoch.
pub fn start_of_day(day: i64) -> i64 {
    day * 86_400_000 - 8 * 3_600_000
}

/// The hours (since the epoch, UTC) day `day` spans, as `[first, end)`: China Standard Time is
/// a whole number of hours from UTC, so a day is exactly 24 of them.
pub fn hours_of_day(day: i64) -> (i64, i64) {
    let first = start_of_day(day).div_euclid(3_600_000);
    (first, first + 24)
}

/// The hour of the day (0–23), China Standard Time.
pub fn hour_of(at: i64) -> i64 {
    (at + 8 * 3_600_000).rem_euclid(86_400_000) / 3_600_000
}

fn detail(e: &Entry) -> serde_json::Value {
    serde_json::from_str(&e.event.detail).unwrap_or_default()
}

/// Answered reads per (department, resource, day).
pub fn reads_per_day(entries: &[Entry]) -> BTreeMap<(String, String, i64), u64> {
    let mut out = BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| e.event.action.starts_with("read.") && !e.event.action.ends_with(".denied"))
    {
        let d = detail(e);
        let department = d
            .get("department")
            .and_then(|v| v.as_str())
            .unwrap_or("(citizen)")
            .to_string();
        let resource = format!("library.{}", e.event.action.trim_start_matches("read."));
        *out.entry((department, resource, day_of(e.event.at)))
            .or_default() += 1;
    }
    out
}

/// What makes an alert.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// A day with more reads than this many times the user's median day (and at least
    /// `min_spike` reads) is a spike.
    pub spike_factor: f64,
    pub min_spike: u64,
    /// Distinct subjects a user may read in a day before it looks like enumeration.
    pub bulk_subjects: usize,
    /// Working hours, China Standard Time: [start, end).
    pub working_hours: (i64, i64),
    /// Refused attempts in a day before they alert.
    pub denials: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            spike_factor: 5.0,
            min_spike: 50,
            bulk_subjects: 200,
            working_hours: (8, 19),
            denials: 3,
        }
    }
}

/// An alert about one user on one day (for a `grant_spike`, about one grant: `user` is then the
/// department the grant serves).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub user: String,
    pub day: i64,
    /// "spike", "bulk_enumeration", "off_hours", "denials".
    pub kind: &'static str,
    pub message: String,
    /// The grants the user's reads that day were served under (candidates for suspension).
    pub grants: Vec<String>,
}

/// Every alert the entries give rise to.
pub fn alerts(entries: &[Entry], t: &Thresholds) -> Vec<Alert> {
    #[derive(Default)]
    struct Day {
        reads: u64,
        subjects: BTreeSet<String>,
        off_hours: u64,
        denied: u64,
        grants: BTreeSet<String>,
    }
    let mut days: BTreeMap<(String, i64), Day> = BTreeMap::new();
    // Reads served under each grant per day, with the department that made them.
    let mut grant_days: BTreeMap<(String, i64), (u64, String)> = BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| e.event.action.starts_with("read."))
    {
        let d = days
            .entry((e.event.actor.clone(), day_of(e.event.at)))
            .or_default();
        if e.event.action.ends_with(".denied") {
            d.denied += 1;
            continue;
        }
        d.reads += 1;
        d.subjects.insert(e.event.subject.clone());
        let h = hour_of(e.event.at);
        if h < t.working_hours.0 || h >= t.working_hours.1 {
            d.off_hours += 1;
        }
        let detail = detail(e);
        if let Some(a) = detail.get("served_under").and_then(|v| v.as_array()) {
            for g in a {
                if let Some(id) = g["grant"].as_str() {
                    d.grants.insert(id.to_string());
                    let department = detail["department"].as_str().unwrap_or("").to_string();
                    let gd = grant_days
                        .entry((id.to_string(), day_of(e.event.at)))
                        .or_insert((0, department));
                    gd.0 += 1;
                }
            }
        }
    }
    // Each user's median reads on the days they read at all: their own baseline.
    let mut per_user: HashMap<&str, Vec<u64>> = HashMap::new();
    for ((user, _), d) in &days {
        if d.reads > 0 {
            per_user.entry(user).or_default().push(d.reads);
        }
    }
    let median: HashMap<&str, f64> = per_user
        .into_iter()
        .map(|(u, v)| (u, median_of(v)))
        .collect();
    // Each grant's median reads on the days it served any: the grant's own baseline, which
    // catches a department whose users together read far more than usual even when no one
    // user stands out.
    let mut per_grant: HashMap<&str, Vec<u64>> = HashMap::new();
    for ((grant, _), (n, _)) in &grant_days {
        per_grant.entry(grant).or_default().push(*n);
    }
    let grant_median: HashMap<&str, f64> = per_grant
        .into_iter()
        .map(|(g, v)| (g, median_of(v)))
        .collect();
    let mut out = Vec::new();
    for ((user, day), d) in &days {
        let grants: Vec<String> = d.grants.iter().cloned().collect();
        let mut push = |kind: &'static str, message: String| {
            out.push(Alert {
                user: user.clone(),
                day: *day,
                kind,
                message,
                grants: grants.clone(),
            })
        };
        let base = median.get(user.as_str()).copied().unwrap_or(0.0);
        if d.reads >= t.min_spike && d.reads as f64 > t.spike_factor * base.max(1.0) {
            push(
                "spike",
                format!(
                    "{} reads, {:.0}× the usual {base:.0}",
                    d.reads,
                    d.reads as f64 / base.max(1.0)
                ),
            );
        }
        if d.subjects.len() > t.bulk_subjects {
            push(
                "bulk_enumeration",
                format!("{} different people read in one day", d.subjects.len()),
            );
        }
        if d.off_hours > 0 {
            push(
                "off_hours",
                format!(
                    "{} reads outside {:02}:00–{:02}:00",
                    d.off_hours, t.working_hours.0, t.working_hours.1
                ),
            );
        }
        if d.denied >= t.denials {
            push(
                "denials",
                format!("{} attempts refused (outside the jurisdiction)", d.denied),
            );
        }
    }
    for ((grant, day), (n, department)) in &grant_days {
        let base = grant_median.get(grant.as_str()).copied().unwrap_or(0.0);
        if *n >= t.min_spike && *n as f64 > t.spike_factor * base.max(1.0) {
            out.push(Alert {
                user: department.clone(),
                day: *day,
                kind: "grant_spike",
                message: format!(
                    "{n} reads under grant {grant}, {:.0}× its usual {base:.0}",
                    *n as f64 / base.max(1.0)
                ),
                grants: vec![grant.clone()],
            });
        }
    }
    out
}

/// The median of some counts (the upper one of an even number).
fn median_of(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0) as f64
}

/// The grants alerts call for suspending, each once, with the reason: the grants that reads in
/// a spike (a user's or a grant's) or a bulk enumeration were served under, on day `today`. A
/// late read alone or refused attempts (which no grant served) suspend nothing; `all` widens
/// this to every day and to off-hours reads.
pub fn grants_to_suspend(alerts: &[Alert], today: i64, all: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in alerts
        .iter()
        .filter(|a| all || (a.day == today && a.kind != "off_hours"))
    {
        for g in &a.grants {
            if !out.iter().any(|(x, _)| x == g) {
                out.push((
                    g.clone(),
                    format!("suspended: {} alert for {} ({})", a.kind, a.user, a.message),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Event, GENESIS, chain};

    fn read(user: &str, subject: &str, at: i64, grant: Option<&str>) -> Event {
        let served = grant.map_or(
            serde_json::json!([]),
            |g| serde_json::json!([{ "grant": g }]),
        );
        Event {
            at,
            actor: user.into(),
            action: "read.person".into(),
            subject: subject.into(),
            detail: serde_json::json!({"department": "minzheng", "served_under": served})
                .to_string(),
        }
    }

    /// 2026-11-02 10:00 China Standard Time, plus `days` days and `hours` hours.
    fn at(days: i64, hours: i64) -> i64 {
        1_793_584_800_000 + days * 86_400_000 + hours * 3_600_000
    }

    #[test]
    fn a_normal_week_is_quiet_and_each_anomaly_is_named() {
        let mut events = Vec::new();
        for day in 0..7 {
            for i in 0..10 {
                events.push(read("clerk01", &format!("P{i}"), at(day, 0), Some("G1")));
            }
        }
        let quiet = chain(0, GENESIS, events.clone());
        assert_eq!(hour_of(at(0, 0)), 10);
        let d = day_of(at(3, 5));
        assert_eq!(day_of(start_of_day(d)), d);
        assert_eq!(day_of(start_of_day(d) - 1), d - 1);
        let (first, end) = hours_of_day(d);
        assert_eq!(first * 3_600_000, start_of_day(d));
        assert_eq!(end * 3_600_000, start_of_day(d + 1));
        assert!(alerts(&quiet, &Thresholds::default()).is_empty());
        let stats = reads_per_day(&quiet);
        assert_eq!(stats.len(), 7);
        assert!(stats.values().all(|&n| n == 10));

        // Day 7: three hundred different people, at night, and refused attempts.
        for i in 0..300 {
            events.push(read("clerk01", &format!("Q{i}"), at(7, 12), Some("G1")));
        }
        for _ in 0..4 {
            events.push(Event {
                action: "read.person.denied".into(),
                ..read("clerk01", "P9", at(7, 1), None)
            });
        }
        let busy = chain(0, GENESIS, events);
        let kinds: Vec<&str> = alerts(&busy, &Thresholds::default())
            .iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "spike",
                "bulk_enumeration",
                "off_hours",
                "denials",
                "grant_spike"
            ]
        );
        let found = alerts(&busy, &Thresholds::default());
        assert_eq!(found[0].grants, vec!["G1".to_string()]);
        let suspend = grants_to_suspend(&found, day_of(at(7, 0)), false);
        assert_eq!(suspend.len(), 1, "{suspend:?}");
        assert_eq!(suspend[0].0, "G1");
        assert!(suspend[0].1.contains("spike"));
        assert!(grants_to_suspend(&found, day_of(at(8, 0)), false).is_empty());
    }

    #[test]
    fn a_grant_read_by_many_users_each_at_their_usual_pace_still_alerts() {
        let mut events = Vec::new();
        // A week of ten reads a day by one clerk under G2.
        for day in 0..7 {
            for i in 0..10 {
                events.push(read("clerk01", &format!("P{i}"), at(day, 0), Some("G2")));
            }
        }
        // Then thirty clerks, each reading ten (their own usual day, were it their first), all
        // under G2: no user spikes, the grant does.
        for u in 0..30 {
            for i in 0..10 {
                events.push(read(
                    &format!("c{u}"),
                    &format!("P{i}"),
                    at(7, 0),
                    Some("G2"),
                ));
            }
        }
        let found = alerts(&chain(0, GENESIS, events), &Thresholds::default());
        let kinds: Vec<&str> = found.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, ["grant_spike"], "{found:?}");
        assert_eq!(found[0].user, "minzheng");
        assert_eq!(found[0].grants, ["G2"]);
    }
}
