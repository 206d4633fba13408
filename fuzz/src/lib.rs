//! What the fuzz targets share: a configuration naming a source of every kind
//! the triggers route to, the check that an error message quotes no more of its
//! input than a short excerpt, and the check that two parses of one input agree.

use fedsync::config::{Config, SourceConfig};
use fedsync::event::SecretChange;
use std::sync::OnceLock;

/// The longest run of input bytes an error message may hold. Messages quote at
/// most `fedsync::excerpt::MAX_BYTES` of escaped text of a name, between quotes
/// and next to their own words; anything longer is an echo of the input.
pub const LONGEST_QUOTE: usize = 48;

/// The variable holding the notice signing key of [`config`].
pub const HMAC_ENV: &str = "FEDSYNC_FUZZ_HMAC";
/// The notice signing key [`config`] refers to.
pub const HMAC_KEY: &str = "fuzzing-key-0123456789abcdef-0123456789abcdef";

/// One source of every kind, a notice receiver with an HMAC key and an issuer
/// on a closed loopback port (so that no token path ever leaves the machine).
const CONFIG: &str = r#"
[identities.fuzz]
kind = "file"
path = "/run/fedsync/token"

[sources.aws]
kind = "aws-secrets-manager"
region = "us-east-1"

[sources.aws-home]
kind = "aws-secrets-manager"

[sources.gsm]
kind = "gcp-secret-manager"
project = "my-project"
project_number = "123456789012"

[sources.kv]
kind = "azure-key-vault"
vault_url = "https://prod-kv.vault.azure.net"
tenant_id = "tenant"
client_id = "client"
identity = "fuzz"

[sources.vault]
kind = "vault-kv"
address = "https://vault.example.com"

[sources.team]
kind = "vault-kv"
address = "https://vault.example.com"
namespace = "team"

[sources.apps]
kind = "vault-kv"
address = "https://vault.example.com"
mount = "kv/apps"

[triggers.notify]
hmac_secret = "env:FEDSYNC_FUZZ_HMAC"

[[triggers.notify.issuers]]
issuer = "http://127.0.0.1:9"
audience = "fedsync"
subjects = ["fuzz"]
"#;

/// The configuration every trigger target parses against.
pub fn config() -> &'static Config {
    static CONFIG_ONCE: OnceLock<Config> = OnceLock::new();
    CONFIG_ONCE.get_or_init(|| {
        // SAFETY: set once, before any other thread of the target exists.
        unsafe { std::env::set_var(HMAC_ENV, HMAC_KEY) };
        Config::parse(CONFIG, "fuzz.toml").expect("the fuzzing configuration is valid")
    })
}

/// Whether `name` is a configured source of the kind `kind` matches.
pub fn is_source(name: &str, kind: fn(&SourceConfig) -> bool) -> bool {
    config().sources.get(name).is_some_and(kind)
}

/// Everything of an input an error message must not repeat: the raw bytes,
/// and when the input is JSON, each of its keys and string values, decoded and
/// as Rust's debug formatting escapes them.
pub struct Input {
    texts: Vec<Vec<u8>>,
}

impl Input {
    pub fn new(raw: &[u8]) -> Self {
        let mut texts = vec![raw.to_vec()];
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(raw) {
            collect_strings(&value, &mut texts);
        }
        Input { texts }
    }

    /// Adds the strings of a TOML text, decoded and escaped.
    pub fn with_toml(mut self, text: &str) -> Self {
        if let Ok(table) = toml::from_str::<toml::Table>(text)
            && let Ok(value) = serde_json::to_value(table)
        {
            collect_strings(&value, &mut self.texts);
        }
        self
    }

    /// Adds another part of the input (a header, a query parameter).
    pub fn with(mut self, text: &str) -> Self {
        self.texts.push(text.as_bytes().to_vec());
        self
    }

    /// Panics when `message` holds a run of more than [`LONGEST_QUOTE`] bytes
    /// of the input.
    pub fn assert_not_echoed(&self, message: &str) {
        let texts = self.texts.iter().map(Vec::as_slice);
        if let Some(run) = shared_run(message.as_bytes(), texts, LONGEST_QUOTE + 1) {
            panic!(
                "the message echoes its input: {:?} in {message:?}",
                String::from_utf8_lossy(run)
            );
        }
    }
}

/// A run of `len` bytes of `message` that is also in one of `texts`.
///
/// Windows are compared by a rolling hash first: comparing the bytes of every
/// window would show the fuzzer the message's own words (its comparisons feed
/// its dictionary), and it would soon write them into an input.
pub fn shared_run<'m, 't>(
    message: &'m [u8],
    texts: impl Iterator<Item = &'t [u8]>,
    len: usize,
) -> Option<&'m [u8]> {
    if len == 0 || message.len() < len {
        return None;
    }
    let mut wanted: Vec<(u64, usize)> = rolling_hashes(message, len).collect();
    wanted.sort_unstable();
    for text in texts.filter(|t| t.len() >= len) {
        for (hash, at) in rolling_hashes(text, len) {
            let first = wanted.partition_point(|(h, _)| *h < hash);
            for &(_, start) in wanted[first..].iter().take_while(|(h, _)| *h == hash) {
                if message[start..start + len] == text[at..at + len] {
                    return Some(&message[start..start + len]);
                }
            }
        }
    }
    None
}

/// The hash of every `len`-byte window of `bytes`, with where it starts.
fn rolling_hashes(bytes: &[u8], len: usize) -> impl Iterator<Item = (u64, usize)> + '_ {
    const BASE: u64 = 0x100_0000_01b3;
    let top = (1..len).fold(1u64, |p, _| p.wrapping_mul(BASE));
    let first = bytes[..len].iter().fold(0u64, |h, &b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b))
    });
    let rest = (len..bytes.len()).scan(first, move |h, i| {
        let out = bytes[i - len];
        *h = h
            .wrapping_sub(u64::from(out).wrapping_mul(top))
            .wrapping_mul(BASE)
            .wrapping_add(u64::from(bytes[i]));
        Some((*h, i + 1 - len))
    });
    std::iter::once((first, 0)).chain(rest)
}

fn collect_strings(value: &serde_json::Value, texts: &mut Vec<Vec<u8>>) {
    match value {
        serde_json::Value::String(s) => add_string(s, texts),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, texts)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                add_string(k, texts);
                collect_strings(v, texts);
            }
        }
        _ => {}
    }
}

fn add_string(s: &str, texts: &mut Vec<Vec<u8>>) {
    if s.len() > LONGEST_QUOTE {
        texts.push(s.as_bytes().to_vec());
        texts.push(format!("{s:?}").trim_matches('"').as_bytes().to_vec());
    }
}

/// Panics unless two parses of one input came out the same. Compared by a hash
/// of their text, for the reason [`shared_run`] gives.
pub fn assert_same(first: &str, again: &str) {
    let hash = |s: &str| {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(s, &mut h);
        std::hash::Hasher::finish(&h)
    };
    assert!(
        hash(first) == hash(again),
        "two parses of one input differ: {first:?} and {again:?}"
    );
}

/// An outcome of a trigger's parse as text that does not depend on the moment
/// it was parsed (a change observed "now" is observed at a new moment each time).
pub fn outcome<E: std::fmt::Debug>(parsed: &Result<Option<SecretChange>, E>) -> String {
    match parsed {
        Ok(change) => format!("{:?}", change.as_ref().map(comparable)),
        Err(e) => format!("{e:?}"),
    }
}

/// A change without the moment it was observed (which is "now" for events
/// that carry no time), for comparing two parses of one input.
pub fn comparable(change: &SecretChange) -> String {
    format!(
        "{} {:?} {:?} {:?}",
        change.source, change.secret, change.version, change.kind
    )
}

/// Splits `HEAD\n\nBODY` (request-like inputs: headers or a query parameter,
/// then the body); an input without a blank line is all body.
pub fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (&[], data),
    }
}
