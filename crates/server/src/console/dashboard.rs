//! The dashboard's figures: residents and floating population per community, the age pyramid,
//! legal entities by industry and sharing calls per day. They are aggregates over the whole
//! libraries and the audit log, so they are computed in the background (at start and then every
//! [`REFRESH_MS`]; the library and quality figures only when a run or a batch has landed since)
//! and pages read the last result; a page never waits for a scan.
//!
//! The counting functions are pure; [`compute`] reads what they need from the store. Nothing here
//! is personal: only counts leave this module.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tongban_store::Store;

/// Errors here are only reported in the server log, so a message is all they carry.
type Result<T> = std::result::Result<T, String>;

/// How often the figures are recomputed.
pub const REFRESH_MS: u64 = 60_000;

/// How many days of the audit log the sharing calls and alerts are computed from: the fourteen
/// days of calls shown, and five weeks of each user's reads as the baseline their days are
/// measured against.
pub const HISTORY_DAYS: i64 = 35;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Community {
    pub code: String,
    pub name: String,
    pub registered: u64,
    pub floating: u64,
    /// 0–1: this community's people relative to the most populous one, for the heat view.
    pub heat: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Band {
    pub label: String,
    pub male: u64,
    pub female: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Dashboard {
    pub communities: Vec<Community>,
    pub unplaced: u64,
    pub deceased: u64,
    /// Living placed persons by community, then age band and sex (oldest band first).
    pub pyramids: BTreeMap<String, Vec<Band>>,
    /// Legal entities with known premises by community, then industry.
    pub industries: BTreeMap<String, BTreeMap<String, u64>>,
    /// (day, department, reads), the last fourteen days with reads.
    pub calls: Vec<(String, String, u64)>,
    /// Each registered source's quality scorecard.
    pub quality: Vec<tongban_intake::quality::Scorecard>,
    /// Anomaly alerts of the last seven days with reads, newest first.
    pub alerts: Vec<tongban_sharing::watch::Alert>,
    /// What the library and quality figures were computed from (the day, the latest run of
    /// each library, the batches): while it stays the same they are carried over.
    pub version: String,
    pub took_ms: u64,
}

/// Five-year age bands from 0–4 to 95+, as of `today`, by sex code ("1" male, "2" female).
pub fn pyramid<'a>(
    people: impl Iterator<Item = (&'a str, &'a str)>,
    today: chrono::NaiveDate,
) -> Vec<Band> {
    let mut bands: Vec<Band> = (0..20)
        .map(|i| Band {
            label: if i == 19 {
                "95+".into()
            } else {
                format!("{}–{}", i * 5, i * 5 + 4)
            },
            ..Band::default()
        })
        .collect();
    for (birth, sex) in people {
        let Ok(b) = chrono::NaiveDate::parse_from_str(birth, "%Y-%m-%d") else {
            continue;
        };
        let Some(age) = today.years_since(b) else {
            continue;
        };
        let band = &mut bands[(age as usize / 5).min(19)];
        match sex {
            "1" => band.male += 1,
            "2" => band.female += 1,
            _ => {}
        }
    }
    bands.reverse();
    bands
}

/// The pyramid of the communities `within` accepts: their bands added up.
pub fn pyramid_within(d: &Dashboard, within: impl Fn(&str) -> bool) -> Vec<Band> {
    let mut out: Vec<Band> = Vec::new();
    for (_, bands) in d.pyramids.iter().filter(|(c, _)| within(c)) {
        if out.is_empty() {
            out = bands
                .iter()
                .map(|b| Band {
                    label: b.label.clone(),
                    ..Band::default()
                })
                .collect();
        }
        for (o, b) in out.iter_mut().zip(bands) {
            o.male += b.male;
            o.female += b.female;
        }
    }
    out
}

/// Legal entities by industry in the communities `within` accepts, most common first.
pub fn industries_within(d: &Dashboard, within: impl Fn(&str) -> bool) -> Vec<(String, u64)> {
    let mut sum: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, by) in d.industries.iter().filter(|(c, _)| within(c)) {
        for (i, n) in by {
            *sum.entry(i).or_default() += n;
        }
    }
    let mut out: Vec<(String, u64)> = sum.into_iter().map(|(i, n)| (i.to_string(), n)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// What the library and quality figures depend on: the day (ages), the latest run of each
/// library (a full or an incremental one) and the intake batches.
async fn version(store: &dyn Store, today: chrono::NaiveDate) -> Result<String> {
    let mut v = today.to_string();
    for kind in tongban_store::RESOLUTION_KINDS {
        let run = store
            .latest_resolution(kind)
            .await
            .map_err(|e| e.to_string())?;
        v.push_str(&format!("|{}", run.map_or(0, |r| r.id)));
    }
    let batches = store.batches(None).await.map_err(|e| e.to_string())?;
    let last = batches.iter().map(|b| (b.id, b.finished_at)).max();
    v.push_str(&format!("|{}|{last:?}", batches.len()));
    Ok(v)
}

/// Compute the figures from the store. The library and quality figures scan every golden
/// record and every stored record, so they are carried over from `previous` while nothing they
/// depend on has changed; the sharing calls and alerts are always recomputed.
pub async fn compute(
    store: &dyn Store,
    today: chrono::NaiveDate,
    previous: Option<&Dashboard>,
) -> Result<Dashboard> {
    let started = std::time::Instant::now();
    let version = version(store, today).await?;
    let (calls, alerts) = calls_and_alerts(store).await?;
    if let Some(p) = previous.filter(|p| p.version == version) {
        return Ok(Dashboard {
            calls,
            alerts,
            took_ms: started.elapsed().as_millis() as u64,
            ..p.clone()
        });
    }
    let population = tongban_libraries::population::population(store)
        .await
        .map_err(|e| e.to_string())?;
    let top = population
        .communities
        .iter()
        .map(|c| c.registered + c.floating)
        .max()
        .unwrap_or(0)
        .max(1);
    let communities = population
        .communities
        .iter()
        .map(|c| Community {
            code: c.code.clone(),
            name: c.name.clone(),
            registered: c.registered,
            floating: c.floating,
            heat: (c.registered + c.floating) as f64 / top as f64,
        })
        .collect();
    // Each figure is kept per community, so that a page can add up the communities in the
    // user's jurisdiction.
    let mut people: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for_each_golden(store, "person", |r| {
        let key = r["key"].as_str().unwrap_or("");
        let Some(community) = population.placed.get(key) else {
            return;
        };
        let field = |f: &str| r["fields"][f]["value"].as_str().unwrap_or("").to_string();
        people
            .entry(community.clone())
            .or_default()
            .push((field("birth_date"), field("sex")));
    })
    .await?;
    let pyramids = people
        .into_iter()
        .map(|(c, p)| {
            (
                c,
                pyramid(p.iter().map(|(b, s)| (b.as_str(), s.as_str())), today),
            )
        })
        .collect();
    let mut industries: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for_each_golden(store, "entity", |r| {
        let key = r["key"].as_str().unwrap_or("");
        let Some(community) = population.placed.get(key) else {
            return;
        };
        let i = r["fields"]["industry"]["value"].as_str().unwrap_or("—");
        *industries
            .entry(community.clone())
            .or_default()
            .entry(i.to_string())
            .or_default() += 1;
    })
    .await?;
    let mut quality = Vec::new();
    for source in store.sources().await.map_err(|e| e.to_string())? {
        quality.push(
            tongban_intake::pipeline::scorecard(store, &source.id)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(Dashboard {
        communities,
        unplaced: population.unplaced,
        deceased: population.deceased,
        pyramids,
        industries,
        calls,
        quality,
        alerts,
        version,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

async fn for_each_golden(store: &dyn Store, kind: &str, mut f: impl FnMut(&Value)) -> Result<()> {
    let mut after: Option<String> = None;
    loop {
        let page = store
            .golden_page(kind, after.as_deref(), 20_000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.entity_key.clone());
        for g in &page {
            if let Ok(v) = serde_json::from_str::<Value>(&g.record) {
                f(&v);
            }
        }
    }
}

/// Answered reads per day and department over the last [`HISTORY_DAYS`] of the log, the last
/// fourteen days with reads; and the anomaly alerts (default thresholds) of the last seven days.
type CallsAndAlerts = (
    Vec<(String, String, u64)>,
    Vec<tongban_sharing::watch::Alert>,
);

async fn calls_and_alerts(store: &dyn Store) -> Result<CallsAndAlerts> {
    // Only the last weeks of the log are read (found by bisection, a few lookups): read whole
    // every minute, a log that grows by a million reads a day would soon cost more than the
    // server's other work.
    let since = tongban_store::now_millis() - HISTORY_DAYS * 86_400_000;
    let mut after = tongban_sharing::writer::read_after_for(store, since)
        .await
        .map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    loop {
        let page = store
            .audit_entries(after, 10_000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        entries.extend(page.into_iter().map(tongban_sharing::writer::from_row));
    }
    let mut by_day: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for ((department, _resource, day), n) in tongban_sharing::watch::reads_per_day(&entries) {
        *by_day.entry((day, department)).or_default() += n;
    }
    let days: Vec<i64> = {
        let mut d: Vec<i64> = by_day.keys().map(|(d, _)| *d).collect();
        d.dedup();
        d.into_iter().rev().take(14).collect()
    };
    let calls = by_day
        .into_iter()
        .filter(|((d, _), _)| days.contains(d))
        .map(|((d, dept), n)| (date_of_day(d), dept, n))
        .collect();
    let last = entries
        .last()
        .map_or(0, |e| tongban_sharing::watch::day_of(e.event.at));
    let mut alerts: Vec<_> =
        tongban_sharing::watch::alerts(&entries, &tongban_sharing::watch::Thresholds::default())
            .into_iter()
            .filter(|a| a.day > last - 7)
            .collect();
    alerts.sort_by(|a, b| b.day.cmp(&a.day).then(a.user.cmp(&b.user)));
    Ok((calls, alerts))
}

/// The date of a day number (days since the epoch, China Standard Time).
pub fn date_of_day(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_add_up_over_the_communities_of_a_jurisdiction_only() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let mut d = Dashboard::default();
        d.pyramids.insert(
            "320576052001".into(),
            pyramid([("2000-01-01", "1")].into_iter(), today),
        );
        d.pyramids.insert(
            "320576052002".into(),
            pyramid(
                [("2000-01-01", "2"), ("1950-01-01", "2")].into_iter(),
                today,
            ),
        );
        d.industries.insert(
            "320576052001".into(),
            [("批发和零售业".to_string(), 2)].into_iter().collect(),
        );
        d.industries.insert(
            "320576052002".into(),
            [("制造业".to_string(), 5), ("批发和零售业".to_string(), 1)]
                .into_iter()
                .collect(),
        );
        let within = |j: &'static str| move |c: &str| c.starts_with(j);
        let one = pyramid_within(&d, within("320576052001"));
        assert_eq!(one.iter().map(|b| b.male + b.female).sum::<u64>(), 1);
        let street = pyramid_within(&d, within("320576052"));
        assert_eq!(street.iter().map(|b| b.female).sum::<u64>(), 2);
        assert!(pyramid_within(&d, within("320576050")).is_empty());
        assert_eq!(
            industries_within(&d, within("320576052001")),
            vec![("批发和零售业".to_string(), 2)]
        );
        assert_eq!(
            industries_within(&d, within("320576052"))[0],
            ("制造业".to_string(), 5)
        );
    }

    #[test]
    fn ages_fall_into_five_year_bands_oldest_first() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let people = [
            ("2026-01-01", "1"),
            ("2021-11-30", "2"), // four years old until tomorrow
            ("1920-01-01", "2"),
            ("not a date", "1"),
        ];
        let bands = pyramid(people.iter().copied(), today);
        assert_eq!(bands.len(), 20);
        assert_eq!(bands[0].label, "95+");
        assert_eq!(bands[0].female, 1);
        let young = bands.last().unwrap();
        assert_eq!(
            (young.label.as_str(), young.male, young.female),
            ("0–4", 1, 1)
        );
    }
}
