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
fn link_local_and_metadata_endpoints_are_refused_at_load() {
    for (url, why) in [
        ("http://169.254.169.254/latest", "link-local"),
        ("https://[fe80::1]:8443", "link-local"),
        ("https://metadata.google.internal", "metadata"),
        ("https://100.100.100.200", "metadata"),
    ] {
        let p = problems(&with(
            r#"identity = "deploy""#,
            &format!("identity = \"deploy\"\nsts_endpoint = \"{url}\""),
        ));
        assert_eq!(p.len(), 1, "{url}: {p:?}");
        assert!(
            p[0].starts_with("destinations.aws-dr.sts_endpoint: ") && p[0].contains(why),
            "{p:?}"
        );
    }
}

#[test]
fn a_metadata_host_must_be_the_metadata_server() {
    let source = |host: &str| {
        with(
            "[sources.main]\nkind = \"aws-secrets-manager\"\nregion = \"us-east-1\"",
            &format!(
                "[sources.main]\nkind = \"gcp-secret-manager\"\nproject = \"p\"\nmetadata_host = \"{host}\""
            ),
        )
    };
    for ok in [
        "metadata.google.internal",
        "169.254.169.254",
        "127.0.0.1:8080",
    ] {
        assert!(
            problems(&source(ok)).is_empty(),
            "{ok}: {:?}",
            problems(&source(ok))
        );
    }
    let p = problems(&source("evil.example.com"));
    assert!(
        p.iter()
            .any(|p| p.starts_with("sources.main.metadata_host: ")
                && p.contains("not a metadata server")),
        "{p:?}"
    );
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
fn kms_signing_keys_are_key_arns() {
    let arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let good = with(
        r#"key = "env:FEDSYNC_SIGNING_KEY""#,
        &format!(r#"key = "kms:{arn}""#),
    );
    assert_eq!(problems(&good), Vec::<String>::new());
    let alias = with(
        r#"key = "env:FEDSYNC_SIGNING_KEY""#,
        r#"key = "kms:arn:aws:kms:eu-west-1:123456789012:alias/fedsync""#,
    );
    let p = problems(&alias);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("identities.deploy.key: ")
            && p[0].contains("is not the ARN of a KMS key")
            && p[0].contains("arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"),
        "{p:?}"
    );
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

#[test]
fn vault_logins_are_jwt_auth_or_a_token_and_vault_oidc_cannot_chain() {
    let identities = r#"
[identities.vault-aws]
kind = "vault-oidc"
address = "https://vault.example.com:8200"
role = "fedsync-aws"
login = { role = "fedsync", identity = "pod" }
"#;
    let good = with("[sources.main]", &format!("{identities}\n[sources.main]"));
    assert_eq!(problems(&good), Vec::<String>::new());
    let c = Config::parse(&good, "test.toml").unwrap();
    let IdentityConfig::VaultOidc(v) = &c.identities["vault-aws"] else {
        panic!("vault-aws is a vault-oidc identity")
    };
    assert_eq!(
        (v.login.audience.as_str(), v.login.auth_mount.as_str()),
        ("vault", "jwt")
    );

    let chained = good.replace("identity = \"pod\"", "identity = \"vault-aws\"");
    assert_eq!(
        problems(&chained),
        [
            "identities.vault-aws.login.identity: must not be another vault-oidc identity: Vault needs a token from elsewhere to let fedsync in"
        ]
    );
    let unknown = good.replace("identity = \"pod\"", "identity = \"nobody\"");
    assert!(
        problems(&unknown)[0]
            .starts_with("identities.vault-aws.login.identity: unknown identity \"nobody\""),
        "{:?}",
        problems(&unknown)
    );
    let both = good.replace(
        "identity = \"pod\"",
        "identity = \"pod\", token = \"file:/run/vault-token\"",
    );
    assert_eq!(
        problems(&both),
        [
            "identities.vault-aws.login: log in either with JWT auth (role and identity) or with a token (token), not both"
        ]
    );
    let source = r#"
[sources.vault]
kind = "vault-kv"
address = "https://vault.example.com:8200"
login = { token = "VAULT_TOKEN" }
"#;
    let inline = problems(&format!("{GOOD}\n{source}"));
    assert!(
        inline.len() == 1
            && inline[0].starts_with(
                "sources.vault.login.token: a credential must not be written in the configuration"
            ),
        "{inline:?}"
    );
    let defaulted = format!(
        "{GOOD}\n{}",
        source.replace("login = { token = \"VAULT_TOKEN\" }\n", "")
    );
    let c = Config::parse(&defaulted, "test.toml").unwrap();
    let SourceConfig::VaultKv(v) = &c.sources["vault"] else {
        panic!("vault is a vault-kv source")
    };
    assert_eq!(v.login.token.as_deref(), Some("env:VAULT_TOKEN"));
}

#[test]
fn aws_outbound_identities_default_to_rs256_for_five_minutes() {
    let text = with(
        "[sources.main]",
        "[identities.lambda]\nkind = \"aws-outbound\"\n\n[sources.main]",
    );
    let c = Config::parse(&text, "test.toml").unwrap();
    let IdentityConfig::AwsOutbound(o) = &c.identities["lambda"] else {
        panic!("lambda is an aws-outbound identity")
    };
    assert_eq!(
        (o.region.as_deref(), o.signing_algorithm.as_str(), o.ttl),
        (None, "RS256", Duration::from_secs(300))
    );
    assert!(o.tags.is_empty());
    let es384 = with(
        "[sources.main]",
        "[identities.lambda]\nkind = \"aws-outbound\"\nregion = \"eu-west-1\"\nsigning_algorithm = \"ES384\"\nttl = \"1h\"\ntags = { team = \"platform\", \"cost-center\" = \"sec/ops@1\" }\n\n[sources.main]",
    );
    assert_eq!(problems(&es384), Vec::<String>::new());
}

#[test]
fn aws_outbound_mistakes_are_named_by_key() {
    let tags: Vec<String> = (0..51).map(|i| format!("t{i} = \"v\"")).collect();
    let bad = with(
        "[sources.main]",
        &format!(
            "[identities.lambda]\nkind = \"aws-outbound\"\nregion = \"aws-global\"\nsigning_algorithm = \"ES256\"\nttl = \"2h\"\ntags = {{ {} }}\n\n[identities.other]\nkind = \"aws-outbound\"\nttl = \"30s\"\ntags = {{ \"bad!\" = \"x\", long = \"{}\" }}\n\n[sources.main]",
            tags.join(", "),
            "v".repeat(257)
        ),
    );
    assert_eq!(
        problems(&bad),
        [
            "identities.lambda.region: \"aws-global\" is not an AWS region such as \"us-east-1\" (GetWebIdentityToken is served by regional STS endpoints only)",
            "identities.lambda.signing_algorithm: \"ES256\" is not offered by AWS STS: use \"RS256\" or \"ES384\"",
            "identities.lambda.ttl: tokens must live between 1 minute and 1 hour, in whole seconds",
            "identities.lambda.tags: at most 50 tags",
            "identities.other.ttl: tokens must live between 1 minute and 1 hour, in whole seconds",
            "identities.other.tags.bad!: tag keys are 1-128 and values at most 256 letters, digits, spaces or _.:/=+-@",
            "identities.other.tags.long: tag keys are 1-128 and values at most 256 letters, digits, spaces or _.:/=+-@",
        ]
    );
    let unknown = with(
        "[sources.main]",
        "[identities.lambda]\nkind = \"aws-outbound\"\naudience = \"x\"\n\n[sources.main]",
    );
    assert!(
        problems(&unknown)[0].contains("unknown field `audience`"),
        "{:?}",
        problems(&unknown)
    );
}

#[test]
fn the_audit_listener_stays_on_private_addresses_and_names_a_vault_source() {
    let vault =
        "\n[sources.vault]\nkind = \"vault-kv\"\naddress = \"https://vault.example.com:8200\"\n";
    let listener = |listen: &str, source: &str, peers: &str| {
        format!(
            "{GOOD}{vault}\n[triggers.vault_audit]\nlisten = \"{listen}\"\nsource = \"{source}\"\nallowed_peers = [{peers}]\n"
        )
    };
    assert_eq!(
        problems(&listener("10.0.1.20:9090", "vault", "\"10.0.1.10\"")),
        Vec::<String>::new()
    );
    let c = Config::parse(&listener("127.0.0.1:9090", "vault", ""), "test.toml").unwrap();
    let audit = c.triggers.vault_audit.unwrap();
    assert!(audit.admits("127.0.0.1".parse().unwrap()));
    assert!(audit.admits("::ffff:127.0.0.1".parse().unwrap()));
    assert!(
        !audit.admits("10.0.1.10".parse().unwrap()),
        "loopback only by default"
    );
    assert_eq!(
        problems(&listener("0.0.0.0:9090", "main", "\"203.0.113.9\"")),
        [
            "triggers.vault_audit.listen: the audit stream is not authenticated: listen on a loopback or private address only",
            "triggers.vault_audit.allowed_peers[0]: must be a loopback or private address",
            "triggers.vault_audit.source: unknown vault-kv source \"main\"; defined: vault",
        ]
    );
}

#[test]
fn a_value_pasted_in_the_wrong_place_is_never_repeated() {
    let pasted = "pasted-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
    for text in [
        with(r#"ttl = "5m""#, &format!("ttl = \"{pasted}\"")),
        with(r#"kind = "file""#, &format!("kind = \"{pasted}\"")),
        with(r#"ttl = "5m""#, &format!("ttl = \"5m\"\n{pasted:?} = 1")),
        with(
            r#"region = "us-east-1""#,
            &format!("region = [\"{pasted}\"]"),
        ),
        format!(
            "{GOOD}\n[sources.x]\nkind = \"aws-secrets-manager\"\nregion = {{ r = \"{pasted}\" }}\n"
        ),
        format!(
            "{GOOD}\n[[rules]]\nsource = \"main\"\nmatch = \"*\"\ndestinations = \"{pasted}\"\n"
        ),
    ] {
        let shown = Config::parse(&text, "t").unwrap_err().to_string();
        assert!(!shown.contains(&pasted[..40]), "{shown}");
    }
}

#[test]
fn the_pubsub_ack_deadline_defaults_to_pubsubs_and_stays_in_its_range() {
    let pubsub = |extra: &str| {
        format!(
            "{GOOD}\n[triggers.pubsub]\naudience = \"https://fedsync.example.com/\"\nservice_account = \"push@p.iam.gserviceaccount.com\"\n{extra}"
        )
    };
    let c = Config::parse(&pubsub(""), "test.toml").unwrap();
    assert_eq!(
        c.triggers.pubsub.unwrap().ack_deadline,
        Duration::from_secs(10)
    );
    let c = Config::parse(&pubsub("ack_deadline = \"60s\""), "test.toml").unwrap();
    assert_eq!(
        c.triggers.pubsub.unwrap().ack_deadline,
        Duration::from_secs(60)
    );
    for wrong in ["5s", "11m"] {
        assert_eq!(
            problems(&pubsub(&format!("ack_deadline = \"{wrong}\""))),
            vec![
                "triggers.pubsub.ack_deadline: must be the subscription's acknowledgement deadline, 10s to 600s"
            ],
            "{wrong}"
        );
    }
}
