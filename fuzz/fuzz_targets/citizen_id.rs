//! Citizen ids: parsing, detailed parsing and diagnosis must never panic, and whatever parses must
//! print back to a value that parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tongban_standards::citizen_id::{self, CitizenId};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(id) = CitizenId::parse(s) {
        assert_eq!(CitizenId::parse(id.as_str()).ok().as_ref(), Some(&id));
    }
    let _ = citizen_id::parse_detailed(s);
    let _ = citizen_id::diagnose(s);
});
