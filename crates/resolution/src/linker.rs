//! The general linker: blocking → Fellegi–Sunter training → comparison → weighing → clustering.
//!
//! It links or deduplicates any [`Table`] under [`Settings`] naming the comparisons (column and
//! kind) and blocking rules. u comes from random pairs, m from EM run once per blocking rule on the
//! pairs that rule produced, leaving out the comparisons on that rule's own columns (they agree on
//! every such pair and would teach EM nothing but the rule), and averaged over the rules. The same
//! engine serves `tongban link` on arbitrary CSV files and person resolution on the store's
//! records. It reads nothing from disk and knows nothing of what the columns mean.

use crate::blocking::{
    BlockBuffers, Pair, RowKeys, Rule, RuleStats, scored_candidate_pairs, training_pairs,
};
use crate::cluster::{Link, NO_TAG, cluster};
use crate::compare::{Kind, level, level_latin_name, phonetic_key};
use crate::model::{
    MAX_COMPARISONS, Model, estimate_lambda, expectation_maximisation, level_of, tally,
};
use crate::table::{Column, Shape, Table};
use crate::{FastMap, fast_map};
use rayon::prelude::*;

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
    /// Pairs per training rule that EM learns from (a deterministic sample when a rule forms
    /// more).
    pub em_pairs_per_rule: usize,
    pub seed: u64,
    /// A column whose different non-empty values must never share a cluster.
    pub cannot_link: Option<usize>,
    /// Columns whose equal non-empty values always share a cluster, whatever the weights say
    /// (deterministic links, such as a valid citizen id that agrees with the record).
    pub must_link: Vec<usize>,
}

impl Settings {
    pub fn new(comparisons: Vec<Comparison>, rules: Vec<Rule>) -> Settings {
        Settings {
            comparisons,
            rules,
            threshold: 0.9,
            max_block: 5_000,
            u_sample: 300_000,
            em_iterations: 100,
            em_pairs_per_rule: 100_000,
            seed: 42,
            cannot_link: None,
            must_link: Vec::new(),
        }
    }
}

/// Per-record values the comparisons read, computed once: the compared values and their phonetic
/// keys packed row by row, and term frequencies.
///
/// Comparing a pair touches every compared field of two random records. Read from the table's
/// per-column arenas that is two cache misses per field and record, and profiling showed those
/// misses, not the string comparisons, dominating the linker. Packed row by row, one record's
/// fields share one or two cache lines. Values are compared on their first 127 bytes, so that
/// each length fits one ASCII byte and a packed row stays a valid `str`.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// Per row: one length byte (an ASCII character) per packed field, then the fields' text.
    offsets: Vec<u64>,
    data: String,
    /// Packed fields per row: value and phonetic key per comparison.
    fields: usize,
    phonetic: Vec<bool>,
    tf: Vec<Option<Vec<f32>>>,
    /// log2 of `tf`, for scoring.
    tf_log2: Vec<Option<Vec<f32>>>,
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Features {
    pub fn new(table: &Table, settings: &Settings) -> Features {
        let phonetic: Vec<bool> = settings
            .comparisons
            .iter()
            .map(|c| {
                let col = &table.columns[c.column];
                c.kind.wants_phonetic_key()
                    && (0..col.len())
                        .any(|i| col.get(i).chars().any(tongban_standards::text::is_han))
            })
            .collect();
        let keys: Vec<Option<Column>> = settings
            .comparisons
            .iter()
            .zip(&phonetic)
            .map(|(c, &p)| p.then(|| table.columns[c.column].map(phonetic_key)))
            .collect();
        let fields = settings.comparisons.len() * 2;
        // Each row's packed fields, in the order `row` reads them back.
        fn packed<'a>(
            table: &'a Table,
            settings: &Settings,
            keys: &'a [Option<Column>],
            i: usize,
            out: &mut Vec<&'a str>,
        ) {
            out.clear();
            for (c, k) in settings.comparisons.iter().zip(keys) {
                out.push(truncate(table.columns[c.column].get(i), 127));
                out.push(truncate(k.as_ref().map_or("", |k| k.get(i)), 127));
            }
        }
        // Two passes: every row's packed length first, then the rows written in parallel into
        // one buffer of exactly that size. Packing chunks into strings of their own and joining
        // them held the packed table twice and grew each chunk as it went (at a million
        // records, 100 MB more at the peak of this stage, and the kernel clearing pages that
        // were used once).
        let lengths: Vec<u64> = (0..table.len())
            .into_par_iter()
            .map_init(Vec::new, |values, i| {
                packed(table, settings, &keys, i, values);
                (fields + values.iter().map(|v| v.len()).sum::<usize>()) as u64
            })
            .collect();
        let mut offsets = Vec::with_capacity(table.len() + 1);
        offsets.push(0u64);
        let mut end = 0u64;
        for len in lengths {
            end += len;
            offsets.push(end);
        }
        let mut bytes = vec![0u8; end as usize];
        let chunk = 16_384;
        let mut parts: Vec<(usize, &mut [u8])> = Vec::new();
        let mut rest: &mut [u8] = &mut bytes;
        for first in (0..table.len()).step_by(chunk) {
            let last = (first + chunk).min(table.len());
            let (part, after) = rest.split_at_mut((offsets[last] - offsets[first]) as usize);
            parts.push((first, part));
            rest = after;
        }
        parts.into_par_iter().for_each(|(first, part)| {
            let mut values: Vec<&str> = Vec::with_capacity(fields);
            let mut at = 0usize;
            for i in first..(first + chunk).min(table.len()) {
                packed(table, settings, &keys, i, &mut values);
                for v in &values {
                    part[at] = v.len() as u8;
                    at += 1;
                }
                for v in &values {
                    part[at..at + v.len()].copy_from_slice(v.as_bytes());
                    at += v.len();
                }
            }
        });
        // Whole `&str`s and ASCII length bytes (each under 128) only, so this never fails; if it
        // did, every row would compare as empty rather than the program stop.
        let data = String::from_utf8(bytes).unwrap_or_default();
        let tf: Vec<Option<Vec<f32>>> = settings
            .comparisons
            .par_iter()
            .map(|c| c.tf.then(|| term_frequencies(&table.columns[c.column])))
            .collect();
        let tf_log2 = tf
            .iter()
            .map(|t| t.as_ref().map(|v| v.iter().map(|x| x.log2()).collect()))
            .collect();
        Features {
            offsets,
            data,
            fields,
            phonetic,
            tf,
            tf_log2,
        }
    }

    /// Room for `rows` more rows (see [`crate::table::Column::reserve`]).
    pub(crate) fn reserve(&mut self, rows: usize) {
        let average = self.data.len() / self.offsets.len().max(1);
        self.data.reserve_exact(rows * average.max(1));
        self.offsets.reserve_exact(rows);
        for column in self.tf.iter_mut().chain(self.tf_log2.iter_mut()).flatten() {
            column.reserve_exact(rows);
        }
    }

    /// Append one row for incremental resolution: `values` holds the compared value of every
    /// comparison in order, `tf` each one's term frequency (ignored where a comparison has
    /// none). Phonetic keys are computed as [`Features::new`] would.
    pub(crate) fn push_row(&mut self, values: &[&str], tf: &[f32]) {
        let keys: Vec<String> = values
            .iter()
            .zip(&self.phonetic)
            .map(|(v, &p)| if p { phonetic_key(v) } else { String::new() })
            .collect();
        let packed: Vec<&str> = values
            .iter()
            .zip(&keys)
            .flat_map(|(v, k)| [truncate(v, 127), truncate(k, 127)])
            .collect();
        self.data
            .extend(packed.iter().map(|v| char::from(v.len() as u8)));
        for v in &packed {
            self.data.push_str(v);
        }
        self.offsets.push(self.data.len() as u64);
        for (c, column) in self.tf.iter_mut().enumerate() {
            if let Some(column) = column {
                column.push(tf.get(c).copied().unwrap_or(0.0));
            }
        }
        for (c, column) in self.tf_log2.iter_mut().enumerate() {
            if let Some(column) = column {
                column.push(tf.get(c).copied().unwrap_or(0.0).log2());
            }
        }
    }

    /// Set which comparisons use phonetic keys, for an index started from no rows (where
    /// [`Features::new`] has no values to tell from).
    pub(crate) fn set_phonetic(&mut self, phonetic: Vec<bool>) {
        self.phonetic = phonetic;
    }

    /// Reads the start of row `i`'s packed fields (its first bytes and the cache line after
    /// them), so that a batch of pairs has its rows fetched together before they are compared
    /// (see [`crate::blocking::scored_candidate_pairs`]). The sum means nothing.
    pub fn warm(&self, i: usize) -> u64 {
        let Some(&start) = self.offsets.get(i) else {
            return 0;
        };
        let bytes = self.data.as_bytes();
        let at = |k: usize| bytes.get(start as usize + k).copied().map_or(0, u64::from);
        at(0) + at(64)
    }

    /// Asks for the start of row `i`'s packed fields (its first bytes and the cache line after
    /// them) without waiting for them: the row's place is read, its bytes only requested, so
    /// that [`crate::blocking::scored_candidate_pairs`] compares one batch of pairs while the
    /// rows of the next are on their way.
    pub fn prefetch(&self, i: usize) {
        let Some(&start) = self.offsets.get(i) else {
            return;
        };
        let start = start as usize;
        let bytes = self.data.as_bytes();
        #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let at = bytes
                .as_ptr()
                .wrapping_add(start.min(bytes.len()))
                .cast::<i8>();
            // SAFETY: a prefetch never faults and reads nothing into the program; the address
            // is inside the packed fields (or one past their end), and this is compiled only
            // for a target with SSE enabled.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(at);
                _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(64));
            }
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
        {
            let at = |k: usize| bytes.get(start + k).copied().map_or(0, u64::from);
            std::hint::black_box(at(0) + at(64));
        }
    }

    /// Row `i`'s packed fields, to be read in order (value, key, value, key, …).
    fn row(&self, i: usize) -> PackedRow<'_> {
        let (Some(&start), Some(&end)) = (self.offsets.get(i), self.offsets.get(i + 1)) else {
            return PackedRow {
                lens: &[],
                text: "",
                at: 0,
            };
        };
        // Every field was pushed whole and cut on a character boundary, so these slices never
        // fail; if one did, the row would compare as empty rather than panic.
        let row = self.data.get(start as usize..end as usize).unwrap_or("");
        let (lens, text) = row.split_at(self.fields.min(row.len()));
        PackedRow {
            lens: lens.as_bytes(),
            text,
            at: 0,
        }
    }
}

/// A row's packed fields, read one after the other: each is cut from the row only when it is
/// read, and an empty one (every phonetic key of a column of Latin names) not at all. Cutting
/// all twenty slots of both rows of every pair up front was a tenth of the comparing stage.
struct PackedRow<'a> {
    lens: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> PackedRow<'a> {
    /// The next field ("" past the last).
    #[inline]
    fn next_field(&mut self) -> &'a str {
        let Some((&len, rest)) = self.lens.split_first() else {
            return "";
        };
        self.lens = rest;
        if len == 0 {
            return "";
        }
        let end = self.at + usize::from(len);
        let field = self.text.get(self.at..end).unwrap_or("");
        self.at = end;
        field
    }
}

/// The share of non-empty values equal to each row's value (0 for an empty one).
fn term_frequencies(col: &Column) -> Vec<f32> {
    let mut counts: FastMap<&str, u32> = fast_map();
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
pub fn pattern(settings: &Settings, features: &Features, a: usize, b: usize) -> u64 {
    let mut ra = features.row(a);
    let mut rb = features.row(b);
    let mut p = 0u64;
    for (c, cmp) in settings.comparisons.iter().enumerate() {
        let (va, ka) = (ra.next_field(), ra.next_field());
        let (vb, kb) = (rb.next_field(), rb.next_field());
        let l = if features.phonetic[c] || cmp.kind != Kind::Name {
            level(cmp.kind, va, vb, ka, kb)
        } else {
            level_latin_name(va, vb)
        };
        p |= u64::from(l) << (c as u32 * crate::model::LEVEL_BITS);
    }
    p
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

/// Every level's weight, looked up per pair instead of taking logarithms per pair (scoring ten
/// million candidate pairs would otherwise spend a second in `log2`).
pub struct WeightTable {
    levels: Vec<[f64; 8]>,
    /// Per comparison with term frequencies: log2 of u at the top level, and that level.
    tf: Vec<Option<(f64, usize)>>,
}

impl WeightTable {
    pub fn new(model: &Model, settings: &Settings, features: &Features) -> WeightTable {
        let levels = settings
            .comparisons
            .iter()
            .enumerate()
            .map(|(c, cmp)| {
                let mut row = [0.0; 8];
                for (l, w) in row.iter_mut().enumerate().take(cmp.kind.levels()) {
                    *w = model.weight(c, l);
                }
                row
            })
            .collect();
        let tf = settings
            .comparisons
            .iter()
            .enumerate()
            .map(|(c, cmp)| {
                let top = cmp.kind.levels() - 1;
                features.tf[c]
                    .as_ref()
                    .map(|_| (model.u[c][top].log2(), top))
            })
            .collect();
        WeightTable { levels, tf }
    }

    /// The weight of a pair: the pattern's level weights plus the term-frequency adjustments.
    pub fn weigh(&self, features: &Features, pattern: u64, a: usize) -> f64 {
        let mut w = 0.0;
        for (c, row) in self.levels.iter().enumerate() {
            let l = level_of(pattern, c);
            w += row[l];
            if let (Some((log_u, top)), Some(log_tf)) = (self.tf[c], &features.tf_log2[c])
                && l == top
                && log_tf[a].is_finite()
            {
                w += log_u - f64::from(log_tf[a]);
            }
        }
        w
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
pub fn random_pair_counts(shape: Shape, settings: &Settings, features: &Features) -> Vec<Vec<u64>> {
    let n = shape.len;
    let mut rng = SplitMix(settings.seed);
    let sample: Vec<(u32, u32)> = (0..settings.u_sample)
        .filter_map(|_| {
            let (a, b) = match shape.split {
                Some(s) if s > 0 && s < n => (rng.below(s), s + rng.below(n - s)),
                Some(_) => return None,
                None => (rng.below(n), rng.below(n)),
            };
            (a != b && n > 1).then_some((a as u32, b as u32))
        })
        .collect();
    let levels: Vec<usize> = settings
        .comparisons
        .iter()
        .map(|c| c.kind.levels())
        .collect();
    sample
        .par_chunks(WARM_BATCH)
        .fold(
            || levels.iter().map(|&l| vec![0u64; l]).collect::<Vec<_>>(),
            |mut acc, batch| {
                warm_pairs(features, batch);
                for &(a, b) in batch {
                    let p = pattern(settings, features, a as usize, b as usize);
                    for (c, row) in acc.iter_mut().enumerate() {
                        row[level_of(p, c)] += 1;
                    }
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

/// What training learns before the candidate pairs exist: u from random pairs, and m by EM per
/// training rule (on that rule's own pairs, see [`crate::blocking::training_pairs`]), summed
/// over the rules. [`Learned::finish`] completes it with the candidate pairs.
#[derive(Debug, Clone)]
pub struct Learned {
    base: Model,
    m_sum: Vec<Vec<f64>>,
    m_runs: Vec<usize>,
}

/// Learn u from `u_counts` and m by EM per training rule. Needs the rules' keys but not the
/// candidate pairs, so it runs before them and the keys can go once the pairs are formed.
pub fn learn(
    shape: Shape,
    settings: &Settings,
    features: &Features,
    keys: &RowKeys,
    u_counts: &[Vec<u64>],
) -> Learned {
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
    let mut buffers = BlockBuffers::default();
    for (r, rule) in settings
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.train)
    {
        let rule_columns: Vec<usize> = rule.parts.iter().map(|p| p.column).collect();
        let active: Vec<bool> = settings
            .comparisons
            .iter()
            .map(|c| !rule_columns.contains(&c.column))
            .collect();
        if !active.iter().any(|&a| a) {
            continue;
        }
        let pairs = training_pairs(
            shape,
            keys,
            r,
            settings.max_block,
            settings.em_pairs_per_rule,
            &mut buffers,
        );
        let tallied = tally_patterns(settings, features, &pairs);
        if tallied.is_empty() {
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
    Learned {
        base,
        m_sum,
        m_runs,
    }
}

impl Learned {
    /// Whether the training rules estimated m for every comparison, so that the candidate
    /// pairs only set λ.
    pub fn estimates_every_m(&self) -> bool {
        !self.m_runs.contains(&0)
    }

    /// The model: m averaged over the training rules, λ among the candidate pairs.
    pub fn finish<P: Copy + Into<u64>>(
        self,
        settings: &Settings,
        candidate_patterns: &[P],
    ) -> Model {
        let Learned {
            base,
            mut m_sum,
            mut m_runs,
        } = self;
        let k = settings.comparisons.len();
        let all = tally(candidate_patterns.iter().map(|&p| p.into()));
        // A comparison on a column every training rule blocks on is never estimated by
        // [`learn`]; learn it from all candidate pairs together rather than keep the starting
        // guess.
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
}

/// Pairs whose rows are fetched together before any is compared (see
/// [`Features::warm`]): a pair's rows are two random places in a large table, and fetched one
/// pair at a time each compare waits on memory.
const WARM_BATCH: usize = 32;

/// Reads the rows of a batch of pairs so that comparing them finds them in cache. The sum means
/// nothing.
fn warm_pairs(features: &Features, pairs: &[(u32, u32)]) {
    let mut seen = 0u64;
    for &(a, b) in pairs {
        seen ^= features.warm(a as usize) ^ features.warm(b as usize);
    }
    std::hint::black_box(seen);
}

/// The patterns of many pairs, computed on all cores and tallied.
fn tally_patterns(
    settings: &Settings,
    features: &Features,
    pairs: &[(u32, u32)],
) -> Vec<(u64, f64)> {
    let counts = pairs
        .par_chunks(WARM_BATCH)
        .fold(fast_map::<u64, f64>, |mut m, batch| {
            warm_pairs(features, batch);
            for &(a, b) in batch {
                *m.entry(pattern(settings, features, a as usize, b as usize))
                    .or_default() += 1.0;
            }
            m
        })
        .reduce(fast_map, |mut a, b| {
            for (p, n) in b {
                *a.entry(p).or_default() += n;
            }
            a
        });
    let mut v: Vec<(u64, f64)> = counts.into_iter().collect();
    v.sort_unstable_by_key(|&(p, _)| p);
    v
}

/// Turn λ learned among candidate pairs into the prior among all pairs, so that a pair's match
/// probability says how likely it is that two records drawn from the whole input match, as in
/// the original Fellegi–Sunter setting. Learned among candidates, the prior would be so high that
/// a pair agreeing on a name and little else passed any threshold.
pub fn rescale_prior(model: &mut Model, candidates: usize, shape: Shape) {
    let possible = shape.possible_pairs();
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
    Preparing,
    Blocking,
    /// u from random pairs, m by EM on each training rule's pairs.
    Training,
    Comparing,
    /// λ among the candidate pairs, then each pair's weight.
    Weighing,
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
    let prepared = prepare(table, settings, on_stage)?;
    Ok(finish(prepared, settings, false, on_stage))
}

/// Link or deduplicate `table` as [`run`] does, handing back the memory of its columns' text
/// (see [`Table::release_columns`]) as soon as the features and keys have been read from it,
/// before training and the candidate pairs take theirs, and the features' once the pairs are
/// weighed: for a caller that needs no more than the ids after the run (nothing to explain a
/// pair from). The outcome is the same as [`run`]'s but for its features, which are empty.
pub fn run_releasing_columns(
    table: &mut Table,
    settings: &Settings,
    on_stage: &mut dyn FnMut(Stage),
) -> Result<Outcome, LinkError> {
    let prepared = prepare(table, settings, on_stage)?;
    table.release_columns();
    Ok(finish(prepared, settings, true, on_stage))
}

/// Everything a run reads from its table's values: the rest of the run (training on, which
/// reads the values through the features) needs only the table's [`Shape`].
struct Prepared {
    shape: Shape,
    features: Features,
    keys: RowKeys,
    /// Links every record has to the first with the same must-link value.
    must: Vec<Link>,
    /// Each row's cannot-link tag.
    tags: Vec<u32>,
}

/// The stages that read the table's values: features and blocking keys.
fn prepare(
    table: &Table,
    settings: &Settings,
    on_stage: &mut dyn FnMut(Stage),
) -> Result<Prepared, LinkError> {
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
    let shape = table.shape();
    on_stage(Stage::Preparing);
    let features = Features::new(table, settings);
    on_stage(Stage::Blocking);
    let keys = RowKeys::of(table, &settings.rules);
    let must = settings
        .must_link
        .iter()
        .flat_map(|&column| must_links(table, column))
        .collect();
    let tags = cannot_link_tags(table, settings.cannot_link);
    Ok(Prepared {
        shape,
        features,
        keys,
        must,
        tags,
    })
}

/// The stages from training on, which read nothing of the table's values.
fn finish(
    p: Prepared,
    settings: &Settings,
    release_features: bool,
    on_stage: &mut dyn FnMut(Stage),
) -> Outcome {
    let Prepared {
        shape,
        features,
        keys,
        must,
        tags,
    } = p;
    let k = settings.comparisons.len();
    on_stage(Stage::Training);
    let u_counts = random_pair_counts(shape, settings, &features);
    let learned = learn(shape, settings, &features, &keys, &u_counts);
    on_stage(Stage::Comparing);
    // A pattern of up to ten comparisons fits in 32 bits: the candidates' patterns are then
    // held at four bytes each (39 MB less at the comparing stage's peak at a million records).
    let (pairs, weights, model, candidate_lambda, rule_stats) =
        if k as u32 * crate::model::LEVEL_BITS <= u32::BITS {
            compare_and_weigh(
                shape,
                settings,
                &features,
                keys,
                &tags,
                learned,
                on_stage,
                |p| {
                    // Lossless: the pattern's bits above the last comparison's are zero.
                    p as u32
                },
            )
        } else {
            compare_and_weigh(
                shape,
                settings,
                &features,
                keys,
                &tags,
                learned,
                on_stage,
                |p| p,
            )
        };
    on_stage(Stage::Clustering);
    // The features are read by nothing after the weights but an explanation, which a caller
    // that released the table's values cannot ask for (it has no values to show); at 3 M
    // people they are a gigabyte, gone before the links take their memory.
    let features = if release_features {
        drop(features);
        Features::default()
    } else {
        features
    };
    // Counted first so that the links, scored and must, take one allocation of their length:
    // collected and then extended they took up to twice it (at 3 M people 36 M links, 16 bytes
    // each when weights were f64, in a vector of room for 56 M).
    let passes = |w: f32| model.probability(f64::from(w)) >= settings.threshold;
    let scored = weights.par_iter().filter(|&&w| passes(w)).count();
    let mut links: Vec<Link> = Vec::with_capacity(scored + must.len());
    links.extend(
        pairs
            .iter()
            .zip(&weights)
            .filter(|&(_, &w)| passes(w))
            .map(|(p, &w)| Link {
                a: p.a,
                b: p.b,
                weight: w,
            }),
    );
    links.extend(must);
    let linked = links.len() as u64;
    let (labels, refused) = cluster(tags, &mut links);
    // A cluster's label is its smallest row, so each cluster has one row labelled itself.
    let clusters = labels
        .iter()
        .enumerate()
        .filter(|&(i, &l)| l as usize == i)
        .count();
    let stats = Stats {
        records: shape.len,
        candidate_pairs: pairs.len() as u64,
        rules: rule_stats,
        linked_pairs: linked - refused,
        refused_by_constraint: refused,
        clusters,
        candidate_lambda,
    };
    Outcome {
        model,
        features,
        pairs,
        weights,
        labels,
        stats,
    }
}

/// The comparing and weighing stages: every candidate pair and its pattern (narrowed to `P`),
/// the model finished on the patterns and its prior rescaled, and each pair's weight. Returns
/// the pairs, their weights, the model, the prior among the candidates and the rules' counts.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn compare_and_weigh<P: Copy + Default + Send + Sync + Into<u64>>(
    shape: Shape,
    settings: &Settings,
    features: &Features,
    keys: RowKeys,
    tags: &[u32],
    learned: Learned,
    on_stage: &mut dyn FnMut(Stage),
    narrow: impl Fn(u64) -> P + Sync,
) -> (Vec<Pair>, Vec<f32>, Model, f64, Vec<RuleStats>) {
    // Pairs the cannot-link constraint would refuse are never candidates (see
    // `scored_candidate_pairs`), where the candidates serve only for λ: a comparison no
    // training rule estimates learns its m from all the candidates together (see
    // `Learned::finish`), and without those pairs it would learn from nearly nothing but
    // matches (the entities' name levels did: "similar" went from +1.9 to -17.8).
    let apart = (settings.cannot_link.is_some() && learned.estimates_every_m()).then_some(tags);
    let (pairs, patterns, rule_stats) = scored_candidate_pairs(
        shape,
        &settings.rules,
        &keys,
        settings.max_block,
        apart,
        |a, b| narrow(pattern(settings, features, a as usize, b as usize)),
        |row| features.prefetch(row as usize),
    );
    // Training is done with the keys (it ran before the pairs for that reason) and the weights
    // with the patterns: each is dropped as soon as it is spent, so that what comes after takes
    // in their memory rather than adding to the peak (at a million records, 88 MB of keys and
    // 39 MB of patterns).
    drop(keys);
    on_stage(Stage::Weighing);
    let mut model = learned.finish(settings, &patterns);
    let candidate_lambda = model.lambda;
    rescale_prior(&mut model, pairs.len(), shape);
    let table_of_weights = WeightTable::new(&model, settings, features);
    let weights: Vec<f32> = pairs
        .par_iter()
        .zip(&patterns)
        .map(|(p, &x)| table_of_weights.weigh(features, x.into(), p.a as usize) as f32)
        .collect();
    drop(patterns);
    (pairs, weights, model, candidate_lambda, rule_stats)
}

/// Deterministic links: every row to the first row with the same must-link value, with an
/// infinite weight so they are merged before any probabilistic link.
fn must_links(table: &Table, column: usize) -> Vec<Link> {
    let col = &table.columns[column];
    let mut first: FastMap<&str, u32> = fast_map();
    let mut out = Vec::new();
    for i in 0..table.len() {
        let v = col.get(i);
        if v.is_empty() {
            continue;
        }
        match first.get(v) {
            Some(&f) => out.push(Link {
                a: f,
                b: i as u32,
                weight: f32::INFINITY,
            }),
            None => {
                first.insert(v, i as u32);
            }
        }
    }
    out
}

/// Interned cannot-link values per row.
fn cannot_link_tags(table: &Table, column: Option<usize>) -> Vec<u32> {
    let Some(column) = column else {
        return vec![NO_TAG; table.len()];
    };
    let col = &table.columns[column];
    let mut ids: FastMap<&str, u32> = fast_map();
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
    let p = pattern(settings, features, a, b);
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
