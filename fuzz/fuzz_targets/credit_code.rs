//! Credit codes: parsing must never panic, and a parsed code must parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tongban_standards::credit_code::{self, CreditCode};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(c) = CreditCode::parse(s) {
        assert_eq!(CreditCode::parse(c.as_str()).ok().as_ref(), Some(&c));
    }
    let _ = credit_code::parse_detailed(s);
});
