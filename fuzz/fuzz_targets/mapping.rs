//! Mapping files are written by hand by data engineers: any text must parse to a mapping or to
//! an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = tongban_intake::mapping::Mapping::parse(text, "fuzz.toml");
});
