//! Survivorship: which value of a field the golden record keeps, and where it came from.
//!
//! Several sources state the same field of one person or entity, sometimes differently. The
//! golden record keeps one value per field, chosen by a configurable trust order of sources (the
//! household register before the grid workers' survey, say), then by whether the record is about
//! the entity itself rather than naming it in a role (a resident's own register entry before the
//! birth certificate that names her as mother), then by recency, and finally by how many records
//! agree. Every kept value carries its provenance: source, record, role and date. Pure logic.

use serde::Serialize;
use std::collections::HashMap;

/// One source's statement of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub value: &'a str,
    pub source: &'a str,
    pub record_key: &'a str,
    pub role: &'a str,
    /// When the source recorded it (`YYYY-MM-DD`), or "" if unknown.
    pub date: &'a str,
}

/// A kept value with its provenance; it borrows from the candidates (or the tally) it was
/// chosen among, so that choosing copies nothing. It serialises as a golden record's field
/// spelled out for readers, in this order (the libraries store the provenance once per cited
/// record instead: `tongban_libraries::golden_text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Kept<'a> {
    pub value: &'a str,
    pub source: &'a str,
    pub record_key: &'a str,
    pub role: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub date: &'a str,
    /// How many records state this same value, and how many state another.
    pub agreeing: usize,
    pub disagreeing: usize,
}

/// The trust order of sources, most trusted first; sources not listed come after all listed.
#[derive(Debug, Clone, Default)]
pub struct Survivorship {
    rank: HashMap<String, usize>,
}

impl Survivorship {
    pub fn new(order: &[&str]) -> Survivorship {
        Survivorship {
            rank: order
                .iter()
                .enumerate()
                .map(|(i, s)| (s.to_string(), i))
                .collect(),
        }
    }

    fn rank(&self, source: &str) -> usize {
        self.rank.get(source).copied().unwrap_or(usize::MAX)
    }

    /// The surviving value among `candidates` (empty values ignored), or `None`.
    pub fn survive<'a>(&self, candidates: &[Candidate<'a>]) -> Option<Kept<'a>> {
        // Each candidate's rank is looked up once rather than at every comparison: a million
        // golden records of a dozen fields make this the inner loop of building them.
        let present: Vec<(usize, &Candidate<'a>)> = candidates
            .iter()
            .filter(|c| !c.value.is_empty())
            .map(|c| (self.rank(c.source), c))
            .collect();
        let votes = votes(&present);
        let best = (0..present.len()).min_by(|&i, &j| {
            let ((ra, a), (rb, b)) = (present[i], present[j]);
            ra.cmp(&rb)
                .then((a.role != "subject").cmp(&(b.role != "subject")))
                .then(b.date.cmp(a.date))
                .then(votes[j].cmp(&votes[i]))
                .then(a.source.cmp(b.source))
                .then(a.record_key.cmp(b.record_key))
                .then(a.value.cmp(b.value))
        })?;
        let (agreeing, c) = (votes[best], present[best].1);
        Some(Kept {
            value: c.value,
            source: c.source,
            record_key: c.record_key,
            role: c.role,
            date: c.date,
            agreeing,
            disagreeing: present.len() - agreeing,
        })
    }
}

/// How many of the candidates state each candidate's value. Most entities have a handful of
/// mentions, for which counting pairwise is quicker than hashing; an employer named by thousands
/// of records is counted through a map.
fn votes(present: &[(usize, &Candidate)]) -> Vec<usize> {
    const PAIRWISE_UP_TO: usize = 16;
    if present.len() <= PAIRWISE_UP_TO {
        return present
            .iter()
            .map(|(_, c)| present.iter().filter(|(_, o)| o.value == c.value).count())
            .collect();
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, c) in present {
        *counts.entry(c.value).or_default() += 1;
    }
    present.iter().map(|(_, c)| counts[c.value]).collect()
}

/// A candidate held by a [`Tally`]: owned, since the tally outlives the records it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    source: String,
    record_key: String,
    role: String,
    date: String,
}

/// One field's candidates summarised so that a new one is taken in, and the surviving value
/// found, in time proportional to the number of distinct values rather than of candidates: per
/// value its count and its best candidate by everything but the count. This gives exactly what
/// [`Survivorship::survive`] gives over all the candidates, because candidates stating the same
/// value share their count, so among them the count decides nothing. Incremental resolution
/// keeps one per field of a large entity (an employer named by thousands of employees).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    values: HashMap<String, (usize, Held)>,
    present: usize,
}

impl Survivorship {
    /// Whether `a` comes before `b` among candidates of one value.
    fn before(&self, a: &Held, b: &Held) -> bool {
        self.rank(&a.source)
            .cmp(&self.rank(&b.source))
            .then((a.role != "subject").cmp(&(b.role != "subject")))
            .then(b.date.cmp(&a.date))
            .then(a.source.cmp(&b.source))
            .then(a.record_key.cmp(&b.record_key))
            .is_lt()
    }

    /// Take one candidate into a tally.
    pub fn add(&self, tally: &mut Tally, c: &Candidate) {
        if c.value.is_empty() {
            return;
        }
        tally.present += 1;
        let held = Held {
            source: c.source.to_string(),
            record_key: c.record_key.to_string(),
            role: c.role.to_string(),
            date: c.date.to_string(),
        };
        match tally.values.get_mut(c.value) {
            Some((count, best)) => {
                *count += 1;
                if self.before(&held, best) {
                    *best = held;
                }
            }
            None => {
                tally.values.insert(c.value.to_string(), (1, held));
            }
        }
    }

    /// Fold one tally into another (two entities found to be one).
    pub fn merge(&self, into: &mut Tally, from: Tally) {
        into.present += from.present;
        for (value, (count, held)) in from.values {
            match into.values.get_mut(&value) {
                Some((n, best)) => {
                    *n += count;
                    if self.before(&held, best) {
                        *best = held;
                    }
                }
                None => {
                    into.values.insert(value, (count, held));
                }
            }
        }
    }

    /// The surviving value of a tally: the same as [`Survivorship::survive`] over every
    /// candidate the tally took in.
    pub fn kept<'t>(&self, tally: &'t Tally) -> Option<Kept<'t>> {
        let (value, (count, held)) =
            tally.values.iter().min_by(|(va, (na, a)), (vb, (nb, b))| {
                self.rank(&a.source)
                    .cmp(&self.rank(&b.source))
                    .then((a.role != "subject").cmp(&(b.role != "subject")))
                    .then(b.date.cmp(&a.date))
                    .then(nb.cmp(na))
                    .then(a.source.cmp(&b.source))
                    .then(a.record_key.cmp(&b.record_key))
                    .then(va.cmp(vb))
            })?;
        Some(Kept {
            value,
            source: &held.source,
            record_key: &held.record_key,
            role: &held.role,
            date: &held.date,
            agreeing: *count,
            disagreeing: tally.present - count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c<'a>(value: &'a str, source: &'a str, role: &'a str, date: &'a str) -> Candidate<'a> {
        Candidate {
            value,
            source,
            record_key: "k",
            role,
            date,
        }
    }

    #[test]
    fn trust_then_own_record_then_recency() {
        let s = Survivorship::new(&["police", "grid"]);
        let kept = s
            .survive(&[
                c("章伟", "grid", "subject", "2026-05-01"),
                c("张伟", "police", "subject", "2020-01-01"),
            ])
            .unwrap();
        assert_eq!((kept.value, kept.source), ("张伟", "police"));
        assert_eq!((kept.agreeing, kept.disagreeing), (1, 1));
        let kept = s
            .survive(&[
                c("a", "births", "mother", "2026-01-01"),
                c("b", "births", "subject", "2020-01-01"),
            ])
            .unwrap();
        assert_eq!(kept.value, "b");
        let kept = s
            .survive(&[
                c("old", "x", "subject", "2020-01-01"),
                c("new", "x", "subject", "2024-01-01"),
            ])
            .unwrap();
        assert_eq!(kept.value, "new");
    }

    #[test]
    fn empty_values_never_survive() {
        let s = Survivorship::new(&["police"]);
        assert!(s.survive(&[c("", "police", "subject", "")]).is_none());
        assert_eq!(
            s.survive(&[
                c("", "police", "subject", ""),
                c("x", "grid", "subject", "")
            ])
            .unwrap()
            .value,
            "x"
        );
    }

    proptest::proptest! {
        /// A tally, fed one candidate at a time or merged from two halves, keeps exactly the
        /// value (and provenance and counts) that survival over all candidates keeps.
        #[test]
        fn a_tally_agrees_with_survival_over_all_candidates(
            raw in proptest::collection::vec((0u8..4, 0u8..3, 0u8..4, 0u8..5), 0..40),
            cut in 0usize..40,
        ) {
            let sources = ["police", "grid", "other", "civil"];
            let roles = ["subject", "mother", "employer"];
            let dates = ["", "2020-01-01", "2021-06-30", "2024-01-01"];
            let values = ["", "a", "b", "c", "d"];
            let keys: Vec<String> = (0..raw.len()).map(|i| format!("k{}", i % 7)).collect();
            let candidates: Vec<Candidate> = raw
                .iter()
                .zip(&keys)
                .map(|(&(s, r, d, v), k)| Candidate {
                    value: values[v as usize],
                    source: sources[s as usize],
                    record_key: k,
                    role: roles[r as usize],
                    date: dates[d as usize],
                })
                .collect();
            let trust = Survivorship::new(&["police", "civil", "grid"]);
            let mut one = Tally::default();
            for c in &candidates {
                trust.add(&mut one, c);
            }
            let expected = trust.survive(&candidates);
            proptest::prop_assert_eq!(trust.kept(&one), expected);
            let cut = cut.min(candidates.len());
            let (mut a, mut b) = (Tally::default(), Tally::default());
            for c in &candidates[..cut] {
                trust.add(&mut a, c);
            }
            for c in &candidates[cut..] {
                trust.add(&mut b, c);
            }
            trust.merge(&mut a, b);
            proptest::prop_assert_eq!(trust.kept(&a), expected);
        }
    }
}
