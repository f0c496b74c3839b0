//! `tongban serve`: the HTTP server on 127.0.0.1: the governed query API, the web console and
//! the intake push endpoint.

use super::store_args::{StoreArgs, runtime};
use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban serve --intake-key s3cret\n  curl -H 'Authorization: Bearer s3cret' --data-binary @grid.jsonl http://127.0.0.1:8080/api/intake/grid_collection/batches\n  curl -H 'Authorization: Bearer tb_…' http://127.0.0.1:8080/api/persons/P60bc6d885412762a   (a token from `tongban identity token issue`)\n\nEvery read through the governed API is decided field by field under the caller's grants and jurisdiction and recorded in the audit log (signed with the node key beside the SQLite file, or $TONGBAN_NODE_KEY) before it is answered.\n\nCtrl-C or SIGTERM stops it: it takes no more connections, answers the requests in flight and closes the store (on SQLite, its write-ahead logs copied into the database files). A second Ctrl-C or SIGTERM stops it at once (exit status 130 or 143)."
)]
pub struct Args {
    /// Address to listen on (127.0.0.1:8080, localhost:8080 or a port alone).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = listen_address)]
    pub listen: std::net::SocketAddr,
    /// The key department systems present to push batches (the endpoint is off without one).
    #[arg(long, env = "TONGBAN_INTAKE_KEY")]
    pub intake_key: Option<String>,
    /// Suspend the grants that alerting reads (a spike, a grant's spike, a bulk enumeration)
    /// were served under, as the background watch finds them (once a minute).
    #[arg(long)]
    pub suspend_on_alert: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store: Arc<dyn tongban_store::Store> = Arc::from(args.store.open().await?);
        let key = super::audit::node_key(&super::audit::key_path_for(&args.store.database))?;
        let sharing = tongban_server::governed::Sharing::new(
            tongban_sharing::identity::Identities::new(store.clone()),
            tongban_sharing::writer::AuditLog::start(
                store.clone(),
                key,
                tongban_sharing::writer::Settings::default(),
            )
            .await?,
            tongban_sharing::catalogue::catalogue(store.as_ref()).await?,
        );
        sharing
            .suspend_on_alert
            .store(args.suspend_on_alert, std::sync::atomic::Ordering::Relaxed);
        let state = tongban_server::AppState {
            store: store.clone(),
            intake_key: args.intake_key.clone(),
            max_body: tongban_server::MAX_BODY,
            sharing: Some(Arc::new(sharing)),
        };
        // The console's dashboard figures are computed in the background, so the server answers
        // at once and the dashboard fills in when they are ready.
        let dashboard = tokio::spawn(tongban_server::console::keep_dashboard_fresh(state.clone()));
        let stop = stop_requested()?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        println!(
            "Tongban listening on http://{0}/ (console), http://{0}/api/docs (API)",
            listener.local_addr()?
        );
        if args.intake_key.is_none() {
            println!("  the intake push endpoint is off (no --intake-key)");
        }
        tongban_server::serve_until(listener, state, stop).await?;
        // The requests in flight have been answered, so their audit entries are stored; the
        // dashboard's figures would only be read into a closing store.
        dashboard.abort();
        store.close().await?;
        println!("Tongban stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Listens from now on for Ctrl-C (SIGINT) and SIGTERM, how a terminal or a service manager asks
/// the server to stop, and completes at the first. Listening starts before the server says it
/// is listening, so that a stop sent as soon as it does is not the signal's default (ending the
/// process on the spot).
///
/// A second signal ends the process at once, with the status a shell gives a process ended by
/// that signal (130 for Ctrl-C, 143 for SIGTERM), for whoever will not wait for a client that is
/// slow to finish its request. Nothing answered is lost by it: each read's audit
/// entry is stored before its answer is sent, and each stored chunk is a transaction of its
/// own; on SQLite the write-ahead log is left for the next process to copy in.
fn stop_requested() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!(
                "Tongban stopping: answering the requests in flight (a second Ctrl-C or SIGTERM stops at once)"
            );
            tokio::spawn(async move {
                let status = tokio::select! {
                    _ = interrupt.recv() => 130,
                    _ = terminate.recv() => 143,
                };
                eprintln!("Tongban stopped at once, without waiting for the requests in flight");
                std::process::exit(status);
            });
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!(
                "Tongban stopping: answering the requests in flight (a second Ctrl-C stops at once)"
            );
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("Tongban stopped at once, without waiting for the requests in flight");
                std::process::exit(130);
            });
        })
    }
}

/// A listening address as people write it: an IP address and port, `localhost:PORT` (the
/// loopback address, 127.0.0.1) or a port alone (on 127.0.0.1).
pub fn listen_address(text: &str) -> Result<std::net::SocketAddr, String> {
    let loopback = |port: &str| {
        port.parse::<u16>()
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
            .map_err(|_| format!("{port:?} is not a port number"))
    };
    if let Some(port) = text.strip_prefix("localhost:") {
        return loopback(port);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return loopback(text);
    }
    text.parse().map_err(|_| {
        format!(
            "{text:?} is not an address to listen on: write 127.0.0.1:8080, localhost:8080 or 8080"
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn listening_addresses_are_read_as_people_write_them() {
        let at = |t: &str| super::listen_address(t).map(|a| a.to_string());
        assert_eq!(at("127.0.0.1:9000").as_deref(), Ok("127.0.0.1:9000"));
        assert_eq!(at("localhost:9000").as_deref(), Ok("127.0.0.1:9000"));
        assert_eq!(at("9000").as_deref(), Ok("127.0.0.1:9000"));
        assert!(at("localhost:http").unwrap_err().contains("not a port"));
        assert!(at("example").unwrap_err().contains("localhost:8080"));
    }
}
