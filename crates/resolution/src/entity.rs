//! Legal-entity resolution: every mention of a company or organisation, linked to one entity.
//!
//! Entities are the subject of the market register and are named as employers by social
//! insurance and by the floating-population register (often by name alone). A valid credit code
//! links deterministically and two different valid codes never merge; the rest is Fellegi–Sunter
//! on the code (one typo is its own level), the normalised name and the address. Names are
//! normalised the way clerks vary them: full-width forms folded, 有限责任公司 written 有限公司,
//! bracketed place names (（苏州）) and leading province or city names (江苏省, 苏州市, 苏州)
//! removed. Pure functions; the store is the caller's.

use crate::blocking::{KeyPart, Rule, Transform};
use crate::compare::Kind;
use crate::fields::is_prefixed;
use crate::interned::{Text, intern};
use crate::linker::{Comparison, Settings};
use crate::person::RecordView;
use crate::table::Table;
use std::collections::HashMap;
use tongban_standards::division::{Level, longest_name_prefix};

/// Field prefixes that name an entity in a role.
pub const ENTITY_ROLES: &[&str] = &["employer"];

/// One mention of a legal entity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntityMention {
    pub source: Text,
    pub record_key: Text,
    pub role: Text,
    /// A valid credit code, or "".
    pub valid_code: Text,
    /// The code as compared: the valid code or the raw text of an invalid one.
    pub code: Text,
    pub name: Text,
    /// [`normalise_name`] of `name`.
    pub name_key: Text,
    /// Building key (or room key) of the registered address, else its door number's key.
    pub address: Text,
    pub legal_rep: Text,
    pub entity_type: Text,
    pub industry: Text,
    pub founded: Text,
}

/// [`normalise_name`], remembered per thread: an employer is named by thousands of its
/// employees' records, and normalising a name (bracketed places, place prefixes, legal forms)
/// was a tenth of reading them. Forgotten wholesale once it holds `REMEMBERED` names.
pub fn normalised_name(name: &str) -> String {
    const REMEMBERED: usize = 200_000;
    thread_local! {
        static SEEN: std::cell::RefCell<HashMap<String, String>> = std::cell::RefCell::new(HashMap::new());
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(key) = seen.get(name) {
            return key.clone();
        }
        let key = normalise_name(name);
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(name.to_string(), key.clone());
        key
    })
}

/// Company names as departments write them, reduced to what identifies the company.
pub fn normalise_name(name: &str) -> String {
    let (folded, _) = tongban_standards::text::fold_form(name);
    let mut s: String = folded.chars().filter(|c| !c.is_whitespace()).collect();
    // Bracketed parts: a place name in brackets (苏州) says where, not who.
    for (open, close) in [('(', ')'), ('（', '）'), ('[', ']'), ('【', '】')] {
        while let (Some(a), Some(b)) = (s.find(open), s.find(close)) {
            if b <= a {
                break;
            }
            let inner = &s[a + open.len_utf8()..b];
            let is_place = longest_name_prefix(inner, None).is_some_and(|(_, n)| n == inner.len());
            if !is_place {
                break;
            }
            s.replace_range(a..b + close.len_utf8(), "");
        }
    }
    // Leading province and city names, as many as there are (江苏省苏州市…).
    loop {
        match longest_name_prefix(&s, None) {
            Some((d, n)) if matches!(d.level, Level::Province | Level::City) && n < s.len() => {
                s.replace_range(..n, "");
            }
            _ => break,
        }
    }
    for (long, short) in [("有限责任公司", "有限公司"), ("股份有限公司", "股份公司")]
    {
        if let Some(stem) = s.strip_suffix(long) {
            s = format!("{stem}{short}");
        }
    }
    s
}

fn text<'a>(r: &RecordView<'a>, field: &str) -> std::borrow::Cow<'a, str> {
    r.cleaned.text(field)
}

/// The building (or room) key of an address, else its door number's key (county|road+number|,
/// as the building library keys premises known only by road and number), so that a company at
/// 唯华路1092号 has an address to compare and to show.
fn address_key(r: &RecordView, field: &str) -> String {
    let Some(obj) = r.cleaned.object(field) else {
        return String::new();
    };
    let key = ["building_key", "room_key"]
        .iter()
        .map(|k| obj.text(k))
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    if key.is_empty() {
        crate::place::door_key(r, field)
    } else {
        key.into_owned()
    }
}

/// The entity mentions of one record.
pub fn mentions(r: &RecordView) -> Vec<EntityMention> {
    let mut roles: Vec<&'static str> = Vec::new();
    if r.subject == "entity" {
        roles.push("");
    }
    for role in ENTITY_ROLES {
        let present = |field: &str| {
            r.cleaned.contains_prefixed(role, field)
                || r.invalid.iter().any(|(x, _)| is_prefixed(x, role, field))
        };
        if present("name") || present("credit_code") {
            roles.push(role);
        }
    }
    roles
        .into_iter()
        .map(|role| {
            let p = if role.is_empty() {
                String::new()
            } else {
                format!("{role}.")
            };
            let field = |f: &str| format!("{p}{f}");
            let code_field = field("credit_code");
            let valid_code = intern(&text(r, &code_field));
            let raw_code = r
                .invalid
                .iter()
                .find(|(f, _)| *f == code_field)
                .map(|(_, raw)| {
                    let (folded, _) = tongban_standards::text::fold_form(raw);
                    folded
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .map(|c| c.to_ascii_uppercase())
                        .collect::<String>()
                })
                .unwrap_or_default();
            let name = text(r, &field("name")).into_owned();
            let own = role.is_empty();
            let own_text = |f: &str| {
                if own {
                    intern(&text(r, f))
                } else {
                    Text::EMPTY
                }
            };
            EntityMention {
                source: intern(r.source),
                record_key: intern(r.key),
                role: intern(if own { "subject" } else { role }),
                code: if valid_code.is_empty() {
                    intern(&raw_code)
                } else {
                    valid_code
                },
                valid_code,
                name_key: intern(&normalised_name(&name)),
                name: intern(&name),
                address: if own {
                    intern(&address_key(r, "address"))
                } else {
                    Text::EMPTY
                },
                legal_rep: own_text("legal_rep.name"),
                entity_type: own_text("entity_type"),
                industry: own_text("industry"),
                founded: own_text("founded"),
            }
        })
        .filter(|m| !(m.name.is_empty() && m.code.is_empty()))
        .collect()
}

/// Columns of the entity table.
pub const COLUMNS: &[&str] = &[
    "valid_code",
    "code",
    "name_key",
    "address",
    "registered_name",
];

/// The mentions as a linker table. `registered_name` holds the normalised name when exactly one
/// valid credit code goes by it: a company's name is unique where it is registered (企业名称登记
/// rules), so an employer named exactly like one registered company is that company, and the
/// mention links deterministically even without a code. A name shared by several codes decides
/// nothing.
pub fn table(mentions: &[EntityMention]) -> Table {
    let mut names = RegisteredNames::default();
    for m in mentions {
        names.add(m);
    }
    let mut t = Table::new(COLUMNS.iter().map(|c| c.to_string()).collect());
    for (i, m) in mentions.iter().enumerate() {
        t.push(&i.to_string(), &names.row(m));
    }
    t
}

/// Normalised entity names and the valid credit codes that go by each: what decides a
/// mention's `registered_name` (see [`table`]). Incremental resolution keeps one and adds each
/// new mention to it.
#[derive(Debug, Default, Clone)]
pub struct RegisteredNames(HashMap<Text, Vec<Text>>);

impl RegisteredNames {
    /// Note the mention's name and valid code, when it has both.
    pub fn add(&mut self, m: &EntityMention) {
        if m.valid_code.is_empty() || m.name_key.is_empty() {
            return;
        }
        let codes = self.0.entry(m.name_key).or_default();
        if !codes.contains(&m.valid_code) {
            codes.push(m.valid_code);
        }
    }

    /// Room for `more` names.
    pub fn reserve(&mut self, more: usize) {
        self.0.reserve(more);
    }

    /// The mention's row of the entity table ([`COLUMNS`]) as things stand.
    pub fn row(&self, m: &EntityMention) -> [&'static str; 5] {
        let registered = match self.0.get(&m.name_key) {
            Some(codes) if codes.len() == 1 => m.name_key,
            _ => Text::EMPTY,
        };
        [m.valid_code, m.code, m.name_key, m.address, registered].map(Text::as_str)
    }
}

/// How entities are compared and blocked.
pub fn settings() -> Settings {
    const VALID: usize = 0;
    const CODE: usize = 1;
    const NAME: usize = 2;
    const ADDRESS: usize = 3;
    const REGISTERED_NAME: usize = 4;
    let comparisons = vec![
        Comparison {
            name: "credit_code".into(),
            column: CODE,
            kind: Kind::Code,
            tf: false,
        },
        Comparison {
            name: "name".into(),
            column: NAME,
            kind: Kind::Text,
            tf: true,
        },
        Comparison {
            name: "address".into(),
            column: ADDRESS,
            kind: Kind::Place,
            tf: false,
        },
    ];
    let part = |column, transform| KeyPart { column, transform };
    let rules = vec![
        Rule {
            text: "credit code".into(),
            parts: vec![part(CODE, Transform::Whole)],
            train: true,
        },
        Rule {
            text: "normalised name".into(),
            parts: vec![part(NAME, Transform::Whole)],
            train: true,
        },
        // A typo in the code's last characters leaves authority, type and division intact.
        Rule {
            text: "code prefix + name start".into(),
            parts: vec![
                part(CODE, Transform::Prefix(8)),
                part(NAME, Transform::Prefix(2)),
            ],
            train: false,
        },
    ];
    let mut s = Settings::new(comparisons, rules);
    s.must_link = vec![VALID, REGISTERED_NAME];
    s.cannot_link = Some(VALID);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_the_way_clerks_vary_them() {
        let a = normalise_name("苏州恒瑞信息科技有限公司");
        assert_eq!(a, "恒瑞信息科技有限公司");
        assert_eq!(normalise_name("江苏省苏州市恒瑞信息科技有限责任公司"), a);
        assert_eq!(normalise_name("恒瑞信息科技（苏州）有限公司"), a);
        assert_eq!(normalise_name("恒瑞信息科技(苏州)有限公司 "), a);
        assert_ne!(normalise_name("恒瑞食品有限公司"), a);
        // A name that is only a place stays as it is.
        assert_eq!(normalise_name("苏州"), "苏州");
    }

    #[test]
    fn register_and_employer_mentions() {
        let text = serde_json::json!({
            "credit_code": "91440101MA5CJQ4N59", "name": "苏州恒瑞信息科技有限公司",
            "legal_rep.name": "张三", "address": {"building_key": "320576|国际大厦|"},
        })
        .to_string();
        let cleaned = crate::fields::Fields::parse(&text);
        let r = RecordView {
            source: "market_entities",
            subject: "entity",
            key: "91440101MA5CJQ4N59",
            cleaned: &cleaned,
            invalid: &[],
        };
        let m = mentions(&r);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].role.as_str(), m[0].legal_rep.as_str()),
            ("subject", "张三")
        );
        let text =
            serde_json::json!({"name": "李四", "employer.name": "恒瑞信息科技(苏州)有限公司"})
                .to_string();
        let cleaned = crate::fields::Fields::parse(&text);
        let invalid = vec![(
            "employer.credit_code".to_string(),
            "91440101MA5CJQ4N5８".to_string(),
        )];
        let r = RecordView {
            source: "social_insurance",
            subject: "person",
            key: "S1",
            cleaned: &cleaned,
            invalid: &invalid,
        };
        let m = mentions(&r);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].role, "employer");
        assert_eq!(m[0].code, "91440101MA5CJQ4N58");
        assert_eq!(m[0].name_key, "恒瑞信息科技有限公司");
    }

    #[test]
    fn a_registered_name_links_a_mention_without_a_code() {
        let m = |code: &str, name: &str| EntityMention {
            valid_code: intern(code),
            code: intern(code),
            name_key: intern(&normalise_name(name)),
            name: intern(name),
            ..EntityMention::default()
        };
        let mentions = vec![
            m("91440101MA5CJQ4N59", "苏州恒瑞信息科技有限公司"),
            m("", "恒瑞信息科技（苏州）有限公司"),
            m("91350200776049653A", "苏州明澄汇企业管理咨询有限公司"),
            m("91320576MA0000007M", "明澄汇企业管理咨询有限公司"),
            m("", "明澄汇企业管理咨询有限公司"),
        ];
        let t = table(&mentions);
        let outcome = crate::linker::run(&t, &settings(), &mut |_| {}).unwrap();
        assert_eq!(outcome.labels[1], outcome.labels[0]);
        // Two codes share the name: the code-less mention is not given to either.
        assert_ne!(outcome.labels[2], outcome.labels[3]);
        assert_ne!(outcome.labels[4], outcome.labels[2]);
        assert_ne!(outcome.labels[4], outcome.labels[3]);
    }
}
