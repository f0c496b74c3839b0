//! Opening a SQLite store made by an older binary. Migration 0013 turned the golden records'
//! generated search columns into plain columns the store fills; the values an older binary's
//! database holds must survive it, and the store's own writes must keep them right afterwards.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

fn person(key: &str, name: &str, phone: &str) -> String {
    serde_json::json!({
        "key": key,
        "fields": {"name": {"value": name}, "phone": {"value": phone}},
    })
    .to_string()
}

/// Whether `column` of `table` is a generated column (`table_xinfo` marks those hidden 2 or 3).
async fn generated(pool: &sqlx::SqlitePool, table: &str, column: &str) -> bool {
    let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT name, hidden FROM pragma_table_xinfo('{table}')"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    let (_, hidden) = rows.into_iter().find(|(n, _)| n == column).unwrap();
    hidden >= 2
}

#[tokio::test]
async fn golden_records_stay_searchable_across_the_search_column_migration() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true);
    // The database as a binary from before migration 0013 left it.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .unwrap();
    sqlx::migrate!("migrations/sqlite")
        .run_to(12, &pool)
        .await
        .unwrap();
    for (key, name, phone) in [("P1", "张三", "13800000001"), ("P2", "李四", "13800000002")] {
        sqlx::query("INSERT INTO golden_person (entity_key, record, run_id) VALUES (?1, ?2, 1)")
            .bind(key)
            .bind(person(key, name, phone))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO golden_room (entity_key, record, run_id) \
         VALUES ('R1', '{\"address_key\": \"320576|青剑湖花园|12|3|1001\"}', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(generated(&pool, "golden_person", "search_name").await);
    pool.close().await;

    let store = tongban_store::open(&url).await.unwrap();
    let search = |kind: &'static str, path: &'static str, value: &'static str| {
        let store = &store;
        async move {
            store
                .search_golden(kind, &[(path, value)], 10)
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.entity_key)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("person", "fields.name.value", "张三").await, ["P1"]);
    assert_eq!(
        search("person", "fields.phone.value", "13800000002").await,
        ["P2"]
    );
    assert_eq!(
        search("room", "address_key", "320576|青剑湖花园|12|3|1001").await,
        ["R1"]
    );
    // After the migration the store writes the columns itself.
    let changes = vec![tongban_store::LibraryChanges {
        kind: "person".into(),
        run_id: 2,
        golden: vec![tongban_store::GoldenRecord {
            entity_key: "P1".into(),
            record: person("P1", "王五", "13800000001"),
        }],
        ..Default::default()
    }];
    store.apply_library_changes(&changes, &[]).await.unwrap();
    assert_eq!(search("person", "fields.name.value", "王五").await, ["P1"]);
    assert!(
        search("person", "fields.name.value", "张三")
            .await
            .is_empty()
    );
    assert_eq!(
        search("person", "fields.phone.value", "13800000001").await,
        ["P1"]
    );
    drop(store);

    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    for (table, column) in [
        ("golden_person", "search_name"),
        ("golden_person", "search_residence"),
        ("golden_entity", "search_credit_code"),
        ("golden_room", "search_address_key"),
        ("golden_building", "search_address_key"),
    ] {
        assert!(!generated(&pool, table, column).await, "{table}.{column}");
    }
}
