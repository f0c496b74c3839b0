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
use crate::table::{Shape, Table};
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
    /// Whether EM learns m from this rule's pairs. A rule that pairs records on where they live
    /// rather than who they are (postcode and house number, say) yields mostly different people at
    /// one address; EM would then learn "same address" instead of "same person".
    pub train: bool,
}

/// A candidate pair: rows `a < b`. Which rule formed it is not kept (the rules' counts are in
/// [`RuleStats`]): ten million pairs are 80 MB at eight bytes and were 120 MB at twelve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
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

/// The hashed key of row `i` under a rule; 0 when a part is missing.
pub fn row_key(table: &Table, rule: &Rule, i: usize) -> u64 {
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
}

/// Every row with a key (non-zero), as (key, row), sorted by key and then row.
///
/// A counting sort on the key's top 16 bits, then each of the 65,536 buckets sorted on its own:
/// keys are hashes, so the buckets are small (fifteen rows each at a million) and the result is
/// exactly what sorting the whole would give, in two passes over the rows instead of twenty
/// levels of comparisons. Sorting with the general sort was about 7 % of `tongban link`'s
/// samples at a million records (each rule's keys are grouped once for the pairs' bound and once
/// for the pairs, and each training rule's once more); a million random keys take 24–27 ms this
/// way against 32–39 ms with rayon's parallel sort, both on two cores.
fn keyed_rows_into(keys: &[u64], out: &mut Vec<(u64, u32)>, starts: &mut Vec<usize>) {
    const TOP_BITS: u32 = 16;
    let bucket = |k: u64| (k >> (64 - TOP_BITS)) as usize;
    starts.clear();
    starts.resize((1 << TOP_BITS) + 1, 0);
    for &k in keys.iter().filter(|&&k| k != 0) {
        starts[bucket(k) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let total = starts[1 << TOP_BITS];
    out.clear();
    out.resize(total, (0, 0));
    // Rows in row order, so each bucket receives its rows in order (the sort below then only
    // has keys to order). `starts[b]` moves along bucket `b` as it fills and ends at the
    // bucket's end, which is the next bucket's start.
    for (i, &k) in keys.iter().enumerate().filter(|(_, k)| **k != 0) {
        let at = &mut starts[bucket(k)];
        out[*at] = (k, i as u32);
        *at += 1;
    }
    // Shifted by one place, the entries are each bucket's start again.
    starts.rotate_right(1);
    starts[0] = 0;
    let starts: &[usize] = starts;
    // The buckets sorted on both cores, in runs of 1,024 buckets each.
    const RUN: usize = 1 << 10;
    let mut runs: Vec<(usize, &mut [(u64, u32)])> = Vec::with_capacity((1 << TOP_BITS) / RUN);
    let mut rest: &mut [(u64, u32)] = out;
    for first in (0..1usize << TOP_BITS).step_by(RUN) {
        let (run, after) = rest.split_at_mut(starts[first + RUN] - starts[first]);
        runs.push((first, run));
        rest = after;
    }
    runs.into_par_iter().for_each(|(first, run)| {
        let base = starts[first];
        for b in first..first + RUN {
            let (start, end) = (starts[b] - base, starts[b + 1] - base);
            if end - start > 1 {
                run[start..end].sort_unstable();
            }
        }
    });
}

/// [`keyed_rows_into`] into fresh vectors.
#[cfg(test)]
fn keyed_rows(keys: &[u64]) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    keyed_rows_into(keys, &mut out, &mut Vec::new());
    out
}

/// The vectors one rule's blocks are formed in, kept from rule to rule. At a million rows a
/// rule's keys, keyed rows and rows take 8, 16 and 4 MB; allocated afresh for each rule (twice
/// per rule, once for the pairs' bound), the kernel clearing their pages was a third of the
/// comparing stage's work outside the pairing itself, done while the other cores waited. The
/// price is that they stay through each rule's pairing, in the comparing stage's peak (about
/// 12 MB more at a million records than fresh vectors freed as soon as spent).
#[derive(Debug, Default)]
pub struct BlockBuffers {
    keys: Vec<u64>,
    keyed: Vec<(u64, u32)>,
    starts: Vec<usize>,
    /// The rows with a key, ordered by key (and by row within a key).
    rows: Vec<u32>,
    /// The blocks formed last: ranges of `rows` sharing a key.
    blocks: Vec<std::ops::Range<usize>>,
}

impl BlockBuffers {
    /// Every row with a key under rule `r`, as (key, row) in `self.keyed`, sorted (see
    /// [`keyed_rows_into`]).
    fn key(&mut self, keys: &RowKeys, r: usize) {
        keys.rule_into(r, &mut self.keys);
        keyed_rows_into(&self.keys, &mut self.keyed, &mut self.starts);
    }

    /// Group the rows by rule `r`'s key: the blocks with at least two rows and at most
    /// `max_block` end up in `self.blocks`, as ranges of `self.rows`.
    fn form(&mut self, keys: &RowKeys, r: usize, max_block: usize) {
        self.key(keys, r);
        self.blocks.clear();
        let mut start = 0;
        for run in self.keyed.chunk_by(|x, y| x.0 == y.0) {
            if run.len() > 1 && run.len() <= max_block {
                self.blocks.push(start..start + run.len());
            }
            start += run.len();
        }
        self.rows.clear();
        self.rows.extend(self.keyed.iter().map(|&(_, r)| r));
    }
}

/// All pairs agreeing on one rule's key, regardless of other rules, thinned to about `limit` by
/// a hash of the pair (so the same pairs are kept on every run). These are the pairs EM learns
/// from: unlike candidate pairs, they are not missing the pairs an earlier rule produced, which
/// would hide exactly the best matches from every rule but the first.
pub fn training_pairs(
    shape: Shape,
    keys: &RowKeys,
    r: usize,
    max_block: usize,
    limit: usize,
    buffers: &mut BlockBuffers,
) -> Vec<(u32, u32)> {
    buffers.form(keys, r, max_block);
    let (rows, blocks) = (&buffers.rows, &buffers.blocks);
    let total: u64 = blocks
        .iter()
        .map(|b| (b.len() as u64) * (b.len() as u64 - 1) / 2)
        .sum();
    let keep = if total == 0 {
        1.0
    } else {
        (limit as f64 / total as f64).min(1.0)
    };
    let cutoff = (keep * u64::MAX as f64) as u64;
    blocks
        .par_iter()
        .flat_map_iter(|block| {
            let members = &rows[block.clone()];
            let mut out = Vec::new();
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    let (a, b) = (a.min(b), a.max(b));
                    let h = fnv(fnv(FNV_OFFSET, &a.to_le_bytes()), &b.to_le_bytes());
                    if (keep >= 1.0 || mix(h) <= cutoff) && shape.pairable(a as usize, b as usize) {
                        out.push((a, b));
                    }
                }
            }
            out.into_iter()
        })
        .collect()
}

/// A finaliser so that nearby pairs get unrelated hash values.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Candidate pairs under the rules, in a deterministic order, with per-rule statistics.
pub fn candidate_pairs(
    table: &Table,
    rules: &[Rule],
    max_block: usize,
) -> (Vec<Pair>, Vec<RuleStats>) {
    let keys = RowKeys::of(table, rules);
    let (pairs, _, stats) = scored_candidate_pairs(
        table.shape(),
        rules,
        &keys,
        max_block,
        None,
        |_, _| 0u8,
        |_| {},
    );
    (pairs, stats)
}

/// Pairs looked at together by [`scored_candidate_pairs`]: the rows of a batch are fetched from
/// memory together, then compared.
const BATCH: usize = 32;

/// Every rule's key of every row, laid out row by row: a candidate pair checks the earlier
/// rules' keys of both its rows, and one array per rule would cost two cache misses per earlier
/// rule where row by row they share a cache line. Each rule's keys in a column of their own are
/// made from it when needed, so that the keys are held once (at a million records and eleven
/// rules, 88 MB held twice was a ninth of `tongban link`'s peak).
#[derive(Debug, Clone, Default)]
pub struct RowKeys {
    rules: usize,
    keys: Vec<u64>,
}

impl RowKeys {
    /// Every rule's key of every row of `table` (see [`row_key`]).
    pub fn of(table: &Table, rules: &[Rule]) -> RowKeys {
        let width = rules.len();
        let mut keys = vec![0u64; table.len() * width];
        if width > 0 {
            keys.par_chunks_mut(width).enumerate().for_each(|(i, row)| {
                for (key, rule) in row.iter_mut().zip(rules) {
                    *key = row_key(table, rule, i);
                }
            });
        }
        RowKeys { rules: width, keys }
    }

    /// The keys of `row` under the rules before rule `upto`.
    fn earlier(&self, row: u32, upto: usize) -> &[u64] {
        let start = row as usize * self.rules;
        self.keys.get(start..start + upto).unwrap_or(&[])
    }

    /// Rule `r`'s key of every row, in row order, into `out` (emptied first).
    pub fn rule_into(&self, r: usize, out: &mut Vec<u64>) {
        out.clear();
        if r >= self.rules {
            return;
        }
        out.extend(self.keys.iter().skip(r).step_by(self.rules).copied());
    }
}

/// The most pairs rule `r`'s blocks of at most `max_block` rows can form, found from its keys
/// alone (sorted, without the rows they belong to, so that no rule's blocks need be held while
/// the others are paired).
fn pairs_bound(keys: &RowKeys, r: usize, max_block: usize, buffers: &mut BlockBuffers) -> usize {
    buffers.key(keys, r);
    buffers
        .keyed
        .chunk_by(|x, y| x.0 == y.0)
        .map(<[(u64, u32)]>::len)
        .filter(|&n| n <= max_block)
        .fold(0usize, |sum, n| {
            sum.saturating_add(n.saturating_mul(n - 1) / 2)
        })
}

/// The most pairs one piece of pairing work may form (see [`pieces`]): small enough that the
/// pieces of a group spread evenly over the cores.
const PIECE_PAIRS: u64 = 1 << 13;

/// The most pairs the pieces paired together before their pairs join the rest may form: the
/// pairs held apart meanwhile stay under about 16 MB (and one piece's more, for a piece that is
/// a single row of a block larger than [`PIECE_PAIRS`]). Grouped by blocks instead, the pairs held
/// apart were a whole rule's (64 MB at a million FEBRL-style records), and one block of
/// thousands of rows (an entity name thousands of records share) formed millions of pairs in
/// one piece, held apart and then copied (0.76 GiB more for entity linking in a 1 M city).
const GROUP_PAIRS: u64 = 1 << 20;

/// A piece of one rule's pairing work: the blocks `blocks`, each of whose rows is paired with
/// the rows after it in its block; or, for one block too large to pair in one piece, its rows
/// `rows` only (each still with every row after it).
#[derive(Debug, Clone, PartialEq)]
struct Piece {
    blocks: std::ops::Range<usize>,
    rows: Option<std::ops::Range<usize>>,
    /// At most how many pairs it forms.
    pairs: u64,
}

/// The blocks cut into pieces of at most [`PIECE_PAIRS`] pairs (a block larger than that by
/// itself is cut by rows; a single row with more pairs than that is a piece of its own), in
/// block and row order, so that pairs formed piece by piece come in
/// the order of the blocks.
fn pieces(blocks: &[std::ops::Range<usize>]) -> Vec<Piece> {
    let mut out = Vec::new();
    let (mut start, mut pending) = (0usize, 0u64);
    for (b, block) in blocks.iter().enumerate() {
        let n = block.len() as u64;
        let pairs = n * n.saturating_sub(1) / 2;
        if pending > 0 && pending + pairs > PIECE_PAIRS {
            out.push(Piece {
                blocks: start..b,
                rows: None,
                pairs: pending,
            });
            (start, pending) = (b, 0);
        }
        if pairs <= PIECE_PAIRS {
            pending += pairs;
            continue;
        }
        // Row x of a block of n pairs with the n − 1 − x rows after it.
        let mut x = 0u64;
        while x + 1 < n {
            let (from, mut formed) = (x, 0u64);
            while x + 1 < n && (formed == 0 || formed + (n - 1 - x) <= PIECE_PAIRS) {
                formed += n - 1 - x;
                x += 1;
            }
            out.push(Piece {
                blocks: b..b + 1,
                rows: Some(from as usize..x as usize),
                pairs: formed,
            });
        }
        (start, pending) = (b + 1, 0);
    }
    if start < blocks.len() {
        out.push(Piece {
            blocks: start..blocks.len(),
            rows: None,
            pairs: pending,
        });
    }
    out
}

/// Consecutive pieces whose pairs together stay within [`GROUP_PAIRS`] (a piece is never split).
fn groups(pieces: &[Piece]) -> Vec<&[Piece]> {
    let mut out = Vec::new();
    let (mut start, mut sum) = (0usize, 0u64);
    for (i, piece) in pieces.iter().enumerate() {
        if i > start && sum + piece.pairs > GROUP_PAIRS {
            out.push(&pieces[start..i]);
            (start, sum) = (i, 0);
        }
        sum += piece.pairs;
    }
    if start < pieces.len() {
        out.push(&pieces[start..]);
    }
    out
}

/// [`candidate_pairs`] under precomputed keys ([`RowKeys::of`]), with `score(a, b)`
/// computed for each pair as it is found: the rows of a block are then still in cache, where a
/// later pass over ten million pairs would fetch them again.
///
/// A pair's rows are two random places in tables of a hundred megabytes, and looking them up
/// one pair at a time left the comparing stage waiting on memory, one cache miss after another
/// (profiled on a million FEBRL-style records). So pairs go in batches of [`BATCH`]: first every
/// pair's earlier-rule keys are read, each load independent of the others so that the processor
/// has them all under way at once, and the pairs an earlier rule formed are dropped; then
/// `prefetch(row)` asks for each remaining pair's rows (what `score` will read) without waiting
/// for them, and the batch before is scored meanwhile, its rows having been asked for a batch
/// earlier. The pairs, their order and their scores are the same as one at a time.
///
/// `apart` gives each row's cannot-link tag, if the run has the constraint: two rows with
/// different tags can never be merged, so their pair is not formed at all. A rule whose blocks
/// grow with the population forms mostly such pairs: at 3 M synthetic people "id county and
/// birth date + sex" formed 84 % of the person pairs, nearly all between two different valid
/// ids, each scored, weighed and held only to be refused when clustering.
pub fn scored_candidate_pairs<S: Copy + Default + Send + Sync>(
    shape: Shape,
    rules: &[Rule],
    keys: &RowKeys,
    max_block: usize,
    apart: Option<&[u32]>,
    score: impl Fn(u32, u32) -> S + Sync,
    prefetch: impl Fn(u32) + Sync,
) -> (Vec<Pair>, Vec<S>, Vec<RuleStats>) {
    let held_apart = |a: u32, b: u32| {
        apart.is_some_and(|tags| {
            let (x, y) = (tags[a as usize], tags[b as usize]);
            x != y && x != crate::cluster::NO_TAG && y != crate::cluster::NO_TAG
        })
    };
    // Room for every pair the blocks could form, reserved once: grown as pairs came, the two
    // vectors were copied into fresh memory again and again (a tenth of the comparing stage's
    // samples at a million records went to copying and to the kernel clearing new pages).
    // Pairs an earlier rule formed are fewer than the bound; the part never written is never
    // touched, so it takes address space but not memory. Large blocks whose pairs an earlier
    // rule already formed can make the bound far larger than memory, and an allocator may
    // refuse that much address space: then the vectors grow as pairs come, as before.
    // The rules' bounds are found on both cores at once, each core keeping its own buffers.
    let bound = (0..rules.len())
        .into_par_iter()
        .map_init(BlockBuffers::default, |buffers, r| {
            pairs_bound(keys, r, max_block, buffers)
        })
        .reduce(|| 0, usize::saturating_add);
    let mut pairs: Vec<Pair> = Vec::new();
    let mut scores: Vec<S> = Vec::new();
    if pairs.try_reserve_exact(bound).is_err() || scores.try_reserve_exact(bound).is_err() {
        pairs = Vec::new();
        scores = Vec::new();
    }
    let mut stats = Vec::new();
    let mut buffers = BlockBuffers::default();
    for (r, rule) in rules.iter().enumerate() {
        // Each rule's blocks are formed when its turn comes, in the buffers the rule before
        // used.
        buffers.form(keys, r, usize::MAX);
        let rows = &buffers.rows;
        let (kept, skipped): (Vec<_>, Vec<_>) = buffers
            .blocks
            .iter()
            .cloned()
            .partition(|b| b.len() <= max_block);
        let mut rule_stats = RuleStats {
            rule: rule.text.clone(),
            skipped_blocks: skipped.len() as u64,
            skipped_records: skipped.iter().map(|b| b.len() as u64).sum(),
            ..RuleStats::default()
        };
        let pieces = pieces(&kept);
        for group in groups(&pieces) {
            // Each piece writes its pairs straight into its own room at the end of `pairs` and
            // `scores` (as much as it forms before filtering), and the rooms are then closed up:
            // collected into vectors of their own and copied in, the pieces' pairs took fresh
            // pages for every group, and the kernel clearing them was a tenth of the stage.
            let start = pairs.len();
            let room: usize = group.iter().map(|p| p.pairs as usize).sum();
            pairs.resize(start + room, Pair { a: 0, b: 0 });
            scores.resize(start + room, S::default());
            let mut rooms = Vec::with_capacity(group.len());
            let (mut pair_rest, mut score_rest) = (&mut pairs[start..], &mut scores[start..]);
            for piece in group.iter() {
                let (p, rest) = std::mem::take(&mut pair_rest).split_at_mut(piece.pairs as usize);
                let (sc, score_after) =
                    std::mem::take(&mut score_rest).split_at_mut(piece.pairs as usize);
                rooms.push((piece, p, sc));
                (pair_rest, score_rest) = (rest, score_after);
            }
            let written: Vec<usize> = rooms
                .into_par_iter()
                .map(|(piece, out, out_scores)| {
                    // A piece forms exactly `piece.pairs` pairs (see [`pieces`] and its property
                    // test) and keeps some of them, so `n` stays within its room.
                    let mut n = 0usize;
                    let mut batch: Vec<(u32, u32)> = Vec::with_capacity(BATCH);
                    // The batch whose rows were asked for last, scored after the next is asked
                    // for.
                    let mut asked: Vec<(u32, u32)> = Vec::with_capacity(BATCH);
                    let mut score_asked = |asked: &mut Vec<(u32, u32)>| {
                        for &(a, b) in asked.iter() {
                            out[n] = Pair { a, b };
                            out_scores[n] = score(a, b);
                            n += 1;
                        }
                        asked.clear();
                    };
                    let mut flush = |batch: &mut Vec<(u32, u32)>, asked: &mut Vec<(u32, u32)>| {
                        if r > 0 {
                            let mut seen = 0u64;
                            for &(a, b) in batch.iter() {
                                seen ^= keys.earlier(a, r).first().copied().unwrap_or(0)
                                    ^ keys.earlier(b, r).first().copied().unwrap_or(0);
                            }
                            std::hint::black_box(seen);
                        }
                        // A pair an earlier rule already formed is that rule's.
                        batch.retain(|&(a, b)| {
                            !keys
                                .earlier(a, r)
                                .iter()
                                .zip(keys.earlier(b, r))
                                .any(|(x, y)| *x != 0 && x == y)
                        });
                        for &(a, b) in batch.iter() {
                            prefetch(a);
                            prefetch(b);
                        }
                        score_asked(asked);
                        std::mem::swap(batch, asked);
                    };
                    for block in &kept[piece.blocks.clone()] {
                        let members = &rows[block.clone()];
                        let firsts = piece.rows.clone().unwrap_or(0..members.len());
                        for x in firsts {
                            let a = members[x];
                            for &b in &members[x + 1..] {
                                let (a, b) = (a.min(b), a.max(b));
                                if !shape.pairable(a as usize, b as usize) || held_apart(a, b) {
                                    continue;
                                }
                                batch.push((a, b));
                                if batch.len() == BATCH {
                                    flush(&mut batch, &mut asked);
                                }
                            }
                        }
                    }
                    flush(&mut batch, &mut asked);
                    flush(&mut batch, &mut asked);
                    n
                })
                .collect();
            let (mut to, mut from) = (start, start);
            for (piece, n) in group.iter().zip(written) {
                pairs.copy_within(from..from + n, to);
                scores.copy_within(from..from + n, to);
                to += n;
                from += piece.pairs as usize;
            }
            pairs.truncate(to);
            scores.truncate(to);
            rule_stats.pairs += (to - start) as u64;
        }
        stats.push(rule_stats);
    }
    (pairs, scores, stats)
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
            train: true,
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

        // Rows held apart by different cannot-link tags form no pair under any rule; rows with
        // the same tag, or without one, still do, and each rule counts only what it formed.
        let keys = RowKeys::of(&t, &rules);
        let no = crate::cluster::NO_TAG;
        let tags = [7, 8, no, 9, 9];
        let (pairs, _, stats) = scored_candidate_pairs(
            t.shape(),
            &rules,
            &keys,
            100,
            Some(&tags),
            |_, _| 0u8,
            |_| {},
        );
        let mut got: Vec<(u32, u32)> = pairs.iter().map(|p| (p.a, p.b)).collect();
        got.sort();
        assert_eq!(got, vec![(0, 2), (1, 2), (3, 4)]);
        assert_eq!((stats[0].pairs, stats[1].pairs), (1, 2));
    }

    /// Every pair of rows sharing a rule's key, under the first rule that forms it, with the
    /// score of each pair beside it: what [`scored_candidate_pairs`] must give whatever the
    /// pieces and groups its blocks are cut into and however many pairs each piece drops.
    fn pairs_by_rule_naively(t: &Table, rules: &[Rule]) -> Vec<Vec<(u32, u32)>> {
        let mut seen = std::collections::HashSet::new();
        rules
            .iter()
            .map(|rule| {
                let mut formed = Vec::new();
                for a in 0..t.len() {
                    for b in a + 1..t.len() {
                        let (ka, kb) = (row_key(t, rule, a), row_key(t, rule, b));
                        if ka != 0 && ka == kb && seen.insert((a, b)) {
                            formed.push((a as u32, b as u32));
                        }
                    }
                }
                formed.sort_unstable();
                formed
            })
            .collect()
    }

    fn check_against_naive(t: &Table, rules: &[Rule]) -> Result<(), String> {
        let keys = RowKeys::of(t, rules);
        let score = |a: u32, b: u32| u64::from(a) << 32 | u64::from(b);
        let (pairs, scores, stats) =
            scored_candidate_pairs(t.shape(), rules, &keys, usize::MAX, None, score, |_| {});
        let want = pairs_by_rule_naively(t, rules);
        if pairs.len() != scores.len() {
            return Err(format!("{} pairs but {} scores", pairs.len(), scores.len()));
        }
        if let Some((p, s)) = pairs
            .iter()
            .zip(&scores)
            .find(|(p, s)| score(p.a, p.b) != **s)
        {
            return Err(format!("pair {p:?} has the score {s:#x}"));
        }
        let mut at = 0usize;
        for (r, want) in want.iter().enumerate() {
            let n = stats[r].pairs as usize;
            let mut got: Vec<(u32, u32)> = pairs[at..at + n].iter().map(|p| (p.a, p.b)).collect();
            got.sort_unstable();
            if &got != want {
                return Err(format!(
                    "rule {r}: {} pairs where {} were due",
                    got.len(),
                    want.len()
                ));
            }
            at += n;
        }
        if at != pairs.len() {
            return Err(format!(
                "{} pairs beyond the rules' counts",
                pairs.len() - at
            ));
        }
        Ok(())
    }

    fn two_rules() -> Vec<Rule> {
        (0..2)
            .map(|column| {
                rule(vec![KeyPart {
                    column,
                    transform: Transform::Whole,
                }])
            })
            .collect()
    }

    #[test]
    fn pairs_written_in_place_across_groups_are_every_pair_once() {
        // One block of 1,500 rows forms 1.12 M pairs: several groups of pieces cut by rows;
        // the second rule's blocks drop every pair the first formed.
        let mut t = Table::new(vec!["a".into(), "b".into()]);
        for i in 0..1_500 {
            let b = (i % 7).to_string();
            t.push(&i.to_string(), &["same", &b]);
        }
        t.push("x", &["other", "1"]);
        t.push("y", &["other", "2"]);
        assert_eq!(check_against_naive(&t, &two_rules()), Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn pairs_written_in_place_are_every_pair_once(
            rows in proptest::collection::vec((0u8..4, 0u8..3), 0..300)
        ) {
            let mut t = Table::new(vec!["a".into(), "b".into()]);
            for (i, (a, b)) in rows.iter().enumerate() {
                t.push(&i.to_string(), &[&a.to_string(), &b.to_string()]);
            }
            proptest::prop_assert_eq!(check_against_naive(&t, &two_rules()), Ok(()));
        }
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

    /// The rows a piece pairs with the rows after them, as (block, row) in order.
    fn rows_of(blocks: &[std::ops::Range<usize>], piece: &Piece) -> Vec<(usize, usize)> {
        piece
            .blocks
            .clone()
            .flat_map(|b| {
                let n = blocks[b].len();
                piece
                    .rows
                    .clone()
                    .unwrap_or(0..n)
                    .filter(move |&x| x + 1 < n)
                    .map(move |x| (b, x))
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn pieces_cover_every_row_of_every_block_once_in_order(
            sizes in proptest::collection::vec(
                proptest::prop_oneof![2usize..6, 6usize..200, 200usize..400],
                0..40,
            )
        ) {
            let mut blocks = Vec::new();
            let mut at = 0;
            for n in &sizes {
                blocks.push(at..at + n);
                at += n;
            }
            let pieces = pieces(&blocks);
            let covered: Vec<(usize, usize)> =
                pieces.iter().flat_map(|p| rows_of(&blocks, p)).collect();
            let every: Vec<(usize, usize)> = blocks
                .iter()
                .enumerate()
                .flat_map(|(b, r)| (0..r.len().saturating_sub(1)).map(move |x| (b, x)))
                .collect();
            proptest::prop_assert_eq!(covered, every);
            for p in &pieces {
                let formed: u64 = rows_of(&blocks, p)
                    .iter()
                    .map(|&(b, x)| (blocks[b].len() - 1 - x) as u64)
                    .sum();
                proptest::prop_assert_eq!(formed, p.pairs);
                // Only a single row may form more than a piece's share.
                proptest::prop_assert!(
                    p.pairs <= PIECE_PAIRS || rows_of(&blocks, p).len() == 1,
                    "{:?}", p
                );
            }
            let grouped = groups(&pieces);
            proptest::prop_assert_eq!(grouped.iter().map(|g| g.len()).sum::<usize>(), pieces.len());
            for g in grouped {
                let sum: u64 = g.iter().map(|p| p.pairs).sum();
                proptest::prop_assert!(sum <= GROUP_PAIRS || g.len() == 1);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn keyed_rows_sort_as_the_general_sort_does(
            keys in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u64::ANY,
                    0u64..4,
                    0xffff_0000_0000_0000u64..=u64::MAX,
                ],
                0..300,
            ),
            before in proptest::collection::vec(proptest::num::u64::ANY, 0..400),
        ) {
            let mut expected: Vec<(u64, u32)> = keys
                .iter()
                .enumerate()
                .filter(|(_, k)| **k != 0)
                .map(|(i, &k)| (k, i as u32))
                .collect();
            expected.sort_unstable();
            proptest::prop_assert_eq!(keyed_rows(&keys), expected.clone());
            // Buffers kept from another rule's keys (as the pairing keeps them) give the same.
            let (mut out, mut starts) = (Vec::new(), Vec::new());
            keyed_rows_into(&before, &mut out, &mut starts);
            keyed_rows_into(&keys, &mut out, &mut starts);
            proptest::prop_assert_eq!(out, expected);
        }
    }
}
