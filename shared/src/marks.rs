//! fedsync's marks on every secret it writes: who manages it, which source secret
//! it copies, and which source version it holds. They make writes idempotent (skip
//! what is already there), and safe (never touch what fedsync does not manage).

/// Every mark's key starts with this; user tags may not.
pub const PREFIX: &str = "fedsync";
/// The longest source reference kept as it is.
const MAX_REF_LEN: usize = 256;

/// The value of the managed-by mark.
pub const MANAGER: &str = "fedsync";

/// The marks as fedsync reads and writes them, independent of any store's tag format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marks {
    /// The source secret this copies, as `<source>:<secret>` (plus `#<key>` for granularity key).
    pub source_ref: String,
    /// The source version this destination holds.
    pub source_version: String,
}

impl Marks {
    /// The reference to one source secret (or one key of it). Stores cap tag
    /// values at 256 characters, so a longer reference is kept as its digest.
    pub fn source_ref(source: &str, secret: &str, key: Option<&str>) -> String {
        let full = match key {
            Some(k) => format!("{source}:{secret}#{k}"),
            None => format!("{source}:{secret}"),
        };
        if full.len() <= MAX_REF_LEN {
            return full;
        }
        use sha2::Digest;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(full.as_bytes()))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_references_fit_a_tag_value() {
        assert_eq!(
            Marks::source_ref("main", "prod/db", Some("user")),
            "main:prod/db#user"
        );
        let long = Marks::source_ref("main", &"a".repeat(400), None);
        assert_eq!((long.len(), long.starts_with("sha256:")), (71, true));
        assert_eq!(
            long,
            Marks::source_ref("main", &"a".repeat(400), None),
            "stable"
        );
    }
}
