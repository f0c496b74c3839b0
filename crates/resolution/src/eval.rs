//! Scoring clusters against a known truth.
//!
//! Pairwise scores count pairs of records: a predicted pair (two records in one cluster) is a
//! true positive when both records belong to the same true entity. Cluster scores count whole
//! clusters: a predicted cluster is right when it holds exactly one true entity's records, all of
//! them. Records without a truth label are left out of both. The worst false merges and splits are
//! ranked by the number of wrong or missed pairs they cause. Pure counting; where the truth comes
//! from is the caller's business.

use std::collections::HashMap;

/// Precision, recall and F1 with the counts behind them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Prf {
    pub true_positives: u64,
    pub predicted: u64,
    pub actual: u64,
}

impl Prf {
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 {
            1.0
        } else {
            self.true_positives as f64 / self.predicted as f64
        }
    }
    pub fn recall(&self) -> f64 {
        if self.actual == 0 {
            1.0
        } else {
            self.true_positives as f64 / self.actual as f64
        }
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// A predicted cluster holding records of several true entities.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub cluster: u32,
    /// (true entity, records) inside the cluster, largest first.
    pub parts: Vec<(u32, u64)>,
    pub wrong_pairs: u64,
}

/// A true entity spread over several predicted clusters.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub entity: u32,
    /// (predicted cluster, records), largest first.
    pub parts: Vec<(u32, u64)>,
    pub missed_pairs: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    pub records: u64,
    pub pairwise: Prf,
    pub clusters: Prf,
    pub merges: Vec<Merge>,
    pub splits: Vec<Split>,
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Score `predicted[i]` (cluster label) against `truth[i]` (entity label, `None` when unknown),
/// keeping the `worst` largest merges and splits.
pub fn score(predicted: &[u32], truth: &[Option<u32>], worst: usize) -> Scores {
    let mut cells: HashMap<(u32, u32), u64> = HashMap::new();
    let mut by_pred: HashMap<u32, u64> = HashMap::new();
    let mut by_true: HashMap<u32, u64> = HashMap::new();
    let mut records = 0;
    for (&p, t) in predicted.iter().zip(truth) {
        let Some(t) = *t else { continue };
        records += 1;
        *cells.entry((p, t)).or_default() += 1;
        *by_pred.entry(p).or_default() += 1;
        *by_true.entry(t).or_default() += 1;
    }
    let tp: u64 = cells.values().map(|&n| pairs(n)).sum();
    let pairwise = Prf {
        true_positives: tp,
        predicted: by_pred.values().map(|&n| pairs(n)).sum(),
        actual: by_true.values().map(|&n| pairs(n)).sum(),
    };
    let exact = cells
        .iter()
        .filter(|((p, t), n)| by_pred[p] == **n && by_true[t] == **n)
        .count();
    let clusters = Prf {
        true_positives: exact as u64,
        predicted: by_pred.len() as u64,
        actual: by_true.len() as u64,
    };

    let mut pred_parts: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    let mut true_parts: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    for (&(p, t), &n) in &cells {
        pred_parts.entry(p).or_default().push((t, n));
        true_parts.entry(t).or_default().push((p, n));
    }
    let sort_parts = |v: &mut Vec<(u32, u64)>| v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut merges: Vec<Merge> = pred_parts
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(cluster, mut parts)| {
            sort_parts(&mut parts);
            let inside: u64 = parts.iter().map(|&(_, n)| pairs(n)).sum();
            Merge {
                cluster,
                wrong_pairs: pairs(by_pred[&cluster]) - inside,
                parts,
            }
        })
        .collect();
    merges.sort_by(|a, b| {
        b.wrong_pairs
            .cmp(&a.wrong_pairs)
            .then(a.cluster.cmp(&b.cluster))
    });
    merges.truncate(worst);
    let mut splits: Vec<Split> = true_parts
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(entity, mut parts)| {
            sort_parts(&mut parts);
            let inside: u64 = parts.iter().map(|&(_, n)| pairs(n)).sum();
            Split {
                entity,
                missed_pairs: pairs(by_true[&entity]) - inside,
                parts,
            }
        })
        .collect();
    splits.sort_by(|a, b| {
        b.missed_pairs
            .cmp(&a.missed_pairs)
            .then(a.entity.cmp(&b.entity))
    });
    splits.truncate(worst);
    Scores {
        records,
        pairwise,
        clusters,
        merges,
        splits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_clustering_scores_one() {
        let s = score(&[0, 0, 2], &[Some(5), Some(5), Some(6)], 5);
        assert_eq!(s.pairwise.f1(), 1.0);
        assert_eq!(s.clusters.f1(), 1.0);
        assert!(s.merges.is_empty() && s.splits.is_empty());
    }

    #[test]
    fn merges_and_splits_are_counted() {
        // Truth: {0,1,2} and {3}. Predicted: {0,1} and {2,3}.
        let s = score(&[0, 0, 2, 2], &[Some(1), Some(1), Some(1), Some(2)], 5);
        assert_eq!(s.pairwise.true_positives, 1);
        assert_eq!(s.pairwise.predicted, 2);
        assert_eq!(s.pairwise.actual, 3);
        assert_eq!(s.clusters.true_positives, 0);
        assert_eq!(s.merges.len(), 1);
        assert_eq!(s.merges[0].wrong_pairs, 1);
        assert_eq!(s.splits[0].entity, 1);
        assert_eq!(s.splits[0].missed_pairs, 2);
    }

    #[test]
    fn unlabelled_records_are_ignored() {
        let s = score(&[0, 0, 0], &[Some(1), Some(1), None], 5);
        assert_eq!(s.records, 2);
        assert_eq!(s.pairwise.f1(), 1.0);
    }
}
