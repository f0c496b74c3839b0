//! Helpers shared by the integration tests.

use std::path::Path;
use tongban_store::Store;

/// Every backend the run reaches, each empty: SQLite in `dir`, and PostgreSQL (a fresh database
/// called `name`) when the test script provides a server. With `TONGBAN_REQUIRE_PG=1`, as in CI,
/// a missing server is a failure, not a skip.
pub async fn backends(dir: &Path, name: &str) -> Vec<Box<dyn Store>> {
    let mut out = vec![
        tongban_store::open(&format!(
            "sqlite://{}",
            dir.join(format!("{name}.db")).display()
        ))
        .await
        .unwrap(),
    ];
    if let Ok(url) = std::env::var("TONGBAN_TEST_PG_URL") {
        let url = tongban_store::testing::fresh_postgres(&url, name)
            .await
            .unwrap();
        out.push(tongban_store::open(&url).await.unwrap());
    } else {
        assert!(
            std::env::var("TONGBAN_REQUIRE_PG").as_deref() != Ok("1"),
            "PostgreSQL required but not provided"
        );
    }
    out
}
