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
