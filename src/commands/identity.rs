//! `tongban identity`: departments, users and their API tokens.

use super::store_args::{StoreArgs, closing, runtime};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tongban_sharing::identity::{Identities, Role};

#[derive(Parser, Debug)]
#[command(after_help = "Examples:
  tongban identity department add gongan --name 公安局 --division 320576
  tongban identity user add clerk01 --name 王芳 --role window_clerk --department minzheng --jurisdiction 320576052
  tongban identity user add worker07 --name 李强 --role community_worker --department jiedao --jurisdiction 320576052001
  echo 'a long passphrase' | tongban identity user password clerk01     console sign-in
  tongban identity token issue clerk01 --days 90        prints the token once; only its hash is kept
  tongban identity token revoke 3f2a9c0b1d4e
  tongban identity list

Roles: data_bureau_admin, department_official, window_clerk, community_worker, citizen. A
jurisdiction is a division code (city, district, street, community) or a 15-digit grid code.
Every change is recorded in the audit log.")]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Departments.
    Department {
        #[command(subcommand)]
        what: DepartmentCmd,
    },
    /// Users.
    User {
        #[command(subcommand)]
        what: UserCmd,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        what: TokenCmd,
    },
    /// Every department, user and token (tokens by id and state only).
    List {
        /// As JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DepartmentCmd {
    /// Add (or rename) a department.
    Add {
        /// A short id for the department (gongan, minzheng); grants and users name it.
        id: String,
        /// Its name, as people know it (公安局).
        #[arg(long)]
        name: String,
        /// The division it serves.
        #[arg(long)]
        division: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add (or change) a user.
    Add {
        /// The user's id, used to sign in and in the audit log; a citizen's is their person key.
        id: String,
        /// The user's name (王芳).
        #[arg(long)]
        name: String,
        /// data_bureau_admin, department_official, window_clerk, community_worker or citizen.
        #[arg(long)]
        role: String,
        /// The department the user works for (its id); none for a citizen.
        #[arg(long)]
        department: Option<String>,
        /// The division code of what the user may see: 320576 a district, 320576052 a street,
        /// 320576052001 a community.
        #[arg(long)]
        jurisdiction: String,
    },
    /// Set a user's console password (8 to 128 characters), read from $TONGBAN_PASSWORD or,
    /// without it, from the first line of standard input, so that it stays out of the shell's
    /// history.
    Password { id: String },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Issue a token to a user.
    Issue {
        user: String,
        /// Valid for this many days (no expiry if not given).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        days: Option<u32>,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let database = args.store.database.clone();
    rt.block_on(async {
        let store: std::sync::Arc<dyn tongban_store::Store> = args.store.open().await?.into();
        closing(store.as_ref(), async {
            let ids = Identities::new(store.clone());
            let audit = |action: &'static str, subject: String, detail: serde_json::Value| {
                let store = store.clone();
                let database = database.clone();
                async move {
                    super::audit::record_admin(store.as_ref(), &database, action, &subject, detail)
                        .await
                }
            };
            match args.what {
                What::Department {
                    what: DepartmentCmd::Add { id, name, division },
                } => {
                    let d = ids.add_department(&id, &name, &division).await?;
                    audit("identity.department.put", d.id.clone(), serde_json::json!(d)).await?;
                    println!("department {} ({}) serves {}", d.id, d.name, d.division);
                }
                What::User {
                    what:
                        UserCmd::Add {
                            id,
                            name,
                            role,
                            department,
                            jurisdiction,
                        },
                } => {
                    let role = Role::parse(&role)?;
                    let u = ids
                        .add_user(&id, &name, department.as_deref(), role, &jurisdiction)
                        .await?;
                    audit("identity.user.put", u.id.clone(), serde_json::json!(u)).await?;
                    println!(
                        "user {} ({}), {} of {}, jurisdiction {}",
                        u.id,
                        u.name,
                        role.zh(),
                        u.department.as_deref().unwrap_or("no department"),
                        u.jurisdiction
                    );
                }
                What::User {
                    what: UserCmd::Password { id },
                } => {
                    let password = match std::env::var("TONGBAN_PASSWORD") {
                        Ok(p) => p,
                        Err(_) => {
                            let mut line = String::new();
                            std::io::stdin().read_line(&mut line)?;
                            line.trim_end_matches(['\r', '\n']).to_string()
                        }
                    };
                    ids.set_password(&id, &password).await?;
                    audit("identity.user.password", id.clone(), serde_json::json!({})).await?;
                    println!("user {id} can sign in to the console with the new password");
                }
                What::Token {
                    what: TokenCmd::Issue { user, days },
                } => {
                    let expires =
                        days.map(|d| tongban_store::now_millis() + i64::from(d) * 86_400_000);
                    let (row, token) = ids.issue_token(&user, expires).await?;
                    audit(
                        "identity.token.issue",
                        row.user_id.clone(),
                        serde_json::json!({ "token": row.id, "expires_at": row.expires_at }),
                    )
                    .await?;
                    println!("{token}");
                    eprintln!(
                        "token {} for {}: shown once, keep it safe; only its Argon2 hash is stored",
                        row.id, row.user_id
                    );
                }
                What::Token {
                    what: TokenCmd::Revoke { id },
                } => {
                    if ids.revoke(&id).await? {
                        audit("identity.token.revoke", id.clone(), serde_json::json!({})).await?;
                        println!("token {id} revoked");
                    } else {
                        anyhow::bail!("token {id:?}: no such token, or already revoked");
                    }
                }
                What::List { json } => {
                    let departments = store.departments().await?;
                    let users = store.users().await?;
                    let mut tokens = Vec::new();
                    for u in &users {
                        for t in store.tokens_of(&u.id).await? {
                            tokens.push(serde_json::json!({
                                "id": t.id, "user": t.user_id, "created_at": t.created_at,
                                "expires_at": t.expires_at, "revoked_at": t.revoked_at,
                            }));
                        }
                    }
                    if json {
                        let v = tongban_standards::date::with_china_times(
                            serde_json::json!({"departments": departments, "users": users, "tokens": tokens}),
                        );
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else {
                        println!("departments:");
                        for d in &departments {
                            println!("  {:<16} {} {}", d.id, super::left(&d.name, 20), d.division);
                        }
                        println!("users:");
                        for u in &users {
                            println!(
                                "  {:<16} {} {:<20} {:<16} {}",
                                u.id,
                                super::left(&u.name, 10),
                                u.role,
                                u.department.as_deref().unwrap_or("-"),
                                u.jurisdiction
                            );
                        }
                        println!("tokens:");
                        for t in &tokens {
                            let state = if !t["revoked_at"].is_null() {
                                "revoked"
                            } else {
                                "active"
                            };
                            println!("  {} {} {state}", t["id"].as_str().unwrap_or(""), t["user"].as_str().unwrap_or(""));
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
            })
        .await
})
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_role_help_names_every_role() {
        let mut cmd = super::Args::command();
        // The --role flag's own text: other flags' help also says "citizen".
        let help = cmd
            .find_subcommand_mut("user")
            .and_then(|u| u.find_subcommand_mut("add"))
            .and_then(|a| a.get_arguments().find(|arg| arg.get_id() == "role"))
            .and_then(|role| role.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        for role in tongban_sharing::identity::Role::ALL {
            assert!(
                help.contains(role.as_str()),
                "{role:?} missing from:\n{help}"
            );
        }
    }
}
