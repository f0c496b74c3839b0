//! `tongban check`: validate, clean and explain one value, as a clerk or data engineer would ask.

use clap::{Parser, ValueEnum};
use std::process::ExitCode;
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
        Kind::Id => match citizen_id::parse_detailed(v) {
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
                true
            }
            Err(e) => {
                println!("invalid citizen id: {e}");
                let d = citizen_id::diagnose(v);
                for p in &d.problems {
                    println!("  problem: {p}");
                }
                if !d.candidates.is_empty() {
                    let c: Vec<&str> = d.candidates.iter().map(|c| c.as_str()).collect();
                    println!("  likely meant one of: {}", c.join(" "));
                }
                false
            }
        },
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
                println!("{:?} {}", p.kind, p.canonical);
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
                println!("{}", serde_json::to_string_pretty(&a)?);
                println!("standard form: {}", address::format_address(&a));
                println!(
                    "building key:  {}",
                    address::building_key(&a).unwrap_or_else(|| "(not enough parts)".into())
                );
                println!(
                    "room key:      {}",
                    address::room_key(&a).unwrap_or_else(|| "(not enough parts)".into())
                );
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
                    println!("  note: {note:?}");
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
