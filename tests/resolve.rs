//! Person resolution end to end on both store backends: a small synthetic city is generated,
//! every export ingested, people resolved, and the result scored against the generator's truth.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use tongban_intake::mapping::Mapping;
use tongban_intake::pipeline::ingest_file;
use tongban_libraries::person::{self, DEFAULT_TRUST};
use tongban_resolution::golden::Survivorship;
use tongban_store::Store;
use tongban_synth::exports::Sink;
use tongban_synth::{SynthConfig, generate};

async fn ingest_all(store: &dyn Store, dir: &Path) {
    for sink in Sink::ALL.iter().filter(|s| s.department().is_some()) {
        let stem = sink.path().split('.').next().unwrap();
        let path = format!("mappings/synth/{stem}.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let mapping = Arc::new(Mapping::parse(&text, &path).unwrap());
        let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        ingest_file(store, mapping, &text, &dir.join(sink.path()), bytes, false)
            .await
            .unwrap();
    }
}

/// A synthetic city of about `people` people, its exports in `d/s`.
fn city(d: &Path, seed: u64, people: u64) {
    generate(
        SynthConfig {
            seed,
            people,
            ..SynthConfig::default()
        },
        &d.join("s"),
        &|_, _| {},
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_resolve_accurately_and_reproducibly_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    city(d, 11, 15_000);
    let trust = Survivorship::new(DEFAULT_TRUST);
    for store in common::backends(d, "resolve").await {
        let store = store.as_ref();
        ingest_all(store, &d.join("s")).await;
        let built = tongban_libraries::build::build_all(
            store,
            &trust,
            &tongban_resolution::config::LibraryConfig::default(),
            &(),
        )
        .await
        .unwrap();
        let summaries = &built.summaries;
        let kinds: Vec<&str> = summaries.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["person", "entity", "room", "building"]);
        // Written beside the building, one after another in the order built: each kind's run
        // has its id, in that order, and the relations come last.
        assert!(
            summaries
                .windows(2)
                .all(|w| 0 < w[0].run_id && w[0].run_id < w[1].run_id),
            "{summaries:?}"
        );
        for s in summaries {
            let latest = store.latest_resolution(&s.kind).await.unwrap().unwrap();
            assert_eq!(latest.id, s.run_id);
            assert_eq!(latest.entities, s.entities as i64);
        }
        let writes: Vec<&str> = built.writes.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(
            writes,
            [
                "person writing",
                "entity writing",
                "room writing",
                "building writing",
                "relations writing"
            ]
        );
        assert_eq!(built.stages.first().map(|s| s.0.as_str()), Some("reading"));
        assert_eq!(built.stages.last().map(|s| s.0.as_str()), Some("writing"));
        assert!(
            summaries
                .iter()
                .all(|s| s.entities > 0 && s.mentions >= s.entities)
        );
        // Each linked kind says what each blocking rule formed, adding up to its candidate
        // pairs, and keeps it with its run; kinds grouped by key have no rules.
        for s in summaries {
            let formed: u64 = s.blocking.iter().map(|r| r.pairs).sum();
            assert_eq!(formed, s.candidate_pairs, "{}: {:?}", s.kind, s.blocking);
            assert_eq!(
                s.blocking.is_empty(),
                matches!(s.kind.as_str(), "room" | "building"),
                "{}",
                s.kind
            );
        }
        let person = &summaries[0];
        assert_eq!(person.blocking[0].rule, "citizen id");
        assert!(person.blocking[0].pairs > 0);
        let stored = store.latest_resolution("person").await.unwrap().unwrap();
        let kept: tongban_libraries::build::Summary =
            serde_json::from_str(&stored.summary).unwrap();
        assert_eq!(kept.blocking, person.blocking);
        for (kind, prefix, pairwise, cluster) in [
            ("entity", "E", 0.99, 0.99),
            ("room", "R", 0.99, 0.95),
            ("building", "B", 0.99, 0.99),
        ] {
            let r = tongban_libraries::evaluate::evaluate(store, kind, &d.join("s/truth"), prefix)
                .await
                .unwrap();
            let s = &r.scores;
            assert!(
                s.pairwise.f1() > pairwise,
                "{kind} on {}: pairwise F1 {:.4}",
                store.backend(),
                s.pairwise.f1()
            );
            assert!(
                s.clusters.f1() > cluster,
                "{kind} on {}: cluster F1 {:.4}",
                store.backend(),
                s.clusters.f1()
            );
        }

        let report =
            tongban_libraries::evaluate::evaluate(store, "person", &d.join("s/truth"), "P")
                .await
                .unwrap();
        assert_eq!(report.unknown_to_truth, 0, "every mention is in the truth");
        let s = &report.scores;
        assert!(
            s.pairwise.f1() > 0.99,
            "{} pairwise F1 {:.4}",
            store.backend(),
            s.pairwise.f1()
        );
        assert!(
            s.clusters.f1() > 0.98,
            "{} cluster F1 {:.4}",
            store.backend(),
            s.clusters.f1()
        );

        // No person holds two different valid citizen ids.
        let mentions = tongban_libraries::build::read_all(store, &())
            .await
            .unwrap()
            .persons;
        let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
        for m in mentions.iter().filter(|m| !m.valid_id.is_empty()) {
            let key = store
                .entity_of("person", &m.source, &m.record_key, &m.role)
                .await
                .unwrap()
                .unwrap();
            ids.entry(key).or_default().insert(m.valid_id.to_string());
        }
        assert!(ids.values().all(|v| v.len() == 1));

        // Any pair can be explained: the same agreeing valid id must link, two different ones
        // never do, and the weights of the other fields are the run's.
        let agreeing: Vec<&tongban_resolution::person::Mention> =
            mentions.iter().filter(|m| m.id_agrees).collect();
        let same = agreeing
            .iter()
            .enumerate()
            .find_map(|(i, a)| {
                agreeing[i + 1..]
                    .iter()
                    .find(|b| b.valid_id == a.valid_id)
                    .map(|b| (*a, *b))
            })
            .unwrap();
        let other = agreeing
            .iter()
            .find(|m| m.valid_id != same.0.valid_id)
            .unwrap();
        let at = |m: &tongban_resolution::person::Mention| tongban_libraries::explain::MentionRef {
            source: m.source.to_string(),
            record_key: m.record_key.to_string(),
            role: m.role.to_string(),
        };
        let e = tongban_libraries::explain::explain_persons(store, &at(same.0), &at(same.1))
            .await
            .unwrap();
        assert!(e.rule.starts_with("must link"), "{e:?}");
        assert_eq!(e.persons.0, e.persons.1);
        assert_eq!(
            e.fields
                .iter()
                .find(|f| f.field == "citizen_id")
                .unwrap()
                .level,
            "exact"
        );
        let e = tongban_libraries::explain::explain_persons(store, &at(same.0), &at(other))
            .await
            .unwrap();
        assert!(e.rule.starts_with("cannot link"), "{e:?}");
        assert_ne!(e.persons.0, e.persons.1);

        // A golden record names where each value came from: stored, by its number in the
        // record's list of the records it cites; spelled out, inline.
        let (key, _) = ids.iter().next().unwrap();
        let stored = store
            .golden_record("person", key)
            .await
            .unwrap()
            .unwrap()
            .record;
        let golden: serde_json::Value = serde_json::from_str(&stored).unwrap();
        let name = &golden["fields"]["name"];
        assert!(name["value"].as_str().is_some_and(|v| !v.is_empty()));
        // A field that does not say which cites the first.
        let cited = &golden["cited"][name["cited"].as_u64().unwrap_or(0) as usize];
        assert!(cited["source"].as_str().is_some_and(|v| !v.is_empty()));
        let inline: serde_json::Value = serde_json::from_str(
            &tongban_libraries::golden_text::spelled_out(&stored)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(inline["fields"]["name"]["value"], name["value"]);
        assert_eq!(inline["fields"]["name"]["source"], cited["source"]);
        assert_eq!(inline["fields"]["name"]["record_key"], cited["record_key"]);
        // `tongban show` reads the stored form too and prints each field's provenance.
        if store.backend() == "sqlite" {
            let out = common::succeeds(
                common::tongban()
                    .args(["show", "person", key, "--json", "--database"])
                    .arg(format!("sqlite://{}", d.join("resolve.db").display())),
            );
            let shown: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(shown["golden"]["fields"], inline["fields"]);
            assert!(shown["golden"].get("cited").is_none());
        }

        // Records relate the entities they mention; every relation joins two library entities.
        let golden_of = |key: &str| {
            let kind = match &key[..1] {
                "P" => "person",
                "E" => "entity",
                "R" => "room",
                _ => "building",
            };
            (kind, key.to_string())
        };
        let (kind, child) = golden_of(key);
        assert_eq!(kind, "person");
        let relations = store.relations_of(&child).await.unwrap();
        assert!(!relations.is_empty(), "{} has no relations", child);
        // The table shows the first relations and says how many it left out.
        if store.backend() == "sqlite" && relations.len() > 1 {
            let out = common::succeeds(
                common::tongban()
                    .args(["show", "person", &child, "--limit", "1", "--database"])
                    .arg(format!("sqlite://{}", d.join("resolve.db").display())),
            );
            let out = String::from_utf8_lossy(&out);
            assert!(
                out.contains(&format!("… and {} more", relations.len() - 1)),
                "{out}"
            );
        }
        for r in relations.iter().take(20) {
            for k in [&r.from_key, &r.to_key] {
                let (kind, k) = golden_of(k);
                assert!(
                    store.golden_record(kind, &k).await.unwrap().is_some(),
                    "{r:?}"
                );
            }
        }

        // Companies lie in the buildings at their addresses.
        let mut all_relations = Vec::new();
        let mut after: Option<tongban_store::Relation> = None;
        loop {
            let page = store.relations_page(after.as_ref(), 10_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.clone());
            all_relations.extend(page);
        }
        let located: Vec<&tongban_store::Relation> = all_relations
            .iter()
            .filter(|r| r.relation == "located_at")
            .collect();
        assert!(
            located.len() > 100,
            "{} located_at relations",
            located.len()
        );
        for r in located.iter().take(20) {
            assert!(r.from_key.starts_with('E') && r.to_key.starts_with('B'));
            assert!(
                store
                    .golden_record("building", &r.to_key)
                    .await
                    .unwrap()
                    .is_some()
            );
        }

        // Residents and floating population per community follow from the relations: the
        // libraries' figures against the generator's.
        let population = tongban_libraries::population::population(store)
            .await
            .unwrap();
        let truth = tongban_libraries::population::truth_by_community(&d.join("s/truth")).unwrap();
        let (truth_registered, truth_floating) = truth
            .values()
            .fold((0u64, 0u64), |a, (r, f)| (a.0 + r, a.1 + f));
        assert!(population.communities.len() > 20);
        assert!(
            population.registered().abs_diff(truth_registered) * 100 <= truth_registered,
            "registered {} vs truth {truth_registered}",
            population.registered()
        );
        assert!(
            population.floating().abs_diff(truth_floating) * 100 <= truth_floating * 3,
            "floating {} vs truth {truth_floating}",
            population.floating()
        );
        let error: u64 = population
            .communities
            .iter()
            .map(|c| {
                let (r, f) = truth.get(&c.code).copied().unwrap_or((0, 0));
                c.registered.abs_diff(r) + c.floating.abs_diff(f)
            })
            .sum();
        assert!(
            error * 100 <= (truth_registered + truth_floating) * 3,
            "per-community error {error}"
        );

        // A re-run from scratch gives the same people under the same keys.
        let before = store.entity_links("person", None, i64::MAX).await.unwrap();
        person::resolve(store, &trust, &()).await.unwrap();
        let after = store.entity_links("person", None, i64::MAX).await.unwrap();
        assert_eq!(before, after, "{}", store.backend());
    }
}

/// Every golden record and link of every kind, and every relation, as text: what two builds
/// must agree on.
async fn libraries_text(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    for kind in tongban_store::RESOLUTION_KINDS {
        let mut after: Option<String> = None;
        loop {
            let page = store
                .golden_page(kind, after.as_deref(), 1_000)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.entity_key.clone());
            out.extend(
                page.iter()
                    .map(|g| format!("{kind} {} {}", g.entity_key, g.record)),
            );
        }
        let mut pages = tongban_store::LinkPages::new(kind, 5_000);
        while let Some(page) = pages.next(store).await.unwrap() {
            out.extend(page.iter().map(|l| {
                format!(
                    "{kind} link {} {} {} {}",
                    l.source_id, l.record_key, l.role, l.entity_key
                )
            }));
        }
    }
    let mut after: Option<tongban_store::Relation> = None;
    loop {
        let page = store.relations_page(after.as_ref(), 5_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.clone());
        out.extend(page.iter().map(|r| format!("{r:?}")));
    }
    out
}

/// With a single-threaded runtime there is no thread to write beside the building, so
/// `build_all` builds every library first and writes them after; the libraries it writes are
/// exactly those the two threads write.
#[test]
fn a_build_on_one_thread_writes_what_two_threads_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    city(d, 5, 3_000);
    let build = |runtime: tokio::runtime::Runtime, name: &str| {
        let path = d.join(name);
        runtime.block_on(async {
            let store = tongban_store::open(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            ingest_all(store.as_ref(), &d.join("s")).await;
            let built = tongban_libraries::build::build_all(
                store.as_ref(),
                &Survivorship::new(DEFAULT_TRUST),
                &tongban_resolution::config::LibraryConfig::default(),
                &(),
            )
            .await
            .unwrap();
            let writes: Vec<String> = built.writes.iter().map(|(w, _)| w.clone()).collect();
            (writes, libraries_text(store.as_ref()).await)
        })
    };
    let one = build(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        "one.db",
    );
    let two = build(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        "two.db",
    );
    assert_eq!(one.0, two.0, "the same writes, in the same order");
    assert!(one.1.len() > 10_000, "{} rows", one.1.len());
    assert!(one.1 == two.1, "the libraries differ");
}

/// A library write that fails stops the whole build with the store's error, and what was
/// written before the failure stays as it was: the entity library's (written second), and the
/// person library's, which goes to the writer before its golden records are built, so that its
/// writer fails while they are still being built. The build runs on a thread of its own, so
/// that a builder left waiting for a writer that has gone fails the test instead of hanging it.
#[test]
fn a_failed_write_stops_the_build_with_its_error() {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(build_with_a_failing_write("golden_entity", &["person"]));
        runtime.block_on(build_with_a_failing_write("links_person", &[]));
        let _ = done.send(());
    });
    match outcome.recv_timeout(std::time::Duration::from_secs(300)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the build did not stop within 300 s")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the build's thread failed (see its panic above)")
        }
    }
}

/// Builds every library of a small city into a store whose `table` is gone, behind its back:
/// the build must fail with the store's error naming it, with the libraries of `written_before`
/// (and no others) written.
async fn build_with_a_failing_write(table: &str, written_before: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    city(d, 5, 3_000);
    let path = d.join("t.db");
    let store = tongban_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    ingest_all(store.as_ref(), &d.join("s")).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("DROP TABLE {table}"))
        .unwrap();
    let built = tongban_libraries::build::build_all(
        store.as_ref(),
        &Survivorship::new(DEFAULT_TRUST),
        &tongban_resolution::config::LibraryConfig::default(),
        &(),
    )
    .await;
    let Err(tongban_libraries::LibraryError::Store(e)) = built else {
        panic!("expected the store's error without {table}");
    };
    assert!(e.to_string().contains(table), "{e}");
    for kind in ["person", "entity", "room", "building"] {
        assert_eq!(
            store.latest_resolution(kind).await.unwrap().is_some(),
            written_before.contains(&kind),
            "{kind} without {table}"
        );
    }
}

/// `tongban resolve --json` says how much memory the process had used at each stage's end, for
/// the same stages it times, never less than at the stage before (but for the slack of Linux's
/// per-CPU counters of resident pages, which it reads a little behind or ahead: seen 64 KiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_reports_the_peak_memory_at_each_stage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    city(d, 5, 2_000);
    let url = format!("sqlite://{}", d.join("peaks.db").display());
    {
        let store = tongban_store::open(&url).await.unwrap();
        ingest_all(store.as_ref(), &d.join("s")).await;
    }
    // A misspelt source in the trust order is refused before anything is built.
    let typo = common::tongban()
        .args([
            "resolve",
            "--trust",
            "police_household,grid_colection",
            "--database",
            &url,
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&typo.stderr);
    assert!(
        !typo.status.success() && said.contains("\"grid_colection\""),
        "{said}"
    );
    let out = common::succeeds(common::tongban().args(["resolve", "--json", "--database", &url]));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let names = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} in {v}"))
            .iter()
            .map(|pair| pair[0].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("peak_bytes_at_stage_end"), names("stage_seconds"));
    let peaks: Vec<u64> = v["peak_bytes_at_stage_end"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[1].as_u64().expect("Linux tells the peak"))
        .collect();
    assert!(peaks[0] > 1 << 20, "{peaks:?}");
    let slack = 4 << 20;
    assert!(peaks.windows(2).all(|w| w[0] <= w[1] + slack), "{peaks:?}");
    assert!(peaks.last() >= peaks.first(), "{peaks:?}");
}
