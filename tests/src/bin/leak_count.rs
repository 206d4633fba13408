//! The whole-suite leak count: every secret value the end-to-end tests registered
//! (`fedsync_tests::leaks::secret`) is searched for in the output of every fedsync process
//! the suite ran (the function binaries, the receivers, the CLI: the `fedsync.*` files of
//! the suite log directory), verbatim, JSON-escaped, and base64-encoded (the standard and
//! URL-safe alphabets, each at the three byte alignments, so that a value inside a larger
//! encoded blob is found too). Values shorter than 8 bytes are never registered: they
//! would match ordinary log text, so the tests' values are long and distinctive.
//!
//! The logs of the servers fedsync talks to (the `server.*` files: moto, OpenBao) are
//! counted but not searched: they see values by design (they store them; moto prints
//! request bodies in its tracebacks, OpenBao's audit device HMACs them).
//!
//! It prints the number of values checked, the log files and bytes searched, and the
//! count of occurrences; it exits non-zero when the count is not zero, or when there was
//! nothing to check (no registered value, or no fedsync log): a leak check that checked
//! nothing fails. A leak is named by file, form, and the value's index and SHA-256
//! prefix, never by the value itself. `leak_count --clear` empties the suite log
//! directory, so that a new run does not count a stale one.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::process::ExitCode;

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use fedsync_tests::leaks::{self, FEDSYNC_LOG_PREFIX, MIN_VALUE_BYTES};
use sha2::{Digest, Sha256};

/// One form of one value searched for.
struct Form {
    value: usize,
    kind: &'static str,
    bytes: Vec<u8>,
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--clear") {
        return clear();
    }
    match count() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("leak count: {e}");
            ExitCode::FAILURE
        }
    }
}

fn clear() -> ExitCode {
    let dir = leaks::dir();
    match fs::remove_dir_all(&dir) {
        Ok(()) => println!("leak count: cleared {}", dir.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            eprintln!("leak count: cannot clear {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Searches every fedsync log for every form of every value; `Ok(true)` when none is found
/// and something was checked.
fn count() -> Result<bool, String> {
    let values = registered()?;
    let forms: Vec<Form> = values
        .iter()
        .enumerate()
        .flat_map(|(index, value)| forms(index, value))
        .collect();
    let searcher = AhoCorasick::new(forms.iter().map(|f| &f.bytes))
        .map_err(|e| format!("cannot build the search: {e}"))?;

    let logs = leaks::logs_dir();
    let mut entries: Vec<_> = fs::read_dir(&logs)
        .map_err(|e| format!("no suite logs at {}: {e}", logs.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    let (mut files, mut bytes, mut skipped_files, mut skipped_bytes) = (0, 0u64, 0, 0u64);
    let mut found: BTreeMap<(String, usize, &'static str), usize> = BTreeMap::new();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if !name.starts_with(FEDSYNC_LOG_PREFIX) {
            skipped_files += 1;
            skipped_bytes += text.len() as u64;
            continue;
        }
        files += 1;
        bytes += text.len() as u64;
        for hit in searcher.find_overlapping_iter(&text) {
            let form = &forms[hit.pattern().as_usize()];
            *found
                .entry((name.clone(), form.value, form.kind))
                .or_default() += 1;
        }
    }

    let leaks: usize = found.values().sum();
    for ((file, value, kind), times) in &found {
        println!(
            "LEAK: value #{value} (sha256 {}) {kind} in {file}: {times} time(s)",
            fingerprint(&values[*value])
        );
    }
    println!(
        "leak count: {} secret values checked ({} forms: verbatim, JSON-escaped, base64)",
        values.len(),
        forms.len()
    );
    println!("leak count: {files} fedsync log files searched, {bytes} bytes");
    println!(
        "leak count: {skipped_files} server log files not searched ({skipped_bytes} bytes; moto and OpenBao see values by design)"
    );
    println!("leak count: {leaks} occurrences of a secret value in fedsync's logs");
    if values.is_empty() || files == 0 {
        println!("leak count: FAILED: nothing was checked (run the end-to-end tests first)");
        return Ok(false);
    }
    Ok(leaks == 0)
}

/// The registered values, each once, in registration order.
fn registered() -> Result<Vec<Vec<u8>>, String> {
    let path = leaks::values_file();
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut values: Vec<Vec<u8>> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let value = STANDARD
            .decode(line.trim())
            .map_err(|e| format!("{} line {}: {e}", path.display(), number + 1))?;
        if value.len() >= MIN_VALUE_BYTES && !values.contains(&value) {
            values.push(value);
        }
    }
    Ok(values)
}

/// The forms of `value` searched for, each once.
fn forms(index: usize, value: &[u8]) -> Vec<Form> {
    let mut forms: Vec<Form> = Vec::new();
    let mut add = |kind, bytes: Vec<u8>| {
        if !forms.iter().any(|f| f.bytes == bytes) {
            forms.push(Form {
                value: index,
                kind,
                bytes,
            });
        }
    };
    add("verbatim", value.to_vec());
    if let Ok(text) = std::str::from_utf8(value) {
        let quoted = serde_json::to_string(text).expect("a string serializes");
        add(
            "JSON-escaped",
            quoted.as_bytes()[1..quoted.len() - 1].to_vec(),
        );
    }
    for (kind, engine) in [("base64", STANDARD_NO_PAD), ("base64url", URL_SAFE_NO_PAD)] {
        for offset in 0..3 {
            add(kind, base64_fragment(&engine, value, offset));
        }
    }
    forms
}

/// The characters of the base64 encoding of `value`, preceded by `offset` other bytes,
/// that depend on `value`'s bytes only: what any encoding holding `value` at that
/// alignment contains.
fn base64_fragment(engine: &GeneralPurpose, value: &[u8], offset: usize) -> Vec<u8> {
    let mut input = vec![0u8; offset];
    input.extend_from_slice(value);
    let encoded = engine.encode(&input);
    // Character `j` holds bits 6j..6j+6 of the input.
    let first = (8 * offset).div_ceil(6);
    let end = 8 * (offset + value.len()) / 6;
    encoded.as_bytes()[first..end].to_vec()
}

/// The first 8 hex digits of the value's SHA-256: names it without showing it.
fn fingerprint(value: &[u8]) -> String {
    Sha256::digest(value)[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_found_inside_a_larger_base64_blob_at_every_alignment() {
        let value = b"s3cr3t-Value-that-must-never-be-logged";
        let forms = forms(0, value);
        for prefix in ["", "a", "ab", "abc", "abcd"] {
            let mut blob = prefix.as_bytes().to_vec();
            blob.extend_from_slice(value);
            blob.extend_from_slice(b"-and-more");
            for engine in [STANDARD, URL_SAFE_NO_PAD] {
                let encoded = engine.encode(&blob);
                assert!(
                    forms.iter().any(|f| f.kind.starts_with("base64")
                        && encoded
                            .as_bytes()
                            .windows(f.bytes.len())
                            .any(|w| w == f.bytes)),
                    "prefix {prefix:?}"
                );
            }
        }
    }

    #[test]
    fn a_json_value_is_found_escaped() {
        let value = br#"{"password":"pw-never-logged"}"#;
        let logged = serde_json::json!({"message": std::str::from_utf8(value).unwrap()});
        let line = logged.to_string();
        let forms = forms(0, value);
        let escaped = forms.iter().find(|f| f.kind == "JSON-escaped").unwrap();
        assert!(
            line.as_bytes()
                .windows(escaped.bytes.len())
                .any(|w| w == escaped.bytes)
        );
    }
}
