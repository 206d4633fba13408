//! Secret Manager's naming and metadata rules (reference D.3, `resources.proto` and
//! `service.proto` comments): resource IDs, labels, annotations and replica locations.
//!
//! Label keys and values are specified by PCRE Unicode classes (`\p{Ll}`, `\p{Lo}`,
//! `\p{N}`). For ASCII they are matched exactly (lowercase letters, then also digits, `_`
//! and `-`; no uppercase, no `.`, no `/`). Outside ASCII the standard library has no
//! general categories, so a "lowercase or other letter" is approximated as an alphabetic
//! character that is neither uppercase nor numeric.

use std::collections::BTreeMap;

use super::super::status::GoogleError;

/// At most this many labels per secret.
pub const MAX_LABELS: usize = 64;
/// Annotation keys and values together must be smaller than this (bytes).
pub const MAX_ANNOTATIONS_BYTES: usize = 16 * 1024;
/// A payload may be at most this large (bytes).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// A project ID (`[a-z][a-z0-9-]{4,28}[a-z0-9]`) or number.
pub(crate) fn is_project(project: &str) -> bool {
    if !project.is_empty() && project.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let bytes = project.as_bytes();
    (6..=30).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

/// A secret ID: `[A-Za-z0-9_-]{1,255}` (`CreateSecretRequest.secret_id`).
pub(crate) fn is_secret_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A version: a number from 1 without leading zeros, `latest`, or an alias
/// (`[A-Za-z][A-Za-z0-9_-]{0,62}`).
pub(crate) fn is_version_id(version: &str) -> bool {
    let bytes = version.as_bytes();
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        return bytes[0] != b'0'
            && bytes.iter().all(u8::is_ascii_digit)
            && version.parse::<u64>().is_ok();
    }
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// `[\p{Ll}\p{Lo}]`, see the module comment.
fn is_label_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_lowercase()
    } else {
        c.is_alphabetic() && !c.is_uppercase() && !c.is_numeric()
    }
}

/// `[\p{Ll}\p{Lo}\p{N}_-]`.
fn is_label_char(c: char) -> bool {
    is_label_letter(c) || c.is_numeric() || c == '_' || c == '-'
}

/// Labels: at most 64; keys `[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}`, values
/// `[\p{Ll}\p{Lo}\p{N}_-]{0,63}`, each at most 128 bytes of UTF-8.
pub(crate) fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), GoogleError> {
    if labels.len() > MAX_LABELS {
        return Err(GoogleError::invalid_argument(format!(
            "A secret can have at most {MAX_LABELS} labels; {} were given.",
            labels.len()
        )));
    }
    for (key, value) in labels {
        let mut chars = key.chars();
        let key_ok = chars.next().is_some_and(is_label_letter)
            && chars.all(is_label_char)
            && key.chars().count() <= 63
            && key.len() <= 128;
        if !key_ok {
            return Err(GoogleError::invalid_argument(format!(
                "Invalid label key [{key}]: label keys must be 1 to 63 characters long (at most \
                 128 bytes) and match [\\p{{Ll}}\\p{{Lo}}][\\p{{Ll}}\\p{{Lo}}\\p{{N}}_-]{{0,62}}."
            )));
        }
        let value_ok =
            value.chars().all(is_label_char) && value.chars().count() <= 63 && value.len() <= 128;
        if !value_ok {
            return Err(GoogleError::invalid_argument(format!(
                "Invalid value for label [{key}]: label values must be at most 63 characters \
                 long (at most 128 bytes) and match [\\p{{Ll}}\\p{{Lo}}\\p{{N}}_-]{{0,63}}."
            )));
        }
    }
    Ok(())
}

/// Annotations: keys 1–63 characters (at most 128 bytes), beginning and ending with
/// `[a-zA-Z0-9]`, with `-`, `_`, `.` and alphanumerics between; keys and values together
/// smaller than 16 KiB.
pub(crate) fn check_annotations(annotations: &BTreeMap<String, String>) -> Result<(), GoogleError> {
    for key in annotations.keys() {
        let bytes = key.as_bytes();
        let ok = (1..=63).contains(&bytes.len())
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(GoogleError::invalid_argument(format!(
                "Invalid annotation key [{key}]: annotation keys must be 1 to 63 characters \
                 long, begin and end with an alphanumeric character ([a-z0-9A-Z]), and may have \
                 dashes (-), underscores (_), dots (.), and alphanumerics in between."
            )));
        }
    }
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total >= MAX_ANNOTATIONS_BYTES {
        return Err(GoogleError::invalid_argument(format!(
            "The total size of annotation keys and values must be less than 16KiB; it is \
             {total} bytes."
        )));
    }
    Ok(())
}

/// A region such as `us-east1` or `northamerica-northeast1`.
pub(crate) fn is_location(location: &str) -> bool {
    let Some((area, rest)) = location.split_once('-') else {
        return false;
    };
    let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    !area.is_empty()
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && !letters.is_empty()
        && letters.len() < rest.len()
        && letters.bytes().all(|b| b.is_ascii_lowercase())
}

/// `projects/*/locations/{location}/keyRings/*/cryptoKeys/*`: the key's location.
pub(crate) fn kms_key_location(name: &str) -> Option<&str> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [
            "projects",
            project,
            "locations",
            location,
            "keyRings",
            ring,
            "cryptoKeys",
            key,
        ] if [project, location, ring, key].iter().all(|s| !s.is_empty()) => Some(location),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_rules() {
        assert!(check_labels(&labels(&[("owner", "sync"), ("a-b_c1", ""), ("é", "ü-9")])).is_ok());
        for bad in [
            ("Owner", "x"),
            ("1owner", "x"),
            ("_x", "x"),
            ("", "x"),
            ("a.b", "x"),
            ("a/b", "x"),
            ("owner", "Sync"),
            ("owner", "a.b"),
            ("owner", "a/b"),
        ] {
            assert!(check_labels(&labels(&[bad])).is_err(), "{bad:?}");
        }
        let long = "a".repeat(64);
        assert!(check_labels(&labels(&[(&long, "x")])).is_err());
        assert!(check_labels(&labels(&[("a", &long)])).is_err());
        assert!(check_labels(&labels(&[(&long[..63], &long[..63])])).is_ok());
        let many: BTreeMap<String, String> =
            (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_labels(&many).is_err());
    }

    #[test]
    fn annotation_rules() {
        assert!(
            check_annotations(&labels(&[
                ("fedsync.source", "aws:arn:x/y"),
                ("A_b-C.9", "")
            ]))
            .is_ok()
        );
        for bad in ["sync.example.com/source", "-a", "a-", ".a", "", "a b"] {
            assert!(
                check_annotations(&labels(&[(bad, "v")])).is_err(),
                "{bad:?}"
            );
        }
        let big = "v".repeat(MAX_ANNOTATIONS_BYTES - 1);
        assert!(check_annotations(&labels(&[("k", &big)])).is_err());
        assert!(check_annotations(&labels(&[("k", &big[1..])])).is_ok());
    }

    #[test]
    fn ids_and_locations() {
        assert!(is_secret_id("app-db_PASSWORD9"));
        assert!(!is_secret_id("a.b") && !is_secret_id("") && !is_secret_id(&"a".repeat(256)));
        assert!(is_version_id("1") && is_version_id("latest") && is_version_id("prod-alias"));
        assert!(!is_version_id("0") && !is_version_id("01") && !is_version_id("-1"));
        assert!(is_project("my-proj") && is_project("123456789012") && !is_project("My-Proj"));
        assert!(is_location("us-east1") && is_location("northamerica-northeast1"));
        assert!(!is_location("us") && !is_location("us-east") && !is_location("global"));
        assert_eq!(
            kms_key_location("projects/p/locations/us-east1/keyRings/r/cryptoKeys/k"),
            Some("us-east1")
        );
    }
}
