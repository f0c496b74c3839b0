//! The Fellegi–Sunter model: for every comparison level, how likely it is among true matches (m)
//! and among non-matches (u); its match weight is log2(m/u).
//!
//! Written here rather than taken from a crate because no maintained Rust crate implements it.
//! u is measured on random pairs of records, which are almost all non-matches. m is learned
//! without labels by expectation–maximisation over the candidate pairs, u held fixed. Pairs are
//! grouped by their comparison pattern (one level per comparison, packed into a `u64`) so that an
//! EM iteration costs the number of distinct patterns, not the number of pairs. Term-frequency
//! adjustment makes agreement on a rare value count for more than agreement on a common one.
//! This module only does arithmetic; which pairs to compare and what the levels mean live
//! elsewhere.

/// Bits per comparison level in a packed pattern; levels are < 8.
pub const LEVEL_BITS: u32 = 3;
/// The most comparisons a pattern can hold.
pub const MAX_COMPARISONS: usize = (64 / LEVEL_BITS) as usize;

/// The level of comparison `c` in a packed pattern.
pub fn level_of(pattern: u64, c: usize) -> usize {
    ((pattern >> (c as u32 * LEVEL_BITS)) & ((1 << LEVEL_BITS) - 1)) as usize
}

/// Pack levels into a pattern.
pub fn pack(levels: &[u8]) -> u64 {
    levels.iter().enumerate().fold(0u64, |p, (c, &l)| {
        p | (u64::from(l) << (c as u32 * LEVEL_BITS))
    })
}

/// m and u per comparison and level (index 0, "missing", is unused), and the share of matches
/// among candidate pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub m: Vec<Vec<f64>>,
    pub u: Vec<Vec<f64>>,
    pub lambda: f64,
}

/// The smallest probability a level is given, so that a level never seen does not give an
/// infinite weight.
const FLOOR: f64 = 1e-6;

impl Model {
    /// A starting model: agreement likely among matches, `levels[c]` levels per comparison.
    pub fn initial(levels: &[usize]) -> Model {
        let m = levels
            .iter()
            .map(|&n| {
                let mut v = vec![0.0; n];
                // The top level gets most of the mass, "different" a little, levels between share
                // the rest; EM moves them from here.
                let top = n - 1;
                v[top] = 0.85;
                v[1] = 0.05;
                let middle = top.saturating_sub(2);
                for item in v.iter_mut().take(top).skip(2) {
                    *item = 0.10 / middle as f64;
                }
                if middle == 0 {
                    v[top] = 0.95;
                }
                v
            })
            .collect();
        let u = levels
            .iter()
            .map(|&n| vec![1.0 / (n - 1) as f64; n])
            .collect();
        Model { m, u, lambda: 0.3 }
    }

    /// The match weight (log2 m/u) of level `l` of comparison `c`; 0 for "missing".
    pub fn weight(&self, c: usize, l: usize) -> f64 {
        if l == 0 {
            return 0.0;
        }
        (self.m[c][l].max(FLOOR) / self.u[c][l].max(FLOOR)).log2()
    }

    /// The summed weight of a pattern, without term-frequency adjustment.
    pub fn pattern_weight(&self, pattern: u64) -> f64 {
        (0..self.m.len())
            .map(|c| self.weight(c, level_of(pattern, c)))
            .sum()
    }

    /// The prior weight log2(λ/(1−λ)) among candidate pairs.
    pub fn prior_weight(&self) -> f64 {
        let l = self.lambda.clamp(1e-15, 1.0 - FLOOR);
        (l / (1.0 - l)).log2()
    }

    /// The match probability of a pair with this total weight (prior included here).
    pub fn probability(&self, weight: f64) -> f64 {
        let w = weight + self.prior_weight();
        1.0 / (1.0 + (-w).exp2())
    }

    /// Set u from level counts over random pairs: `counts[c][l]`. Add-one smoothing keeps a
    /// level that never occurred among random pairs (such as an exact id) finite.
    pub fn set_u_from_counts(&mut self, counts: &[Vec<u64>]) {
        for (c, row) in counts.iter().enumerate() {
            let total: u64 = row.iter().skip(1).sum();
            let n = row.len() - 1;
            for (l, &count) in row.iter().enumerate().skip(1) {
                self.u[c][l] = (count as f64 + 1.0) / (total as f64 + n as f64);
            }
        }
    }
}

/// Count distinct patterns.
pub fn tally(patterns: impl Iterator<Item = u64>) -> Vec<(u64, f64)> {
    let mut counts: crate::FastMap<u64, f64> = crate::fast_map();
    for p in patterns {
        *counts.entry(p).or_default() += 1.0;
    }
    let mut v: Vec<(u64, f64)> = counts.into_iter().collect();
    // Sorted so that the floating-point sums below do not depend on hash order.
    v.sort_unstable_by_key(|&(p, _)| p);
    v
}

/// Expectation–maximisation for m and λ with u fixed, over tallied patterns. Only comparisons
/// with `active[c]` take part (a blocking rule's own columns agree on every pair it produced and
/// tell EM nothing). Returns the number of iterations run.
pub fn expectation_maximisation(
    model: &mut Model,
    patterns: &[(u64, f64)],
    active: &[bool],
    max_iterations: usize,
) -> usize {
    let comparisons = model.m.len();
    for iteration in 1..=max_iterations {
        let mut m_sum: Vec<Vec<f64>> = model.m.iter().map(|v| vec![0.0; v.len()]).collect();
        let mut matches = 0.0;
        let mut total = 0.0;
        let lambda = model.lambda.clamp(FLOOR, 1.0 - FLOOR);
        for &(pattern, count) in patterns {
            let mut pm = lambda;
            let mut pu = 1.0 - lambda;
            for c in (0..comparisons).filter(|&c| active[c]) {
                let l = level_of(pattern, c);
                if l > 0 {
                    pm *= model.m[c][l].max(FLOOR);
                    pu *= model.u[c][l].max(FLOOR);
                }
            }
            let posterior = pm / (pm + pu);
            let w = posterior * count;
            matches += w;
            total += count;
            for (c, sums) in m_sum.iter_mut().enumerate().filter(|(c, _)| active[*c]) {
                let l = level_of(pattern, c);
                if l > 0 {
                    sums[l] += w;
                }
            }
        }
        if total == 0.0 {
            return iteration;
        }
        let mut change: f64 = 0.0;
        for (c, sums) in m_sum.iter().enumerate().filter(|(c, _)| active[*c]) {
            let seen: f64 = sums.iter().sum();
            if seen <= 0.0 {
                continue;
            }
            for (l, &sum) in sums.iter().enumerate().skip(1) {
                let new = (sum / seen).max(FLOOR);
                change = change.max((new - model.m[c][l]).abs());
                model.m[c][l] = new;
            }
        }
        let new_lambda = (matches / total).clamp(FLOOR, 1.0 - FLOOR);
        change = change.max((new_lambda - model.lambda).abs());
        model.lambda = new_lambda;
        if change < 1e-5 {
            return iteration;
        }
    }
    max_iterations
}

/// Estimate λ alone, with m and u fixed.
pub fn estimate_lambda(model: &mut Model, patterns: &[(u64, f64)], max_iterations: usize) {
    let weights: Vec<(f64, f64)> = patterns
        .iter()
        .map(|&(p, n)| (model.pattern_weight(p).exp2(), n))
        .collect();
    for _ in 0..max_iterations {
        let lambda = model.lambda.clamp(FLOOR, 1.0 - FLOOR);
        let (mut matches, mut total) = (0.0, 0.0);
        for &(ratio, n) in &weights {
            let pm = lambda * ratio;
            matches += n * pm / (pm + 1.0 - lambda);
            total += n;
        }
        if total == 0.0 {
            return;
        }
        let new = (matches / total).clamp(FLOOR, 1.0 - FLOOR);
        let done = (new - model.lambda).abs() < 1e-7;
        model.lambda = new;
        if done {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_unpack() {
        let p = pack(&[0, 4, 2, 7]);
        assert_eq!(level_of(p, 0), 0);
        assert_eq!(level_of(p, 1), 4);
        assert_eq!(level_of(p, 2), 2);
        assert_eq!(level_of(p, 3), 7);
    }

    /// Generate pairs from a known model and check EM recovers m and λ.
    #[test]
    fn em_recovers_a_known_model() {
        // Two comparisons with three levels each (missing, different, exact).
        let true_m = [[0.0, 0.1, 0.9], [0.0, 0.2, 0.8]];
        let true_u = [[0.0, 0.95, 0.05], [0.0, 0.9, 0.1]];
        let lambda = 0.2;
        let n = 100_000.0;
        let mut patterns = Vec::new();
        for a in 1..3 {
            for b in 1..3 {
                let pm = true_m[0][a] * true_m[1][b];
                let pu = true_u[0][a] * true_u[1][b];
                patterns.push((
                    pack(&[a as u8, b as u8]),
                    n * (lambda * pm + (1.0 - lambda) * pu),
                ));
            }
        }
        let mut model = Model::initial(&[3, 3]);
        model.u = true_u.iter().map(|r| r.to_vec()).collect();
        expectation_maximisation(&mut model, &patterns, &[true, true], 500);
        assert!((model.lambda - lambda).abs() < 0.01, "λ {}", model.lambda);
        assert!((model.m[0][2] - 0.9).abs() < 0.02, "m {:?}", model.m);
        assert!((model.m[1][2] - 0.8).abs() < 0.02, "m {:?}", model.m);
        assert!(model.weight(0, 2) > 3.0 && model.weight(0, 1) < 0.0);
    }

    #[test]
    fn u_smoothing_keeps_unseen_levels_finite() {
        let mut model = Model::initial(&[3]);
        model.set_u_from_counts(&[vec![5, 1000, 0]]);
        assert!(model.u[0][2] > 0.0 && model.weight(0, 2).is_finite());
    }

    #[test]
    fn probability_grows_with_weight() {
        let model = Model::initial(&[3]);
        assert!(model.probability(10.0) > model.probability(0.0));
        assert!(model.probability(-40.0) < 1e-6);
    }
}
