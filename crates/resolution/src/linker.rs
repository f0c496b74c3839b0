//! The general linker: blocking → comparison → Fellegi–Sunter training → scoring → clustering.
//!
//! It links or deduplicates any [`Table`] under [`Settings`] naming the comparisons (column and
//! kind) and blocking rules. u comes from random pairs, m from EM run once per blocking rule on the
//! pairs that rule produced, leaving out the comparisons on that rule's own columns (they agree on
//! every such pair and would teach EM nothing but the rule), and averaged over the rules. The same
//! engine serves `tongban link` on arbitrary CSV files and person resolution on the store's
//! records. It reads nothing from disk and knows nothing of what the columns mean.

use crate::blocking::{Pair, Rule, RuleStats, candidate_pairs};
use crate::cluster::{Link, NO_TAG, cluster};
use crate::compare::{Kind, level, phonetic_key};
use crate::model::{
    MAX_COMPARISONS, Model, estimate_lambda, expectation_maximisation, level_of, pack, tally,
};
use crate::table::{Column, Table};
use rayon::prelude::*;
use std::collections::HashMap;

/// One field comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub name: String,
    pub column: usize,
    pub kind: Kind,
    /// Adjust the weight of exact agreement by how common the value is.
    pub tf: bool,
}

/// Everything the linker needs to know besides the records.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub comparisons: Vec<Comparison>,
    pub rules: Vec<Rule>,
    /// Pairs with at least this match probability are linked.
    pub threshold: f64,
    /// Blocks with more records than this are skipped (and reported).
    pub max_block: usize,
    /// Random pairs drawn to estimate u.
    pub u_sample: usize,
    pub em_iterations: usize,
    pub seed: u64,
    /// A column whose different non-empty values must never share a cluster.
    pub cannot_link: Option<usize>,
}

impl Settings {
    pub fn new(comparisons: Vec<Comparison>, rules: Vec<Rule>) -> Settings {
        Settings {
            comparisons,
            rules,
            threshold: 0.9,
            max_block: 5_000,
            u_sample: 1_000_000,
            em_iterations: 100,
            seed: 42,
            cannot_link: None,
        }
    }
}

/// Per-comparison values computed once per record: phonetic keys and term frequencies.
#[derive(Debug, Clone)]
pub struct Features {
    phonetic: Vec<Option<Column>>,
    tf: Vec<Option<Vec<f32>>>,
}

impl Features {
    pub fn new(table: &Table, settings: &Settings) -> Features {
        let phonetic = settings
            .comparisons
            .iter()
            .map(|c| {
                let col = &table.columns[c.column];
                let has_han =
                    (0..col.len()).any(|i| col.get(i).chars().any(tongban_standards::text::is_han));
                (c.kind.wants_phonetic_key() && has_han).then(|| col.map(phonetic_key))
            })
            .collect();
        let tf = settings
            .comparisons
            .iter()
            .map(|c| c.tf.then(|| term_frequencies(&table.columns[c.column])))
            .collect();
        Features { phonetic, tf }
    }

    fn key(&self, c: usize, row: usize) -> &str {
        self.phonetic[c].as_ref().map_or("", |col| col.get(row))
    }
}

/// The share of non-empty values equal to each row's value (0 for an empty one).
fn term_frequencies(col: &Column) -> Vec<f32> {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for i in 0..col.len() {
        let v = col.get(i);
        if !v.is_empty() {
            *counts.entry(v).or_default() += 1;
        }
    }
    let total: u32 = counts.values().sum();
    (0..col.len())
        .map(|i| {
            let v = col.get(i);
            if v.is_empty() {
                0.0
            } else {
                counts[v] as f32 / total.max(1) as f32
            }
        })
        .collect()
}

/// The packed comparison pattern of rows a and b.
pub fn pattern(table: &Table, settings: &Settings, features: &Features, a: usize, b: usize) -> u64 {
    let mut p = 0u64;
    for (c, cmp) in settings.comparisons.iter().enumerate() {
        let col = &table.columns[cmp.column];
        let l = level(
            cmp.kind,
            col.get(a),
            col.get(b),
            features.key(c, a),
            features.key(c, b),
        );
        p |= u64::from(l) << (c as u32 * crate::model::LEVEL_BITS);
    }
    p
}

/// The weight of a pair: the pattern's weights plus the term-frequency adjustments.
pub fn pair_weight(
    model: &Model,
    settings: &Settings,
    features: &Features,
    pattern: u64,
    a: usize,
) -> f64 {
    let mut w = 0.0;
    for (c, cmp) in settings.comparisons.iter().enumerate() {
        let l = level_of(pattern, c);
        w += model.weight(c, l);
        w += tf_adjustment(model, features, c, cmp.kind, l, a);
    }
    w
}

fn tf_adjustment(
    model: &Model,
    features: &Features,
    c: usize,
    kind: Kind,
    l: usize,
    a: usize,
) -> f64 {
    let top = kind.levels() - 1;
    match &features.tf[c] {
        Some(tf) if l == top && tf[a] > 0.0 => (model.u[c][top] / f64::from(tf[a])).log2(),
        _ => 0.0,
    }
}

/// A small deterministic generator for sampling random pairs.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Level counts over random pairs, `counts[c][l]`, for estimating u.
pub fn random_pair_counts(
    table: &Table,
    settings: &Settings,
    features: &Features,
) -> Vec<Vec<u64>> {
    let n = table.len();
    let mut rng = SplitMix(settings.seed);
    let sample: Vec<(usize, usize)> = (0..settings.u_sample)
        .filter_map(|_| {
            let (a, b) = match table.split {
                Some(s) if s > 0 && s < n => (rng.below(s), s + rng.below(n - s)),
                Some(_) => return None,
                None => (rng.below(n), rng.below(n)),
            };
            (a != b && n > 1).then_some((a, b))
        })
        .collect();
    let levels: Vec<usize> = settings
        .comparisons
        .iter()
        .map(|c| c.kind.levels())
        .collect();
    sample
        .par_iter()
        .fold(
            || levels.iter().map(|&l| vec![0u64; l]).collect::<Vec<_>>(),
            |mut acc, &(a, b)| {
                let p = pattern(table, settings, features, a, b);
                for (c, row) in acc.iter_mut().enumerate() {
                    row[level_of(p, c)] += 1;
                }
                acc
            },
        )
        .reduce(
            || levels.iter().map(|&l| vec![0u64; l]).collect::<Vec<_>>(),
            |mut x, y| {
                for (rx, ry) in x.iter_mut().zip(y) {
                    for (a, b) in rx.iter_mut().zip(ry) {
                        *a += b;
                    }
                }
                x
            },
        )
}

/// Train m (per-rule EM) and λ on candidate pairs with u from random pairs.
pub fn train(
    settings: &Settings,
    u_counts: &[Vec<u64>],
    pairs: &[Pair],
    patterns: &[u64],
) -> Model {
    let levels: Vec<usize> = settings
        .comparisons
        .iter()
        .map(|c| c.kind.levels())
        .collect();
    let mut base = Model::initial(&levels);
    base.set_u_from_counts(u_counts);
    let k = settings.comparisons.len();
    let mut m_sum: Vec<Vec<f64>> = levels.iter().map(|&l| vec![0.0; l]).collect();
    let mut m_runs = vec![0usize; k];
    for (r, rule) in settings.rules.iter().enumerate() {
        let rule_columns: Vec<usize> = rule.parts.iter().map(|p| p.column).collect();
        let active: Vec<bool> = settings
            .comparisons
            .iter()
            .map(|c| !rule_columns.contains(&c.column))
            .collect();
        let tallied = tally(
            pairs
                .iter()
                .zip(patterns)
                .filter(|(p, _)| p.rule as usize == r)
                .map(|(_, &x)| x),
        );
        if tallied.is_empty() || !active.iter().any(|&a| a) {
            continue;
        }
        let mut model = base.clone();
        expectation_maximisation(&mut model, &tallied, &active, settings.em_iterations);
        for c in (0..k).filter(|&c| active[c]) {
            for (l, v) in m_sum[c].iter_mut().enumerate() {
                *v += model.m[c][l];
            }
            m_runs[c] += 1;
        }
    }
    let all = tally(patterns.iter().copied());
    // A comparison on a column every rule blocks on is never estimated above; learn it from all
    // candidate pairs together rather than keep the starting guess.
    if m_runs.contains(&0) && !all.is_empty() {
        let mut model = base.clone();
        let active = vec![true; k];
        expectation_maximisation(&mut model, &all, &active, settings.em_iterations);
        for c in 0..k {
            if m_runs[c] == 0 {
                m_sum[c].clone_from(&model.m[c]);
                m_runs[c] = 1;
            }
        }
    }
    let mut model = base;
    for c in 0..k {
        if m_runs[c] > 0 {
            for (l, v) in m_sum[c].iter().enumerate() {
                model.m[c][l] = v / m_runs[c] as f64;
            }
        }
    }
    estimate_lambda(&mut model, &all, 200);
    model
}

/// All the pairs a table could form: n(n−1)/2 when deduplicating, |A|·|B| when linking.
pub fn possible_pairs(table: &Table) -> f64 {
    let n = table.len() as f64;
    match table.split {
        Some(s) => s as f64 * (n - s as f64),
        None => n * (n - 1.0) / 2.0,
    }
}

/// Turn λ learned among candidate pairs into the prior among all pairs, so that a pair's match
/// probability says how likely it is that two records drawn from the whole input match, as in
/// the original Fellegi–Sunter setting. Learned among candidates, the prior would be so high that
/// a pair agreeing on a name and little else passed any threshold.
pub fn rescale_prior(model: &mut Model, candidates: usize, table: &Table) {
    let possible = possible_pairs(table);
    if possible > 0.0 {
        model.lambda = (model.lambda * candidates as f64 / possible).clamp(1e-15, 1.0 - 1e-9);
    }
}

/// How long each stage took and what it produced.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub records: usize,
    pub rules: Vec<RuleStats>,
    pub candidate_pairs: u64,
    pub linked_pairs: u64,
    pub refused_by_constraint: u64,
    pub clusters: usize,
    /// The share of matches EM found among candidate pairs (before rescaling to all pairs).
    pub candidate_lambda: f64,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub model: Model,
    pub features: Features,
    pub pairs: Vec<Pair>,
    /// Total weight of each candidate pair (term-frequency adjusted), same order as `pairs`.
    pub weights: Vec<f32>,
    /// Cluster label of every row: the smallest row index in its cluster.
    pub labels: Vec<u32>,
    pub stats: Stats,
}

/// The stages a run reports to its caller (for progress output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Blocking,
    Comparing,
    Training,
    Clustering,
}

/// Errors in the settings that only show against a table.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LinkError {
    #[error("{0} comparisons configured; at most {MAX_COMPARISONS} are supported")]
    TooManyComparisons(usize),
    #[error("no comparisons configured")]
    NoComparisons,
    #[error("no blocking rules configured; comparing every pair of records is never what you want")]
    NoRules,
}

/// Link or deduplicate `table`.
pub fn run(
    table: &Table,
    settings: &Settings,
    on_stage: &mut dyn FnMut(Stage),
) -> Result<Outcome, LinkError> {
    let k = settings.comparisons.len();
    if k == 0 {
        return Err(LinkError::NoComparisons);
    }
    if k > MAX_COMPARISONS {
        return Err(LinkError::TooManyComparisons(k));
    }
    if settings.rules.is_empty() {
        return Err(LinkError::NoRules);
    }
    on_stage(Stage::Blocking);
    let features = Features::new(table, settings);
    let (pairs, rule_stats) = candidate_pairs(table, &settings.rules, settings.max_block);
    on_stage(Stage::Comparing);
    let patterns: Vec<u64> = pairs
        .par_iter()
        .map(|p| pattern(table, settings, &features, p.a as usize, p.b as usize))
        .collect();
    on_stage(Stage::Training);
    let u_counts = random_pair_counts(table, settings, &features);
    let mut model = train(settings, &u_counts, &pairs, &patterns);
    let candidate_lambda = model.lambda;
    rescale_prior(&mut model, pairs.len(), table);
    on_stage(Stage::Clustering);
    let weights: Vec<f32> = pairs
        .par_iter()
        .zip(&patterns)
        .map(|(p, &x)| pair_weight(&model, settings, &features, x, p.a as usize) as f32)
        .collect();
    let mut links: Vec<Link> = pairs
        .iter()
        .zip(&weights)
        .filter(|(_, w)| model.probability(f64::from(**w)) >= settings.threshold)
        .map(|(p, &w)| Link {
            a: p.a,
            b: p.b,
            weight: f64::from(w),
        })
        .collect();
    let tags = cannot_link_tags(table, settings.cannot_link);
    let linked = links.len() as u64;
    let (labels, refused) = cluster(tags, &mut links);
    let mut distinct = labels.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let stats = Stats {
        records: table.len(),
        candidate_pairs: pairs.len() as u64,
        rules: rule_stats,
        linked_pairs: linked - refused,
        refused_by_constraint: refused,
        clusters: distinct.len(),
        candidate_lambda,
    };
    Ok(Outcome {
        model,
        features,
        pairs,
        weights,
        labels,
        stats,
    })
}

/// Interned cannot-link values per row.
fn cannot_link_tags(table: &Table, column: Option<usize>) -> Vec<u32> {
    let Some(column) = column else {
        return vec![NO_TAG; table.len()];
    };
    let col = &table.columns[column];
    let mut ids: HashMap<&str, u32> = HashMap::new();
    (0..table.len())
        .map(|i| {
            let v = col.get(i);
            if v.is_empty() {
                NO_TAG
            } else {
                let next = ids.len() as u32;
                *ids.entry(v).or_insert(next)
            }
        })
        .collect()
}

/// One field's part in a pair's weight.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldExplanation {
    pub comparison: String,
    pub left: String,
    pub right: String,
    pub level: &'static str,
    pub weight: f64,
    pub tf_adjustment: f64,
}

/// Why a pair was linked or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub fields: Vec<FieldExplanation>,
    pub prior: f64,
    pub total: f64,
    pub probability: f64,
    pub linked: bool,
}

/// Explain any pair of rows, candidate or not.
pub fn explain(
    table: &Table,
    settings: &Settings,
    features: &Features,
    model: &Model,
    a: usize,
    b: usize,
) -> Explanation {
    let p = pattern(table, settings, features, a, b);
    let fields: Vec<FieldExplanation> = settings
        .comparisons
        .iter()
        .enumerate()
        .map(|(c, cmp)| {
            let l = level_of(p, c);
            let col = &table.columns[cmp.column];
            FieldExplanation {
                comparison: cmp.name.clone(),
                left: col.get(a).to_string(),
                right: col.get(b).to_string(),
                level: cmp.kind.labels()[l],
                weight: model.weight(c, l),
                tf_adjustment: tf_adjustment(model, features, c, cmp.kind, l, a),
            }
        })
        .collect();
    let total: f64 = fields.iter().map(|f| f.weight + f.tf_adjustment).sum();
    let probability = model.probability(total);
    Explanation {
        fields,
        prior: model.prior_weight(),
        total,
        probability,
        linked: probability >= settings.threshold,
    }
}

/// Levels of a pattern, for display and tests.
pub fn levels(pattern: u64, comparisons: usize) -> Vec<u8> {
    (0..comparisons)
        .map(|c| level_of(pattern, c) as u8)
        .collect()
}

/// The inverse of [`levels`].
pub fn pattern_of(levels: &[u8]) -> u64 {
    pack(levels)
}
