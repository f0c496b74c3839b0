//! `tongban grant`: data requests and grants, from request to approval, rejection or revocation.

use super::store_args::{StoreArgs, closing, runtime};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tongban_sharing::identity::{Principal, Role};
use tongban_sharing::policy::{self, Request};

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban grant request --as clerk01 --resource library.person --fields phone,residence \\
      --purpose social_assistance.eligibility --legal-basis '社会救助暂行办法 第十一条' \\
      --scope 320576052 --days 90 --quota 500
  tongban grant approve Ga58ae23ce7fc --as admin
  tongban grant reject Ga58ae23ce7fc --as admin --reason 'purpose does not need the phone'
  tongban grant revoke Ga58ae23ce7fc --as admin --reason 'purpose fulfilled'
  tongban grant list

--as names the user acting (the command line is the operators' tool; the API authenticates
with tokens). Only the providing department, or the data bureau, decides; a rejection or
revocation says why; closed fields cannot be requested. Every step is in the audit log.")]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Ask for fields of a resource.
    Request {
        /// The requesting official's user id (the request is their department's).
        #[arg(long = "as")]
        user: String,
        /// The catalogue resource, e.g. library.person (see `tongban catalogue list`).
        #[arg(long)]
        resource: String,
        /// The fields asked for, comma-separated (open fields need no request).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// The purpose's code, e.g. social_assistance.eligibility: every read names it.
        #[arg(long)]
        purpose: String,
        /// The law or regulation that allows the use.
        #[arg(long)]
        legal_basis: String,
        /// The division within which subjects may be read.
        #[arg(long)]
        scope: String,
        /// How many days the grant lasts.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
        /// Reads a day.
        #[arg(long, default_value_t = 1000)]
        quota: u32,
    },
    /// Approve a request.
    Approve {
        /// The request's id, as `grant list` shows it.
        id: String,
        /// The deciding user: an official of the providing department (a data bureau admin for the base libraries).
        #[arg(long = "as")]
        user: String,
        /// A note kept with the decision.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Reject a request, saying why.
    Reject {
        /// The request's id, as `grant list` shows it.
        id: String,
        /// The deciding user: an official of the providing department (a data bureau admin for the base libraries).
        #[arg(long = "as")]
        user: String,
        /// Why, shown to the requesting department.
        #[arg(long)]
        reason: String,
    },
    /// Revoke a grant, saying why.
    Revoke {
        /// The grant's id, as `grant list` shows it.
        id: String,
        /// The revoking user: an official of the providing department (a data bureau admin for the base libraries).
        #[arg(long = "as")]
        user: String,
        /// Why, kept with the grant and in the audit log.
        #[arg(long)]
        reason: String,
    },
    /// Every request and grant.
    List {
        /// As JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// The user named by `--as`, as a principal (the command line is the operators' tool).
pub async fn acting(store: &dyn tongban_store::Store, user: &str) -> anyhow::Result<Principal> {
    let u = store
        .user(user)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--as {user:?}: no such user"))?;
    Ok(Principal {
        role: Role::parse(&u.role)?,
        user_id: u.id,
        name: u.name,
        department: u.department,
        jurisdiction: u.jurisdiction,
        token_id: "cli".into(),
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let database = args.store.database.clone();
    rt.block_on(async {
        let store = args.store.open().await?;
        closing(store.as_ref(), async {
            let store = store.as_ref();
            let catalogue = tongban_sharing::catalogue::catalogue(store).await?;
            let (action, grant) = match args.what {
                What::Request {
                    user,
                    resource,
                    fields,
                    purpose,
                    legal_basis,
                    scope,
                    days,
                    quota,
                } => {
                    let by = acting(store, &user).await?;
                    let r = Request {
                        resource,
                        fields,
                        purpose,
                        legal_basis,
                        scope,
                        days,
                        daily_quota: quota,
                    };
                    (
                        "grant.request",
                        policy::request(store, &catalogue, &by, r).await?,
                    )
                }
                What::Approve { id, user, reason } => {
                    let by = acting(store, &user).await?;
                    (
                        "grant.approve",
                        policy::decide_stored(store, &catalogue, &by, &id, true, &reason).await?,
                    )
                }
                What::Reject { id, user, reason } => {
                    let by = acting(store, &user).await?;
                    (
                        "grant.reject",
                        policy::decide_stored(store, &catalogue, &by, &id, false, &reason).await?,
                    )
                }
                What::Revoke { id, user, reason } => {
                    let by = acting(store, &user).await?;
                    (
                        "grant.revoke",
                        policy::revoke_stored(store, &catalogue, &by, &id, &reason).await?,
                    )
                }
                What::List { json } => {
                    let grants: Vec<policy::Grant> = store
                        .grants(None)
                        .await?
                        .iter()
                        .map(policy::from_row)
                        .collect();
                    if json {
                        let v = tongban_standards::date::with_china_times(serde_json::to_value(
                            &grants,
                        )?);
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else {
                        for g in &grants {
                            println!(
                                "{} {:<10} {} {:<22} {:<24} scope {} {}",
                                g.id,
                                format!("{:?}", g.status).to_lowercase(),
                                super::left(&g.department, 12),
                                g.resource,
                                g.fields.join(","),
                                g.scope,
                                g.reason.as_deref().unwrap_or("")
                            );
                        }
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            };
            super::audit::record_admin(
                store,
                &database,
                action,
                &grant.id,
                serde_json::json!(grant),
            )
            .await?;
            println!(
                "{} {}: {} asks {} of {} for {} (scope {})",
                grant.id,
                format!("{:?}", grant.status).to_lowercase(),
                grant.department,
                grant.fields.join(", "),
                grant.resource,
                grant.purpose,
                grant.scope
            );
            Ok(ExitCode::SUCCESS)
        })
        .await
    })
}
