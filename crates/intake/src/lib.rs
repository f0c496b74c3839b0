//! Intake: how department data comes in.
//!
//! placeholder

pub mod clean;
pub mod mapping;
pub mod reader;
