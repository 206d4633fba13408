//! `fedsync issuer`: the documents it writes, hosted as plain files at the
//! issuer URL, are what a cloud verifies fedsync's tokens with.

use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE, event};
use fedsync_tests::issuer::{KeyType, SigningKey, jwk_thumbprint};
use fedsync_tests::lambda_api::{LambdaApi, LambdaProcess, workspace_binary};
use fedsync_tests::static_files::StaticFiles;
use fedsync_tests::sts_front::RoleTrust;
use serde_json::Value;
use std::time::Duration;

async fn fedsync_issuer(args: &[&str], key: &SigningKey, config: &str) -> std::process::Output {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, config.as_bytes()).unwrap();
    let config_path = file.path().to_str().unwrap().to_string();
    tokio::process::Command::new(workspace_binary("fedsync"))
        .args(["issuer", "--config", &config_path])
        .args(args)
        .env_clear()
        .env("FEDSYNC_SIGNING_KEY", key.private_key_pem())
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn tokens_verify_through_the_documents_fedsync_issuer_writes() {
    let clouds = Clouds::start().await;
    let site = tempfile::tempdir().unwrap();
    let site_root = site.path().to_path_buf();
    // The host serves the folder named after its own address.
    let host = StaticFiles::start(|url| {
        site_root.join(url.trim_start_matches("http://").replace(':', "_"))
    })
    .await;
    let issuer = format!("{}/fedsync", host.url());
    let key = SigningKey::generate(KeyType::Ec);
    let config = clouds
        .config("", SUBJECT)
        .replace(clouds.issuer.url(), &issuer);

    let out = fedsync_issuer(&["--out", site.path().to_str().unwrap()], &key, &config).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fedsync_issuer(&[], &key, &config).await;
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed[0]["openid-configuration"]["issuer"],
        issuer.as_str()
    );
    let jwk = &printed[0]["jwks"]["keys"][0];
    assert_eq!(
        jwk["kid"],
        jwk_thumbprint(key.public_jwk()),
        "kid is the key's RFC 7638 thumbprint"
    );
    assert!(jwk.get("d").is_none(), "no private part is published");

    // The STS front knows nothing but the issuer URL: it discovers the keys there.
    clouds.sts.trust_issuer(&issuer);
    clouds.sts.trust_role(
        &clouds.writer_role,
        RoleTrust {
            issuer: issuer.clone(),
            audience: "sts.amazonaws.com".into(),
            subject: SUBJECT.into(),
        },
    );
    let api = LambdaApi::start().await;
    let mut env = clouds.function_env(&config);
    env.retain(|(k, _)| *k != "FEDSYNC_SIGNING_KEY");
    env.push(("FEDSYNC_SIGNING_KEY", key.private_key_pem().to_string()));
    let _process = LambdaProcess::spawn(&workspace_binary("fedsync-eventbridge"), &api, env);
    let answer = api
        .invoke(
            event("eventbridge-put-secret-value.json"),
            Duration::from_secs(60),
        )
        .await
        .expect_ok();
    assert_eq!(
        answer["report"]["outcomes"][0]["status"], "synced",
        "{answer:#}"
    );
    let written = clouds
        .destination()
        .get_secret_value()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(written.secret_string(), Some(VALUE));
}
