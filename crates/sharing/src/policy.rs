//! Grants and the policy that decides every field of every read.
//!
//! A department asks for fields of a resource for a declared purpose (a code and its legal
//! basis), within a scope (a node of the division tree), for a period and with a daily quota; the
//! providing department approves or rejects it with a reason; a grant expires at the end of its
//! period and can be revoked. [`decide`] is the whole policy, as a pure function of the caller,
//! the resource's field, where the subject lives, the time and the grants — so it can be tested
//! exhaustively and every decision explained:
//!
//! 1. deny by default;
//! 2. a subject outside the caller's jurisdiction is never shown;
//! 3. a closed field is never shown;
//! 4. an open field is shown to any official within their jurisdiction;
//! 5. a conditional field is shown under an active grant of the caller's department that names
//!    the resource and the field and whose scope holds the subject — otherwise it is masked
//!    (identifiers keep four characters at each end, phone numbers three and two) or left out.
//!
//! A citizen sees only their own record, every field but the closed ones. Quotas are counted by
//! the caller (the API) against [`Grant::daily_quota`]; this module does no I/O.

use crate::catalogue::{Class, Resource};
use crate::identity::{Principal, Role, within};
use serde::{Deserialize, Serialize};

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Requested,
    Approved,
    Rejected,
    Revoked,
}

impl std::fmt::Display for GrantStatus {
    /// As stored and listed: requested, approved, rejected, revoked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GrantStatus::Requested => "requested",
            GrantStatus::Approved => "approved",
            GrantStatus::Rejected => "rejected",
            GrantStatus::Revoked => "revoked",
        })
    }
}

/// A request for fields of a resource, and once approved, the grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    /// The requesting department.
    pub department: String,
    pub resource: String,
    pub fields: Vec<String>,
    /// A purpose code (e.g. `social_assistance.eligibility`) and its legal basis.
    pub purpose: String,
    pub legal_basis: String,
    /// The division (or grid) within which subjects may be read.
    pub scope: String,
    pub valid_from: i64,
    pub valid_to: i64,
    pub daily_quota: u32,
    pub status: GrantStatus,
    /// Who decided, and why (a rejection or revocation always says why).
    pub decided_by: Option<String>,
    pub reason: Option<String>,
}

impl Grant {
    /// Whether the grant is in force at `now`.
    pub fn active(&self, now: i64) -> bool {
        self.status == GrantStatus::Approved && self.valid_from <= now && now < self.valid_to
    }
}

/// Why a request or decision is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("{field} {value:?}: {message}")]
    Invalid {
        field: String,
        value: String,
        message: String,
    },
    #[error("grant {id} is {status}; only a {expected} grant can be {action}")]
    WrongState {
        id: String,
        status: GrantStatus,
        expected: &'static str,
        action: &'static str,
    },
    #[error(
        "only the providing department ({provider}) or the data bureau can decide on grant {id}"
    )]
    NotProvider { id: String, provider: String },
}

fn invalid(field: &str, value: &str, message: &str) -> GrantError {
    GrantError::Invalid {
        field: field.into(),
        value: value.into(),
        message: message.into(),
    }
}

/// Check a request against the catalogue entry of its resource.
pub fn check_request(g: &Grant, resource: &Resource) -> Result<(), GrantError> {
    if g.resource != resource.id {
        return Err(invalid("resource", &g.resource, "not this resource"));
    }
    if g.fields.is_empty() {
        return Err(invalid("fields", "", "name at least one field"));
    }
    for f in &g.fields {
        match resource.field(f) {
            None => {
                return Err(invalid(
                    "fields",
                    f,
                    &format!("{} has no such field", resource.id),
                ));
            }
            Some(x) if x.class == Class::Closed => {
                return Err(invalid("fields", f, "a closed field is never shared"));
            }
            _ => {}
        }
    }
    if g.purpose.trim().is_empty() || g.legal_basis.trim().is_empty() {
        return Err(invalid(
            "purpose",
            &g.purpose,
            "a request names its purpose and legal basis",
        ));
    }
    crate::identity::check_jurisdiction(&g.scope)
        .map_err(|_| invalid("scope", &g.scope, "not a known division code"))?;
    if g.valid_to <= g.valid_from {
        return Err(invalid(
            "period",
            &format!("{} days", (g.valid_to - g.valid_from) / 86_400_000),
            "a grant lasts at least a day",
        ));
    }
    if g.daily_quota == 0 {
        return Err(invalid(
            "daily_quota",
            "0",
            "a grant allows at least one read a day",
        ));
    }
    Ok(())
}

/// Whether `by` may decide on (or revoke) grants of `provider`'s resources: a department
/// official of the providing department (known by its id or name: catalogues name providers
/// either way), or a data bureau administrator for the libraries the bureau provides.
pub fn may_decide(provider: &str, by_department: &[&str], by_role: Role) -> bool {
    match by_role {
        Role::DepartmentOfficial => by_department.contains(&provider),
        Role::DataBureauAdmin => provider == LIBRARY_PROVIDER || by_department.contains(&provider),
        _ => false,
    }
}

/// The provider the catalogue names for the base libraries.
pub const LIBRARY_PROVIDER: &str = "data_bureau";

/// Approve or reject a requested grant as `by` (see [`may_decide`]).
pub fn decide_request(
    g: &mut Grant,
    provider: &str,
    by: &str,
    by_department: &[&str],
    by_role: Role,
    approve: bool,
    reason: &str,
) -> Result<(), GrantError> {
    if !may_decide(provider, by_department, by_role) {
        return Err(GrantError::NotProvider {
            id: g.id.clone(),
            provider: provider.into(),
        });
    }
    if g.status != GrantStatus::Requested {
        return Err(GrantError::WrongState {
            id: g.id.clone(),
            status: g.status,
            expected: "requested",
            action: if approve { "approved" } else { "rejected" },
        });
    }
    if !approve && reason.trim().is_empty() {
        return Err(invalid("reason", reason, "a rejection says why"));
    }
    g.status = if approve {
        GrantStatus::Approved
    } else {
        GrantStatus::Rejected
    };
    g.decided_by = Some(by.into());
    g.reason = (!reason.trim().is_empty()).then(|| reason.trim().to_string());
    Ok(())
}

/// Revoke an approved grant, saying why.
pub fn revoke(g: &mut Grant, by: &str, reason: &str) -> Result<(), GrantError> {
    if g.status != GrantStatus::Approved {
        return Err(GrantError::WrongState {
            id: g.id.clone(),
            status: g.status,
            expected: "approved",
            action: "revoked",
        });
    }
    if reason.trim().is_empty() {
        return Err(invalid("reason", reason, "a revocation says why"));
    }
    g.status = GrantStatus::Revoked;
    g.decided_by = Some(by.into());
    g.reason = Some(reason.trim().into());
    Ok(())
}

/// What the caller gets of one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    /// The value, under this grant (none for an open field or one's own record).
    Show { grant: Option<String> },
    /// A masked value: the field exists, a grant would show it.
    Mask,
    /// Nothing: the field is closed or unknown.
    Omit,
}

/// Why a decision was taken, in words for an official.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explained {
    pub decision: Decision,
    pub because: String,
}

/// The subject of a read: its entity key and the division (community) it lies in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'a> {
    pub key: &'a str,
    pub division: &'a str,
    /// The person key a citizen principal is, when the caller is a citizen reading themself.
    pub is_caller: bool,
}

/// Whether the caller may see the subject at all (rule 2; a citizen only themself).
pub fn may_see(p: &Principal, s: &Subject) -> bool {
    match p.role {
        Role::Citizen => s.is_caller,
        _ => within(&p.jurisdiction, s.division),
    }
}

/// Why a decision was taken, before it is put in words: a read decides every field of every
/// subject it returns, and only an explanation asked for needs the sentence.
#[derive(Debug, Clone, Copy)]
enum Why<'a> {
    OutsideJurisdiction,
    NoSuchField,
    Closed,
    OwnRecord,
    Open,
    Grant(&'a Grant),
    NoGrant,
}

/// Whether `g` is a grant of `p`'s department in force at `now` for `field` of `resource`,
/// whatever subjects its scope holds.
fn covers(g: &Grant, p: &Principal, resource: &Resource, field: &str, now: i64) -> bool {
    g.active(now)
        && Some(g.department.as_str()) == p.department.as_deref()
        && g.resource == resource.id
        && g.fields.iter().any(|x| x == field)
}

/// Whether `p` could see `field` of `resource` unmasked for some subject in their
/// jurisdiction under `grants` at `now`: an open field, a citizen's own record, or a
/// conditional field a grant of theirs covers; a closed field never. It depends on the caller
/// and their grants only, never on a subject, so it can be said without telling anything about
/// the libraries.
pub fn ever_shown(
    p: &Principal,
    resource: &Resource,
    field: &str,
    now: i64,
    grants: &[Grant],
) -> bool {
    match resource.field(field).map(|f| f.class) {
        None | Some(Class::Closed) => false,
        Some(_) if p.role == Role::Citizen => true,
        Some(Class::Open) => true,
        Some(Class::Conditional) => grants.iter().any(|g| covers(g, p, resource, field, now)),
    }
}

fn decide_why<'a>(
    p: &Principal,
    resource: &Resource,
    field: &str,
    s: &Subject,
    now: i64,
    grants: &'a [Grant],
) -> (Decision, Why<'a>) {
    if !may_see(p, s) {
        return (Decision::Omit, Why::OutsideJurisdiction);
    }
    let Some(f) = resource.field(field) else {
        return (Decision::Omit, Why::NoSuchField);
    };
    match f.class {
        Class::Closed => (Decision::Omit, Why::Closed),
        _ if p.role == Role::Citizen => (Decision::Show { grant: None }, Why::OwnRecord),
        Class::Open => (Decision::Show { grant: None }, Why::Open),
        Class::Conditional => {
            let grant = grants
                .iter()
                .find(|g| covers(g, p, resource, field, now) && within(&g.scope, s.division));
            match grant {
                Some(g) => (
                    Decision::Show {
                        grant: Some(g.id.clone()),
                    },
                    Why::Grant(g),
                ),
                None => (Decision::Mask, Why::NoGrant),
            }
        }
    }
}

/// Decide one field of one subject for the caller, without the explanation (see [`decide`]).
pub fn decision(
    p: &Principal,
    resource: &Resource,
    field: &str,
    s: &Subject,
    now: i64,
    grants: &[Grant],
) -> Decision {
    decide_why(p, resource, field, s, now, grants).0
}

/// Decide one field of one subject for the caller, and say why.
pub fn decide(
    p: &Principal,
    resource: &Resource,
    field: &str,
    s: &Subject,
    now: i64,
    grants: &[Grant],
) -> Explained {
    let (decision, why) = decide_why(p, resource, field, s, now, grants);
    let because = match why {
        Why::OutsideJurisdiction => format!(
            "{} lies outside {}'s jurisdiction {}",
            s.key, p.user_id, p.jurisdiction
        ),
        Why::NoSuchField => format!("{} has no field {field}", resource.id),
        Why::Closed => format!("{field} is closed to sharing"),
        Why::OwnRecord => "a citizen's own record".into(),
        Why::Open => format!("{field} is open"),
        Why::Grant(g) => format!("grant {} for {} ({})", g.id, g.purpose, g.legal_basis),
        Why::NoGrant => format!(
            "{field} is conditional and {} holds no active grant for it covering {}",
            p.department.as_deref().unwrap_or("the caller"),
            s.division
        ),
    };
    Explained { decision, because }
}

/// What showing a link between two library entities tells, and so which field's decision
/// governs it. A link is data about a person as much as a field is: a person's `lives_in` link
/// is where they live, a room's incoming `lives_in` links are who lives there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRule {
    /// Nothing personal (a room's building, a company's premises): shown to whoever sees the page.
    Open,
    /// Shown when this field of the page's subject is shown.
    ThisField(&'static str),
    /// Shown when this field of the linked person is shown (a room's residents: their
    /// residence). The linked person is read, and audited as such.
    OtherPersonField(&'static str),
    /// Never listed.
    Never,
}

/// The rule for a relation seen from a page about an entity of `kind`; `outgoing` when the
/// page's subject is the relation's `from` end.
pub fn link_rule(kind: &str, relation: &str, outgoing: bool) -> LinkRule {
    use LinkRule::*;
    match (kind, relation, outgoing) {
        ("person", "lives_in" | "rents" | "lets" | "owns", true) => ThisField("residence"),
        ("person", "registered_in", true) => ThisField("registered_address"),
        ("person", "spouse" | "mother" | "father" | "guardian", _) => ThisField("family"),
        ("person", "employee_of" | "legal_rep_of", true) => ThisField("employer"),
        ("entity", "located_at", true) => Open,
        ("entity", "legal_rep_of", false) => ThisField("legal_rep"),
        ("room", "in_building", true) => Open,
        ("room", "lives_in" | "rents" | "lets" | "owns", false) => OtherPersonField("residence"),
        ("room", "registered_in", false) => OtherPersonField("registered_address"),
        ("building", "in_building" | "located_at", false) => Open,
        // A company's employees, and anything not named above, are not listed: no field
        // governs them.
        _ => Never,
    }
}

/// A value with its middle hidden: identifiers keep their first four and last four characters
/// (3205**********123X), a phone number its first three and last two (139******78), names their
/// first character, anything else is starred.
pub fn mask(field: &str, value: &str) -> String {
    // Most fields of most reads are masked, so this works on the text as it is: counting its
    // characters and copying the two ends, without a vector of characters or formatting (a
    // tenth of a governed lookup's own work went here).
    let base = field.rsplit('.').next().unwrap_or(field);
    let count = value.chars().count();
    let (head, tail) = match base {
        "citizen_id" | "credit_code" if count > 8 => (4, 4),
        "phone" if count > 5 => (3, 2),
        "name" | "legal_rep" if count > 0 => (1, 0),
        _ => return "*".repeat(count.clamp(1, 8)),
    };
    let head_end = value
        .char_indices()
        .nth(head)
        .map_or(value.len(), |(i, _)| i);
    let tail_start = value
        .char_indices()
        .nth(count - tail)
        .map_or(value.len(), |(i, _)| i);
    let stars = count - head - tail;
    let mut masked = String::with_capacity(head_end + stars + (value.len() - tail_start));
    masked.push_str(&value[..head_end]);
    masked.extend(std::iter::repeat_n('*', stars));
    masked.push_str(&value[tail_start..]);
    masked
}

#[cfg(test)]
mod tests {

    #[test]
    fn links_say_what_fields_say_and_nothing_unnamed_is_listed() {
        use LinkRule::*;
        assert_eq!(
            link_rule("person", "lives_in", true),
            ThisField("residence")
        );
        assert_eq!(link_rule("person", "mother", false), ThisField("family"));
        assert_eq!(
            link_rule("room", "lives_in", false),
            OtherPersonField("residence")
        );
        assert_eq!(link_rule("room", "in_building", true), Open);
        assert_eq!(link_rule("entity", "employee_of", false), Never);
        assert_eq!(link_rule("person", "lives_in", false), Never);
        assert_eq!(link_rule("building", "anything", true), Never);
        // Every field a rule names is a field of the resource it speaks about.
        let libraries = crate::catalogue::library_resources();
        let person = libraries.iter().find(|r| r.id == "library.person").unwrap();
        let entity = libraries.iter().find(|r| r.id == "library.entity").unwrap();
        for f in ["residence", "registered_address", "family", "employer"] {
            assert!(person.field(f).is_some(), "{f}");
        }
        assert!(entity.field("legal_rep").is_some());
    }

    use super::*;
    use crate::catalogue::library_resources;
    use proptest::prelude::*;

    fn principal(role: Role, department: Option<&str>, jurisdiction: &str) -> Principal {
        Principal {
            user_id: "u".into(),
            name: "某".into(),
            department: department.map(str::to_string),
            role,
            jurisdiction: jurisdiction.into(),
            token_id: "t".into(),
        }
    }

    fn grant(department: &str, fields: &[&str], scope: &str, status: GrantStatus) -> Grant {
        Grant {
            id: "G1".into(),
            department: department.into(),
            resource: "library.person".into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            purpose: "social_assistance.eligibility".into(),
            legal_basis: "社会救助暂行办法 第十一条".into(),
            scope: scope.into(),
            valid_from: 0,
            valid_to: 1_000,
            daily_quota: 100,
            status,
            decided_by: None,
            reason: None,
        }
    }

    #[test]
    fn fields_show_mask_or_vanish_as_their_class_and_the_grants_say() {
        let person = &library_resources()[0];
        let clerk = principal(Role::WindowClerk, Some("minzheng"), "320576052");
        let subject = Subject {
            key: "P1",
            division: "320576052001",
            is_caller: false,
        };
        let g = [grant(
            "minzheng",
            &["phone"],
            "320576052",
            GrantStatus::Approved,
        )];
        let d = |f: &str, now: i64, grants: &[Grant]| {
            decide(&clerk, person, f, &subject, now, grants).decision
        };
        assert_eq!(d("key", 10, &[]), Decision::Show { grant: None });
        assert_eq!(d("phone", 10, &[]), Decision::Mask);
        assert_eq!(
            d("phone", 10, &g),
            Decision::Show {
                grant: Some("G1".into())
            }
        );
        assert_eq!(d("phone", 2_000, &g), Decision::Mask, "expired");
        assert_eq!(d("name", 10, &g), Decision::Mask, "not granted");
        assert_eq!(d("ethnicity", 10, &g), Decision::Omit, "closed");
        let revoked = [grant(
            "minzheng",
            &["phone"],
            "320576052",
            GrantStatus::Revoked,
        )];
        assert_eq!(d("phone", 10, &revoked), Decision::Mask);
        let elsewhere = Subject {
            division: "320576001001",
            ..subject.clone()
        };
        assert_eq!(
            decide(&clerk, person, "key", &elsewhere, 10, &g).decision,
            Decision::Omit,
            "outside the jurisdiction"
        );
        let citizen = principal(Role::Citizen, None, "320576052");
        let me = Subject {
            is_caller: true,
            ..subject.clone()
        };
        assert_eq!(
            decide(&citizen, person, "phone", &me, 10, &[]).decision,
            Decision::Show { grant: None }
        );
        assert_eq!(
            decide(&citizen, person, "phone", &subject, 10, &[]).decision,
            Decision::Omit
        );
    }

    #[test]
    fn requests_are_checked_and_decided_by_the_provider_only() {
        let person = &library_resources()[0];
        let mut g = grant("minzheng", &["phone"], "320576052", GrantStatus::Requested);
        assert!(check_request(&g, person).is_ok());
        let mut closed = g.clone();
        closed.fields = vec!["ethnicity".into()];
        assert!(
            check_request(&closed, person)
                .unwrap_err()
                .to_string()
                .contains("closed")
        );
        let err = decide_request(
            &mut g,
            "gongan",
            "x",
            &["minzheng"],
            Role::DepartmentOfficial,
            true,
            "",
        )
        .unwrap_err();
        assert!(matches!(err, GrantError::NotProvider { .. }));
        let err = decide_request(
            &mut g,
            "gongan",
            "x",
            &["gongan"],
            Role::WindowClerk,
            true,
            "",
        )
        .unwrap_err();
        assert!(
            matches!(err, GrantError::NotProvider { .. }),
            "a clerk of the provider"
        );
        assert!(may_decide(
            LIBRARY_PROVIDER,
            &["bureau"],
            Role::DataBureauAdmin
        ));
        assert!(!may_decide("gongan", &["bureau"], Role::DataBureauAdmin));
        assert!(
            decide_request(
                &mut g,
                "gongan",
                "y",
                &["gongan"],
                Role::DepartmentOfficial,
                false,
                ""
            )
            .is_err(),
            "a rejection says why"
        );
        decide_request(
            &mut g,
            "gongan",
            "y",
            &["gongan"],
            Role::DepartmentOfficial,
            true,
            "",
        )
        .unwrap();
        assert!(g.active(10));
        assert!(revoke(&mut g, "y", "").is_err());
        revoke(&mut g, "y", "purpose fulfilled").unwrap();
        assert!(!g.active(10));
        assert!(
            decide_request(
                &mut g,
                "gongan",
                "y",
                &["gongan"],
                Role::DepartmentOfficial,
                true,
                ""
            )
            .is_err()
        );
    }

    proptest::proptest! {
        /// The mask is what keeping the first and last characters by index gives.
        #[test]
        fn masks_agree_with_masking_by_characters(
            field in proptest::sample::select(vec![
                "citizen_id", "credit_code", "phone", "name", "legal_rep", "residence",
                "person.phone", "x.name",
            ]),
            value in "\\PC{0,24}",
        ) {
            let chars: Vec<char> = value.chars().collect();
            let base = field.rsplit('.').next().unwrap_or(field);
            let ends = |head: usize, tail: usize| -> String {
                let h: String = chars[..head].iter().collect();
                let t: String = chars[chars.len() - tail..].iter().collect();
                format!("{h}{}{t}", "*".repeat(chars.len() - head - tail))
            };
            let expected = match base {
                "citizen_id" | "credit_code" if chars.len() > 8 => ends(4, 4),
                "phone" if chars.len() > 5 => ends(3, 2),
                "name" | "legal_rep" if !chars.is_empty() => {
                    format!("{}{}", chars[0], "*".repeat(chars.len().saturating_sub(1)))
                }
                _ => "*".repeat(chars.len().clamp(1, 8)),
            };
            proptest::prop_assert_eq!(super::mask(field, &value), expected);
        }
    }

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(
            mask("citizen_id", "32052419940827603X"),
            "3205**********603X"
        );
        assert_eq!(mask("phone", "13912345678"), "139******78");
        assert_eq!(mask("name", "王小明"), "王**");
        assert_eq!(mask("residence", "x"), "*");
    }

    fn division() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "320576".to_string(),
            "320576052".to_string(),
            "320576052001".to_string(),
            "320576052002".to_string(),
            "320576001".to_string(),
            "320576001003".to_string(),
            "320505".to_string(),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        /// Over random callers, grants and subjects: a field is shown only if it is open or a
        /// grant of the caller's department covers it, the subject and the moment, and never
        /// when closed or outside the caller's jurisdiction.
        #[test]
        fn nothing_is_shown_outside_grants_and_jurisdiction(
            role in prop::sample::select(Role::ALL.to_vec()),
            department in prop::sample::select(vec!["minzheng", "gongan", "weijian"]),
            jurisdiction in division(),
            subject_division in division(),
            is_caller in any::<bool>(),
            raw_grants in prop::collection::vec(
                (prop::sample::select(vec!["minzheng", "gongan", "weijian"]),
                 prop::sample::subsequence(vec!["name", "phone", "citizen_id", "birth_date", "residence"], 0..5),
                 division(),
                 0i64..2_000, 1i64..2_000,
                 prop::sample::select(vec![GrantStatus::Requested, GrantStatus::Approved, GrantStatus::Rejected, GrantStatus::Revoked])),
                0..6),
            field in prop::sample::select(vec!["key", "name", "citizen_id", "sex", "birth_date", "ethnicity", "phone", "residence", "household_no", "unknown"]),
            now in 0i64..3_000,
        ) {
            let person = &library_resources()[0];
            let dept = (role != Role::Citizen).then_some(department);
            let p = principal(role, dept, &jurisdiction);
            let grants: Vec<Grant> = raw_grants
                .into_iter()
                .enumerate()
                .map(|(i, (d, fields, scope, from, len, status))| Grant {
                    id: format!("G{i}"),
                    valid_from: from,
                    valid_to: from + len,
                    ..grant(d, &fields, &scope, status)
                })
                .collect();
            let s = Subject { key: "P1", division: &subject_division, is_caller };
            let e = decide(&p, person, field, &s, now, &grants);
            let class = person.field(field).map(|f| f.class);
            let in_sight = match role {
                Role::Citizen => is_caller,
                _ => subject_division.starts_with(&jurisdiction),
            };
            match &e.decision {
                Decision::Show { grant } => {
                    prop_assert!(in_sight, "{e:?}");
                    prop_assert!(matches!(class, Some(Class::Open) | Some(Class::Conditional)), "{e:?}");
                    if class == Some(Class::Conditional) && role != Role::Citizen {
                        let g = grants.iter().find(|g| Some(&g.id) == grant.as_ref());
                        prop_assert!(g.is_some_and(|g| g.active(now)
                            && g.department == department
                            && g.fields.iter().any(|f| f == field)
                            && subject_division.starts_with(&g.scope)), "{e:?}");
                    }
                }
                Decision::Mask => {
                    prop_assert!(in_sight && class == Some(Class::Conditional), "{e:?}");
                }
                Decision::Omit => {}
            }
            if !in_sight || class == Some(Class::Closed) || class.is_none() {
                prop_assert_eq!(&e.decision, &Decision::Omit);
            }
        }
    }
}

/// A stored grant row as a grant.
pub fn from_row(r: &tongban_store::GrantRow) -> Grant {
    Grant {
        id: r.id.clone(),
        department: r.department.clone(),
        resource: r.resource.clone(),
        fields: serde_json::from_str(&r.fields).unwrap_or_default(),
        purpose: r.purpose.clone(),
        legal_basis: r.legal_basis.clone(),
        scope: r.scope.clone(),
        valid_from: r.valid_from,
        valid_to: r.valid_to,
        daily_quota: u32::try_from(r.daily_quota).unwrap_or(0),
        status: match r.status.as_str() {
            "approved" => GrantStatus::Approved,
            "rejected" => GrantStatus::Rejected,
            "revoked" => GrantStatus::Revoked,
            _ => GrantStatus::Requested,
        },
        decided_by: r.decided_by.clone(),
        reason: r.reason.clone(),
    }
}

/// A grant as a row to store, created at `created_at` and changed now.
pub fn to_row(g: &Grant, created_at: i64) -> tongban_store::GrantRow {
    tongban_store::GrantRow {
        id: g.id.clone(),
        department: g.department.clone(),
        resource: g.resource.clone(),
        fields: serde_json::to_string(&g.fields).unwrap_or_else(|_| "[]".into()),
        purpose: g.purpose.clone(),
        legal_basis: g.legal_basis.clone(),
        scope: g.scope.clone(),
        valid_from: g.valid_from,
        valid_to: g.valid_to,
        daily_quota: i64::from(g.daily_quota),
        status: match g.status {
            GrantStatus::Requested => "requested",
            GrantStatus::Approved => "approved",
            GrantStatus::Rejected => "rejected",
            GrantStatus::Revoked => "revoked",
        }
        .into(),
        decided_by: g.decided_by.clone(),
        reason: g.reason.clone(),
        created_at,
        updated_at: tongban_store::now_millis(),
    }
}

/// Errors of the grant workflow against the store.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error(transparent)]
    Store(#[from] tongban_store::StoreError),
    #[error("no grant {0}")]
    NoSuchGrant(String),
    #[error("no resource {0} in the catalogue")]
    NoSuchResource(String),
    #[error("{0} belongs to no department and cannot request data")]
    NoDepartment(String),
}

/// What a department asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub resource: String,
    pub fields: Vec<String>,
    pub purpose: String,
    pub legal_basis: String,
    pub scope: String,
    pub days: u32,
    pub daily_quota: u32,
}

/// File a request on behalf of `by`'s department, checked against the catalogue.
pub async fn request(
    store: &dyn tongban_store::Store,
    catalogue: &[Resource],
    by: &Principal,
    r: Request,
) -> Result<Grant, WorkflowError> {
    let department = by
        .department
        .clone()
        .ok_or_else(|| WorkflowError::NoDepartment(by.user_id.clone()))?;
    let resource = catalogue
        .iter()
        .find(|x| x.id == r.resource)
        .ok_or_else(|| WorkflowError::NoSuchResource(r.resource.clone()))?;
    let now = tongban_store::now_millis();
    let mut id = [0u8; 6];
    getrandom::fill(&mut id).map_err(|_| GrantError::Invalid {
        field: "id".into(),
        value: String::new(),
        message: "no randomness for an id".into(),
    })?;
    let g = Grant {
        id: format!("G{}", crate::audit::hex(&id)),
        department,
        resource: r.resource,
        fields: r.fields,
        purpose: r.purpose,
        legal_basis: r.legal_basis,
        scope: r.scope,
        valid_from: now,
        valid_to: now + i64::from(r.days) * 86_400_000,
        daily_quota: r.daily_quota,
        status: GrantStatus::Requested,
        decided_by: None,
        reason: None,
    };
    check_request(&g, resource)?;
    // A department asks only for subjects in the division it serves: a scope elsewhere would
    // be a grant no read of its users could use, or one over another region's people.
    if let Some(row) = store
        .departments()
        .await?
        .into_iter()
        .find(|d| d.id == g.department)
        && !row.division.is_empty()
        && !crate::identity::within(&row.division, &g.scope)
    {
        return Err(invalid(
            "scope",
            &g.scope,
            &format!(
                "outside the division {} that department {} serves",
                row.division, g.department
            ),
        )
        .into());
    }
    store.put_grant(&to_row(&g, now)).await?;
    Ok(g)
}

/// The names `by`'s department goes by: its id and its name.
async fn department_names(
    store: &dyn tongban_store::Store,
    by: &Principal,
) -> Result<Vec<String>, WorkflowError> {
    let mut names: Vec<String> = Vec::new();
    if let Some(d) = &by.department {
        names.push(d.clone());
        if let Some(row) = store.departments().await?.into_iter().find(|x| &x.id == d) {
            names.push(row.name);
        }
    }
    Ok(names)
}

/// A stored grant with when it was created, the provider of its resource, and the names of
/// `by`'s department: what deciding on it or revoking it needs.
async fn stored(
    store: &dyn tongban_store::Store,
    catalogue: &[Resource],
    by: &Principal,
    id: &str,
) -> Result<(i64, Grant, String, Vec<String>), WorkflowError> {
    let row = store
        .grant(id)
        .await?
        .ok_or_else(|| WorkflowError::NoSuchGrant(id.into()))?;
    let g = from_row(&row);
    let provider = catalogue
        .iter()
        .find(|x| x.id == g.resource)
        .map(|x| x.provider.clone())
        .ok_or_else(|| WorkflowError::NoSuchResource(g.resource.clone()))?;
    Ok((
        row.created_at,
        g,
        provider,
        department_names(store, by).await?,
    ))
}

/// Approve or reject a request as `by` (see [`may_decide`]).
pub async fn decide_stored(
    store: &dyn tongban_store::Store,
    catalogue: &[Resource],
    by: &Principal,
    id: &str,
    approve: bool,
    reason: &str,
) -> Result<Grant, WorkflowError> {
    let (created_at, mut g, provider, names) = stored(store, catalogue, by, id).await?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    decide_request(
        &mut g,
        &provider,
        &by.user_id,
        &names,
        by.role,
        approve,
        reason,
    )?;
    store.put_grant(&to_row(&g, created_at)).await?;
    Ok(g)
}

/// Revoke an approved grant as `by`, saying why: the provider's official, or a data bureau
/// administrator (who may suspend any grant, as the watch over anomalies requires).
pub async fn revoke_stored(
    store: &dyn tongban_store::Store,
    catalogue: &[Resource],
    by: &Principal,
    id: &str,
    reason: &str,
) -> Result<Grant, WorkflowError> {
    let (created_at, mut g, provider, names) = stored(store, catalogue, by, id).await?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if by.role != Role::DataBureauAdmin && !may_decide(&provider, &names, by.role) {
        return Err(GrantError::NotProvider {
            id: g.id.clone(),
            provider,
        }
        .into());
    }
    revoke(&mut g, &by.user_id, reason)?;
    store.put_grant(&to_row(&g, created_at)).await?;
    Ok(g)
}
