//! Administrative division codes: province → city → county → street → community.
//!
//! The codes are GB/T 2260 for the first three levels (2, 4 and 6 digits) and the National Bureau
//! of Statistics' 12-digit statistical codes below them (9 digits for a street or township, 12 for
//! a community or village committee). The tables are the NBS 2023 release, embedded at compile
//! time (see `data/SOURCES.md`): the whole country down to counties, Jiangsu's streets and Suzhou's
//! communities. Lookups are by code, by full name, or by the short name people actually write
//! (苏州工业园区 → 园区, 唯亭街道 → 唯亭, 江苏省 → 江苏).
//!
//! This module does not judge whether a code *was ever* valid: citizen ids keep the county code of
//! first issue, so a code missing here may be historical rather than wrong, and callers decide what
//! a miss means. It does not parse addresses either; `address` uses `longest_name_prefix` for that.

use foldhash::{HashMap, HashMapExt as _};
use serde::Serialize;
use std::sync::LazyLock;

/// The level of a division in the tree, from the top.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Level {
    /// 省级 (2-digit code): province, autonomous region, municipality.
    Province,
    /// 地级 (4-digit code): prefecture-level city; for municipalities the placeholder 市辖区.
    City,
    /// 县级 (6-digit code, GB/T 2260): district, county, county-level city, development zone.
    County,
    /// 乡级 (9-digit code): street (街道), town or township.
    Street,
    /// 村级 (12-digit code): community (社区) or village committee.
    Community,
}

impl std::fmt::Display for Level {
    /// The level in words, as reports print it: province, city, county, street, community.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Street => "street",
            Level::Community => "community",
        })
    }
}

impl Level {
    /// The number of digits a code of this level has.
    pub fn code_len(self) -> usize {
        match self {
            Level::Province => 2,
            Level::City => 4,
            Level::County => 6,
            Level::Street => 9,
            Level::Community => 12,
        }
    }

    /// The level whose codes have `len` digits, if any.
    pub fn from_code_len(len: usize) -> Option<Level> {
        match len {
            2 => Some(Level::Province),
            4 => Some(Level::City),
            6 => Some(Level::County),
            9 => Some(Level::Street),
            12 => Some(Level::Community),
            _ => None,
        }
    }

    /// The Chinese name of the level, for the console.
    pub fn zh(self) -> &'static str {
        match self {
            Level::Province => "省级",
            Level::City => "地级",
            Level::County => "县级",
            Level::Street => "乡级",
            Level::Community => "村级",
        }
    }
}

/// One division: its code, official name, short name and place in the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Division {
    /// The code at its own length (2, 4, 6, 9 or 12 digits).
    pub code: String,
    /// The official name, e.g. 苏州工业园区, 唯亭社区居委会.
    pub name: String,
    /// The name people write, with the administrative suffix removed (园区, 唯亭, 唯亭社区).
    pub short: String,
    pub level: Level,
    /// The parent's code, `None` for a province.
    pub parent: Option<String>,
}

impl Division {
    /// The code padded with zeros to the 12-digit statistical form.
    pub fn code12(&self) -> String {
        format!("{:0<12}", self.code)
    }
}

/// The embedded division tree with its indexes.
pub struct Registry {
    divisions: Vec<Division>,
    by_code: HashMap<String, usize>,
    by_name: HashMap<String, Vec<usize>>,
    children: HashMap<String, Vec<usize>>,
    /// The longest name or short name in characters, bounding `longest_name_prefix`'s search.
    max_name_chars: usize,
    /// For each first character of a name, a bit for every length (in characters, up to 63) that
    /// a name starting with it has: `longest_name_prefix` tries only those lengths, which makes
    /// address parsing several times faster than trying every prefix.
    lengths_by_first: HashMap<char, u64>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::load_embedded);

/// The embedded registry, parsed on first use (about 7,000 rows, a few milliseconds).
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// The division with this code (2, 4, 6, 9 or 12 digits; a 12-digit code padded with zeros, such
/// as `320576000000`, finds the county).
pub fn by_code(code: &str) -> Option<&'static Division> {
    registry().by_code(code)
}

/// Every division whose official or short name is `name`.
pub fn by_name(name: &str) -> Vec<&'static Division> {
    registry().by_name(name)
}

/// The chain from the province down to the division itself.
pub fn ancestors(code: &str) -> Vec<&'static Division> {
    registry().ancestors(code)
}

/// The direct children of a division, in code order.
pub fn children(code: &str) -> Vec<&'static Division> {
    registry().children(code)
}

/// Administrative suffixes removed to form the short name, longest first so that 社区居委会 wins
/// over 居委会. Names that are nothing but a suffix (市辖区) keep their full form.
const SUFFIXES: &[&str] = &[
    "社区居民委员会",
    "村民委员会",
    "社区居委会",
    "居民委员会",
    "特别行政区",
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "自治州",
    "自治县",
    "村委会",
    "居委会",
    "街道办事处",
    "街道",
    "地区",
    "新区",
    "省",
    "市",
    "区",
    "县",
    "镇",
    "乡",
];

/// Names whose common short form is not a plain suffix removal.
const EXTRA_ALIASES: &[(&str, &str)] = &[("320576", "园区"), ("320576", "工业园区")];

/// The short name: the official name without its administrative suffix, keeping at least two
/// characters so that 和县 or 城区 do not collapse to one ambiguous character.
pub fn short_name(name: &str) -> &str {
    // Development zones (苏州工业园区, 河南濮阳工业园区) are not shortened by dropping 区: nobody
    // writes 苏州工业园. Their abbreviations, where common, are in EXTRA_ALIASES.
    if name.ends_with("园区") {
        return name;
    }
    for suffix in SUFFIXES {
        if let Some(stem) = name.strip_suffix(suffix)
            && stem.chars().count() >= 2
        {
            // 社区居委会 names keep 社区 in the short form: people write 唯亭社区, not 唯亭.
            if suffix.starts_with("社区") {
                return &name[..stem.len() + "社区".len()];
            }
            return stem;
        }
    }
    name
}

impl Registry {
    fn load_embedded() -> Registry {
        let mut divisions = Vec::with_capacity(7_200);
        let tables: [(&str, Level); 5] = [
            (include_str!("../data/provinces.csv"), Level::Province),
            (include_str!("../data/cities.csv"), Level::City),
            (include_str!("../data/areas.csv"), Level::County),
            (include_str!("../data/streets_32.csv"), Level::Street),
            (include_str!("../data/villages_3205.csv"), Level::Community),
        ];
        for (text, level) in tables {
            for line in text.lines().skip(1) {
                // Every row is `code,"name",…` with the parent code derivable from the code
                // itself, so the remaining columns are not needed.
                let mut cols = line.splitn(3, ',');
                let (Some(code), Some(name)) = (cols.next(), cols.next()) else {
                    continue;
                };
                let name = name.trim_matches('"');
                if code.len() != level.code_len() || name.is_empty() {
                    continue;
                }
                let parent = match level {
                    Level::Province => None,
                    Level::City => Some(code[..2].to_string()),
                    Level::County => Some(code[..4].to_string()),
                    Level::Street => Some(code[..6].to_string()),
                    Level::Community => Some(code[..9].to_string()),
                };
                divisions.push(Division {
                    code: code.to_string(),
                    name: name.to_string(),
                    short: short_name(name).to_string(),
                    level,
                    parent,
                });
            }
        }
        Registry::from_divisions(divisions)
    }

    fn from_divisions(divisions: Vec<Division>) -> Registry {
        let mut by_code = HashMap::with_capacity(divisions.len());
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut children: HashMap<String, Vec<usize>> = HashMap::new();
        let mut max_name_chars = 0;
        for (i, d) in divisions.iter().enumerate() {
            by_code.insert(d.code.clone(), i);
            // 市辖区 and 县 are placeholders under municipalities, not names anyone writes.
            if d.level == Level::City && (d.name == "市辖区" || d.name == "县") {
                continue;
            }
            for n in [&d.name, &d.short] {
                let entry = by_name.entry(n.clone()).or_default();
                if !entry.contains(&i) {
                    entry.push(i);
                }
                max_name_chars = max_name_chars.max(n.chars().count());
            }
            if let Some(p) = &d.parent {
                children.entry(p.clone()).or_default().push(i);
            }
        }
        // Placeholder cities still have children (the districts of Beijing hang under 1101).
        for (i, d) in divisions.iter().enumerate() {
            if d.level == Level::City
                && (d.name == "市辖区" || d.name == "县")
                && let Some(p) = &d.parent
            {
                children.entry(p.clone()).or_default().push(i);
            }
        }
        for (code, alias) in EXTRA_ALIASES {
            if let Some(&i) = by_code.get(*code) {
                by_name.entry((*alias).to_string()).or_default().push(i);
            }
        }
        let mut lengths_by_first: HashMap<char, u64> = HashMap::new();
        for name in by_name.keys() {
            let len = name.chars().count();
            if let Some(first) = name.chars().next()
                && (1..64).contains(&len)
            {
                *lengths_by_first.entry(first).or_default() |= 1 << len;
            }
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| divisions[*a].code.cmp(&divisions[*b].code));
        }
        Registry {
            divisions,
            by_code,
            by_name,
            children,
            max_name_chars,
            lengths_by_first,
        }
    }

    /// See [`by_code`].
    pub fn by_code(&self, code: &str) -> Option<&Division> {
        let code = code.trim();
        if let Some(&i) = self.by_code.get(code) {
            return Some(&self.divisions[i]);
        }
        // A zero-padded 12-digit code names the deepest level whose digits are not all zero.
        if code.len() == 12 && code.bytes().all(|b| b.is_ascii_digit()) {
            for len in [9, 6, 4, 2] {
                if code[len..].bytes().all(|b| b == b'0')
                    && let Some(&i) = self.by_code.get(&code[..len])
                {
                    return Some(&self.divisions[i]);
                }
            }
        }
        None
    }

    /// See [`by_name`].
    pub fn by_name(&self, name: &str) -> Vec<&Division> {
        self.by_name
            .get(name.trim())
            .map(|v| v.iter().map(|&i| &self.divisions[i]).collect())
            .unwrap_or_default()
    }

    /// See [`ancestors`].
    pub fn ancestors(&self, code: &str) -> Vec<&Division> {
        let mut chain = Vec::new();
        let mut next = self.by_code(code);
        while let Some(d) = next {
            chain.push(d);
            next = d.parent.as_deref().and_then(|p| self.by_code(p));
        }
        chain.reverse();
        chain
    }

    /// See [`children`].
    pub fn children(&self, code: &str) -> Vec<&Division> {
        self.children
            .get(code.trim())
            .map(|v| v.iter().map(|&i| &self.divisions[i]).collect())
            .unwrap_or_default()
    }

    /// Whether `code` is `ancestor` itself or lies below it.
    pub fn is_within(&self, code: &str, ancestor: &str) -> bool {
        code.starts_with(ancestor)
    }

    /// All divisions, provinces first, then cities, counties, streets and communities.
    pub fn all(&self) -> &[Division] {
        &self.divisions
    }

    /// The division whose name or short name is the longest prefix of `text`, restricted to
    /// divisions below `within` (a code) when given, together with the number of bytes of `text`
    /// it covers. Among several divisions with the same name (there are many 新华街道), the one
    /// below `within` wins; without `within` an ambiguous name yields the first in code order.
    ///
    /// Address parsing calls this level by level, narrowing `within` as it goes.
    pub fn longest_name_prefix(
        &self,
        text: &str,
        within: Option<&str>,
    ) -> Option<(&Division, usize)> {
        let lengths = text
            .chars()
            .next()
            .and_then(|c| self.lengths_by_first.get(&c))?;
        // The byte ends of the prefixes whose length some name has, kept on the stack: this runs
        // several times for every address parsed.
        let mut ends = [0usize; 64];
        let mut found = 0;
        for (n, (i, c)) in text
            .char_indices()
            .take(self.max_name_chars.min(63))
            .enumerate()
        {
            if lengths & (1u64 << (n + 1)) != 0 {
                ends[found] = i + c.len_utf8();
                found += 1;
            }
        }
        for &end in ends[..found].iter().rev() {
            let Some(candidates) = self.by_name.get(&text[..end]) else {
                continue;
            };
            let mut best: Option<&Division> = None;
            for &i in candidates {
                let d = &self.divisions[i];
                if within.is_some_and(|w| !d.code.starts_with(w) || d.code == w) {
                    continue;
                }
                if best.is_none_or(|b| d.code < b.code) {
                    best = Some(d);
                }
            }
            if let Some(d) = best {
                return Some((d, end));
            }
        }
        None
    }
}

/// See [`Registry::longest_name_prefix`].
pub fn longest_name_prefix(text: &str, within: Option<&str>) -> Option<(&'static Division, usize)> {
    registry().longest_name_prefix(text, within)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weiting_street_has_its_35_communities() {
        let street = by_code("320576052").expect("唯亭街道 is shipped");
        assert_eq!(street.name, "唯亭街道");
        assert_eq!(street.level, Level::Street);
        let kids = children("320576052");
        assert_eq!(kids.len(), 35);
        assert_eq!(kids[0].code, "320576052001");
        assert_eq!(kids[0].name, "唯亭社区居委会");
        assert_eq!(kids[0].short, "唯亭社区");
        assert!(kids.iter().all(|k| k.level == Level::Community));
    }

    #[test]
    fn ancestors_run_from_province_down() {
        let chain: Vec<_> = ancestors("320576052001")
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(
            chain,
            [
                "江苏省",
                "苏州市",
                "苏州工业园区",
                "唯亭街道",
                "唯亭社区居委会"
            ]
        );
        assert_eq!(
            by_code("320576000000").map(|d| d.name.as_str()),
            Some("苏州工业园区")
        );
        assert_eq!(
            by_code("320000000000").map(|d| d.name.as_str()),
            Some("江苏省")
        );
        assert!(by_code("999999").is_none());
    }

    #[test]
    fn names_and_abbreviations_resolve() {
        for n in ["苏州工业园区", "园区", "工业园区"] {
            assert!(by_name(n).iter().any(|d| d.code == "320576"), "{n}");
        }
        assert!(by_name("江苏").iter().any(|d| d.code == "32"));
        assert!(by_name("苏州").iter().any(|d| d.code == "3205"));
        assert!(by_name("唯亭").iter().any(|d| d.code == "320576052"));
        assert!(by_name("市辖区").is_empty());
    }

    #[test]
    fn short_names_keep_two_characters() {
        assert_eq!(short_name("江苏省"), "江苏");
        assert_eq!(short_name("和县"), "和县");
        assert_eq!(short_name("新疆维吾尔自治区"), "新疆");
        assert_eq!(short_name("青剑湖社区居委会"), "青剑湖社区");
        assert_eq!(short_name("唯亭街道"), "唯亭");
        assert_eq!(short_name("苏州工业园区"), "苏州工业园区");
    }

    #[test]
    fn longest_prefix_prefers_the_division_within_scope() {
        let (d, n) = longest_name_prefix("江苏省苏州市工业园区唯亭街道", None).expect("province");
        assert_eq!((d.code.as_str(), n), ("32", "江苏省".len()));
        let rest = "苏州市工业园区唯亭街道";
        let (d, n) = longest_name_prefix(rest, Some("32")).expect("city");
        assert_eq!(d.code, "3205");
        let (d, _) = longest_name_prefix(&rest[n..], Some("3205")).expect("county");
        assert_eq!(d.code, "320576");
        // 鼓楼区 exists in several provinces; scoped to Jiangsu it must be Nanjing's or Xuzhou's.
        let (d, _) = longest_name_prefix("鼓楼区中山路", Some("32")).expect("鼓楼区");
        assert!(d.code.starts_with("32"));
        assert!(longest_name_prefix("", None).is_none());
        assert!(longest_name_prefix("人民路8号", None).is_none());
    }

    #[test]
    fn every_parent_exists_except_for_provinces() {
        let r = registry();
        for d in r.all() {
            match &d.parent {
                None => assert_eq!(d.level, Level::Province),
                Some(p) => assert!(r.by_code(p).is_some(), "parent of {} missing", d.code),
            }
        }
        assert_eq!(
            r.all()
                .iter()
                .filter(|d| d.level == Level::Province)
                .count(),
            31
        );
        assert!(r.all().iter().filter(|d| d.level == Level::County).count() > 2900);
    }
}
