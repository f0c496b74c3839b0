//! Addresses: parsing and key derivation must never panic on any string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tongban_standards::address;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(a) = address::parse_address(s) {
        let _ = address::room_key(&a);
        let _ = address::building_key(&a);
        let _ = address::format_address(&a);
    }
});
