//! References to sensitive material in the configuration (`env:NAME`, `file:PATH`):
//! the configuration names where a value lives, never the value itself.

use std::fmt;

/// Where a sensitive value (a key, a token path) is found at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file.
    File(String),
    /// A key held by AWS KMS (its ARN); only signing keys take this form.
    Kms(String),
}

impl Reference {
    /// Parses `env:NAME`, `file:PATH` or `kms:ARN`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s.split_once(':').ok_or_else(|| {
            "expected a reference such as \"env:NAME\" or \"file:PATH\"".to_string()
        })?;
        if rest.is_empty() {
            return Err(format!(
                "the reference {s:?} names nothing after \"{scheme}:\""
            ));
        }
        match scheme {
            "env" => Ok(Reference::Env(rest.to_string())),
            "file" => Ok(Reference::File(rest.to_string())),
            "kms" => Ok(Reference::Kms(rest.to_string())),
            _ => Err(format!(
                "unknown reference kind \"{scheme}:\"; expected \"env:NAME\" or \"file:PATH\""
            )),
        }
    }

    /// Reads the referenced value now (files are re-read on every call).
    pub fn read(&self) -> Result<String, String> {
        match self {
            Reference::Env(name) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set (or not UTF-8)")),
            Reference::File(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("cannot read file {path}: {e}"))
            }
            Reference::Kms(arn) => Err(format!("{arn} is a KMS key; its material cannot be read")),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Env(n) => write!(f, "env:{n}"),
            Reference::File(p) => write!(f, "file:{p}"),
            Reference::Kms(a) => write!(f, "kms:{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms_and_rejects_others() {
        assert_eq!(
            Reference::parse("env:KEY").unwrap(),
            Reference::Env("KEY".into())
        );
        assert_eq!(
            Reference::parse("file:/run/k.pem").unwrap(),
            Reference::File("/run/k.pem".into())
        );
        assert!(matches!(
            Reference::parse("kms:arn:aws:kms:x").unwrap(),
            Reference::Kms(_)
        ));
        assert!(
            Reference::parse("plain")
                .unwrap_err()
                .contains("expected a reference")
        );
        assert!(
            Reference::parse("env:")
                .unwrap_err()
                .contains("names nothing")
        );
        assert!(
            Reference::parse("vault:x")
                .unwrap_err()
                .contains("unknown reference kind")
        );
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = Reference::Env("FEDSYNC_TEST_SURELY_UNSET".into())
            .read()
            .unwrap_err();
        assert!(err.contains("FEDSYNC_TEST_SURELY_UNSET"));
    }
}
