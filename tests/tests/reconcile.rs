//! The reconcile pass against real servers: Secrets Manager in moto as the
//! source, and AWS (through the validating STS front), Google and Azure as
//! destinations. Changes are delivered to the real Lambda with a tenth of
//! their events dropped; one scheduled pass (`{"fedsync": "reconcile"}` given to
//! the same Lambda) brings every destination to the source's latest value.
//! Then destinations are edited out of band: `fedsync reconcile` reports the
//! drift under `on_drift = "report"` and leaves it, repairs it under
//! `"repair"`, and finds a value changed under copied marks by the value hash.
//! Google and Key Vault are sources too: the push receiver's `POST /reconcile`
//! (Cloud Scheduler's call) lists a Google project, and `fedsync reconcile
//! --source` walks a Key Vault page by page.

use fedsync_tests::azure::world::Azure;
use fedsync_tests::cli::fedsync;
use fedsync_tests::clouds::{Clouds, SUBJECT, event};
use fedsync_tests::google::{GoogleCloud, INSTANCE_SERVICE_ACCOUNT, Principal, SecretManagerRole};
use fedsync_tests::google_world::{
    DEST_PROJECT, SOURCE_PROJECT, google, google_destination, push_world, trust_writer,
};
use fedsync_tests::lambda_api::workspace_binary;
use fedsync_tests::leaks::secret;
use fedsync_tests::moto::credentials_env;
use serde_json::{Value, json};
use std::time::Duration;

const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// The value key of the marks (32 bytes and more).
const VALUE_KEY: &str = "reconcile-test-value-key-0123456789abcdef";
/// Secrets per rule, and changes per secret.
const SECRETS: usize = 10;
const CHANGES: usize = 3;

struct World {
    clouds: Clouds,
    google: GoogleCloud,
    azure: Azure,
    config: String,
}

async fn world() -> World {
    let clouds = Clouds::start().await;
    let google = google().await;
    let azure = Azure::start().await;
    let provider = trust_writer(&google, clouds.issuer.url(), SUBJECT);
    azure.trust(clouds.issuer.url(), SUBJECT);
    let rules = r#"
[[rules]]
source = "main"
match = "mended-*"
destinations = ["aws-dr", "gcp-dr", "kv"]
on_drift = "repair"

[[rules]]
source = "main"
match = "watched-*"
destinations = ["aws-dr", "gcp-dr", "kv"]

[reconcile]
value_key = "env:FEDSYNC_VALUE_KEY"
requests_per_second = 200
"#;
    let config = format!(
        "{}{}{}",
        clouds.config_with_rules("", SUBJECT, rules),
        google_destination(&google, &provider, "deploy", None),
        azure.vault_config("destinations.kv", "deploy", ""),
    );
    World {
        clouds,
        google,
        azure,
        config,
    }
}

fn value(name: &str, change: usize) -> String {
    format!("{name}-change-{change}-4d1c9e0b7a")
}

impl World {
    fn names() -> Vec<String> {
        (0..SECRETS)
            .flat_map(|i| [format!("mended-{i:02}"), format!("watched-{i:02}")])
            .collect()
    }

    async fn put_source(&self, name: &str, change: usize) {
        let v = secret(value(name, change));
        self.clouds.set_source(name, v, change == 0).await;
    }

    /// What each destination holds for `name` (every name here is valid everywhere).
    async fn landed(&self, name: &str) -> [Option<String>; 3] {
        let aws = self.clouds.written(name).await;
        let gcp = self
            .google
            .secret_manager
            .secret(DEST_PROJECT.0, name)
            .and_then(|s| s.latest().and_then(|v| v.data.clone()))
            .map(|d| String::from_utf8(d).unwrap());
        let azure = self.azure.vault.latest(name).map(|v| v.value);
        [aws, gcp, azure]
    }

    async fn reconcile_cli(&self) -> (i32, Value) {
        let mut env = credentials_env(&self.clouds.reader);
        env.extend([
            ("AWS_REGION", "us-east-1".to_string()),
            ("FEDSYNC_VALUE_KEY", VALUE_KEY.to_string()),
            (
                "FEDSYNC_SIGNING_KEY",
                self.clouds.issuer.rsa().private_key_pem().to_string(),
            ),
        ]);
        let out = fedsync(&["reconcile", "--json"], &self.config, &env).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap_or(-1), report)
    }
}

fn put_event(name: &str) -> Value {
    let mut e = event("eventbridge-put-secret-value.json");
    e["detail"]["responseElements"] = Value::Null;
    e["detail"]["requestParameters"]["secretId"] = name.into();
    e
}

/// The outcomes of `destination` for `name` in a reconcile report.
fn outcome<'a>(report: &'a Value, name: &str, destination: &str) -> Option<&'a Value> {
    report["secrets"]
        .as_array()?
        .iter()
        .filter(|s| s["secret"] == name)
        .flat_map(|s| s["outcomes"].as_array().into_iter().flatten())
        .find(|o| o["destination"] == destination)
}

#[tokio::test]
async fn one_pass_recovers_dropped_events_and_drift_is_reported_or_repaired_per_rule() {
    let w = world().await;
    let mut env = w.clouds.function_env(&w.config);
    env.push(("FEDSYNC_VALUE_KEY", VALUE_KEY.to_string()));
    let api = fedsync_tests::lambda_api::LambdaApi::start().await;
    let _function = fedsync_tests::lambda_api::LambdaProcess::spawn(
        &workspace_binary("fedsync-eventbridge"),
        &api,
        env,
    );

    // Every change is made at the source; the event of every tenth is lost.
    let names = World::names();
    let mut dropped = 0;
    let mut behind = vec![];
    for change in 0..CHANGES {
        for (i, name) in names.iter().enumerate() {
            w.put_source(name, change).await;
            // Two names a round, different ones each round.
            if (i * 7 + change * 13) % 10 == 3 {
                dropped += 1;
                if change == CHANGES - 1 {
                    behind.push(name.clone());
                }
                continue;
            }
            api.invoke(put_event(name), INVOKE_TIMEOUT)
                .await
                .expect_ok();
        }
    }
    assert_eq!(dropped, CHANGES * names.len() / 10);
    assert!(!behind.is_empty());
    for name in &behind {
        let latest = Some(value(name, CHANGES - 1));
        let landed = w.landed(name).await;
        assert!(
            landed.iter().all(|l| *l != latest),
            "{name}: the last change's event was dropped, yet {landed:?}"
        );
    }

    // One scheduled pass.
    let report = api
        .invoke(json!({"fedsync": "reconcile"}), INVOKE_TIMEOUT)
        .await
        .expect_ok();
    assert_eq!(report["complete"], true, "{report:#}");
    assert_eq!(report["sources"][0]["covered"], names.len(), "{report:#}");
    assert_eq!(report["totals"]["synced"], 3 * behind.len(), "{report:#}");
    assert_eq!(report["totals"]["failed"], 0, "{report:#}");
    for name in &names {
        let latest = Some(value(name, CHANGES - 1));
        assert_eq!(
            w.landed(name).await,
            [latest.clone(), latest.clone(), latest],
            "{name}"
        );
    }

    // Out-of-band edits at every destination of one secret per rule.
    for name in ["mended-03", "watched-03"] {
        w.clouds
            .destination()
            .put_secret_value()
            .secret_id(name)
            .secret_string(secret(format!("{name}-edited-in-aws-5e2a")))
            .send()
            .await
            .unwrap();
        w.google.secret_manager.add_version(
            DEST_PROJECT.0,
            name,
            secret(format!("{name}-edited-in-gcp-5e2a")).as_bytes(),
        );
        w.azure
            .vault
            .set_secret(name, &secret(format!("{name}-edited-in-kv-5e2a")), &[]);
    }
    // And a value changed under marks copied from fedsync's version.
    let copied = w.azure.tags("watched-05");
    let copied: Vec<(&str, &str)> = copied
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    w.azure.vault.set_secret(
        "watched-05",
        &secret("watched-05-under-copied-marks-5e2a"),
        &copied,
    );

    let (code, report) = w.reconcile_cli().await;
    assert_eq!(code, 3, "unrepaired drift exits 3: {report:#}");
    for destination in ["aws-dr", "gcp-dr", "kv"] {
        let watched = outcome(&report, "watched-03", destination).unwrap();
        assert_eq!(watched["status"], "drift", "{watched:#}");
        assert_eq!(watched["repaired"], false, "{watched:#}");
        let mended = outcome(&report, "mended-03", destination).unwrap();
        assert_eq!(mended["status"], "drift", "{mended:#}");
        assert_eq!(mended["repaired"], true, "{mended:#}");
    }
    let hashed = outcome(&report, "watched-05", "kv").unwrap();
    assert_eq!(hashed["status"], "drift", "{hashed:#}");
    assert!(
        hashed["reason"].as_str().unwrap().contains("value hash"),
        "{hashed:#}"
    );
    assert_eq!(report["totals"]["drift_reported"], 4, "{report:#}");
    assert_eq!(report["totals"]["drift_repaired"], 3, "{report:#}");
    let latest = Some(value("mended-03", CHANGES - 1));
    assert_eq!(
        w.landed("mended-03").await,
        [latest.clone(), latest.clone(), latest],
        "repaired"
    );
    let left = w.landed("watched-03").await;
    assert_eq!(
        left[0].as_deref(),
        Some("watched-03-edited-in-aws-5e2a"),
        "reported, left as it is"
    );
    assert_eq!(left[2].as_deref(), Some("watched-03-edited-in-kv-5e2a"));
    assert!(
        !report.to_string().contains("5e2a"),
        "no value in the report: {report:#}"
    );

    // The repaired copies stay repaired; the reported drift stays reported.
    let (code, report) = w.reconcile_cli().await;
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["totals"]["drift_reported"], 4, "{report:#}");
    assert_eq!(report["totals"]["drift_repaired"], 0, "{report:#}");
    assert_eq!(report["totals"]["synced"], 0, "{report:#}");
}

/// `POST /reconcile` to the push receiver as Cloud Scheduler sends it.
async fn scheduled(receiver: &str, token: Option<String>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{receiver}/reconcile"))
        .json(&json!({"fedsync": "reconcile"}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_push_receiver_reconciles_a_google_source_on_schedule() {
    let w = push_world().await;
    let sm = &w.google.secret_manager;
    let names: Vec<String> = (0..12).map(|i| format!("svc-{i:02}")).collect();
    for name in &names {
        sm.create_secret(SOURCE_PROJECT.0, name, &[], &[]);
        sm.add_version(SOURCE_PROJECT.0, name, secret(value(name, 0)).as_bytes());
    }
    let receiver = w.receiver.url();

    let (status, _) = scheduled(receiver, None).await;
    assert_eq!(
        status, 401,
        "a pass is asked for with Cloud Scheduler's token"
    );

    // The runtime may read versions (secretAccessor) but not list secrets.
    let (status, report) = scheduled(receiver, Some(w.good_token())).await;
    assert_eq!(status, 500, "a pass that could not list fails: {report:#}");
    assert_eq!(report["complete"], false, "{report:#}");
    let error = report["sources"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("secretmanager.secrets.list"),
        "the missing permission is named: {report:#}"
    );

    let runtime = Principal::service_account(INSTANCE_SERVICE_ACCOUNT).member();
    sm.grant(SOURCE_PROJECT.0, &runtime, SecretManagerRole::Viewer);
    let (status, report) = scheduled(receiver, Some(w.good_token())).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(report["complete"], true, "{report:#}");
    // The world's own secret and the twelve.
    let listed = names.len() + 1;
    assert_eq!(report["sources"][0]["listed"], listed, "{report:#}");
    assert_eq!(report["sources"][0]["covered"], listed, "{report:#}");
    assert_eq!(report["totals"]["synced"], 2 * listed, "{report:#}");
    assert_eq!(report["totals"]["failed"], 0, "{report:#}");
    for name in &names {
        let expected = value(name, 0);
        assert_eq!(
            w.clouds.written(name).await,
            Some(expected.clone()),
            "{name}"
        );
        let copied = sm
            .secret(DEST_PROJECT.0, name)
            .and_then(|s| s.latest().and_then(|v| v.data.clone()));
        assert_eq!(copied, Some(expected.into_bytes()), "{name}");
    }

    let (status, report) = scheduled(receiver, Some(w.good_token())).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(report["totals"]["unchanged"], 2 * listed, "{report:#}");
    assert_eq!(report["totals"]["synced"], 0, "{report:#}");
}

#[tokio::test]
async fn fedsync_reconcile_walks_a_key_vault_source_page_by_page() {
    let clouds = Clouds::start().await;
    let google = google().await;
    let azure = Azure::start().await;
    azure.trust(clouds.issuer.url(), SUBJECT);
    let provider = trust_writer(&google, clouds.issuer.url(), SUBJECT);
    // Key Vault lists at most 25 secrets a page.
    let names: Vec<String> = (0..30).map(|i| format!("kv-{i:02}")).collect();
    for name in &names {
        azure.vault.set_secret(name, &secret(value(name, 0)), &[]);
    }
    azure
        .vault
        .set_secret("other-team", &secret(value("other-team", 0)), &[]);
    let rules =
        "[[rules]]\nsource = \"kv\"\nmatch = \"kv-*\"\ndestinations = [\"aws-dr\", \"gcp-dr\"]\n";
    let config = format!(
        "{}{}{}",
        clouds.config_with_rules("", SUBJECT, rules),
        azure.vault_config("sources.kv", "deploy", ""),
        google_destination(&google, &provider, "deploy", None)
    );
    // No AWS credentials of its own: it reaches AWS by exchange only.
    let mut env = clouds.function_env("");
    env.retain(|(k, _)| !k.starts_with("AWS_") && *k != "FEDSYNC_CONFIG_TOML");

    let out = fedsync(&["reconcile", "--source", "kv", "--json"], &config, &env).await;
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["sources"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(report["sources"][0]["source"], "kv", "{report:#}");
    assert_eq!(report["sources"][0]["pages"], 2, "{report:#}");
    assert_eq!(
        report["sources"][0]["listed"],
        names.len() + 1,
        "{report:#}"
    );
    assert_eq!(report["sources"][0]["covered"], names.len(), "{report:#}");
    assert_eq!(report["totals"]["synced"], 2 * names.len(), "{report:#}");
    for name in &names {
        let expected = value(name, 0);
        assert_eq!(clouds.written(name).await, Some(expected.clone()), "{name}");
        let copied = google
            .secret_manager
            .secret(DEST_PROJECT.0, name)
            .and_then(|s| s.latest().and_then(|v| v.data.clone()));
        assert_eq!(copied, Some(expected.into_bytes()), "{name}");
    }
    assert!(clouds.written("other-team").await.is_none());
}
