//! Records to be linked, held column by column.
//!
//! A [`Table`] is what every resolution step reads: one row per record, one [`Column`] per field,
//! the empty string standing for a missing value. Values sit in one string arena per column with
//! an offset per row, because a million records of a dozen short fields would otherwise cost a
//! dozen million small allocations (three to four times the memory, and slower to scan). The table
//! knows nothing of files or of what the fields mean.

/// One field of every record: the values in one arena, row `i` at `data[ends[i-1]..ends[i]]`.
#[derive(Debug, Default, Clone)]
pub struct Column {
    data: String,
    ends: Vec<u32>,
}

impl Column {
    /// Append the next row's value ("" when missing). Values beyond 4 GiB in all are refused by
    /// returning `false`; the caller reports it.
    pub fn push(&mut self, value: &str) -> bool {
        let Ok(end) = u32::try_from(self.data.len() + value.len()) else {
            return false;
        };
        self.data.push_str(value);
        self.ends.push(end);
        true
    }

    /// The value of row `i`; "" when missing or out of range.
    pub fn get(&self, i: usize) -> &str {
        let Some(&end) = self.ends.get(i) else {
            return "";
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // The arena only ever receives whole `&str`s, so both offsets fall on char boundaries.
        self.data.get(start as usize..end as usize).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Room for `rows` more values without moving the arena: growing a vector of a hundred
    /// megabytes doubles it in one go, which stalls whoever appends the next row.
    pub fn reserve(&mut self, rows: usize) {
        let average = self.data.len() / self.ends.len().max(1);
        self.data.reserve_exact(rows * average.max(1));
        self.ends.reserve_exact(rows);
    }

    /// Append every value of `other`; `false` (and nothing appended) when the arena would pass
    /// 4 GiB.
    pub fn append(&mut self, other: &Column) -> bool {
        let base = self.data.len();
        if u32::try_from(base + other.data.len()).is_err() {
            return false;
        }
        self.data.push_str(&other.data);
        // Invariant: `base` fits in a u32, checked above with room for every offset after it.
        let base = base as u32;
        self.ends.extend(other.ends.iter().map(|e| base + e));
        true
    }

    /// Empty, keeping the memory it holds.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// A column of `len` values computed from this one (used for derived keys such as pinyin).
    pub fn map(&self, mut f: impl FnMut(&str) -> String) -> Column {
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

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Append a row; `values` follow `names`. Returns `false` (and appends nothing) when the
    /// table's arenas are full.
    pub fn push(&mut self, id: &str, values: &[&str]) -> bool {
        let fits = self.ids.data.len() + id.len() < u32::MAX as usize
            && self
                .columns
                .iter()
                .zip(values)
                .all(|(c, v)| c.data.len() + v.len() < u32::MAX as usize);
        if !fits {
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
        let more = |n: usize| (n as f64 * times * 1.05) as usize;
        self.ids.data.reserve(more(sample.ids.data.len()));
        self.ids.ends.reserve(more(sample.len()));
        for (c, s) in self.columns.iter_mut().zip(&sample.columns) {
            c.data.reserve(more(s.data.len()));
            c.ends.reserve(more(s.len()));
        }
    }

    /// Append every row of `other` (whose columns must be this table's, in order); `false` (and
    /// nothing appended) when an arena would pass 4 GiB.
    pub fn append(&mut self, other: &Table) -> bool {
        let fits = |a: &Column, b: &Column| u32::try_from(a.data.len() + b.data.len()).is_ok();
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
