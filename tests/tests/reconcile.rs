//! The reconcile pass against real servers: Secrets Manager in moto as the
//! source, and AWS (through the validating STS front), Google and Azure as
//! destinations. Changes are delivered to the real Lambda with a tenth of
//! their events dropped; one scheduled pass (`{"fedsync": "reconcile"}` given to
//! the same Lambda) brings every destination to the source's latest value.
//! Then destinations are edited out of band: `fedsync reconcile` reports the
//! drift under `on_drift = "report"` and leaves it, repairs it under
//! `"repair"`, and finds a value changed under copied marks by the value hash.

use fedsync_tests::azure::world::Azure;
use fedsync_tests::cli::fedsync;
use fedsync_tests::clouds::{Clouds, SUBJECT, event};
use fedsync_tests::google::{GoogleCloud, Principal, SecretManagerRole};
use fedsync_tests::google_world::{DEST_PROJECT, POOL, google, google_destination, trust};
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
    let provider = trust(
        &google,
        clouds.issuer.url(),
        &format!("assertion.sub == '{SUBJECT}'"),
    );
    let federated = Principal::federated(DEST_PROJECT.1, POOL, SUBJECT).member();
    google
        .secret_manager
        .grant(DEST_PROJECT.0, &federated, SecretManagerRole::Admin);
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
        let sm = self.clouds.moto.secrets_manager();
        let v = secret(value(name, change));
        if change == 0 {
            sm.create_secret()
                .name(name)
                .secret_string(v)
                .send()
                .await
                .unwrap();
        } else {
            sm.put_secret_value()
                .secret_id(name)
                .secret_string(v)
                .send()
                .await
                .unwrap();
        }
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
