//! Entity resolution: which records are about the same person, entity or place.
//!
//! The crate is layered from pure arithmetic up: [`compare`] turns two values into a comparison
//! level, [`model`] holds the Fellegi–Sunter weights and learns them without labels, [`blocking`]
//! picks the pairs worth comparing, [`cluster`] merges linked pairs by union-find under
//! cannot-link constraints, [`linker`] runs the whole chain on a [`table::Table`], and [`eval`]
//! scores clusters against a truth. [`link`] reads CSV files and a TOML configuration for
//! `tongban link`. None of it touches the store or knows which department a record came from.

pub mod blocking;
pub mod cluster;
pub mod compare;
pub mod config;
pub mod entity;
pub mod eval;
pub mod fields;
pub mod golden;
pub mod incremental;
pub mod interned;
pub mod link;
pub mod linker;
pub mod model;
pub mod person;
pub mod place;
pub mod table;

/// A hash map for the linker's own counting and lookups (patterns, a column's values, labels,
/// ids). std's SipHash resists inputs crafted to collide, which buys nothing against files the
/// operator chose to link, and cost about 3 % of `tongban link`'s time at a million records;
/// foldhash is several times quicker. The seed is fixed so that every run iterates alike.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// A hash set with [`FastMap`]'s hasher.
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::FixedState>;

/// An empty [`FastMap`].
pub(crate) fn fast_map<K, V>() -> FastMap<K, V> {
    FastMap::with_hasher(fast_hasher())
}

/// The hasher of [`FastMap`], for hashing values without a map.
pub(crate) fn fast_hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x9e37_79b9_7f4a_7c15)
}
