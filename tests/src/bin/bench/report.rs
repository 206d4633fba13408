//! The benchmark's tables: printed as they are measured, and written together into
//! the results section of BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Where the generated results begin and end in BENCHMARKS.md; the text around
/// them (how to run, what was found) is kept as written.
const BEGIN: &str = "<!-- results: written by the benchmark; edit the text around them -->";
const END: &str = "<!-- end of results -->";

const MISSED: &str = "**missed**";

/// One table of figures, with what it measured and the notes that explain it.
pub struct Table {
    pub title: String,
    pub what: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: &str, what: &str, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            what: what.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: vec![],
            notes: vec![],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// How many of the table's verdicts missed their target.
    pub fn missed(&self) -> usize {
        self.rows
            .iter()
            .flatten()
            .filter(|cell| *cell == MISSED)
            .count()
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n{}\n\n", self.title, self.what);
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out += &line(&self.header);
        out += &line(&vec!["---".to_string(); self.header.len()]);
        for row in &self.rows {
            out += &line(row);
        }
        for note in &self.notes {
            let _ = write!(out, "\n{note}\n");
        }
        out
    }
}

/// Replaces the results section of the Markdown file at `path` with `results`
/// (appending the section if the file has none yet).
pub fn write_results(path: &Path, results: &str) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let section = format!("{BEGIN}\n\n{results}\n{END}");
    let updated = match (text.find(BEGIN), text.find(END)) {
        (Some(begin), Some(end)) if begin < end => {
            format!("{}{section}{}", &text[..begin], &text[end + END.len()..])
        }
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    std::fs::write(path, updated)
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Microseconds, whole.
pub fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Mebibytes with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1024.0 / 1024.0)
}

/// The `q` quantile (0 to 1) of sorted samples.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

/// "met", or "missed" in bold, against a target.
pub fn verdict(met: bool) -> String {
    if met { "met" } else { MISSED }.to_string()
}
