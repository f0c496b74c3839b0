//! The audit log on both store backends: concurrent appends are batched, chained and answered
//! only once stored; the chain continues across restarts; and each kind of tampering with the
//! stored rows — a changed, deleted, reordered or forged entry, a doctored checkpoint — is found
//! where it happened.

use std::sync::Arc;
use tongban_sharing::audit::{Event, Finding};
use tongban_sharing::writer::{AuditLog, Settings, verify_store};
use tongban_store::Store;

/// (url, store) for SQLite in `dir` and, when the test script provides one, PostgreSQL (a
/// database of its own per `name`, since tests run at once).
async fn stores(dir: &std::path::Path, name: &str) -> Vec<(String, Arc<dyn Store>)> {
    let mut urls = vec![format!(
        "sqlite://{}",
        dir.join(format!("{name}.db")).display()
    )];
    if let Ok(url) = std::env::var("TONGBAN_TEST_PG_URL") {
        urls.push(
            tongban_store::testing::fresh_postgres(&url, name)
                .await
                .unwrap(),
        );
    } else {
        assert!(
            std::env::var("TONGBAN_REQUIRE_PG").as_deref() != Ok("1"),
            "PostgreSQL required but not provided"
        );
    }
    let mut out = Vec::new();
    for url in urls {
        let store: Arc<dyn Store> = tongban_store::open(&url).await.unwrap().into();
        out.push((url, store));
    }
    out
}

fn event(i: i64) -> Event {
    Event {
        at: 1_700_000_000_000 + i,
        actor: format!("clerk{}", i % 5),
        action: "read.person".into(),
        subject: format!("P{i:05}"),
        detail: format!(
            "{{\"fields\":[\"name\",\"phone\"],\"grant\":\"G{}\"}}",
            i % 3
        ),
    }
}

async fn findings(store: &dyn Store, key: &ed25519_dalek::SigningKey) -> Vec<Finding> {
    verify_store(store, &key.verifying_key())
        .await
        .unwrap()
        .findings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_chains_batches_and_shows_every_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    for (url, store) in stores(dir.path(), "audit").await {
        let settings = Settings {
            checkpoint_every: 50,
        };
        let log = AuditLog::start(store.clone(), key.clone(), settings.clone())
            .await
            .unwrap();
        // Three hundred readers at once: every one is answered with its own place in the log.
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(event(i)).await })
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap().unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=300).collect::<Vec<i64>>(), "{url}");
        assert!(findings(store.as_ref(), &key).await.is_empty());
        assert_eq!(store.audit_checkpoints().await.unwrap().len(), 6);

        // A restarted writer continues the chain and its checkpoint range.
        drop(log);
        let log = AuditLog::start(store.clone(), key.clone(), settings)
            .await
            .unwrap();
        for i in 300..330 {
            log.append(event(i)).await.unwrap();
        }
        assert_eq!(store.last_audit().await.unwrap().unwrap().seq, 330);
        // A command line writing beside the running writer takes the next number; the writer
        // continues after it instead of failing its callers.
        tongban_sharing::writer::append_now(
            store.as_ref(),
            &key,
            &Settings {
                checkpoint_every: 50,
            },
            vec![event(900)],
        )
        .await
        .unwrap();
        assert_eq!(log.append(event(901)).await.unwrap(), 332);
        assert!(findings(store.as_ref(), &key).await.is_empty());
        assert!(findings(store.as_ref(), &key).await.is_empty());
        assert_eq!(store.audit_checkpoints().await.unwrap().len(), 6);

        let sql = |s: &str| {
            let (url, s) = (url.clone(), s.to_string());
            async move { tongban_store::testing::execute_raw(&url, &s).await.unwrap() }
        };

        // A changed entry.
        let original = store.audit_entries(41, 1).await.unwrap().remove(0).subject;
        sql("UPDATE audit_log SET subject = 'P99999' WHERE seq = 42").await;
        let f = findings(store.as_ref(), &key).await;
        assert!(f.contains(&Finding::Changed { seq: 42 }), "{url}: {f:?}");
        assert!(f.contains(&Finding::CheckpointMismatch { from: 1, to: 50 }));
        sql(&format!(
            "UPDATE audit_log SET subject = '{original}' WHERE seq = 42"
        ))
        .await;
        assert!(findings(store.as_ref(), &key).await.is_empty(), "{url}");

        // A deleted entry (kept aside and put back).
        let row = store.audit_entries(99, 1).await.unwrap().remove(0);
        sql("DELETE FROM audit_log WHERE seq = 100").await;
        let f = findings(store.as_ref(), &key).await;
        assert!(
            f.contains(&Finding::Missing { from: 100, to: 100 }),
            "{url}: {f:?}"
        );
        assert!(f.contains(&Finding::BrokenLink { seq: 101 }));
        store.append_audit(&[row], None).await.unwrap();
        assert!(findings(store.as_ref(), &key).await.is_empty(), "{url}");

        // Two entries swapping places.
        sql("UPDATE audit_log SET seq = -10 WHERE seq = 10").await;
        sql("UPDATE audit_log SET seq = 10 WHERE seq = 11").await;
        sql("UPDATE audit_log SET seq = 11 WHERE seq = -10").await;
        let f = findings(store.as_ref(), &key).await;
        assert!(f.contains(&Finding::Changed { seq: 10 }), "{url}: {f:?}");
        assert!(f.contains(&Finding::Changed { seq: 11 }));
        sql("UPDATE audit_log SET seq = -10 WHERE seq = 10").await;
        sql("UPDATE audit_log SET seq = 10 WHERE seq = 11").await;
        sql("UPDATE audit_log SET seq = 11 WHERE seq = -10").await;
        assert!(findings(store.as_ref(), &key).await.is_empty(), "{url}");

        // A forged entry slipped in between two others, correctly chained to the one before
        // it, the rest renumbered to make room: the entry after it no longer follows it, and
        // the signed checkpoint of its range disagrees.
        sql("UPDATE audit_log SET seq = seq + 1000 WHERE seq > 200").await;
        sql("UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000").await;
        let before = store.audit_entries(199, 1).await.unwrap().remove(0);
        let forged = tongban_sharing::audit::chain(200, &before.hash, vec![event(9_999)]).remove(0);
        let forged = tongban_store::AuditRow {
            seq: forged.seq,
            at: forged.event.at,
            actor: forged.event.actor,
            action: forged.event.action,
            subject: forged.event.subject,
            detail: forged.event.detail,
            prev: forged.prev,
            hash: forged.hash,
        };
        store.append_audit(&[forged], None).await.unwrap();
        let f = findings(store.as_ref(), &key).await;
        assert!(!f.contains(&Finding::Changed { seq: 201 }), "{url}: {f:?}");
        assert!(
            f.contains(&Finding::BrokenLink { seq: 202 }),
            "{url}: {f:?}"
        );
        assert!(f.contains(&Finding::CheckpointMismatch { from: 201, to: 250 }));
        sql("DELETE FROM audit_log WHERE seq = 201").await;
        sql("UPDATE audit_log SET seq = seq + 1000 WHERE seq > 201").await;
        sql("UPDATE audit_log SET seq = seq - 1001 WHERE seq > 1000").await;
        assert!(findings(store.as_ref(), &key).await.is_empty(), "{url}");

        // A doctored checkpoint: its root's first byte changed. The entries came in no set
        // order, so the root differs from run to run, and one in 256 already begins with 00.
        sql("UPDATE audit_checkpoints SET root = \
             CASE WHEN substr(root, 1, 2) = '00' THEN 'ff' ELSE '00' END || substr(root, 3) \
             WHERE from_seq = 51")
        .await;
        let f = findings(store.as_ref(), &key).await;
        assert_eq!(
            f,
            vec![Finding::BadSignature { from: 51, to: 100 }],
            "{url}"
        );

        // The append-only store refuses a number already taken.
        let taken = store.audit_entries(0, 1).await.unwrap();
        assert!(store.append_audit(&taken, None).await.is_err());
    }
}

/// A day's reads are counted from the log since the day began, found by bisection: reading
/// after the sequence number it gives misses no entry stamped at or after the time asked for
/// (entries a little out of order included), and skips everything stamped more than the slack
/// before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_read_from_a_time_without_reading_what_came_long_before() {
    use tongban_sharing::writer::{STAMP_SLACK_MS, append_now, read_after_for};
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let settings = Settings {
        checkpoint_every: 1_000,
    };
    let hour = 3_600_000;
    let start = 1_700_000_000_000;
    for (_, store) in stores(dir.path(), "audit_from").await {
        let store = store.as_ref();
        assert_eq!(read_after_for(store, start).await.unwrap(), i64::MIN);
        // Three days, an entry every 30 s, each stamped up to 40 s early or late (so that
        // neighbours are often out of order).
        let events: Vec<Event> = (0..8_640)
            .map(|i| Event {
                at: start + i * 30_000 + (i * 7_919 % 80_000) - 40_000,
                ..event(i)
            })
            .collect();
        let stamps: Vec<i64> = events.iter().map(|e| e.at).collect();
        append_now(store, &key, &settings, events).await.unwrap();
        let seqs: Vec<i64> = store
            .audit_entries(i64::MIN, 10_000)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs.len(), stamps.len());
        for at in [
            start - hour,
            start + 5 * hour,
            start + 30 * hour,
            start + 71 * hour,
            start + 80 * hour,
        ] {
            let after = read_after_for(store, at).await.unwrap();
            for (seq, stamp) in seqs.iter().zip(&stamps) {
                if *stamp >= at {
                    assert!(
                        *seq > after,
                        "entry {seq} stamped at or after {at} would be missed"
                    );
                }
                if *stamp < at - STAMP_SLACK_MS - 60_000 {
                    assert!(
                        *seq <= after,
                        "entry {seq}, long before {at}, would be read again"
                    );
                }
            }
        }
        // Nothing stamped since: nothing to read.
        let last = store.last_audit().await.unwrap().unwrap();
        assert_eq!(
            read_after_for(store, start + 100 * hour).await.unwrap(),
            last.seq
        );
    }
}
