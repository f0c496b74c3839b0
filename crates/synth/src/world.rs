//! The true world: households, people, family relations, employment and legal entities.
//!
//! Every household and every entity is a pure function of the seed and its index, so any of them
//! can be generated on its own, in any order, on any thread, and comes out the same. That is what
//! keeps `tongban synth` streaming at any size: nothing about one household has to be remembered
//! to generate another. The few facts that cross households are derived, not stored: a legal
//! entity's representative is the head of household `e·A mod H` (A coprime to H, so the mapping
//! can be inverted while households stream past), and an employee's employer is drawn from a
//! skewed distribution over entity indices.
//!
//! This module produces clean truth only. How each department writes it down, with which errors,
//! is the business of `exports` and `noise`.

use crate::config::SynthConfig;
use crate::places::{RoomRef, Street};
use crate::rng::{Rng, Stream};
use chrono::{Datelike, Duration, NaiveDate};
use tongban_standards::citizen_id::{self, CitizenId, Sex};
use tongban_standards::credit_code::{self, CreditCode};
use tongban_standards::division::{self, Division, Level};
use tongban_standards::names;

/// A person's place in the household register (与户主关系).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Head,
    Spouse,
    Child,
    Parent,
    /// An unrelated co-tenant sharing a rented room (floating population).
    CoTenant,
}

impl Role {
    /// The relation to the head as the household register writes it.
    pub fn zh(self, sex: Sex) -> &'static str {
        match (self, sex) {
            (Role::Head, _) => "户主",
            (Role::Spouse, Sex::Male) => "夫",
            (Role::Spouse, Sex::Female) => "妻",
            (Role::Child, Sex::Male) => "子",
            (Role::Child, Sex::Female) => "女",
            (Role::Parent, Sex::Male) => "父亲",
            (Role::Parent, Sex::Female) => "母亲",
            (Role::CoTenant, _) => "合租人",
        }
    }
}

/// One person of the true world.
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    /// The truth key, `P{household}-{member}`.
    pub key: String,
    pub id: CitizenId,
    pub name: String,
    pub sex: Sex,
    pub birth: NaiveDate,
    pub nation: &'static str,
    /// Canonical 11-digit mobile number, for adults and most teenagers.
    pub phone: Option<String>,
    pub role: Role,
    pub father: Option<usize>,
    pub mother: Option<usize>,
    pub spouse: Option<usize>,
    /// The date of this person's marriage to `spouse`.
    pub married_on: Option<NaiveDate>,
    pub death: Option<NaiveDate>,
    /// The county of household registration: this street's county for residents, the home
    /// county for floating people (each co-tenant their own).
    pub hukou_county: &'static Division,
    /// The registered address: a room of the street for residents, a village back home for
    /// floating people.
    pub hukou_address: String,
    /// When this person was entered in the household register (residents) or registered as
    /// floating population.
    pub registered_on: NaiveDate,
    /// Index of the employing entity and the month insurance contributions began.
    pub employer: Option<u64>,
    pub insured_since: Option<NaiveDate>,
}

impl Person {
    pub fn age_on(&self, d: NaiveDate) -> u32 {
        self.id.age_on(d)
    }

    pub fn alive_on(&self, d: NaiveDate) -> bool {
        self.death.is_none_or(|x| x > d)
    }
}

/// One household: a registered family (户) for residents, or the people sharing one rented room
/// for the floating population.
#[derive(Clone, Debug, PartialEq)]
pub struct Household {
    pub index: u64,
    pub floating: bool,
    pub community: usize,
    /// The room of the household register (residents) or the rented room (floating).
    pub room: RoomRef,
    /// Where the household actually lives; differs from `room` for 人户分离 residents.
    pub actual_room: RoomRef,
    /// When the household registered here or moved in (never before its building was built).
    pub since: NaiveDate,
    pub members: Vec<Person>,
    /// The marriage date of the head and spouse, if they are a couple.
    pub marriage: Option<NaiveDate>,
}

/// Everything shared by all households of one run: the config, the street's layout and the
/// derived counts.
pub struct World {
    pub config: SynthConfig,
    pub street: Street,
    pub households: u64,
    pub entities: u64,
    /// The share of households that are floating population.
    pub floating_household_share: f64,
    rep_mul: u64,
    rep_inv: u64,
    /// Counties floating people come from, with the weight of their province.
    origins: Vec<(f64, Vec<&'static Division>)>,
    surnames: Vec<&'static str>,
    surname_weights: Vec<f64>,
}

/// Household types of residents: (probability, size).
const RESIDENT_TYPES: [(f64, u32); 6] = [
    (0.10, 1), // a single elder
    (0.15, 2), // an elder couple
    (0.15, 2), // a young couple
    (0.30, 3), // a couple with a child
    (0.15, 4), // a couple with two children
    (0.15, 5), // grandparents, a couple and a child
];
/// Household types of floating population: (probability, size).
const FLOATING_TYPES: [(f64, u32); 4] = [
    (0.50, 1), // a single worker
    (0.20, 2), // a couple
    (0.15, 3), // a couple with a child
    (0.15, 3), // three co-tenants
];

fn mean_size(types: &[(f64, u32)]) -> f64 {
    types.iter().map(|(p, n)| p * f64::from(*n)).sum()
}

/// Provinces floating people in Suzhou come from, weighted roughly as the census reports.
const ORIGIN_PROVINCES: [(&str, f64); 10] = [
    ("34", 0.25),
    ("41", 0.18),
    ("32", 0.15),
    ("51", 0.10),
    ("36", 0.07),
    ("42", 0.06),
    ("37", 0.06),
    ("43", 0.05),
    ("52", 0.05),
    ("45", 0.03),
];

/// Characters for given names, by sex; a given name is one or two of them.
const GIVEN_MALE: &[char] = &[
    '伟', '强', '磊', '军', '勇', '杰', '涛', '明', '超', '刚', '平', '辉', '鹏', '华', '建', '国',
    '文', '斌', '宇', '浩', '凯', '晨', '俊', '峰', '昊', '子', '轩', '博', '睿', '志', '东', '海',
    '林', '成', '新', '宏', '永', '健', '波', '亮',
];
const GIVEN_FEMALE: &[char] = &[
    '芳', '娜', '敏', '静', '丽', '艳', '娟', '霞', '秀', '玲', '桂', '英', '梅', '红', '燕', '婷',
    '雪', '琳', '欣', '怡', '萱', '涵', '雨', '佳', '慧', '晶', '倩', '颖', '洁', '琴', '兰', '萍',
    '璐', '悦', '诗', '梦', '思', '彤', '月', '春',
];
/// Surnames outside the top 100 that cleaning must read correctly (单 shan, 解 xie, 仇 qiu, 区 ou,
/// 朴 piao, 查 zha, 欧阳, 司马), given a small weight each.
const RARE_SURNAMES: [&str; 8] = ["单", "解", "仇", "区", "朴", "查", "欧阳", "司马"];

const MOBILE_PREFIXES: [&str; 24] = [
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "158", "159", "166", "177", "180", "182", "187", "188", "199",
];

/// Why a world cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error(transparent)]
    Place(#[from] crate::places::PlaceError),
    #[error("--people must be at least 1 and at most 20,000,000, got {0}")]
    People(u64),
    #[error("--floating-share must lie in [0, 1), got {0}")]
    FloatingShare(f64),
    #[error("the reference table has no county-level divisions for province {0}")]
    Origins(&'static str),
}

impl World {
    /// Derives household and entity counts from the config and lays out the street.
    pub fn new(config: SynthConfig) -> Result<World, WorldError> {
        if config.people == 0 || config.people > 20_000_000 {
            return Err(WorldError::People(config.people));
        }
        if !(0.0..1.0).contains(&config.floating_share) {
            return Err(WorldError::FloatingShare(config.floating_share));
        }
        let (rm, fm) = (mean_size(&RESIDENT_TYPES), mean_size(&FLOATING_TYPES));
        // With people share s floating, the household share f solves s = f·Fm / (f·Fm + (1−f)·Rm).
        let s = config.floating_share;
        let f = s * rm / (s * rm + (1.0 - s) * fm);
        let mean = f * fm + (1.0 - f) * rm;
        let households = ((config.people as f64 / mean).round() as u64).max(1);
        let street = Street::layout(config.seed, &config.street, households)?;
        // About one legal entity (companies and sole traders) per twelve people.
        let entities = (config.people / 12).clamp(1, households);
        let rep_mul = coprime_multiplier(households);
        let rep_inv = mod_inverse(rep_mul % households.max(1), households).unwrap_or(1);
        let registry = division::registry();
        let mut origins = Vec::new();
        for (prov, w) in ORIGIN_PROVINCES {
            let counties: Vec<&Division> = registry
                .all()
                .iter()
                .filter(|d| {
                    d.level == Level::County
                        && d.code.starts_with(prov)
                        && !d.name.contains("市辖区")
                })
                // Floating people from Jiangsu come from the north of the province, not Suzhou.
                .filter(|d| {
                    prov != "32"
                        || ["3203", "3207", "3208", "3209", "3213"]
                            .iter()
                            .any(|c| d.code.starts_with(c))
                })
                .collect();
            if counties.is_empty() {
                return Err(WorldError::Origins(prov));
            }
            origins.push((w, counties));
        }
        let mut surnames: Vec<&'static str> = Vec::new();
        let mut surname_weights = Vec::new();
        for (s, w) in names::surname_weights() {
            surnames.push(s);
            surname_weights.push(*w);
        }
        for s in RARE_SURNAMES {
            surnames.push(s);
            // The top-100 weights sum to 1; each rare surname gets one in a thousand.
            surname_weights.push(0.001);
        }
        Ok(World {
            config,
            street,
            households,
            entities,
            floating_household_share: f,
            rep_mul,
            rep_inv,
            origins,
            surnames,
            surname_weights,
        })
    }

    /// The household whose head represents entity `e`.
    pub fn rep_household(&self, e: u64) -> u64 {
        ((u128::from(e) * u128::from(self.rep_mul)) % u128::from(self.households)) as u64
    }

    /// The entity household `h`'s head represents, if any.
    pub fn entity_represented_by(&self, h: u64) -> Option<u64> {
        let e = ((u128::from(h) * u128::from(self.rep_inv)) % u128::from(self.households)) as u64;
        (e < self.entities).then_some(e)
    }

    fn surname(&self, r: &mut Rng) -> &'static str {
        self.surnames[r.weighted(&self.surname_weights)]
    }

    fn given_name(r: &mut Rng, sex: Sex) -> String {
        let pool = match sex {
            Sex::Male => GIVEN_MALE,
            Sex::Female => GIVEN_FEMALE,
        };
        let n = if r.chance(0.25) { 1 } else { 2 };
        (0..n)
            .map(|_| pool[r.below(pool.len() as u64) as usize])
            .collect()
    }

    fn mobile(r: &mut Rng) -> String {
        let p = MOBILE_PREFIXES[r.below(MOBILE_PREFIXES.len() as u64) as usize];
        format!("{p}{:08}", r.below(100_000_000))
    }

    fn birth_between(r: &mut Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
        let days = (to - from).num_days().max(0);
        from + Duration::days(r.range(0, days))
    }

    /// A county floating people come from, and a home address there.
    fn origin(&self, r: &mut Rng) -> (&'static Division, String) {
        let w: Vec<f64> = self.origins.iter().map(|o| o.0).collect();
        let counties = &self.origins[r.weighted(&w)].1;
        let county = counties[r.below(counties.len() as u64) as usize];
        let city = county.parent.as_deref().and_then(division::by_code);
        let prov = city
            .and_then(|c| c.parent.as_deref())
            .and_then(division::by_code);
        let address = format!(
            "{}{}{}{}村{}组{}号",
            prov.map(|d| d.name.as_str()).unwrap_or(""),
            city.filter(|c| c.name != "市辖区" && c.name != "县")
                .map(|d| d.name.as_str())
                .unwrap_or(""),
            county.name,
            VILLAGES[r.below(VILLAGES.len() as u64) as usize],
            1 + r.below(12),
            1 + r.below(80)
        );
        (county, address)
    }

    fn nation(r: &mut Rng) -> &'static str {
        NATIONS[r.weighted(&NATIONS.map(|n| n.1))].0
    }

    /// A new person with everything but the id, phone, death and job, which `household` settles
    /// once the whole family is known.
    fn person(
        &self,
        r: &mut Rng,
        (h, m): (u64, usize),
        role: Role,
        sex: Sex,
        birth: NaiveDate,
        surname: &str,
    ) -> Person {
        Person {
            key: format!("P{h}-{m}"),
            // Invariant: 320576 is a valid county code and generated births lie in 1900–2099,
            // so the placeholder is always issued; `household` replaces it with the real id.
            id: citizen_id::new_from_parts("320576", birth, 1)
                .expect("valid county and birth date"),
            name: format!("{surname}{}", Self::given_name(r, sex)),
            sex,
            birth,
            nation: Self::nation(r),
            phone: None,
            role,
            father: None,
            mother: None,
            spouse: None,
            married_on: None,
            death: None,
            hukou_county: self.street.county,
            hukou_address: String::new(),
            registered_on: birth,
            employer: None,
            insured_since: None,
        }
    }

    /// Household `h`, generated from nothing but the seed and `h`.
    ///
    /// The citizen ids are as issued before the generator's uniqueness check; in the rare case
    /// that two people of the world drew the same id, the writer gives the later one the next free
    /// sequence number (see `generate`), so the files may differ from this in those ids only.
    pub fn household(&self, h: u64) -> Household {
        let cfg = &self.config;
        let as_of = cfg.as_of;
        let mut r = Rng::for_item(cfg.seed, Stream::Household, h);
        let community = self.street.community_of(h);
        let local = h - community.first_household;
        let floating = r.chance(self.floating_household_share);
        let room = self.street.room(community.index, local);
        // About one resident household in eight is registered in one room and lives in another
        // (人户分离); the other room is one of the community's rooms beyond the households' own.
        let actual_room = if !floating && r.chance(0.12) {
            self.street
                .room(community.index, community.households + local)
        } else {
            room
        };
        let kind = if floating {
            r.weighted(&FLOATING_TYPES.map(|t| t.0))
        } else {
            r.weighted(&RESIDENT_TYPES.map(|t| t.0))
        };
        let date = |year: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d).unwrap_or(as_of);
        let years = |d: NaiveDate, n: i32| add_years(d, n);
        let family_surname = self.surname(&mut r);
        let mut members: Vec<Person> = Vec::new();
        let mut marriage = None;
        let other = |s: Sex| {
            if s == Sex::Male {
                Sex::Female
            } else {
                Sex::Male
            }
        };

        // (elders, couple, children, co-tenants) and a range of birth years: of the first child
        // when there are children (so that births spread evenly over the years, as they do in a
        // street that people move in and out of), else of the head.
        let (elders, couple, children, cotenants, head_from, head_to) = match (floating, kind) {
            (true, 0) => (0, false, 0, 1, 1970, 2006),
            (true, 1) => (0, true, 0, 0, 1970, 2002),
            (true, 2) => (0, true, 1, 0, 2006, 2026),
            (true, _) => (0, false, 0, 3, 1975, 2006),
            (false, 0) => (1, false, 0, 0, 1930, 1962),
            (false, 1) => (2, false, 0, 0, 1932, 1962),
            (false, 2) => (0, true, 0, 0, 1975, 2002),
            (false, 3) => (0, true, 1, 0, 1988, 2026),
            (false, 4) => (0, true, 2, 0, 1988, 2023),
            (false, _) => (2, true, 1, 0, 1998, 2026),
        };
        for i in 0..cotenants {
            let sex = if r.chance(0.6) {
                Sex::Male
            } else {
                Sex::Female
            };
            let birth = Self::birth_between(&mut r, date(head_from, 1, 1), date(head_to, 12, 31));
            let surname = self.surname(&mut r);
            let role = if i == 0 { Role::Head } else { Role::CoTenant };
            let mut p = self.person(&mut r, (h, members.len()), role, sex, birth, surname);
            let (county, address) = self.origin(&mut r);
            p.hukou_county = county;
            p.hukou_address = address;
            members.push(p);
        }
        let mut parents = (None, None);
        let mut first_child = None;
        if couple {
            let head_sex = if r.chance(0.85) {
                Sex::Male
            } else {
                Sex::Female
            };
            let range = (date(head_from, 1, 1), date(head_to, 12, 31).min(as_of));
            let (mother, father) = if children > 0 {
                // Mothers have their first child at 23 to 35; fathers are up to two years
                // younger or five years older, and at least 22.
                let c = Self::birth_between(&mut r, range.0, range.1);
                first_child = Some(c);
                let mo = Self::birth_between(&mut r, years(c, -35), years(c, -23));
                (
                    mo,
                    (mo + Duration::days(r.range(-700, 1800))).min(years(c, -22)),
                )
            } else {
                let b = Self::birth_between(&mut r, range.0, range.1);
                (b, {
                    // The partner is up to two years younger or five years older, and born by
                    // the end of 2003; a partner drawn later is taken as older instead, so
                    // that no day collects the overflow.
                    let p = b + Duration::days(r.range(-700, 1800));
                    if p > date(2003, 12, 31) {
                        b - Duration::days(r.range(0, 1800))
                    } else {
                        p
                    }
                })
            };
            let (b1, b2) = if head_sex == Sex::Male {
                (father, mother)
            } else {
                (mother, father)
            };
            let head = self.person(&mut r, (h, 0), Role::Head, head_sex, b1, family_surname);
            members.push(head);
            let spouse_surname = self.surname(&mut r);
            let spouse = self.person(
                &mut r,
                (h, 1),
                Role::Spouse,
                other(head_sex),
                b2,
                spouse_surname,
            );
            members.push(spouse);
            let earliest = years(b1.max(b2), 22);
            let latest = match first_child {
                Some(c) => c - Duration::days(300),
                None => years(earliest, 8).min(as_of),
            };
            let m = Self::birth_between(&mut r, earliest.min(latest), latest);
            marriage = Some(m);
            for (a, b) in [(0, 1), (1, 0)] {
                members[a].spouse = Some(b);
                members[a].married_on = Some(m);
            }
            parents = if head_sex == Sex::Male {
                (Some(0), Some(1))
            } else {
                (Some(1), Some(0))
            };
        }
        if elders > 0 {
            // In a three-generation household the elders are the head's parents, 24 to 34 years
            // older than the head; otherwise they are the household.
            let b1 = match members.first() {
                Some(head) if couple => {
                    Self::birth_between(&mut r, years(head.birth, -34), years(head.birth, -24))
                }
                _ => Self::birth_between(&mut r, date(head_from, 1, 1), date(head_to, 12, 31)),
            };
            let role = if couple { Role::Parent } else { Role::Head };
            // A single elder is more often a widow than a widower.
            let first_sex = if elders == 1 && r.chance(0.6) {
                Sex::Female
            } else {
                Sex::Male
            };
            let first = members.len();
            let p = self.person(&mut r, (h, first), role, first_sex, b1, family_surname);
            members.push(p);
            if elders > 1 {
                let latest = members
                    .first()
                    .filter(|_| couple)
                    .map_or(date(1966, 12, 31), |head| years(head.birth, -20));
                let b2 = (b1 + Duration::days(r.range(-1200, 1200))).min(latest);
                let surname = self.surname(&mut r);
                let second = members.len();
                let role2 = if couple { Role::Parent } else { Role::Spouse };
                let p = self.person(&mut r, (h, second), role2, Sex::Female, b2, surname);
                members.push(p);
                let wed = Self::birth_between(&mut r, years(b1.max(b2), 21), years(b1.max(b2), 26));
                // The elders married before their child, the head, was born.
                let wed = members
                    .first()
                    .filter(|_| couple)
                    .map_or(wed, |head| wed.min(head.birth - Duration::days(300)));
                for (a, b) in [(first, second), (second, first)] {
                    members[a].spouse = Some(b);
                    members[a].married_on = Some(wed);
                }
                if couple {
                    members[0].father = Some(first);
                    members[0].mother = Some(second);
                } else {
                    marriage = Some(wed);
                }
            }
        }
        if let (Some(f), Some(mo), Some(first)) = (parents.0, parents.1, first_child) {
            let surname = names::split_surname(&members[f].name).0.to_string();
            let mut birth = first;
            for i in 0..children {
                if i > 0 {
                    // Later children follow two to eight years apart, if they are born yet.
                    birth += Duration::days(r.range(730, 2920));
                    if birth > as_of {
                        break;
                    }
                }
                let sex = if r.chance(0.52) {
                    Sex::Male
                } else {
                    Sex::Female
                };
                let c = members.len();
                let mut child = self.person(&mut r, (h, c), Role::Child, sex, birth, &surname);
                child.father = Some(f);
                child.mother = Some(mo);
                child.nation = members[f].nation;
                members.push(child);
            }
        }
        // The household came here after its building was built and once the head was an adult.
        let built = date(self.street.compound(&room).built_year + 1, 1, 1);
        let head_birth = members.first().map_or(as_of, |p| p.birth);
        let since = if floating {
            let lo = date(2012, 1, 1).max(built).max(years(head_birth, 18));
            Self::birth_between(&mut r, lo.min(as_of), as_of)
        } else {
            let lo = date(1995, 1, 1).max(built).max(years(head_birth, 20));
            Self::birth_between(&mut r, lo.min(as_of), date(2020, 12, 31).max(lo).min(as_of))
        };
        // Family members of a floating household share one home county; co-tenants keep their own.
        if floating && cotenants == 0 {
            let (county, address) = self.origin(&mut r);
            for p in &mut members {
                p.hukou_county = county;
                p.hukou_address = address.clone();
            }
        }
        let registered_address = self.street.room_address(&room);
        for (m, p) in members.iter_mut().enumerate() {
            if !floating {
                p.hukou_address = registered_address.clone();
            }
            let county = if floating {
                p.hukou_county.code.as_str()
            } else if p.birth.year() < 2001 && !(p.role == Role::Spouse && r.chance(0.3)) {
                // Residents born before 2001 were mostly first registered under 吴县 (320524), a
                // county abolished in 2001 that no current division table lists: their ids keep it.
                ["320524", "320524", "320524", "320583", "320506"][r.below(5) as usize]
            } else if p.role == Role::Spouse {
                ["320581", "320582", "320585", "320684", "320282"][r.below(5) as usize]
            } else {
                "320576"
            };
            // Sequence numbers come from the household index so that two people born on the same
            // day in the same county seldom collide; the writer resolves the rest.
            let base = (mix_seq(h, m as u64) % 500) as u16 * 2;
            let seq = base + if p.sex == Sex::Male { 1 } else { 0 };
            // Invariant: the county is a 6-digit code, the birth lies in 1900–2099 and seq ≤ 999.
            p.id = citizen_id::new_from_parts(county, p.birth, seq).expect("valid id parts");
            p.registered_on = match p.role {
                Role::Child if p.birth >= since => p.birth,
                Role::Spouse => since.max(p.married_on.unwrap_or(since)),
                _ => since.max(p.birth),
            };
            let age = p.id.age_on(as_of);
            if age >= 16 && r.chance(0.97) {
                p.phone = Some(Self::mobile(&mut r));
            }
            // Deaths since mid-2018 follow a Gompertz hazard: about 1‰ a year at 40, 2.5 % at 80.
            if age >= 40 {
                let hazard = 0.0002 * (0.085 * (f64::from(age) - 30.0)).exp();
                if r.chance(1.0 - (-8.0 * hazard).exp()) {
                    let from = date(2018, 7, 1).max(years(p.birth, 40)).max(since);
                    p.death = Some(Self::birth_between(&mut r, from.min(as_of), as_of));
                }
            }
            let retire = if p.sex == Sex::Male { 60 } else { 55 };
            if (18..retire).contains(&age)
                && p.death.is_none()
                && r.chance(if floating { 0.85 } else { 0.72 })
            {
                // Employer sizes are skewed: u³ puts most employees at low indices, which are
                // companies (sole traders take the upper half of the indices).
                let u = r.unit();
                let e = ((u * u * u) * self.entities as f64) as u64;
                p.employer = Some(e.min(self.entities - 1));
                let mut start = years(p.birth, 18).max(date(2005, 1, 1));
                if floating {
                    start = start.max(since);
                }
                let d = Self::birth_between(&mut r, start.min(as_of), as_of);
                p.insured_since = date(d.year(), d.month(), 1).into();
            }
        }
        Household {
            index: h,
            floating,
            community: community.index,
            room,
            actual_room,
            since,
            members,
            marriage,
        }
    }

    /// Brings a household into line with the legal entities: nobody is insured by an employer
    /// before it was founded, and nobody starts at one after it was revoked.
    pub fn settle(&self, hh: &mut Household, entities: &[Entity]) {
        for p in &mut hh.members {
            let (Some(e), Some(since)) = (p.employer, p.insured_since) else {
                continue;
            };
            let Some(ent) = entities.get(e as usize) else {
                continue;
            };
            let founded = NaiveDate::from_ymd_opt(ent.founded.year(), ent.founded.month(), 1)
                .unwrap_or(ent.founded);
            let since = since.max(founded);
            if since > self.config.as_of || ent.revoked_on.is_some_and(|r| since >= r) {
                p.employer = None;
                p.insured_since = None;
            } else {
                p.insured_since = Some(since);
            }
        }
    }
}

/// The same day `n` years later (28 February for 29 February in a common year).
pub fn add_years(d: NaiveDate, n: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year() + n, d.month(), d.day())
        .or_else(|| NaiveDate::from_ymd_opt(d.year() + n, d.month(), 28))
        .unwrap_or(d)
}

/// Villages floating people give as their home address.
const VILLAGES: [&str; 8] = [
    "王庄", "李集", "张湾", "新河", "杨桥", "孙圩", "东岗", "后营",
];

/// Ethnic groups as they occur among Suzhou's population (most of its minorities are 回, 苗,
/// 土家, 壮 and 满 people who moved there for work), with their weights.
const NATIONS: [(&str, f64); 13] = [
    ("汉族", 0.97),
    ("回族", 0.004),
    ("苗族", 0.004),
    ("土家族", 0.004),
    ("壮族", 0.004),
    ("满族", 0.003),
    ("彝族", 0.002),
    ("布依族", 0.002),
    ("侗族", 0.002),
    ("蒙古族", 0.002),
    ("维吾尔族", 0.001),
    ("朝鲜族", 0.001),
    ("藏族", 0.001),
];

/// Mixes a household index and member position into a sequence-number seed.
fn mix_seq(h: u64, m: u64) -> u64 {
    crate::rng::mix(h.wrapping_mul(8).wrapping_add(m) ^ 0x5eed)
}

/// The smallest multiplier ≥ 1,000,003 that shares no factor with `n`.
fn coprime_multiplier(n: u64) -> u64 {
    let mut a = 1_000_003u64;
    while gcd(a, n) != 1 {
        a += 2;
    }
    a
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The inverse of `a` modulo `n`, by the extended Euclidean algorithm.
fn mod_inverse(a: u64, n: u64) -> Option<u64> {
    if n <= 1 {
        return Some(0);
    }
    let (mut t, mut new_t) = (0i128, 1i128);
    let (mut r, mut new_r) = (i128::from(n), i128::from(a));
    while new_r != 0 {
        let q = r / new_r;
        (t, new_t) = (new_t, t - q * new_t);
        (r, new_r) = (new_r, r - q * new_r);
    }
    if r > 1 {
        return None;
    }
    if t < 0 {
        t += i128::from(n);
    }
    Some(t as u64)
}

/// A legal entity of the true world.
#[derive(Clone, Debug)]
pub struct Entity {
    pub index: u64,
    pub key: String,
    pub code: CreditCode,
    pub name: String,
    /// 有限责任公司 or 个体工商户.
    pub kind: &'static str,
    pub industry: &'static str,
    pub founded: NaiveDate,
    /// When the registration was revoked (its representative died and nobody took over).
    pub revoked_on: Option<NaiveDate>,
    pub capital_wan: u32,
    pub address: String,
}

impl Entity {
    pub fn sole_trader(&self) -> bool {
        self.kind == "个体工商户"
    }
}

/// Industries of companies (GB/T 4754 section, name, the word in a company name).
const INDUSTRIES: [(&str, &str, &str); 8] = [
    ("C", "制造业", "精密机械"),
    ("F", "批发和零售业", "商贸"),
    ("H", "住宿和餐饮业", "餐饮管理"),
    ("I", "信息传输、软件和信息技术服务业", "信息科技"),
    ("L", "租赁和商务服务业", "企业管理咨询"),
    ("E", "建筑业", "建设工程"),
    ("G", "交通运输、仓储和邮政业", "物流"),
    ("O", "居民服务、修理和其他服务业", "家政服务"),
];
/// Sole traders' shops and the industry each belongs to.
const SHOPS: [(&str, &str); 5] = [
    ("便利店", "批发和零售业"),
    ("水果店", "批发和零售业"),
    ("五金店", "批发和零售业"),
    ("小吃店", "住宿和餐饮业"),
    ("理发店", "居民服务、修理和其他服务业"),
];

/// Syllables of trade names; a name spells the entity index in base 32 with these as digits, so
/// no two entities share one (registration authorities forbid duplicate names in an area).
const BRAND: [char; 32] = [
    '恒', '瑞', '博', '远', '星', '海', '华', '科', '盛', '鼎', '澄', '明', '汇', '通', '锦', '程',
    '丰', '优', '创', '鑫', '达', '诚', '弘', '利', '源', '宇', '泰', '隆', '嘉', '合', '润', '信',
];

fn brand_name(e: u64) -> String {
    let mut digits = Vec::new();
    let mut x = e;
    while digits.len() < 2 || x > 0 {
        digits.push(BRAND[(x % 32) as usize]);
        x /= 32;
    }
    digits.iter().rev().collect()
}

const ORG_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

impl World {
    /// Entity `e`, whose legal representative is `rep` (the head of household
    /// [`World::rep_household`]`(e)`): founded when the representative was between 22 and 65 and
    /// alive, revoked if the representative has died since.
    pub fn entity(&self, e: u64, rep: &Person) -> Entity {
        let as_of = self.config.as_of;
        let mut r = Rng::for_item(self.config.seed, Stream::Entity, e);
        // The upper half of the indices are sole traders; the skewed employer draw sends most
        // employees to the companies in the lower half.
        let sole_trader = e >= self.entities / 2;
        let lo = NaiveDate::from_ymd_opt(1996, 1, 1)
            .unwrap_or(as_of)
            .max(add_years(rep.birth, 22));
        let hi = as_of
            .min(add_years(rep.birth, 65))
            .min(rep.death.unwrap_or(as_of));
        let founded = if lo < hi {
            World::birth_between(&mut r, lo, hi)
        } else {
            // A representative outside the usual ages founded it as close to 1996 as their
            // adulthood and life allow.
            let (adult, last) = (
                add_years(rep.birth, 18),
                as_of.min(rep.death.unwrap_or(as_of)),
            );
            NaiveDate::from_ymd_opt(1996, 1, 1)
                .unwrap_or(as_of)
                .max(adult)
                .min(last)
        };
        // Organisation codes issued since the 2015 reform start with MA; older ones are digits.
        // The index is spelled out in the last digits so that no two entities share a code.
        let body: String = if founded.year() >= 2016 {
            let mut s = String::from("MA");
            let mut x = e;
            for _ in 0..6 {
                s.push(char::from(ORG_CHARS[(x % 31) as usize]));
                x /= 31;
            }
            s
        } else {
            format!("{:08}", (e * 7919 + 10_000_000) % 100_000_000)
        };
        let county = &self.street.county;
        let division = if r.chance(0.9) {
            county.code.as_str()
        } else {
            self.street.city.code.as_str()
        };
        let division = if division.len() == 4 {
            format!("{division}00")
        } else {
            division.to_string()
        };
        // Invariant: authority 9 with types 1 and 2 exist, the division has 6 digits and the body
        // uses the code's character set, so the code is always issued.
        let code =
            credit_code::new_from_parts('9', if sole_trader { '2' } else { '1' }, &division, &body)
                .expect("valid credit code parts");
        let brand = brand_name(e);
        let (name, industry) = if sole_trader {
            let (shop, industry) = SHOPS[r.below(SHOPS.len() as u64) as usize];
            (
                format!("{}{}{brand}{shop}", county.name, self.street.short()),
                industry,
            )
        } else {
            let (_section, industry, word) = INDUSTRIES[r.below(INDUSTRIES.len() as u64) as usize];
            (
                format!("{}{brand}{word}有限公司", self.street.city.short),
                industry,
            )
        };
        let comp = &self.street.communities[r.below(self.street.communities.len() as u64) as usize];
        let c = &comp.compounds[r.below(comp.compounds.len() as u64) as usize];
        Entity {
            index: e,
            key: format!("E{e}"),
            code,
            name,
            kind: if sole_trader {
                "个体工商户"
            } else {
                "有限责任公司"
            },
            industry,
            founded,
            revoked_on: rep.death.filter(|d| *d > founded),
            capital_wan: if sole_trader {
                0
            } else {
                [10, 50, 100, 200, 500, 1000, 5000][r.below(7) as usize]
            },
            address: format!(
                "{}{}{}{}{}{}号",
                self.street.province.name,
                self.street.city.name,
                county.name,
                self.street.name,
                c.road,
                c.road_number + 600 + r.below(200) as u32
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(people: u64) -> World {
        World::new(SynthConfig {
            people,
            ..SynthConfig::default()
        })
        .expect("world")
    }

    #[test]
    fn households_are_consistent_families() {
        let w = world(5_000);
        let as_of = w.config.as_of;
        for h in 0..w.households {
            let hh = w.household(h);
            assert_eq!(
                hh,
                w.household(h),
                "household {h} is a pure function of its index"
            );
            assert!(!hh.members.is_empty());
            assert_eq!(hh.members[0].role, Role::Head);
            for p in &hh.members {
                assert_eq!(p.id.birth_date(), p.birth, "{}", p.key);
                assert_eq!(p.id.sex(), p.sex, "{}", p.key);
                assert!(p.birth <= as_of);
                if let Some(m) = p.mother {
                    let mother = &hh.members[m];
                    assert_eq!(mother.sex, Sex::Female);
                    assert!(
                        p.birth.year() - mother.birth.year() >= 18,
                        "{} born to a child",
                        p.key
                    );
                }
                assert!(
                    p.registered_on >= p.birth,
                    "{} registered before birth",
                    p.key
                );
                assert!(
                    hh.since >= built_after(&w, &hh),
                    "{} moved in before the building stood",
                    p.key
                );
                if let Some(d) = p.death {
                    assert!(d > p.birth && d <= as_of);
                }
                if let Some(s) = p.spouse {
                    let married = p.married_on.expect("spouses have a marriage date");
                    assert_eq!(hh.members[s].married_on, Some(married));
                    assert!(
                        married >= add_years(p.birth, 18),
                        "{} married as a child",
                        p.key
                    );
                    assert_ne!(hh.members[s].sex, p.sex);
                    assert_eq!(
                        hh.members[s].spouse.map(|x| &hh.members[x].key),
                        Some(&p.key)
                    );
                }
                if let Some(e) = p.employer {
                    assert!(e < w.entities);
                    assert!(p.age_on(as_of) >= 18);
                }
                if hh.floating {
                    assert_eq!(p.id.county_code(), p.hukou_county.code.as_str());
                }
            }
        }
    }

    fn built_after(w: &World, hh: &Household) -> NaiveDate {
        NaiveDate::from_ymd_opt(w.street.compound(&hh.room).built_year + 1, 1, 1).unwrap()
    }

    #[test]
    fn entities_are_founded_by_adults_and_employ_after_founding() {
        let w = world(20_000);
        let entities: Vec<Entity> = (0..w.entities)
            .map(|e| {
                let hh = w.household(w.rep_household(e));
                let ent = w.entity(e, &hh.members[0]);
                let rep = &hh.members[0];
                assert!(
                    ent.founded >= add_years(rep.birth, 18),
                    "{} founded by a child",
                    ent.key
                );
                assert!(
                    rep.death.is_none_or(|d| ent.founded <= d),
                    "{} founded by the dead",
                    ent.key
                );
                ent
            })
            .collect();
        let mut employees = 0;
        for h in 0..w.households {
            let mut hh = w.household(h);
            w.settle(&mut hh, &entities);
            for p in &hh.members {
                if let (Some(e), Some(since)) = (p.employer, p.insured_since) {
                    employees += 1;
                    assert!(since >= entities[e as usize].founded.with_day(1).unwrap());
                    assert!(entities[e as usize].revoked_on.is_none_or(|r| since < r));
                }
            }
        }
        assert!(employees as u64 > w.config.people / 3, "{employees}");
    }

    #[test]
    fn every_entity_has_exactly_one_representative_household() {
        let w = world(30_000);
        let mut seen = std::collections::HashSet::new();
        for e in 0..w.entities {
            let h = w.rep_household(e);
            assert!(h < w.households);
            assert_eq!(w.entity_represented_by(h), Some(e));
            assert!(seen.insert(h));
        }
        let represented = (0..w.households)
            .filter(|&h| w.entity_represented_by(h).is_some())
            .count();
        assert_eq!(represented as u64, w.entities);
    }

    #[test]
    fn entities_have_valid_distinct_codes_and_names() {
        let w = world(40_000);
        let mut codes = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for e in 0..w.entities {
            let hh = w.household(w.rep_household(e));
            let ent = w.entity(e, &hh.members[0]);
            assert!(
                CreditCode::parse(ent.code.as_str()).is_ok(),
                "{}",
                ent.code.as_str()
            );
            assert!(
                codes.insert(ent.code.as_str().to_string()),
                "code of E{e} repeats"
            );
            assert!(names.insert(ent.name.clone()), "name {} repeats", ent.name);
        }
    }

    #[test]
    fn bad_configs_are_refused_with_the_flag_named() {
        let err = World::new(SynthConfig {
            people: 0,
            ..SynthConfig::default()
        })
        .err()
        .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("--people")));
        let err = World::new(SynthConfig {
            floating_share: 1.5,
            ..SynthConfig::default()
        })
        .err()
        .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("--floating-share")));
    }
}
