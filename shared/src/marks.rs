//! fedsync's marks on every secret it writes: who manages it, which source secret
//! it copies, and which source version it holds. They make writes idempotent (skip
//! what is already there), safe (never touch what fedsync does not manage), and
//! ordered: a destination never goes back from a newer source version to an
//! older one. Numbered versions (Vault, Google) order themselves; a store whose
//! latest version is always its newest but whose ids do not order (Azure Key
//! Vault) carries the version's creation time in the version mark, as
//! `<version>@<unix milliseconds>`. AWS versions carry no order: moving
//! AWSCURRENT back to an earlier version is a rollback, a newer change.

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
    /// When the source created that version (Unix milliseconds), for stores whose
    /// version ids do not order themselves.
    pub source_time: Option<u64>,
    /// The keyed hash of the value written (see [`crate::value_hash`]), when
    /// fedsync has a value key; never part of comparing versions.
    pub value_hash: Option<String>,
}

/// How two source versions of one secret compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    Older,
    Same,
    Newer,
    /// Nothing says (different kinds of version, or no time known).
    Unknown,
}

impl Marks {
    /// The value of the version mark: the version, with its creation time when known.
    pub fn version_mark(&self) -> String {
        match self.source_time {
            Some(t) => format!("{}@{t}", self.source_version),
            None => self.source_version.clone(),
        }
    }

    /// Marks read back from a store: `version_mark` as [`Marks::version_mark`] wrote it.
    pub fn read(source_ref: String, version_mark: &str) -> Self {
        let timed = version_mark
            .rsplit_once('@')
            .and_then(|(v, t)| Some((v, t.parse::<u64>().ok()?)))
            .filter(|(v, _)| !v.is_empty());
        let (source_version, source_time) = match timed {
            Some((v, t)) => (v.to_string(), Some(t)),
            None => (version_mark.to_string(), None),
        };
        Marks {
            source_ref,
            source_version,
            source_time,
            value_hash: None,
        }
    }

    /// Whether these marks name the same source version as `other`.
    pub fn same_version(&self, other: &Marks) -> bool {
        self.source_ref == other.source_ref && self.source_version == other.source_version
    }

    /// How the source version these marks hold compares with `other`'s.
    pub fn age(&self, other: &Marks) -> Age {
        if self.source_ref != other.source_ref {
            return Age::Unknown;
        }
        if self.same_version(other) {
            return Age::Same;
        }
        let numbers = (
            self.source_version.parse::<u64>(),
            other.source_version.parse::<u64>(),
        );
        let (a, b) = match (numbers, self.source_time, other.source_time) {
            ((Ok(a), Ok(b)), _, _) => (a, b),
            (_, Some(a), Some(b)) => (a, b),
            _ => return Age::Unknown,
        };
        match a.cmp(&b) {
            std::cmp::Ordering::Less => Age::Older,
            std::cmp::Ordering::Greater => Age::Newer,
            std::cmp::Ordering::Equal => Age::Unknown,
        }
    }

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

    fn marks(version: &str, time: Option<u64>) -> Marks {
        Marks {
            source_ref: "main:prod/db".into(),
            source_version: version.into(),
            source_time: time,
            value_hash: None,
        }
    }

    #[test]
    fn version_marks_carry_the_time_and_read_back() {
        let timed = marks("a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d", Some(1763851512123));
        assert_eq!(
            timed.version_mark(),
            "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d@1763851512123"
        );
        assert_eq!(
            Marks::read(timed.source_ref.clone(), &timed.version_mark()),
            timed
        );
        let numbered = marks("7", None);
        assert_eq!(Marks::read(numbered.source_ref.clone(), "7"), numbered);
        // A version that merely contains `@` is kept whole.
        assert_eq!(Marks::read("r".into(), "v@x").source_version, "v@x");
        assert_eq!(Marks::read("r".into(), "@5").source_version, "@5");
    }

    #[test]
    fn numbers_and_times_order_versions() {
        assert_eq!(marks("9", None).age(&marks("10", None)), Age::Older);
        assert_eq!(marks("10", None).age(&marks("9", None)), Age::Newer);
        assert_eq!(marks("10", None).age(&marks("10", Some(1))), Age::Same);
        assert_eq!(marks("b", Some(2)).age(&marks("a", Some(1))), Age::Newer);
        assert_eq!(marks("b", None).age(&marks("a", Some(1))), Age::Unknown);
        assert_eq!(marks("b", Some(1)).age(&marks("a", Some(1))), Age::Unknown);
    }

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
