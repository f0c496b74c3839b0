//! Scoring clusters against a known truth.
//!
//! Pairwise scores count pairs of records: a predicted pair (two records in one cluster) is a
//! true positive when both records belong to the same true entity. Cluster scores count whole
//! clusters: a predicted cluster is right when it holds exactly one true entity's records, all of
//! them. Records without a truth label are left out of both. The worst false merges and splits are
//! ranked by the number of wrong or missed pairs they cause. Pure counting; where the truth comes
//! from is the caller's business.

use rayon::slice::ParallelSliceMut;

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
    // Counted by sorting rather than in hash maps: at a million records the maps (a cell per
    // cluster and entity, a vector of parts for every cluster and every entity) took about
    // 100 MB and set `tongban link`'s peak; sorted runs take a tenth of that.
    let mut labelled: Vec<(u32, u32)> = predicted
        .iter()
        .zip(truth)
        .filter_map(|(&p, t)| t.map(|t| (p, t)))
        .collect();
    let records = labelled.len() as u64;
    // On every core: the scoring otherwise ran alone after a run that had used them all.
    labelled.par_sort_unstable();
    // Cells: (predicted cluster, true entity, records), in cluster order.
    let cells: Vec<(u32, u32, u64)> = labelled
        .chunk_by(|x, y| x == y)
        .map(|run| (run[0].0, run[0].1, run.len() as u64))
        .collect();
    drop(labelled);
    let tp: u64 = cells.iter().map(|c| pairs(c.2)).sum();
    let by_pred: Vec<&[(u32, u32, u64)]> = cells.chunk_by(|x, y| x.0 == y.0).collect();
    let mut by_entity: Vec<(u32, u32, u64)> = cells.clone();
    by_entity.par_sort_unstable_by_key(|c| (c.1, c.0));
    let by_true: Vec<&[(u32, u32, u64)]> = by_entity.chunk_by(|x, y| x.1 == y.1).collect();
    let total = |group: &[(u32, u32, u64)]| group.iter().map(|c| c.2).sum::<u64>();
    let pairwise = Prf {
        true_positives: tp,
        predicted: by_pred.iter().map(|g| pairs(total(g))).sum(),
        actual: by_true.iter().map(|g| pairs(total(g))).sum(),
    };
    // A cluster is exactly right when it is one entity's only cell and the entity its only one.
    let exact = by_true
        .iter()
        .filter(|g| g.len() == 1)
        .filter(|g| {
            let cluster = g[0].0;
            by_pred
                .binary_search_by_key(&cluster, |p| p[0].0)
                .is_ok_and(|i| by_pred[i].len() == 1)
        })
        .count();
    let clusters = Prf {
        true_positives: exact as u64,
        predicted: by_pred.len() as u64,
        actual: by_true.len() as u64,
    };

    let sort_parts = |v: &mut Vec<(u32, u64)>| v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut merges: Vec<Merge> = by_pred
        .iter()
        .filter(|g| g.len() > 1)
        .map(|g| {
            let mut parts: Vec<(u32, u64)> = g.iter().map(|c| (c.1, c.2)).collect();
            sort_parts(&mut parts);
            let inside: u64 = parts.iter().map(|&(_, n)| pairs(n)).sum();
            Merge {
                cluster: g[0].0,
                wrong_pairs: pairs(total(g)) - inside,
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
    let mut splits: Vec<Split> = by_true
        .iter()
        .filter(|g| g.len() > 1)
        .map(|g| {
            let mut parts: Vec<(u32, u64)> = g.iter().map(|c| (c.0, c.2)).collect();
            sort_parts(&mut parts);
            let inside: u64 = parts.iter().map(|&(_, n)| pairs(n)).sum();
            Split {
                entity: g[0].1,
                missed_pairs: pairs(total(g)) - inside,
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

    /// The counting as it was first written, with hash maps: the sorted runs must agree with it.
    fn score_by_maps(predicted: &[u32], truth: &[Option<u32>], worst: usize) -> Scores {
        let mut cells: std::collections::HashMap<(u32, u32), u64> =
            std::collections::HashMap::new();
        let mut by_pred: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
        let mut by_true: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
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

        let mut pred_parts: std::collections::HashMap<u32, Vec<(u32, u64)>> =
            std::collections::HashMap::new();
        let mut true_parts: std::collections::HashMap<u32, Vec<(u32, u64)>> =
            std::collections::HashMap::new();
        for (&(p, t), &n) in &cells {
            pred_parts.entry(p).or_default().push((t, n));
            true_parts.entry(t).or_default().push((p, n));
        }
        let sort_parts =
            |v: &mut Vec<(u32, u64)>| v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
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

    proptest::proptest! {
        #[test]
        fn sorted_runs_count_as_the_maps_do(
            rows in proptest::collection::vec((0u32..12, proptest::option::of(0u32..8)), 0..60)
        ) {
            // Cluster labels are row indices of the cluster's first record, as the linker's are.
            let predicted: Vec<u32> = rows.iter().map(|r| r.0 * 3).collect();
            let truth: Vec<Option<u32>> = rows.iter().map(|r| r.1).collect();
            proptest::prop_assert_eq!(
                score(&predicted, &truth, 3),
                score_by_maps(&predicted, &truth, 3)
            );
        }
    }
}
