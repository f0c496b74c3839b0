//! FEBRL-style person records for benchmarking `tongban link` against other linkage tools.
//!
//! The FEBRL data sets (Christen, ANU) are the common yardstick of record linkage: Latin-script
//! people with a given name, surname, street address, suburb, postcode, state, date of birth and
//! social-security number, some records duplicated with typos and missing values, the true
//! entity written into the record id (`rec-12-org`, `rec-12-dup-0`). The published sets stop at
//! 10 000 records; this module writes the same layout at any size so speed and memory can be
//! measured at a million. Names and places are made from our own small word lists and syllables
//! with a Zipf-like frequency, so common names are common, as in the real data. Nothing here is
//! about the synthetic city; it shares only the random number generator.

use crate::rng::{Rng, Stream};
use std::io::Write;

/// The header, in FEBRL's column order.
pub const HEADER: &str = "rec_id,given_name,surname,street_number,address_1,address_2,suburb,postcode,state,date_of_birth,soc_sec_id";

const COMMON_SURNAMES: &[&str] = &[
    "smith", "jones", "williams", "brown", "wilson", "taylor", "johnson", "white", "martin",
    "anderson", "thompson", "nguyen", "thomas", "walker", "harris", "lee", "ryan", "robinson",
    "kelly", "king", "davis", "wright", "evans", "roberts", "green", "hall", "wood", "jackson",
    "clarke", "patel", "khan", "lewis", "james", "phillips", "mitchell", "turner", "cooper",
    "campbell", "murphy", "young", "edwards", "hill", "scott", "moore", "allen", "baker",
    "stewart", "ward", "morris", "miller", "clark", "hughes", "bell", "parker", "cook", "kennedy",
    "watson", "murray", "collins", "harrison",
];

const GIVEN_NAMES: &[&str] = &[
    "jack",
    "thomas",
    "joshua",
    "william",
    "james",
    "daniel",
    "samuel",
    "benjamin",
    "matthew",
    "lachlan",
    "ryan",
    "luke",
    "jacob",
    "nicholas",
    "alexander",
    "liam",
    "dylan",
    "ethan",
    "jordan",
    "harrison",
    "cooper",
    "riley",
    "mitchell",
    "callum",
    "connor",
    "zachary",
    "oliver",
    "noah",
    "lucas",
    "jayden",
    "charles",
    "henry",
    "george",
    "edward",
    "michael",
    "david",
    "andrew",
    "peter",
    "paul",
    "mark",
    "stephen",
    "robert",
    "john",
    "christopher",
    "anthony",
    "timothy",
    "patrick",
    "sean",
    "aaron",
    "adam",
    "emily",
    "chloe",
    "jessica",
    "sophie",
    "olivia",
    "charlotte",
    "georgia",
    "hannah",
    "emma",
    "isabella",
    "ella",
    "grace",
    "mia",
    "lily",
    "ruby",
    "sarah",
    "lauren",
    "rebecca",
    "madison",
    "amelia",
    "jasmine",
    "zoe",
    "caitlin",
    "brianna",
    "kayla",
    "courtney",
    "tahlia",
    "alyssa",
    "holly",
    "isabelle",
    "abbey",
    "alexandra",
    "amber",
    "bethany",
    "claire",
    "danielle",
    "elizabeth",
    "hayley",
    "jade",
    "kate",
    "laura",
    "megan",
    "michelle",
    "natalie",
    "rachel",
    "samantha",
    "stephanie",
    "victoria",
    "alice",
    "annabel",
    "bianca",
    "catherine",
    "eliza",
    "jemma",
    "kiara",
    "lucy",
];

const ONSETS: &[&str] = &[
    "b", "br", "c", "ch", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m", "n", "p",
    "pr", "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "wh",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "oo", "ou", "ie"];
const CODAS: &[&str] = &[
    "", "n", "r", "l", "s", "t", "ck", "ll", "nd", "rd", "m", "ng", "sh", "x",
];
const SURNAME_ENDINGS: &[&str] = &[
    "son", "ton", "ley", "er", "well", "man", "ford", "wood", "worth", "by", "field", "ham",
    "ington", "stone", "ridge", "land", "more", "ett", "ins", "",
];
const PLACE_ENDINGS: &[&str] = &[
    "dale", "vale", "wood", "field", "ton", "bury", "hill", "bank", "lea", "creek", "park",
    "grove", "ville", "brook", "port", "view",
];
const STREET_TYPES: &[&str] = &[
    "street", "road", "avenue", "place", "crescent", "circuit", "close", "drive", "court",
    "parade", "way", "lane",
];
const COMPLEXES: &[&str] = &[
    "villa",
    "gardens",
    "court",
    "house",
    "park",
    "estate",
    "manor",
    "lodge",
    "retirement vlge",
];
const STATES: &[(&str, f64)] = &[
    ("nsw", 0.32),
    ("vic", 0.25),
    ("qld", 0.20),
    ("wa", 0.10),
    ("sa", 0.07),
    ("tas", 0.02),
    ("act", 0.02),
    ("nt", 0.02),
];
const KEYBOARD_ROWS: &[&str] = &["qwertyuiop", "asdfghjkl", "zxcvbnm"];

/// A vocabulary with Zipf-like weights: word i has weight 1/(i+1)^s, drawn by binary search over
/// the cumulative weights (the vocabularies are too large to scan per draw).
struct Zipf {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(words: Vec<String>, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..words.len())
            .map(|i| {
                total += 1.0 / ((i + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { words, cumulative }
    }

    fn draw(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.unit() * total;
        let i = self
            .cumulative
            .partition_point(|&c| c <= x)
            .min(self.words.len() - 1);
        &self.words[i]
    }
}

/// `n` distinct made-up words from syllables plus an ending, in a seed-fixed order.
fn made_up_words(seed: u64, salt: u64, n: usize, endings: &[&str], avoid: &[&str]) -> Vec<String> {
    let mut rng = Rng::for_item(seed, Stream::Noise, salt);
    let mut seen: std::collections::HashSet<String> = avoid.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::with_capacity(n);
    let mut attempts = 0;
    while out.len() < n && attempts < n * 50 {
        attempts += 1;
        let mut w = String::new();
        for _ in 0..1 + rng.below(2) {
            w.push_str(rng.pick(ONSETS).copied().unwrap_or("b"));
            w.push_str(rng.pick(VOWELS).copied().unwrap_or("a"));
            w.push_str(rng.pick(CODAS).copied().unwrap_or(""));
        }
        w.push_str(rng.pick(endings).copied().unwrap_or(""));
        if w.len() >= 3 && seen.insert(w.clone()) {
            out.push(w);
        }
    }
    out
}

/// Vocabularies shared by all records of one run.
struct Vocab {
    given: Zipf,
    surname: Zipf,
    street: Zipf,
    suburbs: Vec<(String, String)>,
    suburb_pick: Zipf,
    complexes: Vec<String>,
}

impl Vocab {
    fn new(seed: u64, records: usize) -> Vocab {
        // Vocabulary sizes grow with the data, as a real population's long tail does.
        let tail = (records / 40).clamp(2_000, 60_000);
        let mut surnames: Vec<String> = COMMON_SURNAMES.iter().map(|s| s.to_string()).collect();
        surnames.extend(made_up_words(
            seed,
            1,
            tail,
            SURNAME_ENDINGS,
            COMMON_SURNAMES,
        ));
        let mut given: Vec<String> = GIVEN_NAMES.iter().map(|s| s.to_string()).collect();
        given.extend(made_up_words(
            seed,
            2,
            tail / 4,
            &["a", "o", "ie", "y", "en", "an", "el", "ia"],
            GIVEN_NAMES,
        ));
        let streets = made_up_words(seed, 3, tail, &[""], &[]);
        let suburb_names = made_up_words(seed, 4, (tail / 4).max(500), PLACE_ENDINGS, &[]);
        let mut rng = Rng::for_item(seed, Stream::Noise, 5);
        let suburbs: Vec<(String, String)> = suburb_names
            .into_iter()
            .map(|s| (s, format!("{:04}", 800 + rng.below(7000))))
            .collect();
        let complexes = made_up_words(seed, 6, 400, &[""], &[])
            .into_iter()
            .enumerate()
            .map(|(i, w)| format!("{w} {}", COMPLEXES[i % COMPLEXES.len()]))
            .collect();
        let suburb_pick = Zipf::new((0..suburbs.len()).map(|i| i.to_string()).collect(), 0.6);
        Vocab {
            given: Zipf::new(given, 0.7),
            surname: Zipf::new(surnames, 0.6),
            street: Zipf::new(streets, 0.5),
            suburbs,
            suburb_pick,
            complexes,
        }
    }
}

/// One person's fields in header order after `rec_id`.
type Fields = [String; 10];

fn original(v: &Vocab, rng: &mut Rng) -> Fields {
    let (suburb, postcode) = {
        let i: usize = v.suburb_pick.draw(rng).parse().unwrap_or(0);
        v.suburbs[i].clone()
    };
    let street = format!(
        "{} {}",
        v.street.draw(rng),
        rng.pick(STREET_TYPES).copied().unwrap_or("street")
    );
    let address_2 = if rng.chance(0.35) {
        rng.pick(&v.complexes).cloned().unwrap_or_default()
    } else {
        String::new()
    };
    let number = if rng.chance(0.05) {
        String::new()
    } else {
        let top = if rng.chance(0.8) { 60 } else { 400 };
        (1 + rng.below(top)).to_string()
    };
    let state_weights: Vec<f64> = STATES.iter().map(|s| s.1).collect();
    let state = STATES[rng.weighted(&state_weights)].0.to_string();
    let dob = if rng.chance(0.02) {
        String::new()
    } else {
        format!(
            "{:04}{:02}{:02}",
            1920 + rng.below(90),
            1 + rng.below(12),
            1 + rng.below(28)
        )
    };
    let given = if rng.chance(0.02) {
        String::new()
    } else {
        v.given.draw(rng).to_string()
    };
    let surname = if rng.chance(0.01) {
        String::new()
    } else {
        v.surname.draw(rng).to_string()
    };
    let ssn = format!("{}", 1_000_000 + rng.below(9_000_000));
    [
        given, surname, number, street, address_2, suburb, postcode, state, dob, ssn,
    ]
}

fn keyboard_neighbour(c: char, rng: &mut Rng) -> char {
    for row in KEYBOARD_ROWS {
        if let Some(i) = row.find(c) {
            let b = row.as_bytes();
            let j = if i == 0 {
                1
            } else if i + 1 == b.len() || rng.chance(0.5) {
                i - 1
            } else {
                i + 1
            };
            return b[j] as char;
        }
    }
    if c.is_ascii_digit() {
        return char::from(b'0' + rng.below(10) as u8);
    }
    c
}

/// One typo: substitute a neighbouring key, insert, delete or swap two neighbours.
fn typo(s: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let i = rng.below(chars.len() as u64) as usize;
    match rng.below(4) {
        0 => chars[i] = keyboard_neighbour(chars[i], rng),
        1 => {
            let c = keyboard_neighbour(chars[i], rng);
            chars.insert(i, c);
        }
        2 if chars.len() > 2 => {
            chars.remove(i);
        }
        _ if i + 1 < chars.len() => chars.swap(i, i + 1),
        _ => chars[i] = keyboard_neighbour(chars[i], rng),
    }
    chars.into_iter().collect()
}

fn duplicate(orig: &Fields, v: &Vocab, rng: &mut Rng) -> Fields {
    let mut d = orig.clone();
    // Field weights: names and the street are garbled most, as in FEBRL's defaults.
    let weights = [0.17, 0.17, 0.06, 0.14, 0.06, 0.1, 0.07, 0.04, 0.1, 0.09];
    let modifications = 1 + rng.weighted(&[0.45, 0.35, 0.2]);
    for _ in 0..modifications {
        let f = rng.weighted(&weights);
        let roll = rng.unit();
        d[f] = if roll < 0.7 {
            typo(&d[f], rng)
        } else if roll < 0.9 {
            String::new()
        } else {
            match f {
                0 => v.given.draw(rng).to_string(),
                1 => v.surname.draw(rng).to_string(),
                3 => d[f].replacen(' ', "", 1),
                _ => typo(&typo(&d[f], rng), rng),
            }
        };
    }
    d
}

/// Write `records` FEBRL-style records (about 60 % originals, the rest their duplicates, up to
/// five per original) to `out`. The same seed and size always give the same file.
pub fn write(seed: u64, records: usize, out: &mut dyn Write) -> std::io::Result<()> {
    let v = Vocab::new(seed, records);
    writeln!(out, "{HEADER}")?;
    let mut written = 0;
    let mut entity = 0u64;
    while written < records {
        let mut rng = Rng::for_item(seed, Stream::Household, entity);
        let orig = original(&v, &mut rng);
        writeln!(out, "rec-{entity}-org,{}", orig.join(","))?;
        written += 1;
        // Two originals in three have no duplicate; the rest have one to five, fewer more often.
        let dups = if rng.chance(0.66) {
            0
        } else {
            1 + rng.weighted(&[0.5, 0.25, 0.13, 0.07, 0.05])
        };
        for k in 0..dups.min(records - written) {
            let d = duplicate(&orig, &v, &mut rng);
            writeln!(out, "rec-{entity}-dup-{k},{}", d.join(","))?;
            written += 1;
        }
        entity += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_file_and_the_layout_holds() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        write(7, 2_000, &mut a).unwrap();
        write(7, 2_000, &mut b).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2_001);
        assert!(lines.iter().all(|l| l.split(',').count() == 11));
        let dups = lines.iter().filter(|l| l.contains("-dup-")).count();
        assert!((400..1_000).contains(&dups), "{dups} duplicates");
    }

    #[test]
    fn typos_change_one_thing() {
        let mut rng = Rng::for_item(1, Stream::Noise, 0);
        for _ in 0..200 {
            let t = typo("mitchell", &mut rng);
            assert!((7..=9).contains(&t.len()), "{t}");
        }
    }
}
