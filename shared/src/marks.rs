//! fedsync's marks on every secret it writes: who manages it, which source secret
//! it copies, and which source version it holds. They make writes idempotent (skip
//! what is already there), and safe (never touch what fedsync does not manage).

/// Every mark's key starts with this; user tags may not.
pub const PREFIX: &str = "fedsync";
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
    /// The reference to one source secret (or one key of it).
    pub fn source_ref(source: &str, secret: &str, key: Option<&str>) -> String {
        match key {
            Some(k) => format!("{source}:{secret}#{k}"),
            None => format!("{source}:{secret}"),
        }
    }
}
