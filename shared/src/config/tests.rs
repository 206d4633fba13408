//! Configuration loading and validation: every mistake named by its key.

use super::*;

const GOOD: &str = r#"
[identities.deploy]
kind = "signing-key"
issuer = "https://issuer.example.com/fedsync"
key = "env:FEDSYNC_SIGNING_KEY"
subject = "fedsync:prod"
ttl = "5m"

[identities.pod]
kind = "file"
path = "env:AWS_WEB_IDENTITY_TOKEN_FILE"

[sources.main]
kind = "aws-secrets-manager"
region = "us-east-1"

[destinations.aws-dr]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "arn:aws:iam::210987654321:role/fedsync-writer"
identity = "deploy"

[[rules]]
source = "main"
match = "prod/*"
destinations = ["aws-dr"]
name = "{name}"
tags = { team = "platform" }
"#;

fn problems(text: &str) -> Vec<String> {
    match Config::parse(text, "test.toml") {
        Ok(_) => vec![],
        Err(e) => e
            .problems
            .into_iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect(),
    }
}

fn with(replace: &str, by: &str) -> String {
    assert!(GOOD.contains(replace), "{replace}");
    GOOD.replace(replace, by)
}

#[test]
fn the_design_example_loads_with_defaults() {
    let c = Config::parse(GOOD, "test.toml").unwrap();
    let DestinationConfig::AwsSecretsManager(d) = &c.destinations["aws-dr"] else {
        panic!("aws-dr is an AWS destination")
    };
    assert_eq!(d.audience, "sts.amazonaws.com");
    assert_eq!(d.session_duration, Duration::from_secs(3600));
    let rule = &c.rules[0];
    assert_eq!(rule.overwrite, Overwrite::Managed);
    assert_eq!(rule.on_delete, OnDelete::Ignore);
    assert!(rule.matches("main", "prod/db"));
    assert!(
        !rule.matches("main", "prod/db/extra"),
        "* stays within one segment"
    );
    assert!(!rule.matches("other", "prod/db"));
}

#[test]
fn unknown_references_name_the_key_and_the_known_names() {
    let p = problems(&with(
        r#"destinations = ["aws-dr"]"#,
        r#"destinations = ["aws-dr", "gcp"]"#,
    ));
    assert_eq!(
        p,
        vec![r#"rules[0].destinations[1]: unknown destination "gcp"; defined: aws-dr"#]
    );
    let p = problems(&with(r#"identity = "deploy""#, r#"identity = "deplo""#));
    assert_eq!(
        p,
        vec![r#"destinations.aws-dr.identity: unknown identity "deplo"; defined: deploy, pod"#]
    );
    let p = problems(&with(r#"source = "main""#, r#"source = "mian""#));
    assert_eq!(
        p,
        vec![r#"rules[0].source: unknown source "mian"; defined: main"#]
    );
}

#[test]
fn a_template_that_cannot_make_a_valid_name_is_rejected_at_load() {
    let p = problems(&with(r#"name = "{name}""#, r#"name = "copy of {name}""#));
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("rules[0].name: for destination \"aws-dr\""),
        "{p:?}"
    );
    assert!(p[0].contains("' '"), "{p:?}");
    let p = problems(&with(r#"name = "{name}""#, r#"name = "{nam}""#));
    assert!(p[0].contains("unknown placeholder {nam}"), "{p:?}");
    let p = problems(&with(r#"name = "{name}""#, r#"name = "{name}-{key}""#));
    assert!(p[0].contains("only available with granularity"), "{p:?}");
}

#[test]
fn plain_http_is_only_for_loopback() {
    let p = problems(&with(
        r#"identity = "deploy""#,
        "identity = \"deploy\"\nsts_endpoint = \"http://sts.internal:8080\"",
    ));
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("destinations.aws-dr.sts_endpoint: plain http://"),
        "{p:?}"
    );
    for ok in [
        "http://127.0.0.1:5000",
        "http://localhost:5000",
        "http://[::1]:5000",
        "https://sts.example.com",
    ] {
        let text = with(
            r#"identity = "deploy""#,
            &format!("identity = \"deploy\"\nsts_endpoint = \"{ok}\""),
        );
        assert!(problems(&text).is_empty(), "{ok}");
    }
}

#[test]
fn inline_credentials_are_refused_wherever_they_are() {
    let p = problems(&with(
        r#"key = "env:FEDSYNC_SIGNING_KEY""#,
        r#"key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----""#,
    ));
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("identities.deploy.key: this looks like a PEM key"),
        "{p:?}"
    );

    let p = problems(&with(
        "region = \"eu-west-1\"",
        "region = \"eu-west-1\"\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG\"",
    ));
    assert!(
        p[0].starts_with("destinations.aws-dr.secret_access_key: a credential must not be written"),
        "{p:?}"
    );

    let p = problems(&with(
        "team = \"platform\"",
        "team = \"AKIAIOSFODNN7EXAMPLE\"",
    ));
    assert!(
        p[0].starts_with("rules[0].tags.team: this looks like an AWS access key id"),
        "{p:?}"
    );

    let p = problems(&with(
        r#"path = "env:AWS_WEB_IDENTITY_TOKEN_FILE""#,
        r#"path = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln""#,
    ));
    assert!(
        p[0].starts_with("identities.pod.path: this looks like a token"),
        "{p:?}"
    );
}

#[test]
fn typos_in_keys_and_kinds_are_errors_not_ignored() {
    let p = problems(&with("region = \"eu-west-1\"", "regoin = \"eu-west-1\""));
    assert!(p[0].contains("unknown field `regoin`"), "{p:?}");
    let p = problems(&with(r#"kind = "file""#, r#"kind = "flie""#));
    assert!(p[0].contains("unknown variant `flie`"), "{p:?}");
}

#[test]
fn token_lifetimes_stay_short() {
    let p = problems(&with(r#"ttl = "5m""#, r#"ttl = "1day""#));
    assert_eq!(
        p,
        vec!["identities.deploy.ttl: tokens must live between 1 minute and 1 hour"]
    );
    let p = problems(&with(r#"ttl = "5m""#, r#"ttl = "soon""#));
    assert!(p[0].contains("\"soon\" is not a duration"), "{p:?}");
}

#[test]
fn fedsync_marks_cannot_be_set_as_user_tags() {
    let p = problems(&with("team = \"platform\"", "\"fedsync:source\" = \"x\""));
    assert!(p[0].contains("fedsync's own marks"), "{p:?}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = with(r#"identity = "deploy""#, r#"identity = "nobody""#)
        .replace(r#"source = "main""#, r#"source = "none""#);
    let err = Config::parse(&text, "fedsync.toml").unwrap_err();
    assert_eq!(err.problems.len(), 2);
    let shown = err.to_string();
    assert!(
        shown.starts_with("invalid configuration fedsync.toml:\n  "),
        "{shown}"
    );
}

#[test]
fn toml_errors_give_the_position_but_never_echo_the_line() {
    let err = Config::parse(
        "[identities.x]\nkind = \"file\"\npath = \"eyJhbGciOi-unterminated\n",
        "t",
    )
    .unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("line 3, column"), "{shown}");
    assert!(!shown.contains("eyJhbGciOi"), "{shown}");
}

#[test]
fn urls_with_credentials_and_repeated_destinations_are_refused() {
    let p = problems(&with(
        "identity = \"deploy\"",
        "identity = \"deploy\"\nendpoint = \"https://user:pw@sm.example.com\"",
    ));
    assert!(
        p[0].starts_with(
            "destinations.aws-dr.endpoint: a URL must not carry a user name or password"
        ),
        "{p:?}"
    );
    let p = problems(&with(
        r#"destinations = ["aws-dr"]"#,
        r#"destinations = ["aws-dr", "aws-dr"]"#,
    ));
    assert_eq!(
        p,
        vec![r#"rules[0].destinations[1]: "aws-dr" is listed twice"#]
    );
}

#[test]
fn file_identity_paths_are_paths_or_env_references() {
    for (path, ok) in [
        ("/var/run/token", true),
        ("env:TOKEN_FILE", true),
        ("relative/token", true),
        ("file:/x", false),
        ("env:", false),
        ("", false),
    ] {
        let text = with(
            r#"path = "env:AWS_WEB_IDENTITY_TOKEN_FILE""#,
            &format!("path = \"{path}\""),
        );
        assert_eq!(
            problems(&text).is_empty(),
            ok,
            "{path}: {:?}",
            problems(&text)
        );
    }
}

#[test]
fn one_secrets_manager_source_per_region() {
    let p = problems(&with(
        "[destinations.aws-dr]",
        "[sources.again]\nkind = \"aws-secrets-manager\"\nregion = \"us-east-1\"\n\n[destinations.aws-dr]",
    ));
    assert_eq!(
        p,
        vec![
            r#"sources.main.region: source "again" already reads AWS Secrets Manager in us-east-1"#
        ]
    );
}
