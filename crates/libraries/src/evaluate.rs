//! Scoring the store's libraries against the synthetic city's truth (`truth/records.csv`).
//!
//! The truth maps every (source file, record key, role) to the true thing behind it. Each
//! linked mention is looked up there; mentions the truth does not know are left out. Scores are
//! pairwise and cluster precision, recall and F1 overall and per source (pairs with at least one
//! mention from that source), and the worst false merges and splits.

use crate::{LibraryError, Result};
use std::collections::HashMap;
use std::path::Path;
use tongban_resolution::eval::{Prf, Scores, score};
use tongban_store::Store;

/// Per-source pairwise scores: pairs with at least one mention from the source.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceScore {
    pub source: String,
    pub mentions: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub kind: String,
    pub mentions: u64,
    pub unknown_to_truth: u64,
    pub scores: Scores,
    pub by_source: Vec<SourceScore>,
    /// Example mentions (source, key, role) of the worst merges and splits, for display.
    pub examples: HashMap<u32, Vec<(String, String, String)>>,
    pub true_names: Vec<String>,
    pub cluster_names: Vec<String>,
}

/// The truth of one kind: (source id, record key, role) → true key. Source files are named by
/// their source id plus an extension (`police_household.csv`).
pub fn read_truth(
    dir: &Path,
    wanted_prefix: &str,
) -> Result<HashMap<(String, String, String), String>> {
    let path = dir.join("records.csv");
    let file = path.display().to_string();
    let mut reader = csv::Reader::from_path(&path).map_err(|e| LibraryError::Truth {
        file: file.clone(),
        message: e.to_string(),
    })?;
    let mut out = HashMap::new();
    for row in reader.records() {
        let row = row.map_err(|e| LibraryError::Truth {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let (Some(source), Some(key), Some(role), Some(truth)) =
            (row.get(0), row.get(1), row.get(2), row.get(3))
        else {
            continue;
        };
        if !truth.starts_with(wanted_prefix) {
            continue;
        }
        let source = source.rsplit_once('.').map_or(source, |(stem, _)| stem);
        out.insert(
            (source.to_string(), key.to_string(), role.to_string()),
            truth.to_string(),
        );
    }
    Ok(out)
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Pairs with at least one member from the source, in a group of `n` with `k` from it.
fn touching(n: u64, k: u64) -> u64 {
    pairs(n) - pairs(n - k)
}

/// Score the latest run of `kind` against the truth (true keys starting with `prefix`: "P" for
/// people).
pub async fn evaluate(
    store: &dyn Store,
    kind: &str,
    truth_dir: &Path,
    prefix: &str,
) -> Result<Report> {
    let truth = read_truth(truth_dir, prefix)?;
    let mut predicted_ids: HashMap<String, u32> = HashMap::new();
    let mut true_ids: HashMap<String, u32> = HashMap::new();
    let mut predicted = Vec::new();
    let mut labels = Vec::new();
    let mut sources: Vec<u16> = Vec::new();
    let mut source_names: Vec<String> = Vec::new();
    let mut mentions: Vec<(String, String, String)> = Vec::new();
    let mut unknown = 0u64;
    let mut pages = tongban_store::LinkPages::new(kind, 50_000);
    while let Some(page) = pages.next(store).await? {
        for l in &page {
            let id = (l.source_id.clone(), l.record_key.clone(), l.role.clone());
            let Some(t) = truth.get(&id) else {
                unknown += 1;
                continue;
            };
            let next = predicted_ids.len() as u32;
            predicted.push(*predicted_ids.entry(l.entity_key.clone()).or_insert(next));
            let next = true_ids.len() as u32;
            labels.push(Some(*true_ids.entry(t.clone()).or_insert(next)));
            let s = match source_names.iter().position(|n| *n == l.source_id) {
                Some(i) => i,
                None => {
                    source_names.push(l.source_id.clone());
                    source_names.len() - 1
                }
            };
            sources.push(s as u16);
            mentions.push(id);
        }
    }
    let scores = score(&predicted, &labels, 10);
    let by_source = per_source(&predicted, &labels, &sources, &source_names);
    // A few mentions of each listed merge and split, to show what went wrong.
    let mut examples: HashMap<u32, Vec<(String, String, String)>> = HashMap::new();
    for m in &scores.merges {
        examples.insert(m.cluster, Vec::new());
    }
    for (i, &p) in predicted.iter().enumerate() {
        if let Some(v) = examples.get_mut(&p)
            && v.len() < 6
        {
            v.push(mentions[i].clone());
        }
    }
    let mut true_names = vec![String::new(); true_ids.len()];
    for (k, v) in true_ids {
        true_names[v as usize] = k;
    }
    let mut cluster_names = vec![String::new(); predicted_ids.len()];
    for (k, v) in predicted_ids {
        cluster_names[v as usize] = k;
    }
    Ok(Report {
        kind: kind.to_string(),
        mentions: predicted.len() as u64,
        unknown_to_truth: unknown,
        scores,
        by_source,
        examples,
        true_names,
        cluster_names,
    })
}

fn per_source(
    predicted: &[u32],
    truth: &[Option<u32>],
    sources: &[u16],
    names: &[String],
) -> Vec<SourceScore> {
    // Per (group, source): total size and size from the source.
    let mut cell: HashMap<(u32, u32), u64> = HashMap::new();
    let mut cell_src: HashMap<(u32, u32, u16), u64> = HashMap::new();
    let mut pred: HashMap<u32, u64> = HashMap::new();
    let mut pred_src: HashMap<(u32, u16), u64> = HashMap::new();
    let mut tru: HashMap<u32, u64> = HashMap::new();
    let mut tru_src: HashMap<(u32, u16), u64> = HashMap::new();
    let mut count = vec![0u64; names.len()];
    for ((&p, t), &s) in predicted.iter().zip(truth).zip(sources) {
        let Some(t) = *t else { continue };
        *cell.entry((p, t)).or_default() += 1;
        *cell_src.entry((p, t, s)).or_default() += 1;
        *pred.entry(p).or_default() += 1;
        *pred_src.entry((p, s)).or_default() += 1;
        *tru.entry(t).or_default() += 1;
        *tru_src.entry((t, s)).or_default() += 1;
        count[s as usize] += 1;
    }
    let mut out: Vec<SourceScore> = Vec::new();
    for (s, name) in names.iter().enumerate() {
        let s = s as u16;
        let mut prf = Prf::default();
        for (&(p, t, src), &k) in &cell_src {
            if src == s {
                prf.true_positives += touching(cell[&(p, t)], k);
            }
        }
        for (&(p, src), &k) in &pred_src {
            if src == s {
                prf.predicted += touching(pred[&p], k);
            }
        }
        for (&(t, src), &k) in &tru_src {
            if src == s {
                prf.actual += touching(tru[&t], k);
            }
        }
        out.push(SourceScore {
            source: name.clone(),
            mentions: count[s as usize],
            precision: prf.precision(),
            recall: prf.recall(),
            f1: prf.f1(),
        });
    }
    out.sort_by(|a, b| a.source.cmp(&b.source));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_counts_pairs_touching_the_source() {
        // Truth: one person with mentions from sources 0, 0, 1. Predicted: {0,1} and {2}.
        let s = per_source(
            &[0, 0, 2],
            &[Some(0), Some(0), Some(0)],
            &[0, 0, 1],
            &["a".into(), "b".into()],
        );
        // Source a: true pairs touching a = 3, predicted touching a = 1, correct = 1.
        assert_eq!((s[0].precision, s[0].recall), (1.0, 1.0 / 3.0));
        // Source b: true pairs touching b = 2, predicted = 0.
        assert_eq!(s[1].recall, 0.0);
    }
}
