//! End-to-end tests of `tongban synth`: the binary writes every export and the truth, the same
//! seed gives byte-identical files whatever the number of threads, every file reads back in its
//! declared format and encoding, and the noise in the exports matches the configured rates.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use tongban_standards::citizen_id::{self, CitizenId};
use tongban_standards::credit_code::CreditCode;
use tongban_synth::exports::{Format, Sink};
use tongban_synth::{SynthConfig, generate};

fn small(seed: u64, people: u64) -> SynthConfig {
    SynthConfig {
        seed,
        people,
        ..SynthConfig::default()
    }
}

fn read_all(dir: &Path) -> HashMap<&'static str, Vec<u8>> {
    Sink::ALL
        .iter()
        .map(|s| {
            (
                s.path(),
                std::fs::read(dir.join(s.path())).expect("file written"),
            )
        })
        .collect()
}

fn decode(sink: Sink, bytes: &[u8]) -> String {
    if sink.gbk() {
        let (text, _, had_errors) = encoding_rs::GBK.decode(bytes);
        assert!(!had_errors, "{} is not valid GBK", sink.path());
        text.into_owned()
    } else {
        String::from_utf8(bytes.to_vec()).unwrap_or_else(|_| panic!("{} is not UTF-8", sink.path()))
    }
}

#[test]
fn same_seed_gives_identical_files_with_any_thread_count() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    generate(small(7, 6_000), a.path(), &|_, _| {}).unwrap();
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| generate(small(7, 6_000), b.path(), &|_, _| {}))
        .unwrap();
    generate(small(8, 6_000), c.path(), &|_, _| {}).unwrap();
    let (fa, fb, fc) = (read_all(a.path()), read_all(b.path()), read_all(c.path()));
    for s in Sink::ALL {
        assert_eq!(
            fa[s.path()],
            fb[s.path()],
            "{} differs between runs of one seed",
            s.path()
        );
    }
    assert_ne!(
        fa["police_household.csv"], fc["police_household.csv"],
        "another seed gives another city"
    );
    assert_eq!(
        std::fs::read(a.path().join("manifest.json")).unwrap(),
        std::fs::read(b.path().join("manifest.json")).unwrap()
    );
}

#[test]
fn every_export_reads_back_and_is_backed_by_truth() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(small(1, 20_000), dir.path(), &|_, _| {}).unwrap();
    assert!(
        summary.people >= 18_000 && summary.people <= 22_000,
        "{}",
        summary.people
    );
    let share = summary.floating as f64 / (summary.floating + summary.residents) as f64;
    assert!((share - 0.627).abs() < 0.05, "floating share {share}");
    assert_eq!(summary.communities.len(), 35);

    // Every record of every department has a truth row naming its subject.
    let truth = std::fs::read_to_string(dir.path().join("truth/records.csv")).unwrap();
    let mut subjects: HashMap<(String, String), String> = HashMap::new();
    let mut noise: HashMap<(String, String), String> = HashMap::new();
    let mut records: HashSet<(String, String)> = HashSet::new();
    for line in truth.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 5, "{line}");
        records.insert((f[0].into(), f[1].into()));
        if f[2] == "subject" {
            let prev = subjects.insert((f[0].into(), f[1].into()), f[3].into());
            assert!(
                prev.is_none(),
                "record {} of {} has two subjects",
                f[1],
                f[0]
            );
            noise.insert((f[0].into(), f[1].into()), f[4].into());
        }
    }
    let persons: HashMap<String, String> =
        std::fs::read_to_string(dir.path().join("truth/persons.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[1].to_string())
            })
            .collect();
    let ids: HashSet<&String> = persons.values().collect();
    assert_eq!(ids.len(), persons.len(), "true citizen ids are unique");
    for id in persons.values() {
        CitizenId::parse(id).unwrap_or_else(|e| panic!("true id {id} invalid: {e}"));
    }

    for sink in Sink::ALL.iter().filter(|s| s.department().is_some()) {
        let text = decode(*sink, &std::fs::read(dir.path().join(sink.path())).unwrap());
        let mut rows = 0;
        match sink.format() {
            Format::Csv => {
                let mut rdr = csv::Reader::from_reader(text.as_bytes());
                let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
                assert_eq!(header, sink.header(), "{}", sink.path());
                for rec in rdr.records() {
                    let rec = rec.unwrap_or_else(|e| panic!("{}: {e}", sink.path()));
                    let key = (
                        sink.path().to_string(),
                        rec[if *sink == Sink::PoliceHousehold { 1 } else { 0 }].to_string(),
                    );
                    assert!(
                        records.contains(&key),
                        "{} record {} has no truth",
                        sink.path(),
                        key.1
                    );
                    rows += 1;
                }
            }
            Format::JsonLines => {
                for line in text.lines() {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    let k = v
                        .get("djbh")
                        .or(v.get("cjbh"))
                        .and_then(|k| k.as_str())
                        .unwrap();
                    assert!(
                        records.contains(&(sink.path().to_string(), k.to_string())),
                        "{k}"
                    );
                    rows += 1;
                }
            }
        }
        assert!(rows > 0, "{} is empty", sink.path());
        assert_eq!(rows, summary.files[sink.path()], "{}", sink.path());
    }

    // The market register's codes are all valid credit codes.
    let market = std::fs::read_to_string(dir.path().join("market_entities.csv")).unwrap();
    for line in market.lines().skip(1) {
        let code = line.split(',').next().unwrap();
        CreditCode::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
    }

    // Grid collection: the measured share of invalid ids follows the configured typo rate, and
    // every record marked id_typo really differs from the truth.
    let grid = std::fs::read_to_string(dir.path().join("grid_collection.jsonl")).unwrap();
    let (mut total, mut missing, mut invalid, mut typo) = (0, 0, 0, 0);
    for line in grid.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            "grid_collection.jsonl".to_string(),
            v["cjbh"].as_str().unwrap().to_string(),
        );
        let id = v["zjhm"].as_str().unwrap();
        let applied = &noise[&key];
        total += 1;
        if id.is_empty() {
            missing += 1;
            assert!(applied.contains("missing_id"));
        } else if CitizenId::parse(id).is_err() {
            invalid += 1;
            assert!(
                applied.contains("id_typo"),
                "{id} invalid without recorded noise"
            );
        }
        if applied.contains("id_typo") {
            typo += 1;
            assert_ne!(id, persons[&subjects[&key]]);
        }
    }
    let n = &SynthConfig::default().noise;
    let missing_rate = missing as f64 / total as f64;
    assert!(
        (missing_rate - n.grid_missing_id).abs() < 0.015,
        "missing {missing_rate}"
    );
    let typo_rate = typo as f64 / (total - missing) as f64;
    assert!(
        (typo_rate - n.grid_id_typo).abs() < 0.01,
        "typo {typo_rate}"
    );
    // A mistyped id fails its check except when the slip lands on a valid id, which is rare.
    assert!(
        invalid as f64 >= typo as f64 * 0.85,
        "invalid {invalid} of {typo} typos"
    );

    // The household register holds some old 15-digit ids, each upgradeable to the true one.
    let police = std::fs::read_to_string(dir.path().join("police_household.csv")).unwrap();
    let mut id15 = 0;
    for line in police.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let parsed = citizen_id::parse_detailed(f[2]).unwrap_or_else(|e| panic!("{}: {e}", f[2]));
        if f[2].len() == 15 {
            id15 += 1;
            assert!(parsed.id.was_upgraded_from_15());
        }
    }
    assert!(id15 > 0);
}

#[test]
fn the_binary_prints_counts_per_source_and_per_community() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::succeeds(
        common::tongban()
            .args(["synth", "--seed", "3", "--people", "3000", "--out"])
            .arg(dir.path()),
    );
    let stdout = String::from_utf8(out).unwrap();
    for s in Sink::ALL {
        assert!(stdout.contains(s.path()), "summary lacks {}", s.path());
    }
    assert!(
        stdout.contains("320576052001") && stdout.contains("唯亭社区居委会"),
        "{stdout}"
    );
    let bad = common::tongban()
        .args(["synth", "--grid-id-typo", "1.5", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--grid-id-typo"));
}

#[test]
fn messy_addresses_parse_to_the_same_room_key_as_the_standard_form() {
    use tongban_standards::address;
    let dir = tempfile::tempdir().unwrap();
    generate(small(5, 8_000), dir.path(), &|_, _| {}).unwrap();
    let truth = std::fs::read_to_string(dir.path().join("truth/records.csv")).unwrap();
    let hard: HashSet<String> = truth
        .lines()
        .filter(|l| l.contains("hard_address"))
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    let residence: HashMap<String, String> = truth
        .lines()
        .filter(|l| {
            l.starts_with("floating_population.jsonl,") || l.starts_with("grid_collection.jsonl,")
        })
        .filter(|l| l.contains(",residence,"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_string(), f[3].to_string())
        })
        .collect();
    // For every true room, the set of keys its written addresses parse to.
    let mut keys: HashMap<String, HashSet<Option<String>>> = HashMap::new();
    let mut n = 0;
    for (file, rec_field, addr_field) in [
        ("floating_population.jsonl", "djbh", "jzdz"),
        ("grid_collection.jsonl", "cjbh", "dz"),
    ] {
        for line in std::fs::read_to_string(dir.path().join(file))
            .unwrap()
            .lines()
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let rec = v[rec_field].as_str().unwrap();
            if hard.contains(rec) {
                // Written so that the room cannot be told for certain, on purpose.
                continue;
            }
            let room = &residence[rec];
            let written = v[addr_field].as_str().unwrap();
            // Both sources are collected inside the street, so the street is the parsing context
            // (a compound name alone names no county).
            let key = address::parse_address_in(written, Some("320576052"))
                .ok()
                .and_then(|a| address::room_key(&a));
            keys.entry(room.clone()).or_default().insert(key);
            n += 1;
        }
    }
    let split: Vec<_> = keys
        .iter()
        .filter(|(_, k)| k.len() != 1 || k.contains(&None))
        .collect();
    assert!(n > 1000);
    assert!(
        split.is_empty(),
        "{} of {} rooms get several keys, e.g. {:?}",
        split.len(),
        keys.len(),
        split.iter().take(3).collect::<Vec<_>>()
    );
}

#[test]
fn every_noise_rate_shows_in_what_was_applied() {
    let dir = tempfile::tempdir().unwrap();
    let s = generate(small(2, 30_000), dir.path(), &|_, _| {}).unwrap();
    let n = SynthConfig::default().noise;
    let rows = |f: &str| s.files[f] as f64;
    let applied = |k: &str| *s.noise.get(k).unwrap_or(&0) as f64;
    // (noise kind, rows it was drawn over, configured rate, share of draws that can apply)
    let grid = rows("grid_collection.jsonl");
    let floating = rows("floating_population.jsonl");
    let checks = [
        ("grid_collection.missing_id", grid, n.grid_missing_id, 1.0),
        (
            "grid_collection.id_typo",
            grid,
            n.grid_id_typo * (1.0 - n.grid_missing_id),
            1.0,
        ),
        ("grid_collection.hard_address", grid, n.hard_address, 1.0),
        (
            "grid_collection.messy_address",
            grid,
            n.grid_messy_address * (1.0 - n.hard_address),
            1.0,
        ),
        (
            "floating_population.hard_address",
            floating,
            n.hard_address,
            1.0,
        ),
        (
            "floating_population.messy_address",
            floating,
            n.floating_messy_address * (1.0 - n.hard_address),
            1.0,
        ),
        // Homophones and traditional forms exist for most names but not all.
        ("grid_collection.homophone", grid, n.grid_homophone, 0.8),
        (
            "health_births.unnamed",
            rows("health_births.csv"),
            n.birth_unnamed,
            1.0,
        ),
    ];
    for (kind, over, rate, reach) in checks {
        let measured = applied(kind) / over;
        assert!(
            measured <= rate * 1.15 + 0.003 && measured >= rate * reach * 0.85 - 0.003,
            "{kind}: measured {measured:.4} over {over} rows, configured {rate}"
        );
    }
    // Civil affairs names: two names on a marriage row, one on the others.
    let civil = applied("civil_affairs.traditional");
    assert!(
        civil > 0.0 && civil / rows("civil_affairs.csv") < 2.0 * n.civil_traditional * 1.15,
        "{civil}"
    );
    let id15 = applied("police_household.id15") / rows("police_household.csv");
    assert!(id15 > 0.0 && id15 <= n.police_id15 * 1.15, "{id15}");
}
