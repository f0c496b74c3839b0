//! Re-cleaning stored records with a fixed mapping, on both store backends: what changes becomes
//! a new version with the same raw record and hash, what would now be blocked stays as stored,
//! a record changed since it was read is left alone, and ingest and snapshots behave as before.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tongban_intake::mapping::Mapping;
use tongban_intake::pipeline::ingest_file;
use tongban_intake::reclean::reclean_source;
use tongban_store::{RecordStatus, Store};

/// The department's first mapping took names as they came; the fixed one cleans them (a
/// traditional character becomes simplified) and requires one.
const MAPPING: &str = r#"
[source]
id = "people"
department = "测试局"
format = "csv"
encoding = "utf-8"
record_key = ["编号"]
subject = "person"
snapshot = true
[[field]]
column = "编号"
field = "record_no"
clean = "raw"
[[field]]
column = "身份证"
field = "citizen_id"
clean = "citizen_id"
required = true
[[field]]
column = "姓名"
field = "name"
clean = "STEP"
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

async fn ingest(store: &dyn Store, mapping_text: &str, file: &Path) -> tongban_store::BatchRow {
    let mapping = Arc::new(Mapping::parse(mapping_text, "test mapping").unwrap());
    ingest_file(
        store,
        mapping,
        mapping_text,
        file,
        Arc::new(AtomicU64::new(0)),
        false,
    )
    .await
    .unwrap()
    .batch
}

fn name_of(cleaned: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(cleaned).unwrap();
    v["name"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn a_fixed_mapping_recleans_stored_records_as_new_versions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = MAPPING.replace("STEP", "raw");
    let fixed = MAPPING.replace("clean = \"STEP\"", "clean = \"name\"\nrequired = true");
    let fixed_mapping = Mapping::parse(&fixed, "fixed mapping").unwrap();
    let all = write(
        d,
        "all.csv",
        "编号,身份证,姓名\n1,11010519491231002X,張三\n2,11010519491231002X,李四\n3,11010519491231002X,\n",
    );
    for store in common::backends(d, "reclean").await {
        let store = store.as_ref();
        let delivered = ingest(store, &first, &all).await;
        assert_eq!(delivered.counts.inserted, 3);
        // Delivered again unchanged: a sighting, the last delivery of every record.
        let sighted = ingest(store, &first, &all).await;
        assert_eq!(sighted.counts.unchanged, 3);
        let before = store.record_history("people", "1").await.unwrap();
        assert_eq!(name_of(&before[0].cleaned), "張三");

        // A dry run says what would change and stores nothing.
        let counter = AtomicU64::new(0);
        let dry = reclean_source(store, &fixed_mapping, "re-clean", true, &counter)
            .await
            .unwrap();
        assert_eq!(
            (dry.examined, dry.changed, dry.stored, dry.now_blocked),
            (3, 1, 0, 1),
            "{dry:?}"
        );
        assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert_eq!(dry.fields.get("name"), Some(&1), "{dry:?}");
        assert_eq!(dry.examples[0].before.as_deref(), Some("\"張三\""));
        assert_eq!(dry.examples[0].after.as_deref(), Some("\"张三\""));
        assert_eq!(dry.blocked_examples[0].0, "3");
        assert!(dry.batch.is_none());
        assert_eq!(store.record_history("people", "1").await.unwrap().len(), 1);

        let done = reclean_source(store, &fixed_mapping, "re-clean", false, &counter)
            .await
            .unwrap();
        assert_eq!(
            (done.changed, done.stored, done.kept),
            (1, 1, 0),
            "{done:?}"
        );
        let batch = done.batch.clone().expect("a batch holds the new version");
        assert_eq!((batch.counts.records, batch.counts.updated), (1, 1));
        let history = store.record_history("people", "1").await.unwrap();
        assert_eq!(history.len(), 2);
        let (old, new) = (&history[0], &history[1]);
        assert_eq!(
            (old.status, new.status),
            (RecordStatus::Superseded, RecordStatus::Current)
        );
        assert_eq!(
            (name_of(&old.cleaned), name_of(&new.cleaned)),
            ("張三".into(), "张三".into())
        );
        // The same delivery: raw record, hash and place in the file unchanged; the new version
        // comes from the re-clean's batch but was last delivered by the second ingest.
        assert_eq!(new.raw, old.raw);
        assert_eq!(new.content_hash, old.content_hash);
        assert_eq!(new.location, old.location);
        assert_eq!((new.batch_id, new.seen_batch), (batch.id, sighted.id));
        // Record 3 would now be blocked: it stays as the department delivered it.
        let three = store.record_history("people", "3").await.unwrap();
        assert_eq!(three.len(), 1);
        assert_eq!(three[0].status, RecordStatus::Current);

        // Run again: nothing left to change.
        let again = reclean_source(store, &fixed_mapping, "re-clean", false, &counter)
            .await
            .unwrap();
        assert_eq!((again.changed, again.stored), (0, 0), "{again:?}");
        assert!(again.batch.is_none());

        // A re-cleaned record read at a version that is no longer current is left alone.
        let stale = tongban_store::IncomingRecord {
            key: "1".into(),
            location: new.location.clone(),
            raw: new.raw.clone(),
            raw_columns: None,
            cleaned: r#"{"name":"stale"}"#.into(),
            issues: "[]".into(),
            hash: new.content_hash.clone(),
        };
        let b = store.begin_batch("people", "re-clean").await.unwrap();
        let o = store
            .store_recleaned(b, "people", vec![stale], vec![1])
            .await
            .unwrap();
        assert_eq!((o.updated, o.unchanged), (0, 1));
        store.finish_batch(b, false).await.unwrap();
        assert_eq!(store.record_history("people", "1").await.unwrap().len(), 2);

        // The same file again finds every record unchanged (the hash is the raw record's), and
        // the re-cleaned values stay.
        let redelivered = ingest(store, &first, &all).await;
        assert_eq!(
            (
                redelivered.counts.unchanged,
                redelivered.counts.inserted,
                redelivered.counts.updated
            ),
            (3, 0, 0)
        );
        let current = store.current_records("people", None, 10).await.unwrap();
        assert_eq!(name_of(&current[0].cleaned), "张三");

        // A snapshot without record 1 withdraws it, re-cleaned or not.
        let without = write(
            d,
            "without.csv",
            "编号,身份证,姓名\n2,11010519491231002X,李四\n3,11010519491231002X,\n",
        );
        assert_eq!(ingest(store, &first, &without).await.withdrawn, 1);
        let history = store.record_history("people", "1").await.unwrap();
        assert_eq!(history.last().unwrap().status, RecordStatus::Withdrawn);
        store.close().await.unwrap();
    }
}

#[test]
fn the_command_reports_and_stores_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = format!("sqlite://{}", d.join("t.db").display());
    let first = write(d, "first.toml", &MAPPING.replace("STEP", "raw"));
    let fixed = write(
        d,
        "fixed.toml",
        &MAPPING.replace("clean = \"STEP\"", "clean = \"name\"\nrequired = true"),
    );
    let file = write(
        d,
        "p.csv",
        "编号,身份证,姓名\n1,11010519491231002X,張三\n2,11010519491231002X,\n",
    );
    let run = |args: &[&str]| {
        let out = common::tongban()
            .args(args)
            .env("TONGBAN_DATABASE", &db)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[
        "ingest",
        "--source",
        first.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    run(&["resolve"]);
    let fixed = fixed.to_str().unwrap();
    let dry = run(&[
        "reclean",
        "--source",
        "people",
        "--mapping",
        fixed,
        "--dry-run",
    ]);
    assert!(
        dry.contains(
            "2 records examined, 1 clean differently today, 1 would store as new versions"
        ) && dry.contains("fields changed: issues 1, name 1")
            && dry.contains("1 name: \"張三\" → \"张三\""),
        "{dry}"
    );
    assert!(
        dry.contains("1 would now be blocked")
            && dry.contains("2: required column \"姓名\" is empty"),
        "{dry}"
    );
    // A fixed mapping naming a column the stored records lack is refused, and not registered.
    let misspelt = write(
        d,
        "misspelt.toml",
        &MAPPING
            .replace("STEP", "name")
            .replace("\"姓名\"", "\"名字\""),
    );
    let refused = common::tongban()
        .args(["reclean", "--source", "people", "--mapping"])
        .arg(&misspelt)
        .env("TONGBAN_DATABASE", &db)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("lack: 名字") && said.contains("姓名"),
        "{said}"
    );
    let still = run(&["reclean", "--dry-run"]);
    assert!(
        still.contains("people: 2 records examined, 0 clean differently today"),
        "the first mapping stays the source's: {still}"
    );
    let done = run(&["reclean", "--source", "people", "--mapping", fixed]);
    assert!(
        done.contains("1 stored as new versions in batch 2"),
        "{done}"
    );
    // Incremental resolution cannot replace a re-cleaned record's earlier mention: it asks for
    // a full run, which then resolves as usual.
    let refused = common::tongban()
        .args(["resolve", "--incremental"])
        .env("TONGBAN_DATABASE", &db)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("re-cleaned (batch 2)"),
        "{said}"
    );
    run(&["resolve"]);
    run(&["resolve", "--incremental"]);
    // The fixed mapping is now the source's: re-cleaning every source finds nothing left.
    let again = run(&["reclean"]);
    assert!(
        again.contains("people: 2 records examined, 0 clean differently today"),
        "{again}"
    );
    // The re-clean is an administrative change, so it is in the audit log.
    let log = run(&["audit", "export"]);
    assert!(log.contains("intake.reclean"), "{log}");
}
