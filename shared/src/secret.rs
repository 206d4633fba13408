//! A secret value in memory: bytes that never print and never log. fedsync's own
//! copy is wiped on drop; copies handed to a cloud SDK for sending are the SDK's.

use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use std::fmt;

/// A secret's value, text or binary. `Debug` prints only the kind and length.
pub enum SecretValue {
    Text(SecretBox<str>),
    Binary(SecretBox<[u8]>),
}

impl SecretValue {
    pub fn text(s: impl Into<String>) -> Self {
        SecretValue::Text(SecretBox::new(s.into().into_boxed_str()))
    }

    pub fn binary(b: Vec<u8>) -> Self {
        SecretValue::Binary(SecretBox::new(b.into_boxed_slice()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let v = SecretValue::text("hunter2-very-secret");
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("19 bytes"));
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            SecretValue::text("abc").fingerprint(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
