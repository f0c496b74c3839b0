//! End-to-end tests of intake: bad input gets a clear error and loses nothing, killing an ingest
//! at any moment and running it again stores every record exactly once, and every synthetic
//! export ingests on both store backends with a scorecard that shows the generator's noise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use tongban_intake::mapping::Mapping;
use tongban_intake::pipeline::ingest_file;
use tongban_store::{BatchStatus, QuarantineStatus};
use tongban_synth::exports::Sink;
use tongban_synth::{SynthConfig, generate};

fn tongban(args: &[&str], db: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tongban"))
        .args(args)
        .env("TONGBAN_DATABASE", db)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const MAPPING: &str = r#"
[source]
id = "people"
department = "测试局"
format = "csv"
encoding = "ENC"
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

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn mapping(dir: &Path, encoding: &str, step: &str, format: &str) -> PathBuf {
    let m = MAPPING
        .replace("ENC", encoding)
        .replace("STEP", step)
        .replace("\"csv\"", &format!("\"{format}\""));
    write(
        dir,
        &format!("m-{encoding}-{step}-{format}.toml"),
        m.as_bytes(),
    )
}

#[test]
fn bad_input_gets_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = format!("sqlite://{}", d.join("t.db").display());
    let utf8 = mapping(d, "utf-8", "name", "csv");
    let good = "编号,身份证,姓名\n1,11010519491231002X,张三\n";
    let ingest = |m: &Path, f: &Path| {
        tongban(
            &[
                "ingest",
                "--source",
                m.to_str().unwrap(),
                f.to_str().unwrap(),
            ],
            &db,
        )
    };

    // A command that reads the store, pointed at a mistyped path, says so and creates nothing.
    let typo = d.join("tpyo").join("t.db");
    let o = tongban(&["quality"], &format!("sqlite://{}", typo.display()));
    assert!(
        !o.status.success() && text(&o).contains("there is no store at"),
        "{}",
        text(&o)
    );
    assert!(!d.join("tpyo").exists());

    // A GBK file declared UTF-8: refused before anything is stored, with the line and a hint.
    let (gbk, _, _) = encoding_rs::GBK.encode(good);
    let f = write(d, "gbk.csv", &gbk);
    let o = ingest(&utf8, &f);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // The header is already Chinese, so line 1 is where it shows.
    assert!(
        text(&o).contains("line 1") && text(&o).contains("gbk"),
        "{}",
        text(&o)
    );

    // An unknown cleaning step: the mapping's file and line.
    let bad_step = mapping(d, "utf-8", "nmae", "csv");
    let o = ingest(&bad_step, &write(d, "ok.csv", good.as_bytes()));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("line 22") && text(&o).contains("nmae"),
        "{}",
        text(&o)
    );

    // A mapping naming a column the file lacks.
    let o = ingest(
        &utf8,
        &write(d, "cols.csv", "编号,证件号,姓名\n1,x,y\n".as_bytes()),
    );
    assert!(
        text(&o).contains("\"身份证\"") && text(&o).contains("证件号"),
        "{}",
        text(&o)
    );

    // An empty file.
    let o = ingest(&utf8, &write(d, "empty.csv", b""));
    assert!(text(&o).contains("is empty"), "{}", text(&o));

    // A directory where a file was meant.
    let o = ingest(&utf8, d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot read"), "{}", text(&o));

    // Nothing was stored by any of those, not even the source: a refused file neither
    // registers its source nor replaces a registered source's mapping.
    let o = tongban(&["source", "list"], &db);
    assert!(text(&o).contains("no sources registered"), "{}", text(&o));
    let o = tongban(&["quality", "--json"], &db);
    let cards: serde_json::Value =
        serde_json::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap_or_default();
    assert!(
        cards
            .as_array()
            .is_none_or(|c| c.iter().all(|c| c["current"] == 0)),
        "{cards}"
    );

    // A BOM, a ragged row, a bad id and a duplicate key: the good records are stored, the others
    // quarantined with their reasons.
    let messy = "\u{feff}编号,身份证,姓名\n1,11010519491231002X,张三\n2,110105194912310021,李四\n3,11010519491231002X,王五,多余\n1,11010519491231002X,张三丰\n4,11010519491231002X,赵六\n";
    let o = ingest(&utf8, &write(d, "messy.csv", messy.as_bytes()));
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("5 records read") && out.contains("2 new") && out.contains("3 quarantined"),
        "{out}"
    );
    assert!(out.contains("byte-order mark"), "{out}");
    // A mapping that renames a column, refused for a file without it, leaves the registered
    // mapping as it was: the scorecard still names the column the records were read by.
    let renamed = write(
        d,
        "renamed.toml",
        std::fs::read_to_string(&utf8)
            .unwrap()
            .replace("column = \"姓名\"", "column = \"名字\"")
            .as_bytes(),
    );
    let o = ingest(&renamed, &write(d, "again.csv", good.as_bytes()));
    assert!(text(&o).contains("\"名字\""), "{}", text(&o));
    let card = text(&tongban(&["quality", "--source", "people"], &db));
    assert!(card.contains("姓名") && !card.contains("名字"), "{card}");
    let list = text(&tongban(&["quarantine", "list"], &db));
    assert!(
        list.contains("line 3") && list.contains("check character"),
        "{list}"
    );
    assert!(
        list.contains("line 4") && list.contains("row has 4 fields but the header has 3"),
        "{list}"
    );
    assert!(
        list.contains("line 5") && list.contains("already delivered in this batch at line 2"),
        "{list}"
    );
    // A cut list says so; JSON gives the reasons as a list; an unknown source is an error.
    let cut = text(&tongban(&["quarantine", "list", "--limit", "1"], &db));
    assert!(cut.contains("(the first 1; --limit shows more)"), "{cut}");
    let listed: serde_json::Value =
        serde_json::from_slice(&tongban(&["quarantine", "list", "--json"], &db).stdout).unwrap();
    assert!(listed[0]["reasons"][0]["code"].is_string(), "{listed}");
    let held_at = listed[0]["created_at"].as_str().unwrap_or_default();
    assert!(
        held_at.ends_with("+08:00") && chrono::DateTime::parse_from_rfc3339(held_at).is_ok(),
        "{listed}"
    );
    assert!(listed[0]["resolved_at"].is_null(), "{listed}");
    let o = tongban(&["quarantine", "list", "--source", "nope"], &db);
    assert!(!o.status.success() && text(&o).contains("source nope is not registered"));

    // A JSON line that is not an object is quarantined; the others go in.
    let jsonl = mapping(d, "utf-8", "name", "jsonl");
    let f = write(
        d,
        "p.jsonl",
        "{\"编号\":\"7\",\"身份证\":\"11010519491231002X\",\"姓名\":\"钱七\"}\n[1,2]\n".as_bytes(),
    );
    let o = ingest(&jsonl, &f);
    assert!(
        text(&o).contains("1 new") && text(&o).contains("1 quarantined"),
        "{}",
        text(&o)
    );
    let list = text(&tongban(&["quarantine", "list", "--source", "people"], &db));
    assert!(
        list.contains("expected a JSON object, found an array"),
        "{list}"
    );
    // The same file again, as JSON: nothing new, its times as RFC 3339 in China Standard Time.
    let o = tongban(
        &[
            "ingest",
            "--source",
            jsonl.to_str().unwrap(),
            f.to_str().unwrap(),
            "--json",
        ],
        &db,
    );
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(again["counts"]["unchanged"], 1, "{again}");
    for field in ["started_at", "finished_at"] {
        let t = again[field].as_str().unwrap_or_default();
        assert!(
            t.ends_with("+08:00") && chrono::DateTime::parse_from_rfc3339(t).is_ok(),
            "{field}: {again}"
        );
    }

    // The department delivers record 2 again with a valid id: its held entry (the bad id)
    // closes by itself as redelivered; the others stay held until dismissed by id.
    let o = ingest(
        &utf8,
        &write(
            d,
            "fixed.csv",
            "编号,身份证,姓名
2,11010519491231002X,李四
"
            .as_bytes(),
        ),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 held quarantine entries closed as redelivered"),
        "{}",
        text(&o)
    );
    let dismiss = |args: &[&str]| {
        let mut all = vec!["quarantine", "dismiss"];
        all.extend_from_slice(args);
        tongban(&all, &db)
    };
    let o = dismiss(&["--source", "people", "--delivered"]);
    assert!(!o.status.success(), "a reason is required");
    let o = dismiss(&[
        "--source",
        "people",
        "--delivered",
        "--reason",
        "delivered again",
    ]);
    assert!(text(&o).contains("0 dismissed"), "{}", text(&o));
    let list = text(&tongban(&["quarantine", "list"], &db));
    assert!(!list.contains("check character"), "{list}");
    let held: serde_json::Value =
        serde_json::from_slice(&tongban(&["quarantine", "list", "--json"], &db).stdout).unwrap();
    let ids: Vec<String> = held
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{held}");
    let mut args: Vec<&str> = ids.iter().map(String::as_str).collect();
    args.extend(["--reason", "test rows"]);
    assert!(text(&dismiss(&args)).contains("3 dismissed"));
    assert!(text(&tongban(&["quarantine", "list"], &db)).contains("no quarantined records"));
    let card = text(&tongban(&["quality", "--source", "people", "--json"], &db));
    assert!(card.contains("\"quarantined\": 0"), "{card}");
    let cards: serde_json::Value =
        serde_json::from_slice(&tongban(&["quality", "--source", "people", "--json"], &db).stdout)
            .unwrap();
    let last = cards[0]["freshness"]["last_batch_at"]
        .as_str()
        .unwrap_or_default();
    assert!(
        last.ends_with("+08:00") && chrono::DateTime::parse_from_rfc3339(last).is_ok(),
        "{cards}"
    );
    let o = dismiss(&[&ids[0], "--reason", "again"]);
    assert!(text(&o).contains("is dismissed, not held"), "{}", text(&o));
    let log = text(&tongban(&["audit", "export"], &db));
    assert_eq!(log.matches("intake.quarantine.dismiss").count(), 1, "{log}");
}

/// A command closes the store before it exits: SQLite's write-ahead logs are copied into the
/// database files and emptied, so the two files alone (a backup taken between commands) hold
/// every record. Before, the logs outlived the process as large as what it wrote.
#[test]
fn a_command_leaves_its_writes_in_the_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = format!("sqlite://{}", d.join("t.db").display());
    let m = mapping(d, "utf-8", "name", "csv");
    let f = write(
        d,
        "people.csv",
        "编号,身份证,姓名\n1,11010519491231002X,张三\n2,11010519491231002X,李四\n3,11010519491231002X,王五\n"
            .as_bytes(),
    );
    let o = tongban(
        &[
            "ingest",
            "--source",
            m.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
        &db,
    );
    assert!(o.status.success(), "{}", text(&o));
    for log in ["t.db-wal", "t.audit.db-wal"] {
        let len = std::fs::metadata(d.join(log)).map_or(0, |m| m.len());
        assert_eq!(len, 0, "{log} left with {len} bytes");
    }
    let copy = d.join("copy");
    std::fs::create_dir(&copy).unwrap();
    for file in ["t.db", "t.audit.db"] {
        std::fs::copy(d.join(file), copy.join(file)).unwrap();
    }
    let o = tongban(
        &["quality", "--json"],
        &format!("sqlite://{}", copy.join("t.db").display()),
    );
    assert!(o.status.success(), "{}", text(&o));
    let cards: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cards[0]["delivered"], 3, "{cards}");
    assert_eq!(cards[0]["quarantined"], 0, "{cards}");
}

#[test]
fn quarantined_records_are_released_after_the_mapping_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = format!("sqlite://{}", d.join("t.db").display());
    // The department writes sex as a word the mapping's step does not know: the mapping declares
    // 姓名 as an ethnicity by mistake, so every record with a name fails a required field.
    let wrong = MAPPING
        .replace("ENC", "utf-8")
        .replace("clean = \"STEP\"", "clean = \"ethnicity\"\nrequired = true");
    let wrong = write(d, "wrong.toml", wrong.as_bytes());
    let f = write(
        d,
        "p.csv",
        "编号,身份证,姓名\n1,11010519491231002X,张三\n".as_bytes(),
    );
    let o = tongban(
        &[
            "ingest",
            "--source",
            wrong.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
        &db,
    );
    // Nothing could be stored: the snapshot withdraws nothing and says so.
    assert!(!o.status.success());
    assert!(
        text(&o).contains("(1 quarantined); nothing of source people was withdrawn"),
        "{}",
        text(&o)
    );
    let o = tongban(
        &["quarantine", "release", "--all", "--source", "people"],
        &db,
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "still fails with the wrong mapping: {}",
        text(&o)
    );
    let fixed = mapping(d, "utf-8", "name", "csv");
    let o = tongban(
        &[
            "quarantine",
            "release",
            "--all",
            "--source",
            "people",
            "--mapping",
            fixed.to_str().unwrap(),
        ],
        &db,
    );
    assert!(
        o.status.success() && text(&o).contains("1 released, 0 still held"),
        "{}",
        text(&o)
    );
    let q = tongban(&["quality", "--source", "people", "--json"], &db);
    let cards: serde_json::Value =
        serde_json::from_str(&String::from_utf8_lossy(&q.stdout)).unwrap();
    assert_eq!(
        (
            cards[0]["current"].as_u64(),
            cards[0]["quarantined"].as_u64()
        ),
        (Some(1), Some(0)),
        "{cards}"
    );
}

#[test]
fn killing_an_ingest_and_running_it_again_stores_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(
        SynthConfig {
            seed: 4,
            people: 120_000,
            ..SynthConfig::default()
        },
        &d.join("s"),
        &|_, _| {},
    )
    .unwrap();
    let file = d.join("s/police_household.csv");
    let rows = std::fs::read_to_string(&file).unwrap().lines().count() - 1;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut databases = vec![format!("sqlite://{}", d.join("t.db").display())];
    match std::env::var("TONGBAN_TEST_PG_URL") {
        Ok(url) => databases.push(
            rt.block_on(tongban_store::testing::fresh_postgres(&url, "crash"))
                .unwrap(),
        ),
        Err(_) => assert!(
            std::env::var("TONGBAN_REQUIRE_PG").as_deref() != Ok("1"),
            "PostgreSQL required"
        ),
    }
    let args = [
        "ingest",
        "--source",
        "mappings/synth/police_household.toml",
        file.to_str().unwrap(),
    ];
    for db in &databases {
        // Kill it at several moments: before, during and (perhaps) after the first chunks commit.
        for delay_ms in [0u64, 150, 400] {
            let mut child = Command::new(env!("CARGO_BIN_EXE_tongban"))
                .args(args)
                .env("TONGBAN_DATABASE", db)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let o = tongban(&args, db);
        assert!(o.status.success(), "{}", text(&o));
        rt.block_on(async {
            let store = tongban_store::open(db).await.unwrap();
            let (current, superseded, withdrawn) =
                store.record_counts("police_household").await.unwrap();
            assert_eq!(
                (current as usize, superseded, withdrawn),
                (rows, 0, 0),
                "{}",
                store.backend()
            );
            let batches = store.batches(Some("police_household")).await.unwrap();
            assert_eq!(
                batches.last().map(|b| b.status),
                Some(BatchStatus::Complete)
            );
            assert!(
                batches
                    .iter()
                    .rev()
                    .skip(1)
                    .all(|b| b.status != BatchStatus::Running),
                "{batches:?}"
            );
            assert!(
                store
                    .quarantine_list(None, Some(QuarantineStatus::Held), 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_export_ingests_on_both_backends_and_the_scorecard_shows_the_noise() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let summary = generate(
        SynthConfig {
            seed: 6,
            people: 12_000,
            ..SynthConfig::default()
        },
        &d.join("s"),
        &|_, _| {},
    )
    .unwrap();
    for store in common::backends(d, "iall").await {
        for sink in Sink::ALL.iter().filter(|s| s.department().is_some()) {
            let stem = sink.path().split('.').next().unwrap();
            let path = format!("mappings/synth/{stem}.toml");
            let text = std::fs::read_to_string(&path).unwrap();
            let mapping = Arc::new(Mapping::parse(&text, &path).unwrap());
            let file = d.join("s").join(sink.path());
            let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let r = ingest_file(
                store.as_ref(),
                mapping.clone(),
                &text,
                &file,
                bytes.clone(),
                false,
            )
            .await
            .unwrap();
            assert_eq!(
                r.batch.counts.records as u64,
                summary.files[sink.path()],
                "{} on {}",
                sink.path(),
                store.backend()
            );
            assert_eq!(
                bytes.load(std::sync::atomic::Ordering::Relaxed),
                std::fs::metadata(&file).unwrap().len()
            );
            // Re-ingesting changes nothing.
            let again = ingest_file(store.as_ref(), mapping, &text, &file, bytes, false)
                .await
                .unwrap();
            assert_eq!(
                (
                    again.batch.counts.inserted,
                    again.batch.counts.updated,
                    again.batch.withdrawn
                ),
                (0, 0, 0)
            );
        }
        // The grid scorecard shows the generator's id noise.
        let m = Mapping::load(Path::new("mappings/synth/grid_collection.toml")).unwrap();
        let mut b = tongban_intake::quality::ScorecardBuilder::new(m);
        let mut after = None;
        loop {
            let page = store
                .current_records("grid_collection", after.as_deref(), 5000)
                .await
                .unwrap();
            for r in &page {
                b.add_record(
                    &serde_json::from_str(&r.cleaned).unwrap(),
                    &serde_json::from_str::<Vec<_>>(&r.issues).unwrap(),
                );
            }
            match page.last() {
                Some(l) if page.len() == 5000 => after = Some(l.key.clone()),
                _ => break,
            }
        }
        let card = b.finish(None, 0);
        let id = card
            .fields
            .iter()
            .find(|f| f.field == "citizen_id")
            .unwrap();
        let n = SynthConfig::default().noise;
        assert!(
            (id.completeness - (1.0 - n.grid_missing_id)).abs() < 0.02,
            "{} {}",
            store.backend(),
            id.completeness
        );
        assert!(
            (id.validity - (1.0 - n.grid_id_typo)).abs() < 0.012,
            "{} {}",
            store.backend(),
            id.validity
        );
    }
}

#[test]
fn release_and_snapshots_keep_what_the_department_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = format!("sqlite://{}", d.join("t.db").display());
    let m = mapping(d, "utf-8", "name", "csv");
    let ingest = |f: &Path| {
        tongban(
            &[
                "ingest",
                "--source",
                m.to_str().unwrap(),
                f.to_str().unwrap(),
            ],
            &db,
        )
    };
    // Delivery 1: two good records.
    let o = ingest(&write(
        d,
        "s1.csv",
        "编号,身份证,姓名\n1,11010519491231002X,张三\n2,11010519491231002X,李四\n".as_bytes(),
    ));
    assert!(text(&o).contains("2 new"), "{}", text(&o));
    // Delivery 2 (a snapshot): record 2 now has a bad id. It is held, but it was delivered, so
    // record 2 must not be withdrawn.
    let s2 = write(
        d,
        "s2.csv",
        "编号,身份证,姓名\n1,11010519491231002X,张三\n2,110105194912310021,李四\n".as_bytes(),
    );
    let o = ingest(&s2);
    assert!(
        text(&o).contains("1 quarantined") && text(&o).contains("0 withdrawn"),
        "{}",
        text(&o)
    );
    // The same bad row sent again (the next day's snapshot) is held once, and its entry stays
    // held: the record was not delivered readable, although its good version counts as seen.
    let o = ingest(&s2);
    assert!(text(&o).contains("0 withdrawn"), "{}", text(&o));
    assert!(!text(&o).contains("redelivered"), "{}", text(&o));
    let held = |db: &str| -> serde_json::Value {
        serde_json::from_slice(&tongban(&["quarantine", "list", "--json"], db).stdout).unwrap()
    };
    assert_eq!(held(&db).as_array().unwrap().len(), 1, "{}", held(&db));
    let o = tongban(
        &[
            "quarantine",
            "dismiss",
            "--source",
            "people",
            "--delivered",
            "--reason",
            "r",
        ],
        &db,
    );
    assert!(text(&o).contains("0 dismissed"), "{}", text(&o));
    // Delivery 4 sends record 2 readable (as in delivery 1) and a duplicate key: the held entry
    // of record 2 closes by itself as redelivered; the duplicate is held.
    let dup = write(d, "dup.csv", "编号,身份证,姓名\n1,11010519491231002X,张三\n1,11010519491231002X,王五\n2,11010519491231002X,李四\n".as_bytes());
    let o = ingest(&dup);
    assert!(
        text(&o).contains("1 quarantined")
            && text(&o).contains("1 held quarantine entries closed as redelivered"),
        "{}",
        text(&o)
    );
    let all: serde_json::Value =
        serde_json::from_slice(&tongban(&["quarantine", "list", "--all", "--json"], &db).stdout)
            .unwrap();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|e| e["key"] == "2" && e["status"] == "redelivered"),
        "{all}"
    );
    let log = text(&tongban(&["audit", "export"], &db));
    assert!(log.contains("\\\"redelivered\\\":["), "{log}");
    // A duplicate key within one delivery stays held on release unless --replace.
    let o = tongban(
        &["quarantine", "release", "--all", "--source", "people"],
        &db,
    );
    let out = text(&o);
    assert!(
        out.contains("held as a duplicate key") && out.contains("use --replace"),
        "{out}"
    );
    assert_eq!(o.status.code(), Some(1));
    let warn = MAPPING
        .replace("ENC", "utf-8")
        .replace("STEP", "name")
        .replace("required = true\n", "");
    let warn = write(d, "warn.toml", warn.as_bytes());
    let release = |extra: &[&str]| {
        let mut args = vec![
            "quarantine",
            "release",
            "--all",
            "--source",
            "people",
            "--mapping",
            warn.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        tongban(&args, &db)
    };
    let out = text(&release(&[]));
    assert!(
        out.contains("held as a duplicate key") && out.contains("0 released"),
        "{out}"
    );
    let out = text(&release(&["--replace"]));
    assert!(out.contains("1 released, 0 still held"), "{out}");
    // Released records hash as the file does: delivering exactly the released row again
    // changes nothing.
    let s4 = write(
        d,
        "s4.csv",
        "编号,身份证,姓名\n1,11010519491231002X,王五\n".as_bytes(),
    );
    let o = tongban(
        &[
            "ingest",
            "--source",
            warn.to_str().unwrap(),
            s4.to_str().unwrap(),
        ],
        &db,
    );
    assert!(text(&o).contains("1 unchanged"), "{}", text(&o));
    assert!(
        text(&o).contains("0 changed"),
        "re-ingest after release: {}",
        text(&o)
    );
}
