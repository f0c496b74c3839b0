//! Every synthetic export reads and cleans with its shipped mapping (mappings/synth/), and what
//! cleaning finds matches the noise the generator put in.

use std::collections::HashMap;
use std::path::Path;
use tongban_intake::clean::{Severity, clean_record};
use tongban_intake::mapping::Mapping;
use tongban_intake::reader::{Item, read_file};
use tongban_synth::exports::Sink;
use tongban_synth::{SynthConfig, generate};

#[derive(Default, Debug)]
struct Tally {
    records: u64,
    unreadable: u64,
    blocked: u64,
    codes: HashMap<String, u64>,
}

fn ingest(dir: &Path, sink: Sink) -> Tally {
    let name = sink.path().split('.').next().unwrap();
    let mapping = Mapping::load(Path::new(&format!("mappings/synth/{name}.toml"))).unwrap();
    let mut t = Tally::default();
    read_file::<std::convert::Infallible>(&dir.join(sink.path()), &mapping, &mut |item| {
        match item {
            Item::Record(r) => {
                t.records += 1;
                let c = clean_record(&mapping, &r);
                if c.blocked() {
                    t.blocked += 1;
                }
                for i in c.issues.iter().filter(|i| i.severity > Severity::Info) {
                    *t.codes
                        .entry(format!("{}:{}", i.field, i.code))
                        .or_default() += 1;
                }
            }
            Item::Unreadable { .. } => t.unreadable += 1,
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", sink.path()));
    t
}

#[test]
fn every_synthetic_export_ingests_and_shows_its_noise() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(
        SynthConfig {
            seed: 11,
            people: 20_000,
            ..SynthConfig::default()
        },
        dir.path(),
        &|_, _| {},
    )
    .unwrap();
    let mut tallies = HashMap::new();
    for sink in Sink::ALL.iter().filter(|s| s.department().is_some()) {
        let t = ingest(dir.path(), *sink);
        assert_eq!(t.records, summary.files[sink.path()], "{}", sink.path());
        assert_eq!(t.unreadable, 0, "{}", sink.path());
        tallies.insert(*sink, t);
    }
    // Clean sources clean: nothing blocked, and no warnings beyond what the generator made.
    for sink in [
        Sink::PoliceHousehold,
        Sink::FloatingPopulation,
        Sink::CivilAffairs,
        Sink::SocialInsurance,
        Sink::MarketEntities,
        Sink::HousingRooms,
        Sink::HousingRentals,
        Sink::HealthBirths,
        Sink::EducationStudents,
        Sink::HousingBuildings,
    ] {
        let t = &tallies[&sink];
        assert_eq!(t.blocked, 0, "{}: {:?}", sink.path(), t.codes);
        assert!(t.codes.is_empty(), "{}: {:?}", sink.path(), t.codes);
    }
    // The grid collection's invalid ids follow the configured typo rate.
    let grid = &tallies[&Sink::GridCollection];
    let invalid: u64 = grid
        .codes
        .iter()
        .filter(|(k, _)| k.starts_with("citizen_id:"))
        .map(|(_, v)| v)
        .sum();
    let typos = summary.noise["grid_collection.id_typo"];
    assert!(
        invalid <= typos && invalid as f64 >= typos as f64 * 0.85,
        "invalid {invalid}, typos {typos}: {:?}",
        grid.codes
    );
    let share = invalid as f64 / grid.records as f64;
    let expected = SynthConfig::default().noise.grid_id_typo
        * (1.0 - SynthConfig::default().noise.grid_missing_id);
    assert!(
        (share - expected).abs() < 0.01,
        "invalid id share {share}, generator rate {expected}"
    );
}
