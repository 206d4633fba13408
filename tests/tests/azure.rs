//! The Azure path end to end: the real Lambda, Pub/Sub receiver and webhook
//! against the strict Entra ID and Key Vault emulators, with Event Grid's
//! deliveries signed as Event Grid would, and moto and the Google emulators for
//! the other clouds.

use fedsync_tests::azure::event_grid::{self, EventGrid, Schema};
use fedsync_tests::azure::key_vault::Operation;
use fedsync_tests::azure::world::{Azure, CLIENT, TENANT, WEBHOOK_APP, azure};
use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE, event};
use fedsync_tests::google_world::{
    DEST_PROJECT, GOOGLE_SECRET, SOURCE_PROJECT, google, google_destination, push_world,
    trust_writer,
};
use fedsync_tests::lambda_api::{LambdaApi, LambdaProcess};
use fedsync_tests::leaks;
use fedsync_tests::receiver::Receiver;
use serde_json::Value;
use std::time::Duration;

const KV_NAME: &str = "prod-app-db";
const TIMEOUT: Duration = Duration::from_secs(60);

/// The Lambda writing to Key Vault (`extra` goes into the destination's table).
async fn lambda(
    clouds: &Clouds,
    azure: &Azure,
    subject: &str,
    extra: &str,
) -> (LambdaApi, LambdaProcess) {
    let rules = "[[rules]]\nsource = \"main\"\nmatch = \"prod/**\"\ndestinations = [\"kv\"]\n";
    let destination = azure.vault_config("destinations.kv", "deploy", extra);
    clouds
        .function(&clouds.config_with_rules("", subject, &format!("{destination}\n{rules}")))
        .await
}

async fn deliver(api: &LambdaApi, event: Value) -> Value {
    let answer = api.invoke(event, TIMEOUT).await.expect_ok();
    answer["report"]["outcomes"][0].clone()
}

#[tokio::test]
async fn an_eventbridge_change_lands_in_key_vault_tagged_once_per_source_version() {
    let clouds = Clouds::start().await;
    let azure = azure(clouds.issuer.url(), SUBJECT).await;
    let (api, process) = lambda(&clouds, &azure, SUBJECT, "").await;
    for expected in ["synced", "unchanged"] {
        let o = deliver(&api, event("eventbridge-put-secret-value.json")).await;
        assert_eq!(
            (o["status"].as_str(), o["name"].as_str()),
            (Some(expected), Some(KV_NAME)),
            "{o:#}"
        );
    }
    let stored = azure.vault.secret(KV_NAME).unwrap();
    assert_eq!(stored.versions.len(), 1);
    assert_eq!(stored.versions[0].value, VALUE);
    let tags = azure.tags(KV_NAME);
    assert!(
        tags.contains(&("fedsync-source".into(), format!("main:{SECRET}"))),
        "{tags:?}"
    );
    assert!(
        tags.contains(&("fedsync-managed-by".into(), "fedsync".into())),
        "{tags:?}"
    );
    assert_eq!(azure.entra.successes(CLIENT), 1);
    assert!(!process.logs().contains(VALUE));
}

#[tokio::test]
async fn a_subject_differing_only_in_letter_case_is_refused_and_said_so() {
    let clouds = Clouds::start().await;
    let azure = azure(clouds.issuer.url(), SUBJECT).await;
    let (api, _process) = lambda(&clouds, &azure, &SUBJECT.to_uppercase(), "").await;
    let o = deliver(&api, event("eventbridge-put-secret-value.json")).await;
    assert_eq!(
        (o["status"].as_str(), o["class"].as_str()),
        (Some("failed"), Some("auth")),
        "{o:#}"
    );
    let message = o["message"].as_str().unwrap();
    assert!(
        message.contains("case-sensitive") && message.contains(&SUBJECT.to_uppercase()),
        "{message}"
    );
    assert!(azure.vault.secret(KV_NAME).is_none());
}

#[tokio::test]
async fn a_soft_deleted_name_is_refused_under_fail_and_recovered_under_recover() {
    let clouds = Clouds::start().await;
    let azure = azure(clouds.issuer.url(), SUBJECT).await;
    let (api, _p) = lambda(&clouds, &azure, SUBJECT, "").await;
    assert_eq!(
        deliver(&api, event("eventbridge-put-secret-value.json")).await["status"],
        "synced"
    );
    azure.vault.soft_delete(KV_NAME);
    clouds
        .moto
        .secrets_manager()
        .put_secret_value()
        .secret_id(SECRET)
        .secret_string(leaks::secret("second-value"))
        .send()
        .await
        .unwrap();

    let o = deliver(&api, event("eventbridge-put-secret-value.json")).await;
    assert_eq!(
        (o["status"].as_str(), o["class"].as_str()),
        (Some("failed"), Some("conflict")),
        "{o:#}"
    );
    let message = o["message"].as_str().unwrap();
    assert!(
        message.contains("soft-deleted") && message.contains("on_soft_deleted = \"recover\""),
        "{message}"
    );

    azure.vault.set_recovery_delay(Duration::from_millis(300));
    let (api, _p) = lambda(&clouds, &azure, SUBJECT, "on_soft_deleted = \"recover\"").await;
    let o = deliver(&api, event("eventbridge-put-secret-value.json")).await;
    assert_eq!(o["status"], "synced", "{o:#}");
    let stored = azure.vault.secret(KV_NAME).unwrap();
    assert_eq!(
        (
            stored.versions.len(),
            stored.versions.last().unwrap().value.as_str()
        ),
        (2, "second-value")
    );
}

#[tokio::test]
async fn a_name_collision_is_reported_and_nothing_is_overwritten() {
    let clouds = Clouds::start().await;
    let azure = azure(clouds.issuer.url(), SUBJECT).await;
    let (api, _p) = lambda(&clouds, &azure, SUBJECT, "").await;
    assert_eq!(
        deliver(&api, event("eventbridge-put-secret-value.json")).await["status"],
        "synced"
    );
    // "prod/app-db" sanitizes to the same Key Vault name as "prod/app/db".
    clouds
        .moto
        .secrets_manager()
        .create_secret()
        .name("prod/app-db")
        .secret_string(leaks::secret("another-value-of-prod-app-dash-db"))
        .send()
        .await
        .unwrap();
    let mut other = event("eventbridge-put-secret-value.json");
    other["detail"]["responseElements"] = Value::Null;
    other["detail"]["requestParameters"]["secretId"] = "prod/app-db".into();
    let o = deliver(&api, other).await;
    assert_eq!(
        (o["status"].as_str(), o["class"].as_str()),
        (Some("failed"), Some("conflict")),
        "{o:#}"
    );
    assert!(
        o["message"].as_str().unwrap().contains("name collision"),
        "{o:#}"
    );
    assert_eq!(
        azure.vault.latest(KV_NAME).unwrap().value,
        VALUE,
        "nothing overwritten"
    );
    assert_eq!(azure.vault.secret(KV_NAME).unwrap().versions.len(), 1);
}

#[tokio::test]
async fn a_pubsub_change_from_google_lands_in_key_vault() {
    let w = push_world().await;
    let azure = azure(w.google.issuer.url(), &w.google.metadata.unique_id()).await;
    let config = w.receiver_config.replace(
        "destinations = [\"aws-dr\", \"gcp-dr\"]",
        "destinations = [\"kv\"]",
    ) + &azure.vault_config("destinations.kv", "run", "");
    let receiver = Receiver::start("fedsync-pubsub-push", &[("FEDSYNC_CONFIG_TOML", config)]).await;
    let mut body = event("pubsub-secret-version-add.json");
    body["message"]["attributes"]["secretId"] =
        format!("projects/{}/secrets/{GOOGLE_SECRET}", SOURCE_PROJECT.1).into();
    let response = reqwest::Client::new()
        .post(format!("{}/", receiver.url()))
        .bearer_auth(w.good_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["report"]["outcomes"][0]["status"], "synced",
        "{answer:#}"
    );
    assert_eq!(azure.vault.latest(GOOGLE_SECRET).unwrap().value, VALUE);
    assert!(
        azure
            .tags(GOOGLE_SECRET)
            .contains(&("fedsync-source-version".into(), "1".into()))
    );
}

/// The webhook reading Key Vault (as fedsync's application) and writing to AWS and Google.
struct Webhook {
    clouds: Clouds,
    google: fedsync_tests::google::GoogleCloud,
    azure: Azure,
    receiver: Receiver,
}

async fn webhook() -> Webhook {
    let clouds = Clouds::start().await;
    let google = google().await;
    let azure = azure(clouds.issuer.url(), SUBJECT).await;
    azure.vault.set_secret(KV_NAME, &leaks::secret(VALUE), &[]);
    let provider = trust_writer(&google, clouds.issuer.url(), SUBJECT);
    let rules =
        "[[rules]]\nsource = \"kv\"\nmatch = \"*\"\ndestinations = [\"aws-dr\", \"gcp-dr\"]\n";
    let trigger = format!(
        "[triggers.event_grid]\ntenant_id = \"{TENANT}\"\naudience = \"{WEBHOOK_APP}\"\nauthority_host = \"{}\"\n",
        azure.entra.authority_host()
    );
    let config = format!(
        "{trigger}{}{}{}",
        clouds.config_with_rules("", SUBJECT, rules),
        azure.vault_config("sources.kv", "deploy", ""),
        google_destination(&google, &provider, "deploy", None)
    );
    // A container with no AWS credentials of its own: it reaches AWS by exchange only.
    let mut env = clouds.function_env(&config);
    env.retain(|(k, _)| !k.starts_with("AWS_"));
    let receiver = Receiver::start(
        "fedsync-webhook",
        &env.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>(),
    )
    .await;
    Webhook {
        clouds,
        google,
        azure,
        receiver,
    }
}

impl Webhook {
    /// Event Grid, delivering for the vault's subscription.
    fn grid(&self) -> EventGrid<'_> {
        EventGrid::new(&self.azure.entra, TENANT, "fedsync-kv")
    }

    async fn send(&self, delivery: event_grid::Delivery) -> (u16, Value) {
        let url = format!("{}/v1/azure/events", self.receiver.url());
        let response = delivery.send(&reqwest::Client::new(), &url).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn new_version(&self, schema: Schema) -> event_grid::Delivery {
        let version = self
            .azure
            .vault
            .last_new_version()
            .expect("a version was created");
        let event = self.grid().secret_new_version_created(&version, schema);
        self.grid()
            .notification(&[event], schema)
            .with_bearer(&self.grid().bearer_token(WEBHOOK_APP))
    }
}

#[tokio::test]
async fn an_event_grid_delivery_lands_the_key_vault_value_in_aws_and_google() {
    let w = webhook().await;
    for schema in [Schema::EventGrid, Schema::CloudEvents] {
        let (status, answer) = w.send(w.new_version(schema)).await;
        assert_eq!(status, 200, "{answer:#}");
        let mut statuses: Vec<_> = answer[0]["report"]["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["status"].as_str().unwrap().to_string())
            .collect();
        statuses.sort();
        let expected = if schema == Schema::EventGrid {
            ["synced", "synced"]
        } else {
            ["unchanged", "unchanged"]
        };
        assert_eq!(statuses, expected, "{answer:#}");
    }
    let aws = w
        .clouds
        .destination()
        .get_secret_value()
        .secret_id(KV_NAME)
        .send()
        .await
        .unwrap();
    assert_eq!(aws.secret_string(), Some(VALUE));
    let google = w
        .google
        .secret_manager
        .secret(DEST_PROJECT.0, KV_NAME)
        .unwrap();
    assert_eq!(
        google.latest().unwrap().data.as_deref(),
        Some(VALUE.as_bytes())
    );
    assert!(!w.receiver.logs().contains(VALUE));
}

#[tokio::test]
async fn validation_handshakes_are_answered_and_unauthenticated_deliveries_get_401() {
    let w = webhook().await;
    let (delivery, code) = w.grid().subscription_validation(
        "/subscriptions/x/resourceGroups/y/providers/Microsoft.KeyVault/vaults/prod-kv",
    );
    let (status, body) = w
        .send(
            delivery
                .clone()
                .with_bearer(&w.grid().bearer_token(WEBHOOK_APP)),
        )
        .await;
    assert!(
        event_grid::validation_accepted(status, &body, &code),
        "{status} {body}"
    );
    let handshake = w
        .grid()
        .cloudevents_validation()
        .with_bearer(&w.grid().bearer_token(WEBHOOK_APP));
    let response = handshake
        .send(
            &reqwest::Client::new(),
            &format!("{}/v1/azure/events", w.receiver.url()),
        )
        .await
        .unwrap();
    let origin = response
        .headers()
        .get("webhook-allowed-origin")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(event_grid::cloudevents_validation_accepted(
        response.status().as_u16(),
        origin.as_deref()
    ));

    let reads_before = w.azure.vault.calls(Operation::GetSecret);
    let version = w.azure.vault.last_new_version().unwrap();
    let body = w.grid().notification(
        &[w.grid()
            .secret_new_version_created(&version, Schema::EventGrid)],
        Schema::EventGrid,
    );
    let no_role = w
        .grid()
        .bearer_token_with(WEBHOOK_APP, |c| c["roles"] = serde_json::json!([]));
    let expired = w.grid().bearer_token_with(WEBHOOK_APP, |c| {
        c["exp"] = serde_json::json!(fedsync_tests::issuer::unix_now() - 600)
    });
    for (what, delivery) in [
        ("no token", body.clone()),
        ("validation without a token", delivery),
        ("no role", body.clone().with_bearer(&no_role)),
        ("expired", body.clone().with_bearer(&expired)),
        (
            "another application",
            body.clone().with_bearer(&w.grid().bearer_token(CLIENT)),
        ),
    ] {
        assert_eq!(w.send(delivery).await.0, 401, "{what}");
    }
    assert_eq!(
        w.azure.vault.calls(Operation::GetSecret),
        reads_before,
        "no store call"
    );
    assert!(w.clouds.sts.exchanges().is_empty());
}

#[tokio::test]
async fn the_workload_id_token_file_convention_needs_nothing_but_naming_the_file_identity() {
    let clouds = Clouds::start().await;
    let subject = "system:serviceaccount:fedsync:sync";
    let azure = azure(clouds.issuer.url(), subject).await;
    // What the Entra Workload ID webhook projects into a pod.
    let token = clouds.issuer.mint(&clouds.issuer.claims(
        subject,
        "api://AzureADTokenExchange",
        Duration::from_secs(3600),
    ));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, token).unwrap();
    let config = clouds.config_with_rules(
        "",
        SUBJECT,
        &format!(
            "[identities.pod]\nkind = \"file\"\npath = \"env:AZURE_FEDERATED_TOKEN_FILE\"\n\n[destinations.kv]\nkind = \"azure-key-vault\"\nvault_url = \"{}\"\nidentity = \"pod\"\n\n[[rules]]\nsource = \"main\"\nmatch = \"prod/**\"\ndestinations = [\"kv\"]\n",
            azure.vault.url()
        ),
    );
    let api = LambdaApi::start().await;
    let mut env = clouds.function_env(&config);
    env.extend([
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("AZURE_CLIENT_ID", CLIENT.to_string()),
        ("AZURE_TENANT_ID", TENANT.to_string()),
        (
            "AZURE_AUTHORITY_HOST",
            azure.entra.authority_host().to_string(),
        ),
    ]);
    let _process = LambdaProcess::spawn(
        &fedsync_tests::lambda_api::workspace_binary("fedsync-eventbridge"),
        &api,
        env,
    );
    let o = deliver(&api, event("eventbridge-put-secret-value.json")).await;
    assert_eq!(o["status"], "synced", "{o:#}");
    assert_eq!(azure.vault.latest(KV_NAME).unwrap().value, VALUE);
}

#[tokio::test]
async fn a_throttled_write_is_retried_after_the_wait_key_vault_asks_for() {
    let clouds = Clouds::start().await;
    let azure = azure(clouds.issuer.url(), SUBJECT).await;
    let (api, process) = lambda(&clouds, &azure, SUBJECT, "").await;
    azure.vault.fail_next(
        1,
        fedsync_tests::azure::key_vault::KvError::throttled(Duration::from_secs(1)),
    );
    let o = deliver(&api, event("eventbridge-put-secret-value.json")).await;
    assert_eq!(o["status"], "synced", "{o:#}");
    assert_eq!(azure.vault.secret(KV_NAME).unwrap().versions.len(), 1);
    let logs = process.logs();
    let retry = logs
        .lines()
        .find(|l| l.contains("retrying after a transient failure"))
        .unwrap_or_else(|| panic!("no retry logged: {logs}"));
    let retry: serde_json::Value = serde_json::from_str(retry).unwrap();
    assert_eq!(retry["class"], "throttled", "{retry}");
    assert!(retry["wait_ms"].as_u64().unwrap() >= 1000, "{retry}");
    // The call is named by method and path, never its query.
    let call = retry["call"].as_str().unwrap();
    assert!(call.ends_with(&format!(" /secrets/{KV_NAME}")), "{retry}");
}

#[tokio::test]
async fn retries_stop_before_the_lambda_deadline_and_the_invocation_asks_for_a_retry() {
    let clouds = Clouds::start().await;
    let azure = azure(clouds.issuer.url(), SUBJECT).await;
    let (api, process) = lambda(&clouds, &azure, SUBJECT, "").await;
    // Key Vault throttles every request, asking for a second each time.
    azure.vault.fail_next(
        1000,
        fedsync_tests::azure::key_vault::KvError::throttled(Duration::from_secs(1)),
    );
    let timeout = Duration::from_secs(4);
    let started = std::time::Instant::now();
    let answer = api
        .invoke(event("eventbridge-put-secret-value.json"), timeout)
        .await;
    let elapsed = started.elapsed();
    // An answer (Lambda retries a failed invocation), not a timeout.
    let (_, message) = answer.expect_error();
    assert!(elapsed < timeout, "answered after {elapsed:?}");
    assert!(message.contains("(HTTP 429)"), "{message}");
    let logs = process.logs();
    assert!(
        logs.contains("retrying after a transient failure"),
        "retried while there was time: {logs}"
    );
    assert!(
        logs.contains("not retrying: the wait would pass the invocation's deadline"),
        "{logs}"
    );
    azure.vault.clear_faults();
    let o = deliver(&api, event("eventbridge-put-secret-value.json")).await;
    assert_eq!(o["status"], "synced", "{o:#}");
}
