//! Incremental resolution end to end on both store backends: a synthetic city is ingested but for
//! one department's export, the libraries are built, the held-back export is ingested and its
//! records resolved one at a time; the result must be the clusters a run from scratch finds.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use tongban_intake::mapping::Mapping;
use tongban_intake::pipeline::ingest_file;
use tongban_libraries::build::build_all;
use tongban_libraries::incremental::Incremental;
use tongban_libraries::person::DEFAULT_TRUST;
use tongban_resolution::config::LibraryConfig;
use tongban_resolution::golden::Survivorship;
use tongban_store::Store;
use tongban_synth::exports::Sink;
use tongban_synth::{SynthConfig, generate};

async fn ingest(store: &dyn Store, dir: &Path, sink: Sink) {
    let stem = sink.path().split('.').next().unwrap();
    let path = format!("mappings/synth/{stem}.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mapping = Arc::new(Mapping::parse(&text, &path).unwrap());
    let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    ingest_file(store, mapping, &text, &dir.join(sink.path()), bytes, false)
        .await
        .unwrap();
}

/// Each kind's clusters as sets of mentions, and the key of each cluster.
async fn partitions(
    store: &dyn Store,
) -> HashMap<&'static str, (BTreeSet<BTreeSet<String>>, BTreeSet<String>)> {
    let mut out = HashMap::new();
    for kind in tongban_store::RESOLUTION_KINDS {
        let links = store.entity_links(kind, None, i64::MAX).await.unwrap();
        let mut groups: HashMap<String, BTreeSet<String>> = HashMap::new();
        for l in links {
            groups
                .entry(l.entity_key)
                .or_default()
                .insert(format!("{}:{}:{}", l.source_id, l.record_key, l.role));
        }
        let keys: BTreeSet<String> = groups.keys().cloned().collect();
        out.insert(*kind, (groups.into_values().collect(), keys));
    }
    out
}

/// Each kind's golden records by key.
async fn goldens(
    store: &dyn Store,
    parts: &HashMap<&'static str, (BTreeSet<BTreeSet<String>>, BTreeSet<String>)>,
) -> HashMap<&'static str, HashMap<String, String>> {
    let mut out = HashMap::new();
    for kind in tongban_store::RESOLUTION_KINDS {
        let mut records = HashMap::new();
        for key in &parts[kind].1 {
            let g = store.golden_record(kind, key).await.unwrap();
            records.insert(key.clone(), g.map(|g| g.record).unwrap_or_default());
        }
        out.insert(*kind, records);
    }
    out
}

/// Every relation, in the store's order.
async fn relations(store: &dyn Store) -> Vec<tongban_store::Relation> {
    let mut out: Vec<tongban_store::Relation> = Vec::new();
    loop {
        let page = store.relations_page(out.last(), 10_000).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_records_resolve_one_at_a_time_to_the_clusters_of_a_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(
        SynthConfig {
            seed: 12,
            people: 6_000,
            ..SynthConfig::default()
        },
        &d.join("s"),
        &|_, _| {},
    )
    .unwrap();
    let held_back = [Sink::FloatingPopulation, Sink::HousingRentals];
    let trust = Survivorship::new(DEFAULT_TRUST);
    // A configuration other than the defaults (a stricter person threshold, one blocking rule
    // fewer): incremental resolution must block and link as the run it continues did.
    let text = std::fs::read_to_string("examples/resolution.toml")
        .unwrap()
        .replacen("threshold = 0.9", "threshold = 0.95", 1)
        .replace(
            "    { keys = [\"phone\", \"birth_date\"], train = false },\n",
            "",
        );
    let config = LibraryConfig::parse("test.toml", &text).unwrap();
    assert_ne!(
        config.person_settings(),
        tongban_resolution::person::settings()
    );
    for store in common::backends(d, "incremental").await {
        let store = store.as_ref();
        for sink in Sink::ALL
            .iter()
            .filter(|s| s.department().is_some() && !held_back.contains(s))
        {
            ingest(store, &d.join("s"), *sink).await;
        }
        build_all(store, &trust, &config, &()).await.unwrap();
        let before = partitions(store).await;
        for sink in held_back {
            ingest(store, &d.join("s"), sink).await;
        }

        let mut libraries = Incremental::load(store, trust.clone(), &()).await.unwrap();
        let report = libraries.run(store, &()).await.unwrap();
        let new_records: i64 = {
            let mut n = 0;
            for sink in held_back {
                let stem = sink.path().split('.').next().unwrap();
                n += store.record_counts(stem).await.unwrap().0;
            }
            n
        };
        assert_eq!(report.records as i64, new_records, "every new record, once");
        assert!(report.mentions["person"] > 0 && report.mentions["room"] > 0);
        assert!(
            report.new_entities.get("person").copied().unwrap_or(0) < report.mentions["person"] / 2,
            "most people in the new records are already known: {report:?}"
        );
        assert_eq!(report.latencies.total.len(), report.records as usize);
        let incremental = partitions(store).await;
        assert_ne!(before["person"], incremental["person"]);
        let golden_after_incremental = goldens(store, &incremental).await;
        let relations_after_incremental = relations(store).await;

        // Nothing new: nothing to do.
        let mut again = Incremental::load(store, trust.clone(), &()).await.unwrap();
        assert_eq!(again.run(store, &()).await.unwrap().records, 0);

        // A run from scratch finds the same clusters under the same keys.
        build_all(store, &trust, &config, &()).await.unwrap();
        let full = partitions(store).await;
        for kind in tongban_store::RESOLUTION_KINDS {
            let (inc_groups, inc_keys) = &incremental[kind];
            let (full_groups, full_keys) = &full[kind];
            let only_inc = inc_groups.difference(full_groups).count();
            let only_full = full_groups.difference(inc_groups).count();
            assert!(
                only_inc == 0 && only_full == 0,
                "{kind} on {}: {only_inc} clusters only incremental, {only_full} only from scratch, of {}",
                store.backend(),
                full_groups.len()
            );
            assert_eq!(inc_keys, full_keys, "{kind} keys on {}", store.backend());
        }
        // And the same golden records.
        let golden_from_scratch = goldens(store, &full).await;
        for kind in tongban_store::RESOLUTION_KINDS {
            let (a, b) = (&golden_after_incremental[kind], &golden_from_scratch[kind]);
            let differing: Vec<&String> = a
                .iter()
                .filter(|(k, v)| b.get(*k) != Some(v))
                .map(|(k, _)| k)
                .collect();
            assert!(
                differing.is_empty(),
                "{kind} on {}: {} of {} golden records differ, e.g. {:?} vs {:?}",
                store.backend(),
                differing.len(),
                a.len(),
                a.get(differing[0]),
                b.get(differing[0])
            );
        }
        // And the same relations, each cited by the same records: a room lies in its building
        // under the least record either way.
        let from_scratch = relations(store).await;
        let only = |a: &[tongban_store::Relation], b: &[tongban_store::Relation]| {
            let b: std::collections::HashSet<_> = b.iter().collect();
            a.iter()
                .filter(|r| !b.contains(r))
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert!(
            relations_after_incremental == from_scratch,
            "relations on {}: {} after the records one at a time, {} from scratch; only the first: {:?}, only the second: {:?}",
            store.backend(),
            relations_after_incremental.len(),
            from_scratch.len(),
            only(&relations_after_incremental, &from_scratch),
            only(&from_scratch, &relations_after_incremental)
        );
        assert!(from_scratch.iter().any(|r| r.relation == "in_building"));
    }
}

/// A room written with its compound's name cut short (御湾 for 御湾花园, 御湾新村 or 御湾苑, none
/// known to have the room yet) names no room after the batch run; a room register's record
/// arriving later that names the room in full in one of them settles it (and its building),
/// one record at a time as in a run from scratch, whichever ending the compound has.
#[tokio::test]
async fn a_later_register_record_settles_a_compound_written_short() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The room register as a delivery of changes, so that the second file adds to the first.
    let text = std::fs::read_to_string("mappings/synth/housing_rooms.toml")
        .unwrap()
        .replace("snapshot = true", "snapshot = false");
    let mapping = Arc::new(Mapping::parse(&text, "rooms.toml").unwrap());
    let header = "房屋编码,楼栋编码,坐落,单元,室号,建筑面积,产权人,产权人证件号码\n";
    let row = |code: &str, building: &str, address: &str| {
        format!("{code},{building},江苏省苏州市苏州工业园区唯亭街道{address},,,60,,\n")
    };
    let first = d.join("first.csv");
    std::fs::write(
        &first,
        format!(
            "{header}{}{}{}{}",
            row("A1", "3205760520010000001", "御湾花园2幢1单元201室"),
            row("A2", "3205760520010000002", "御湾新村3幢1单元301室"),
            row("A5", "3205760520010000005", "御湾苑4幢1单元401室"),
            row("A3", "3205760520010000003", "御湾1幢1单元101室"),
        ),
    )
    .unwrap();
    let trust = Survivorship::new(DEFAULT_TRUST);
    let config = LibraryConfig::default();
    let together = |parts: &HashMap<&str, (BTreeSet<BTreeSet<String>>, BTreeSet<String>)>,
                    kind: &str| {
        parts[kind].0.iter().any(|g| {
            g.contains("housing_rooms:A3:subject") && g.contains("housing_rooms:A4:subject")
        })
    };
    // 苑 alone is an ending a full name may have (御湾苑) as well as a name written short.
    for (n, full) in ["御湾花园", "御湾苑"].into_iter().enumerate() {
        let second = d.join(format!("second{n}.csv"));
        std::fs::write(
            &second,
            format!(
                "{header}{}{}",
                row("A4", "3205760520010000004", &format!("{full}1幢1单元101室")),
                // A later record written short again: it must not find A3's first building.
                row("A6", "3205760520010000006", "御湾1幢1单元102室"),
            ),
        )
        .unwrap();
        for store in common::backends(d, &format!("settle{n}")).await {
            let store = store.as_ref();
            let load = |file: std::path::PathBuf| {
                let (mapping, text) = (mapping.clone(), text.clone());
                async move {
                    let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
                    ingest_file(store, mapping, &text, &file, bytes, false)
                        .await
                        .unwrap();
                }
            };
            load(first.clone()).await;
            build_all(store, &trust, &config, &()).await.unwrap();
            assert_eq!(
                partitions(store).await["room"].0.len(),
                4,
                "御湾 1-1-101 is a room of its own, of no compound"
            );
            load(second.clone()).await;
            let mut libraries = Incremental::load(store, trust.clone(), &()).await.unwrap();
            assert_eq!(libraries.run(store, &()).await.unwrap().records, 2);
            let incremental = partitions(store).await;
            let golden_after = goldens(store, &incremental).await;
            let relations_after = relations(store).await;
            for kind in ["room", "building"] {
                assert!(
                    together(&incremental, kind),
                    "{full} {kind} on {}: {:?}",
                    store.backend(),
                    incremental[kind].0
                );
            }
            // Loaded again, the libraries stand as they were written: nothing new, nothing to do.
            let mut again = Incremental::load(store, trust.clone(), &()).await.unwrap();
            assert_eq!(again.run(store, &()).await.unwrap().records, 0);

            build_all(store, &trust, &config, &()).await.unwrap();
            let full_run = partitions(store).await;
            for kind in ["room", "building"] {
                assert!(
                    together(&full_run, kind),
                    "a run from scratch reads 御湾 as {full}"
                );
                assert_eq!(
                    incremental[kind],
                    full_run[kind],
                    "{full} {kind} on {}",
                    store.backend()
                );
            }
            let golden_full = goldens(store, &full_run).await;
            for kind in ["room", "building"] {
                assert_eq!(
                    golden_after[kind], golden_full[kind],
                    "{full} {kind} golden records"
                );
            }
            assert_eq!(relations_after, relations(store).await, "{full} relations");
            store.close().await.unwrap();
        }
    }
}
