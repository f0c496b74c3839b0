//! A department's file as intake reads it: any bytes, in any declared format and encoding, must
//! read without a panic, and what is delivered must be what the store can hold (no NUL, no
//! undecodable byte; a CSV record as wide as its header). Each record is then cleaned by a
//! mapping that uses every kind of cleaning step, which must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tongban_intake::mapping::Mapping;
use tongban_intake::reader::{self, Item};

const FORMATS: [&str; 3] = ["csv", "jsonl", "json"];
const ENCODINGS: [&str; 3] = ["utf-8", "gbk", "gb18030"];
const STEPS: [&str; 15] = [
    "citizen_id", "credit_code", "name", "phone", "date", "year_month", "address", "division",
    "division_prefix", "sex", "ethnicity", "text", "integer", "decimal", "raw",
];

fn mapping(format: &str, encoding: &str) -> Option<Mapping> {
    let mut text = format!(
        "[source]\nid = \"f\"\ndepartment = \"d\"\nformat = \"{format}\"\n\
         encoding = \"{encoding}\"\nrecord_key = [\"a\"]\nsubject = \"person\"\n"
    );
    for (i, step) in STEPS.iter().enumerate() {
        let column = ["a", "b", "c", "d"][i % 4];
        text.push_str(&format!(
            "[[field]]\ncolumn = \"{column}\"\nfield = \"f{i}\"\nclean = \"{step}\"\n"
        ));
    }
    Mapping::parse(&text, "fuzz.toml").ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let format = FORMATS[usize::from(selector) % 3];
    let encoding = ENCODINGS[usize::from(selector / 3) % 3];
    // A mapping the fuzzer cannot build (a step renamed) is a bug in this target, not input.
    let m = mapping(format, encoding).expect("the fuzz target's mapping parses");
    let mut items = 0u64;
    let read = reader::read_stream::<_, std::convert::Infallible>(
        std::io::Cursor::new(bytes),
        "fuzz",
        &m,
        None,
        &mut |item| {
            items += 1;
            if let Item::Record(r) = &item {
                assert!(r.values.iter().all(|v| !v.contains('\0') && !v.contains('\u{FFFD}')));
                if format == "csv" {
                    assert_eq!(r.values.len(), r.columns.len());
                }
                let _ = tongban_intake::clean::clean_record(&m, r);
            }
            Ok(())
        },
    );
    if let Ok(summary) = read {
        assert_eq!(summary.records + summary.unreadable, items);
    }
});
