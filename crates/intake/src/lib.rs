//! Intake: how department data comes in.
//!
//! placeholder

pub mod mapping;
pub mod reader;
