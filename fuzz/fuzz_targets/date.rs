//! Dates: parsing must never panic, and a parsed date must parse back from its ISO form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tongban_standards::date;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(d) = date::parse_date(s) {
        assert_eq!(date::parse_date(&d.format("%Y-%m-%d").to_string()).ok(), Some(d));
    }
});
