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
    pub death: Option<NaiveDate>,
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
    /// The county of household registration (320576 for residents, home county for floating).
    pub hukou_county: &'static Division,
    /// The registered address, in this street for residents and back home for floating people.
    pub hukou_address: String,
    /// When the household registered here or moved in.
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

    /// Household `h`, generated from nothing but the seed and `h`.
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
        let hukou_county: &'static Division = if floating {
            let w: Vec<f64> = self.origins.iter().map(|o| o.0).collect();
            let counties = &self.origins[r.weighted(&w)].1;
            counties[r.below(counties.len() as u64) as usize]
        } else {
            self.street.county
        };
        let y = |year: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d).unwrap_or(as_of);
        let mut members: Vec<Person> = Vec::new();
        let mut marriage = None;
        let family_surname = self.surname(&mut r);
        let add = |members: &mut Vec<Person>,
                   r: &mut Rng,
                   role: Role,
                   sex: Sex,
                   birth: NaiveDate,
                   surname: &str| {
            let m = members.len();
            members.push(Person {
                key: format!("P{h}-{m}"),
                // Placeholder until the id is issued below, once the birth county is known.
                id: citizen_id::new_from_parts("320576", birth, 1)
                    .unwrap_or_else(|_| fallback_id()),
                name: format!("{surname}{}", Self::given_name(r, sex)),
                sex,
                birth,
                nation: if r.chance(0.03) {
                    tongban_standards::ethnicity::all()[1 + r.below(55) as usize]
                } else {
                    "汉族"
                },
                phone: None,
                role,
                father: None,
                mother: None,
                spouse: None,
                death: None,
                employer: None,
                insured_since: None,
            });
            m
        };
        let other = |s: Sex| {
            if s == Sex::Male {
                Sex::Female
            } else {
                Sex::Male
            }
        };
        let (elders, couple, children, cotenants) = if floating {
            match kind {
                0 => (0, false, 0, 1),
                1 => (0, true, 0, 0),
                2 => (0, true, 1, 0),
                _ => (0, false, 0, 3),
            }
        } else {
            match kind {
                0 => (1, false, 0, 0),
                1 => (2, false, 0, 0),
                2 => (0, true, 0, 0),
                3 => (0, true, 1, 0),
                4 => (0, true, 2, 0),
                _ => (2, true, 1, 0),
            }
        };
        if cotenants > 0 {
            for i in 0..cotenants {
                let sex = if r.chance(0.6) {
                    Sex::Male
                } else {
                    Sex::Female
                };
                let birth = Self::birth_between(&mut r, y(1970, 1, 1), y(2006, 1, 1));
                let surname = self.surname(&mut r);
                add(
                    &mut members,
                    &mut r,
                    if i == 0 { Role::Head } else { Role::CoTenant },
                    sex,
                    birth,
                    surname,
                );
            }
        }
        let mut parent_idx = (None, None);
        if couple {
            let head_sex = if r.chance(0.85) {
                Sex::Male
            } else {
                Sex::Female
            };
            let lo = if elders > 0 {
                y(1965, 1, 1)
            } else {
                y(1970, 1, 1)
            };
            let b1 = Self::birth_between(&mut r, lo, y(2002, 1, 1));
            let b2 = (b1 + Duration::days(r.range(-1500, 1500))).min(y(2003, 1, 1));
            let head = add(
                &mut members,
                &mut r,
                Role::Head,
                head_sex,
                b1,
                family_surname,
            );
            let spouse_surname = self.surname(&mut r);
            let spouse = add(
                &mut members,
                &mut r,
                Role::Spouse,
                other(head_sex),
                b2,
                spouse_surname,
            );
            members[head].spouse = Some(spouse);
            members[spouse].spouse = Some(head);
            let older = b1.max(b2);
            let earliest = y(older.year() + 22, older.month(), older.day().min(28));
            let m = Self::birth_between(
                &mut r,
                earliest,
                (earliest + Duration::days(3650)).min(as_of),
            );
            marriage = Some(m);
            parent_idx = if head_sex == Sex::Male {
                (Some(head), Some(spouse))
            } else {
                (Some(spouse), Some(head))
            };
        }
        if elders > 0 {
            // Elders are the head's parents in a three-generation household, else the household.
            // The head's parents were 22 to 35 when the head was born; both stay at least 18
            // years older than the head.
            let (lo, hi) = match members.first() {
                Some(head) if couple => (
                    head.birth - Duration::days(35 * 365),
                    head.birth - Duration::days(22 * 365),
                ),
                _ => (y(1932, 1, 1), y(1962, 1, 1)),
            };
            let b1 = Self::birth_between(&mut r, lo, hi);
            let role = if couple { Role::Parent } else { Role::Head };
            // A single elder is more often a widow than a widower.
            let first_sex = if elders == 1 && r.chance(0.6) {
                Sex::Female
            } else {
                Sex::Male
            };
            let first = add(&mut members, &mut r, role, first_sex, b1, family_surname);
            if elders > 1 {
                let b2 = (b1 + Duration::days(r.range(-1200, 1500))).min(hi);
                let surname = self.surname(&mut r);
                let role2 = if couple { Role::Parent } else { Role::Spouse };
                let second = add(&mut members, &mut r, role2, Sex::Female, b2, surname);
                members[first].spouse = Some(second);
                members[second].spouse = Some(first);
                if !couple {
                    let e = b1.max(b2);
                    marriage = Some(Self::birth_between(
                        &mut r,
                        y(e.year() + 21, 1, 1),
                        y(e.year() + 27, 12, 31),
                    ));
                }
                if couple {
                    // The elders are the head's parents (the head is always member 0).
                    members[0].father = Some(first);
                    members[0].mother = Some(second);
                }
            }
        }
        if let (Some(f), Some(mo)) = parent_idx {
            let mother_birth = members[mo].birth;
            for _ in 0..children {
                let sex = if r.chance(0.52) {
                    Sex::Male
                } else {
                    Sex::Female
                };
                let lo = y(mother_birth.year() + 21, 1, 1).max(marriage.unwrap_or(lo_date()));
                let hi = y(mother_birth.year() + 40, 12, 31).min(as_of);
                if hi <= lo {
                    continue;
                }
                let birth = Self::birth_between(&mut r, lo, hi);
                let surname = names::split_surname(&members[f].name).0.to_string();
                let c = add(&mut members, &mut r, Role::Child, sex, birth, &surname);
                members[c].father = Some(f);
                members[c].mother = Some(mo);
            }
        }
        // Identity numbers, phones, deaths and jobs, now that everyone is known.
        let since = if floating {
            Self::birth_between(&mut r, y(2012, 1, 1), as_of)
        } else {
            Self::birth_between(&mut r, y(1995, 1, 1), y(2020, 12, 31))
        };
        for (m, p) in members.iter_mut().enumerate() {
            let county = if floating {
                hukou_county.code.as_str()
            } else if p.birth.year() < 2001 && !(p.role == Role::Spouse && r.chance(0.3)) {
                // Residents born before 2001 were first registered under 吴县 (320524), a county
                // abolished in 2001 that no current division table lists: their ids keep it.
                ["320524", "320524", "320524", "320583", "320506"][r.below(5) as usize]
            } else if p.role == Role::Spouse {
                ["320581", "320582", "320585", "320684", "320282"][r.below(5) as usize]
            } else {
                "320576"
            };
            // Sequence numbers come from the household index so that two people born on the same
            // day in the same county practically never collide; the writer still checks.
            let base = (mix_seq(h, m as u64) % 500) as u16 * 2;
            let seq = base + if p.sex == Sex::Male { 1 } else { 0 };
            if let Ok(id) = citizen_id::new_from_parts(county, p.birth, seq.min(999)) {
                p.id = id;
            }
            let age = p.id.age_on(as_of);
            if age >= 16 && r.chance(0.97) {
                p.phone = Some(Self::mobile(&mut r));
            }
            if age >= 70 && r.chance(0.08) {
                p.death = Some(Self::birth_between(&mut r, y(2018, 1, 1), as_of));
            }
            let retire = if p.sex == Sex::Male { 60 } else { 55 };
            if (18..retire).contains(&age)
                && p.death.is_none()
                && r.chance(if floating { 0.85 } else { 0.72 })
            {
                // Employer sizes are skewed: u² puts more employees at low indices.
                let u = r.unit();
                let e = ((u * u) * self.entities as f64) as u64;
                p.employer = Some(e.min(self.entities - 1));
                let start = y(p.birth.year() + 18, p.birth.month(), 1).max(y(2005, 1, 1));
                let d = Self::birth_between(&mut r, start, as_of);
                p.insured_since = y(d.year(), d.month(), 1).into();
            }
        }
        let hukou_address = if floating {
            let mut rr = r.fork(7);
            let city = hukou_county.parent.as_deref().and_then(division::by_code);
            let prov = city
                .and_then(|c| c.parent.as_deref())
                .and_then(division::by_code);
            format!(
                "{}{}{}{}村{}组{}号",
                prov.map(|d| d.name.as_str()).unwrap_or(""),
                city.filter(|c| c.name != "市辖区" && c.name != "县")
                    .map(|d| d.name.as_str())
                    .unwrap_or(""),
                hukou_county.name,
                [
                    "王庄", "李集", "张湾", "新河", "杨桥", "孙圩", "东岗", "后营"
                ][rr.below(8) as usize],
                1 + rr.below(12),
                1 + rr.below(80)
            )
        } else {
            self.street.room_address(&room)
        };
        Household {
            index: h,
            floating,
            community: community.index,
            room,
            actual_room,
            hukou_county,
            hukou_address,
            since,
            members,
            marriage,
        }
    }
}

/// Mixes a household index and member position into a sequence-number seed.
fn mix_seq(h: u64, m: u64) -> u64 {
    crate::rng::mix(h.wrapping_mul(8).wrapping_add(m) ^ 0x5eed)
}

fn lo_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default()
}

/// An id that is valid by construction, used only if issuing a real one failed (which the date
/// ranges above rule out); keeping a value avoids an `Option` on every person.
fn fallback_id() -> CitizenId {
    // Invariant: the published example 11010519491231002X is valid.
    CitizenId::parse("11010519491231002X")
        .unwrap_or_else(|_| unreachable!("published example id is valid"))
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
    /// 企业 or 个体工商户.
    pub kind: &'static str,
    pub industry: &'static str,
    pub founded: NaiveDate,
    pub capital_wan: u32,
    pub address: String,
}

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
    /// Entity `e`, a pure function of the seed and `e` (its representative is found through
    /// [`World::rep_household`]).
    pub fn entity(&self, e: u64) -> Entity {
        let mut r = Rng::for_item(self.config.seed, Stream::Entity, e);
        let sole_trader = r.chance(0.35);
        let (_section, industry, word) = INDUSTRIES[r.below(INDUSTRIES.len() as u64) as usize];
        let founded = World::birth_between(
            &mut r,
            NaiveDate::from_ymd_opt(1996, 1, 1).unwrap_or_default(),
            self.config.as_of,
        );
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
        let division = if r.chance(0.9) { "320576" } else { "320594" };
        let code =
            credit_code::new_from_parts('9', if sole_trader { '2' } else { '1' }, division, &body)
                .unwrap_or_else(|_| fallback_code());
        let brand = brand_name(e);
        let name = if sole_trader {
            let shop = ["便利店", "小吃店", "五金店", "理发店", "水果店"][r.below(5) as usize];
            format!("苏州工业园区唯亭{brand}{shop}")
        } else {
            format!("苏州{brand}{word}有限公司")
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
            capital_wan: if sole_trader {
                0
            } else {
                [10, 50, 100, 200, 500, 1000, 5000][r.below(7) as usize]
            },
            address: format!(
                "{}{}{}{}{}{}号",
                self.street.province.name,
                self.street.city.name,
                self.street.county.name,
                self.street.name,
                c.road,
                c.road_number + 600 + r.below(200) as u32
            ),
        }
    }
}

fn fallback_code() -> CreditCode {
    // Invariant: the published example 91350200776049653A is valid.
    CreditCode::parse("91350200776049653A")
        .unwrap_or_else(|_| unreachable!("published example code is valid"))
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
                if let Some(s) = p.spouse {
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
                    assert_eq!(p.id.county_code(), hh.hukou_county.code.as_str());
                }
            }
        }
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
            let ent = w.entity(e);
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
