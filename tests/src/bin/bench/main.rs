//! fedsync's benchmark suite (BENCHMARKS.md): start-up, peak memory and size of
//! every function binary; fan-out latency against the network floor, warm and
//! cold; exchange economy; CPU per destination write and receiver throughput; and
//! scaling with the number of destinations. It runs the release binaries against
//! the in-process emulators (moto for the relay's queue), prints each table as it
//! is measured, and with `--write FILE` writes them all into FILE's results
//! section. `--only NAME,...` runs some sections: startup, fanout, economy, load.
//!
//!     tests/bench            # builds, runs everything, updates BENCHMARKS.md

mod cpu;
mod economy;
mod fanout;
mod load;
mod machine;
mod report;
mod startup;
mod world;

use std::path::PathBuf;
use std::time::Duration;

use report::Table;

/// What every cloud API adds to each answer in the latency sections.
const DELAY: Duration = Duration::from_millis(20);

const SECTIONS: &[&str] = &["startup", "fanout", "economy", "load"];

struct Args {
    write: Option<PathBuf>,
    only: Vec<String>,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        write: None,
        only: SECTIONS.iter().map(|s| s.to_string()).collect(),
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--write" => {
                args.write = Some(given.next().ok_or("--write needs a file")?.into());
            }
            "--only" => {
                let names = given.next().ok_or("--only needs section names")?;
                args.only = names.split(',').map(str::to_string).collect();
                if let Some(bad) = args.only.iter().find(|n| !SECTIONS.contains(&n.as_str())) {
                    return Err(format!(
                        "unknown section {bad:?}; the sections are {}",
                        SECTIONS.join(", ")
                    ));
                }
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: bench [--write FILE] [--only {}]",
                    SECTIONS.join(",")
                ));
            }
        }
    }
    if args.write.is_some() && args.only.len() != SECTIONS.len() {
        return Err("--write records every section: leave out --only".into());
    }
    if args.write.is_some() && cfg!(debug_assertions) {
        return Err("--write records release figures: run the release build".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let machine = machine::describe();
    println!("{machine}\n");
    let mut tables: Vec<Table> = Vec::new();
    let show = |table: Table, tables: &mut Vec<Table>| {
        println!("{}", table.markdown());
        tables.push(table);
    };
    let runs = |name: &str| args.only.iter().any(|n| n == name);
    if runs("startup") {
        show(startup::run().await, &mut tables);
    }
    if runs("fanout") {
        let (latency, scaling) = fanout::run(DELAY).await;
        show(latency, &mut tables);
        show(scaling, &mut tables);
    }
    if runs("economy") {
        show(economy::run(DELAY).await, &mut tables);
    }
    if runs("load") {
        show(load::run().await, &mut tables);
    }
    if let Some(path) = &args.write {
        let mut results = format!("Machine: {machine}\n\n");
        for table in &tables {
            results += &table.markdown();
            results += "\n";
        }
        if let Err(e) = report::write_results(path, &results) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    let missed: usize = tables.iter().map(Table::missed).sum();
    if missed > 0 {
        eprintln!("{missed} target(s) missed");
        std::process::exit(1);
    }
}
