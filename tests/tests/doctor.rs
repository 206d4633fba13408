//! `fedsync doctor` end to end: the real binary against moto behind the
//! validating STS front, the Google emulators, Entra and Key Vault, and the
//! harness issuer. A good configuration passes every check and shows the
//! token's claims but never the token; each broken trust is explained by the
//! claim or setting that does not match.

use fedsync_tests::azure::key_vault::{DataAction, Role};
use fedsync_tests::azure::world::{Azure, CLIENT, azure};
use fedsync_tests::cli::fedsync;
use fedsync_tests::clouds::{Clouds, DEST_REGION, SUBJECT};
use fedsync_tests::google::GoogleCloud;
use fedsync_tests::google_world::{
    DEST_PROJECT, POOL, WRITER_ACCOUNT, google, google_destination, trust, trust_writer,
};
use fedsync_tests::issuer::{Issuer, KeyType, SigningKey};
use fedsync_tests::sts_front::RoleTrust;
use serde_json::{Value, json};
use std::time::Duration;

/// What one run of `fedsync doctor` gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    /// The one check of `subject` at `step`.
    fn check(&self, subject: &str, step: &str) -> Value {
        let report = self.json();
        let found: Vec<&Value> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["subject"] == subject && c["step"] == step)
            .collect();
        assert_eq!(found.len(), 1, "{subject} {step}: {report:#}");
        found[0].clone()
    }

    /// Asserts the check failed; returns its detail and hint.
    fn failed(&self, subject: &str, step: &str) -> (String, String) {
        let check = self.check(subject, step);
        assert_eq!(check["status"], "failed", "{check:#}");
        assert_eq!(self.code, Some(1), "{}", self.stderr);
        let text = |field: &str| check[field].as_str().unwrap_or_default().to_string();
        (text("detail"), text("hint"))
    }

    /// No token was printed: neither `tokens` nor anything shaped like a JWT.
    fn shows_no_token(&self, tokens: &[&str]) {
        for text in [&self.stdout, &self.stderr] {
            assert!(
                !text.contains("eyJ"),
                "something like a JWT was printed: {text}"
            );
            for token in tokens {
                let signature = token.rsplit('.').next().unwrap();
                assert!(
                    !text.contains(token) && !text.contains(signature),
                    "the token was printed: {text}"
                );
            }
        }
    }
}

async fn doctor(args: &[&str], config: &str, env: &[(&str, String)]) -> Run {
    let mut all = vec!["doctor"];
    all.extend(args);
    let out = fedsync(&all, config, env).await;
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A `signing-key` identity named `name` signing for `issuer` as `subject`
/// with the key in `FEDSYNC_SIGNING_KEY`.
fn signing_key(name: &str, issuer: &str, subject: &str) -> String {
    format!(
        "\n[identities.{name}]\nkind = \"signing-key\"\nissuer = \"{issuer}\"\nkey = \"env:FEDSYNC_SIGNING_KEY\"\nsubject = \"{subject}\"\n"
    )
}

fn key_env(key: &SigningKey) -> Vec<(&'static str, String)> {
    vec![("FEDSYNC_SIGNING_KEY", key.private_key_pem().to_string())]
}

/// The AWS destination `aws-dr` writing with `role` as `identity`.
fn aws_destination(clouds: &Clouds, role: &str, identity: &str, extra: &str) -> String {
    format!(
        "\n[destinations.aws-dr]\nkind = \"aws-secrets-manager\"\nregion = \"{DEST_REGION}\"\nrole_arn = \"{role}\"\nidentity = \"{identity}\"\nendpoint = \"{}\"\nsts_endpoint = \"{}\"\n{extra}\n",
        clouds.moto.endpoint(),
        clouds.sts.endpoint()
    )
}

/// Google's destination trusting `issuer` for `subject`, written as `identity`.
async fn google_trusting(issuer: &str, subject: &str, identity: &str) -> (GoogleCloud, String) {
    let google = google().await;
    let provider = trust_writer(&google, issuer, subject);
    let config = google_destination(&google, &provider, identity, None);
    (google, config)
}

#[tokio::test]
async fn a_good_configuration_passes_every_check_and_shows_claims_but_no_token() {
    let clouds = Clouds::start().await;
    let issuer = clouds.issuer.url().to_string();
    let (_google, gcp) = google_trusting(&issuer, SUBJECT, "ci").await;
    let provider_audience = format!(
        "https://iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/{POOL}/providers/fedsync",
        DEST_PROJECT.1
    );
    let azure = azure(&issuer, SUBJECT).await;
    // The platform's token file, for Google and Key Vault: one token for both audiences.
    let mut claims = clouds.issuer.claims(SUBJECT, "", Duration::from_secs(600));
    claims["aud"] = json!([provider_audience, "api://AzureADTokenExchange"]);
    claims["repository"] = json!("acme/app");
    let minted = clouds.issuer.mint(&claims);
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), &minted).unwrap();
    let config = format!(
        "{deploy}\n[identities.ci]\nkind = \"file\"\npath = \"{path}\"\n\n[sources.main]\nkind = \"aws-secrets-manager\"\nregion = \"us-east-1\"\nendpoint = \"{moto}\"\n{aws}{gcp}{kv}\n[[rules]]\nsource = \"main\"\nmatch = \"prod/**\"\ndestinations = [\"aws-dr\", \"gcp-dr\", \"kv\"]\n",
        deploy = signing_key("deploy", &issuer, SUBJECT),
        path = token_file.path().display(),
        moto = clouds.moto.endpoint(),
        aws = aws_destination(&clouds, &clouds.writer_role, "deploy", ""),
        kv = azure.vault_config("destinations.kv", "ci", ""),
    );
    let env = key_env(clouds.issuer.rsa());

    let run = doctor(&["--json"], &config, &env).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["ok"], true);
    let checks = report["checks"].as_array().unwrap();
    let rows: Vec<(String, String, String)> = checks
        .iter()
        .map(|c| {
            for field in ["kind", "name", "detail"] {
                assert!(c[field].is_string(), "{field}: {c:#}");
            }
            let s = |f: &str| c[f].as_str().unwrap().to_string();
            (s("subject"), s("step"), s("status"))
        })
        .collect();
    let row = |subject: &str, step: &str| (subject.to_string(), step.to_string(), "ok".to_string());
    assert_eq!(
        rows,
        vec![
            row("identity ci", "token"),
            row("identity ci", "token"),
            row("identity ci", "issuer"),
            row("destination gcp-dr", "exchange"),
            row("destination gcp-dr", "probe"),
            row("destination kv", "exchange"),
            row("destination kv", "probe"),
            row("identity deploy", "token"),
            row("identity deploy", "issuer"),
            row("destination aws-dr", "exchange"),
            row("destination aws-dr", "probe"),
        ],
        "{report:#}"
    );
    assert!(checks.iter().all(|c| c["hint"].is_null()), "{report:#}");
    // The claims, for machines: header and every claim, never the token.
    let token = &checks[0]["token"];
    assert_eq!(token["claims"]["sub"], SUBJECT, "{token:#}");
    assert_eq!(token["claims"]["repository"], "acme/app");
    assert_eq!(token["header"]["alg"], "RS256");
    assert_eq!(token["header"]["kid"], clouds.issuer.rsa().kid());
    let probe = run.check("destination aws-dr", "probe");
    assert!(
        probe["detail"].as_str().unwrap().starts_with(
            r#"DescribeSecret "prod/fedsync-doctor-probe": no secret holds this name yet"#
        ),
        "{probe:#}"
    );
    for (subject, call) in [
        (
            "destination gcp-dr",
            r#"secrets.get "prod-fedsync-doctor-probe""#,
        ),
        (
            "destination kv",
            r#"listing one version of "prod-fedsync-doctor-probe""#,
        ),
    ] {
        let probe = run.check(subject, "probe");
        let expected = format!("{call}: no secret holds this name yet");
        assert!(
            probe["detail"].as_str().unwrap().starts_with(&expected),
            "{probe:#}"
        );
    }
    let exchange = run.check("destination aws-dr", "exchange");
    assert!(
        exchange["detail"]
            .as_str()
            .unwrap()
            .contains(&clouds.writer_role),
        "{exchange:#}"
    );
    run.shows_no_token(&[&minted]);

    // The table, for a person: the claims in words, times in UTC, no colour off a terminal.
    let run = doctor(&[], &config, &env).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let table = &run.stdout;
    for expected in [
        "SUBJECT",
        "DETAIL",
        &format!("iss {issuer:?}"),
        &format!("sub {SUBJECT:?}"),
        &format!("kid {:?}", clouds.issuer.rsa().kid()),
        "alg RS256",
        "repository \"acme/app\"",
        "11 checks: 11 ok, 0 failed, 0 skipped",
    ] {
        assert!(table.contains(expected), "{expected}: {table}");
    }
    assert!(table.contains("Z (in "), "exp as a UTC time: {table}");
    assert!(!table.contains('\x1b'), "{table}");
    run.shows_no_token(&[&minted]);
}

#[tokio::test]
async fn a_wrong_aws_audience_is_named_with_the_configured_value() {
    let clouds = Clouds::start().await;
    let config = format!(
        "{}{}",
        signing_key("deploy", clouds.issuer.url(), SUBJECT),
        aws_destination(
            &clouds,
            &clouds.writer_role,
            "deploy",
            "audience = \"api://not-sts\""
        )
    );
    let run = doctor(&["--json"], &config, &key_env(clouds.issuer.rsa())).await;
    let (detail, hint) = run.failed("destination aws-dr", "exchange");
    assert!(detail.contains("AccessDenied"), "{detail}");
    let host = clouds.issuer.url().trim_start_matches("http://");
    assert!(
        hint.contains(&format!("\"{host}:aud\"")) && hint.contains(r#"aud "api://not-sts""#),
        "{hint}"
    );
    assert!(hint.contains("`audience`"), "{hint}");
    assert_eq!(
        run.check("destination aws-dr", "probe")["status"],
        "skipped"
    );
    assert_eq!(run.check("identity deploy", "token")["status"], "ok");
    run.shows_no_token(&[]);
}

#[tokio::test]
async fn a_subject_the_google_provider_rejects_is_explained_by_its_attribute_condition() {
    let issuer = Issuer::start().await;
    let (_google, gcp) = google_trusting(issuer.url(), SUBJECT, "deploy").await;
    let config = format!(
        "{}{gcp}",
        signing_key("deploy", issuer.url(), "fedsync:someone-else")
    );
    let run = doctor(&["--json"], &config, &key_env(issuer.rsa())).await;
    let (detail, hint) = run.failed("destination gcp-dr", "exchange");
    assert!(detail.contains("invalid_grant"), "{detail}");
    assert!(
        hint.contains("attribute condition") && hint.contains(r#"sub "fedsync:someone-else""#),
        "{hint}"
    );
    run.shows_no_token(&[]);
}

#[tokio::test]
async fn an_issuer_whose_jwks_lacks_the_key_is_named_with_the_kid() {
    let issuer = Issuer::start().await;
    let azure = azure(issuer.url(), SUBJECT).await;
    // A key the issuer does not publish.
    let unpublished = SigningKey::generate(KeyType::Rsa);
    let config = format!(
        "{}{}",
        signing_key("deploy", issuer.url(), SUBJECT),
        azure.vault_config("destinations.kv", "deploy", "")
    );
    let run = doctor(&["--json"], &config, &key_env(&unpublished)).await;
    let (detail, hint) = run.failed("identity deploy", "issuer");
    assert!(
        detail.contains(&format!("holds no key {:?}", unpublished.kid()))
            && detail.contains(issuer.rsa().kid()),
        "{detail}"
    );
    assert!(hint.contains("fedsync issuer"), "{hint}");
    // Entra refuses it too, and says so.
    run.failed("destination kv", "exchange");
    run.shows_no_token(&[]);
}

#[tokio::test]
async fn a_token_file_for_another_audience_fails_before_any_exchange() {
    let issuer = Issuer::start().await;
    let azure = azure(issuer.url(), SUBJECT).await;
    let minted =
        issuer.mint(&issuer.claims(SUBJECT, "sts.amazonaws.com", Duration::from_secs(600)));
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), &minted).unwrap();
    let config = format!(
        "\n[identities.pod]\nkind = \"file\"\npath = \"{}\"\n{}",
        token_file.path().display(),
        azure.vault_config("destinations.kv", "pod", "")
    );
    let run = doctor(&["--json"], &config, &[]).await;
    let (detail, hint) = run.failed("identity pod", "token");
    assert!(
        detail.starts_with(
            r#"the token's aud "sts.amazonaws.com" does not include "api://AzureADTokenExchange", which destination "kv" asks for"#
        ),
        "{detail}"
    );
    assert!(hint.contains("`audience` of destination \"kv\""), "{hint}");
    assert_eq!(run.check("identity pod", "issuer")["status"], "ok");
    for step in ["exchange", "probe"] {
        assert_eq!(run.check("destination kv", step)["status"], "skipped");
    }
    assert_eq!(azure.entra.calls(), 0, "nothing was presented to Entra");
    run.shows_no_token(&[&minted]);
}

#[tokio::test]
async fn an_unreachable_issuer_is_reported_at_its_discovery_document() {
    let port = fedsync_tests::moto::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let config = signing_key("deploy", &issuer, SUBJECT);
    let key = SigningKey::generate(KeyType::Ec);
    let run = doctor(&["--json"], &config, &key_env(&key)).await;
    let (detail, hint) = run.failed("identity deploy", "issuer");
    assert!(
        detail.contains(&format!(
            "{issuer}/.well-known/openid-configuration is unreachable"
        )),
        "{detail}"
    );
    assert!(hint.contains("fedsync issuer --out"), "{hint}");
    let token = run.check("identity deploy", "token");
    assert_eq!(token["status"], "ok", "{token:#}");
    assert!(
        token["detail"]
            .as_str()
            .unwrap()
            .contains("no store uses this identity"),
        "{token:#}"
    );
}

#[tokio::test]
async fn impersonation_without_the_workload_identity_user_binding_names_the_principal() {
    let issuer = Issuer::start().await;
    let google = google().await;
    let provider = trust(
        &google,
        issuer.url(),
        &format!("assertion.sub == '{SUBJECT}'"),
    );
    let config = format!(
        "{}{}",
        signing_key("deploy", issuer.url(), SUBJECT),
        google_destination(&google, &provider, "deploy", Some(WRITER_ACCOUNT))
    );
    let run = doctor(&["--json"], &config, &key_env(issuer.rsa())).await;
    let (detail, hint) = run.failed("destination gcp-dr", "exchange");
    assert!(
        detail.contains("PERMISSION_DENIED") && detail.contains(WRITER_ACCOUNT),
        "{detail}"
    );
    let principal = format!(
        "principal://iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/{POOL}/subject/{SUBJECT}",
        DEST_PROJECT.1
    );
    assert!(
        hint.contains("roles/iam.workloadIdentityUser") && hint.contains(&principal),
        "{hint}"
    );
}

#[tokio::test]
async fn an_entra_subject_mismatch_names_the_subject_to_put_in_the_credential() {
    let issuer = Issuer::start().await;
    let azure = azure(issuer.url(), "fedsync:prod").await;
    let config = format!(
        "{}{}",
        signing_key("deploy", issuer.url(), SUBJECT),
        azure.vault_config("destinations.kv", "deploy", "")
    );
    let run = doctor(&["--json"], &config, &key_env(issuer.rsa())).await;
    let (detail, hint) = run.failed("destination kv", "exchange");
    assert!(detail.contains("AADSTS700213"), "{detail}");
    assert!(
        hint.contains("subject") && hint.contains(&format!("exactly {SUBJECT:?}")),
        "{hint}"
    );
    assert!(hint.contains(CLIENT), "{hint}");
}

#[tokio::test]
async fn a_role_that_may_not_read_fails_the_probe_naming_the_permission() {
    let clouds = Clouds::start().await;
    clouds.moto.disable_iam_auth().await;
    let blind = clouds
        .moto
        .create_role(
            "fedsync-blind-writer",
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue"], "Resource": "*"}]}),
        )
        .await;
    clouds.moto.enable_iam_auth().await;
    clouds.sts.trust_role(
        &blind,
        RoleTrust {
            issuer: clouds.issuer.url().into(),
            audience: "sts.amazonaws.com".into(),
            subject: SUBJECT.into(),
        },
    );
    let config = format!(
        "{}{}",
        signing_key("deploy", clouds.issuer.url(), SUBJECT),
        aws_destination(&clouds, &blind, "deploy", "")
    );
    let run = doctor(&["--json"], &config, &key_env(clouds.issuer.rsa())).await;
    assert_eq!(run.check("destination aws-dr", "exchange")["status"], "ok");
    let (detail, hint) = run.failed("destination aws-dr", "probe");
    assert!(detail.contains("HTTP 403"), "{detail}");
    assert!(
        hint.contains("secretsmanager:DescribeSecret") && hint.contains(&blind),
        "{hint}"
    );
}

#[tokio::test]
async fn a_key_vault_application_that_may_not_read_metadata_fails_the_probe() {
    let issuer = Issuer::start().await;
    let azure = Azure::start().await;
    azure.trust(issuer.url(), SUBJECT);
    azure.vault.revoke(CLIENT);
    azure
        .vault
        .grant(CLIENT, Role::Custom(vec![DataAction::SetSecret]));
    let config = format!(
        "{}{}",
        signing_key("deploy", issuer.url(), SUBJECT),
        azure.vault_config("destinations.kv", "deploy", "")
    );
    let run = doctor(&["--json"], &config, &key_env(issuer.rsa())).await;
    let (detail, hint) = run.failed("destination kv", "probe");
    assert!(detail.contains("ForbiddenByRbac"), "{detail}");
    assert!(
        hint.contains("Microsoft.KeyVault/vaults/secrets/readMetadata/action")
            && hint.contains(&format!("application {CLIENT}")),
        "{hint}"
    );
}

#[tokio::test]
async fn a_source_reached_through_federation_is_examined_too() {
    let issuer = Issuer::start().await;
    let azure = azure(issuer.url(), SUBJECT).await;
    let value = fedsync_tests::leaks::secret("a-value-doctor-never-reads");
    azure.vault.set_secret("app-db", &value, &[]);
    let config = format!(
        "{}{}",
        signing_key("deploy", issuer.url(), SUBJECT),
        azure.vault_config("sources.kv", "deploy", "")
    );
    let run = doctor(&["--json"], &config, &key_env(issuer.rsa())).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let exchange = run.check("source kv", "exchange");
    assert!(
        exchange["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("application {CLIENT}")),
        "{exchange:#}"
    );
    let probe = run.check("source kv", "probe");
    assert_eq!(
        probe["detail"], "listing its secrets: 1 name(s) on the first page",
        "{probe:#}"
    );
    assert!(!run.stdout.contains(&value) && !run.stderr.contains(&value));
}

#[tokio::test]
async fn an_unreadable_configuration_exits_2_and_checks_nothing() {
    let run = doctor(&[], "[destinations.x]\nkind = \"nowhere\"\n", &[]).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("invalid configuration"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
