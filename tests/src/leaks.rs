//! The records of the whole-suite leak check. Every child process the harness runs
//! appends its output, as it is captured, to a file of its own under the suite log
//! directory (`<target>/fedsync-suite-logs/logs`), named after its [`Role`]; and every
//! secret value an end-to-end test puts into a source goes through [`secret`] (or
//! [`secret_json`]), which registers it in `values` beside the logs. The `leak_count`
//! binary then searches fedsync's own logs for every registered value.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// The shortest value the registry takes: shorter ones would match ordinary log text.
pub const MIN_VALUE_BYTES: usize = 8;
/// The prefix of the log files of fedsync's own processes, the only ones searched.
pub const FEDSYNC_LOG_PREFIX: &str = "fedsync.";

/// Who a captured process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// fedsync's own code (the function binaries, the CLI): no secret value may appear
    /// in its output.
    Fedsync,
    /// A server fedsync talks to (moto, OpenBao), which legitimately sees values.
    Server,
}

impl Role {
    fn prefix(self) -> &'static str {
        match self {
            Role::Fedsync => FEDSYNC_LOG_PREFIX,
            Role::Server => "server.",
        }
    }
}

/// `<target>/fedsync-suite-logs`, where `<target>` is the target directory the running
/// executable was built into (a test in `<target>/PROFILE/deps`, a binary in
/// `<target>/PROFILE`), so tests and `leak_count` agree on it wherever the target is.
pub fn dir() -> PathBuf {
    crate::process::profile_dir()
        .parent()
        .expect("a profile directory lives in a target directory")
        .join("fedsync-suite-logs")
}

/// Where the captured processes' output files are.
pub fn logs_dir() -> PathBuf {
    dir().join("logs")
}

/// The registry of secret values: one per line, base64 of its bytes.
pub fn values_file() -> PathBuf {
    dir().join("values")
}

/// A new, empty output file for a process of `role` running `program`, named
/// `{role}.{program}.{test binary}.{test}.{pid}-{n}.log`.
pub(crate) fn log_file(role: Role, program: &str) -> io::Result<File> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let logs = logs_dir();
    fs::create_dir_all(&logs)?;
    let exe = std::env::current_exe()?;
    let test_binary = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.rsplit_once('-').map_or(s, |(name, _hash)| name))
        .unwrap_or("unknown")
        .to_string();
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string();
    let name = format!(
        "{}{}.{}.{}.{}-{}.log",
        role.prefix(),
        file_part(program),
        file_part(&test_binary),
        file_part(&test),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(name))
}

/// `s` with every character but ASCII letters, digits, `-` and `_` made `_`.
fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Registers `value` as a secret value of the suite and returns it, for use where a
/// test makes the value it puts into a source. A JSON object or array (a Vault KV
/// entry, a JSON-keyed AWS secret) also registers each of its string leaves at least
/// [`MIN_VALUE_BYTES`] long: fedsync may copy them one by one (a shorter leaf, such as
/// the `"app"` of a user name, is not searched for: it would match ordinary log text).
///
/// # Panics
/// If `value` is shorter than [`MIN_VALUE_BYTES`] (make test values long and
/// distinctive), or the registry cannot be written.
pub fn secret(value: impl Into<String>) -> String {
    let value = value.into();
    register(value.as_bytes());
    if let Ok(json @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str(&value) {
        let mut leaves = vec![&json];
        while let Some(v) = leaves.pop() {
            match v {
                Value::String(s) if s.len() >= MIN_VALUE_BYTES => register(s.as_bytes()),
                Value::Array(items) => leaves.extend(items),
                Value::Object(fields) => leaves.extend(fields.values()),
                _ => {}
            }
        }
    }
    value
}

/// Registers a JSON secret, as fedsync reads it (its compact text), and returns it.
///
/// # Panics
/// As [`secret`].
pub fn secret_json(value: Value) -> Value {
    secret(value.to_string());
    value
}

/// Registers a binary secret value and returns it.
///
/// # Panics
/// As [`secret`].
pub fn secret_bytes(value: impl Into<Vec<u8>>) -> Vec<u8> {
    let value = value.into();
    register(&value);
    value
}

fn register(value: &[u8]) {
    static REGISTERED: Mutex<Option<HashSet<Vec<u8>>>> = Mutex::new(None);
    assert!(
        value.len() >= MIN_VALUE_BYTES,
        "a registered secret value must be at least {MIN_VALUE_BYTES} bytes long, to be told apart from ordinary log text"
    );
    let mut registered = REGISTERED.lock().unwrap_or_else(|p| p.into_inner());
    if !registered.get_or_insert_default().insert(value.to_vec()) {
        return;
    }
    append(
        &values_file(),
        format!("{}\n", STANDARD.encode(value)).as_bytes(),
    )
    .unwrap_or_else(|e| panic!("cannot register a secret value: {e}"));
}

/// Appends `line` in one write (other test processes append to the same file).
fn append(path: &Path, line: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line)
}
