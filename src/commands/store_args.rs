//! The `--database` option every command that touches the store shares.

use anyhow::Context;
use clap::Args;
use tongban_store::Store;

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store: sqlite://PATH (the default; created by ingest, demo, source, identity and serve if missing) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        global = true,
        env = "TONGBAN_DATABASE",
        default_value = "sqlite://tongban-data/tongban.db"
    )]
    pub database: String,
}

impl StoreArgs {
    /// Opens the store, creating the SQLite file's directory if needed, and migrates it.
    pub async fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        if let Some(path) = self.database.strip_prefix("sqlite://")
            && let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        tongban_store::open(&self.database)
            .await
            .with_context(|| format!("opening the store {}", redact(&self.database)))
    }
}

impl StoreArgs {
    /// Opens a store that must exist already: a command that only reads or builds on what was
    /// ingested (quality, resolve, show…) pointed at a mistyped SQLite path would otherwise
    /// create an empty store there and report on nothing.
    pub async fn open_existing(&self) -> anyhow::Result<Box<dyn Store>> {
        if let Some(path) = self.database.strip_prefix("sqlite://")
            && !std::path::Path::new(path).exists()
        {
            anyhow::bail!(
                "there is no store at {path}: `tongban ingest` or `tongban demo` makes one (--database or TONGBAN_DATABASE names another)"
            );
        }
        self.open().await
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A runtime for the async store calls of one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Runs `work` on `store`, then closes the store (see `Store::close`) whether or not the work
/// succeeded, so that a command leaves no write-ahead log behind it. The work's error comes
/// first; a failure to close is reported only after work that succeeded.
pub async fn closing<T>(
    store: &dyn Store,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let result = work.await;
    let closed = store.close().await;
    let value = result?;
    closed.context("closing the store")?;
    Ok(value)
}
