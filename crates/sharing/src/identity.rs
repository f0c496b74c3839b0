//! Identities: departments, users with a role and a jurisdiction, and API tokens.
//!
//! A user belongs to a department (except citizens), holds one role, and sees the world from one
//! node of the division tree — a city, a district, a street, a community or a grid. A token is
//! `tb_<id>_<secret>`: the id finds the stored row, the secret is kept only as an Argon2id hash
//! with its own salt, so the store never holds what it takes to call the API. Verifying Argon2
//! on every request would cost tens of milliseconds, so [`TokenCache`] remembers, per token id,
//! a fast hash of a secret that Argon2 already accepted; revocation and expiry are still read
//! from the store on every call. This module decides nothing about what a user may read —
//! that is the policy's job.

use crate::audit::{hex, unhex};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// The roles of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 数据局管理员: runs the hub, decides on requests for the libraries the bureau provides,
    /// and may suspend any grant; decides nothing on a providing department's behalf.
    DataBureauAdmin,
    /// 部门工作人员: requests and, for its own datasets, approves grants.
    DepartmentOfficial,
    /// 窗口工作人员: serves citizens at a service window.
    WindowClerk,
    /// 社区工作者: sees the residents of one community.
    CommunityWorker,
    /// 市民: sees their own records and who read them.
    Citizen,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::DataBureauAdmin,
        Role::DepartmentOfficial,
        Role::WindowClerk,
        Role::CommunityWorker,
        Role::Citizen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::DataBureauAdmin => "data_bureau_admin",
            Role::DepartmentOfficial => "department_official",
            Role::WindowClerk => "window_clerk",
            Role::CommunityWorker => "community_worker",
            Role::Citizen => "citizen",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Role::DataBureauAdmin => "数据局管理员",
            Role::DepartmentOfficial => "部门工作人员",
            Role::WindowClerk => "窗口工作人员",
            Role::CommunityWorker => "社区工作者",
            Role::Citizen => "市民",
        }
    }

    pub fn parse(s: &str) -> Result<Role, IdentityError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| IdentityError::Invalid {
                field: "role".into(),
                value: s.into(),
                message: format!(
                    "not a role; the roles are {}",
                    Role::ALL.map(Role::as_str).join(", ")
                ),
            })
    }

    /// Whether users of this role belong to a department.
    pub fn needs_department(self) -> bool {
        !matches!(self, Role::Citizen)
    }
}

/// Errors of identities and tokens. Messages name the field and value at fault and never
/// repeat a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("{field} {value:?}: {message}")]
    Invalid {
        field: String,
        value: String,
        message: String,
    },
    #[error("the token is malformed: expected tb_<id>_<secret>")]
    MalformedToken,
    #[error("the token is not valid")]
    BadToken,
    #[error("the token has expired")]
    Expired,
    #[error("the token has been revoked")]
    Revoked,
    #[error("no randomness available for a token")]
    NoRandomness,
    #[error("the user or password is not right")]
    BadLogin,
}

/// Check a jurisdiction: a known division code (a grid is a 15-digit code whose first twelve
/// digits are a known community).
pub fn check_jurisdiction(code: &str) -> Result<(), IdentityError> {
    let known = if code.len() == 15 && code.bytes().all(|b| b.is_ascii_digit()) {
        tongban_standards::division::by_code(&code[..12]).is_some()
    } else {
        tongban_standards::division::by_code(code).is_some_and(|d| d.code == code)
    };
    if known {
        Ok(())
    } else {
        Err(IdentityError::Invalid {
            field: "jurisdiction".into(),
            value: code.into(),
            message: "not a known division code (city, district, street, community) or grid code"
                .into(),
        })
    }
}

/// Whether `code` lies within `jurisdiction`: the jurisdiction's code is a prefix of the
/// subject's division code. Subjects are placed in communities (12 digits), so a grid
/// jurisdiction (15 digits) sees nobody until subjects carry grid codes.
pub fn within(jurisdiction: &str, code: &str) -> bool {
    !jurisdiction.is_empty() && code.starts_with(jurisdiction)
}

fn random_hex(n: usize) -> Result<String, IdentityError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|_| IdentityError::NoRandomness)?;
    Ok(hex(&b))
}

/// A new token: (id, the whole token to hand out once).
pub fn new_token() -> Result<(String, String), IdentityError> {
    let id = random_hex(6)?;
    let secret = random_hex(24)?;
    Ok((id.clone(), format!("tb_{id}_{secret}")))
}

/// The id and secret of a token as presented.
pub fn parse_token(token: &str) -> Result<(&str, &str), IdentityError> {
    let rest = token
        .trim()
        .strip_prefix("tb_")
        .ok_or(IdentityError::MalformedToken)?;
    let (id, secret) = rest.split_once('_').ok_or(IdentityError::MalformedToken)?;
    let hexy = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if hexy(id, 12) && hexy(secret, 48) {
        Ok((id, secret))
    } else {
        Err(IdentityError::MalformedToken)
    }
}

/// Argon2id (the crate's default parameters) of `secret` under `salt`.
fn argon2(secret: &str, salt: &[u8]) -> Result<[u8; 32], IdentityError> {
    let mut out = [0u8; 32];
    argon2::Argon2::default()
        .hash_password_into(secret.as_bytes(), salt, &mut out)
        .map_err(|_| IdentityError::BadToken)?;
    Ok(out)
}

/// The stored form of a token's secret: `argon2id$<salt hex>$<hash hex>`.
pub fn hash_secret(token: &str) -> Result<String, IdentityError> {
    let (_, secret) = parse_token(token)?;
    hash_any(secret)
}

/// The stored form of a console password, as for a token's secret.
pub fn hash_password(password: &str) -> Result<String, IdentityError> {
    check_password(password)?;
    hash_any(password)
}

/// A console password: 8 to 128 characters. Longer ones are refused rather than hashed, so a
/// huge body cannot make Argon2 work for long.
pub fn check_password(password: &str) -> Result<(), IdentityError> {
    let n = password.chars().count();
    if (8..=128).contains(&n) {
        Ok(())
    } else {
        Err(IdentityError::Invalid {
            field: "password".into(),
            value: "(not shown)".into(),
            message: "a password has 8 to 128 characters".into(),
        })
    }
}

fn hash_any(secret: &str) -> Result<String, IdentityError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| IdentityError::NoRandomness)?;
    Ok(format!(
        "argon2id${}${}",
        hex(&salt),
        hex(&argon2(secret, &salt)?)
    ))
}

/// Whether `secret` is the one `stored` was made from. Compares in constant time.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("argon2id"), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(salt), Some(hash)) = (unhex::<16>(salt), unhex::<32>(hash)) else {
        return false;
    };
    match argon2(secret, &salt) {
        Ok(computed) => {
            computed
                .iter()
                .zip(&hash)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        }
        _ => false,
    }
}

/// Secrets Argon2 has already accepted, by token id, as BLAKE3 hashes: a token presented again
/// is checked in microseconds. Only an exact secret that once passed Argon2 passes here.
#[derive(Default)]
pub struct TokenCache {
    accepted: Mutex<HashMap<String, [u8; 32]>>,
}

impl TokenCache {
    /// Whether this exact secret already passed Argon2 for this token id.
    pub fn known(&self, id: &str, secret: &str) -> bool {
        let fast = *blake3::hash(secret.as_bytes()).as_bytes();
        self.accepted
            .lock()
            .map(|map| map.get(id) == Some(&fast))
            .unwrap_or(false)
    }

    /// Remember a secret Argon2 accepted.
    pub fn remember(&self, id: &str, secret: &str) {
        let fast = *blake3::hash(secret.as_bytes()).as_bytes();
        if let Ok(mut map) = self.accepted.lock() {
            map.insert(id.to_string(), fast);
        }
    }

    /// Whether the token's secret passes: from the cache, else by Argon2 against `stored` (and
    /// then remembered).
    pub fn check(&self, id: &str, secret: &str, stored: &str) -> bool {
        if self.known(id, secret) {
            return true;
        }
        let ok = verify_secret(secret, stored);
        if ok {
            self.remember(id, secret);
        }
        ok
    }

    /// Forget a token (on revocation).
    pub fn forget(&self, id: &str) {
        if let Ok(mut map) = self.accepted.lock() {
            map.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_and_verify_and_never_take_another_secret() {
        let (id, token) = new_token().unwrap();
        let (pid, secret) = parse_token(&token).unwrap();
        assert_eq!(pid, id);
        let stored = hash_secret(&token).unwrap();
        assert!(!stored.contains(secret));
        assert!(verify_secret(secret, &stored));
        let (_, other) = new_token().unwrap();
        let (_, other_secret) = parse_token(&other).unwrap();
        assert!(!verify_secret(other_secret, &stored));
        assert!(!verify_secret(secret, "argon2id$zz$00"));
        let cache = TokenCache::default();
        assert!(cache.check(&id, secret, &stored));
        assert!(cache.check(&id, secret, "garbage"), "remembered");
        assert!(!cache.check(&id, other_secret, &stored));
        cache.forget(&id);
        assert!(!cache.check(&id, secret, "garbage"));
    }

    #[test]
    fn malformed_tokens_and_unknown_roles_say_what_is_wrong() {
        for bad in [
            "",
            "tb_",
            "tb_abc_def",
            "xx_0123456789ab_",
            "tb_0123456789ab_zz",
        ] {
            assert_eq!(
                parse_token(bad),
                Err(IdentityError::MalformedToken),
                "{bad}"
            );
        }
        let err = Role::parse("mayor").unwrap_err().to_string();
        assert!(err.contains("role") && err.contains("mayor") && err.contains("citizen"));
        assert_eq!(Role::parse("window_clerk"), Ok(Role::WindowClerk));
    }

    #[test]
    fn jurisdictions_are_known_divisions_and_contain_their_children() {
        assert!(check_jurisdiction("320576052").is_ok());
        assert!(check_jurisdiction("320576052001").is_ok());
        assert!(check_jurisdiction("320576052001001").is_ok(), "a grid");
        assert!(check_jurisdiction("999999").is_err());
        assert!(within("320576052", "320576052001"));
        assert!(!within("320576052001", "320576052002"));
        assert!(!within("", "320576052002"));
    }

    proptest::proptest! {
        #[test]
        fn token_parsing_never_panics(s in ".*") {
            let _ = parse_token(&s);
            let _ = verify_secret(&s, &s);
        }
    }
}

/// Who is calling, once their token checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user_id: String,
    pub name: String,
    pub department: Option<String>,
    pub role: Role,
    pub jurisdiction: String,
    pub token_id: String,
}

/// Errors of identity operations against the store.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Store(#[from] tongban_store::StoreError),
}

/// Identities over the store, with the token cache.
pub struct Identities {
    store: std::sync::Arc<dyn tongban_store::Store>,
    cache: TokenCache,
    /// Argon2 runs on blocking threads, at most two at a time, so wrong secrets cannot occupy
    /// the threads that answer requests.
    argon: std::sync::Arc<tokio::sync::Semaphore>,
    /// Failed checks per token id in the current minute: past [`MAX_FAILURES`] a token id is
    /// refused without running Argon2 until the minute ends.
    failures: Mutex<HashMap<String, (i64, u32)>>,
    /// Who each token checked in the last [`PRINCIPAL_FRESH_MS`] belongs to, with the token's
    /// expiry and when it was read: a busy caller's token and user are read from the store at
    /// most once a second, and a revocation or a change of role made elsewhere (another process)
    /// takes effect within that second. A revocation through this `Identities` takes effect at
    /// once (see `revoked`).
    principals: Mutex<HashMap<String, CheckedToken>>,
    /// Tokens revoked through this `Identities`: never taken from or put into `principals`
    /// again, even by a check that read the token before the revocation.
    revoked: Mutex<std::collections::HashSet<String>>,
}

/// A checked token: who it belongs to, when it expires, when it was read from the store.
type CheckedToken = (Principal, Option<i64>, i64);

/// How long a checked token's principal is reused.
pub const PRINCIPAL_FRESH_MS: i64 = 1_000;

/// How long a console session lasts: a working day.
pub const SESSION_MS: i64 = 10 * 60 * 60 * 1000;

/// Failed secret checks a token id (or login attempts a user id) may have in a minute.
pub const MAX_FAILURES: u32 = 5;

/// A hash checked against when a token id is unknown, so that an unknown id takes as long to
/// refuse as a wrong secret (the answer's timing does not tell which ids exist).
const DUMMY_HASH: &str = "argon2id$00000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000";

fn invalid(field: &str, value: &str, message: &str) -> IdentityError {
    IdentityError::Invalid {
        field: field.into(),
        value: value.into(),
        message: message.into(),
    }
}

/// An id a user or department can have: short, ASCII letters, digits, `-`, `_` or `.`.
fn check_id(field: &str, id: &str) -> Result<(), IdentityError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            id,
            "use 1–64 ASCII letters, digits, '-', '_' or '.'",
        ))
    }
}

impl Identities {
    pub fn new(store: std::sync::Arc<dyn tongban_store::Store>) -> Identities {
        Identities {
            store,
            cache: TokenCache::default(),
            argon: std::sync::Arc::new(tokio::sync::Semaphore::new(2)),
            failures: Mutex::new(HashMap::new()),
            principals: Mutex::new(HashMap::new()),
            revoked: Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub async fn add_department(
        &self,
        id: &str,
        name: &str,
        division: &str,
    ) -> Result<tongban_store::DepartmentRow, ManageError> {
        check_id("department", id)?;
        if name.trim().is_empty() {
            return Err(invalid("name", name, "a department needs a name").into());
        }
        check_jurisdiction(division)
            .map_err(|_| invalid("division", division, "not a known division code"))?;
        let row = tongban_store::DepartmentRow {
            id: id.into(),
            name: name.trim().into(),
            division: division.into(),
            created_at: tongban_store::now_millis(),
        };
        self.store.put_department(&row).await?;
        Ok(row)
    }

    pub async fn add_user(
        &self,
        id: &str,
        name: &str,
        department: Option<&str>,
        role: Role,
        jurisdiction: &str,
    ) -> Result<tongban_store::UserRow, ManageError> {
        check_id("user", id)?;
        check_jurisdiction(jurisdiction)?;
        match (role.needs_department(), department) {
            (true, None) => {
                return Err(invalid(
                    "department",
                    "",
                    &format!("a {} belongs to a department", role.as_str()),
                )
                .into());
            }
            (false, Some(d)) => {
                return Err(invalid("department", d, "a citizen belongs to no department").into());
            }
            _ => {}
        }
        if let Some(d) = department
            && !self.store.departments().await?.iter().any(|x| x.id == d)
        {
            return Err(invalid(
                "department",
                d,
                "no such department; add it with `tongban identity department add`",
            )
            .into());
        }
        let row = tongban_store::UserRow {
            id: id.into(),
            name: name.trim().into(),
            department: department.map(str::to_string),
            role: role.as_str().into(),
            jurisdiction: jurisdiction.into(),
            created_at: tongban_store::now_millis(),
        };
        self.store.put_user(&row).await?;
        Ok(row)
    }

    /// Issue a token to a user; the whole token is returned once and never stored.
    pub async fn issue_token(
        &self,
        user_id: &str,
        expires_at: Option<i64>,
    ) -> Result<(tongban_store::TokenRow, String), ManageError> {
        if self.store.user(user_id).await?.is_none() {
            return Err(invalid("user", user_id, "no such user").into());
        }
        let (id, token) = new_token()?;
        let row = tongban_store::TokenRow {
            id,
            user_id: user_id.into(),
            secret_hash: hash_secret(&token)?,
            created_at: tongban_store::now_millis(),
            expires_at,
            revoked_at: None,
        };
        self.store.insert_token(&row).await?;
        Ok((row, token))
    }

    pub async fn revoke(&self, token_id: &str) -> Result<bool, ManageError> {
        self.cache.forget(token_id);
        if let Ok(mut revoked) = self.revoked.lock() {
            revoked.insert(token_id.to_string());
        }
        if let Ok(mut map) = self.principals.lock() {
            map.remove(token_id);
        }
        Ok(self
            .store
            .revoke_token(token_id, tongban_store::now_millis())
            .await?)
    }

    /// Check a secret against a stored hash with Argon2, off the async threads and bounded.
    async fn argon_check(&self, secret: &str, stored: &str) -> bool {
        let Ok(_permit) = self.argon.clone().acquire_owned().await else {
            return false;
        };
        let (secret, stored) = (secret.to_string(), stored.to_string());
        tokio::task::spawn_blocking(move || verify_secret(&secret, &stored))
            .await
            .unwrap_or(false)
    }

    /// Set a user's console password (stored only as an Argon2id hash).
    pub async fn set_password(&self, user_id: &str, password: &str) -> Result<(), ManageError> {
        let hash = hash_password(password)?;
        if self.store.set_password(user_id, &hash).await? {
            Ok(())
        } else {
            Err(invalid("user", user_id, "no such user").into())
        }
    }

    /// Count a failed check for `id` (a token id, or `login:` and a user id) in this minute.
    fn note_failure(&self, id: &str, now: i64) {
        let minute = now.div_euclid(60_000);
        if let Ok(mut map) = self.failures.lock() {
            // Counts of past minutes no longer matter; drop them once there are many.
            if map.len() > 10_000 {
                map.retain(|_, (m, _)| *m == minute);
            }
            let e = map.entry(id.to_string()).or_insert((minute, 0));
            if e.0 != minute {
                *e = (minute, 0);
            }
            e.1 += 1;
        }
    }

    fn blocked(&self, id: &str, now: i64) -> bool {
        let minute = now.div_euclid(60_000);
        self.failures
            .lock()
            .map(|m| {
                m.get(id)
                    .is_some_and(|(m, n)| *m == minute && *n >= MAX_FAILURES)
            })
            .unwrap_or(false)
    }

    /// A console login: the user's password checked, a session token issued that expires after
    /// [`SESSION_MS`]. A session is a token like any other (revoked on logout), so the console
    /// and the API authenticate in one way. Unknown users, users without a password and wrong
    /// passwords get the same error in about the same time; a user id with [`MAX_FAILURES`]
    /// failures this minute is refused without checking.
    pub async fn login(
        &self,
        user_id: &str,
        password: &str,
        now: i64,
    ) -> Result<(tongban_store::TokenRow, String), ManageError> {
        // An id no user can have is refused before it is counted, so junk ids cannot grow the
        // failure counts.
        if check_id("user", user_id).is_err() {
            return Err(IdentityError::BadLogin.into());
        }
        let key = format!("login:{user_id}");
        if self.blocked(&key, now) || check_password(password).is_err() {
            self.note_failure(&key, now);
            return Err(IdentityError::BadLogin.into());
        }
        let stored = self.store.password_hash(user_id).await?;
        let ok = self
            .argon_check(password, stored.as_deref().unwrap_or(DUMMY_HASH))
            .await
            && stored.is_some();
        if !ok {
            self.note_failure(&key, now);
            return Err(IdentityError::BadLogin.into());
        }
        self.issue_token(user_id, Some(now + SESSION_MS)).await
    }

    /// Who a token belongs to, at time `now` (milliseconds).
    pub async fn authenticate(&self, token: &str, now: i64) -> Result<Principal, ManageError> {
        let (id, secret) = parse_token(token)?;
        let revoked_here = self.revoked.lock().map(|r| r.contains(id)).unwrap_or(true);
        if revoked_here {
            return Err(IdentityError::Revoked.into());
        }
        if self.cache.known(id, secret)
            && let Ok(map) = self.principals.lock()
            && let Some((p, expires, read_at)) = map.get(id)
            && now - read_at < PRINCIPAL_FRESH_MS
        {
            if expires.is_some_and(|e| e <= now) {
                return Err(IdentityError::Expired.into());
            }
            return Ok(p.clone());
        }
        let row = self.store.token(id).await?;
        if !row
            .as_ref()
            .is_some_and(|r| self.cache.known(id, secret) && !r.secret_hash.is_empty())
        {
            if self.blocked(id, now) {
                return Err(IdentityError::BadToken.into());
            }
            let stored = row.as_ref().map_or(DUMMY_HASH, |r| r.secret_hash.as_str());
            if !self.argon_check(secret, stored).await || row.is_none() {
                self.note_failure(id, now);
                return Err(IdentityError::BadToken.into());
            }
            self.cache.remember(id, secret);
        }
        let row = row.ok_or(IdentityError::BadToken)?;
        if row.revoked_at.is_some() {
            return Err(IdentityError::Revoked.into());
        }
        if row.expires_at.is_some_and(|e| e <= now) {
            return Err(IdentityError::Expired.into());
        }
        let user = self
            .store
            .user(&row.user_id)
            .await?
            .ok_or(IdentityError::BadToken)?;
        let p = Principal {
            user_id: user.id,
            name: user.name,
            department: user.department,
            role: Role::parse(&user.role)?,
            jurisdiction: user.jurisdiction,
            token_id: row.id,
        };
        let revoked_since = self.revoked.lock().map(|r| r.contains(id)).unwrap_or(true);
        if revoked_since {
            return Err(IdentityError::Revoked.into());
        }
        if let Ok(mut map) = self.principals.lock() {
            // Tokens come and go; a map that grew past what a node serves at once is cleared
            // rather than trimmed entry by entry.
            if map.len() > 100_000 {
                map.clear();
            }
            map.insert(id.to_string(), (p.clone(), row.expires_at, now));
        }
        Ok(p)
    }
}
