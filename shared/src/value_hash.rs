//! The keyed hash of each value fedsync writes, kept in the destination's marks
//! so that a reconcile pass can tell whether a destination still holds exactly
//! what fedsync wrote without keeping or logging the value. The key
//! (`[drift] key`) stays with fedsync: without it the mark reveals nothing about
//! the value, and since the source reference is hashed too, not even whether two
//! destination secrets hold the same value.

use crate::reference::Reference;
use crate::secret::SecretValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The shortest key accepted (the HMAC-SHA256 block-size guidance: at least the
/// output length).
pub const MIN_KEY_BYTES: usize = 32;
/// How much of the MAC a mark keeps: 128 bits, beyond guessing, and short
/// enough for every store's tag limits.
const MAC_BYTES: usize = 16;

/// The key of the value marks.
pub struct ValueKey {
    key: Zeroizing<Vec<u8>>,
    /// Names the key in every mark it made, so a rotated key is told apart
    /// from a changed value.
    id: String,
}

/// What comparing a destination's value with its mark found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The value is the one the mark was made from.
    Matches,
    /// The value is another one.
    Differs,
    /// The mark was made with another key (or is not a mark): nothing can be said.
    OtherKey,
}

impl ValueKey {
    /// Reads the key from `env:NAME` or `file:PATH` (surrounding whitespace trimmed).
    pub fn load(reference: &str) -> Result<ValueKey, String> {
        let text = Reference::parse(reference)
            .and_then(|r| match r {
                Reference::Env(_) | Reference::File(_) => r.read(),
                Reference::Kms(_) => Err("must be \"env:NAME\" or \"file:PATH\"".into()),
            })
            .map(Zeroizing::new)?;
        ValueKey::new(text.trim().as_bytes())
    }

    pub fn new(key: &[u8]) -> Result<ValueKey, String> {
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the key must be at least {MIN_KEY_BYTES} bytes; it has {}",
                key.len()
            ));
        }
        let digest = Sha256::new()
            .chain_update(b"fedsync value key id\0")
            .chain_update(key)
            .finalize();
        Ok(ValueKey {
            key: Zeroizing::new(key.to_vec()),
            id: hex::encode(&digest[..4]),
        })
    }

    fn mac(&self, source_ref: &str, value: &SecretValue) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(source_ref.as_bytes());
        mac.update(&[0]);
        mac.update(value.expose_bytes());
        mac
    }

    /// The mark of `value` written as a copy of `source_ref`: `<key id>:<MAC>`.
    pub fn mark(&self, source_ref: &str, value: &SecretValue) -> String {
        let tag = self.mac(source_ref, value).finalize().into_bytes();
        format!("{}:{}", self.id, URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES]))
    }

    /// Compares `value` with `mark` in constant time.
    pub fn check(&self, mark: &str, source_ref: &str, value: &SecretValue) -> Check {
        let Some((id, tag)) = mark.split_once(':') else {
            return Check::OtherKey;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return Check::OtherKey;
        };
        if id != self.id || tag.len() != MAC_BYTES {
            return Check::OtherKey;
        }
        match self.mac(source_ref, value).verify_truncated_left(&tag) {
            Ok(()) => Check::Matches,
            Err(_) => Check::Differs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> ValueKey {
        ValueKey::new(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_mark_matches_its_value_only() {
        let k = key(1);
        let value = SecretValue::text("hunter2-but-longer");
        let mark = k.mark("main:prod/db", &value);
        assert_eq!(k.check(&mark, "main:prod/db", &value), Check::Matches);
        assert_eq!(
            k.check(
                &mark,
                "main:prod/db",
                &SecretValue::text("hunter3-but-longer")
            ),
            Check::Differs
        );
        assert_eq!(
            k.check(&mark, "main:prod/other", &value),
            Check::Differs,
            "the source reference is part of the mark"
        );
    }

    #[test]
    fn a_mark_never_carries_the_value_and_fits_every_store() {
        let value = SecretValue::text("correct horse battery staple");
        let mark = key(1).mark("main:prod/db", &value);
        assert!(!mark.contains("horse"));
        assert!(mark.len() <= 63, "{mark}");
        assert!(
            mark.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:".contains(c)),
            "{mark}"
        );
    }

    #[test]
    fn another_key_is_recognised_not_mistaken_for_drift() {
        let value = SecretValue::text("same value");
        let mark = key(1).mark("r", &value);
        assert_eq!(key(2).check(&mark, "r", &value), Check::OtherKey);
        assert_eq!(key(1).check("garbage", "r", &value), Check::OtherKey);
        assert_eq!(key(1).check("abcd:!!", "r", &value), Check::OtherKey);
    }

    #[test]
    fn short_keys_are_refused_with_the_reason() {
        let e = ValueKey::new(b"short").err().unwrap();
        assert!(e.contains("at least 32 bytes"), "{e}");
        let e = ValueKey::load("kms:arn:aws:kms:eu-west-1:1:key/x")
            .err()
            .unwrap();
        assert!(e.contains("env:NAME"), "{e}");
    }
}
