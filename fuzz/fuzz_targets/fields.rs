//! A cleaned record's fields as resolution reads them: scanning any text must never panic, and
//! whatever it finds in a JSON object must be what serde_json finds there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tongban_resolution::fields::Fields;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let fields = Fields::parse(s);
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(s) {
        for (key, value) in &object {
            if !key.contains('\\') && !s.contains('\\') {
                assert_eq!(fields.text(key), value.as_str().unwrap_or(""));
            }
        }
    }
    for key in ["name", "address", "a"] {
        let _ = fields.text(key);
        let _ = fields.object(key).map(|o| o.text("room_key"));
    }
});
