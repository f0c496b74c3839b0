//! The governed query API over real HTTP on 127.0.0.1, on SQLite and (when the test script
//! provides one) PostgreSQL: tokens, jurisdiction, masking, a grant that unmasks a field, and
//! an audit entry for every answered read.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tongban_sharing::identity::Role;
use tongban_store::{EntityLink, GoldenRecord, LinkRef, Relation, Store};

async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    send(addr, "GET", path, token, b"").await
}

/// The whole HTTP answer to a GET, as text.
async fn raw(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

async fn stores(dir: &std::path::Path, name: &str) -> Vec<Arc<dyn Store>> {
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
    }
    let mut out = Vec::new();
    for u in urls {
        out.push(Arc::from(tongban_store::open(&u).await.unwrap()));
    }
    out
}

fn kept(value: &str) -> serde_json::Value {
    serde_json::json!({"value": value, "source": "police_household", "record_key": "1", "role": "subject", "date": "2020-01-01", "agreeing": 1, "disagreeing": 0})
}

const PERSON: &str = "P0123456789abcdef";
const ROOM: &str = "R0123456789abcdef";
const BUILDING: &str = "B0123456789abcdef";
/// A company at a door number (亭融街1022号): its premises are in no register's community, only
/// in the street its address names.
const ENTITY: &str = "E0123456789abcdef";
const DOOR: &str = "B00006a54222ac4ae";

/// The person's record as the libraries store it, citing its one record once (the API spells
/// each field's provenance out); `kept` above is that form, which older stores hold and the
/// test of a changed record writes.
async fn libraries(store: &dyn Store) {
    let kept = |value| tongban_libraries::golden_text::Kept {
        value,
        source: "police_household",
        record_key: "1",
        role: "subject",
        date: "2020-01-01",
        agreeing: 1,
        disagreeing: 0,
    };
    let golden = tongban_libraries::golden_text::golden_text(
        PERSON,
        1,
        &["police_household"],
        &[
            ("name", kept("王小明")),
            ("citizen_id", kept("32052419940827603X")),
            ("phone", kept("13912345678")),
            ("ethnicity", kept("汉族")),
            ("sex", kept("1")),
            ("birth_date", kept("1994-08-27")),
            ("residence", kept("320576|青剑湖花园|1|2|301")),
        ],
    );
    assert!(golden.contains("\"cited\":["));
    let link = |k: &str, e: &str| EntityLink {
        source_id: "police_household".into(),
        record_key: k.into(),
        role: "subject".into(),
        entity_key: e.into(),
    };
    store
        .replace_resolution(
            "person",
            1,
            "{}",
            &[link("1", PERSON).borrowed()],
            &[GoldenRecord {
                entity_key: PERSON.into(),
                record: golden,
            }],
        )
        .await
        .unwrap();
    store
        .replace_resolution(
            "building",
            1,
            "{}",
            &[link("1", BUILDING).borrowed()],
            &[
                GoldenRecord {
                    entity_key: BUILDING.into(),
                    record: r#"{"key":"B0123456789abcdef","address_key":"320576|青剑湖花园|1","community":"320576052001"}"#.into(),
                },
                GoldenRecord {
                    entity_key: DOOR.into(),
                    record: r#"{"key":"B00006a54222ac4ae","address_key":"320576|亭融街1022号|","community":"","division":"320576052","mentions":1,"by_role":{"premises":1},"sources":["market_entities"]}"#.into(),
                },
            ],
        )
        .await
        .unwrap();
    store
        .replace_resolution(
            "entity",
            1,
            "{}",
            &[],
            &[GoldenRecord {
                entity_key: ENTITY.into(),
                record: r#"{"key":"E0123456789abcdef","mentions":1,"sources":["market_entities"],"fields":{"credit_code":{"value":"91320576MA0000007M","source":"market_entities","record_key":"91320576MA0000007M","role":"subject","date":"2020-01-01","agreeing":1},"name":{"value":"苏州唯亭示例科技有限公司","source":"market_entities","record_key":"91320576MA0000007M","role":"subject","date":"2020-01-01","agreeing":1},"address":{"value":"320576|亭融街1022号|","source":"market_entities","record_key":"91320576MA0000007M","role":"subject","date":"2020-01-01","agreeing":1}}}"#.into(),
            }],
        )
        .await
        .unwrap();
    let rel = |f: &str, r: &str, t: &str| Relation {
        from_key: f.into(),
        relation: r.into(),
        to_key: t.into(),
        source_id: "police_household".into(),
        record_key: "1".into(),
    };
    store
        .replace_relations(&Relation::all_borrowed(&[
            rel(PERSON, "lives_in", ROOM),
            rel(ROOM, "in_building", BUILDING),
            rel(ENTITY, "located_at", DOOR),
        ]))
        .await
        .unwrap();
}

/// A server over `store` with two departments, a clerk in the street, a clerk in another street
/// and an admin; returns its address, the identities, the two clerks' tokens, the audit key and
/// the catalogue.
async fn start(
    store: Arc<dyn Store>,
) -> (
    std::net::SocketAddr,
    tongban_sharing::identity::Identities,
    String,
    String,
    ed25519_dalek::SigningKey,
    Vec<tongban_sharing::catalogue::Resource>,
) {
    let ids = tongban_sharing::identity::Identities::new(store.clone());
    ids.add_department("minzheng", "民政局", "320576")
        .await
        .unwrap();
    ids.add_department("bureau", "大数据局", "320576")
        .await
        .unwrap();
    ids.add_user(
        "clerk01",
        "王芳",
        Some("minzheng"),
        Role::WindowClerk,
        "320576052",
    )
    .await
    .unwrap();
    ids.add_user(
        "far01",
        "李强",
        Some("minzheng"),
        Role::WindowClerk,
        "320576050",
    )
    .await
    .unwrap();
    ids.add_user(
        "admin",
        "管理员",
        Some("bureau"),
        Role::DataBureauAdmin,
        "320576",
    )
    .await
    .unwrap();
    let (_, clerk) = ids.issue_token("clerk01", None).await.unwrap();
    let (_, far) = ids.issue_token("far01", None).await.unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let catalogue = tongban_sharing::catalogue::catalogue(store.as_ref())
        .await
        .unwrap();
    let addr = serve(store, &key, &catalogue).await;
    (addr, ids, clerk, far, key, catalogue)
}

/// A server over `store` as it stands, with an audit log that goes on from the stored one: a
/// second one over the same store is the first restarted (once the first is left idle).
async fn serve(
    store: Arc<dyn Store>,
    key: &ed25519_dalek::SigningKey,
    catalogue: &[tongban_sharing::catalogue::Resource],
) -> std::net::SocketAddr {
    let sharing = tongban_server::governed::Sharing::new(
        tongban_sharing::identity::Identities::new(store.clone()),
        tongban_sharing::writer::AuditLog::start(store.clone(), key.clone(), Default::default())
            .await
            .unwrap(),
        catalogue.to_vec(),
    );
    let state = tongban_server::AppState {
        store,
        intake_key: None,
        max_body: 4096,
        sharing: Some(Arc::new(sharing)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tongban_server::serve_on(listener, state));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_decided_field_by_field_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path(), "governed_reads").await {
        libraries(store.as_ref()).await;
        let (addr, ids, clerk, far, key, catalogue) = start(store.clone()).await;
        let path = format!("/api/persons/{PERSON}");

        assert_eq!(get(addr, &path, None).await.0, 401);
        let (status, doc) = get(addr, "/api/openapi.json", None).await;
        assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));
        // Swagger UI is served from the binary, its script included.
        let page = raw(addr, "/api/docs").await;
        assert!(
            page.starts_with("HTTP/1.1 200") && page.contains("/api/openapi.json"),
            "{page}"
        );
        let script = raw(addr, "/api/docs/swagger-ui-bundle.js").await;
        assert!(script.starts_with("HTTP/1.1 200") && script.len() > 100_000);
        let forged = format!("{}{}", &clerk[..16], "0".repeat(48));
        let (status, body) = get(addr, &path, Some(&forged)).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("bad_token")));
        // Outside the jurisdiction: the same answer as for a key that does not exist.
        let (status, outside) = get(addr, &path, Some(&far)).await;
        let (_, unknown) = get(addr, "/api/persons/P0000000000000000", Some(&far)).await;
        assert_eq!((status, &outside["error"]), (404, &unknown["error"]));
        assert_eq!(
            get(addr, "/api/persons/P0000000000000000", Some(&clerk))
                .await
                .0,
            404
        );
        assert_eq!(
            get(addr, "/api/persons/..%2Fetc", Some(&clerk)).await.0,
            400
        );

        // Unknown paths and methods get JSON errors too.
        let (status, body) = get(addr, "/api/nope", Some(&clerk)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{body}"
        );
        let (status, body) = send(addr, "DELETE", &path, Some(&clerk), b"").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (405, Some("method_not_allowed")),
            "{body}"
        );

        // A building is open to any official in whose jurisdiction it lies.
        let (status, body) = get(addr, &format!("/api/buildings/{BUILDING}"), Some(&clerk)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["fields"]["community"]["value"], "320576052001");
        assert_eq!(
            get(addr, &format!("/api/buildings/{BUILDING}"), Some(&far))
                .await
                .0,
            404
        );
        assert_eq!(
            get(addr, &format!("/api/rooms/{ROOM}"), Some(&clerk))
                .await
                .0,
            404
        );
        assert_eq!(
            get(addr, "/api/entities/P0123456789abcdef", Some(&clerk))
                .await
                .0,
            400
        );
        // A company whose premises no register puts in a community lies in the street its
        // address names: the street's clerk reads it, another street's does not.
        let (status, body) = get(addr, &format!("/api/entities/{ENTITY}"), Some(&clerk)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["community"], "320576052");
        assert_eq!(body["fields"]["name"]["value"], "苏州唯亭示例科技有限公司");
        assert_eq!(
            get(addr, &format!("/api/entities/{ENTITY}"), Some(&far))
                .await
                .0,
            404
        );
        assert_eq!(
            get(addr, &format!("/api/buildings/{DOOR}"), Some(&clerk))
                .await
                .0,
            200
        );

        // No grant: the conditional fields are masked, the closed one withheld.
        let (status, body) = get(addr, &path, Some(&clerk)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["fields"]["phone"]["masked"], "139******78");
        assert_eq!(body["fields"]["citizen_id"]["masked"], "3205**********603X");
        assert!(body["fields"].get("ethnicity").is_none());
        assert_eq!(body["withheld"], serde_json::json!(["ethnicity"]));
        assert_eq!(body["community"], "320576052001");

        // The provider approves a request for the phone: it shows, with its provenance, and
        // the answer names the grant and purpose.
        let clerk_p = ids
            .authenticate(&clerk, tongban_store::now_millis())
            .await
            .unwrap();
        let (_, admin_token) = ids.issue_token("admin", None).await.unwrap();
        let admin_p = ids
            .authenticate(&admin_token, tongban_store::now_millis())
            .await
            .unwrap();
        let ask = |scope: &str| tongban_sharing::policy::Request {
            resource: "library.person".into(),
            fields: vec!["phone".into()],
            purpose: "social_assistance.eligibility".into(),
            legal_basis: "社会救助暂行办法".into(),
            scope: scope.into(),
            days: 30,
            daily_quota: 2,
        };
        // A scope outside the division the department serves (Beijing's 朝阳区) is refused.
        let refused =
            tongban_sharing::policy::request(store.as_ref(), &catalogue, &clerk_p, ask("110105"))
                .await
                .unwrap_err()
                .to_string();
        assert!(
            refused.contains("110105") && refused.contains("320576"),
            "{refused}"
        );
        let g = tongban_sharing::policy::request(
            store.as_ref(),
            &catalogue,
            &clerk_p,
            ask("320576052"),
        )
        .await
        .unwrap();
        tongban_sharing::policy::decide_stored(
            store.as_ref(),
            &catalogue,
            &admin_p,
            &g.id,
            true,
            "",
        )
        .await
        .unwrap();
        // Grants are reread at most a second late.
        tokio::time::sleep(std::time::Duration::from_millis(
            tongban_server::governed::GRANTS_FRESH_MS as u64 + 50,
        ))
        .await;
        let (status, body) = get(addr, &path, Some(&clerk)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["fields"]["phone"]["value"], "13912345678");
        assert_eq!(body["fields"]["phone"]["source"], "police_household");
        assert_eq!(body["served_under"][0]["grant"], g.id.as_str());
        assert!(body["fields"]["name"]["masked"].is_string(), "not granted");
        // The quota is two reads a day: the second is served, the third finds it spent.
        let (_, body) = get(addr, &path, Some(&clerk)).await;
        assert_eq!(body["fields"]["phone"]["value"], "13912345678");
        let (status, body) = get(addr, &path, Some(&clerk)).await;
        assert_eq!(status, 200);
        assert!(body["fields"]["phone"]["masked"].is_string(), "{body}");
        assert_eq!(body["quota_exhausted"][0], g.id.as_str());
        // Restarted, the server counts the day's reads under the grant from the audit log, and
        // finds the quota spent (the first server is left idle from here on).
        let addr = serve(store.clone(), &key, &catalogue).await;
        let (status, body) = get(addr, &path, Some(&clerk)).await;
        assert_eq!(status, 200);
        assert!(body["fields"]["phone"]["masked"].is_string(), "{body}");
        assert_eq!(body["quota_exhausted"][0], g.id.as_str());

        // The citizen sees who read their record, for what; and reads it whole (but for the
        // closed field); another citizen's record stays out of reach, and so does the access
        // list for an official.
        ids.add_user(PERSON, "王小明", None, Role::Citizen, "320576052001")
            .await
            .unwrap();
        let (_, me) = ids.issue_token(PERSON, None).await.unwrap();
        let (status, body) = get(addr, "/api/me/accesses", Some(&me)).await;
        assert_eq!(status, 200, "{body}");
        let accesses = body["accesses"].as_array().unwrap();
        assert_eq!(accesses.len(), 5);
        assert_eq!(accesses[0]["user"], "clerk01");
        assert_eq!(accesses[0]["department"], "minzheng");
        // The time is RFC 3339 in China Standard Time, and it is the log's time of the read.
        let at = accesses[0]["at"].as_str().expect("a time as text");
        let parsed = chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
        assert!(at.ends_with("+08:00"), "{at}");
        let newest = store
            .audit_of_subject(PERSON, 1_000)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.action == "read.person")
            .unwrap();
        assert_eq!(parsed.timestamp_millis(), newest.at);
        let granted = accesses
            .iter()
            .find(|a| a["served_under"][0]["purpose"] == "social_assistance.eligibility")
            .expect("a read under the grant");
        assert!(
            granted["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "phone")
        );
        assert_eq!(get(addr, "/api/me/accesses", Some(&clerk)).await.0, 403);
        let (status, body) = get(addr, &path, Some(&me)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["fields"]["name"]["value"], "王小明");
        assert_eq!(body["withheld"], serde_json::json!(["ethnicity"]));
        assert_eq!(
            get(addr, "/api/persons/P0000000000000001", Some(&me))
                .await
                .0,
            404
        );

        // Every answered read, and the refused one, is in the log, which verifies.
        let entries = store.audit_entries(0, 100).await.unwrap();
        let reads = entries
            .iter()
            .filter(|e| e.action == "read.person" && e.actor == "clerk01")
            .count();
        assert_eq!(reads, 5);
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.action.ends_with(".denied"))
                .count(),
            // The person, the building and the company read from another street.
            3
        );
        let check = tongban_sharing::writer::verify_store(store.as_ref(), &key.verifying_key())
            .await
            .unwrap();
        assert!(check.findings.is_empty(), "{:?}", check.findings);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_and_bulk_lookups_are_governed_and_hostile_requests_get_4xx() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path(), "governed_search").await {
        libraries(store.as_ref()).await;
        let (addr, ids, clerk, far, _key, catalogue) = start(store.clone()).await;
        let by_phone = "/api/persons?phone=139-1234-5678";
        // Without a grant the phone is masked, so a search by phone finds nobody: a search
        // never tells what a read would hide.
        let (status, body) = get(addr, by_phone, Some(&clerk)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"], serde_json::json!([]));
        // The answer says why, from the caller's grants alone: the same note for a number
        // that is in the libraries and one that is not.
        let note = body["note"].as_str().unwrap_or("").to_string();
        assert!(note.contains("without an active grant for phone"), "{body}");
        let (_, unknown) = get(addr, "/api/persons?phone=13800000000", Some(&clerk)).await;
        assert_eq!(unknown["note"].as_str(), Some(note.as_str()));
        let by_name = "/api/persons?name=%E7%8E%8B%E5%B0%8F%E6%98%8E&birth_date=1994-08-27";
        assert_eq!(
            get(addr, by_name, Some(&clerk)).await.1["results"],
            serde_json::json!([])
        );

        // With the phone granted, the search finds the person and names the grant.
        let clerk_p = ids
            .authenticate(&clerk, tongban_store::now_millis())
            .await
            .unwrap();
        let (_, admin_token) = ids.issue_token("admin", None).await.unwrap();
        let admin_p = ids
            .authenticate(&admin_token, tongban_store::now_millis())
            .await
            .unwrap();
        let g = tongban_sharing::policy::request(
            store.as_ref(),
            &catalogue,
            &clerk_p,
            tongban_sharing::policy::Request {
                resource: "library.person".into(),
                fields: vec!["phone".into(), "residence".into()],
                purpose: "social_assistance.eligibility".into(),
                legal_basis: "社会救助暂行办法".into(),
                scope: "320576".into(),
                days: 30,
                daily_quota: 100,
            },
        )
        .await
        .unwrap();
        tongban_sharing::policy::decide_stored(
            store.as_ref(),
            &catalogue,
            &admin_p,
            &g.id,
            true,
            "",
        )
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(
            tongban_server::governed::GRANTS_FRESH_MS as u64 + 50,
        ))
        .await;
        let (status, body) = get(addr, by_phone, Some(&clerk)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("note").is_none(), "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{body}");
        assert_eq!(results[0]["key"], PERSON);
        assert_eq!(results[0]["fields"]["phone"]["value"], "13912345678");
        assert!(results[0]["fields"]["name"]["masked"].is_string());
        assert_eq!(results[0]["served_under"][0]["grant"], g.id.as_str());
        let by_address = "/api/persons?address=%E8%8B%8F%E5%B7%9E%E5%B7%A5%E4%B8%9A%E5%9B%AD%E5%8C%BA%E9%9D%92%E5%89%91%E6%B9%96%E8%8A%B1%E5%9B%AD1%E5%B9%A22%E5%8D%95%E5%85%83301%E5%AE%A4";
        let (status, body) = get(addr, by_address, Some(&clerk)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"][0]["key"], PERSON, "{body}");
        // The same grant covers the other street's clerk's department, but not the subject,
        // who lives outside that clerk's jurisdiction.
        assert_eq!(
            get(addr, by_phone, Some(&far)).await.1["results"],
            serde_json::json!([])
        );
        let (status, body) = get(addr, "/api/buildings?address=%E8%8B%8F%E5%B7%9E%E5%B7%A5%E4%B8%9A%E5%9B%AD%E5%8C%BA%E9%9D%92%E5%89%91%E6%B9%96%E8%8A%B1%E5%9B%AD1%E5%B9%A2", Some(&clerk)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"][0]["key"], BUILDING, "{body}");
        // The street's clerk may leave out the district: it is read within their street.
        let (status, body) = get(
            addr,
            "/api/buildings?address=%E9%9D%92%E5%89%91%E6%B9%96%E8%8A%B1%E5%9B%AD1%E5%B9%A2",
            Some(&clerk),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"][0]["key"], BUILDING, "{body}");

        // The catalogue, and one resource in CKAN's shape.
        let (status, body) = get(addr, "/api/catalogue", Some(&clerk)).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == "library.person")
        );
        // Times are RFC 3339 text: the library's last run is known here.
        let updated: Vec<&str> = body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["last_update"].as_str())
            .collect();
        assert!(!updated.is_empty(), "{body}");
        for t in &updated {
            assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
        }
        let (status, body) = get(
            addr,
            "/api/catalogue/library.person?format=ckan",
            Some(&clerk),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], "library-person", "{body}");
        assert_eq!(
            get(addr, "/api/catalogue/nothing", Some(&clerk)).await.0,
            404
        );
        assert_eq!(get(addr, "/api/catalogue", None).await.0, 401);

        // Bulk lookup: found and not found, audited together.
        let bulk = format!(r#"{{"keys": ["{PERSON}", "P0000000000000000", "{PERSON}"]}}"#);
        let (status, body) = send(
            addr,
            "POST",
            "/api/persons/lookup",
            Some(&clerk),
            bulk.as_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"].as_array().unwrap().len(), 1);
        assert_eq!(body["not_found"], serde_json::json!(["P0000000000000000"]));
        let (_, body) = send(
            addr,
            "POST",
            "/api/persons/lookup",
            Some(&far),
            bulk.as_bytes(),
        )
        .await;
        assert_eq!(body["results"], serde_json::json!([]));
        assert_eq!(body["not_found"].as_array().unwrap().len(), 2);

        // Hostile and malformed requests: a 4xx with a message, never a 5xx.
        let many: Vec<String> = (0..101).map(|i| format!("P{i:016x}")).collect();
        let too_many = serde_json::json!({"keys": many}).to_string();
        let huge = format!(r#"{{"keys": ["{}"]}}"#, "P".repeat(70_000));
        let expired = ids
            .issue_token("clerk01", Some(tongban_store::now_millis() - 1))
            .await
            .unwrap()
            .1;
        let (revoked_row, revoked) = ids.issue_token("clerk01", None).await.unwrap();
        ids.revoke(&revoked_row.id).await.unwrap();
        // (method, path, token, body, expected status)
        type Case<'a> = (&'a str, String, Option<&'a str>, Vec<u8>, u16);
        let cases: Vec<Case> = vec![
            (
                "GET",
                "/api/persons?name=%27%20OR%201%3D1--&birth_date=1990-01-01".into(),
                Some(&clerk),
                vec![],
                400,
            ),
            (
                "GET",
                "/api/persons?phone=1%27%20OR%20%271%27%3D%271".into(),
                Some(&clerk),
                vec![],
                400,
            ),
            (
                "GET",
                "/api/persons?citizen_id=%27%3B%20DROP%20TABLE%20users%3B--".into(),
                Some(&clerk),
                vec![],
                400,
            ),
            (
                "GET",
                "/api/persons?name=%E7%8E%8B".into(),
                Some(&clerk),
                vec![],
                400,
            ),
            (
                "GET",
                "/api/persons?nme=x".into(),
                Some(&clerk),
                vec![],
                400,
            ),
            (
                "GET",
                "/api/persons?phone=%ZZ".into(),
                Some(&clerk),
                vec![],
                400,
            ),
            (
                "GET",
                format!("/api/persons?phone={}", "1".repeat(300)),
                Some(&clerk),
                vec![],
                400,
            ),
            ("GET", "/api/persons".into(), Some(&clerk), vec![], 400),
            (
                "GET",
                "/api/entities?name=".into(),
                Some(&clerk),
                vec![],
                400,
            ),
            ("GET", by_phone.into(), None, vec![], 401),
            ("GET", by_phone.into(), Some(expired.as_str()), vec![], 401),
            ("GET", by_phone.into(), Some(revoked.as_str()), vec![], 401),
            ("GET", by_phone.into(), Some("tb_zz_' OR 1=1"), vec![], 401),
            (
                "POST",
                "/api/persons/lookup".into(),
                Some(&clerk),
                b"not json".to_vec(),
                400,
            ),
            (
                "POST",
                "/api/persons/lookup".into(),
                Some(&clerk),
                br#"{"keys": []}"#.to_vec(),
                400,
            ),
            (
                "POST",
                "/api/persons/lookup".into(),
                Some(&clerk),
                br#"{"keys": ["' OR 1=1"]}"#.to_vec(),
                400,
            ),
            (
                "POST",
                "/api/persons/lookup".into(),
                Some(&clerk),
                br#"{"keys": ["P0123456789abcdef"], "x": 1}"#.to_vec(),
                400,
            ),
            (
                "POST",
                "/api/persons/lookup".into(),
                Some(&clerk),
                too_many.into_bytes(),
                400,
            ),
            (
                "POST",
                "/api/persons/lookup".into(),
                Some(&clerk),
                huge.into_bytes(),
                413,
            ),
        ];
        for (method, path, token, body, want) in cases {
            let (status, answer) = send(addr, method, &path, token, &body).await;
            assert_eq!(status, want, "{method} {path}: {answer}");
            assert!(
                answer["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{method} {path}: no message in {answer}"
            );
        }

        // Each search and each result read is in the audit log.
        let entries = store.audit_entries(0, 1000).await.unwrap();
        let searches = entries
            .iter()
            .filter(|e| e.action == "search.person")
            .count();
        assert_eq!(
            searches, 6,
            "three before the grant, two after it, one by the far clerk"
        );
        let via_bulk = entries
            .iter()
            .filter(|e| e.action == "read.person" && e.detail.contains(r#""via":"bulk""#))
            .count();
        assert_eq!(via_bulk, 1);
    }
}

/// A console request: (status, the response head, the body as text).
async fn page(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    session: Option<&str>,
    form: &str,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cookie = session
        .map(|c| format!("Cookie: tb_session={c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}

/// Sign in to the console; the session token from the cookie it sets.
async fn sign_in(addr: std::net::SocketAddr, user: &str, password: &str) -> Option<String> {
    let (status, head, _) = page(
        addr,
        "POST",
        "/console/login",
        None,
        &format!("user={user}&password={password}"),
    )
    .await;
    if status != 303 {
        return None;
    }
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: tb_session="))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_applies_the_same_policy_and_audits_every_page() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path(), "governed_console").await {
        libraries(store.as_ref()).await;
        let (addr, ids, _, _, _, _) = start(store.clone()).await;
        ids.add_user(PERSON, "王小明", None, Role::Citizen, "320576052001")
            .await
            .unwrap();
        for user in ["clerk01", "far01", "admin", PERSON] {
            ids.set_password(user, "demo-password").await.unwrap();
        }
        assert!(ids.set_password("clerk01", "short").await.is_err());
        assert_eq!(sign_in(addr, "clerk01", "wrong-password").await, None);
        assert_eq!(sign_in(addr, "nobody", "demo-password").await, None);
        assert_eq!(
            sign_in(addr, &"x".repeat(10_000), "demo-password").await,
            None
        );
        // A form posted from another site is refused.
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let form = "user=clerk01&password=demo-password";
        s.write_all(
            format!(
                "POST /console/login HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
                form.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 403"));
        // Pages forbid scripts, framing and caching.
        let (_, head, _) = page(addr, "GET", "/console/login", None, "").await;
        assert!(
            head.contains("content-security-policy: default-src 'none'"),
            "{head}"
        );
        assert!(head.contains("cache-control: no-store"), "{head}");
        // Without a session every page sends the user to the login page.
        let (status, head, _) = page(addr, "GET", "/console", None, "").await;
        assert_eq!(status, 303);
        assert!(head.contains("location: /console/login"), "{head}");
        let clerk = sign_in(addr, "clerk01", "demo-password").await.unwrap();
        let far = sign_in(addr, "far01", "demo-password").await.unwrap();
        let admin = sign_in(addr, "admin", "demo-password").await.unwrap();
        let me = sign_in(addr, PERSON, "demo-password").await.unwrap();

        // The 360° page: masked without a grant.
        let person_page = format!("/console/person/{PERSON}");
        let (status, _, html) = page(addr, "GET", &person_page, Some(&clerk), "").await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("139******78"), "the phone is masked");
        assert!(!html.contains("13912345678"));
        // Where they live is a conditional field, and so is the link to their room.
        assert!(
            !html.contains(&format!("/console/room/{ROOM}")),
            "no grant for the residence: no link to the room"
        );
        // Outside the jurisdiction: not found, as in the API.
        assert_eq!(page(addr, "GET", &person_page, Some(&far), "").await.0, 404);
        // The English switch.
        let (_, _, english) = page(
            addr,
            "GET",
            &person_page,
            Some(&format!("{clerk}; tb_lang=en")),
            "",
        )
        .await;
        assert!(english.contains("Linked records"), "{english}");

        // Before any grant covers the phone, a search by it finds no one and the page says
        // why, in the page's language; an unknown console page is a page too, not JSON.
        let (status, _, html) = page(
            addr,
            "GET",
            "/console/search?kind=person&phone=13912345678",
            Some(&clerk),
            "",
        )
        .await;
        assert_eq!(status, 200);
        assert!(!html.contains(&person_page), "{html}");
        assert!(
            html.contains("id=\"search-note\"") && html.contains("按它查询查不到任何人"),
            "{html}"
        );
        let (status, head, html) =
            page(addr, "GET", "/console/no-such-page", Some(&clerk), "").await;
        assert_eq!(status, 404);
        assert!(head.contains("text/html"), "{head}");
        assert!(
            html.contains("没有这个页面") && html.contains("no-such-page"),
            "{html}"
        );
        let (_, _, html) = page(
            addr,
            "GET",
            "/console/no-such-page",
            Some(&format!("{clerk}; tb_lang=en")),
            "",
        )
        .await;
        assert!(html.contains("No such page"), "{html}");
        let (status, head, _) = page(addr, "GET", "/api/no-such-path", None, "").await;
        assert_eq!(status, 404);
        assert!(head.contains("application/json"), "{head}");

        // The clerk requests the phone; the admin approves; the phone shows.
        let (status, _, html) = page(
            addr,
            "POST",
            "/console/grants",
            Some(&clerk),
            "resource=library.person&fields=phone%2Cresidence&purpose=one_thing.newborn&legal_basis=law&scope=320576052&days=30&daily_quota=10",
        )
        .await;
        assert_eq!(status, 200, "{html}");
        let notice = html
            .split("id=\"notice\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .expect("the page has a notice");
        assert!(notice.contains("申请已提交"), "{notice}");
        let id = notice
            .split_whitespace()
            .last()
            .expect("the notice names the request")
            .to_string();
        let (status, _, html) = page(
            addr,
            "POST",
            &format!("/console/grants/{id}/decide"),
            Some(&clerk),
            "approve=yes",
        )
        .await;
        assert_eq!(status, 400, "a clerk cannot approve: {html}");
        let (status, _, html) = page(
            addr,
            "POST",
            &format!("/console/grants/{id}/decide"),
            Some(&admin),
            "approve=yes&reason=ok",
        )
        .await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(&format!("已批准： {id}")), "{html}");
        tokio::time::sleep(std::time::Duration::from_millis(
            tongban_server::governed::GRANTS_FRESH_MS as u64 + 50,
        ))
        .await;
        let (_, _, html) = page(addr, "GET", &person_page, Some(&clerk), "").await;
        assert!(
            html.contains("13912345678"),
            "the phone shows under the grant"
        );
        assert!(html.contains(&id), "the page names the grant");
        assert!(
            html.contains(&format!("/console/room/{ROOM}")),
            "the residence granted, the room is one click away"
        );

        // Search finds by phone now that the phone may be seen.
        let (status, _, html) = page(
            addr,
            "GET",
            "/console/search?kind=person&phone=13912345678",
            Some(&clerk),
            "",
        )
        .await;
        assert_eq!(status, 200);
        assert!(html.contains(&person_page), "{html}");
        assert!(!html.contains("search-note"), "{html}");

        // The citizen sees who read their record, under which purpose.
        let (status, _, html) = page(addr, "GET", "/console/me", Some(&me), "").await;
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains("clerk01") && html.contains("one_thing.newborn"),
            "{html}"
        );
        assert_eq!(
            page(addr, "GET", "/console/audit", Some(&me), "").await.0,
            403
        );

        // The admin's audit page verifies the chain that all of this wrote.
        let (status, _, html) = page(addr, "GET", "/console/audit", Some(&admin), "").await;
        assert_eq!(status, 200);
        assert!(html.contains("✔"), "{html}");
        let entries = store.audit_entries(0, 1000).await.unwrap();
        assert!(
            entries
                .iter()
                .filter(|e| e.action == "read.person" && e.detail.contains(r#""via":"console""#))
                .count()
                >= 4
        );

        // Signing out ends the session.
        page(addr, "POST", "/console/logout", Some(&clerk), "").await;
        assert_eq!(page(addr, "GET", "/console", Some(&clerk), "").await.0, 303);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_suspends_a_grant_whose_reads_spike_when_told_to() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path(), "governed_watch").await {
        libraries(store.as_ref()).await;
        let ids = tongban_sharing::identity::Identities::new(store.clone());
        ids.add_department("minzheng", "民政局", "320576")
            .await
            .unwrap();
        ids.add_user(
            "clerk01",
            "王芳",
            Some("minzheng"),
            Role::WindowClerk,
            "320576052",
        )
        .await
        .unwrap();
        let catalogue = tongban_sharing::catalogue::catalogue(store.as_ref())
            .await
            .unwrap();
        let clerk = ids
            .authenticate(&ids.issue_token("clerk01", None).await.unwrap().1, 0)
            .await
            .unwrap();
        let watch = tongban_sharing::identity::Principal {
            user_id: "admin".into(),
            name: "admin".into(),
            department: Some("data_bureau".into()),
            role: Role::DataBureauAdmin,
            jurisdiction: "320576".into(),
            token_id: String::new(),
        };
        let g = tongban_sharing::policy::request(
            store.as_ref(),
            &catalogue,
            &clerk,
            tongban_sharing::policy::Request {
                resource: "library.person".into(),
                fields: vec!["phone".into()],
                purpose: "p".into(),
                legal_basis: "l".into(),
                scope: "320576".into(),
                days: 30,
                daily_quota: 10_000,
            },
        )
        .await
        .unwrap();
        tongban_sharing::policy::decide_stored(store.as_ref(), &catalogue, &watch, &g.id, true, "")
            .await
            .unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let audit =
            tongban_sharing::writer::AuditLog::start(store.clone(), key, Default::default())
                .await
                .unwrap();
        // A week of ten reads a day under the grant, then three hundred today.
        let now = tongban_store::now_millis();
        let read = |at: i64, i: usize| tongban_sharing::audit::Event {
            at,
            actor: "clerk01".into(),
            action: "read.person".into(),
            subject: format!("P{i:016x}"),
            detail:
                serde_json::json!({"department": "minzheng", "served_under": [{"grant": g.id}]})
                    .to_string(),
        };
        // Two months ago, a busy day that the dashboard, which reads the last five weeks of the
        // log, must not show.
        let mut events: Vec<_> = (0..40).map(|i| read(now - 60 * 86_400_000, i)).collect();
        for day in (1..=7).rev() {
            events.extend((0..10).map(|i| read(now - day * 86_400_000, i)));
        }
        events.extend((0..300).map(|i| read(now, i)));
        audit.append_all(events).await.unwrap();
        let sharing = Arc::new(tongban_server::governed::Sharing::new(
            ids, audit, catalogue,
        ));
        let state = tongban_server::AppState {
            store: store.clone(),
            intake_key: None,
            max_body: 4096,
            sharing: Some(sharing.clone()),
        };
        // Off by default: the alerts are listed, nothing is suspended.
        assert!(tongban_server::console::refresh(&state).await.is_empty());
        let figures = sharing.dashboard.read().unwrap().clone().unwrap();
        assert!(
            figures.alerts.iter().any(|a| a.kind == "grant_spike"),
            "{:?}",
            figures.alerts
        );
        let long_ago = tongban_server::console::dashboard::date_of_day(
            tongban_sharing::watch::day_of(now - 60 * 86_400_000),
        );
        assert!(
            !figures.calls.iter().any(|(date, _, _)| *date == long_ago),
            "{:?}",
            figures.calls
        );
        assert_eq!(
            figures.calls.len(),
            8,
            "a week and today: {:?}",
            figures.calls
        );
        assert_eq!(
            store.grant(&g.id).await.unwrap().unwrap().status,
            "approved"
        );
        sharing
            .suspend_on_alert
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            tongban_server::console::refresh(&state).await,
            vec![g.id.clone()]
        );
        let row = store.grant(&g.id).await.unwrap().unwrap();
        assert_eq!(row.status, "revoked");
        assert!(row.reason.unwrap_or_default().contains("spike"));
        // Once suspended, a grant is left alone.
        assert!(tongban_server::console::refresh(&state).await.is_empty());
        let entries = store.audit_entries(0, 10_000).await.unwrap();
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.action == "grant.suspend")
                .count(),
            1
        );
    }
}

/// Golden records are kept parsed between reads, but never served once changed: neither after
/// a new resolution run through the store nor after a change made behind its back (another
/// process on the same SQLite file at once; on PostgreSQL, once the change is announced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_golden_record_is_read_anew() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path(), "governed_fresh").await {
        libraries(store.as_ref()).await;
        let (addr, _ids, clerk, _far, _key, _catalogue) = start(store.clone()).await;
        let path = format!("/api/persons/{PERSON}");
        let phone = |body: &serde_json::Value| body["fields"]["phone"]["masked"].clone();
        for _ in 0..3 {
            let (status, body) = get(addr, &path, Some(&clerk)).await;
            assert_eq!((status, phone(&body)), (200, "139******78".into()));
        }
        let golden = |phone: &str| {
            serde_json::json!({"key": PERSON, "fields": {
                "name": kept("王小明"), "phone": kept(phone), "residence": kept("320576|青剑湖花园|1|2|301"),
            }})
            .to_string()
        };
        store
            .replace_resolution(
                "person",
                2,
                "{}",
                &[LinkRef {
                    source_id: "police_household",
                    record_key: "1",
                    role: "subject",
                    entity_key: PERSON,
                }],
                &[GoldenRecord {
                    entity_key: PERSON.into(),
                    record: golden("13800000000"),
                }],
            )
            .await
            .unwrap();
        let (_, body) = get(addr, &path, Some(&clerk)).await;
        assert_eq!(phone(&body), "138******00", "a new run: {body}");
        // The database `stores` made for this test, reached behind the store's back.
        let url = match store.backend() {
            "sqlite" => format!(
                "sqlite://{}",
                dir.path().join("governed_fresh.db").display()
            ),
            _ => {
                let server = std::env::var("TONGBAN_TEST_PG_URL").unwrap();
                let base = server.rsplit_once('/').unwrap().0;
                format!("{base}/t_governed_fresh_{}", std::process::id())
            }
        };
        let changed = tongban_store::testing::execute_raw(
            &url,
            &format!(
                "UPDATE golden_person SET record = '{}' WHERE entity_key = '{PERSON}'",
                golden("13700000001")
            ),
        )
        .await
        .unwrap();
        assert_eq!(changed, 1);
        // SQLite sees the change at its next check of the file, at most a millisecond later;
        // PostgreSQL once its announcement is heard.
        let mut tries = 0;
        let body = loop {
            let (_, body) = get(addr, &path, Some(&clerk)).await;
            tries += 1;
            if phone(&body) == "137******01" || tries == 200 {
                break body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        assert_eq!(
            phone(&body),
            "137******01",
            "behind the store's back: {body}"
        );
    }
}
