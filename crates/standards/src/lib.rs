//! Chinese data standards, as pure functions.
//!
//! Every department's records are read against the same national standards before they can be
//! linked: citizen ids (GB 11643-1999), unified social credit codes (GB 32100-2015 with the
//! GB 11714 organisation code inside), administrative division codes (GB/T 2260 and the 12-digit
//! statistical codes below it), names and their pinyin, phone numbers, dates in the forms
//! departments really write them, and addresses down to the room.
//!
//! This crate deliberately does no I/O: reference tables are embedded at compile time, and every
//! function takes a value and returns a cleaned value or a typed error that says what is wrong with
//! which part of the input. Nothing here panics on any input; the property tests and the fuzz
//! targets under `fuzz/` hold it to that. It does not decide what to *do* with a bad value
//! (quarantine, warn, drop): that is the intake's business.

pub mod address;
pub mod citizen_id;
pub mod credit_code;
pub mod date;
pub mod division;
pub mod ethnicity;
pub mod json_text;
pub mod names;
pub mod phone;
pub mod text;
