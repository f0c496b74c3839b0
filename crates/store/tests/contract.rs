//! The store's contract, run against every backend: SQLite always, PostgreSQL when
//! `TONGBAN_TEST_PG_URL` names a server (the test script starts a throwaway cluster and sets it;
//! with `TONGBAN_REQUIRE_PG=1`, as in CI, a missing server is a failure, not a skip).

use tongban_store::{
    BatchStatus, IncomingQuarantine, IncomingRecord, QuarantineStatus, RecordStatus, SourceRow,
    Store, StoreError,
};

fn pg_url() -> Option<String> {
    match std::env::var("TONGBAN_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("TONGBAN_REQUIRE_PG").as_deref() != Ok("1"),
                "TONGBAN_REQUIRE_PG=1 but TONGBAN_TEST_PG_URL is not set"
            );
            eprintln!("TONGBAN_TEST_PG_URL not set: PostgreSQL contract not checked in this run");
            None
        }
    }
}

/// A fresh PostgreSQL database named after `name` on the run's cluster, if the run has one.
async fn fresh_pg_url(name: &str) -> Option<String> {
    let url = pg_url()?;
    Some(
        tongban_store::testing::fresh_postgres(&url, name)
            .await
            .unwrap(),
    )
}

/// Every backend the run can reach, each empty, with the source `s` registered.
async fn stores(name: &str) -> (Vec<Box<dyn Store>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut out: Vec<Box<dyn Store>> = Vec::new();
    let path = dir.path().join("t.db");
    out.push(
        tongban_store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap(),
    );
    if let Some(url) = fresh_pg_url(name).await {
        out.push(tongban_store::open(&url).await.unwrap());
    }
    for s in &out {
        s.put_source(&source_s()).await.unwrap();
    }
    (out, dir)
}

/// The source `s` every test's stores have.
fn source_s() -> SourceRow {
    SourceRow {
        id: "s".into(),
        department: "公安局".into(),
        name: "户籍".into(),
        subject: "person".into(),
        snapshot: true,
        update_frequency: Some("daily".into()),
        mapping: "[source]".into(),
        updated_at: 1,
    }
}

fn rec(key: &str, content: &str) -> IncomingRecord {
    IncomingRecord {
        key: key.into(),
        location: format!("line {key}"),
        raw: format!("{{\"k\":\"{key}\",\"v\":\"{content}\"}}"),
        raw_columns: None,
        cleaned: format!("{{\"v\":\"{content}\"}}"),
        issues: "[]".into(),
        hash: blake(content, key),
    }
}

fn blake(content: &str, key: &str) -> Vec<u8> {
    // Any stable hash of the content does for the contract; the intake uses blake3.
    let mut h = 0xcbf29ce484222325u64;
    for b in key.bytes().chain([0]).chain(content.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    h.to_le_bytes().to_vec()
}

#[tokio::test]
async fn versions_are_kept_and_unchanged_records_are_not_rewritten() {
    let (stores, _dir) = stores("versions").await;
    for s in &stores {
        let b1 = s.begin_batch("s", "f.csv").await.unwrap();
        let o = s
            .store_chunk(b1, "s", vec![rec("a", "1"), rec("b", "1")], vec![])
            .await
            .unwrap();
        assert_eq!(
            (o.records, o.inserted, o.updated, o.unchanged),
            (2, 2, 0, 0),
            "{}",
            s.backend()
        );
        s.finish_batch(b1, true).await.unwrap();

        let b2 = s.begin_batch("s", "f.csv").await.unwrap();
        let o = s
            .store_chunk(b2, "s", vec![rec("a", "1"), rec("b", "2")], vec![])
            .await
            .unwrap();
        assert_eq!(
            (o.inserted, o.updated, o.unchanged),
            (0, 1, 1),
            "{}",
            s.backend()
        );
        let done = s.finish_batch(b2, true).await.unwrap();
        assert_eq!(
            (done.status, done.withdrawn, done.counts.updated),
            (BatchStatus::Complete, 0, 1)
        );

        let h = s.record_history("s", "b").await.unwrap();
        assert_eq!(
            h.iter().map(|v| (v.version, v.status)).collect::<Vec<_>>(),
            [(1, RecordStatus::Superseded), (2, RecordStatus::Current)]
        );
        assert_eq!(h[1].cleaned, "{\"v\":\"2\"}");
        assert_eq!((h[0].batch_id, h[1].batch_id), (b1, b2));
        let a = s.record_history("s", "a").await.unwrap();
        assert_eq!(
            (a.len(), a[0].batch_id, a[0].seen_batch),
            (1, b1, b2),
            "{}",
            s.backend()
        );
        assert_eq!(s.record_counts("s").await.unwrap(), (2, 1, 0));

        // Every byte of a record comes back as it went in (PostgreSQL loads records by binary
        // COPY), and a chunk of a source that was never registered stores nothing.
        let b3 = s.begin_batch("s", "f.csv").await.unwrap();
        let odd = IncomingRecord {
            key: "c\t\n\\ 张".into(),
            location: "line 3\r\n".into(),
            raw: "{\"v\":\"tab\tnewline\nbackslash\\\\ \\\\N 🀄\"}".into(),
            raw_columns: None,
            cleaned: String::new(),
            issues: "[]".into(),
            hash: vec![0, 0xff, b'\\', b'\n'],
        };
        s.store_chunk(b3, "s", vec![odd.clone()], vec![])
            .await
            .unwrap();
        let back = &s.record_history("s", &odd.key).await.unwrap()[0];
        assert_eq!(
            (
                &back.key,
                &back.location,
                &back.raw,
                &back.cleaned,
                &back.content_hash
            ),
            (&odd.key, &odd.location, &odd.raw, &odd.cleaned, &odd.hash),
            "{}",
            s.backend()
        );
        assert_eq!((back.version, back.withdrawn_at), (1, None));
        let unknown = s
            .store_chunk(b3, "unregistered", vec![rec("z", "1")], vec![])
            .await;
        assert!(unknown.is_err(), "{}", s.backend());
        assert!(
            s.record_history("unregistered", "z")
                .await
                .unwrap()
                .is_empty(),
            "{}",
            s.backend()
        );
    }
}

#[tokio::test]
async fn duplicate_keys_within_a_batch_are_quarantined_once() {
    let (stores, _dir) = stores("duplicates").await;
    for s in &stores {
        let b = s.begin_batch("s", "f.csv").await.unwrap();
        let o = s
            .store_chunk(b, "s", vec![rec("a", "1"), rec("a", "2")], vec![])
            .await
            .unwrap();
        assert_eq!((o.inserted, o.quarantined), (1, 1), "{}", s.backend());
        // The same key again in a later chunk of the same batch is a duplicate too.
        let o = s
            .store_chunk(b, "s", vec![rec("a", "3")], vec![])
            .await
            .unwrap();
        assert_eq!(
            (o.inserted, o.updated, o.quarantined),
            (0, 0, 1),
            "{}",
            s.backend()
        );
        let q = s
            .quarantine_list(Some("s"), Some(QuarantineStatus::Held), 10)
            .await
            .unwrap();
        assert_eq!(q.len(), 2);
        assert!(
            q[0].reasons.contains("record_key.duplicate") && q[0].reasons.contains("line a"),
            "{}",
            q[0].reasons
        );
        assert_eq!(s.record_history("s", "a").await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn snapshots_withdraw_missing_records_and_never_delete() {
    let (stores, _dir) = stores("snapshots").await;
    for s in &stores {
        let b1 = s.begin_batch("s", "f.csv").await.unwrap();
        s.store_chunk(
            b1,
            "s",
            vec![rec("a", "1"), rec("b", "1"), rec("c", "1")],
            vec![],
        )
        .await
        .unwrap();
        s.finish_batch(b1, true).await.unwrap();
        let b2 = s.begin_batch("s", "f.csv").await.unwrap();
        s.store_chunk(b2, "s", vec![rec("a", "1"), rec("b", "1")], vec![])
            .await
            .unwrap();
        assert_eq!(
            s.finish_batch(b2, true).await.unwrap().withdrawn,
            1,
            "{}",
            s.backend()
        );
        assert_eq!(s.record_counts("s").await.unwrap(), (2, 0, 1));
        let c = s.record_history("s", "c").await.unwrap();
        assert_eq!(c[0].status, RecordStatus::Withdrawn);
        assert!(c[0].withdrawn_at.is_some());
        // It comes back in a later snapshot as a new current version; the withdrawal stays in
        // the history.
        let b3 = s.begin_batch("s", "f.csv").await.unwrap();
        let o = s
            .store_chunk(
                b3,
                "s",
                vec![rec("a", "1"), rec("b", "1"), rec("c", "1")],
                vec![],
            )
            .await
            .unwrap();
        assert_eq!((o.updated, o.unchanged), (1, 2));
        s.finish_batch(b3, true).await.unwrap();
        let c = s.record_history("s", "c").await.unwrap();
        assert_eq!(
            c.iter().map(|v| v.status).collect::<Vec<_>>(),
            [RecordStatus::Superseded, RecordStatus::Current]
        );
        assert!(c[0].withdrawn_at.is_some());
        // A delta source (not a snapshot) withdraws nothing.
        let b4 = s.begin_batch("s", "delta.csv").await.unwrap();
        s.store_chunk(b4, "s", vec![rec("d", "1")], vec![])
            .await
            .unwrap();
        assert_eq!(s.finish_batch(b4, false).await.unwrap().withdrawn, 0);
        assert_eq!(s.record_counts("s").await.unwrap().0, 4);
    }
}

#[tokio::test]
async fn quarantine_holds_once_and_releases() {
    let (stores, _dir) = stores("quarantine").await;
    let bad = IncomingQuarantine {
        key: Some("x".into()),
        location: "line 7".into(),
        raw: "{\"身份证\":\"110105194912310021\"}".into(),
        raw_hash: vec![1, 2, 3],
        reasons: "[{\"code\":\"citizen_id.bad_check_char\"}]".into(),
    };
    for s in &stores {
        let b1 = s.begin_batch("s", "f.csv").await.unwrap();
        assert_eq!(
            s.store_chunk(b1, "s", vec![], vec![bad.clone()])
                .await
                .unwrap()
                .quarantined,
            1
        );
        // A re-run after a crash delivers it again: still held once.
        let b2 = s.begin_batch("s", "f.csv").await.unwrap();
        assert_eq!(
            s.store_chunk(b2, "s", vec![], vec![bad.clone()])
                .await
                .unwrap()
                .quarantined,
            0
        );
        let batches = s.batches(Some("s")).await.unwrap();
        assert_eq!(
            batches.iter().find(|b| b.id == b1).map(|b| b.status),
            Some(BatchStatus::Abandoned)
        );
        let held = s
            .quarantine_list(None, Some(QuarantineStatus::Held), 10)
            .await
            .unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(
            (held[0].location.as_str(), held[0].key.as_deref()),
            ("line 7", Some("x"))
        );
        // The entry says that the row came again in b2 (the intake decides by it whether a
        // later delivery of the record was readable).
        assert_eq!((held[0].batch_id, held[0].last_held_batch), (b1, b2));
        s.release_quarantined(held[0].id).await.unwrap();
        assert_eq!(
            s.quarantine_entry(held[0].id)
                .await
                .unwrap()
                .map(|e| e.status),
            Some(QuarantineStatus::Released)
        );
        assert!(matches!(
            s.release_quarantined(held[0].id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(
            s.quarantine_list(Some("s"), Some(QuarantineStatus::Held), 10)
                .await
                .unwrap()
                .is_empty()
        );
        // A new delivery of the bad row is held again, and can be dismissed once: the entry
        // stays, as dismissed.
        let b3 = s.begin_batch("s", "f.csv").await.unwrap();
        s.store_chunk(b3, "s", vec![], vec![bad.clone()])
            .await
            .unwrap();
        let held = s
            .quarantine_list(None, Some(QuarantineStatus::Held), 10)
            .await
            .unwrap();
        assert_eq!(held.len(), 1);
        s.dismiss_quarantined(held[0].id).await.unwrap();
        assert_eq!(
            s.quarantine_entry(held[0].id)
                .await
                .unwrap()
                .map(|e| e.status),
            Some(QuarantineStatus::Dismissed)
        );
        assert!(matches!(
            s.dismiss_quarantined(held[0].id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.release_quarantined(held[0].id).await,
            Err(StoreError::NotFound { .. })
        ));
        // Held once more, in a batch of its own: a fresh entry whose last batch is its own,
        // closed as redelivered once.
        let b4 = s.begin_batch("s", "f.csv").await.unwrap();
        s.store_chunk(b4, "s", vec![], vec![bad.clone()])
            .await
            .unwrap();
        let held = s
            .quarantine_list(None, Some(QuarantineStatus::Held), 10)
            .await
            .unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!((held[0].batch_id, held[0].last_held_batch), (b4, b4));
        s.mark_redelivered(held[0].id).await.unwrap();
        assert_eq!(
            s.quarantine_entry(held[0].id)
                .await
                .unwrap()
                .map(|e| e.status),
            Some(QuarantineStatus::Redelivered)
        );
        assert!(matches!(
            s.mark_redelivered(held[0].id).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}

#[tokio::test]
async fn held_entries_come_with_their_keys_last_delivery() {
    let (stores, _dir) = stores("held_deliveries").await;
    let held_row = |key: Option<&str>, line: u32| IncomingQuarantine {
        key: key.map(str::to_string),
        location: format!("line {line}"),
        raw: format!("{{\"line\":{line}}}"),
        raw_hash: vec![line as u8],
        reasons: "[]".into(),
    };
    for s in &stores {
        // Batch 1 stores a and b and holds a bad row of each and one of c; batch 2 holds a row
        // without a key; batch 3 delivers b again unchanged (a sighting, not a new version)
        // and stores c.
        let b1 = s.begin_batch("s", "f.csv").await.unwrap();
        s.store_chunk(
            b1,
            "s",
            vec![rec("a", "1"), rec("b", "1")],
            vec![
                held_row(Some("a"), 4),
                held_row(Some("b"), 5),
                held_row(Some("c"), 7),
            ],
        )
        .await
        .unwrap();
        s.finish_batch(b1, false).await.unwrap();
        let b2 = s.begin_batch("s", "f.csv").await.unwrap();
        s.store_chunk(b2, "s", vec![], vec![held_row(None, 6)])
            .await
            .unwrap();
        s.finish_batch(b2, false).await.unwrap();
        let b3 = s.begin_batch("s", "f.csv").await.unwrap();
        s.store_chunk(b3, "s", vec![rec("b", "1"), rec("c", "1")], vec![])
            .await
            .unwrap();
        s.finish_batch(b3, false).await.unwrap();

        let summary = |v: Vec<(tongban_store::QuarantineEntry, Option<i64>)>| {
            v.into_iter()
                .map(|(e, d)| (e.key, e.location, d))
                .collect::<Vec<_>>()
        };
        let all = summary(s.held_with_deliveries("s", None).await.unwrap());
        assert_eq!(
            all,
            vec![
                (Some("a".to_string()), "line 4".to_string(), Some(b1)),
                (Some("b".to_string()), "line 5".to_string(), Some(b3)),
                (Some("c".to_string()), "line 7".to_string(), Some(b3)),
                (None, "line 6".to_string(), None),
            ]
        );
        // Batch 3 delivered b and c; batch 2 delivered none.
        assert_eq!(
            summary(s.held_with_deliveries("s", Some(b3)).await.unwrap()),
            vec![
                (Some("b".to_string()), "line 5".to_string(), Some(b3)),
                (Some("c".to_string()), "line 7".to_string(), Some(b3)),
            ]
        );
        assert!(
            s.held_with_deliveries("s", Some(b2))
                .await
                .unwrap()
                .is_empty()
        );
        // A closed entry is no longer held; another source holds nothing.
        let closed = s.held_with_deliveries("s", Some(b3)).await.unwrap()[0].0.id;
        s.mark_redelivered(closed).await.unwrap();
        assert_eq!(s.held_with_deliveries("s", None).await.unwrap().len(), 3);
        // A key of several versions: batch 4 stores a changed a (its first version superseded,
        // last seen in batch 1), batch 5 delivers it again unchanged (a sighting of the new
        // version). Its last delivery is the newest of them, whichever version it touched.
        for content in ["2", "2"] {
            let b = s.begin_batch("s", "f.csv").await.unwrap();
            s.store_chunk(b, "s", vec![rec("a", content)], vec![])
                .await
                .unwrap();
            s.finish_batch(b, false).await.unwrap();
            assert_eq!(
                summary(s.held_with_deliveries("s", Some(b)).await.unwrap()),
                vec![(Some("a".to_string()), "line 4".to_string(), Some(b))]
            );
        }
        assert_eq!(s.record_history("s", "a").await.unwrap().len(), 2);
        assert!(
            s.held_with_deliveries("other", None)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn current_records_page_in_key_order_and_sources_round_trip() {
    let (stores, _dir) = stores("paging").await;
    for s in &stores {
        assert_eq!(s.last_record_id().await.unwrap(), 0, "an empty store");
        let b = s.begin_batch("s", "f.csv").await.unwrap();
        let recs: Vec<_> = (0..25).map(|i| rec(&format!("k{i:02}"), "v")).collect();
        s.store_chunk(b, "s", recs.clone(), vec![]).await.unwrap();
        let every = s.all_current_cleaned(0, 100).await.unwrap();
        assert_eq!(every.len(), 25);
        assert_eq!(
            s.last_record_id().await.unwrap(),
            every.iter().map(|r| r.id).max().unwrap(),
            "the newest row"
        );
        let first = s.current_records("s", None, 10).await.unwrap();
        let next = s
            .current_records("s", first.last().map(|r| r.key.as_str()), 10)
            .await
            .unwrap();
        assert_eq!(first[0].key, "k00");
        assert_eq!(next[0].key, "k10");
        assert_eq!(
            s.current_records("s", Some("k19"), 10).await.unwrap().len(),
            5
        );
        let src = s.source("s").await.unwrap().unwrap();
        assert!(src.snapshot && src.department == "公安局");
        assert!(s.source("nope").await.unwrap().is_none());
        let err = s.finish_batch(9_999, true).await.unwrap_err();
        assert!(err.to_string().contains("9999"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_of_one_source_do_not_collide() {
    let (stores, _dir) = stores("concurrent").await;
    for s in stores {
        let s: std::sync::Arc<dyn Store> = std::sync::Arc::from(s);
        let recs: Vec<_> = (0..300).map(|i| rec(&format!("k{i:03}"), "v")).collect();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (s, recs) = (s.clone(), recs.clone());
            tasks.push(tokio::spawn(async move {
                let b = s.begin_batch("s", "push").await?;
                let o = s.store_chunk(b, "s", recs.clone(), vec![]).await?;
                // Each is a full snapshot: none may withdraw what the others delivered.
                let done = s.finish_batch(b, true).await?;
                assert_eq!(done.withdrawn, 0);
                Ok::<_, StoreError>(o)
            }));
        }
        let mut inserted = 0;
        for t in tasks {
            let o = t
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e:#?}", s.backend()));
            inserted += o.inserted;
            assert_eq!(o.inserted + o.unchanged, 300);
        }
        assert_eq!(inserted, 300, "{}", s.backend());
        assert_eq!(s.record_counts("s").await.unwrap(), (300, 0, 0));
    }
}

#[tokio::test]
async fn resolution_results_replace_as_a_whole_and_page_in_order() {
    let (stores, _dir) = stores("contract_resolution").await;
    for store in &stores {
        let link = |s: &str, k: &str, r: &str, e: &str| tongban_store::EntityLink {
            source_id: s.into(),
            record_key: k.into(),
            role: r.into(),
            entity_key: e.into(),
        };
        let first = vec![
            link("a", "1", "subject", "P1"),
            link("a", "1", "mother", "P2"),
            link("b", "9", "subject", "P1"),
        ];
        let golden = vec![tongban_store::GoldenRecord {
            entity_key: "P1".into(),
            record: r#"{"name":"张三"}"#.into(),
        }];
        let run = store
            .replace_resolution(
                "person",
                1,
                "{}",
                &tongban_store::EntityLink::all_borrowed(&first),
                &golden,
            )
            .await
            .unwrap();
        let latest = store.latest_resolution("person").await.unwrap().unwrap();
        assert_eq!((latest.id, latest.mentions, latest.entities), (run, 3, 2));
        assert_eq!(
            store.entity_of("person", "a", "1", "mother").await.unwrap(),
            Some("P2".into())
        );
        let of_p1 = store.links_of_entity("person", "P1").await.unwrap();
        assert_eq!(of_p1.len(), 2);
        // Paging: two at a time, in (source, key, role) order.
        let page1 = store.entity_links("person", None, 2).await.unwrap();
        assert_eq!(page1, vec![first[1].clone(), first[0].clone()]);
        let last = &page1[1];
        let page2 = store
            .entity_links(
                "person",
                Some((&last.source_id, &last.record_key, &last.role)),
                2,
            )
            .await
            .unwrap();
        assert_eq!(page2, vec![first[2].clone()]);
        assert_eq!(
            store
                .golden_record("person", "P1")
                .await
                .unwrap()
                .unwrap()
                .record,
            r#"{"name":"张三"}"#
        );
        // A new run replaces the kind's links and golden records entirely; other kinds stay.
        store
            .replace_resolution(
                "room",
                1,
                "{}",
                &tongban_store::EntityLink::all_borrowed(&[link("h", "7", "subject", "R1")]),
                &[],
            )
            .await
            .unwrap();
        store
            .replace_resolution(
                "person",
                2,
                "{}",
                &tongban_store::EntityLink::all_borrowed(&[link("a", "1", "subject", "P9")]),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            store.entity_links("person", None, 10).await.unwrap().len(),
            1
        );
        assert!(store.golden_record("person", "P1").await.unwrap().is_none());
        assert_eq!(store.entity_links("room", None, 10).await.unwrap().len(), 1);
    }
}

/// A run hands its person library over before the golden records are built: the write puts
/// the links in and takes the records part by part as they come; if the last never comes,
/// nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_records_may_follow_the_links_and_if_they_never_come_nothing_changes() {
    use tongban_store::{EntityLink, GoldenPart, GoldenRecord, GoldenRecords, SliceRows};
    let (stores, _dir) = stores("contract_golden_later").await;
    let link = |k: &str, e: &str| EntityLink {
        source_id: "a".into(),
        record_key: k.into(),
        role: "subject".into(),
        entity_key: e.into(),
    };
    let golden = |key: &str, name: &str| GoldenRecord {
        entity_key: key.into(),
        record: format!(r#"{{"name":{{"value":"{name}"}}}}"#),
    };
    for store in &stores {
        let first = vec![link("1", "P1"), link("2", "P2"), link("3", "P3")];
        // Room for one part only: the builder waits for the write to take each.
        let (built, later) = std::sync::mpsc::sync_channel(1);
        // Sent from another thread while the write is under way, in parts and not in key order.
        let builder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let parts = [
                vec![golden("P3", "王五"), golden("P1", "张三")],
                Vec::new(),
                vec![golden("P2", "李四")],
            ];
            for part in parts {
                built.send(GoldenPart::Records(part)).unwrap();
            }
            built.send(GoldenPart::End).unwrap();
        });
        let run = store
            .replace_resolution_with(
                "person",
                1,
                "{}",
                &SliceRows(&EntityLink::all_borrowed(&first)),
                GoldenRecords::Later(later),
            )
            .await
            .unwrap();
        builder.join().unwrap();
        let latest = store.latest_resolution("person").await.unwrap().unwrap();
        assert_eq!((latest.id, latest.mentions, latest.entities), (run, 3, 3));
        for (key, name) in [("P1", "张三"), ("P2", "李四"), ("P3", "王五")] {
            let record = store.golden_record("person", key).await.unwrap().unwrap();
            assert!(record.record.contains(name), "{key}: {}", record.record);
        }

        // The build that owed the records stopped after sending a part: its sender is gone
        // before the end.
        let (built, later) = std::sync::mpsc::channel();
        built
            .send(GoldenPart::Records(vec![golden("P9", "赵六")]))
            .unwrap();
        drop(built);
        let failed = store
            .replace_resolution_with(
                "person",
                2,
                "{}",
                &SliceRows(&EntityLink::all_borrowed(&[link("9", "P9")])),
                GoldenRecords::Later(later),
            )
            .await;
        assert!(
            matches!(failed, Err(StoreError::GoldenNeverCame("person"))),
            "{failed:?}"
        );
        let latest = store.latest_resolution("person").await.unwrap().unwrap();
        assert_eq!(latest.id, run, "the failed run left no trace");
        assert_eq!(store.entity_links("person", None, 10).await.unwrap(), first);
        assert!(store.golden_record("person", "P1").await.unwrap().is_some());
        assert!(store.golden_record("person", "P9").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn relations_replace_as_a_whole_and_are_found_from_either_end() {
    let (stores, _dir) = stores("contract_relations").await;
    for store in &stores {
        let rel = |f: &str, r: &str, t: &str| tongban_store::Relation {
            from_key: f.into(),
            relation: r.into(),
            to_key: t.into(),
            source_id: "s".into(),
            record_key: "1".into(),
        };
        store
            .replace_relations(&tongban_store::Relation::all_borrowed(&[
                rel("P1", "mother", "P2"),
                rel("P1", "lives_in", "R1"),
                rel("P1", "mother", "P2"),
            ]))
            .await
            .unwrap();
        assert_eq!(
            store.relations_of("P1").await.unwrap().len(),
            2,
            "duplicates are kept once"
        );
        assert_eq!(
            store.relations_of("R1").await.unwrap(),
            vec![rel("P1", "lives_in", "R1")]
        );
        // From one end only, in the same order.
        assert_eq!(
            store.relations_from("P1").await.unwrap(),
            store.relations_of("P1").await.unwrap()
        );
        assert!(store.relations_from("R1").await.unwrap().is_empty());
        assert!(store.relations_from("P2").await.unwrap().is_empty());
        // Read with the golden record, the same answers: a record with relations, a record
        // without, relations without a record, and neither.
        let golden = |key: &str| tongban_store::GoldenRecord {
            entity_key: key.into(),
            record: format!("{{\"key\":\"{key}\",\"fields\":{{}}}}"),
        };
        store
            .replace_resolution("person", 1, "{}", &[], &[golden("P1"), golden("P2")])
            .await
            .unwrap();
        for key in ["P1", "P2", "R1", "P9"] {
            let kind = if key.starts_with('R') {
                "room"
            } else {
                "person"
            };
            assert_eq!(
                store.golden_with_relations_from(kind, key).await.unwrap(),
                (
                    store.golden_record(kind, key).await.unwrap(),
                    store.relations_from(key).await.unwrap()
                ),
                "{key} on {}",
                store.backend()
            );
        }
        assert_eq!(
            store
                .golden_with_relations_from("person", "P1")
                .await
                .unwrap(),
            (
                Some(golden("P1")),
                vec![rel("P1", "lives_in", "R1"), rel("P1", "mother", "P2")]
            )
        );
        assert!(matches!(
            store.golden_with_relations_from("citizen", "P1").await,
            Err(tongban_store::StoreError::UnknownKind(_))
        ));
        store
            .replace_relations(&tongban_store::Relation::all_borrowed(&[rel(
                "P3", "father", "P2",
            )]))
            .await
            .unwrap();
        assert!(store.relations_of("P1").await.unwrap().is_empty());
        assert_eq!(store.relations_of("P2").await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_room_lies_in_its_building_under_one_record() {
    let (stores, _dir) = stores("contract_stated_once").await;
    for store in &stores {
        let rel = |f: &str, r: &str, t: &str, s: &str, k: &str| tongban_store::Relation {
            from_key: f.into(),
            relation: r.into(),
            to_key: t.into(),
            source_id: s.into(),
            record_key: k.into(),
        };
        let building_of = |key: &'static str| async move {
            store
                .relations_from(key)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.relation == "in_building")
                .map(|r| {
                    format!(
                        "{}>{}:{}:{}",
                        r.from_key, r.to_key, r.source_id, r.record_key
                    )
                })
                .collect::<Vec<_>>()
        };
        // A whole run: three records place R1 in B1, and each says P1 lives there.
        store
            .replace_relations(&tongban_store::Relation::all_borrowed(&[
                rel("R1", "in_building", "B1", "s", "7"),
                rel("R1", "in_building", "B1", "b", "9"),
                rel("R1", "in_building", "B1", "s", "10"),
                rel("P1", "lives_in", "R1", "s", "7"),
                rel("P1", "lives_in", "R1", "b", "9"),
            ]))
            .await
            .unwrap();
        assert_eq!(
            building_of("R1").await,
            ["R1>B1:b:9"],
            "{}",
            store.backend()
        );
        assert_eq!(store.relations_from("P1").await.unwrap().len(), 2);
        // Records resolved one at a time: a later one changes nothing, a lesser one takes over.
        let once = |relations: Vec<tongban_store::Relation>| async move {
            store.apply_library_changes(&[], &relations).await.unwrap();
        };
        once(vec![rel("R1", "in_building", "B1", "s", "0")]).await;
        assert_eq!(building_of("R1").await, ["R1>B1:b:9"]);
        // Bytewise, as Rust orders them: "B" before "a" (PostgreSQL compares with COLLATE "C",
        // so that a database in another locale agrees; this cluster's C.UTF-8 does anyway).
        once(vec![rel("R1", "in_building", "B1", "a", "1")]).await;
        once(vec![rel("R1", "in_building", "B1", "B", "1")]).await;
        assert_eq!(building_of("R1").await, ["R1>B1:B:1"]);
        // Two rooms found to be one keep the least of both; so do two buildings found one.
        once(vec![rel("R2", "in_building", "B1", "A", "5")]).await;
        once(vec![rel("R3", "in_building", "B2", "A", "1")]).await;
        once(vec![rel("R3", "in_building", "B1", "A", "3")]).await;
        let renamed = |kind: &str, old: &str, new: &str| tongban_store::LibraryChanges {
            kind: kind.into(),
            renamed: vec![(old.into(), new.into())],
            ..Default::default()
        };
        store
            .apply_library_changes(&[renamed("room", "R2", "R1")], &[])
            .await
            .unwrap();
        assert_eq!(building_of("R1").await, ["R1>B1:A:5"]);
        store
            .apply_library_changes(&[renamed("building", "B2", "B1")], &[])
            .await
            .unwrap();
        assert_eq!(building_of("R3").await, ["R3>B1:A:1"]);
        assert_eq!(building_of("R1").await, ["R1>B1:A:5"]);
    }
}

/// Runs `sql` on the main file of the store at `url` (the database, on PostgreSQL), behind the
/// store's back.
async fn on_main_file(url: &str, sql: &str) {
    match url.strip_prefix("sqlite://") {
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
        None => behind_the_back(url, sql).await,
    }
}

#[tokio::test]
async fn a_store_from_before_keeps_one_citation_of_a_rooms_building() {
    let (stores, _dir) = stores_with_urls("contract_stated_once_migration").await;
    for (url, store) in &stores {
        // As a run before the migration left them: a row per record naming the room.
        on_main_file(
            url,
            "INSERT INTO relations (from_key, relation, to_key, source_id, record_key) VALUES \
             ('R1', 'in_building', 'B1', 'b', '9'), ('R1', 'in_building', 'B1', 'B', '10'), \
             ('R1', 'in_building', 'B1', 'B', '2'), ('R2', 'in_building', 'B1', 'x', '1'), \
             ('P1', 'lives_in', 'R1', 'b', '9'), ('P1', 'lives_in', 'R1', 'B', '2')",
        )
        .await;
        let migration = if url.starts_with("sqlite://") {
            include_str!("../migrations/sqlite/0015_in_building_once.sql")
        } else {
            include_str!("../migrations/postgres/0018_in_building_once.sql")
        };
        on_main_file(url, migration).await;
        let cited = |relations: Vec<tongban_store::Relation>| -> Vec<String> {
            relations
                .into_iter()
                .map(|r| format!("{}:{}", r.source_id, r.record_key))
                .collect()
        };
        // "10" sorts before "2" bytewise.
        assert_eq!(cited(store.relations_from("R1").await.unwrap()), ["B:10"]);
        assert_eq!(cited(store.relations_from("R2").await.unwrap()), ["x:1"]);
        assert_eq!(
            cited(store.relations_from("P1").await.unwrap()).len(),
            2,
            "other relations keep every record"
        );
    }
}

#[tokio::test]
async fn incremental_changes_upsert_rename_and_are_idempotent() {
    let (stores, _dir) = stores("contract_incremental").await;
    for store in &stores {
        let link = |s: &str, k: &str, r: &str, e: &str| tongban_store::EntityLink {
            source_id: s.into(),
            record_key: k.into(),
            role: r.into(),
            entity_key: e.into(),
        };
        let golden = |e: &str, r: &str| tongban_store::GoldenRecord {
            entity_key: e.into(),
            record: r.into(),
        };
        let rel = |f: &str, r: &str, t: &str, k: &str| tongban_store::Relation {
            from_key: f.into(),
            relation: r.into(),
            to_key: t.into(),
            source_id: "s".into(),
            record_key: k.into(),
        };
        let run = store
            .replace_resolution(
                "person",
                1,
                "{}",
                &tongban_store::EntityLink::all_borrowed(&[
                    link("a", "1", "subject", "P1"),
                    link("a", "2", "subject", "P2"),
                ]),
                &[golden("P1", r#""one""#), golden("P2", r#""two""#)],
            )
            .await
            .unwrap();
        store
            .replace_relations(&tongban_store::Relation::all_borrowed(&[
                rel("P1", "mother", "P3", "1"),
                rel("P2", "mother", "P3", "1"),
            ]))
            .await
            .unwrap();
        // A new record shows P2 to be P1: P2's links and relations follow, its golden record goes.
        let changes = vec![tongban_store::LibraryChanges {
            kind: "person".into(),
            run_id: run,
            links: vec![link("b", "7", "subject", "P1")],
            golden: vec![golden("P1", r#""merged""#)],
            renamed: vec![("P2".into(), "P1".into())],
        }];
        let relations = vec![rel("P1", "lives_in", "R1", "7")];
        for _ in 0..2 {
            store
                .apply_library_changes(&changes, &relations)
                .await
                .unwrap();
        }
        let mut of_p1: Vec<String> = store
            .links_of_entity("person", "P1")
            .await
            .unwrap()
            .into_iter()
            .map(|l| format!("{}:{}", l.source_id, l.record_key))
            .collect();
        of_p1.sort();
        assert_eq!(of_p1, vec!["a:1", "a:2", "b:7"]);
        assert!(store.golden_record("person", "P2").await.unwrap().is_none());
        assert_eq!(
            store
                .golden_record("person", "P1")
                .await
                .unwrap()
                .unwrap()
                .record,
            r#""merged""#
        );
        assert!(store.relations_of("P2").await.unwrap().is_empty());
        assert_eq!(
            store.relations_of("P1").await.unwrap(),
            vec![
                rel("P1", "lives_in", "R1", "7"),
                rel("P1", "mother", "P3", "1")
            ],
            "the two mother relations became one, the new relation is there once"
        );
        assert_eq!(store.library_counts("person").await.unwrap(), (3, 1));
        // The lookups by entity and by target follow every kind of change: a link re-pointed by
        // an upsert, and an entity renamed that relations point to.
        let changes = vec![tongban_store::LibraryChanges {
            kind: "person".into(),
            run_id: run,
            links: vec![link("a", "1", "subject", "P5")],
            renamed: vec![("P3".into(), "P4".into())],
            ..Default::default()
        }];
        store.apply_library_changes(&changes, &[]).await.unwrap();
        let keys_of = |links: Vec<tongban_store::EntityLink>| -> Vec<String> {
            links
                .into_iter()
                .map(|l| format!("{}:{}", l.source_id, l.record_key))
                .collect()
        };
        assert_eq!(
            keys_of(store.links_of_entity("person", "P1").await.unwrap()),
            ["a:2", "b:7"]
        );
        assert_eq!(
            keys_of(store.links_of_entity("person", "P5").await.unwrap()),
            ["a:1"]
        );
        assert!(
            store
                .links_of_entity("person", "P2")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.relations_of("P3").await.unwrap().is_empty());
        assert_eq!(
            store.relations_of("P4").await.unwrap(),
            vec![rel("P1", "mother", "P4", "1")]
        );
        let changes = vec![tongban_store::LibraryChanges {
            kind: "person".into(),
            run_id: run,
            links: vec![link("a", "1", "subject", "P1")],
            renamed: vec![("P4".into(), "P3".into())],
            ..Default::default()
        }];
        store.apply_library_changes(&changes, &[]).await.unwrap();
        let added = store
            .add_resolution_run("person", 5, r#"{"mode":"incremental"}"#, 3, 1)
            .await
            .unwrap();
        assert_eq!(
            store.latest_resolution("person").await.unwrap().unwrap().id,
            added
        );
        // A kind that does not exist is refused before anything is written.
        let bad = vec![tongban_store::LibraryChanges {
            kind: "planet".into(),
            ..Default::default()
        }];
        assert!(store.apply_library_changes(&bad, &[]).await.is_err());
        // All or nothing: a good change before a bad one is not kept either.
        let half = vec![
            tongban_store::LibraryChanges {
                kind: "person".into(),
                run_id: run,
                links: vec![link("c", "9", "subject", "P9")],
                golden: vec![golden("P9", r#""nine""#)],
                ..Default::default()
            },
            tongban_store::LibraryChanges {
                kind: "planet".into(),
                ..Default::default()
            },
        ];
        assert!(store.apply_library_changes(&half, &[]).await.is_err());
        assert!(store.golden_record("person", "P9").await.unwrap().is_none());
        assert!(
            store
                .links_of_entity("person", "P9")
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn golden_records_are_found_by_fields_and_paths_are_checked() {
    let (stores, _dir) = stores("contract_search").await;
    for store in &stores {
        let person = |key: &str, name: &str, birth: &str, phone: &str| {
            let record = serde_json::json!({
                "key": key,
                "fields": {
                    "name": {"value": name},
                    "birth_date": {"value": birth},
                    "phone": {"value": phone},
                }
            });
            tongban_store::GoldenRecord {
                entity_key: key.into(),
                record: record.to_string(),
            }
        };
        let golden = vec![
            person("P1", "张三", "1990-01-02", "13800000001"),
            person("P2", "张三", "1985-05-06", "13800000002"),
            person("P3", "李四", "1990-01-02", "13800000001"),
            person("P4", "O'Brien \"张\" \\ é\t🀄", "1970-01-01", "13800000004"),
        ];
        store
            .replace_resolution("person", 1, "{}", &[], &golden)
            .await
            .unwrap();
        assert_eq!(
            tongban_store::search_columns("person")[0],
            tongban_store::SearchColumn {
                path: "fields.name.value",
                column: "search_name".into(),
                index: "golden_person_by_name".into(),
            }
        );
        // A second replace drops and rebuilds the search indexes (the statements must stay
        // valid on both backends).
        store
            .replace_resolution("person", 1, "{}", &[], &golden)
            .await
            .unwrap();
        let keys = |found: Vec<tongban_store::GoldenRecord>| -> Vec<String> {
            found.into_iter().map(|g| g.entity_key).collect()
        };
        let by_name = store
            .search_golden("person", &[("fields.name.value", "张三")], 10)
            .await
            .unwrap();
        assert_eq!(keys(by_name), ["P1", "P2"], "{}", store.backend());
        let both = store
            .search_golden(
                "person",
                &[
                    ("fields.name.value", "张三"),
                    ("fields.birth_date.value", "1990-01-02"),
                ],
                10,
            )
            .await
            .unwrap();
        assert_eq!(keys(both), ["P1"]);
        let phone = store
            .search_golden("person", &[("fields.phone.value", "13800000001")], 1)
            .await
            .unwrap();
        assert_eq!(keys(phone), ["P1"], "the limit holds");
        // A value with quotes, a backslash, a tab and characters outside the BMP is searched
        // as the record holds it (PostgreSQL's search columns are written by the store).
        let escaped = store
            .search_golden(
                "person",
                &[("fields.name.value", "O'Brien \"张\" \\ é\t🀄")],
                10,
            )
            .await
            .unwrap();
        assert_eq!(keys(escaped), ["P4"], "{}", store.backend());
        // A value that looks like SQL is only a value.
        let hostile = store
            .search_golden("person", &[("fields.name.value", "' OR 1=1 --")], 10)
            .await
            .unwrap();
        assert!(hostile.is_empty());
        for bad in [
            "fields.name') OR 1=1 --",
            "",
            "fields..value",
            "Fields.name",
        ] {
            assert!(
                matches!(
                    store.search_golden("person", &[(bad, "x")], 10).await,
                    Err(tongban_store::StoreError::BadPath(_))
                ),
                "{bad:?} must be refused"
            );
        }
        assert!(
            store
                .search_golden("person", &[], 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Records changed one at a time (incremental resolution) are found by their new
        // values only, and a record that went with a renamed entity is found no more.
        let changes = vec![tongban_store::LibraryChanges {
            kind: "person".into(),
            run_id: 1,
            golden: vec![
                person("P1", "王五", "1990-01-02", "13800000009"),
                person("P5", "新 \"五\" \\ \n🀄", "2001-01-01", "13800000005"),
            ],
            renamed: vec![("P3".into(), "P2".into())],
            ..Default::default()
        }];
        store.apply_library_changes(&changes, &[]).await.unwrap();
        let search = |path: &'static str, value: &'static str| {
            let store = &store;
            async move {
                keys(
                    store
                        .search_golden("person", &[(path, value)], 10)
                        .await
                        .unwrap(),
                )
            }
        };
        assert_eq!(search("fields.name.value", "王五").await, ["P1"]);
        assert_eq!(search("fields.name.value", "张三").await, ["P2"]);
        assert!(search("fields.name.value", "李四").await.is_empty());
        assert_eq!(search("fields.phone.value", "13800000009").await, ["P1"]);
        assert_eq!(
            search("fields.name.value", "新 \"五\" \\ \n🀄").await,
            ["P5"],
            "{}",
            store.backend()
        );
        // A second change leaves some searched fields as they were and changes or drops
        // others: each column follows its own field (SQLite assigns only the changed ones).
        let without_phone = tongban_store::GoldenRecord {
            entity_key: "P1".into(),
            record: serde_json::json!({
                "key": "P1",
                "fields": {"name": {"value": "王五"}, "birth_date": {"value": "1990-01-02"}},
            })
            .to_string(),
        };
        let changes = vec![tongban_store::LibraryChanges {
            kind: "person".into(),
            run_id: 2,
            golden: vec![
                without_phone,
                person("P2", "张三", "1985-05-06", "13800000222"),
            ],
            ..Default::default()
        }];
        store.apply_library_changes(&changes, &[]).await.unwrap();
        assert_eq!(search("fields.name.value", "王五").await, ["P1"]);
        assert!(search("fields.phone.value", "13800000009").await.is_empty());
        assert_eq!(search("fields.name.value", "张三").await, ["P2"]);
        assert!(search("fields.phone.value", "13800000002").await.is_empty());
        assert_eq!(search("fields.phone.value", "13800000222").await, ["P2"]);
        // A field that was missing comes back.
        let changes = vec![tongban_store::LibraryChanges {
            kind: "person".into(),
            run_id: 3,
            golden: vec![person("P1", "王五", "1990-01-02", "13800000111")],
            ..Default::default()
        }];
        store.apply_library_changes(&changes, &[]).await.unwrap();
        assert_eq!(search("fields.phone.value", "13800000111").await, ["P1"]);
        // A run of more rows than one statement inserts fills the columns of every row.
        let many: Vec<_> = (0..150)
            .map(|i| person(&format!("Q{i:03}"), &format!("名{i}"), "2000-01-01", "1"))
            .collect();
        store
            .replace_resolution("person", 4, "{}", &[], &many)
            .await
            .unwrap();
        for i in [0, 63, 64, 127, 128, 149] {
            let name = format!("名{i}");
            let found = store
                .search_golden("person", &[("fields.name.value", name.as_str())], 10)
                .await
                .unwrap();
            assert_eq!(keys(found), [format!("Q{i:03}")], "{}", store.backend());
        }
    }
}

#[tokio::test]
async fn console_passwords_are_set_only_for_existing_users() {
    let (stores, _dir) = stores("contract_passwords").await;
    for store in &stores {
        store
            .put_user(&tongban_store::UserRow {
                id: "citizen1".into(),
                name: "市民".into(),
                department: None,
                role: "citizen".into(),
                jurisdiction: "320576052".into(),
                created_at: 1,
            })
            .await
            .unwrap();
        assert_eq!(store.password_hash("citizen1").await.unwrap(), None);
        assert!(store.set_password("citizen1", "argon2id$x").await.unwrap());
        assert_eq!(
            store.password_hash("citizen1").await.unwrap().as_deref(),
            Some("argon2id$x")
        );
        assert!(!store.set_password("nobody", "h").await.unwrap());
        assert_eq!(store.password_hash("nobody").await.unwrap(), None);
    }
}

fn audit_row(seq: i64) -> tongban_store::AuditRow {
    tongban_store::AuditRow {
        seq,
        at: seq,
        actor: "u".into(),
        action: "read.person".into(),
        subject: format!("P{:016x}", seq % 7),
        detail: "{}".into(),
        prev: format!("{:064x}", seq - 1),
        hash: format!("{:064x}", seq),
    }
}

/// On SQLite the audit log has a writer of its own beside the pool's; ingest transactions that
/// read before they write must wait for it, not fail, and both must keep everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_appends_and_ingest_interleave_without_failing() {
    let (stores, _dir) = stores("interleave").await;
    for s in stores {
        let s: std::sync::Arc<dyn Store> = std::sync::Arc::from(s);
        let audit = {
            let s = s.clone();
            tokio::spawn(async move {
                for batch in 0..100i64 {
                    let rows: Vec<_> = (1..=10).map(|i| audit_row(batch * 10 + i)).collect();
                    s.append_audit(&rows, None).await?;
                }
                Ok::<_, StoreError>(())
            })
        };
        let mut ingest = Vec::new();
        for t in 0..4 {
            let s = s.clone();
            ingest.push(tokio::spawn(async move {
                for chunk in 0..10 {
                    let recs: Vec<_> = (0..50)
                        .map(|i| rec(&format!("t{t}c{chunk}k{i}"), "v"))
                        .collect();
                    let b = s.begin_batch("s", "push").await?;
                    s.store_chunk(b, "s", recs.clone(), vec![]).await?;
                    s.finish_batch(b, false).await?;
                }
                Ok::<_, StoreError>(())
            }));
        }
        audit
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{}: audit: {e:#?}", s.backend()));
        for t in ingest {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: ingest: {e:#?}", s.backend()));
        }
        assert_eq!(s.record_counts("s").await.unwrap(), (2_000, 0, 0));
        let stored = s.audit_entries(0, 10_000).await.unwrap();
        let seqs: Vec<i64> = stored.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=1_000).collect::<Vec<_>>(), "{}", s.backend());
        assert_eq!(stored[41], audit_row(42));
        // A batch that reuses a number stores none of its entries.
        let clash = [audit_row(1_001), audit_row(1_000)];
        assert!(s.append_audit(&clash, None).await.is_err());
        assert_eq!(s.last_audit().await.unwrap().unwrap().seq, 1_000);
        let of = s
            .audit_of_subject(&format!("P{:016x}", 3), 1_000)
            .await
            .unwrap();
        assert_eq!(of.len(), (1..=1_000).filter(|n| n % 7 == 3).count());
    }
}

/// Every backend the run can reach, each empty, with the URL it was opened at.
async fn stores_with_urls(name: &str) -> (Vec<(String, Box<dyn Store>)>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}", dir.path().join("t.db").display())];
    urls.extend(fresh_pg_url(name).await);
    let mut out = Vec::new();
    for url in urls {
        let s = tongban_store::open(&url).await.unwrap();
        out.push((url, s));
    }
    (out, dir)
}

/// Closing a store leaves what it wrote where the next process finds it (on SQLite the
/// write-ahead logs emptied into the files), and a closed store answers with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_leaves_its_writes_for_the_next_one() {
    let (stores, dir) = stores_with_urls("closing").await;
    for (url, s) in stores {
        s.put_source(&source_s()).await.unwrap();
        let b = s.begin_batch("s", "f.csv").await.unwrap();
        let recs: Vec<_> = (0..25).map(|i| rec(&format!("k{i:02}"), "v")).collect();
        s.store_chunk(b, "s", recs, vec![]).await.unwrap();
        s.close().await.unwrap();
        if s.backend() == "sqlite" {
            for log in ["t.db-wal", "t.audit.db-wal"] {
                let len = std::fs::metadata(dir.path().join(log)).map_or(0, |m| m.len());
                assert_eq!(len, 0, "{log} left with {len} bytes");
            }
        }
        assert!(s.sources().await.is_err(), "{url}: closed, yet answering");
        drop(s);
        let again = tongban_store::open(&url).await.unwrap();
        let current = again.current_records("s", None, 100).await.unwrap();
        assert_eq!(current.len(), 25, "{url}");
    }
}

/// Each stored row of `records` as the database holds it: id, `seen_batch`, status and, on
/// PostgreSQL, the transaction that wrote the row's current version (`xmin`), which any update
/// of the row moves.
async fn record_rows(url: &str) -> Vec<(i64, i64, String, i64)> {
    let sql = "SELECT id, seen_batch, status, {xmin} FROM records ORDER BY id";
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let db = rusqlite::Connection::open(path).unwrap();
            let mut q = db.prepare(&sql.replace("{xmin}", "0")).unwrap();
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        }
        None => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let sql = sql.replace("{xmin}", "xmin::text::bigint");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect()
        }
    }
}

/// A batch that delivers records unchanged, or delivers them in rows held in quarantine, leaves
/// their rows as they were (it keeps a sighting beside each instead), yet the records count as
/// seen by it: its snapshot withdraws none of them, their history names it as the last batch
/// that delivered them, and a later snapshot without them withdraws them. Of two batches at
/// once, the one that started earlier withdraws none of what the later one saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_delivery_leaves_the_rows_as_they_were() {
    let (stores, _dir) = stores_with_urls("sightings").await;
    for (url, s) in stores {
        s.put_source(&source_s()).await.unwrap();
        let b1 = s.begin_batch("s", "day1.csv").await.unwrap();
        let day1 = vec![rec("a", "1"), rec("b", "1"), rec("c", "1")];
        s.store_chunk(b1, "s", day1.clone(), vec![]).await.unwrap();
        s.finish_batch(b1, true).await.unwrap();
        let before = record_rows(&url).await;
        assert_eq!(before.len(), 3, "{url}");

        let b2 = s.begin_batch("s", "day2.csv").await.unwrap();
        let o = s.store_chunk(b2, "s", day1.clone(), vec![]).await.unwrap();
        assert_eq!((o.inserted, o.unchanged), (0, 3), "{url}");
        // The same key again in a later chunk of the batch is still a duplicate.
        let again = s
            .store_chunk(b2, "s", vec![rec("a", "1")], vec![])
            .await
            .unwrap();
        assert_eq!((again.unchanged, again.quarantined), (0, 1), "{url}");
        let done = s.finish_batch(b2, true).await.unwrap();
        assert_eq!(done.withdrawn, 0, "{url}");
        assert_eq!(
            record_rows(&url).await,
            before,
            "{url}: an unchanged delivery rewrote rows"
        );
        let a = s.record_history("s", "a").await.unwrap();
        assert_eq!((a[0].batch_id, a[0].seen_batch), (b1, b2), "{url}");

        // Two batches at once: the later one sees only `a`, the earlier one `a` and `b`. The
        // earlier one's snapshot withdraws only `c`, which neither saw; the later one's then
        // withdraws `b`, which only the earlier one saw.
        let b3 = s.begin_batch("s", "day3.csv").await.unwrap();
        let b4 = s.begin_batch("s", "day4.csv").await.unwrap();
        s.store_chunk(b4, "s", vec![rec("a", "1")], vec![])
            .await
            .unwrap();
        s.store_chunk(b3, "s", vec![rec("a", "1"), rec("b", "1")], vec![])
            .await
            .unwrap();
        assert_eq!(
            s.finish_batch(b3, true).await.unwrap().withdrawn,
            1,
            "{url}"
        );
        assert_eq!(
            s.finish_batch(b4, true).await.unwrap().withdrawn,
            1,
            "{url}"
        );
        let status = |h: Vec<tongban_store::RecordVersion>| h.last().map(|v| v.status);
        for (key, expected) in [
            ("a", RecordStatus::Current),
            ("b", RecordStatus::Withdrawn),
            ("c", RecordStatus::Withdrawn),
        ] {
            let h = s.record_history("s", key).await.unwrap();
            assert_eq!(status(h), Some(expected), "{url}: {key}");
        }
        assert_eq!(
            s.record_history("s", "a").await.unwrap()[0].seen_batch,
            b4,
            "{url}: a sighting never goes back to an earlier batch"
        );

        // A delivery of `a` held in quarantine (a bad row) keeps the good version current,
        // again without writing its row.
        let before = record_rows(&url).await;
        let b5 = s.begin_batch("s", "day5.csv").await.unwrap();
        let held = IncomingQuarantine {
            key: Some("a".into()),
            location: "line 2".into(),
            raw: "{\"k\":\"a\",\"v\":\"?\"}".into(),
            raw_hash: vec![9],
            reasons: "[{\"code\":\"v.invalid\"}]".into(),
        };
        s.store_chunk(b5, "s", vec![], vec![held]).await.unwrap();
        assert_eq!(
            s.finish_batch(b5, true).await.unwrap().withdrawn,
            0,
            "{url}"
        );
        assert_eq!(
            record_rows(&url).await,
            before,
            "{url}: a held delivery rewrote a row"
        );
        let a = s.record_history("s", "a").await.unwrap();
        assert_eq!(
            (a[0].status, a[0].seen_batch),
            (RecordStatus::Current, b5),
            "{url}"
        );
    }
}

/// Runs `sql` on the store at `url` behind its back (on SQLite, in the audit log's file).
async fn behind_the_back(url: &str, sql: &str) {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let db = rusqlite::Connection::open(tongban_store::sqlite::audit_file(path)).unwrap();
            db.execute_batch(sql).unwrap();
        }
        None => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// The store counts answered reads per grant and hour itself (for the quota), reading each
/// entry's `served_under`: a read counts once under each grant it lists; refused reads, other
/// actions, other hours and odd shapes count under none. Entries from before the store kept
/// these counts are counted from the log with the same answers, even when the database cannot
/// read a detail as JSON (PostgreSQL's `jsonb` refuses an escaped NUL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_counted_per_grant() {
    const H: i64 = 3_600_000;
    let (stores, _dir) = stores_with_urls("reads_per_grant").await;
    let entry = |seq: i64, at: i64, action: &str, detail: &str| tongban_store::AuditRow {
        at,
        action: action.into(),
        detail: detail.into(),
        ..audit_row(seq)
    };
    let g1 = r#"{"served_under":[{"grant":"G1"}]}"#;
    let entries = [
        entry(1, 10 * H, "read.person", g1),
        entry(
            2,
            10 * H + 5,
            "read.person",
            r#"{"served_under":[{"grant":"G1"},{"grant":"G1"},{"grant":"G2"}]}"#,
        ),
        entry(3, 10 * H, "read.person.denied", g1),
        entry(4, 10 * H, "grant.approve", g1),
        entry(5, 10 * H - 1, "read.person", g1),
        entry(6, 12 * H, "read.person", g1),
        entry(
            7,
            11 * H,
            "read.person",
            r#"{"served_under":{"grant":"G1"}}"#,
        ),
        entry(
            8,
            11 * H,
            "read.entity",
            r#"{"served_under":[{"grant":5},"G1",[{"grant":"G1"}],{"grant":"G3"}]}"#,
        ),
        entry(9, 11 * H, "READ.person", g1),
        entry(
            10,
            11 * H,
            "read.person",
            r#"[{"served_under":[{"grant":"G1"}]}]"#,
        ),
        entry(
            11,
            12 * H - 1,
            "read.room",
            r#"{"department":"d","served_under":[{"grant":"G2","purpose":"p"}]}"#,
        ),
        entry(12, 11 * H, "read.person", "not json {"),
        entry(
            13,
            11 * H,
            "read.person",
            r#"{"query":"a\u0000b","served_under":[{"grant":"G2"}]}"#,
        ),
    ];
    async fn expect_counts(s: &dyn Store, why: &str) {
        let b = s.backend();
        let by_hours = |from, until| s.audit_reads_per_grant(0, from, until);
        assert_eq!(
            by_hours(10, 12).await.unwrap(),
            counts(&[("G1", 2), ("G2", 3), ("G3", 1)]),
            "{b}: {why}"
        );
        assert_eq!(
            by_hours(12, 13).await.unwrap(),
            counts(&[("G1", 1)]),
            "{b}: {why}"
        );
        assert_eq!(
            by_hours(9, 10).await.unwrap(),
            counts(&[("G1", 1)]),
            "{b}: {why}"
        );
        assert!(by_hours(13, 20).await.unwrap().is_empty(), "{b}: {why}");
    }
    fn counts(pairs: &[(&str, u64)]) -> std::collections::HashMap<String, u64> {
        pairs.iter().map(|&(g, n)| (g.to_string(), n)).collect()
    }
    for (url, s) in stores {
        let b = s.backend();
        s.append_audit(&entries[..6], None).await.unwrap();
        s.append_audit(&entries[6..], None).await.unwrap();
        expect_counts(s.as_ref(), "kept as appended").await;
        // As if the entries had been appended before the store kept the counts.
        behind_the_back(
            &url,
            "DELETE FROM audit_grant_reads; UPDATE audit_grant_reads_from SET seq = 13;",
        )
        .await;
        expect_counts(s.as_ref(), "counted from the log").await;
        // What comes after is kept, and adds to what is counted from the log.
        s.append_audit(&[entry(14, 10 * H + 9, "read.person", g1)], None)
            .await
            .unwrap();
        assert_eq!(
            s.audit_reads_per_grant(0, 10, 12).await.unwrap(),
            counts(&[("G1", 3), ("G2", 3), ("G3", 1)]),
            "{b}"
        );
        // Entries at or before `after` are not read from the log.
        assert_eq!(
            s.audit_reads_per_grant(13, 10, 12).await.unwrap(),
            counts(&[("G1", 1)]),
            "{b}"
        );
    }
}

/// The sequence numbers of `subject`'s audit entries, newest first, at most `limit`.
async fn subject_seqs(s: &dyn Store, subject: &str, limit: i64) -> Vec<i64> {
    let rows = s.audit_of_subject(subject, limit).await.unwrap();
    rows.iter().map(|r| r.seq).collect()
}

/// Runs `sql` where `url`'s audit log is kept, beside the store (as a reader of its tables, or
/// someone tampering with them, would): the first column of the first row as an integer for a
/// query, 0 for a statement or no row.
async fn on_audit_log(url: &str, sql: &str) -> i64 {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let db = rusqlite::Connection::open(tongban_store::sqlite::audit_file(path)).unwrap();
            let mut q = db.prepare(sql).unwrap();
            let mut rows = q.query([]).unwrap();
            match rows.next().unwrap() {
                Some(row) => row.get::<_, Option<i64>>(0).unwrap().unwrap_or(0),
                None => 0,
            }
        }
        None => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let first: Option<Option<i64>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_optional(&mut conn)
                .await
                .unwrap();
            first.flatten().unwrap_or(0)
        }
    }
}

/// A subject's entries are found whether or not the store has indexed them yet: on both
/// backends the index by subject is kept in bulk, a round for each era of 16,384 sequence numbers
/// once it is complete (see migration 0010 on SQLite and 0019 on PostgreSQL), so the entries here
/// are spread over several eras (sparse numbers) and over rounds of several steps (dense
/// numbers, in batches of a few and of many).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subjects_entries_are_found_indexed_or_not() {
    let (stores, _dir) = stores_with_urls("by_subject").await;
    let mut seqs: Vec<i64> = (1..=200).map(|i| i * 7_919).collect();
    let dense_from = seqs[seqs.len() - 1] + 1;
    seqs.extend(dense_from..dense_from + 40_000);
    for (url, s) in stores {
        let mut at = 0;
        for size in [1usize, 3, 50, 5_000].into_iter().cycle() {
            if at == seqs.len() {
                break;
            }
            let end = (at + size).min(seqs.len());
            let rows: Vec<_> = seqs[at..end].iter().map(|&q| audit_row(q)).collect();
            s.append_audit(&rows, None).await.unwrap();
            at = end;
        }
        for subject in 0..7 {
            let key = format!("P{subject:016x}");
            let mut expected: Vec<i64> =
                seqs.iter().copied().filter(|q| q % 7 == subject).collect();
            expected.reverse();
            let found = subject_seqs(s.as_ref(), &key, 100_000).await;
            assert_eq!(found, expected, "{}: {key}", s.backend());
            let newest = subject_seqs(s.as_ref(), &key, 5).await;
            assert_eq!(newest, expected[..5], "{}: {key}", s.backend());
        }
        assert!(s.audit_of_subject("P-nobody", 10).await.unwrap().is_empty());
        // Most of them were found through the index, not the scan of the newest. The store
        // takes its index steps after answering, so wait for them a little.
        let mut upto: i64 = 0;
        for _ in 0..200 {
            upto = on_audit_log(&url, "SELECT upto FROM audit_subjects_upto").await;
            if upto >= dense_from + 20_000 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let indexed = on_audit_log(
            &url,
            &format!("SELECT COUNT(*) FROM audit_subjects WHERE seq <= {upto}"),
        )
        .await;
        let eras = on_audit_log(&url, "SELECT COUNT(DISTINCT era) FROM audit_subjects").await;
        // Rounds end where eras do, so the index stands at an era's end: past the first half
        // of the dense numbers, short of the era the last append left incomplete.
        let b = s.backend();
        assert!(
            indexed > 20_000,
            "{b}: only {indexed} entries indexed (up to {upto})"
        );
        assert_eq!((upto + 1) % 16_384, 0, "{b}: the index stands at {upto}");
        assert!(eras >= 6, "{b}: {eras} eras");
        // Each entry up to where the index stands is in it once, under its own era.
        let wrong = on_audit_log(
            &url,
            &format!(
                "SELECT COUNT(*) FROM audit_log a WHERE a.seq <= {upto} AND NOT EXISTS \
                 (SELECT 1 FROM audit_subjects i WHERE i.era = a.seq / 16384 \
                  AND i.subject = a.subject AND i.seq = a.seq)"
            ),
        )
        .await;
        assert_eq!(wrong, 0, "{b}: entries missing from the index");

        // Tampering the index must not hide: an entry whose subject is changed in place is
        // found under its new subject, and a log cut below where the index stands and written
        // again shows the new entries.
        let moved = seqs[10];
        on_audit_log(
            &url,
            &format!("UPDATE audit_log SET subject = 'P-moved' WHERE seq = {moved}"),
        )
        .await;
        assert_eq!(
            subject_seqs(s.as_ref(), "P-moved", 10).await,
            vec![moved],
            "{b}"
        );
        let cut = upto - 100;
        on_audit_log(&url, &format!("DELETE FROM audit_log WHERE seq > {cut}")).await;
        let again: Vec<_> = (cut + 1..=cut + 300)
            .map(|q| tongban_store::AuditRow {
                subject: "P-again".into(),
                ..audit_row(q)
            })
            .collect();
        s.append_audit(&again, None).await.unwrap();
        let found = s.audit_of_subject("P-again", 1_000).await.unwrap();
        assert_eq!(found.len(), 300, "{b}");
        assert_eq!(found[0].seq, cut + 300, "{b}");

        // An entry changed in place before a round reaches it (the trigger has indexed it
        // already) does not stop the round, and is found once, under its new subject.
        let changed = cut + 200;
        on_audit_log(
            &url,
            &format!("UPDATE audit_log SET subject = 'P-changed' WHERE seq = {changed}"),
        )
        .await;
        // SQLite takes its index steps after appends, so appends go on past the era's end
        // (within the next era) until the round has had its steps.
        let era_end = (cut + 300) | (16_384 - 1);
        let more: Vec<_> = (cut + 301..=era_end + 12_000).map(audit_row).collect();
        for chunk in more.chunks(1_000) {
            s.append_audit(chunk, None).await.unwrap();
        }
        for _ in 0..200 {
            upto = on_audit_log(&url, "SELECT upto FROM audit_subjects_upto").await;
            if upto >= era_end {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(upto, era_end, "{b}: the round after the change did not end");
        assert_eq!(
            subject_seqs(s.as_ref(), "P-changed", 10).await,
            vec![changed],
            "{b}"
        );
        // Once under its new subject (an entry under the old one may stay behind on SQLite,
        // if a round read it before the change; lookups pass over it).
        let held = on_audit_log(
            &url,
            &format!(
                "SELECT COUNT(*) FROM audit_subjects WHERE seq = {changed} \
                 AND subject = 'P-changed'"
            ),
        )
        .await;
        assert_eq!(held, 1, "{b}: index entries for {changed}");
        assert_eq!(
            s.audit_of_subject("P-again", 1_000).await.unwrap().len(),
            299,
            "{b}"
        );
    }
}

/// Single statements outside a transaction (registering a source, failing a batch) wait their
/// turn behind large ingest chunks instead of failing on a locked database: on SQLite the chunks
/// are written by a second connection, and SQLite's own busy handler polls too rarely to find
/// the gaps between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_writes_wait_their_turn_during_a_long_ingest() {
    let (stores, _dir) = stores("single_writes").await;
    for s in stores {
        let s: std::sync::Arc<dyn Store> = std::sync::Arc::from(s);
        let ingest = {
            let s = s.clone();
            tokio::spawn(async move {
                let b = s.begin_batch("s", "big").await?;
                for chunk in 0..8 {
                    let recs: Vec<_> = (0..4_000)
                        .map(|i| rec(&format!("c{chunk}k{i:05}"), &"x".repeat(200)))
                        .collect();
                    s.store_chunk(b, "s", recs, vec![]).await?;
                }
                s.finish_batch(b, false).await?;
                Ok::<_, StoreError>(())
            })
        };
        for n in 0..40i64 {
            s.put_source(&SourceRow {
                id: format!("other{n}"),
                department: "民政局".into(),
                name: "婚姻".into(),
                subject: "relation".into(),
                snapshot: false,
                update_frequency: None,
                mapping: "[source]".into(),
                updated_at: n,
            })
            .await
            .unwrap_or_else(|e| panic!("{}: put_source {n}: {e:#?}", s.backend()));
            let b = s.begin_batch(&format!("other{n}"), "push").await.unwrap();
            s.fail_batch(b, "pushed by mistake")
                .await
                .unwrap_or_else(|e| panic!("{}: fail_batch {n}: {e:#?}", s.backend()));
        }
        ingest
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{}: ingest: {e:#?}", s.backend()));
        assert_eq!(s.record_counts("s").await.unwrap(), (32_000, 0, 0));
        assert_eq!(s.sources().await.unwrap().len(), 41);
    }
}

/// A store from before the audit log had a file of its own keeps its log: opening it moves the
/// entries, checkpoints and index out of the main file, once, also when an earlier move was cut
/// short after the copy (both files holding the entries).
#[tokio::test]
async fn an_audit_log_in_the_main_file_is_moved_to_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("old.db");
    let main = main.to_str().unwrap().to_string();
    let audit = tongban_store::sqlite::audit_file(&main);
    assert!(audit.ends_with("old.audit.db"), "{audit}");
    let url = format!("sqlite://{main}");
    let rows: Vec<_> = (1..=500).map(audit_row).collect();
    {
        let s = tongban_store::open(&url).await.unwrap();
        s.append_audit(&rows, None).await.unwrap();
    }
    // Put the log back where migrations 0005–0010 left it, as an older store had it.
    let put_back = |keep_audit_file: bool| {
        let db = rusqlite::Connection::open(&main).unwrap();
        db.execute("ATTACH DATABASE ?1 AS audit", [&audit]).unwrap();
        db.execute_batch(
            "CREATE TABLE main.audit_log (seq INTEGER PRIMARY KEY, at BIGINT NOT NULL, \
               actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, \
               detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL); \
             CREATE TABLE main.audit_checkpoints (from_seq BIGINT NOT NULL, \
               to_seq BIGINT NOT NULL, root TEXT NOT NULL, key TEXT NOT NULL, \
               signature TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (from_seq, to_seq)); \
             CREATE TABLE main.audit_subjects (era INTEGER NOT NULL, subject TEXT NOT NULL, \
               seq INTEGER NOT NULL, PRIMARY KEY (era, subject, seq)) WITHOUT ROWID; \
             CREATE TABLE main.audit_subjects_upto (id INTEGER PRIMARY KEY CHECK (id = 0), \
               upto INTEGER NOT NULL); \
             INSERT INTO main.audit_log SELECT * FROM audit.audit_log; \
             INSERT INTO main.audit_subjects_upto VALUES (0, 0);",
        )
        .unwrap();
        db.execute("DETACH DATABASE audit", []).unwrap();
        drop(db);
        if !keep_audit_file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{audit}{suffix}"));
            }
        }
    };
    let tables_in_main = || {
        let db = rusqlite::Connection::open(&main).unwrap();
        db.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'audit%'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    for keep_audit_file in [false, true] {
        put_back(keep_audit_file);
        assert!(tables_in_main() >= 4);
        let s = tongban_store::open(&url).await.unwrap();
        assert_eq!(
            tables_in_main(),
            0,
            "kept the audit file: {keep_audit_file}"
        );
        let seqs: Vec<i64> = s
            .audit_entries(0, 10_000)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, (1..=500).collect::<Vec<_>>());
        assert_eq!(s.last_audit().await.unwrap().unwrap().seq, 500);
        // Appends go on where the moved log ends.
        s.append_audit(&[audit_row(501)], None).await.unwrap();
        assert_eq!(s.last_audit().await.unwrap().unwrap().seq, 501);
        drop(s);
        let db = rusqlite::Connection::open(&audit).unwrap();
        db.execute("DELETE FROM audit_log WHERE seq = 501", [])
            .unwrap();
    }
    // Once moved, a lost audit file is not silently replaced by an empty log.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{audit}{suffix}"));
    }
    let err = match tongban_store::open(&url).await {
        Ok(_) => panic!("opened without its audit log"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("is missing"), "{err}");
    assert!(
        !std::path::Path::new(&audit).exists(),
        "an empty log was left behind"
    );
}

/// An audit file from before version 1 has its index by subject in eras of 2^18 entries; opening
/// it re-keys them to eras of 2^14, once, and replaces the trigger that indexes entries changed
/// in place, and every subject's entries are still found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_file_of_version_0_has_its_eras_rekeyed() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("v0.db");
    let main = main.to_str().unwrap().to_string();
    let audit = tongban_store::sqlite::audit_file(&main);
    let url = format!("sqlite://{main}");
    let seqs: Vec<i64> = (1..=120_000).step_by(3).collect();
    {
        let s = tongban_store::open(&url).await.unwrap();
        for chunk in seqs.chunks(1_000) {
            let rows: Vec<_> = chunk.iter().map(|&q| audit_row(q)).collect();
            s.append_audit(&rows, None).await.unwrap();
        }
    }
    let db = rusqlite::Connection::open(&audit).unwrap();
    let version = |db: &rusqlite::Connection| -> i64 {
        db.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&db), 2, "a new audit file is made at version 2");
    // Make it what an older binary left: the index (of everything) in eras of 2^18, its
    // trigger, version 0.
    db.execute_batch(
        "DROP TRIGGER audit_subjects_changed; \
         DELETE FROM audit_subjects; \
         INSERT INTO audit_subjects SELECT seq >> 18, subject, seq FROM audit_log; \
         UPDATE audit_subjects_upto SET upto = (SELECT MAX(seq) FROM audit_log); \
         CREATE TRIGGER audit_subjects_changed AFTER UPDATE OF seq, subject ON audit_log \
         BEGIN INSERT OR IGNORE INTO audit_subjects (era, subject, seq) \
           VALUES (NEW.seq >> 18, NEW.subject, NEW.seq); END; \
         PRAGMA user_version = 0;",
    )
    .unwrap();
    drop(db);
    let s = tongban_store::open(&url).await.unwrap();
    let db = rusqlite::Connection::open(&audit).unwrap();
    assert_eq!(version(&db), 2);
    let (rows, wrong): (i64, i64) = db
        .query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE era != seq >> 14) FROM audit_subjects",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, wrong), (seqs.len() as i64, 0));
    for subject in 0..7 {
        let key = format!("P{subject:016x}");
        let mut expected: Vec<i64> = seqs.iter().copied().filter(|q| q % 7 == subject).collect();
        expected.reverse();
        assert_eq!(
            subject_seqs(s.as_ref(), &key, 100_000).await,
            expected,
            "{key}"
        );
    }
    // The trigger is the new one: an entry changed in place is indexed in its new era.
    let moved = seqs[5_000];
    db.execute(
        "UPDATE audit_log SET subject = 'P-moved' WHERE seq = ?1",
        [moved],
    )
    .unwrap();
    let era: i64 = db
        .query_row(
            "SELECT era FROM audit_subjects WHERE subject = 'P-moved'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(era, moved >> 14);
    assert_eq!(subject_seqs(s.as_ref(), "P-moved", 10).await, vec![moved]);
    // A file of a newer layout than this binary knows is not opened.
    db.execute_batch("PRAGMA user_version = 3").unwrap();
    drop(db);
    let refused = tongban_store::open(&url)
        .await
        .err()
        .expect("a newer audit file");
    assert!(
        refused.to_string().contains("layout version 3"),
        "{refused}"
    );
}

/// A cache may keep what it read while the store's generation stands: it stands while only the
/// audit log is written, and moves on with any other write, by this store or behind its back.
#[tokio::test]
async fn the_data_generation_moves_with_writes_but_not_with_audit_appends() {
    let (stores, dir) = stores("generation").await;
    // PostgreSQL's generation moves when a commit is announced, a moment after it: its own test
    // below waits for that.
    for s in stores.iter().filter(|s| s.backend() == "sqlite") {
        let first = s.data_generation().await.unwrap().unwrap();
        assert_eq!(s.data_generation().await.unwrap(), Some(first));
        s.append_audit(&(1..=50).map(audit_row).collect::<Vec<_>>(), None)
            .await
            .unwrap();
        assert_eq!(
            s.data_generation().await.unwrap(),
            Some(first),
            "an audit append moved it"
        );
        let batch = s.begin_batch("s", "f.csv").await.unwrap();
        s.store_chunk(batch, "s", vec![rec("k2", "b")], vec![])
            .await
            .unwrap();
        let after_ingest = s.data_generation().await.unwrap().unwrap();
        assert_ne!(after_ingest, first, "a stored chunk did not move it");
        assert_eq!(s.data_generation().await.unwrap(), Some(after_ingest));
        // A write by another connection (another process, say) moves it too, once the file is
        // checked again: at most a millisecond later.
        let db = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        db.execute("UPDATE sources SET name = 'changed' WHERE id = 's'", [])
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let after_other = s.data_generation().await.unwrap().unwrap();
        assert_ne!(
            after_other, after_ingest,
            "another connection's write did not"
        );
    }
}

/// On PostgreSQL the generation moves with the store's own writes before they return (whatever
/// table they write), with another connection's commits to the golden records once heard, and
/// not with audit appends or others' commits to other tables; a listening connection cut off
/// is noticed and replaced, and the generation moves on, since what was committed meanwhile went
/// unheard. The golden tables carry the trigger that announces their commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hears_every_change_to_the_golden_records() {
    let Some(url) = fresh_pg_url("announce").await else {
        return;
    };
    let s = tongban_store::open(&url).await.unwrap();
    let generation = || async { s.data_generation().await.unwrap() };
    // The generation once it has stayed put for a while (heartbeats heard meanwhile): nothing
    // announced or reconnected is still on its way.
    let settled = || async {
        for _ in 0..50 {
            let before = generation().await;
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            if let Some(g) = before
                && generation().await == Some(g)
            {
                return g;
            }
        }
        panic!("the generation never settled");
    };
    // Waits up to five seconds for the generation to move past `from`.
    let moved_from = |from: u64| async move {
        for _ in 0..500 {
            if let Some(g) = generation().await
                && g != from
            {
                return Some(g);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        None
    };
    let raw = |sql: &'static str| {
        let url = url.clone();
        async move {
            tongban_store::testing::execute_raw(&url, sql)
                .await
                .unwrap()
        }
    };
    let first = settled().await;
    s.append_audit(&(1..=50).map(audit_row).collect::<Vec<_>>(), None)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(generation().await, Some(first), "an audit append moved it");
    // `sources` announces nothing: only the store's own account of its write can move it.
    s.put_source(&source_s()).await.unwrap();
    assert_ne!(
        generation().await,
        Some(first),
        "its own write did not move it at once"
    );
    let own = settled().await;
    raw("UPDATE sources SET name = 'changed' WHERE id = 's'").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        generation().await,
        Some(own),
        "another connection's write to a table no cache reads moved it"
    );
    raw("DELETE FROM golden_person WHERE entity_key = 'P0'").await;
    moved_from(own)
        .await
        .expect("another connection's commit to the golden records was not heard");
    let heard = settled().await;
    let cut = raw("SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'")
    .await;
    assert_eq!(cut, 1, "one listening connection");
    let again = settled().await;
    assert_ne!(again, heard, "the lost connection went unnoticed");
    raw("DELETE FROM golden_room WHERE entity_key = 'R0'").await;
    moved_from(again)
        .await
        .expect("nothing heard after listening again");
    // A run of another store that empties a library is heard too, though it writes no row.
    let since = settled().await;
    let other = tongban_store::open(&url).await.unwrap();
    other
        .replace_resolution("building", 9, "{}", &[], &[])
        .await
        .unwrap();
    moved_from(since)
        .await
        .expect("another store's empty run was not heard");
    let mut missing = Vec::new();
    for kind in tongban_store::RESOLUTION_KINDS {
        let trigger = format!("golden_{kind}_announces");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_trigger WHERE tgname = $1")
            .bind(&trigger)
            .fetch_one(
                &mut <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
        if n != 1 {
            missing.push(trigger);
        }
    }
    assert!(
        missing.is_empty(),
        "golden tables that announce nothing: {missing:?}"
    );
}

/// On PostgreSQL the governed API's reads and audit appends run first on connections the store
/// holds itself (`pg_held`). When the server ends every connection of the database, the next
/// reads still answer (a read whose connection was lost runs again on the pool), and so does an
/// audit append once its connection has been idle for over a second (it is checked first; an
/// append is never run twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_outlive_the_servers_ending_their_connections() {
    let Some(url) = fresh_pg_url("held").await else {
        return;
    };
    let s = tongban_store::open(&url).await.unwrap();
    let golden = tongban_store::GoldenRecord {
        entity_key: "P1".into(),
        record: r#"{"key":"P1","fields":{}}"#.into(),
    };
    s.replace_resolution("person", 1, "{}", &[], std::slice::from_ref(&golden))
        .await
        .unwrap();
    let read = || async {
        (
            s.golden_record("person", "P1").await.unwrap(),
            s.golden_with_relations_from("person", "P1").await.unwrap(),
            s.relations_from("P1").await.unwrap(),
        )
    };
    let expected = (
        Some(golden.clone()),
        (Some(golden.clone()), Vec::new()),
        Vec::new(),
    );
    let end_every_connection = || async {
        let ended = tongban_store::testing::execute_raw(
            &url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
        assert!(ended >= 2, "only {ended} connections ended");
        // The backends are told to end at once and are gone soon after.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(read().await, expected);
    s.append_audit(&[audit_row(1)], None).await.unwrap();
    end_every_connection().await;
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    s.append_audit(&[audit_row(2)], None)
        .await
        .expect("an append on a connection ended while idle");
    // Held connections again, for the server to end.
    assert_eq!(read().await, expected);
    end_every_connection().await;
    for round in 0..3 {
        assert_eq!(
            read().await,
            expected,
            "read {round} after the connections ended"
        );
    }
    s.append_audit(&[audit_row(3)], None).await.unwrap();
}

/// The generation's promise under concurrency, as a cache relies on it: a value read under
/// generation `g` is served again only by a check answering `g`, and such a check, made more than
/// a millisecond (SQLite's promise for another process's commits) after a commit, must find the
/// value at least as new as that commit. Readers on several threads check, read and keep the
/// newest value per generation, while another connection commits new versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_generation_never_answers_for_a_value_read_before_a_newer_commit() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let s: Arc<dyn Store> = Arc::from(
        tongban_store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap(),
    );
    let record = |v: i64| tongban_store::GoldenRecord {
        entity_key: "P0000000000000001".into(),
        record: format!("{{\"v\":{v}}}"),
    };
    s.replace_resolution("person", 1, "{}", &[], &[record(0)])
        .await
        .unwrap();
    // When each version was known committed (taken after the commit returned, so no earlier
    // than the commit itself): `committed[v - 1]`.
    let committed: Arc<std::sync::Mutex<Vec<std::time::Instant>>> = Default::default();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (committed, done, path) = (committed.clone(), done.clone(), path.clone());
        std::thread::spawn(move || {
            let db = rusqlite::Connection::open(&path).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            for v in 1..=300i64 {
                db.execute(
                    "UPDATE golden_person SET record = ?1 WHERE entity_key = 'P0000000000000001'",
                    [format!("{{\"v\":{v}}}")],
                )
                .unwrap();
                committed.lock().unwrap().push(std::time::Instant::now());
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let read_v = |g: &tongban_store::GoldenRecord| -> i64 {
        let doc: serde_json::Value = serde_json::from_str(&g.record).unwrap();
        doc["v"].as_i64().unwrap()
    };
    // What a cache shared by the readers would keep: the value read under each generation.
    let kept: Arc<std::sync::Mutex<std::collections::HashMap<u64, i64>>> = Default::default();
    let mut readers = Vec::new();
    for _ in 0..6 {
        let (s, committed, done, kept) = (s.clone(), committed.clone(), done.clone(), kept.clone());
        readers.push(tokio::spawn(async move {
            let mut checks = 0u64;
            while !done.load(Ordering::SeqCst) {
                // The newest version committed more than a millisecond before this check began
                // (taken before it, so no later than the check itself).
                let started = std::time::Instant::now();
                let floor = committed
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|&&at| at + std::time::Duration::from_millis(1) < started)
                    .count() as i64;
                let g = s.data_generation().await.unwrap().unwrap();
                let cached = kept.lock().unwrap().get(&g).copied();
                if let Some(v) = cached {
                    assert!(
                        v >= floor,
                        "generation {g} answered for version {v}, read before version {floor} was committed"
                    );
                    checks += 1;
                } else {
                    let golden = s
                        .golden_record("person", "P0000000000000001")
                        .await
                        .unwrap()
                        .unwrap();
                    kept.lock().unwrap().insert(g, read_v(&golden));
                }
                tokio::task::yield_now().await;
            }
            checks
        }));
    }
    let mut checks = 0;
    for r in readers {
        checks += r.await.unwrap();
    }
    writer.join().unwrap();
    assert!(checks > 100, "only {checks} cached answers were checked");
}

/// The shape of the library tables on PostgreSQL as the catalogue describes it: columns,
/// indexes, constraints and triggers of each, and any table left beside them.
async fn library_tables_shape(url: &str) -> Vec<String> {
    let mut tables: Vec<String> = tongban_store::RESOLUTION_KINDS
        .iter()
        .flat_map(|k| [format!("links_{k}"), format!("golden_{k}")])
        .collect();
    tables.push("relations".into());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let mut shape = Vec::new();
    for sql in [
        "SELECT table_name || ' ' || ordinal_position || ' ' || column_name || ' ' || data_type \
             || ' ' || is_nullable || ' ' || coalesce(column_default, '') \
             || ' ' || coalesce(collation_name, '') \
         FROM information_schema.columns WHERE table_name = ANY($1) ORDER BY 1",
        "SELECT indexdef FROM pg_indexes WHERE tablename = ANY($1) ORDER BY 1",
        "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) \
         FROM pg_constraint WHERE conrelid::regclass::text = ANY($1) ORDER BY 1",
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger \
         WHERE NOT tgisinternal AND tgrelid::regclass::text = ANY($1) ORDER BY 1",
        "SELECT 'left beside: ' || tablename FROM pg_tables \
         WHERE tablename LIKE '%\\_next' ORDER BY 1",
        "SELECT relname || ' owner ' || relowner::regrole::text || ' acl ' \
             || coalesce(relacl::text, '') || ' options ' || coalesce(reloptions::text, '') \
         FROM pg_class WHERE relname = ANY($1) ORDER BY 1",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql)
            .bind(&tables)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        shape.extend(rows);
    }
    shape
}

/// On PostgreSQL a run writes each library and the relations into tables beside the live ones
/// and swaps them in: afterwards the tables have exactly the columns, indexes, constraints and
/// triggers the migrations gave them (the golden tables still announce their commits), nothing
/// is left beside them, and a second run replaces the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_library_runs_leave_the_tables_as_the_migrations_made_them() {
    let Some(url) = fresh_pg_url("swap").await else {
        return;
    };
    let s = tongban_store::open(&url).await.unwrap();
    let migrated = library_tables_shape(&url).await;
    assert!(
        migrated
            .iter()
            .any(|l| l.contains("golden_person_announces")),
        "{migrated:#?}"
    );
    for run in 1..=2 {
        for kind in tongban_store::RESOLUTION_KINDS {
            let key = format!("K{run}");
            let link = tongban_store::EntityLink {
                source_id: "a".into(),
                record_key: format!("{kind}{run}"),
                role: "subject".into(),
                entity_key: key.clone(),
            };
            let golden = tongban_store::GoldenRecord {
                entity_key: key.clone(),
                record: format!(r#"{{"key":"{key}","fields":{{"name":{{"value":"张{run}"}}}}}}"#),
            };
            s.replace_resolution(
                kind,
                run,
                "{}",
                &tongban_store::EntityLink::all_borrowed(std::slice::from_ref(&link)),
                std::slice::from_ref(&golden),
            )
            .await
            .unwrap();
            assert_eq!(
                s.golden_record(kind, &key).await.unwrap(),
                Some(golden),
                "run {run}, {kind}"
            );
            let earlier = format!("K{}", run - 1);
            assert_eq!(s.golden_record(kind, &earlier).await.unwrap(), None);
        }
        let relation = tongban_store::Relation {
            from_key: format!("K{run}"),
            relation: "lives_in".into(),
            to_key: "R1".into(),
            source_id: "a".into(),
            record_key: run.to_string(),
        };
        s.replace_relations(&tongban_store::Relation::all_borrowed(
            std::slice::from_ref(&relation),
        ))
        .await
        .unwrap();
        assert_eq!(
            s.relations_from(&format!("K{run}")).await.unwrap(),
            vec![relation]
        );
        assert_eq!(
            library_tables_shape(&url).await,
            migrated,
            "after run {run}"
        );
    }
}

/// On PostgreSQL a run does not hold readers of the live libraries while it writes: they are
/// held only while the new tables are swapped in, at the end. (Before, the run dropped the
/// secondary indexes first, which locks the table until the commit, and a governed read waited
/// for the whole run.) Timed: the longest read made while a run of 60,000 records wrote is
/// compared with the run's own length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_readers_are_not_held_while_a_run_writes() {
    let Some(url) = fresh_pg_url("readers").await else {
        return;
    };
    let s = std::sync::Arc::new(tongban_store::open(&url).await.unwrap());
    let run = |n: usize, tag: &'static str| {
        let golden: Vec<tongban_store::GoldenRecord> = (0..n)
            .map(|i| tongban_store::GoldenRecord {
                entity_key: format!("P{i:08}"),
                record: format!(
                    r#"{{"key":"P{i:08}","fields":{{"name":{{"value":"{tag}{i}"}},"phone":{{"value":"139{i:08}"}}}}}}"#
                ),
            })
            .collect();
        let links: Vec<tongban_store::EntityLink> = (0..n)
            .map(|i| tongban_store::EntityLink {
                source_id: "a".into(),
                record_key: i.to_string(),
                role: "subject".into(),
                entity_key: format!("P{i:08}"),
            })
            .collect();
        (links, golden)
    };
    let (links, golden) = run(1_000, "first");
    s.replace_resolution(
        "person",
        1,
        "{}",
        &tongban_store::EntityLink::all_borrowed(&links),
        &golden,
    )
    .await
    .unwrap();
    let (links, golden) = run(60_000, "second");
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            s.replace_resolution(
                "person",
                2,
                "{}",
                &tongban_store::EntityLink::all_borrowed(&links),
                &golden,
            )
            .await
            .unwrap();
            started.elapsed()
        })
    };
    // A connection of its own, so that the store's pool plays no part in the waits.
    let mut reader = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let (mut reads, mut longest) = (0, std::time::Duration::ZERO);
    while !writer.is_finished() {
        let started = std::time::Instant::now();
        let _: Option<String> =
            sqlx::query_scalar("SELECT record FROM golden_person WHERE entity_key = 'P00000007'")
                .fetch_optional(&mut reader)
                .await
                .unwrap();
        let _: Option<String> = sqlx::query_scalar(
            "SELECT entity_key FROM links_person WHERE source_id = 'a' AND record_key = '7'",
        )
        .fetch_optional(&mut reader)
        .await
        .unwrap();
        longest = longest.max(started.elapsed());
        reads += 1;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let run_took = writer.await.unwrap();
    eprintln!("{reads} reads while a run of {run_took:?} wrote, the longest {longest:?}");
    // Held for the whole run, a reader manages two reads (the first waits for the commit);
    // held only for the swap, about ninety, the longest 20–210 ms of a run of about a second.
    assert!(
        reads >= 10,
        "only {reads} reads while the run wrote ({run_took:?})"
    );
    assert!(
        longest * 2 < run_took,
        "a read waited {longest:?} while a run of {run_took:?} wrote"
    );
    let after: Option<String> = s
        .golden_record("person", "P00059999")
        .await
        .unwrap()
        .map(|g| g.record);
    assert!(after.is_some_and(|r| r.contains("second59999")));
}

/// On PostgreSQL two runs of one library at once both succeed, one after the other, and the
/// library is then one run's whole (without the lock a run takes on the live table first, the
/// second run's `LIKE` and the first's `DROP` waited on each other until PostgreSQL cancelled
/// one as a deadlock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_runs_of_one_library_at_once_take_turns() {
    let Some(url) = fresh_pg_url("turns").await else {
        return;
    };
    let mut runs = Vec::new();
    for tag in ["x", "y"] {
        let s = tongban_store::open(&url).await.unwrap();
        let golden: Vec<tongban_store::GoldenRecord> = (0..20_000)
            .map(|i| tongban_store::GoldenRecord {
                entity_key: format!("P{i:08}"),
                record: format!(r#"{{"key":"P{i:08}","fields":{{"name":{{"value":"{tag}"}}}}}}"#),
            })
            .collect();
        runs.push(tokio::spawn(async move {
            s.replace_resolution("person", 1, "{}", &[], &golden)
                .await
                .map(|_| ())
        }));
    }
    for run in runs {
        run.await.unwrap().expect("a run failed");
    }
    let s = tongban_store::open(&url).await.unwrap();
    let mut tags = std::collections::BTreeSet::new();
    for i in (0..20_000).step_by(997) {
        let g = s
            .golden_record("person", &format!("P{i:08}"))
            .await
            .unwrap()
            .expect("a person of the runs is missing");
        tags.insert(g.record.contains(r#""value":"x""#));
    }
    assert_eq!(tags.len(), 1, "the library mixes the two runs");
}

/// The raw values and layout of each stored record, in row order, read behind the store's back.
async fn raw_rows(url: &str) -> Vec<(String, Option<String>)> {
    let sql = "SELECT r.raw, l.columns FROM records r \
               LEFT JOIN record_layouts l ON l.id = r.raw_layout ORDER BY r.id";
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let db = rusqlite::Connection::open(path).unwrap();
            let mut q = db.prepare(sql).unwrap();
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        }
        None => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(sql)
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        }
    }
}

/// A record handed over as its values and its header's column names is kept that way, the
/// header once however many records (and `Arc`s) share it, and read back as the object it was
/// delivered as, byte for byte, escapes and all; a duplicate of it goes to quarantine as the
/// object; a record handed over as an object is kept as it came. A layout added by a chunk that
/// fails goes with the chunk.
#[tokio::test]
async fn raw_records_are_kept_as_values_and_read_back_as_objects() {
    let (stores, _dir) = stores_with_urls("raw_layouts").await;
    let header = r#"["姓名","a\"b","c"]"#;
    let with_values = |key: &str, values: &str, columns: &str| IncomingRecord {
        raw: values.into(),
        raw_columns: Some(std::sync::Arc::from(columns)),
        ..rec(key, values)
    };
    for (url, s) in &stores {
        s.put_source(&source_s()).await.unwrap();
        let b = s.begin_batch("s", "f.csv").await.unwrap();
        let records = vec![
            with_values("a", r#"["张三","x\\\"y\n","1"]"#, header),
            // Another `Arc` of the same header, and a record with fewer values than columns.
            with_values("b", r#"["李四"]"#, header),
            with_values("c", r#"["王五"]"#, r#"["姓名"]"#),
            rec("d", "plain"),
            with_values("a", r#"["again","",""]"#, header),
        ];
        let o = s.store_chunk(b, "s", records, vec![]).await.unwrap();
        assert_eq!((o.inserted, o.quarantined), (4, 1), "{url}");
        let history = |k: &'static str| async move { s.record_history("s", k).await.unwrap() };
        assert_eq!(
            history("a").await[0].raw,
            r#"{"姓名":"张三","a\"b":"x\\\"y\n","c":"1"}"#
        );
        assert_eq!(history("b").await[0].raw, r#"{"姓名":"李四"}"#);
        assert_eq!(history("c").await[0].raw, r#"{"姓名":"王五"}"#);
        assert_eq!(history("d").await[0].raw, rec("d", "plain").raw);
        let held = s
            .quarantine_list(Some("s"), Some(QuarantineStatus::Held), 10)
            .await
            .unwrap();
        assert_eq!(held.len(), 1, "{url}");
        assert_eq!(held[0].raw, r#"{"姓名":"again","a\"b":"","c":""}"#, "{url}");
        let rows = raw_rows(url).await;
        assert_eq!(rows.len(), 4, "{url}");
        assert_eq!(
            rows[0],
            (r#"["张三","x\\\"y\n","1"]"#.into(), Some(header.into()))
        );
        assert_eq!(rows[1].1.as_deref(), Some(header));
        assert_eq!(rows[3].1, None);
        let current = s.current_records("s", None, 10).await.unwrap();
        assert_eq!(current[0].raw, history("a").await[0].raw);
        // A record delivered again unchanged (the same hash) is not stored again, so neither
        // is the header it came with.
        assert_eq!(count_layouts(url).await, 2, "{url}");
        let again = s.begin_batch("s", "g.csv").await.unwrap();
        let same = IncomingRecord {
            raw_columns: Some(std::sync::Arc::from(r#"["other"]"#)),
            ..with_values("b", r#"["李四"]"#, header)
        };
        let o = s.store_chunk(again, "s", vec![same], vec![]).await.unwrap();
        assert_eq!(o.unchanged, 1, "{url}");
        // A chunk that fails (its source unknown) leaves no layout behind.
        assert_eq!(count_layouts(url).await, 2, "{url}");
        let failed = s
            .store_chunk(
                b,
                "nowhere",
                vec![with_values("z", r#"["1"]"#, r#"["new"]"#)],
                vec![],
            )
            .await;
        assert!(failed.is_err(), "{url}");
        assert_eq!(count_layouts(url).await, 2, "{url}");
    }
}

async fn count_layouts(url: &str) -> i64 {
    let sql = "SELECT count(*) FROM record_layouts";
    match url.strip_prefix("sqlite://") {
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap(),
        None => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(sql).fetch_one(&mut conn).await.unwrap().get(0)
        }
    }
}
