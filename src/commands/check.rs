//! `tongban check`: validate, clean and explain one value, as a clerk or data engineer would ask.

use clap::{Parser, ValueEnum};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};
use tongban_standards::{address, citizen_id, credit_code, date, names, phone};

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban check id 11010519491231002X\n  tongban check id 110105194912310021      (a bad check character: lists likely corrections)\n  tongban check credit-code 91350200776049653A\n  tongban check phone '+86 138 1234 5678'\n  tongban check date 2020年1月2日\n  tongban check address '园区唯亭青剑湖花园12-3-1001'\n  tongban check name '單曉明'"
)]
pub struct Args {
    /// What kind of value.
    pub kind: Kind,
    /// The value (quote it if it has spaces).
    pub value: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    /// Citizen id (GB 11643): 18 or 15 characters.
    Id,
    /// Unified social credit code (GB 32100).
    CreditCode,
    /// Mobile or landline number.
    Phone,
    /// A date in any form departments use.
    Date,
    /// A Chinese address down to the room.
    Address,
    /// A person's name: cleaned form and surname-aware pinyin.
    Name,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let v = args.value.as_str();
    let ok = match args.kind {
        Kind::Id => check_id(v),
        Kind::CreditCode => match credit_code::parse_detailed(v) {
            Ok(p) => {
                let c = &p.code;
                println!("valid credit code {}", c.as_str());
                println!(
                    "  authority {} ({}), type {}, division {}, organisation code {}",
                    c.authority().code(),
                    c.authority().zh(),
                    c.entity_type(),
                    c.division_code(),
                    c.org_code()
                );
                for n in &p.notes {
                    println!("  note: {n}");
                }
                true
            }
            Err(e) => {
                println!("invalid credit code: {e}");
                false
            }
        },
        Kind::Phone => match phone::parse_phone(v, None) {
            Ok(p) => {
                println!("valid {} number {}", p.kind, p.canonical);
                if let Some(x) = &p.extension {
                    println!("  extension {x}");
                }
                true
            }
            Err(e) => {
                println!("invalid phone number: {e}");
                false
            }
        },
        Kind::Date => match date::parse_date(v) {
            Ok(d) => {
                println!("{d}");
                true
            }
            Err(e) => {
                println!("invalid date: {e}");
                false
            }
        },
        Kind::Address => match address::parse_address(v) {
            Ok(a) => {
                for (level, d) in a.divisions() {
                    if let Some(d) = d {
                        println!("{level:<14} {} ({})", d.name, d.code);
                    }
                }
                for (part, value) in a.parts() {
                    if let Some(value) = value {
                        println!("{:<14} {value}", part.replace('_', " "));
                    }
                }
                if !a.rest.is_empty() {
                    println!("{:<14} {}", "not placed", a.rest);
                }
                println!("standard form  {}", address::format_address(&a));
                println!(
                    "building key   {}",
                    address::building_key(&a).unwrap_or_else(|| "(not enough parts)".into())
                );
                println!(
                    "room key       {}",
                    address::room_key(&a).unwrap_or_else(|| "(not enough parts)".into())
                );
                for n in &a.notes {
                    println!("note: {n}");
                }
                true
            }
            Err(e) => {
                println!("unreadable address: {e}");
                false
            }
        },
        Kind::Name => match names::clean_name(v) {
            Ok(n) => {
                let (surname, given) = names::split_surname(&n.name);
                println!("{}  (surname {surname}, given name {given})", n.name);
                println!("  pinyin {}", names::name_pinyin(&n.name));
                for note in &n.notes {
                    println!("  note: {note}");
                }
                true
            }
            Err(e) => {
                println!("invalid name: {e}");
                false
            }
        },
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check_id(v: &str) -> bool {
    // The library reads no clock, so it cannot refuse a birth date in the future by itself; the
    // terminal has one. Today is taken in China (UTC+8), since the ids checked here are Chinese.
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .and_then(|secs| date::date_at_unix(secs, date::CHINA_UTC_OFFSET_SECS));
    let parsed = match today {
        Some(today) => citizen_id::parse_detailed_as_of(v, today),
        None => citizen_id::parse_detailed(v),
    };
    let diagnosis = citizen_id::diagnose(v);
    match parsed {
        Ok(p) => {
            println!("valid citizen id {}", p.id);
            println!(
                "  county code {} (of first issue), born {}, {}",
                p.id.county_code(),
                p.id.birth_date(),
                p.id.sex().zh()
            );
            for n in &p.notes {
                println!("  note: {n}");
            }
            // The form notes are printed above; what else the diagnosis has (a county code
            // missing from the division table) does not make the id invalid.
            for problem in &diagnosis.problems {
                if !matches!(problem, citizen_id::Problem::Form(_)) {
                    println!("  note: {problem}");
                }
            }
            true
        }
        Err(e) => {
            println!("invalid citizen id: {e}");
            // The diagnosis repeats the parse error as its first problem; it is printed above.
            for problem in &diagnosis.problems {
                if !matches!(problem, citizen_id::Problem::Invalid(x) if *x == e) {
                    println!("  problem: {problem}");
                }
            }
            if !diagnosis.candidates.is_empty() {
                let c: Vec<&str> = diagnosis.candidates.iter().map(|c| c.as_str()).collect();
                println!("  likely meant one of: {}", c.join(" "));
            }
            false
        }
    }
}
