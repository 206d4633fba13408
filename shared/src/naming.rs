//! Secret names: the names events may give a source secret, and destination
//! names: the rule's name template, its placeholders, and the per-destination
//! sanitizing rule (each character a destination cannot hold becomes `-`, so a
//! user can predict every name).

use std::fmt;

/// What a destination accepts as a secret name. Each store adapter declares one.
#[derive(Debug, Clone, Copy)]
pub struct NameRules {
    /// The store's name for the error messages ("AWS Secrets Manager").
    pub store: &'static str,
    /// Characters a name may hold, besides ASCII letters and digits.
    pub extra_chars: &'static str,
    /// Longest name accepted, in bytes.
    pub max_len: usize,
    /// Whether the store treats names differing only in letter case as one.
    pub case_insensitive: bool,
}

impl NameRules {
    fn allows(&self, c: char) -> bool {
        c.is_ascii_alphanumeric() || self.extra_chars.contains(c)
    }

    /// Replaces every character the store cannot hold with `-`.
    pub fn sanitize(&self, s: &str) -> String {
        s.chars()
            .map(|c| if self.allows(c) { c } else { '-' })
            .collect()
    }

    /// The form under which two names are the same secret in this store.
    pub fn identity_of(&self, name: &str) -> String {
        if self.case_insensitive {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        }
    }

    /// Checks a finished name.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if name.is_empty() {
            return Err(format!("an empty name is not valid in {}", self.store));
        }
        if name.len() > self.max_len {
            return Err(format!(
                "name is {} bytes long; {} accepts at most {}",
                name.len(),
                self.store,
                self.max_len
            ));
        }
        if let Some(c) = name.chars().find(|c| !self.allows(*c)) {
            return Err(format!(
                "character {c:?} is not valid in a {} name",
                self.store
            ));
        }
        Ok(())
    }
}

/// Characters that would make a URL path address something other than the
/// secret named: a query, a fragment, a percent-escape, and the backslash that
/// URL parsers read as `/`.
const URL_SYNTAX: &[char] = &['?', '#', '%', '\\'];

/// Checks a source secret's name as an event or a request gives it, before any
/// rule is matched or any store is called. Vault, Google Secret Manager and Key
/// Vault take the name into a URL path, where a `.` or `..` segment would climb
/// to another resource than the rule allows (`app/../private/db`), a control
/// character would be dropped (`app/db\n` reads `app/db`), and `?`, `#`, `%` or `\`
/// would change what the path addresses. Google and Key Vault names hold none of
/// these, nor can Vault read them as written; AWS names hold none but the dot
/// segments, refused all the same, so that a rule's prefix means what it says.
/// The error quotes the name only as an excerpt.
pub fn check_source_name(name: &str) -> Result<(), String> {
    let quoted = || crate::excerpt::quote(name);
    if name.chars().any(char::is_control) {
        return Err(format!(
            "the secret name {} holds a control character",
            quoted()
        ));
    }
    if let Some(c) = name.chars().find(|c| URL_SYNTAX.contains(c)) {
        return Err(format!(
            "the secret name {} holds {c:?}, which is not allowed in a secret name",
            quoted()
        ));
    }
    if name
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(format!(
            "the secret name {} has a \".\" or \"..\" path segment",
            quoted()
        ));
    }
    Ok(())
}

/// A placeholder of a name template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// The source secret's full name.
    Name,
    /// The last `/`-separated segment of the source secret's name.
    Basename,
    /// The source's name in the configuration.
    Source,
    /// The destination's name in the configuration.
    Destination,
    /// The JSON key (granularity `key` only).
    Key,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(Placeholder),
}

/// A parsed name template such as `"{source}/{name}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    parts: Vec<Part>,
}

/// The values substituted into a template.
#[derive(Debug, Clone, Copy)]
pub struct NameVars<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub destination: &'a str,
    pub key: Option<&'a str>,
}

impl NameTemplate {
    /// Parses a template; the error says what is wrong with it.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!(
                    "unmatched '}}' in name template {}",
                    crate::excerpt::quote(template)
                ));
            }
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or_else(|| {
                format!(
                    "unclosed '{{' in name template {}",
                    crate::excerpt::quote(template)
                )
            })?;
            let word = &rest[open + 1..open + close];
            let placeholder = match word {
                "name" => Placeholder::Name,
                "basename" => Placeholder::Basename,
                "source" => Placeholder::Source,
                "destination" => Placeholder::Destination,
                "key" => Placeholder::Key,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{}}} in name template {}; \
                         known: {{name}} {{basename}} {{source}} {{destination}} {{key}}",
                        crate::excerpt::bare(other),
                        crate::excerpt::quote(template)
                    ));
                }
            };
            parts.push(Part::Placeholder(placeholder));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("the name template is empty".into());
        }
        Ok(NameTemplate { parts })
    }

    pub fn uses(&self, p: Placeholder) -> bool {
        self.parts.contains(&Part::Placeholder(p))
    }

    /// Checks, at load time, that this template can produce a valid name under
    /// `rules`: its literal text must be valid there as written (only substituted
    /// values are sanitized), and must leave room for the placeholders.
    pub fn check_against(&self, rules: &NameRules) -> Result<(), String> {
        let mut literal_len = 0;
        for part in &self.parts {
            if let Part::Literal(text) = part {
                if let Some(c) = text.chars().find(|c| !rules.allows(*c)) {
                    return Err(format!(
                        "the template's literal text {text:?} holds {c:?}, which {} does not accept in a name",
                        rules.store
                    ));
                }
                literal_len += text.len();
            }
        }
        let placeholders = self
            .parts
            .iter()
            .filter(|p| matches!(p, Part::Placeholder(_)))
            .count();
        if literal_len + placeholders > rules.max_len {
            return Err(format!(
                "the template's names would be longer than the {} bytes {} accepts",
                rules.max_len, rules.store
            ));
        }
        Ok(())
    }

    /// Renders the template for one secret and sanitizes the substituted values.
    pub fn render(&self, vars: &NameVars<'_>, rules: &NameRules) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Placeholder(p) => {
                    let value = match p {
                        Placeholder::Name => vars.name,
                        Placeholder::Basename => vars.name.rsplit('/').next().unwrap_or(vars.name),
                        Placeholder::Source => vars.source,
                        Placeholder::Destination => vars.destination,
                        Placeholder::Key => vars.key.unwrap_or_default(),
                    };
                    out.push_str(&rules.sanitize(value));
                }
            }
        }
        rules.check(&out)?;
        Ok(out)
    }
}

impl fmt::Display for NameTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(t) => f.write_str(t)?,
                Part::Placeholder(p) => {
                    let w = match p {
                        Placeholder::Name => "name",
                        Placeholder::Basename => "basename",
                        Placeholder::Source => "source",
                        Placeholder::Destination => "destination",
                        Placeholder::Key => "key",
                    };
                    write!(f, "{{{w}}}")?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: NameRules = NameRules {
        store: "Test Store",
        extra_chars: "/_-",
        max_len: 24,
        case_insensitive: false,
    };

    fn vars<'a>(name: &'a str) -> NameVars<'a> {
        NameVars {
            name,
            source: "main",
            destination: "dr",
            key: Some("user name"),
        }
    }

    #[test]
    fn renders_placeholders_and_sanitizes_only_substituted_values() {
        let t = NameTemplate::parse("{source}/{basename}_{key}").unwrap();
        assert_eq!(
            t.render(&vars("prod/db:main"), &RULES).unwrap(),
            "main/db-main_user-name"
        );
        assert_eq!(t.to_string(), "{source}/{basename}_{key}");
    }

    #[test]
    fn rejects_malformed_templates_with_the_reason() {
        assert!(
            NameTemplate::parse("{nme}")
                .unwrap_err()
                .contains("unknown placeholder {nme}")
        );
        assert!(
            NameTemplate::parse("{name")
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            NameTemplate::parse("name}")
                .unwrap_err()
                .contains("unmatched")
        );
        assert!(NameTemplate::parse("").unwrap_err().contains("empty"));
    }

    #[test]
    fn a_malformed_template_is_quoted_by_an_excerpt_only() {
        for template in [
            format!("{{name}}{}", "}".repeat(80)),
            format!("{{{}}}", "n".repeat(80)),
            format!("{}{{", "x".repeat(80)),
        ] {
            let e = NameTemplate::parse(&template).unwrap_err();
            assert!(!e.contains(&template[..40]), "{e}");
            assert!(!e.contains(&template[template.len() - 40..]), "{e}");
        }
    }

    #[test]
    fn literal_text_must_be_valid_for_the_destination() {
        let t = NameTemplate::parse("prod:{name}").unwrap();
        let err = t.check_against(&RULES).unwrap_err();
        assert!(err.contains("':'") && err.contains("Test Store"), "{err}");
        let long = NameTemplate::parse("a-very-long-prefix-that-is-too-long/{name}").unwrap();
        assert!(long.check_against(&RULES).unwrap_err().contains("longer"));
        assert!(
            NameTemplate::parse("x/{name}")
                .unwrap()
                .check_against(&RULES)
                .is_ok()
        );
    }

    #[test]
    fn source_names_that_would_address_another_resource_are_refused() {
        for (name, reason) in [
            ("app/../private/db", "path segment"),
            ("..", "path segment"),
            ("app/./db", "path segment"),
            ("app/db\n", "control character"),
            ("app/\u{0}db", "control character"),
            ("app/\u{85}db", "control character"),
            ("app/db?version=1", "'?'"),
            ("app/db#x", "'#'"),
            ("app/%2e%2e/private", "'%'"),
            ("app\\..\\private", "'\\\\'"),
        ] {
            let err = check_source_name(name).unwrap_err();
            assert!(err.contains(reason), "{name:?}: {err}");
        }
        for name in [
            "prod/app/db",
            "app/{name}",
            "app/${FEDSYNC_NOTIFY_SECRET}",
            "env:FEDSYNC_SIGNING_KEY",
            "a..b/.hidden/c.",
            "\u{430}pp/db",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app/db-AbCdEf",
        ] {
            assert_eq!(check_source_name(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn a_refused_source_name_is_quoted_escaped_and_cut() {
        let name = format!("app/db\n{}", "x".repeat(80));
        let err = check_source_name(&name).unwrap_err();
        assert!(err.contains("\"app/db\\n"), "{err}");
        assert!(
            !err.contains('\n') && !err.contains(&"x".repeat(40)),
            "{err}"
        );
    }

    #[test]
    fn a_rendered_name_over_the_limit_is_an_error() {
        let t = NameTemplate::parse("{name}").unwrap();
        let err = t
            .render(&vars("a/very/long/secret/name/indeed"), &RULES)
            .unwrap_err();
        assert!(err.contains("at most 24"), "{err}");
    }
}
