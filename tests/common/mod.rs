//! Helpers shared by the integration tests.

// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

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

/// The `tongban` binary this test run built, as a command to add arguments to.
pub fn tongban() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_tongban"))
}

/// Runs `command` and returns what it printed; a failure fails the test with its stderr.
pub fn succeeds(command: &mut std::process::Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
