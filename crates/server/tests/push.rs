//! The intake push endpoint over real HTTP on 127.0.0.1, against a real SQLite store.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one HTTP/1.1 request and returns the status and body.
async fn request(
    addr: std::net::SocketAddr,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // A server may refuse before reading a large body; a failed write is then expected.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn start(key: Option<&str>) -> (std::net::SocketAddr, tempfile::TempDir) {
    start_with(key, false).await
}

/// A server with the push endpoint, and with the governed API and its audit log when `audited`.
async fn start_with(key: Option<&str>, audited: bool) -> (std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = tongban_store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let text = std::fs::read_to_string("../../mappings/synth/grid_collection.toml").unwrap();
    let m = tongban_intake::mapping::Mapping::parse(&text, "grid_collection.toml").unwrap();
    store
        .put_source(&tongban_intake::pipeline::source_row(&m, &text))
        .await
        .unwrap();
    let store: Arc<dyn tongban_store::Store> = Arc::from(store);
    let sharing = if audited {
        let catalogue = tongban_sharing::catalogue::catalogue(store.as_ref())
            .await
            .unwrap();
        Some(Arc::new(tongban_server::governed::Sharing::new(
            tongban_sharing::identity::Identities::new(store.clone()),
            tongban_sharing::writer::AuditLog::start(
                store.clone(),
                ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
                Default::default(),
            )
            .await
            .unwrap(),
            catalogue,
        )))
    } else {
        None
    };
    let state = tongban_server::AppState {
        store,
        intake_key: key.map(String::from),
        max_body: 4096,
        sharing,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tongban_server::serve_on(listener, state));
    (addr, dir)
}

const BATCH: &str = "{\"cjbh\":\"a1\",\"xm\":\"张三\",\"zjhm\":\"11010519491231002X\",\"dz\":\"青剑湖花园12-3-1001\"}\n{\"cjbh\":\"a2\",\"xm\":\"李四\",\"zjhm\":\"110105194912310021\"}\nnot json\n";

#[tokio::test]
async fn a_department_pushes_a_batch() {
    let (addr, _dir) = start(Some("s3cret")).await;
    let path = "/api/intake/grid_collection/batches";
    let (status, body) = request(addr, path, Some("s3cret"), BATCH.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    // Two records stored (a bad id only warns in the grid mapping), the unreadable line held.
    assert_eq!(v["batch"]["counts"]["inserted"], 2, "{v}");
    assert_eq!(v["batch"]["counts"]["quarantined"], 1, "{v}");
    assert_eq!(v["read"]["unreadable"], 1);
    // Its times are RFC 3339 in China Standard Time, as the API's other times, and in order.
    let time = |field: &str| {
        let t = v["batch"][field].as_str().unwrap_or_default();
        assert!(t.ends_with("+08:00"), "{field}: {v}");
        chrono::DateTime::parse_from_rfc3339(t).unwrap()
    };
    assert!(time("started_at") <= time("finished_at"), "{v}");
    // The same batch again, written with a byte-order mark: nothing changes.
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), BATCH.as_bytes()].concat();
    let (status, body) = request(addr, path, Some("s3cret"), &with_bom).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let counts = &v["batch"]["counts"];
    assert_eq!(
        (counts["unchanged"].as_i64(), counts["inserted"].as_i64()),
        (Some(2), Some(0)),
        "{v}"
    );
    assert_eq!(v["redelivered"], serde_json::json!([]), "{v}");
    // A record without its required name is held; pushed again with the name, it is stored and
    // its held entry closes as redelivered (the unreadable line's entry, without a key, stays).
    let (_, body) = request(addr, path, Some("s3cret"), b"{\"cjbh\":\"a3\"}\n").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["batch"]["counts"]["quarantined"], 1, "{v}");
    let (_, body) = request(
        addr,
        path,
        Some("s3cret"),
        "{\"cjbh\":\"a3\",\"xm\":\"王五\"}\n".as_bytes(),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["batch"]["counts"]["inserted"], 1, "{v}");
    assert_eq!(v["redelivered"].as_array().map(Vec::len), Some(1), "{v}");
}

#[tokio::test]
async fn hostile_and_malformed_pushes_get_a_clear_4xx() {
    let (addr, _dir) = start(Some("s3cret")).await;
    let path = "/api/intake/grid_collection/batches";
    // (path, key, body, expected status, expected error code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (path, None, BATCH.into(), 401, "no_key"),
        (path, Some("wrong"), BATCH.into(), 401, "bad_key"),
        (
            "/api/intake/nope/batches",
            Some("s3cret"),
            BATCH.into(),
            404,
            "unknown_source",
        ),
        (
            "/api/intake/x';DROP%20TABLE%20records;--/batches",
            Some("s3cret"),
            BATCH.into(),
            400,
            "bad_source",
        ),
        (path, Some("s3cret"), Vec::new(), 400, "empty_body"),
        (
            path,
            Some("s3cret"),
            b"  \n\r\n \n".to_vec(),
            400,
            "empty_body",
        ),
        // A CSV file sent to the endpoint: refused whole, not quarantined line by line.
        (
            path,
            Some("s3cret"),
            "cjbh,xm,zjhm\na1,张三,11010519491231002X\n".into(),
            400,
            "line 1 is not a JSON object",
        ),
        (
            path,
            Some("s3cret"),
            vec![0xff, 0xfe, b'\n'],
            400,
            "not_utf8",
        ),
        (path, Some("s3cret"), vec![b'{'; 10_000], 413, ""),
    ];
    for (p, key, body, want, code) in cases {
        let (status, text) = request(addr, p, key, &body).await;
        assert_eq!(status, want, "{p} {key:?}: {text}");
        assert!(text.contains(code), "{p}: {text}");
        assert!(
            !text.to_lowercase().contains("sqlite") && !text.contains("/tmp"),
            "leaks internals: {text}"
        );
    }
    // None of them began a batch.
    let store = tongban_store::open(&format!("sqlite://{}", _dir.path().join("t.db").display()))
        .await
        .unwrap();
    assert!(
        store
            .batches(Some("grid_collection"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_pushed_batch_is_audited_where_the_server_keeps_a_log() {
    let (addr, dir) = start_with(Some("s3cret"), true).await;
    let path = "/api/intake/grid_collection/batches";
    let (status, body) = request(addr, path, Some("s3cret"), BATCH.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let store = tongban_store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let entries = store.audit_entries(0, 100).await.unwrap();
    let pushed: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "intake.push")
        .collect();
    assert_eq!(pushed.len(), 1, "{entries:?}");
    assert_eq!(
        (pushed[0].actor.as_str(), pushed[0].subject.as_str()),
        ("push:grid_collection", "grid_collection")
    );
    assert!(
        pushed[0].detail.contains("\"inserted\":2"),
        "{}",
        pushed[0].detail
    );
}

#[tokio::test]
async fn without_a_key_the_endpoint_is_off() {
    let (addr, _dir) = start(None).await;
    let (status, text) = request(
        addr,
        "/api/intake/grid_collection/batches",
        Some("anything"),
        BATCH.as_bytes(),
    )
    .await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("intake_disabled"));
}
