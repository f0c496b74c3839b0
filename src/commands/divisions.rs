//! `tongban divisions`: look up administrative divisions.

use clap::Parser;
use std::process::ExitCode;
use tongban_standards::division;

#[derive(Parser, Debug)]
#[command(
    after_help = "Examples:\n  tongban divisions 320576052\n  tongban divisions 园区\n  tongban divisions 唯亭 --children"
)]
pub struct Args {
    /// A code (2, 4, 6, 9 or 12 digits), a name or an abbreviation.
    pub query: String,
    /// Also list the children of each match.
    #[arg(long)]
    pub children: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let q = args.query.trim();
    let found: Vec<_> = if q.bytes().all(|b| b.is_ascii_digit()) {
        division::by_code(q).into_iter().collect()
    } else {
        division::by_name(q)
    };
    if found.is_empty() {
        eprintln!(
            "no division matches {q:?} (the shipped table has the whole country to county level, Jiangsu's streets and Suzhou's communities)"
        );
        return Ok(ExitCode::from(1));
    }
    for d in found {
        let path: Vec<_> = division::ancestors(&d.code)
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        println!(
            "{}  {}  ({}, short {})  {}",
            d.code,
            d.name,
            d.level.zh(),
            d.short,
            path.join(" › ")
        );
        if args.children {
            for c in division::children(&d.code) {
                println!("    {}  {}", c.code, c.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
