//! Sharing: who may read what, under which grant — and the record that they did.
//!
//! So far this crate holds the audit log — [`audit`] is the pure hash chain, Merkle checkpoints,
//! signatures and verification; [`writer`] appends events in batches and answers each caller
//! only once its entry is committed — and [`identity`]: departments, users with a role and a
//! jurisdiction, and Argon2-hashed API tokens — and the [`catalogue`] of shareable resources
//! with each field's sharing class. Requests and grants, and the policy that decides every read,
//! come next. The crate never touches SQL (the store does) and
//! never decides what an entity is (resolution does).

pub mod audit;
pub mod catalogue;
pub mod identity;
pub mod policy;
pub mod watch;
pub mod writer;
