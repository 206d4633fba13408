//! A secret value in memory: bytes that never print and never log. fedsync's own
//! copy is wiped on drop; copies handed to a cloud SDK or the HTTP client for
//! sending are theirs. Error texts are scrubbed of a value (and of its
//! encodings) before they become failures, since some services echo input.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// What a value is replaced with wherever it would be shown.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not scrubbed from texts: they cannot be told
/// apart from ordinary words and numbers (`"1"`, `"app"`).
const MIN_SCRUBBED: usize = 4;
/// Any run of this many bytes of a value (or of its encoding) is scrubbed, so
/// that a service echoing part of a value, or an error body cut short, leaks none of it.
const SCRUB_WINDOW: usize = 12;

/// A secret's value, text or binary. `Debug` prints only the kind and length,
/// `Display` only a placeholder; the bytes are wiped when the value is dropped.
pub enum SecretValue {
    Text(SecretBox<str>),
    Binary(SecretBox<[u8]>),
}

impl SecretValue {
    pub fn text(s: impl Into<String>) -> Self {
        let mut s: String = s.into();
        // `into_boxed_str` would reallocate a string with spare capacity and
        // leave the old bytes behind: copy to an exact box and wipe the original.
        let boxed: Box<str> = s.as_str().into();
        s.zeroize();
        SecretValue::Text(SecretBox::new(boxed))
    }

    pub fn binary(mut b: Vec<u8>) -> Self {
        let boxed: Box<[u8]> = b.as_slice().into();
        b.zeroize();
        SecretValue::Binary(SecretBox::new(boxed))
    }

    /// The value's bytes (UTF-8 for text). Callers must not log them.
    pub fn expose_bytes(&self) -> &[u8] {
        match self {
            SecretValue::Text(s) => s.expose_secret().as_bytes(),
            SecretValue::Binary(b) => b.expose_secret(),
        }
    }

    /// The value as text, when it is text. Callers must not log it.
    pub fn expose_text(&self) -> Option<&str> {
        match self {
            SecretValue::Text(s) => Some(s.expose_secret()),
            SecretValue::Binary(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        self.expose_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A SHA-256 fingerprint (hex) that identifies the value without revealing it.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.expose_bytes()))
    }

    /// The forms the value travels in: as it is, JSON-escaped, and base64.
    fn wire_forms(&self) -> Vec<Zeroizing<Vec<u8>>> {
        let raw = self.expose_bytes();
        let mut forms = vec![Zeroizing::new(raw.to_vec())];
        if let Some(text) = self.expose_text() {
            let quoted = Zeroizing::new(serde_json::to_string(text).unwrap_or_default());
            let escaped = quoted.trim_matches('"').as_bytes();
            if escaped != raw {
                forms.push(Zeroizing::new(escaped.to_vec()));
            }
        }
        forms.push(Zeroizing::new(BASE64.encode(raw).into_bytes()));
        forms
    }

    /// `text` with every occurrence of this value (as it is, JSON-escaped or
    /// base64) replaced by [`REDACTED`], and every run of 12 bytes or more that
    /// also occurs in one of those forms (a partial or cut-off echo).
    pub fn scrub(&self, text: &str) -> String {
        if self.len() < MIN_SCRUBBED {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let mut hidden = vec![false; bytes.len()];
        let mut hide = |at: usize, len: usize| hidden[at..at + len].fill(true);
        for form in self.wire_forms() {
            if form.len() < SCRUB_WINDOW {
                let mut at = 0;
                while let Some(i) = find(&bytes[at..], &form) {
                    hide(at + i, form.len());
                    at += i + 1;
                }
            } else if bytes.len() >= SCRUB_WINDOW {
                let windows: HashSet<&[u8]> = form.windows(SCRUB_WINDOW).collect();
                for (i, w) in bytes.windows(SCRUB_WINDOW).enumerate() {
                    if windows.contains(w) {
                        hide(i, SCRUB_WINDOW);
                    }
                }
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            // A character any of whose bytes is hidden is hidden whole.
            if hidden[i..i + c.len_utf8()].contains(&true) {
                out.push_str(REDACTED);
                while chars
                    .next_if(|(j, d)| hidden[*j..*j + d.len_utf8()].contains(&true))
                    .is_some()
                {}
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// `failure` without `credential` (a token fedsync presented) in its message,
/// whole or in part: a token endpoint that echoes its request would otherwise
/// put the token into an error, and from there into a log.
pub fn scrub_credential(
    credential: &str,
    mut failure: crate::report::Failure,
) -> crate::report::Failure {
    failure.message = SecretValue::text(credential).scrub(&failure.message);
    failure
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A JSON request body that carries a value (or a parsed document that held
/// one): every string in it is wiped when it is dropped.
pub struct SecretBody(pub serde_json::Value);

impl std::ops::Deref for SecretBody {
    type Target = serde_json::Value;

    fn deref(&self) -> &serde_json::Value {
        &self.0
    }
}

impl Drop for SecretBody {
    fn drop(&mut self) {
        wipe_json(&mut self.0);
    }
}

impl fmt::Debug for SecretBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBody(redacted)")
    }
}

/// Wipes every string in a JSON document.
fn wipe_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe_json),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(wipe_json),
        _ => {}
    }
}

impl Clone for SecretValue {
    fn clone(&self) -> Self {
        match self {
            SecretValue::Text(s) => SecretValue::text(s.expose_secret()),
            SecretValue::Binary(b) => SecretValue::binary(b.expose_secret().to_vec()),
        }
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            SecretValue::Text(_) => "text",
            SecretValue::Binary(_) => "binary",
        };
        write!(f, "SecretValue({kind}, {} bytes, redacted)", self.len())
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "hunter2-very-secret";

    #[test]
    fn debug_and_display_never_show_the_value() {
        for v in [SecretValue::text(VALUE), SecretValue::binary(VALUE.into())] {
            for shown in [format!("{v:?}"), format!("{v:#?}"), v.to_string()] {
                assert!(!shown.contains("hunter2"), "{shown}");
            }
            assert!(format!("{v:?}").contains("19 bytes"));
        }
        assert_eq!(SecretValue::text(VALUE).to_string(), REDACTED);
    }

    #[test]
    fn structs_holding_a_value_print_none_of_it() {
        let read = crate::stores::SourceSecret {
            name: "prod/db".into(),
            version: "v1".into(),
            created: None,
            value: SecretValue::text(VALUE),
        };
        let shown = format!("{read:?} {read:#?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("prod/db"),
            "{shown}"
        );
    }

    #[test]
    fn values_survive_construction_and_clones_intact() {
        let mut spare = String::with_capacity(64);
        spare.push_str(VALUE);
        let v = SecretValue::text(spare);
        assert_eq!(v.expose_text(), Some(VALUE));
        assert_eq!(v.clone().expose_bytes(), VALUE.as_bytes());
        let b = SecretValue::binary(vec![0, 159, 146, 150]);
        assert_eq!(b.clone().expose_bytes(), [0, 159, 146, 150]);
        assert_eq!(b.expose_text(), None);
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            SecretValue::text("abc").fingerprint(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scrub_removes_the_value_in_every_form_it_travels_in() {
        let v = SecretValue::text("p@ss\"word\n-0123456789");
        let echoed = format!(
            "Value '{}' is invalid; body {{\"value\":{}}}; payload {}",
            "p@ss\"word\n-0123456789",
            serde_json::to_string("p@ss\"word\n-0123456789").unwrap(),
            BASE64.encode("p@ss\"word\n-0123456789"),
        );
        let scrubbed = v.scrub(&echoed);
        assert!(!scrubbed.contains("p@ss"), "{scrubbed}");
        assert!(!scrubbed.contains("0123456789"), "{scrubbed}");
        assert!(!scrubbed.contains(&BASE64.encode("p@ss\"word\n-0123456789")[..12]));
        assert!(
            scrubbed.starts_with("Value '[redacted]' is invalid"),
            "{scrubbed}"
        );
    }

    #[test]
    fn scrub_removes_partial_and_cut_off_echoes() {
        let v = SecretValue::text("correct-horse-battery-staple");
        assert_eq!(
            v.scrub("value 'correct-horse-batt...' too long"),
            "value '[redacted]...' too long"
        );
        assert_eq!(
            v.scrub("body: {\"value\":\"correct-horse-bat"),
            "body: {\"value\":\"[redacted]"
        );
        // Shorter runs are ordinary text.
        assert_eq!(v.scrub("correct-hors"), "[redacted]");
        assert_eq!(v.scrub("correct-hor and staple"), "correct-hor and staple");
    }

    #[test]
    fn scrub_leaves_texts_alone_for_tiny_values_and_handles_non_ascii() {
        assert_eq!(SecretValue::text("1").scrub("HTTP 401"), "HTTP 401");
        let v = SecretValue::text("clé-secrète");
        assert_eq!(v.scrub("got «clé-secrète»"), "got «[redacted]»");
        let b = SecretValue::binary(vec![0xff, 0x00, 0x10, 0x80, 0x7f]);
        let b64 = BASE64.encode([0xff, 0x00, 0x10, 0x80, 0x7f]);
        assert_eq!(
            b.scrub(&format!("data {b64} rejected")),
            "data [redacted] rejected"
        );
    }

    #[test]
    fn wiping_a_body_blanks_every_string_in_it() {
        let mut body =
            serde_json::json!({"value": VALUE, "tags": {"a": VALUE}, "n": 3, "l": [VALUE]});
        wipe_json(&mut body);
        assert!(!body.to_string().contains("hunter2"), "{body}");
        let held = SecretBody(serde_json::json!({"value": VALUE}));
        assert_eq!(held["value"], VALUE);
        assert!(!format!("{held:?}").contains("hunter2"));
    }
}
