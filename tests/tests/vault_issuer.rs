//! Vault as the issuer the clouds trust, end to end with real software on both
//! ends. A real OpenBao holds the secrets and mints fedsync's tokens
//! (`identity/oidc/token/:role`); the webhook logs in to it with JWT auth,
//! learns of changes through OpenBao's socket audit device, a Vault event or a
//! notice, and writes to AWS (moto, behind the validating STS front), Google and
//! Azure (the emulators). Those trust nothing but OpenBao's issuer, and verify
//! its tokens through OpenBao's own discovery document and JWKS.

use fedsync_tests::azure::world::Azure;
use fedsync_tests::clouds::{Clouds, SUBJECT};
use fedsync_tests::google::{GoogleCloud, WorkloadIdentityProvider};
use fedsync_tests::google_world::{
    DEST_PROJECT, POOL, PROVIDER, google, google_destination, trust_writer,
};
use fedsync_tests::issuer::unix_now;
use fedsync_tests::leaks;
use fedsync_tests::moto::free_port;
use fedsync_tests::notice;
use fedsync_tests::openbao::{OpenBao, kv_event};
use fedsync_tests::receiver::Receiver;
use fedsync_tests::sts_front::RoleTrust;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const KEY: &str = "8e2b7c1d9f3a4e5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091";
const RELAY_AUD: &str = "fedsync-webhook";
const RELAY: &str = "ci:vault-relay";
const PASSWORD: &str = "bao-held-Pa55word-never-logged-42";
/// How the destinations name `app/db` (Google and Key Vault take no `/`).
const NAMES: (&str, &str, &str) = ("app/db", "app-db", "app-db");

struct World {
    clouds: Clouds,
    google: GoogleCloud,
    azure: Azure,
    bao: OpenBao,
    receiver: Receiver,
    /// The entity OpenBao's tokens name as `sub`.
    entity: String,
}

/// The world; with `stream`, OpenBao's socket audit device streams to the receiver.
async fn world(stream: bool) -> World {
    let clouds = Clouds::start().await;
    let google = google().await;
    let azure = Azure::start().await;
    // OpenBao tests its audit devices as it starts: the receiver listens first.
    let audit = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let bao_port = OpenBao::free_port();
    let bao_address = format!("http://127.0.0.1:{bao_port}");
    let issuer = format!("{bao_address}/v1/identity/oidc");
    let provider = WorkloadIdentityProvider::new(DEST_PROJECT.1, POOL, PROVIDER, &issuer).name();
    let google_audience = format!("https:{provider}");

    let vault_identity = |name: &str, role: &str| {
        format!(
            "\n[identities.{name}]\nkind = \"vault-oidc\"\naddress = \"{}\"\nrole = \"{role}\"\nlogin = {{ role = \"fedsync\", identity = \"deploy\" }}\n",
            bao_address
        )
    };
    let rules = format!(
        "[[rules]]\nsource = \"vault\"\nmatch = \"app/**\"\ndestinations = [\"aws-dr\", \"gcp-dr\", \"kv\"]\n\n[sources.vault]\nkind = \"vault-kv\"\naddress = \"{address}\"\nlogin = {{ role = \"fedsync\", identity = \"deploy\" }}\n{audit_trigger}\n[triggers.notify]\nhmac_secret = \"env:FEDSYNC_NOTIFY_SECRET\"\n[[triggers.notify.issuers]]\nissuer = \"{relay_issuer}\"\naudience = \"{RELAY_AUD}\"\nsubjects = [\"{RELAY}\"]\n",
        address = bao_address,
        audit_trigger = if stream {
            format!("\n[triggers.vault_audit]\nlisten = \"{audit}\"\nsource = \"vault\"\n")
        } else {
            String::new()
        },
        relay_issuer = clouds.issuer.url(),
    );
    let config = format!(
        "{}{}{}{}{}{}",
        clouds.config_with_rules("", SUBJECT, &rules).replace(
            "identity = \"deploy\"\nendpoint",
            "identity = \"bao-aws\"\nendpoint"
        ),
        vault_identity("bao-aws", "aws"),
        vault_identity("bao-gcp", "gcp"),
        vault_identity("bao-azure", "azure"),
        google_destination(&google, &provider, "bao-gcp", None),
        azure.vault_config("destinations.kv", "bao-azure", ""),
    );
    assert!(config.contains("identity = \"bao-aws\""), "{config}");
    // A container with no cloud credentials at all.
    let mut env = clouds.function_env(&config);
    env.retain(|(k, _)| !k.starts_with("AWS_"));
    env.push(("FEDSYNC_NOTIFY_SECRET", KEY.to_string()));
    let receiver = Receiver::start("fedsync-webhook", &env).await;

    let bao = OpenBao::start_on(bao_port, stream.then_some(audit)).await;
    assert_eq!(bao.oidc_issuer(), issuer);
    // fedsync logs in to OpenBao with its own signed token...
    bao.trust_jwt(clouds.issuer.url(), "fedsync", "vault", SUBJECT)
        .await;
    let login = clouds.issuer.mint(&clouds.issuer.claims(
        SUBJECT,
        "vault",
        Duration::from_secs(300),
    ));
    let entity = bao.login_entity("fedsync", &login).await;
    // ...and the clouds trust OpenBao's tokens for that entity, and nothing else.
    clouds.sts.trust_issuer(&issuer);
    clouds.sts.trust_role(
        &clouds.writer_role,
        RoleTrust {
            issuer: issuer.clone(),
            audience: "sts.amazonaws.com".into(),
            subject: entity.clone(),
        },
    );
    trust_writer(&google, &issuer, &entity);
    azure.trust(&issuer, &entity);
    bao.issue_oidc(&[
        ("aws", "sts.amazonaws.com"),
        ("gcp", &google_audience),
        ("azure", "api://AzureADTokenExchange"),
    ])
    .await;
    World {
        clouds,
        google,
        azure,
        bao,
        receiver,
        entity,
    }
}

impl World {
    /// The value each destination holds for the secret named `names` there.
    async fn landed(
        &self,
        names: (&str, &str, &str),
    ) -> (Option<String>, Option<String>, Option<String>) {
        let aws = self.clouds.written(names.0).await;
        let gcp = self
            .google
            .secret_manager
            .secret(DEST_PROJECT.0, names.1)
            .and_then(|s| s.latest().and_then(|v| v.data.clone()))
            .map(|d| String::from_utf8(d).unwrap());
        let azure = self.azure.vault.latest(names.2).map(|v| v.value);
        (aws, gcp, azure)
    }

    /// Waits until every destination holds `value` (the audit stream is asynchronous).
    async fn wait_for(&self, names: (&str, &str, &str), value: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let want = Some(value.to_string());
        loop {
            let landed = self.landed(names).await;
            if landed == (want.clone(), want.clone(), want.clone()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not everywhere yet: {landed:?}; logs:\n{}",
                self.receiver.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn post(&self, path: &str, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
        notice::post(&format!("{}{path}", self.receiver.url()), body, headers).await
    }

    /// POSTs a signed Vault event that must be refused with 400; the reason given.
    async fn refused_event(&self, body: &str) -> String {
        let headers = notice::signed_headers(KEY, unix_now(), body);
        let (status, answer) = self.post("/v1/vault/events", body, &headers).await;
        assert_eq!(status, 400, "{answer:#}");
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn relay_token(&self, audience: &str, ttl: Duration) -> String {
        self.clouds
            .issuer
            .mint(&self.clouds.issuer.claims(RELAY, audience, ttl))
    }
}

#[tokio::test]
async fn a_kv_write_streams_through_the_audit_device_to_all_three_clouds_on_openbao_tokens() {
    let w = world(true).await;
    let first = leaks::secret_json(json!({"user": "app", "password": PASSWORD}));
    w.bao.put("app/db", first.clone()).await;
    w.wait_for(NAMES, &first.to_string()).await;

    // Every exchange presented an OpenBao token for the entity fedsync logged in as.
    let aws = w.clouds.sts.exchanges();
    assert!(
        !aws.is_empty() && aws.iter().all(|e| e.outcome.is_ok()),
        "{aws:?}"
    );
    let google = w.google.sts.exchanges();
    assert!(
        !google.is_empty()
            && google
                .iter()
                .all(|e| e.outcome.as_ref().is_ok_and(|p| p.ends_with(&w.entity))),
        "{google:?}"
    );
    assert!(!w.azure.entra.issued_tokens().is_empty());

    // The stream goes on: the next version lands too, with no new exchange.
    let second =
        leaks::secret_json(json!({"user": "app", "password": "rotated-by-bao-never-logged"}));
    let version = w.bao.put("app/db", second.clone()).await;
    assert_eq!(version, 2);
    w.wait_for(NAMES, &second.to_string()).await;
    assert_eq!(
        w.clouds.sts.exchanges().len(),
        aws.len(),
        "credentials are cached"
    );

    // A burst of writes to one secret collapses: one sync runs, the rest wait as one.
    let mut last = Value::Null;
    for i in 0..20 {
        last = leaks::secret_json(
            json!({"user": "app", "password": format!("burst-{i}-never-logged")}),
        );
        w.bao.put("app/db", last.clone()).await;
    }
    w.wait_for(NAMES, &last.to_string()).await;
    let versions = w.clouds.versions(NAMES.0).await;
    assert!(versions <= 2 + 4, "{versions} versions for 2 + 20 writes");

    // Reads, logins and writes elsewhere are ignored: nothing else was synced.
    let logs = w.receiver.logs();
    assert_eq!(
        logs.matches("change received from the audit stream")
            .count(),
        22,
        "{logs}"
    );
    assert!(!logs.contains(PASSWORD), "the value leaked into the logs");
}

#[tokio::test]
async fn vault_events_and_notices_sync_and_unauthenticated_ones_touch_nothing() {
    let w = world(false).await;
    let value = leaks::secret_json(json!({"token": PASSWORD}));
    let version = w.bao.put("app/api", value.clone()).await;
    let names = ("app/api", "app-api", "app-api");

    // Every kind of refusal: 401, and no read of the secret in OpenBao.
    let event = kv_event("secret/data/app/api", version, "kv-v2/data-write");
    let now = unix_now();
    let forged = notice::signed_headers(&KEY.replace('8', "9"), now, &event);
    let stale = notice::signed_headers(KEY, now - 600, &event);
    let mut old = w
        .clouds
        .issuer
        .claims(RELAY, RELAY_AUD, Duration::from_secs(300));
    for (claim, ago) in [("iat", 900), ("nbf", 900), ("exp", 600)] {
        old[claim] = json!(now - ago);
    }
    let expired = notice::bearer_headers(&w.clouds.issuer.mint(&old));
    let elsewhere = notice::bearer_headers(&w.relay_token("someone-else", Duration::from_secs(60)));
    for (what, headers) in [
        ("forged", forged),
        ("stale", stale),
        ("expired", expired),
        ("wrong audience", elsewhere),
        (
            "unsigned",
            vec![("content-type", "application/json".to_string())],
        ),
    ] {
        let (status, _) = w.post("/v1/vault/events", &event, &headers).await;
        assert_eq!(status, 401, "{what}");
    }
    // Give a wrongly accepted request the time to read, then look.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.landed(names).await, (None, None, None));
    assert_eq!(
        w.bao.audited("read", "secret/data/app/api"),
        0,
        "OpenBao saw a read"
    );

    // A signed Vault event syncs; the very same request again does nothing.
    let signed = notice::signed_headers(KEY, unix_now(), &event);
    let (status, answer) = w.post("/v1/vault/events", &event, &signed).await;
    assert_eq!(status, 200, "{answer:#}");
    let outcomes = answer["report"]["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 3, "{answer:#}");
    assert!(
        outcomes.iter().all(|o| o["status"] == "synced"),
        "{answer:#}"
    );
    w.wait_for(names, &value.to_string()).await;
    let reads = w.bao.audited("read", "secret/data/app/api");
    assert!(reads >= 1);
    let (_, again) = w.post("/v1/vault/events", &event, &signed).await;
    assert_eq!(again, json!({"status": "duplicate"}));
    assert_eq!(
        w.bao.audited("read", "secret/data/app/api"),
        reads,
        "a replay reads nothing"
    );

    // A notice with a bearer token from the relay's issuer syncs a rotation.
    let rotated = leaks::secret_json(json!({"token": "rotated-token-never-logged"}));
    let version = w.bao.put("app/api", rotated.clone()).await;
    let body =
        json!({"source": "vault", "secret": "app/api", "version": version.to_string()}).to_string();
    let bearer = notice::bearer_headers(&w.relay_token(RELAY_AUD, Duration::from_secs(60)));
    let (status, answer) = w.post("/v1/notify", &body, &bearer).await;
    assert_eq!(status, 200, "{answer:#}");
    w.wait_for(names, &rotated.to_string()).await;

    // Malformed and misaddressed input gets a 4xx that says why.
    let refusal = w.refused_event("{\"data\": 1}").await;
    assert!(refusal.contains("expected a Vault event"), "{refusal}");
    let refusal = w.refused_event(&event.replace("secret/", "kv/")).await;
    assert!(
        refusal.contains("no vault-kv source reads mount \"kv\""),
        "{refusal}"
    );
    let (status, _) = w
        .post(
            "/v1/vault/events",
            &event,
            &[("content-type", "text/plain".to_string())],
        )
        .await;
    assert_eq!(status, 415);
    assert!(!w.receiver.logs().contains(PASSWORD));
}
