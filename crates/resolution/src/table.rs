//! Records to be linked, held column by column.
//!
//! A [`Table`] is what every resolution step reads: one row per record, one [`Column`] per field,
//! the empty string standing for a missing value. Values sit in one string arena per column with
//! an offset per row, because a million records of a dozen short fields would otherwise cost a
//! dozen million small allocations (three to four times the memory, and slower to scan), or, where
//! the caller's values are interned already, one [`Text`] per row. The table knows nothing of
//! files or of what the fields mean.

use crate::interned::{Text, intern};

/// One field of every record: either the values in one arena, row `i` at
/// `data[ends[i-1]..ends[i]]`, or each row's [`Text`] when the values are interned already.
///
/// The interned form is for callers whose records hold interned values (the base libraries'
/// mentions): copying them into arenas took some 130 bytes a person mention (eight columns of
/// ids, names, dates, phones and address keys) where a `Text` takes 4, about 1.5 GiB at 3 M
/// people, all of it held at the person linking's peak.
#[derive(Debug, Clone)]
pub enum Column {
    Arena { data: String, ends: Vec<u32> },
    Interned(Vec<Text>),
}

impl Default for Column {
    fn default() -> Column {
        Column::Arena {
            data: String::new(),
            ends: Vec::new(),
        }
    }
}

impl Column {
    /// An empty column of interned values.
    pub fn interned() -> Column {
        Column::Interned(Vec::new())
    }

    /// Whether `more` bytes of text would still fit (an arena holds at most 4 GiB).
    fn fits(&self, more: usize) -> bool {
        match self {
            Column::Arena { data, .. } => data.len() + more < u32::MAX as usize,
            Column::Interned(_) => true,
        }
    }

    /// Append the next row's value ("" when missing). Values beyond 4 GiB in all are refused by
    /// returning `false`; the caller reports it.
    pub fn push(&mut self, value: &str) -> bool {
        match self {
            Column::Arena { data, ends } => {
                let Ok(end) = u32::try_from(data.len() + value.len()) else {
                    return false;
                };
                data.push_str(value);
                ends.push(end);
            }
            Column::Interned(texts) => texts.push(intern(value)),
        }
        true
    }

    /// Append the next row's interned value, copying its text into an arena column.
    pub fn push_text(&mut self, value: Text) -> bool {
        match self {
            Column::Interned(texts) => {
                texts.push(value);
                true
            }
            Column::Arena { .. } => self.push(value.as_str()),
        }
    }

    /// The value of row `i`; "" when missing or out of range.
    pub fn get(&self, i: usize) -> &str {
        match self {
            Column::Arena { data, ends } => {
                let Some(&end) = ends.get(i) else {
                    return "";
                };
                let start = if i == 0 { 0 } else { ends[i - 1] };
                // The arena only ever receives whole `&str`s, so both offsets fall on char
                // boundaries.
                data.get(start as usize..end as usize).unwrap_or("")
            }
            Column::Interned(texts) => texts.get(i).map_or("", |t| t.as_str()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Arena { ends, .. } => ends.len(),
            Column::Interned(texts) => texts.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for `rows` more values without moving the arena: growing a vector of a hundred
    /// megabytes doubles it in one go, which stalls whoever appends the next row.
    pub fn reserve(&mut self, rows: usize) {
        match self {
            Column::Arena { data, ends } => {
                let average = data.len() / ends.len().max(1);
                data.reserve_exact(rows * average.max(1));
                ends.reserve_exact(rows);
            }
            Column::Interned(texts) => texts.reserve_exact(rows),
        }
    }

    /// Room for `times` times the rows and text of `sample` (at least).
    fn reserve_like(&mut self, sample: &Column, times: f64) {
        let more = |n: usize| (n as f64 * times * 1.05) as usize;
        match (self, sample) {
            (Column::Arena { data, ends }, Column::Arena { data: d, ends: e }) => {
                data.reserve(more(d.len()));
                ends.reserve(more(e.len()));
            }
            (column, sample) => column.reserve(more(sample.len())),
        }
    }

    /// Append every value of `other`; `false` (and nothing appended) when the arena would pass
    /// 4 GiB.
    pub fn append(&mut self, other: &Column) -> bool {
        match (self, other) {
            (Column::Arena { data, ends }, Column::Arena { data: d, ends: e }) => {
                let base = data.len();
                if u32::try_from(base + d.len()).is_err() {
                    return false;
                }
                data.push_str(d);
                // Invariant: `base` fits in a u32, checked above with room for every offset
                // after it.
                let base = base as u32;
                ends.extend(e.iter().map(|e| base + e));
                true
            }
            (Column::Interned(texts), Column::Interned(t)) => {
                texts.extend_from_slice(t);
                true
            }
            (column, other) => {
                let bytes: usize = (0..other.len()).map(|i| other.get(i).len()).sum();
                if !column.fits(bytes) {
                    return false;
                }
                (0..other.len()).all(|i| column.push(other.get(i)))
            }
        }
    }

    /// Empty, keeping the memory it holds.
    pub fn clear(&mut self) {
        match self {
            Column::Arena { data, ends } => {
                data.clear();
                ends.clear();
            }
            Column::Interned(texts) => texts.clear(),
        }
    }

    /// A column of `len` values computed from this one (used for derived keys such as pinyin).
    /// `f` must be a function of the value alone: over interned values it is called once per
    /// distinct value (a city's 15 M person mentions carry some 2 M distinct names), and the
    /// result is interned too.
    pub fn map(&self, mut f: impl FnMut(&str) -> String) -> Column {
        if let Column::Interned(texts) = self {
            let mut seen =
                std::collections::HashMap::with_hasher(foldhash::fast::FixedState::default());
            let mapped = texts
                .iter()
                .map(|&t| {
                    *seen
                        .entry(t.number())
                        .or_insert_with(|| intern(&f(t.as_str())))
                })
                .collect();
            return Column::Interned(mapped);
        }
        let mut out = Column::default();
        for i in 0..self.len() {
            let v = f(self.get(i));
            if !out.push(&v) {
                out.push("");
            }
        }
        out
    }
}

/// Records to link: ids, named columns and, when linking two inputs, where the second begins.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub ids: Column,
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    /// Rows `0..split` come from the first input and `split..` from the second; `None` when
    /// deduplicating one input.
    pub split: Option<usize>,
}

impl Table {
    pub fn new(names: Vec<String>) -> Table {
        let columns = names.iter().map(|_| Column::default()).collect();
        Table {
            ids: Column::default(),
            names,
            columns,
            split: None,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Room for `rows` more rows (see [`Column::reserve`]).
    pub fn reserve(&mut self, rows: usize) {
        self.ids.reserve(rows);
        for c in &mut self.columns {
            c.reserve(rows);
        }
    }

    /// A table whose columns hold interned values (see [`Column::Interned`]).
    pub fn new_interned(names: Vec<String>) -> Table {
        let mut table = Table::new(names);
        for c in &mut table.columns {
            *c = Column::interned();
        }
        table
    }

    /// Whether a row of `id` and values of these lengths fits every arena.
    fn row_fits(&self, id: &str, lengths: impl Iterator<Item = usize>) -> bool {
        self.ids.fits(id.len()) && self.columns.iter().zip(lengths).all(|(c, n)| c.fits(n))
    }

    /// Append a row of interned values; `values` follow `names`.
    pub fn push_texts(&mut self, id: &str, values: &[Text]) -> bool {
        if !self.row_fits(id, values.iter().map(|v| v.len())) {
            return false;
        }
        self.ids.push(id);
        for (i, column) in self.columns.iter_mut().enumerate() {
            column.push_text(values.get(i).copied().unwrap_or_default());
        }
        true
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Append a row; `values` follow `names`. Returns `false` (and appends nothing) when the
    /// table's arenas are full.
    pub fn push(&mut self, id: &str, values: &[&str]) -> bool {
        if !self.row_fits(id, values.iter().map(|v| v.len())) {
            return false;
        }
        self.ids.push(id);
        for (i, column) in self.columns.iter_mut().enumerate() {
            column.push(values.get(i).copied().unwrap_or(""));
        }
        true
    }

    /// Empty, keeping the memory it holds (and the split, which only a caller that knows the
    /// inputs can change).
    pub fn clear(&mut self) {
        self.ids.clear();
        for c in &mut self.columns {
            c.clear();
        }
    }

    /// Room for `times` times the rows and text of `sample` (at least), so that appending that
    /// much copies nothing: used when a file is read in pieces and its first piece is a sample
    /// of the rest.
    pub fn reserve_like(&mut self, sample: &Table, times: f64) {
        self.ids.reserve_like(&sample.ids, times);
        for (c, s) in self.columns.iter_mut().zip(&sample.columns) {
            c.reserve_like(s, times);
        }
    }

    /// Append every row of `other` (whose columns must be this table's, in order); `false` (and
    /// nothing appended) when an arena would pass 4 GiB.
    pub fn append(&mut self, other: &Table) -> bool {
        let bytes = |c: &Column| match c {
            Column::Arena { data, .. } => data.len(),
            Column::Interned(_) => 0,
        };
        let fits = |a: &Column, b: &Column| a.fits(bytes(b));
        if !fits(&self.ids, &other.ids)
            || !self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|(a, b)| fits(a, b))
        {
            return false;
        }
        self.ids.append(&other.ids);
        for (column, more) in self.columns.iter_mut().zip(&other.columns) {
            column.append(more);
        }
        true
    }

    /// Whether rows `a` and `b` may form a pair (see [`Shape::pairable`]).
    pub fn pairable(&self, a: usize, b: usize) -> bool {
        self.shape().pairable(a, b)
    }

    /// How many rows the table has and which of them may pair.
    pub fn shape(&self) -> Shape {
        Shape {
            len: self.len(),
            split: self.split,
        }
    }

    /// Hand back the memory of every column's text, keeping the ids, the names and the split:
    /// for a caller done with the values once a run has read its features and keys from them
    /// (at a million FEBRL-style records, about a third of `tongban link`'s peak). The columns
    /// are empty afterwards, so that a late reader gets no row rather than a stale one.
    pub fn release_columns(&mut self) {
        for c in &mut self.columns {
            *c = Column::default();
        }
    }
}

/// What a linking run needs of its table once the features and keys are made: the number of
/// rows and which of them may pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub len: usize,
    /// Rows `0..split` come from the first input (see [`Table::split`]).
    pub split: Option<usize>,
}

impl Shape {
    /// Whether rows `a` and `b` may form a pair: any two rows when deduplicating, one from each
    /// input when linking.
    pub fn pairable(&self, a: usize, b: usize) -> bool {
        match self.split {
            None => a != b,
            Some(s) => (a < s) != (b < s),
        }
    }

    /// All the pairs the rows could form: n(n−1)/2 when deduplicating, |A|·|B| when linking.
    pub fn possible_pairs(&self) -> f64 {
        let n = self.len as f64;
        match self.split {
            Some(s) => s as f64 * (n - s as f64),
            None => n * (n - 1.0) / 2.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_return_what_was_pushed() {
        let mut t = Table::new(vec!["name".into(), "dob".into()]);
        assert!(t.push("r1", &["张三", "19900101"]));
        assert!(t.push("r2", &["", "19900102"]));
        assert_eq!(t.len(), 2);
        assert_eq!(t.columns[0].get(0), "张三");
        assert_eq!(t.columns[0].get(1), "");
        assert_eq!(t.columns[1].get(1), "19900102");
        assert_eq!(t.ids.get(1), "r2");
        assert_eq!(t.columns[1].get(7), "");
    }

    #[test]
    fn interned_columns_read_as_arenas_do_and_mix_with_them() {
        let mut t = Table::new_interned(vec!["name".into(), "dob".into()]);
        assert!(t.push_texts("r1", &[intern("张三"), intern("19900101")]));
        assert!(t.push("r2", &["", "19900102"]));
        assert_eq!(t.columns[0].get(0), "张三");
        assert_eq!(t.columns[0].get(1), "");
        assert_eq!(t.columns[1].get(1), "19900102");
        assert_eq!(t.columns[1].get(2), "");
        let mut arena = Table::new(vec!["name".into(), "dob".into()]);
        assert!(arena.push("r0", &["李四", "19800101"]));
        assert!(arena.append(&t));
        assert!(t.append(&arena));
        assert_eq!(arena.len(), 3);
        assert_eq!(arena.columns[0].get(1), "张三");
        assert_eq!(t.len(), 5);
        assert_eq!(t.columns[1].get(2), "19800101");
        assert_eq!(t.columns[0].get(3), "张三");
        assert!(matches!(t.columns[0], Column::Interned(_)));
        let mut calls = 0;
        let upper = t.columns[1].map(|v| {
            calls += 1;
            format!("<{v}>")
        });
        assert_eq!(calls, 3, "once per distinct value");
        assert_eq!(upper.len(), 5);
        assert_eq!(upper.get(0), "<19900101>");
        assert_eq!(upper.get(2), "<19800101>");
        assert_eq!(upper.get(4), "<19900102>");
    }

    #[test]
    fn link_mode_pairs_only_across_inputs() {
        let mut t = Table::new(vec!["x".into()]);
        for i in 0..4 {
            t.push(&i.to_string(), &["a"]);
        }
        t.split = Some(2);
        assert!(t.pairable(0, 2));
        assert!(!t.pairable(0, 1));
        assert!(!t.pairable(2, 3));
        assert_eq!(t.shape().possible_pairs(), 4.0);
    }

    #[test]
    fn released_columns_keep_ids_and_split_but_no_values() {
        let mut t = Table::new(vec!["name".into()]);
        t.push("r1", &["张三"]);
        t.push("r2", &["李四"]);
        t.split = Some(1);
        t.release_columns();
        assert_eq!(t.len(), 2);
        assert_eq!(t.ids.get(1), "r2");
        assert_eq!(
            t.shape(),
            Shape {
                len: 2,
                split: Some(1)
            }
        );
        assert_eq!(t.columns.len(), 1);
        assert!(t.columns[0].is_empty());
        assert_eq!(t.columns[0].get(0), "");
    }
}
