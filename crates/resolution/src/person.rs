//! Person resolution: every mention of a person in a department record, linked to one person.
//!
//! A record mentions people as its subject (a resident in the household register) and in roles
//! (a birth certificate's mother and father, a rental's landlord and tenant, a company's legal
//! representative). [`mentions`] turns one cleaned record into those mentions; [`table`] lays
//! them out for the linker; [`settings`] says how people are compared and blocked:
//!
//! - a valid citizen id whose birth date and sex agree with the record links deterministically
//!   (`must_link`), and two different valid ids never share a person (`cannot_link`);
//! - everything else is Fellegi–Sunter on the id (one typo is its own level), the name (same
//!   pinyin and one-character differences are levels of their own, so 张/章 still match), birth
//!   date, sex, phone and the canonical address key, with the name's weight adjusted by how
//!   common it is.
//!
//! Pure functions of the records; reading them from the store and writing the result back is the
//! caller's job.

use crate::blocking::{KeyPart, Rule, Transform};
use crate::compare::Kind;
use crate::fields::Fields;
use crate::interned::{Text, intern};
use crate::linker::{Comparison, Settings};
use crate::table::Table;
use tongban_standards::citizen_id::CitizenId;

/// Field prefixes that name a person in a role.
pub const PERSON_ROLES: &[&str] = &[
    "spouse",
    "guardian",
    "mother",
    "father",
    "landlord",
    "tenant",
    "owner",
    "legal_rep",
];

/// One mention of a person.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mention {
    pub source: Text,
    pub record_key: Text,
    /// "subject" or one of [`PERSON_ROLES`].
    pub role: Text,
    /// A valid citizen id (18 characters), or "".
    pub valid_id: Text,
    /// Whether the valid id's birth date and sex agree with the record's own.
    pub id_agrees: bool,
    /// The id as compared: the valid id, or the raw text of an invalid one (normalised).
    pub id: Text,
    pub name: Text,
    /// `YYYY-MM-DD`, from the record or else read from the id.
    pub birth_date: Text,
    /// "1" male, "2" female.
    pub sex: Text,
    pub phone: Text,
    /// The canonical room key of where the person lives, or the building key if no room.
    pub address: Text,
    /// Golden-record fields that are not compared.
    pub ethnicity: Text,
    pub household_no: Text,
    /// Room or building key of the registered (hukou) address, when the record gives one.
    pub registered_address: Text,
    /// When the source recorded this (registration, collection or event date), `YYYY-MM-DD`.
    pub recorded_on: Text,
    /// The household register's status of the entry (正常, 死亡注销, 迁出…), for its subject.
    pub household_status: Text,
    /// The date of death a death registration states, for its subject.
    pub deceased_on: Text,
}

/// A cleaned record as resolution sees it.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub source: &'a str,
    /// The source's subject: "person", "entity", "room", "building", "relation".
    pub subject: &'a str,
    pub key: &'a str,
    pub cleaned: &'a Fields<'a>,
    /// Raw values of fields that failed cleaning, as (field, raw): an invalid id is still evidence.
    pub invalid: &'a [(String, String)],
}

/// The key of an address field: the room key, else the building key.
fn address_key(cleaned: &Fields, field: &str) -> String {
    let Some(obj) = cleaned.object(field) else {
        return String::new();
    };
    ["room_key", "building_key"]
        .iter()
        .map(|k| obj.text(k))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .into_owned()
}

/// An invalid id as written, reduced to its characters (full-width folded, upper case, no
/// spaces or punctuation), so that it can be compared with valid ids.
fn normalise_raw_id(raw: &str) -> String {
    let (folded, _) = tongban_standards::text::fold_form(raw);
    folded
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The birth date an 18-character id claims (digits 7–14), valid checksum or not, when it is a
/// real date; used only when the record states none.
fn birth_from_id_digits(id: &str) -> String {
    let b = id.as_bytes();
    if b.len() != 18 || !b[6..14].iter().all(u8::is_ascii_digit) {
        return String::new();
    }
    let s = &id[6..14];
    match chrono::NaiveDate::parse_from_str(s, "%Y%m%d") {
        Ok(d) => d.format("%Y-%m-%d").to_string(),
        Err(_) => String::new(),
    }
}

/// The fields a person is stated in, per role: spelled out once, because formatting them for
/// every role of every record was a fifth of the time reading the records took.
struct RoleFields {
    /// "" for the record's own subject, else one of [`PERSON_ROLES`].
    role: &'static str,
    name: &'static str,
    citizen_id: &'static str,
    birth_date: &'static str,
    sex: &'static str,
    phone: &'static str,
    ethnicity: &'static str,
}

macro_rules! role_fields {
    ($role:literal) => {
        RoleFields {
            role: $role,
            name: concat!($role, ".name"),
            citizen_id: concat!($role, ".citizen_id"),
            birth_date: concat!($role, ".birth_date"),
            sex: concat!($role, ".sex"),
            phone: concat!($role, ".phone"),
            ethnicity: concat!($role, ".ethnicity"),
        }
    };
}

const SUBJECT_FIELDS: RoleFields = RoleFields {
    role: "",
    name: "name",
    citizen_id: "citizen_id",
    birth_date: "birth_date",
    sex: "sex",
    phone: "phone",
    ethnicity: "ethnicity",
};

/// [`role_fields!`] of every one of [`PERSON_ROLES`], in the same order.
const ROLE_FIELDS: [RoleFields; 8] = [
    role_fields!("spouse"),
    role_fields!("guardian"),
    role_fields!("mother"),
    role_fields!("father"),
    role_fields!("landlord"),
    role_fields!("tenant"),
    role_fields!("owner"),
    role_fields!("legal_rep"),
];

/// `YYYY-MM-DD`, written digit by digit: chrono's `format` reads its format string anew at every
/// call, a twentieth of the time reading three million records took.
fn iso_date(d: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    let mut out = String::with_capacity(10);
    let year = d.year();
    if !(0..=9999).contains(&year) {
        return d.format("%Y-%m-%d").to_string();
    }
    for (n, width) in [(year as u32, 4), (d.month(), 2), (d.day(), 2)] {
        if !out.is_empty() {
            out.push('-');
        }
        for place in (0..width).rev() {
            let digit = n / 10u32.pow(place) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
    }
    out
}

/// The person mentions of one record.
pub fn mentions(r: &RecordView) -> Vec<Mention> {
    let mut roles: Vec<&RoleFields> = Vec::new();
    if r.subject == "person" {
        roles.push(&SUBJECT_FIELDS);
    }
    for fields in &ROLE_FIELDS {
        let present = r.cleaned.contains(fields.name)
            || r.cleaned.contains(fields.citizen_id)
            || r.invalid
                .iter()
                .any(|(f, _)| f == fields.citizen_id || f == fields.name);
        if present {
            roles.push(fields);
        }
    }
    let text = |f: &str| r.cleaned.text(f);
    roles
        .into_iter()
        .map(|fields| {
            let role = fields.role;
            let valid_id = intern(&text(fields.citizen_id));
            let raw_id = r
                .invalid
                .iter()
                .find(|(f, _)| f == fields.citizen_id)
                .map(|(_, raw)| normalise_raw_id(raw))
                .unwrap_or_default();
            let parsed = CitizenId::parse(&valid_id).ok();
            let stated_birth = text(fields.birth_date);
            let stated_sex = text(fields.sex);
            let id_birth = parsed.as_ref().map(|id| iso_date(id.birth_date()));
            let id_sex = parsed.as_ref().map(|id| id.sex().code().to_string());
            let id_agrees = parsed.is_some()
                && (stated_birth.is_empty() || Some(&*stated_birth) == id_birth.as_deref())
                && (stated_sex.is_empty() || Some(&*stated_sex) == id_sex.as_deref());
            let birth_date = if !stated_birth.is_empty() {
                stated_birth.into_owned()
            } else if let Some(b) = id_birth {
                b
            } else {
                birth_from_id_digits(&raw_id)
            };
            let sex = if !stated_sex.is_empty() {
                stated_sex.into_owned()
            } else {
                id_sex.unwrap_or_default()
            };
            let address = match role {
                "" => {
                    let a = address_key(r.cleaned, "residence_address");
                    if a.is_empty() {
                        address_key(r.cleaned, "registered_address")
                    } else {
                        a
                    }
                }
                // A tenant lives in the rented room; a landlord or owner need not.
                "tenant" => address_key(r.cleaned, "address"),
                _ => String::new(),
            };
            let recorded_on = [
                "registered_on",
                "collected_on",
                "event_date",
                "start_date",
                "insured_since",
            ]
            .iter()
            .map(|f| text(f))
            .find(|v| !v.is_empty())
            .unwrap_or_default()
            .into_owned();
            let own = |f: &str| {
                if role.is_empty() {
                    intern(&text(f))
                } else {
                    Text::EMPTY
                }
            };
            let deceased_on = if role.is_empty() && text("business_type").contains("死亡") {
                own("event_date")
            } else {
                Text::EMPTY
            };
            Mention {
                source: intern(r.source),
                record_key: intern(r.key),
                role: intern(if role.is_empty() { "subject" } else { role }),
                id: if valid_id.is_empty() {
                    intern(&raw_id)
                } else {
                    valid_id
                },
                valid_id,
                id_agrees,
                name: intern(&text(fields.name)),
                birth_date: intern(&birth_date),
                sex: intern(&sex),
                phone: intern(&text(fields.phone)),
                address: intern(&address),
                ethnicity: intern(&text(fields.ethnicity)),
                household_no: own("household_no"),
                registered_address: if role.is_empty() {
                    intern(&address_key(r.cleaned, "registered_address"))
                } else {
                    Text::EMPTY
                },
                recorded_on: intern(&recorded_on),
                household_status: own("status"),
                deceased_on,
            }
        })
        .filter(|m| !(m.name.is_empty() && m.id.is_empty()))
        .collect()
}

/// Columns of the person table, in order.
pub const COLUMNS: &[&str] = &[
    "agreed_id",
    "valid_id",
    "id",
    "name",
    "birth_date",
    "sex",
    "phone",
    "address",
];

/// The mentions as a linker table; row i is mention i, its id `i`.
pub fn table(mentions: &[Mention]) -> Table {
    let mut t = Table::new_interned(COLUMNS.iter().map(|c| c.to_string()).collect());
    t.reserve(mentions.len());
    for (i, m) in mentions.iter().enumerate() {
        let agreed = if m.id_agrees { m.valid_id } else { Text::EMPTY };
        t.push_texts(
            &i.to_string(),
            &[
                agreed,
                m.valid_id,
                m.id,
                m.name,
                m.birth_date,
                m.sex,
                m.phone,
                m.address,
            ],
        );
    }
    t
}

fn part(column: usize, transform: Transform) -> KeyPart {
    KeyPart { column, transform }
}

fn rule(text: &str, parts: Vec<KeyPart>, train: bool) -> Rule {
    Rule {
        text: text.into(),
        parts,
        train,
    }
}

/// How people are compared and blocked.
pub fn settings() -> Settings {
    const AGREED: usize = 0;
    const VALID: usize = 1;
    const ID: usize = 2;
    const NAME: usize = 3;
    const BIRTH: usize = 4;
    const SEX: usize = 5;
    const PHONE: usize = 6;
    const ADDRESS: usize = 7;
    let cmp = |name: &str, column, kind, tf| Comparison {
        name: name.into(),
        column,
        kind,
        tf,
    };
    let comparisons = vec![
        cmp("citizen_id", ID, Kind::Code, false),
        cmp("name", NAME, Kind::Name, true),
        cmp("birth_date", BIRTH, Kind::Date, false),
        cmp("sex", SEX, Kind::Exact, false),
        cmp("phone", PHONE, Kind::Code, false),
        cmp("address", ADDRESS, Kind::Place, false),
    ];
    use Transform::{Pinyin, Prefix, Whole};
    let rules = vec![
        rule("citizen id", vec![part(ID, Whole)], true),
        rule(
            "name pinyin + birth date",
            vec![part(NAME, Pinyin), part(BIRTH, Whole)],
            true,
        ),
        rule(
            "name pinyin + phone",
            vec![part(NAME, Pinyin), part(PHONE, Whole)],
            true,
        ),
        rule(
            "phone + birth date",
            vec![part(PHONE, Whole), part(BIRTH, Whole)],
            false,
        ),
        rule(
            "name pinyin + address",
            vec![part(NAME, Pinyin), part(ADDRESS, Whole)],
            false,
        ),
        // A typo in the id's last four characters leaves county and birth date intact.
        rule(
            "id county and birth date + sex",
            vec![part(ID, Prefix(14)), part(SEX, Whole)],
            false,
        ),
    ];
    let mut s = Settings::new(comparisons, rules);
    s.must_link = vec![AGREED];
    s.cannot_link = Some(VALID);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn iso_dates_are_written_as_chrono_writes_them() {
        for (y, m, d) in [
            (1949, 12, 31),
            (2020, 3, 4),
            (1, 1, 1),
            (9999, 12, 31),
            (-5, 6, 7),
        ] {
            let date = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(iso_date(date), date.format("%Y-%m-%d").to_string());
        }
    }

    #[test]
    fn every_role_has_its_fields_spelled_out() {
        let roles: Vec<&str> = ROLE_FIELDS.iter().map(|f| f.role).collect();
        assert_eq!(roles, PERSON_ROLES);
        for f in &ROLE_FIELDS {
            assert_eq!(f.name, format!("{}.name", f.role));
            assert_eq!(f.ethnicity, format!("{}.ethnicity", f.role));
        }
    }

    #[test]
    fn subject_and_roles_become_mentions() {
        let text = json!({
            "name": "王小明", "sex": "1", "birth_date": "2020-03-04",
            "mother.name": "李娜", "mother.citizen_id": "11010519491231002X",
            "father.name": "王伟",
        })
        .to_string();
        let cleaned = Fields::parse(&text);
        let invalid = vec![(
            "father.citizen_id".to_string(),
            "１１０１０５１９４９１２３１００２x".to_string(),
        )];
        let r = RecordView {
            source: "health_births",
            subject: "person",
            key: "B1",
            cleaned: &cleaned,
            invalid: &invalid,
        };
        let m = mentions(&r);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].role, "subject");
        assert_eq!(m[1].role, "mother");
        assert_eq!(m[1].birth_date, "1949-12-31");
        assert_eq!(m[1].sex, "2");
        assert!(m[1].id_agrees);
        assert_eq!(m[2].role, "father");
        assert_eq!(m[2].valid_id, "");
        assert_eq!(m[2].id, "11010519491231002X");
        assert_eq!(m[2].birth_date, "1949-12-31");
    }

    #[test]
    fn an_id_that_disagrees_with_the_record_does_not_link_deterministically() {
        let text =
            json!({"name": "李娜", "citizen_id": "11010519491231002X", "birth_date": "1950-01-01"})
                .to_string();
        let cleaned = Fields::parse(&text);
        let r = RecordView {
            source: "s",
            subject: "person",
            key: "1",
            cleaned: &cleaned,
            invalid: &[],
        };
        let m = mentions(&r);
        assert!(!m[0].id_agrees);
        let t = table(&m);
        assert_eq!(t.columns[0].get(0), "");
        assert_eq!(t.columns[1].get(0), "11010519491231002X");
    }

    #[test]
    fn tenant_address_is_the_rented_room() {
        let text = json!({
            "address": {"room_key": "320576|青剑湖花园|12|3|1001"},
            "tenant.name": "张三", "landlord.name": "李四",
        })
        .to_string();
        let cleaned = Fields::parse(&text);
        let r = RecordView {
            source: "housing_rentals",
            subject: "relation",
            key: "R1",
            cleaned: &cleaned,
            invalid: &[],
        };
        let m = mentions(&r);
        let tenant = m.iter().find(|m| m.role == "tenant").unwrap();
        let landlord = m.iter().find(|m| m.role == "landlord").unwrap();
        assert_eq!(tenant.address, "320576|青剑湖花园|12|3|1001");
        assert_eq!(landlord.address, "");
    }
}
