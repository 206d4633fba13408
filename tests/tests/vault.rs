//! Vault/OpenBao as a source, with a real OpenBao dev server: fedsync logs in
//! with JWT auth using its own signed token (verified by OpenBao through the
//! issuer's discovery document), reads KV v2, and syncs to AWS when told by a
//! signed notice.

use fedsync_tests::clouds::{Clouds, SUBJECT};
use fedsync_tests::issuer::unix_now;
use fedsync_tests::leaks;
use fedsync_tests::notice;
use fedsync_tests::openbao::OpenBao;
use fedsync_tests::receiver::Receiver;
use serde_json::{Value, json};

const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const PASSWORD: &str = "vault-held-Pa55word-never-logged";

async fn notify(receiver: &Receiver, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let headers = notice::signed_headers(KEY, unix_now(), &body);
    notice::post(&format!("{}/v1/notify", receiver.url()), &body, &headers).await
}

async fn world(granularity: &str) -> (Clouds, OpenBao, Receiver) {
    let clouds = Clouds::start().await;
    let bao = OpenBao::start().await;
    bao.trust_jwt(clouds.issuer.url(), "fedsync", "vault", SUBJECT)
        .await;
    bao.put(
        "app/db",
        leaks::secret_json(json!({"user": "app", "password": PASSWORD})),
    )
    .await;
    let rules = format!(
        "[[rules]]\nsource = \"vault\"\nmatch = \"app/**\"\ndestinations = [\"aws-dr\"]\n{granularity}\n\n[sources.vault]\nkind = \"vault-kv\"\naddress = \"{}\"\nlogin = {{ role = \"fedsync\", identity = \"deploy\" }}\n\n[triggers.notify]\nhmac_secret = \"env:FEDSYNC_NOTIFY_SECRET\"\n",
        bao.address()
    );
    let config = clouds.config_with_rules("", SUBJECT, &rules);
    let mut env = clouds.function_env(&config);
    env.retain(|(k, _)| !k.starts_with("AWS_"));
    env.push(("FEDSYNC_NOTIFY_SECRET", KEY.to_string()));
    let receiver = Receiver::start("fedsync-webhook", &env).await;
    (clouds, bao, receiver)
}

#[tokio::test]
async fn a_vault_secret_reaches_aws_through_a_jwt_login() {
    let (clouds, bao, receiver) = world("").await;
    let (status, answer) = notify(&receiver, &json!({"source": "vault", "secret": "app/db"})).await;
    assert_eq!(
        (status, answer["report"]["outcomes"][0]["status"].as_str()),
        (200, Some("synced")),
        "{answer:#}"
    );
    assert_eq!(answer["report"]["source_version"], "1");
    let written = clouds
        .destination()
        .get_secret_value()
        .secret_id("app/db")
        .send()
        .await
        .unwrap();
    let value: Value = serde_json::from_str(written.secret_string().unwrap()).unwrap();
    assert_eq!(value, json!({"user": "app", "password": PASSWORD}));

    let version = bao
        .put(
            "app/db",
            leaks::secret_json(json!({"user": "app", "password": "rotated-Pa55word-never-logged"})),
        )
        .await;
    // The notice of the new version (an identical notice within the same second
    // would be a replay, and do nothing).
    let notice = json!({"source": "vault", "secret": "app/db", "version": version.to_string()});
    let (_, answer) = notify(&receiver, &notice).await;
    assert_eq!(
        (
            answer["report"]["outcomes"][0]["status"].as_str(),
            answer["report"]["source_version"].as_str()
        ),
        (Some("synced"), Some("2"))
    );
    assert!(!receiver.logs().contains(PASSWORD));
}

#[tokio::test]
async fn key_granularity_fans_one_vault_secret_out_per_key() {
    let (clouds, _bao, receiver) = world("granularity = \"key\"\nname = \"{name}/{key}\"").await;
    let (status, answer) = notify(&receiver, &json!({"source": "vault", "secret": "app/db"})).await;
    assert_eq!(status, 200, "{answer:#}");
    for (name, value) in [("app/db/user", "app"), ("app/db/password", PASSWORD)] {
        let written = clouds
            .destination()
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .unwrap();
        assert_eq!(written.secret_string(), Some(value));
    }
}

#[tokio::test]
async fn a_login_vault_refuses_is_explained() {
    let clouds = Clouds::start().await;
    let bao = OpenBao::start().await;
    bao.trust_jwt(
        clouds.issuer.url(),
        "fedsync",
        "vault",
        "fedsync:someone-else",
    )
    .await;
    bao.put("app/db", leaks::secret_json(json!({"password": PASSWORD})))
        .await;
    let rules = format!(
        "[[rules]]\nsource = \"vault\"\nmatch = \"app/**\"\ndestinations = [\"aws-dr\"]\n\n[sources.vault]\nkind = \"vault-kv\"\naddress = \"{}\"\nlogin = {{ role = \"fedsync\", identity = \"deploy\" }}\n\n[triggers.notify]\nhmac_secret = \"env:FEDSYNC_NOTIFY_SECRET\"\n",
        bao.address()
    );
    let mut env = clouds.function_env(&clouds.config_with_rules("", SUBJECT, &rules));
    env.push(("FEDSYNC_NOTIFY_SECRET", KEY.to_string()));
    let receiver = Receiver::start("fedsync-webhook", &env).await;
    let (_, answer) = notify(&receiver, &json!({"source": "vault", "secret": "app/db"})).await;
    let error = &answer["report"]["error"];
    assert_eq!(error["class"], "auth", "{answer:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("Vault JWT login") && message.contains(&format!("subject \"{SUBJECT}\"")),
        "{message}"
    );
    assert!(
        clouds
            .destination()
            .describe_secret()
            .secret_id("app/db")
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_reconcile_pass_walks_every_folder_of_the_mount() {
    let (clouds, bao, _receiver) = world("").await;
    for path in ["app/a/one", "app/a/two", "app/b/c/deep", "ops/elsewhere"] {
        bao.put(
            path,
            leaks::secret_json(json!({"value": format!("{path}-Pa55-never-logged")})),
        )
        .await;
    }
    let rules = format!(
        "[[rules]]\nsource = \"vault\"\nmatch = \"app/**\"\ndestinations = [\"aws-dr\"]\n\n[sources.vault]\nkind = \"vault-kv\"\naddress = \"{}\"\nlogin = {{ role = \"fedsync\", identity = \"deploy\" }}\n",
        bao.address()
    );
    let mut env = clouds.function_env("");
    env.retain(|(k, _)| !k.starts_with("AWS_") && *k != "FEDSYNC_CONFIG_TOML");
    let config = clouds.config_with_rules("", SUBJECT, &rules);
    let out = fedsync_tests::cli::fedsync(&["reconcile", "--json"], &config, &env).await;
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{report:#}");
    // The root, app/, app/a/, app/b/, app/b/c/ and ops/: one page per folder.
    assert_eq!(report["sources"][0]["pages"], 6, "{report:#}");
    assert_eq!(report["sources"][0]["listed"], 5, "{report:#}");
    assert_eq!(report["sources"][0]["covered"], 4, "{report:#}");
    assert_eq!(report["totals"]["synced"], 4, "{report:#}");
    for name in ["app/db", "app/a/one", "app/a/two", "app/b/c/deep"] {
        assert!(clouds.written(name).await.is_some(), "{name}");
    }
    assert!(clouds.written("ops/elsewhere").await.is_none());
}
