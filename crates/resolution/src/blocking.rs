//! Blocking: which pairs of records are worth comparing.
//!
//! Comparing every pair is quadratic, so each blocking rule names a key (one or more fields, whole,
//! by prefix or by pinyin) and only records sharing a rule's key are paired. A pair produced by an
//! earlier rule is not produced again by a later one: each rule checks the earlier rules' keys, so
//! no global set of pairs is needed. Keys are compared by a 64-bit hash; two different keys with
//! the same hash only add a pair that scoring then rejects. A block larger than the configured
//! limit is skipped and counted, because one huge block (a missing value written as "unknown", say)
//! would otherwise swamp everything else. This module decides pairs; it does not score them.

use crate::compare::phonetic_key;
use crate::table::Table;
use rayon::prelude::*;

/// How a field enters a blocking key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    Whole,
    /// The first n characters.
    Prefix(usize),
    /// Toneless pinyin of a Chinese name (the value itself for other text).
    Pinyin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    pub column: usize,
    pub transform: Transform,
}

/// A blocking rule: records agreeing on every part form pairs. A record with any part missing
/// takes no part in the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub text: String,
    pub parts: Vec<KeyPart>,
}

/// A candidate pair: rows `a < b` and the rule that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    pub rule: u16,
}

/// What blocking did, per rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleStats {
    pub rule: String,
    pub pairs: u64,
    pub skipped_blocks: u64,
    pub skipped_records: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// FNV-1a: a hash that is the same on every run and platform, so pair order never depends on a
/// random hasher seed.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// The hashed key of every row under a rule; 0 when a part is missing.
pub fn rule_keys(table: &Table, rule: &Rule) -> Vec<u64> {
    (0..table.len())
        .into_par_iter()
        .map(|i| {
            let mut h = FNV_OFFSET;
            for part in &rule.parts {
                let v = table.columns[part.column].get(i);
                if v.is_empty() {
                    return 0;
                }
                h = match &part.transform {
                    Transform::Whole => fnv(h, v.as_bytes()),
                    Transform::Prefix(n) => {
                        let end = v.char_indices().nth(*n).map_or(v.len(), |(i, _)| i);
                        fnv(h, &v.as_bytes()[..end])
                    }
                    Transform::Pinyin => {
                        let p = phonetic_key(v);
                        fnv(
                            h,
                            if p.is_empty() {
                                v.as_bytes()
                            } else {
                                p.as_bytes()
                            },
                        )
                    }
                };
                h = fnv(h, &[0x1f]);
            }
            // 0 marks "missing"; a real key that hashes to 0 is moved off it.
            h.max(1)
        })
        .collect()
}

/// Candidate pairs under the rules, in a deterministic order, with per-rule statistics.
pub fn candidate_pairs(
    table: &Table,
    rules: &[Rule],
    max_block: usize,
) -> (Vec<Pair>, Vec<RuleStats>) {
    let keys: Vec<Vec<u64>> = rules.iter().map(|r| rule_keys(table, r)).collect();
    let mut pairs = Vec::new();
    let mut stats = Vec::new();
    for (r, rule) in rules.iter().enumerate() {
        let mut rows: Vec<(u64, u32)> = keys[r]
            .iter()
            .enumerate()
            .filter(|(_, k)| **k != 0)
            .map(|(i, &k)| (k, i as u32))
            .collect();
        rows.par_sort_unstable();
        let mut blocks = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            let end = start
                + rows[start..]
                    .iter()
                    .take_while(|(k, _)| *k == rows[start].0)
                    .count();
            if end - start > 1 {
                blocks.push(start..end);
            }
            start = end;
        }
        let mut rule_stats = RuleStats {
            rule: rule.text.clone(),
            ..RuleStats::default()
        };
        let (kept, skipped): (Vec<_>, Vec<_>) =
            blocks.into_iter().partition(|b| b.len() <= max_block);
        rule_stats.skipped_blocks = skipped.len() as u64;
        rule_stats.skipped_records = skipped.iter().map(|b| b.len() as u64).sum();
        let earlier = &keys[..r];
        let found: Vec<Pair> = kept
            .par_iter()
            .flat_map_iter(|block| {
                let members = &rows[block.clone()];
                let mut out = Vec::new();
                for (x, &(_, a)) in members.iter().enumerate() {
                    for &(_, b) in &members[x + 1..] {
                        let (a, b) = (a.min(b), a.max(b));
                        if !table.pairable(a as usize, b as usize) {
                            continue;
                        }
                        let seen = earlier.iter().any(|k| {
                            let ka = k[a as usize];
                            ka != 0 && ka == k[b as usize]
                        });
                        if !seen {
                            out.push(Pair {
                                a,
                                b,
                                rule: r as u16,
                            });
                        }
                    }
                }
                out.into_iter()
            })
            .collect();
        rule_stats.pairs = found.len() as u64;
        pairs.extend(found);
        stats.push(rule_stats);
    }
    (pairs, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new(vec!["surname".into(), "dob".into()]);
        t.push("1", &["smith", "1990"]);
        t.push("2", &["smith", "1990"]);
        t.push("3", &["smyth", "1990"]);
        t.push("4", &["jones", ""]);
        t.push("5", &["jones", "1985"]);
        t
    }

    fn rule(parts: Vec<KeyPart>) -> Rule {
        Rule {
            text: String::new(),
            parts,
        }
    }

    #[test]
    fn pairs_share_a_key_and_are_not_repeated() {
        let t = table();
        let rules = vec![
            rule(vec![KeyPart {
                column: 0,
                transform: Transform::Whole,
            }]),
            rule(vec![KeyPart {
                column: 1,
                transform: Transform::Whole,
            }]),
        ];
        let (pairs, stats) = candidate_pairs(&t, &rules, 100);
        let mut got: Vec<(u32, u32)> = pairs.iter().map(|p| (p.a, p.b)).collect();
        got.sort();
        // smith/smith and jones/jones by surname; dob 1990 adds 1–3 and 2–3 but not 1–2 again.
        assert_eq!(got, vec![(0, 1), (0, 2), (1, 2), (3, 4)]);
        assert_eq!(stats[0].pairs, 2);
        assert_eq!(stats[1].pairs, 2);
    }

    #[test]
    fn prefix_and_block_limit() {
        let t = table();
        let rules = vec![rule(vec![KeyPart {
            column: 0,
            transform: Transform::Prefix(2),
        }])];
        let (pairs, _) = candidate_pairs(&t, &rules, 100);
        assert_eq!(pairs.len(), 3 + 1);
        let (pairs, stats) = candidate_pairs(&t, &rules, 2);
        assert_eq!(pairs.len(), 1);
        assert_eq!(stats[0].skipped_blocks, 1);
        assert_eq!(stats[0].skipped_records, 3);
    }

    #[test]
    fn pinyin_blocks_homophones_together() {
        let mut t = Table::new(vec!["name".into()]);
        t.push("1", &["张伟"]);
        t.push("2", &["章伟"]);
        t.push("3", &["李娜"]);
        let rules = vec![rule(vec![KeyPart {
            column: 0,
            transform: Transform::Pinyin,
        }])];
        let (pairs, _) = candidate_pairs(&t, &rules, 100);
        assert_eq!(
            pairs.iter().map(|p| (p.a, p.b)).collect::<Vec<_>>(),
            vec![(0, 1)]
        );
    }
}
