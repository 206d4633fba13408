//! The name a destination's probe reads: what the first rule writing there
//! would name a source secret its pattern matches, each wildcard standing for
//! `fedsync-doctor-probe`, so that credentials allowed only the names the rules
//! produce (a least-privilege role) may read it.

use fedsync::config::{Config, Rule};
use fedsync::naming::NameVars;

/// What each wildcard of a pattern stands for.
const PROBE: &str = "fedsync-doctor-probe";

/// The probe's name at `destination`.
pub fn probe_name(config: &Config, destination: &str) -> String {
    let Some(store) = config.destinations.get(destination) else {
        return PROBE.into();
    };
    let rules = store.name_rules();
    config
        .rules
        .iter()
        .filter(|r| r.destinations.iter().any(|d| d == destination))
        .find_map(|rule| {
            let secret = matching_secret(rule)?;
            let vars = NameVars {
                name: &secret,
                source: &rule.source,
                destination,
                key: Some(PROBE),
            };
            rule.name.render(&vars, rules).ok()
        })
        .unwrap_or_else(|| rules.sanitize(PROBE))
}

/// A secret name `rule`'s pattern matches: `*` and `**` become [`PROBE`], `?`
/// a letter, a class `[...]` its first member, a choice `{a,b}` its first.
fn matching_secret(rule: &Rule) -> Option<String> {
    let mut name = String::new();
    let mut chars = rule.pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                name.push_str(PROBE);
            }
            '?' => name.push('x'),
            '[' => {
                let class: String = chars.by_ref().take_while(|&c| c != ']').collect();
                let class = class.trim_start_matches(['!', '^']);
                name.push(class.chars().next()?);
            }
            '{' => {
                let choice: String = chars.by_ref().take_while(|&c| c != '}').collect();
                name.push_str(choice.split(',').next().unwrap_or_default());
            }
            '\\' => name.push(chars.next()?),
            c => name.push(c),
        }
    }
    rule.matches(&rule.source, &name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rules: &str) -> Config {
        let text = format!(
            r#"
[identities.deploy]
kind = "file"
path = "/var/run/token"

[sources.main]
kind = "aws-secrets-manager"

[destinations.aws]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "arn:aws:iam::123456789012:role/w"
identity = "deploy"

[destinations.kv]
kind = "azure-key-vault"
vault_url = "https://kv.vault.azure.net"
tenant_id = "t"
client_id = "c"
identity = "deploy"
{rules}"#
        );
        Config::parse(&text, "test").unwrap()
    }

    #[test]
    fn the_name_is_one_the_first_rule_would_write() {
        let c = config(
            r#"
[[rules]]
source = "main"
match = "prod/**"
destinations = ["kv"]

[[rules]]
source = "main"
match = "prod/**"
destinations = ["aws", "kv"]
name = "{source}-{basename}"
"#,
        );
        assert_eq!(probe_name(&c, "aws"), "main-fedsync-doctor-probe");
        assert_eq!(probe_name(&c, "kv"), "prod-fedsync-doctor-probe");
    }

    #[test]
    fn patterns_with_classes_and_choices_still_give_a_matching_name() {
        let c = config(
            r#"
[[rules]]
source = "main"
match = "team-?/[ab]*/{db,cache}"
destinations = ["aws"]
"#,
        );
        assert_eq!(probe_name(&c, "aws"), "team-x/afedsync-doctor-probe/db");
    }

    #[test]
    fn a_destination_no_rule_writes_gets_a_plain_name() {
        assert_eq!(probe_name(&config(""), "aws"), "fedsync-doctor-probe");
    }
}
