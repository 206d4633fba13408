//! AWS outbound identity federation end to end: the real Lambda, whose only identity
//! is its execution role (`aws-outbound`: STS `GetWebIdentityToken`, signed with the
//! role session's credentials, answered by the validating STS front), syncs the AWS
//! source secret to Google Secret Manager and Azure Key Vault, whose emulators trust
//! only the AWS account's issuer.

use fedsync_tests::azure::world::{Azure, CLIENT, azure};
use fedsync_tests::clouds::{Clouds, VALUE, event};
use fedsync_tests::google::{GoogleCloud, Principal, SecretManagerRole};
use fedsync_tests::google_world::{DEST_PROJECT, POOL, google, google_destination, trust};
use fedsync_tests::lambda_api::{LambdaApi, LambdaProcess, workspace_binary};
use fedsync_tests::sts_front::AWS_CLAIMS;
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
/// The Key Vault name of `prod/app/db`.
const KV_NAME: &str = "prod-app-db";
/// The STS region the identity names (the function itself runs in us-east-1).
const STS_REGION: &str = "eu-west-1";
/// How every token the front issues begins (`{"typ":"JWT","alg":` in base64url).
const JWT_HEADER: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOi";

/// The AWS world, Google and Azure trusting `issuer` for the reader role, and the Lambda
/// with an `aws-outbound` identity reaching both.
struct World {
    clouds: Clouds,
    google: GoogleCloud,
    azure: Azure,
    api: LambdaApi,
    process: LambdaProcess,
}

/// `enable`: whether the account has enabled outbound identity federation (when it has
/// not, the clouds trust an issuer that never answers: no token reaches them).
async fn world(enable: bool) -> World {
    let clouds = Clouds::start().await;
    let issuer = if enable {
        clouds.sts.enable_outbound_federation().await
    } else {
        "https://outbound-federation-not-enabled.invalid".to_owned()
    };
    let role = clouds.reader_role.clone();
    let google = google().await;
    let condition = format!(
        "assertion.sub == '{role}' && assertion['{AWS_CLAIMS}'].request_tags.deployment == 'prod'"
    );
    let provider = trust(&google, &issuer, &condition);
    let federated = Principal::federated(DEST_PROJECT.1, POOL, &role).member();
    google
        .secret_manager
        .grant(DEST_PROJECT.0, &federated, SecretManagerRole::Admin);
    let azure = azure(&issuer, &role).await;
    let config = format!(
        r#"
[identities.lambda]
kind = "aws-outbound"
region = "{STS_REGION}"
tags = {{ deployment = "prod" }}

[sources.main]
kind = "aws-secrets-manager"
region = "us-east-1"
endpoint = "{moto}"
{gcp}{kv}
[[rules]]
source = "main"
match = "prod/**"
destinations = ["gcp-dr"]
name = "{{basename}}"

[[rules]]
source = "main"
match = "prod/**"
destinations = ["kv"]
"#,
        moto = clouds.moto.endpoint(),
        gcp = google_destination(&google, &provider, "lambda", None),
        kv = azure.vault_config("destinations.kv", "lambda", ""),
    );
    let api = LambdaApi::start().await;
    let mut env = clouds.function_env(&config);
    env.push(("AWS_ENDPOINT_URL_STS", clouds.sts.endpoint()));
    let process = LambdaProcess::spawn(&workspace_binary("fedsync-eventbridge"), &api, env);
    World {
        clouds,
        google,
        azure,
        api,
        process,
    }
}

impl World {
    /// The outcomes of one EventBridge change, by destination.
    async fn sync(&self) -> Vec<(String, Value)> {
        let answer = self
            .api
            .invoke(event("eventbridge-put-secret-value.json"), TIMEOUT)
            .await
            .expect_ok();
        let mut outcomes: Vec<_> = answer["report"]["outcomes"]
            .as_array()
            .unwrap_or_else(|| panic!("no outcomes: {answer:#}"))
            .iter()
            .map(|o| (o["destination"].as_str().unwrap().to_owned(), o.clone()))
            .collect();
        outcomes.sort_by(|a, b| a.0.cmp(&b.0));
        outcomes
    }
}

fn statuses(outcomes: &[(String, Value)]) -> Vec<(&str, &str)> {
    outcomes
        .iter()
        .map(|(d, o)| (d.as_str(), o["status"].as_str().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn a_lambda_reaches_google_and_azure_with_tokens_from_its_own_aws_role() {
    let w = world(true).await;
    let outcomes = w.sync().await;
    assert_eq!(
        statuses(&outcomes),
        [("gcp-dr", "synced"), ("kv", "synced")],
        "{outcomes:#?}"
    );

    let google_secret = w
        .google
        .secret_manager
        .secret(DEST_PROJECT.0, "db")
        .expect("the Google destination secret");
    let latest = google_secret.latest().expect("a version");
    assert_eq!(latest.data.as_deref(), Some(VALUE.as_bytes()));
    let kv = w.azure.vault.secret(KV_NAME).expect("the Key Vault secret");
    assert_eq!(
        kv.versions
            .iter()
            .map(|v| v.value.as_str())
            .collect::<Vec<_>>(),
        [VALUE]
    );

    // What the clouds verified: tokens of the account's issuer for the reader role.
    let role = &w.clouds.reader_role;
    let google_exchanges = w.google.sts.exchanges();
    let member = Principal::federated(DEST_PROJECT.1, POOL, role).member();
    assert_eq!(
        google_exchanges
            .iter()
            .map(|e| e.outcome.clone())
            .collect::<Vec<_>>(),
        [Ok(member)],
        "Google STS accepted one token, whose subject is the reader role"
    );
    assert_eq!(w.azure.entra.successes(CLIENT), 1, "Entra accepted one");
    let issuer = w
        .clouds
        .sts
        .outbound_issuer()
        .expect("enabled")
        .url()
        .to_owned();
    let issued: Vec<Value> = w
        .clouds
        .sts
        .token_requests()
        .into_iter()
        .map(|r| {
            assert_eq!(
                r.region.as_deref(),
                Some(STS_REGION),
                "signed for the region"
            );
            assert_eq!(
                r.access_key_id.as_deref(),
                Some(w.clouds.reader.access_key_id()),
                "signed with the function's own credentials"
            );
            r.outcome.expect("every token request succeeded")
        })
        .collect();
    assert_eq!(issued.len(), 2, "one token per destination audience");
    let mut audiences: Vec<_> = issued.iter().map(|c| c["aud"].clone()).collect();
    audiences.sort_by_key(Value::to_string);
    assert_eq!(
        audiences,
        [
            json!("api://AzureADTokenExchange"),
            json!(format!(
                "https:{}",
                w.google.sts.exchanges()[0].audience.clone().unwrap()
            )),
        ]
    );
    for claims in &issued {
        assert_eq!(claims["iss"], issuer);
        assert_eq!(claims["sub"], json!(role));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            300
        );
        assert_eq!(
            claims[AWS_CLAIMS]["request_tags"],
            json!({"deployment": "prod"})
        );
    }
    assert!(
        w.clouds.sts.exchanges().is_empty(),
        "no AssumeRoleWithWebIdentity: AWS was only asked for tokens"
    );

    // Again: both destinations already hold this version, and the cached credentials
    // serve without new tokens.
    let outcomes = w.sync().await;
    assert_eq!(
        statuses(&outcomes),
        [("gcp-dr", "unchanged"), ("kv", "unchanged")],
        "{outcomes:#?}"
    );
    assert_eq!(w.clouds.sts.token_requests().len(), 2);
    let logs = w.process.logs();
    assert!(!logs.contains(VALUE), "the value appears in the logs");
    assert!(!logs.contains(JWT_HEADER), "a token appears in the logs");
}

#[tokio::test]
async fn without_outbound_federation_enabled_the_sync_fails_naming_the_fix() {
    let w = world(false).await;
    let outcomes = w.sync().await;
    for (destination, o) in &outcomes {
        assert_eq!(
            (
                o["status"].as_str(),
                o["class"].as_str(),
                o["retryable"].as_bool()
            ),
            (Some("failed"), Some("auth"), Some(false)),
            "{destination}: {o:#}"
        );
        let message = o["message"].as_str().unwrap();
        assert!(
            message.contains("OutboundWebIdentityFederationDisabledException")
                && message.contains("run `aws iam enable-outbound-web-identity-federation`")
                && message.contains("identity \"lambda\""),
            "{destination}: {message}"
        );
    }
    assert_eq!(outcomes.len(), 2, "{outcomes:#?}");
    assert!(
        w.google
            .secret_manager
            .secret(DEST_PROJECT.0, "db")
            .is_none()
    );
    assert!(w.azure.vault.secret(KV_NAME).is_none());
    assert!(w.google.sts.exchanges().is_empty() && w.azure.entra.exchanges().is_empty());
    let refused: Vec<_> = w
        .clouds
        .sts
        .token_requests()
        .into_iter()
        .map(|r| r.outcome.unwrap_err())
        .collect();
    assert!(
        !refused.is_empty()
            && refused
                .iter()
                .all(|c| c == "OutboundWebIdentityFederationDisabledException"),
        "{refused:?}"
    );
    assert!(!w.process.logs().contains(VALUE));
}
