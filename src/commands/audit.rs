//! `tongban audit`: verify the audit log, export it, or append an event by hand.

use super::store_args::{StoreArgs, closing, runtime};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tongban_sharing::audit::{self, Event};
use tongban_sharing::writer::{AuditLog, Settings, from_row, verify_store};

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban audit verify                       check the chain and every signed checkpoint
  tongban audit verify --public-key 3b6a27bc…   against the published key rather than the key file
  tongban audit export > audit.jsonl         every entry as one JSON line
  tongban audit export --after 1000
  tongban audit record --action note --subject ops 'restored from backup'
  tongban audit checkpoint                   seal the entries since the last checkpoint now
  tongban audit public-key                   the key to publish for verifiers

The log is a hash chain (each entry carries the hash of the one before) with Merkle checkpoints
over ranges of entries signed by this node's Ed25519 key (--key, created on first use). verify
finds any entry changed, deleted, inserted or reordered and says where; it exits with 1 when it
finds anything.")]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    /// The node's signing key (hex of the 32 secret bytes), created if missing [default:
    /// $TONGBAN_NODE_KEY, else node.key beside the SQLite file, else tongban-data/node.key].
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Check the chain and the checkpoints.
    Verify {
        /// As JSON, for scripts.
        #[arg(long)]
        json: bool,
        /// The node's public key (64 hexadecimal digits), as published: verify against it
        /// rather than against the key file, which whoever holds it could re-sign with.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Write entries as JSON lines to standard output.
    Export {
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Sign a checkpoint now over the entries since the last one.
    Checkpoint,
    /// Print the node's public key, to publish where verifiers can find it.
    PublicKey,
    /// Append one event (an administrative note, say).
    Record {
        /// What happened, as a dotted name (admin.note, intake.file_received…).
        #[arg(long)]
        action: String,
        /// What it concerns (a source, a user, a record key), if anything.
        #[arg(long, default_value = "")]
        subject: String,
        /// Free text kept with the entry.
        detail: Option<String>,
    },
}

/// The node key at `path`, created (with permissions for its owner only) if missing.
pub fn node_key(path: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the node key {}", path.display()))?;
        return audit::signing_key_from_hex(&text).with_context(|| {
            format!(
                "{}: not a node key (64 hexadecimal digits expected)",
                path.display()
            )
        });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = audit::generate_key().map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    std::fs::write(path, audit::signing_key_to_hex(&key))
        .with_context(|| format!("writing the node key {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(key)
}

/// Where the node key lives: `TONGBAN_NODE_KEY`, else beside an SQLite store's file, else
/// `tongban-data/node.key`.
pub fn key_path_for(database: &str) -> PathBuf {
    if let Ok(p) = std::env::var("TONGBAN_NODE_KEY") {
        return PathBuf::from(p);
    }
    match database
        .strip_prefix("sqlite://")
        .and_then(|p| Path::new(p).parent())
    {
        Some(dir) => dir.join("node.key"),
        None => PathBuf::from("tongban-data/node.key"),
    }
}

/// Record an administrative change made from the command line, signed (at checkpoints) with
/// the node key (see [`key_path_for`]). The change has already happened when this runs; a
/// failure to record it is reported as an error.
pub async fn record_admin(
    store: &dyn tongban_store::Store,
    database: &str,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> anyhow::Result<i64> {
    let key = node_key(&key_path_for(database))?;
    let seqs = tongban_sharing::writer::append_now(
        store,
        &key,
        &Settings::default(),
        vec![Event {
            at: tongban_store::now_millis(),
            actor: cli_actor(),
            action: action.into(),
            subject: subject.into(),
            detail: detail.to_string(),
        }],
    )
    .await
    .context("recording the change in the audit log")?;
    Ok(seqs.first().copied().unwrap_or(0))
}

/// Who runs the command line, for the audit log.
pub fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let key_path = args
        .key
        .clone()
        .unwrap_or_else(|| key_path_for(&args.store.database));
    rt.block_on(async {
        let store: std::sync::Arc<dyn tongban_store::Store> = args.store.open().await?.into();
        closing(store.as_ref(), async {
            match args.what {
                What::Verify { json, public_key } => {
                    let node = match public_key {
                        Some(hex) => audit::verifying_key_from_hex(&hex).with_context(|| {
                            format!("--public-key {hex:?}: not an Ed25519 public key (64 hexadecimal digits)")
                        })?,
                        None => {
                            if !key_path.exists() {
                                anyhow::bail!(
                                    "no node key at {}: give --key or --public-key (verify never creates a key)",
                                    key_path.display()
                                );
                            }
                            node_key(&key_path)?.verifying_key()
                        }
                    };
                    let check = verify_store(store.as_ref(), &node).await?;
                    let checkpoints = store.audit_checkpoints().await?.len();
                    if json {
                        let v = serde_json::json!({
                            "entries": check.entries,
                            "unsealed": check.unsealed,
                            "checkpoints": checkpoints,
                            "findings": check.findings,
                            "intact": check.findings.is_empty(),
                        });
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else if check.findings.is_empty() {
                        println!(
                            "audit log intact: {} entries, {checkpoints} signed checkpoints verified; {} entries after the last checkpoint are protected by the chain alone",
                            check.entries, check.unsealed
                        );
                    } else {
                        println!(
                            "audit log TAMPERED: {} findings in {} entries",
                            check.findings.len(),
                            check.entries
                        );
                        for f in &check.findings {
                            println!("  {f}");
                        }
                    }
                    Ok(if check.findings.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
                What::Export { after } => {
                    use std::io::Write;
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    let mut after = after;
                    loop {
                        let page = store.audit_entries(after, 10_000).await?;
                        let Some(last) = page.last() else { break };
                        after = last.seq;
                        for row in page {
                            writeln!(out, "{}", serde_json::to_string(&from_row(row))?)?;
                        }
                    }
                    out.flush()?;
                    Ok(ExitCode::SUCCESS)
                }
                What::PublicKey => {
                    let key = node_key(&key_path)?;
                    println!("{}", audit::verifying_key_to_hex(&key.verifying_key()));
                    Ok(ExitCode::SUCCESS)
                }
                What::Checkpoint => {
                    let key = node_key(&key_path)?;
                    match tongban_sharing::writer::checkpoint_now(store.as_ref(), &key).await? {
                        Some(c) => println!(
                            "checkpoint over entries {}–{} signed: root {}",
                            c.from_seq, c.to_seq, c.root
                        ),
                        None => println!("nothing to checkpoint: every entry is already covered"),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                What::Record {
                    action,
                    subject,
                    detail,
                } => {
                    let key = node_key(&key_path)?;
                    let log = AuditLog::start(store.clone(), key, Settings::default()).await?;
                    let seq = log
                        .append(Event {
                            at: tongban_store::now_millis(),
                            actor: cli_actor(),
                            action,
                            subject,
                            detail: serde_json::json!({ "note": detail.unwrap_or_default() })
                                .to_string(),
                        })
                        .await?;
                    println!("recorded as entry {seq}");
                    Ok(ExitCode::SUCCESS)
                }
            }
            })
        .await
})
}
