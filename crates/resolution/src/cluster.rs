//! Clustering accepted pairs into entities: union-find with cannot-link constraints.
//!
//! Written here because the constraint is ours: a cluster may carry at most one value of a
//! "cannot-link" field (for people, a valid citizen id), so two records with different valid ids
//! never end up in one cluster, not even through a chain of records without one. Pairs are merged
//! strongest first, so when a record without an id resembles two people, it joins the one it
//! resembles most (when no row carries a cannot-link value, the order cannot matter and the
//! pairs are merged as given). The result depends only on the pairs and their weights, never on thread timing.

use rayon::slice::ParallelSliceMut;

/// Union-find over rows with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
    /// Per root: the cannot-link value its cluster carries, `u32::MAX` for none.
    tag: Vec<u32>,
    /// Per root: the smallest row in its cluster.
    smallest: Vec<u32>,
}

/// No cannot-link value.
pub const NO_TAG: u32 = u32::MAX;

impl UnionFind {
    /// `tags[i]` is row i's cannot-link value (`NO_TAG` for none).
    pub fn new(tags: Vec<u32>) -> UnionFind {
        let n = tags.len();
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
            tag: tags,
            smallest: (0..n as u32).collect(),
        }
    }

    /// Add a row of its own with cannot-link value `tag`; returns its index.
    pub fn push(&mut self, tag: u32) -> u32 {
        let row = self.parent.len() as u32;
        self.parent.push(row);
        self.size.push(1);
        self.tag.push(tag);
        self.smallest.push(row);
        row
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Room for `rows` more rows without reallocating.
    pub fn reserve(&mut self, rows: usize) {
        self.parent.reserve_exact(rows);
        self.size.reserve_exact(rows);
        self.tag.reserve_exact(rows);
        self.smallest.reserve_exact(rows);
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The cannot-link value of x's cluster (`NO_TAG` for none).
    pub fn tag(&mut self, x: u32) -> u32 {
        let r = self.find(x);
        self.tag[r as usize]
    }

    /// The smallest row of x's cluster: its label, independent of merge order.
    pub fn smallest(&mut self, x: u32) -> u32 {
        let r = self.find(x);
        self.smallest[r as usize]
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    /// Merge the clusters of a and b unless they carry different cannot-link values. Returns
    /// whether they are now one cluster.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        let (ta, tb) = (self.tag[ra as usize], self.tag[rb as usize]);
        if ta != NO_TAG && tb != NO_TAG && ta != tb {
            return false;
        }
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        if self.tag[big as usize] == NO_TAG {
            self.tag[big as usize] = self.tag[small as usize];
        }
        self.smallest[big as usize] =
            self.smallest[big as usize].min(self.smallest[small as usize]);
        true
    }

    /// Cluster id of every row: the smallest row index in its cluster, so the labels do not
    /// depend on merge order.
    pub fn labels(&mut self) -> Vec<u32> {
        (0..self.parent.len() as u32)
            .map(|i| self.smallest(i))
            .collect()
    }
}

/// A scored pair to merge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    pub a: u32,
    pub b: u32,
    /// The pair's match weight; `f32`, as the weights are computed, so that a link is 12 bytes
    /// (36 M of them at 3 M people).
    pub weight: f32,
}

/// Cluster `n` rows by merging `links` strongest first under the cannot-link tags. Returns the
/// labels and how many links a constraint refused.
pub fn cluster(tags: Vec<u32>, links: &mut [Link]) -> (Vec<u32>, u64) {
    // Without a cannot-link value anywhere nothing is refused, and the clusters are the
    // connected components whatever the order of merging; ordering is needed only otherwise.
    // Two links compare equal only when they are equal in every field (a must-link may repeat
    // a scored pair, with another weight), so an unstable sort gives one order every time.
    if tags.iter().any(|&t| t != NO_TAG) {
        links.par_sort_unstable_by(|x, y| {
            y.weight
                .total_cmp(&x.weight)
                .then(x.a.cmp(&y.a))
                .then(x.b.cmp(&y.b))
        });
    }
    let mut uf = UnionFind::new(tags);
    let mut refused = 0;
    for l in links.iter() {
        if !uf.union(l.a, l.b) {
            refused += 1;
        }
    }
    (uf.labels(), refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_merge_and_labels_are_smallest_rows() {
        let mut links = vec![
            Link {
                a: 3,
                b: 1,
                weight: 5.0,
            },
            Link {
                a: 1,
                b: 2,
                weight: 4.0,
            },
        ];
        let (labels, refused) = cluster(vec![NO_TAG; 5], &mut links);
        assert_eq!(labels, vec![0, 1, 1, 1, 4]);
        assert_eq!(refused, 0);
    }

    #[test]
    fn different_ids_never_merge_even_through_a_chain() {
        // 0 and 2 carry different ids; 1 has none and resembles both, 0 more strongly.
        let tags = vec![7, NO_TAG, 9];
        let mut links = vec![
            Link {
                a: 1,
                b: 2,
                weight: 3.0,
            },
            Link {
                a: 0,
                b: 1,
                weight: 8.0,
            },
        ];
        let (labels, refused) = cluster(tags, &mut links);
        assert_eq!(labels, vec![0, 0, 2]);
        assert_eq!(refused, 1);
    }

    /// Without cannot-link values the links are merged in the order given (no sorting): the
    /// clusters are the connected components whatever that order.
    #[test]
    fn without_tags_any_order_of_links_gives_the_components() {
        let mut links: Vec<Link> = (0..200u32)
            .map(|i| Link {
                a: (i * 37) % 150,
                b: (i * 53 + 11) % 150,
                weight: (i % 17) as f32,
            })
            .filter(|l| l.a != l.b)
            .collect();
        let (given, _) = cluster(vec![NO_TAG; 160], &mut links.clone());
        links.reverse();
        let (reversed, _) = cluster(vec![NO_TAG; 160], &mut links.clone());
        links.sort_by(|x, y| y.weight.total_cmp(&x.weight));
        let (strongest_first, refused) = cluster(vec![NO_TAG; 160], &mut links);
        assert_eq!(given, strongest_first);
        assert_eq!(reversed, strongest_first);
        assert_eq!(refused, 0);
        // Rows 150.. are in no link and stay alone.
        assert_eq!(given[155], 155);
    }
}
