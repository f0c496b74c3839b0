//! What to generate: the street, its size, the seed and the noise rates of each department.
//!
//! Every rate is a flag of `tongban synth` with the default documented here; the defaults are
//! chosen to look like the reports (about 100 k residents and 170 k floating population in
//! 唯亭街道) and like the quality problems data bureaus describe, not to be easy.
//!
//! This module holds values only; it does not check them (`World::new` refuses impossible
//! sizes and shares, the command line refuses rates outside [0, 1]).

use chrono::NaiveDate;
use serde::Serialize;

/// The default street: 苏州工业园区 唯亭街道.
pub const DEFAULT_STREET: &str = "320576052";

/// 唯亭's 100,878 residents and 169,374 floating population, as the street reports them.
pub const DEFAULT_PEOPLE: u64 = 270_252;

/// The share of floating population among all people of the default street.
pub const DEFAULT_FLOATING_SHARE: f64 = 169_374.0 / 270_252.0;

/// Noise rates per department, each the probability that one record carries that defect.
#[derive(Clone, Debug, Serialize)]
pub struct Noise {
    /// Public security register: share of people born before 2000 whose id is still stored in the
    /// old 15-digit form (default 0.06).
    pub police_id15: f64,
    /// Civil affairs: share of names written in traditional characters (default 0.04).
    pub civil_traditional: f64,
    /// Floating population registration: share of addresses written in a messy form (shorthand,
    /// Chinese numerals, missing levels, notes; default 0.45).
    pub floating_messy_address: f64,
    /// Grid collection: share of names with a homophone typo (张→章; default 0.05).
    pub grid_homophone: f64,
    /// Grid collection: share of ids with one digit mistyped or two swapped (default 0.03).
    pub grid_id_typo: f64,
    /// Grid collection: share of records without an id (default 0.08).
    pub grid_missing_id: f64,
    /// Share of phone numbers written in a non-canonical form (+86, spaces, dashes; default 0.3).
    pub phone_format: f64,
    /// Grid collection: share of addresses written in a messy form (default 0.5).
    pub grid_messy_address: f64,
    /// Grid collection: share of living members a round reaches (default 0.6).
    pub grid_coverage: f64,
    /// Floating registration and grid collection: share of addresses written so badly that their
    /// room cannot be told for certain — the unit left out, or the compound's suffix dropped
    /// (青剑湖 for 青剑湖花园) — default 0.05.
    pub hard_address: f64,
    /// Share of phone numbers left empty where a system has a phone field (default 0.03).
    pub missing_phone: f64,
    /// Birth certificates: share of newborns not yet named (default 0.05).
    pub birth_unnamed: f64,
    /// Birth certificates: share without the father (default 0.1).
    pub birth_without_father: f64,
}

impl Default for Noise {
    fn default() -> Self {
        Noise {
            police_id15: 0.06,
            civil_traditional: 0.04,
            floating_messy_address: 0.45,
            grid_homophone: 0.05,
            grid_id_typo: 0.03,
            grid_missing_id: 0.08,
            phone_format: 0.3,
            grid_messy_address: 0.5,
            grid_coverage: 0.6,
            hard_address: 0.05,
            missing_phone: 0.03,
            birth_unnamed: 0.05,
            birth_without_father: 0.1,
        }
    }
}

/// A synthetic city to generate.
#[derive(Clone, Debug, Serialize)]
pub struct SynthConfig {
    pub seed: u64,
    /// The street (9-digit code) whose communities the people live in.
    pub street: String,
    /// About how many people live there (residents and floating population together); the exact
    /// number follows from the household sizes drawn.
    pub people: u64,
    /// Share of floating population among the people.
    pub floating_share: f64,
    /// The day the exports are taken. Fixed rather than read from the clock so that a seed gives
    /// the same files on every day.
    pub as_of: NaiveDate,
    pub noise: Noise,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 1,
            street: DEFAULT_STREET.to_string(),
            people: DEFAULT_PEOPLE,
            floating_share: DEFAULT_FLOATING_SHARE,
            // Invariant: 2026-06-30 is a date.
            as_of: NaiveDate::from_ymd_opt(2026, 6, 30).expect("a valid date"),
            noise: Noise::default(),
        }
    }
}
