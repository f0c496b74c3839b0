//! Incremental resolution: one new row resolved against the rows a batch run has clustered.
//!
//! After a batch run records keep arriving, and re-running the whole chain for each would take
//! a minute at a million people. An [`Index`] instead holds every resolved row with its cluster,
//! every blocking rule's key → rows, the must-link and cannot-link values, term frequencies and
//! the model the batch run learned. A new row is blocked under the same rules, scored with the
//! same weights, linked at the same threshold and merged strongest first under the same
//! constraints as in the batch run — and is then added itself, so that the next row sees it.
//!
//! The model is not retrained here: weights learned from a million rows barely move with one
//! more, and retraining is what the next batch run is for. Nor does the index remember which
//! rows a batch run's oversized blocks skipped; a block that has grown past the limit is skipped
//! for new rows too. It does no I/O and knows nothing of what the columns mean.

use crate::blocking::row_key;
use crate::cluster::{NO_TAG, UnionFind};
use crate::linker::{Features, Settings, WeightTable, pattern};
use crate::model::Model;
use crate::table::Table;
use std::collections::HashMap;

/// The resolved rows and everything needed to resolve one more.
pub struct Index {
    settings: Settings,
    model: Model,
    weights: WeightTable,
    table: Table,
    features: Features,
    clusters: UnionFind,
    /// Per rule: key → rows with that key.
    blocks: Vec<HashMap<u64, Vec<u32>>>,
    /// Per must-link column: value → the first row with it.
    must: Vec<HashMap<String, u32>>,
    /// Cannot-link values, interned; the value of tag `t` is `tag_values[t]`.
    tags: HashMap<String, u32>,
    tag_values: Vec<String>,
    /// Per comparison with term frequencies: value → rows with it, and all non-empty values.
    tf: Vec<Option<(HashMap<String, u32>, u64)>>,
}

/// What resolving one row did.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The new row's index.
    pub row: u32,
    /// The clusters the row joined, by label (their smallest row) before it joined: none for
    /// a new entity, one for a new mention of a known one, several when the row bridges
    /// clusters that now merge.
    pub joined: Vec<u32>,
    /// The row's cluster label after joining.
    pub label: u32,
    /// Rows compared (candidates from every rule, without repeats).
    pub candidates: usize,
    /// Links refused because two different cannot-link values would have met.
    pub refused: usize,
    /// The strongest probabilistic link: (row, total weight), if any candidate was compared.
    pub best: Option<(u32, f64)>,
}

impl Index {
    /// An index of `table`'s rows, clustered as `labels` say (one label per row, rows with the
    /// same label in one cluster), under the settings and model of the run that clustered them.
    pub fn build(table: Table, labels: &[u32], settings: Settings, model: Model) -> Index {
        let mut features = Features::new(&table, &settings);
        if table.is_empty() {
            features.set_phonetic(
                settings
                    .comparisons
                    .iter()
                    .map(|c| c.kind.wants_phonetic_key())
                    .collect(),
            );
        }
        let weights = WeightTable::new(&model, &settings, &features);
        let mut index = Index {
            blocks: vec![HashMap::new(); settings.rules.len()],
            must: vec![HashMap::new(); settings.must_link.len()],
            tags: HashMap::new(),
            tag_values: Vec::new(),
            tf: settings
                .comparisons
                .iter()
                .map(|c| c.tf.then(|| (HashMap::new(), 0)))
                .collect(),
            clusters: UnionFind::new(Vec::new()),
            settings,
            model,
            weights,
            table,
            features,
        };
        let mut first_of_label: HashMap<u32, u32> = HashMap::new();
        for row in 0..index.table.len() {
            let tag = index.tag_of_row(row);
            let r = index.clusters.push(tag);
            index.remember(r);
            if let Some(&label) = labels.get(row) {
                let first = *first_of_label.entry(label).or_insert(r);
                // Rows the batch run put together stay together; the constraint held there.
                index.clusters.union(first, r);
            }
        }
        index
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Room for `rows` more rows: each of the index's arenas is allocated ahead rather than
    /// doubled when a new row finds it full, which at a million rows stalls that row for as
    /// long as copying the arena takes (seconds, measured).
    pub fn reserve(&mut self, rows: usize) {
        self.table.reserve(rows);
        self.features.reserve(rows);
        self.clusters.reserve(rows);
        // Hash maps double (and rehash every entry) when full, a stall as long as an arena's.
        for block in &mut self.blocks {
            block.reserve(rows);
        }
        for firsts in &mut self.must {
            firsts.reserve(rows);
        }
        self.tags.reserve(rows);
        self.tag_values.reserve_exact(rows);
        for (counts, _) in self.tf.iter_mut().flatten() {
            counts.reserve(rows);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The cluster label of a row: the smallest row of its cluster.
    pub fn label(&mut self, row: u32) -> u32 {
        self.clusters.smallest(row)
    }

    /// The cannot-link value a row's cluster carries, if any.
    pub fn cluster_tag(&mut self, row: u32) -> Option<&str> {
        let tag = self.clusters.tag(row);
        (tag != NO_TAG)
            .then(|| self.tag_values.get(tag as usize).map(String::as_str))
            .flatten()
    }

    fn tag_of_row(&mut self, row: usize) -> u32 {
        let Some(column) = self.settings.cannot_link else {
            return NO_TAG;
        };
        let value = self.table.columns[column].get(row);
        if value.is_empty() {
            return NO_TAG;
        }
        if let Some(&t) = self.tags.get(value) {
            return t;
        }
        let t = self.tag_values.len() as u32;
        self.tags.insert(value.to_string(), t);
        self.tag_values.push(value.to_string());
        t
    }

    /// Enter row r into the blocking, must-link and term-frequency indexes.
    fn remember(&mut self, r: u32) {
        let row = r as usize;
        for (rule, block) in self.settings.rules.iter().zip(&mut self.blocks) {
            let key = row_key(&self.table, rule, row);
            if key != 0 {
                block.entry(key).or_default().push(r);
            }
        }
        for (&column, firsts) in self.settings.must_link.iter().zip(&mut self.must) {
            let v = self.table.columns[column].get(row);
            if !v.is_empty() && !firsts.contains_key(v) {
                firsts.insert(v.to_string(), r);
            }
        }
        for (cmp, tf) in self.settings.comparisons.iter().zip(&mut self.tf) {
            if let Some((counts, total)) = tf {
                let v = self.table.columns[cmp.column].get(row);
                if !v.is_empty() {
                    *counts.entry(v.to_string()).or_default() += 1;
                    *total += 1;
                }
            }
        }
    }

    /// Resolve one new row (`values` in the table's column order) and add it to the index.
    pub fn resolve(&mut self, id: &str, values: &[&str]) -> Decision {
        let r = self.table.len() as u32;
        self.table.push(id, values);
        // The term frequency the batch run would give this value, counting this row too.
        let tf: Vec<f32> = self
            .settings
            .comparisons
            .iter()
            .zip(&self.tf)
            .map(|(cmp, tf)| match tf {
                Some((counts, total)) => {
                    let v = self.table.columns[cmp.column].get(r as usize);
                    if v.is_empty() {
                        0.0
                    } else {
                        let n = counts.get(v).copied().unwrap_or(0) + 1;
                        n as f32 / (*total + 1) as f32
                    }
                }
                None => 0.0,
            })
            .collect();
        let compared: Vec<&str> = self
            .settings
            .comparisons
            .iter()
            .map(|c| self.table.columns[c.column].get(r as usize))
            .collect();
        self.features.push_row(&compared, &tf);

        // Deterministic links first, with an infinite weight, as in the batch run.
        let mut links: Vec<(u32, f64)> = Vec::new();
        for (&column, firsts) in self.settings.must_link.iter().zip(&self.must) {
            let v = self.table.columns[column].get(r as usize);
            if let Some(&first) = firsts.get(v).filter(|_| !v.is_empty()) {
                links.push((first, f64::INFINITY));
            }
        }
        let mut candidates: Vec<u32> = Vec::new();
        for (rule, block) in self.settings.rules.iter().zip(&self.blocks) {
            let key = row_key(&self.table, rule, r as usize);
            if let Some(rows) = block.get(&key).filter(|_| key != 0) {
                // The batch run skips a block this large; so does a new row.
                if rows.len() < self.settings.max_block {
                    candidates.extend(rows);
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut best: Option<(u32, f64)> = None;
        for &c in &candidates {
            if !self.table.pairable(c as usize, r as usize) {
                continue;
            }
            let p = pattern(&self.settings, &self.features, c as usize, r as usize);
            let w = self.weights.weigh(&self.features, p, r as usize);
            if best.is_none_or(|(_, b)| w > b) {
                best = Some((c, w));
            }
            if self.model.probability(w) >= self.settings.threshold {
                links.push((c, w));
            }
        }
        // Strongest first, ties by row, exactly as the batch run orders its links.
        links.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));

        let tag = self.tag_of_row(r as usize);
        let pushed = self.clusters.push(tag);
        debug_assert_eq!(pushed, r);
        let mut joined: Vec<u32> = Vec::new();
        let mut refused = 0;
        for (other, _) in links {
            let label = self.clusters.smallest(other);
            let already = self.clusters.find(other) == self.clusters.find(r);
            if self.clusters.union(other, r) {
                if !already && !joined.contains(&label) {
                    joined.push(label);
                }
            } else {
                refused += 1;
            }
        }
        self.remember(r);
        Decision {
            row: r,
            label: self.clusters.smallest(r),
            joined,
            candidates: candidates.len(),
            refused,
            best,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interned::intern;
    use crate::linker;
    use crate::person::{Mention, settings, table};

    fn person(id: &str, name: &str, birth: &str, phone: &str) -> Mention {
        let valid = id.len() == 18;
        Mention {
            source: intern("s"),
            record_key: intern(&format!("{name}{birth}{phone}")),
            role: intern("subject"),
            valid_id: if valid {
                intern(id)
            } else {
                Default::default()
            },
            id_agrees: valid,
            id: intern(id),
            name: intern(name),
            birth_date: intern(birth),
            sex: intern("1"),
            phone: intern(phone),
            ..Mention::default()
        }
    }

    /// A small population: a few hundred people, each with a clean record carrying a valid
    /// id and a second record without an id and a variant name.
    fn population() -> Vec<Mention> {
        let surnames = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
        let given = [
            "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇",
        ];
        let mut out = Vec::new();
        for i in 0..300u32 {
            let name = format!(
                "{}{}{}",
                surnames[(i % 10) as usize],
                given[(i / 10 % 11) as usize],
                given[(i / 110 % 11) as usize]
            );
            let birth = format!("19{:02}-{:02}-{:02}", 50 + i % 40, 1 + i % 12, 1 + i % 28);
            let date = chrono::NaiveDate::parse_from_str(&birth, "%Y-%m-%d").unwrap();
            let id = tongban_standards::citizen_id::new_from_parts(
                "320524",
                date,
                (i % 500) as u16 * 2 + 1,
            )
            .unwrap()
            .as_str()
            .to_string();
            let phone = format!("139{:08}", 10_000_000 + i * 7919);
            out.push(person(&id, &name, &birth, &phone));
            out.push(person("", &name, &birth, &phone));
        }
        out
    }

    #[test]
    fn a_known_person_joins_and_a_stranger_starts_a_cluster() {
        let all = population();
        let t = table(&all);
        let s = settings();
        let outcome = linker::run(&t, &s, &mut |_| {}).unwrap();
        let mut index = Index::build(t, &outcome.labels, s, outcome.model.clone());
        let known = &all[10];
        let row = table(std::slice::from_ref(known));
        let values: Vec<&str> = row.columns.iter().map(|c| c.get(0)).collect();
        let d = index.resolve("new-1", &values);
        assert_eq!(d.joined, vec![outcome.labels[10]]);
        assert_eq!(d.label, outcome.labels[10]);

        let stranger = person("", "欧阳娜娜", "2001-02-03", "13700000000");
        let row = table(std::slice::from_ref(&stranger));
        let values: Vec<&str> = row.columns.iter().map(|c| c.get(0)).collect();
        let d = index.resolve("new-2", &values);
        assert!(d.joined.is_empty());
        assert_eq!(d.label, d.row);
    }

    /// The linker hands back its table's text before training (`tongban link` does); nothing
    /// from training on may read it, so the outcome is `run`'s: the population gets a record
    /// sharing person 0's valid id and nothing else (joined by the must-link alone, which is
    /// made from the values before they go) and one like person 1 but for another valid id
    /// (kept apart).
    #[test]
    fn the_linker_releasing_its_columns_gives_the_same_outcome() {
        let mut all = population();
        let (zero, one) = (all[0].clone(), all[2].clone());
        all.push(person(
            zero.valid_id.as_str(),
            "欧阳娜娜",
            "2001-02-03",
            "13700000000",
        ));
        let other_id = tongban_standards::citizen_id::new_from_parts(
            "320524",
            chrono::NaiveDate::from_ymd_opt(1951, 2, 2).unwrap(),
            999,
        )
        .unwrap();
        all.push(person(
            other_id.as_str(),
            one.name.as_str(),
            one.birth_date.as_str(),
            one.phone.as_str(),
        ));
        let s = settings();
        let kept = table(&all);
        let whole = linker::run(&kept, &s, &mut |_| {}).unwrap();
        let mut released = kept.clone();
        let mut stages = Vec::new();
        let outcome =
            linker::run_releasing_columns(&mut released, &s, &mut |st| stages.push(st)).unwrap();
        assert_eq!(outcome.labels, whole.labels);
        assert_eq!(outcome.pairs, whole.pairs);
        assert_eq!(outcome.weights, whole.weights);
        assert_eq!(outcome.stats.linked_pairs, whole.stats.linked_pairs);
        assert_eq!(outcome.stats.clusters, whole.stats.clusters);
        assert_eq!(
            outcome.stats.refused_by_constraint,
            whole.stats.refused_by_constraint
        );
        assert!(whole.stats.linked_pairs > 0);
        let n = all.len();
        assert_eq!(
            whole.labels[n - 2],
            whole.labels[0],
            "joined by the must-link"
        );
        assert_ne!(
            whole.labels[n - 1],
            whole.labels[2],
            "kept apart by the cannot-link"
        );
        assert_eq!(stages.len(), 6);
        assert!(released.columns.iter().all(|c| c.is_empty()));
        assert_eq!(released.len(), kept.len());
        assert_eq!(released.ids.get(7), kept.ids.get(7));
    }

    #[test]
    fn incremental_gives_the_batch_clusters() {
        let all = population();
        let s = settings();
        let whole = linker::run(&table(&all), &s, &mut |_| {}).unwrap();
        // The first two thirds clustered in a batch, the rest resolved one at a time.
        let cut = all.len() * 2 / 3;
        let first = table(&all[..cut]);
        let batch = linker::run(&first, &s, &mut |_| {}).unwrap();
        let mut index = Index::build(first, &batch.labels, s, whole.model.clone());
        let rest = table(&all[cut..]);
        for i in 0..rest.len() {
            let values: Vec<&str> = rest.columns.iter().map(|c| c.get(i)).collect();
            index.resolve(&format!("r{i}"), &values);
        }
        let incremental: Vec<u32> = (0..all.len() as u32).map(|r| index.label(r)).collect();
        assert_eq!(incremental, whole.labels);
    }

    #[test]
    fn two_valid_ids_never_merge_through_a_new_row() {
        let all = population();
        let t = table(&all);
        let s = settings();
        let outcome = linker::run(&t, &s, &mut |_| {}).unwrap();
        let mut index = Index::build(t, &outcome.labels, s, outcome.model.clone());
        // A record with the name, birth date and phone of person 0 but the valid id of
        // person 1 may join one of them, never both.
        let mut bridge = all[0].clone();
        bridge.valid_id = all[2].valid_id;
        bridge.id = all[2].id;
        bridge.id_agrees = false;
        let row = table(std::slice::from_ref(&bridge));
        let values: Vec<&str> = row.columns.iter().map(|c| c.get(0)).collect();
        let d = index.resolve("bridge", &values);
        assert!(d.joined.len() <= 1);
        assert_ne!(index.label(0), index.label(2));
    }
}
