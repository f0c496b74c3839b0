//! The base libraries (人口库 · 法人库 · 房屋库): resolution run over the store's records.
//!
//! This crate is the glue between the store and the resolution engine. It reads every current
//! record of every source, turns them into mentions, lets `tongban-resolution` link them, names
//! each resulting entity with a stable key, builds its golden record, and writes links and golden
//! records back in one transaction per kind. It also resolves records stored later one at a time
//! against the libraries in memory (`incremental`), counts residents and floating population per
//! community (`population`), and scores a result against the synthetic truth. It does no
//! comparison or clustering of its own and never changes a source record.

pub mod build;
pub mod evaluate;
pub mod explain;
pub mod golden_text;
pub mod incremental;
pub mod person;
pub mod population;
pub mod relations;

/// Errors of building or reading the libraries.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error(transparent)]
    Store(#[from] tongban_store::StoreError),
    #[error(transparent)]
    Link(#[from] tongban_resolution::linker::LinkError),
    #[error("{file}: {message}")]
    Truth { file: String, message: String },
    /// The writing side of a build stopped (its own error says why) before the building side
    /// was done.
    #[error("the libraries' writer stopped before they were all built")]
    WriterStopped,
}

pub type Result<T> = std::result::Result<T, LibraryError>;

/// A stable, opaque key for an entity: a prefix and 16 hex digits of the BLAKE3 hash of what
/// anchors it (a valid citizen id, or its first mention). Opaque so that keys, which appear in
/// URLs and logs, never carry an id number; stable so that a re-run that finds the same cluster
/// gives it the same key.
pub fn entity_key(prefix: &str, anchor: &str) -> String {
    let hash = blake3::hash(anchor.as_bytes());
    let hex: String = hash.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}{hex}")
}
