//! The resolution configuration of the base libraries: blocking rules, threshold and block
//! limit for people and for legal entities, read from a TOML file (`tongban resolve --config`).
//!
//! The defaults live in code ([`crate::person::settings`], [`crate::entity::settings`]); a
//! configuration replaces what it names and keeps the rest. Rules are written as in
//! `link.toml` (`name`, `name:2` for the first two characters, `pinyin(name)`), over the columns
//! of the kind's table ([`crate::person::COLUMNS`], [`crate::entity::COLUMNS`]). Comparisons are
//! not configurable here: what a person's fields mean is fixed by the standards, and the
//! deterministic links and constraints hang on them. This module only parses and validates.

use crate::blocking::{KeyPart, Rule};
use crate::link::{ConfigError, parse_key, parse_toml, read_config};
use crate::linker::Settings;
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    person: Option<RawKind>,
    #[serde(default)]
    entity: Option<RawKind>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    max_block: Option<usize>,
    #[serde(default)]
    blocking: Option<Vec<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    keys: Vec<String>,
    #[serde(default = "yes")]
    train: bool,
}

fn yes() -> bool {
    true
}

/// What a configuration changes for one kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindConfig {
    pub threshold: Option<f64>,
    pub max_block: Option<usize>,
    pub rules: Option<Vec<Rule>>,
}

impl KindConfig {
    /// The settings with this configuration applied.
    pub fn apply(&self, mut settings: Settings) -> Settings {
        if let Some(t) = self.threshold {
            settings.threshold = t;
        }
        if let Some(m) = self.max_block {
            settings.max_block = m;
        }
        if let Some(rules) = &self.rules {
            settings.rules = rules.clone();
        }
        settings
    }
}

/// The configuration of both linked kinds, and the text it was read from (runs store it, so
/// that incremental resolution blocks as the run did).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LibraryConfig {
    pub text: String,
    pub person: KindConfig,
    pub entity: KindConfig,
}

impl LibraryConfig {
    pub fn load(path: &std::path::Path) -> Result<LibraryConfig, ConfigError> {
        let (file, text) = read_config(path)?;
        LibraryConfig::parse(&file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<LibraryConfig, ConfigError> {
        let raw: RawConfig = parse_toml(file, text)?;
        Ok(LibraryConfig {
            text: text.to_string(),
            person: kind(file, "person", crate::person::COLUMNS, raw.person)?,
            entity: kind(file, "entity", crate::entity::COLUMNS, raw.entity)?,
        })
    }

    /// The person settings under this configuration.
    pub fn person_settings(&self) -> Settings {
        self.person.apply(crate::person::settings())
    }

    /// The legal-entity settings under this configuration.
    pub fn entity_settings(&self) -> Settings {
        self.entity.apply(crate::entity::settings())
    }
}

fn kind(
    file: &str,
    name: &str,
    columns: &[&str],
    raw: Option<RawKind>,
) -> Result<KindConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(KindConfig::default());
    };
    let invalid = |setting: String, message: String| ConfigError::Invalid {
        file: file.to_string(),
        setting,
        message,
    };
    if let Some(t) = raw.threshold
        && !(t > 0.0 && t < 1.0)
    {
        return Err(invalid(
            format!("{name}.threshold"),
            format!("{t} is not a probability strictly between 0 and 1"),
        ));
    }
    if let Some(m) = raw.max_block
        && m < 2
    {
        return Err(invalid(
            format!("{name}.max_block"),
            format!("{m}: a block needs at least two records"),
        ));
    }
    let rules = match raw.blocking {
        None => None,
        Some(list) => {
            if list.is_empty() {
                return Err(invalid(
                    format!("{name}.blocking"),
                    "at least one rule is needed; comparing all pairs does not scale".into(),
                ));
            }
            let mut rules = Vec::new();
            for (i, r) in list.iter().enumerate() {
                let at = format!("{name}.blocking[{i}].keys");
                if r.keys.is_empty() {
                    return Err(invalid(at, "is empty".into()));
                }
                let mut parts = Vec::new();
                for k in &r.keys {
                    let (col, transform) = parse_key(k).map_err(|m| invalid(at.clone(), m))?;
                    let column = columns.iter().position(|c| *c == col).ok_or_else(|| {
                        invalid(
                            at.clone(),
                            format!(
                                "`{col}` is not a column of the {name} table; the columns are {}",
                                columns.join(", ")
                            ),
                        )
                    })?;
                    parts.push(KeyPart { column, transform });
                }
                rules.push(Rule {
                    text: r.keys.join(" + "),
                    parts,
                    train: r.train,
                });
            }
            if !rules.iter().any(|r| r.train) {
                return Err(invalid(
                    format!("{name}.blocking"),
                    "every rule has train = false; EM needs at least one rule to learn from".into(),
                ));
            }
            Some(rules)
        }
    };
    Ok(KindConfig {
        threshold: raw.threshold,
        max_block: raw.max_block,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped example spells out the defaults; it must stay exactly them.
    #[test]
    fn the_shipped_example_is_the_defaults() {
        let text = include_str!("../../../examples/resolution.toml");
        let c = LibraryConfig::parse("examples/resolution.toml", text).unwrap();
        let (p, e) = (c.person_settings(), c.entity_settings());
        let (dp, de) = (crate::person::settings(), crate::entity::settings());
        let rules = |s: &Settings| -> Vec<(Vec<KeyPart>, bool)> {
            s.rules.iter().map(|r| (r.parts.clone(), r.train)).collect()
        };
        assert_eq!(rules(&p), rules(&dp));
        assert_eq!(rules(&e), rules(&de));
        assert_eq!((p.threshold, p.max_block), (dp.threshold, dp.max_block));
        assert_eq!((e.threshold, e.max_block), (de.threshold, de.max_block));
    }

    #[test]
    fn a_configuration_replaces_what_it_names_and_says_what_is_wrong() {
        let c = LibraryConfig::parse(
            "r.toml",
            "[person]\nthreshold = 0.95\nblocking = [{ keys = [\"pinyin(name)\", \"birth_date\"] }]\n",
        )
        .unwrap();
        let s = c.person_settings();
        assert_eq!(s.threshold, 0.95);
        assert_eq!(s.rules.len(), 1);
        assert_eq!(c.entity_settings(), crate::entity::settings());

        let err = LibraryConfig::parse(
            "r.toml",
            "[person]\nblocking = [{ keys = [\"surname\"] }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("person.blocking[0].keys") && err.contains("surname"),
            "{err}"
        );
        let err = LibraryConfig::parse("r.toml", "[person]\nthreshold = 1.5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("person.threshold"), "{err}");
        let err = LibraryConfig::parse("r.toml", "[persons]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("r.toml:1"), "{err}");
        let err = LibraryConfig::parse(
            "r.toml",
            "[entity]\nblocking = [{ keys = [\"code\"], train = false }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("EM needs"), "{err}");
    }
}
