//! `fedsync issuer`: the documents it writes, hosted as plain files at the
//! issuer URL, are what a cloud verifies fedsync's tokens with.

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fedsync_tests::clouds::{Clouds, DEST_REGION, SECRET, SUBJECT, VALUE, event};
use fedsync_tests::issuer::{KeyType, SigningKey, jwk_thumbprint};
use fedsync_tests::lambda_api::{LambdaApi, LambdaProcess, workspace_binary};
use fedsync_tests::moto::{Moto, credentials_env};
use fedsync_tests::static_files::StaticFiles;
use fedsync_tests::sts_front::RoleTrust;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Runs `fedsync issuer --config CONFIG ARGS` with nothing but `env`.
async fn fedsync_issuer(
    args: &[&str],
    env: &[(&str, String)],
    config: &str,
) -> std::process::Output {
    let args: Vec<&str> = ["issuer"].into_iter().chain(args.iter().copied()).collect();
    fedsync_tests::cli::fedsync(&args, config, env).await
}

/// `fedsync issuer --out SITE`, then what plain `fedsync issuer` prints; both must succeed.
async fn publish(site: &tempfile::TempDir, env: &[(&str, String)], config: &str) -> Value {
    let succeeded = |out: std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "fedsync issuer: {stderr}");
        out
    };
    let out = fedsync_issuer(&["--out", site.path().to_str().unwrap()], env, config).await;
    succeeded(out);
    let out = succeeded(fedsync_issuer(&[], env, config).await);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn pem_env(key: &SigningKey) -> Vec<(&'static str, String)> {
    vec![("FEDSYNC_SIGNING_KEY", key.private_key_pem().to_string())]
}

/// A static host for `fedsync issuer --out` output: it serves the folder named after
/// its own address. Returns the host and the issuer URL under it.
async fn issuer_host(site: &tempfile::TempDir) -> (StaticFiles, String) {
    let site_root: PathBuf = site.path().to_path_buf();
    let host = StaticFiles::start(move |url| {
        site_root.join(url.trim_start_matches("http://").replace(':', "_"))
    })
    .await;
    let issuer = format!("{}/fedsync", host.url());
    (host, issuer)
}

#[tokio::test]
async fn tokens_verify_through_the_documents_fedsync_issuer_writes() {
    let clouds = Clouds::start().await;
    let site = tempfile::tempdir().unwrap();
    let (_host, issuer) = issuer_host(&site).await;
    let key = SigningKey::generate(KeyType::Ec);
    let config = clouds
        .config("", SUBJECT)
        .replace(clouds.issuer.url(), &issuer);

    let printed = publish(&site, &pem_env(&key), &config).await;
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

    the_function_syncs_through(&clouds, &issuer, &config, pem_env(&key)).await;
}

/// The real Lambda, given `signing_env` for its signing key, syncs a change: the STS
/// front knows nothing but the issuer URL, and verifies its token through the
/// documents it discovers there.
async fn the_function_syncs_through(
    clouds: &Clouds,
    issuer: &str,
    config: &str,
    signing_env: Vec<(&'static str, String)>,
) {
    clouds.sts.trust_issuer(issuer);
    clouds.sts.trust_role(
        &clouds.writer_role,
        RoleTrust {
            issuer: issuer.to_string(),
            audience: "sts.amazonaws.com".into(),
            subject: SUBJECT.into(),
        },
    );
    let api = LambdaApi::start().await;
    let mut env = clouds.function_env(config);
    env.retain(|(k, _)| *k != "FEDSYNC_SIGNING_KEY");
    env.extend(signing_env);
    let process = LambdaProcess::spawn(&workspace_binary("fedsync-eventbridge"), &api, env);
    let answer = api
        .invoke(
            event("eventbridge-put-secret-value.json"),
            Duration::from_secs(60),
        )
        .await
        .expect_ok();
    assert_eq!(
        answer["report"]["outcomes"][0]["status"],
        "synced",
        "{answer:#}\n{}",
        process.logs()
    );
    assert_eq!(clouds.sts.successes(&clouds.writer_role), 1);
    let logs = process.logs();
    assert!(!logs.contains(VALUE), "the secret value is never logged");
    assert!(
        !logs.contains("eyJ"),
        "no token (nor its signing input) is logged"
    );
    assert_eq!(clouds.written(SECRET).await.as_deref(), Some(VALUE));
}

/// Creates a key of `usage` and `spec` in moto's KMS, in the destination region rather
/// than the function's own: fedsync must take the region from the key's ARN.
async fn kms_key(moto: &Moto, usage: KeyUsageType, spec: KeySpec) -> String {
    let created = moto
        .kms(DEST_REGION)
        .create_key()
        .key_usage(usage)
        .key_spec(spec)
        .send()
        .await
        .unwrap();
    created.key_metadata().unwrap().arn().unwrap().to_string()
}

/// What a process needs to reach moto's KMS: credentials, and the SDK's standard
/// per-service endpoint variable.
fn kms_env(
    moto: &Moto,
    credentials: &aws_credential_types::Credentials,
) -> Vec<(&'static str, String)> {
    let mut env = credentials_env(credentials);
    env.push(("AWS_ENDPOINT_URL_KMS", moto.endpoint().to_string()));
    env
}

/// The SubjectPublicKeyInfo DER a published JWK stands for, encoded by aws-lc-rs.
fn spki_of(jwk: &Value) -> Vec<u8> {
    use aws_lc_rs::encoding::AsDer;
    let member = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    match jwk["kty"].as_str() {
        Some("RSA") => aws_lc_rs::rsa::PublicKeyComponents {
            n: member("n"),
            e: member("e"),
        }
        .as_der()
        .unwrap()
        .as_ref()
        .to_vec(),
        _ => {
            let point = [vec![0x04], member("x"), member("y")].concat();
            aws_lc_rs::signature::ParsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .unwrap()
            .as_der()
            .unwrap()
            .as_ref()
            .to_vec()
        }
    }
}

/// A KMS key signs the real Lambda's tokens, `fedsync issuer` publishes its public
/// key, and the STS front verifies the tokens through the hosted documents alone.
async fn kms_signed_tokens_verify_through_the_published_jwks(spec: KeySpec, alg: &str) {
    let clouds = Clouds::start().await;
    let arn = kms_key(&clouds.moto, KeyUsageType::SignVerify, spec).await;
    let site = tempfile::tempdir().unwrap();
    let (_host, issuer) = issuer_host(&site).await;
    let config = clouds
        .config("", SUBJECT)
        .replace(clouds.issuer.url(), &issuer)
        .replace("env:FEDSYNC_SIGNING_KEY", &format!("kms:{arn}"));
    // The operator runs `fedsync issuer` with credentials allowed kms:GetPublicKey.
    let env = kms_env(&clouds.moto, &clouds.reader);

    let printed = publish(&site, &env, &config).await;
    assert_eq!(
        printed[0]["openid-configuration"]["id_token_signing_alg_values_supported"],
        serde_json::json!([alg]),
    );
    let keys = printed[0]["jwks"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{keys:#?}");
    let jwk = &keys[0];
    assert_eq!(
        jwk["kid"],
        jwk_thumbprint(jwk),
        "kid is the key's RFC 7638 thumbprint"
    );
    assert_eq!((&jwk["alg"], &jwk["use"]), (&alg.into(), &"sig".into()));
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(jwk.get(private).is_none(), "no private part: {jwk}");
    }
    let kms_public = clouds
        .moto
        .kms(DEST_REGION)
        .get_public_key()
        .key_id(&arn)
        .send()
        .await
        .unwrap()
        .public_key
        .unwrap()
        .into_inner();
    assert_eq!(spki_of(jwk), kms_public, "the JWKS publishes the KMS key");

    // The function signs through KMS with its own role's credentials.
    let kms_endpoint = ("AWS_ENDPOINT_URL_KMS", clouds.moto.endpoint().to_string());
    the_function_syncs_through(&clouds, &issuer, &config, vec![kms_endpoint]).await;
}

#[tokio::test]
async fn an_rsa_kms_key_signs_rs256_tokens_that_verify_through_fedsync_issuer() {
    kms_signed_tokens_verify_through_the_published_jwks(KeySpec::Rsa2048, "RS256").await;
}

#[tokio::test]
async fn a_p256_kms_key_signs_es256_tokens_that_verify_through_fedsync_issuer() {
    kms_signed_tokens_verify_through_the_published_jwks(KeySpec::EccNistP256, "ES256").await;
}

/// A configuration whose one identity signs with the KMS key `arn`.
fn kms_config(arn: &str) -> String {
    format!(
        "[identities.deploy]\nkind = \"signing-key\"\nissuer = \"https://issuer.example.com/fedsync\"\n\
         key = \"kms:{arn}\"\nsubject = \"fedsync:test\"\n"
    )
}

#[tokio::test]
async fn unusable_kms_keys_and_refusals_are_explained() {
    let moto = Moto::start().await;
    let no_kms = moto
        .create_role(
            "no-kms",
            &serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}),
        )
        .await;
    let admin = kms_env(&moto, moto.admin_credentials());
    let failure = |out: std::process::Output| {
        assert!(!out.status.success(), "{out:?}");
        assert!(out.stdout.is_empty(), "nothing is published: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    };

    let arn = kms_key(&moto, KeyUsageType::EncryptDecrypt, KeySpec::Rsa2048).await;
    let err = failure(fedsync_issuer(&[], &admin, &kms_config(&arn)).await);
    assert!(
        err.contains("bad input")
            && err.contains(&arn)
            && err.contains("its key usage is ENCRYPT_DECRYPT; a signing key needs SIGN_VERIFY"),
        "{err}"
    );

    let arn = kms_key(&moto, KeyUsageType::SignVerify, KeySpec::EccNistP384).await;
    let err = failure(fedsync_issuer(&[], &admin, &kms_config(&arn)).await);
    assert!(
        err.contains(&arn)
            && err.contains("its key spec is ECC_NIST_P384; fedsync signs with RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256 keys"),
        "{err}"
    );

    // A principal without kms:GetPublicKey is refused, and the refusal says so.
    let arn = kms_key(&moto, KeyUsageType::SignVerify, KeySpec::Rsa2048).await;
    moto.enable_iam_auth().await;
    let credentials = moto.role_credentials(&no_kms, "operator").await;
    let err = failure(fedsync_issuer(&[], &kms_env(&moto, &credentials), &kms_config(&arn)).await);
    assert!(
        err.starts_with("fedsync: auth: identity \"deploy\": KMS GetPublicKey of signing key ")
            && err.contains(&arn)
            && err.contains("(HTTP 403)"),
        "{err}"
    );
}
