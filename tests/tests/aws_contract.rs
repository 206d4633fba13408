//! The contract of AWS STS and Secrets Manager that fedsync relies on, run against
//! moto (a widely used emulator checked against AWS) and against the in-process
//! emulator `fedsync demo` runs on: each contract is one test per backend, so the
//! in-process emulator cannot drift from the behaviour moto shares with AWS.
//!
//! Where moto and AWS word an authentication refusal differently (moto answers the
//! Query protocol's `AccessDenied` even for JSON services), the contract is the
//! class of the refusal, which is what fedsync acts on.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use fedsync_tests::aws::{Aws, WRITER_ACTIONS};
use fedsync_tests::issuer::Issuer;
use fedsync_tests::moto::Moto;
use fedsync_tests::sts_front::{RoleTrust, StsFront};
use serde_json::json;

const REGION: &str = "eu-west-1";
const SUBJECT: &str = "fedsync:contract";
const AUDIENCE: &str = "sts.amazonaws.com";
const TOKEN_A: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const TOKEN_B: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

/// One backend: Secrets Manager and a validating STS in front of it, with an
/// administrator's client, a writer role reached by web identity and a role that may
/// only describe.
struct Backend {
    endpoint: String,
    admin: Credentials,
    sts: StsFront,
    issuer: Issuer,
    writer_role: String,
    describer: Credentials,
    /// Keeps moto or the in-process services running.
    _running: Box<dyn std::any::Any>,
}

impl Backend {
    async fn moto() -> Backend {
        let moto = Moto::start().await;
        let policy = |actions: &[&str]| json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]});
        let writer_role = moto
            .create_role("contract-writer", &policy(WRITER_ACTIONS))
            .await;
        let describer_role = moto
            .create_role(
                "contract-describer",
                &policy(&["secretsmanager:DescribeSecret"]),
            )
            .await;
        moto.enable_iam_auth().await;
        let describer = moto.role_credentials(&describer_role, "describe").await;
        let sts = StsFront::start(moto.sts()).await;
        Backend::trusting(
            moto.endpoint().to_owned(),
            moto.admin_credentials().clone(),
            sts,
            writer_role,
            describer,
            Box::new(moto),
        )
        .await
    }

    async fn local() -> Backend {
        let aws = Aws::start().await;
        let admin_role = aws.iam.create_role("contract-admin", &["secretsmanager:*"]);
        let writer_role = aws.iam.create_role("contract-writer", WRITER_ACTIONS);
        let describer_role = aws
            .iam
            .create_role("contract-describer", &["secretsmanager:DescribeSecret"]);
        let session = |role: &str, name: &str| {
            aws.iam
                .issue_session(role, name, Duration::from_secs(3600))
                .expect("the role exists")
                .credentials
        };
        let admin = session(&admin_role, "admin");
        let describer = session(&describer_role, "describe");
        let sts = StsFront::start_local(Arc::clone(&aws.iam)).await;
        Backend::trusting(
            aws.secrets_manager.endpoint(),
            admin,
            sts,
            writer_role,
            describer,
            Box::new(aws),
        )
        .await
    }

    /// Registers an issuer with the STS front and lets it vouch for the writer role.
    async fn trusting(
        endpoint: String,
        admin: Credentials,
        sts: StsFront,
        writer_role: String,
        describer: Credentials,
        running: Box<dyn std::any::Any>,
    ) -> Backend {
        let issuer = Issuer::start().await;
        sts.trust_issuer(issuer.url());
        sts.trust_role(
            &writer_role,
            RoleTrust {
                issuer: issuer.url().into(),
                audience: AUDIENCE.into(),
                subject: SUBJECT.into(),
            },
        );
        Backend {
            endpoint,
            admin,
            sts,
            issuer,
            writer_role,
            describer,
            _running: running,
        }
    }

    fn client(&self, credentials: Credentials) -> Client {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .build();
        Client::from_conf(config)
    }

    fn admin(&self) -> Client {
        self.client(self.admin.clone())
    }

    /// `AssumeRoleWithWebIdentity` for the writer role with a token for `audience`.
    async fn exchange(&self, audience: &str) -> Result<Credentials, String> {
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new(REGION))
            .endpoint_url(self.sts.endpoint())
            .build();
        let token = self.issuer.mint(&self.issuer.claims(
            SUBJECT,
            audience,
            Duration::from_secs(300),
        ));
        let out = aws_sdk_sts::Client::from_conf(config)
            .assume_role_with_web_identity()
            .role_arn(&self.writer_role)
            .role_session_name("contract")
            .web_identity_token(token)
            .send()
            .await
            .map_err(|e| e.code().unwrap_or("no code").to_owned())?;
        let c = out.credentials().expect("credentials");
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "web-identity",
        ))
    }
}

/// The error code of a failed call.
fn code<T, E: ProvideErrorMetadata + std::fmt::Debug>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => panic!("the call succeeded where the contract says it fails"),
        Err(e) => e.code().unwrap_or("no code").to_owned(),
    }
}

/// The error code (if the client could read one) and HTTP status of a failed call.
fn refusal<T, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> (Option<String>, u16) {
    match result {
        Ok(_) => panic!("the call succeeded where the contract says it fails"),
        Err(e) => {
            let status = e.raw_response().map_or(0, |r| r.status().as_u16());
            (e.code().map(str::to_owned), status)
        }
    }
}

/// One test per backend for each contract.
macro_rules! contract {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn moto() {
                super::$name(super::Backend::moto().await).await;
            }

            #[tokio::test]
            async fn in_process() {
                super::$name(super::Backend::local().await).await;
            }
        }
    };
}

contract!(created_secret_reads_back);
async fn created_secret_reads_back(b: Backend) {
    let sm = b.admin();
    let created = sm
        .create_secret()
        .name("app/db")
        .client_request_token(TOKEN_A)
        .secret_string("v1")
        .description("Managed by fedsync")
        .tags(Tag::builder().key("team").value("platform").build())
        .send()
        .await
        .unwrap();
    assert_eq!(created.version_id(), Some(TOKEN_A));
    let arn = created.arn().unwrap().to_owned();
    assert!(
        arn.starts_with(&format!("arn:aws:secretsmanager:{REGION}:"))
            && arn.contains(":secret:app/db-"),
        "{arn}"
    );
    for id in ["app/db", arn.as_str()] {
        let read = sm.get_secret_value().secret_id(id).send().await.unwrap();
        assert_eq!(read.secret_string(), Some("v1"));
        assert_eq!(read.name(), Some("app/db"));
        assert_eq!(read.version_id(), Some(TOKEN_A));
        assert_eq!(read.version_stages(), ["AWSCURRENT"]);
    }
    let described = sm
        .describe_secret()
        .secret_id("app/db")
        .send()
        .await
        .unwrap();
    assert_eq!(described.description(), Some("Managed by fedsync"));
    assert_eq!(described.tags()[0].key(), Some("team"));
    let stages = described.version_ids_to_stages().unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[TOKEN_A], ["AWSCURRENT"]);
    assert!(described.deleted_date().is_none());
}

contract!(creating_a_taken_name_is_refused);
async fn creating_a_taken_name_is_refused(b: Backend) {
    let sm = b.admin();
    let create = |token: &'static str, value: &'static str| {
        sm.create_secret()
            .name("app/taken")
            .client_request_token(token)
            .secret_string(value)
            .send()
    };
    create(TOKEN_A, "v1").await.unwrap();
    // The same request repeated is ignored; another token for the name is refused.
    let repeated = create(TOKEN_A, "v1").await.unwrap();
    assert_eq!(repeated.version_id(), Some(TOKEN_A));
    assert_eq!(code(create(TOKEN_B, "v2").await), "ResourceExistsException");
    assert_eq!(code(create(TOKEN_A, "v2").await), "ResourceExistsException");
}

contract!(a_missing_secret_is_not_found);
async fn a_missing_secret_is_not_found(b: Backend) {
    let sm = b.admin();
    let get = sm.get_secret_value().secret_id("nope").send().await;
    assert_eq!(code(get), "ResourceNotFoundException");
    let describe = sm.describe_secret().secret_id("nope").send().await;
    assert_eq!(code(describe), "ResourceNotFoundException");
    let put = sm
        .put_secret_value()
        .secret_id("nope")
        .secret_string("x")
        .send()
        .await;
    assert_eq!(code(put), "ResourceNotFoundException");
}

contract!(versions_and_their_labels);
async fn versions_and_their_labels(b: Backend) {
    let sm = b.admin();
    sm.create_secret()
        .name("app/v")
        .client_request_token(TOKEN_A)
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    let put = |token: &'static str, value: &'static str| {
        sm.put_secret_value()
            .secret_id("app/v")
            .client_request_token(token)
            .secret_string(value)
            .send()
    };
    let second = put(TOKEN_B, "v2").await.unwrap();
    assert_eq!(second.version_id(), Some(TOKEN_B));
    assert!(second.version_stages().contains(&"AWSCURRENT".to_owned()));
    // The same write repeated changes nothing.
    let again = put(TOKEN_B, "v2").await.unwrap();
    assert_eq!(again.version_id(), Some(TOKEN_B));
    // A token reused for another value is refused: versions cannot be modified.
    assert_eq!(code(put(TOKEN_B, "v3").await), "ResourceExistsException");
    // An earlier version's token, with its value, is accepted without moving AWSCURRENT.
    let earlier = put(TOKEN_A, "v1").await.unwrap();
    assert!(!earlier.version_stages().contains(&"AWSCURRENT".to_owned()));
    let current = |sm: &Client| {
        let sm = sm.clone();
        async move {
            let out = sm
                .get_secret_value()
                .secret_id("app/v")
                .version_stage("AWSCURRENT")
                .send()
                .await
                .unwrap();
            (
                out.version_id().unwrap().to_owned(),
                out.secret_string().unwrap().to_owned(),
            )
        }
    };
    assert_eq!(current(&sm).await, (TOKEN_B.to_owned(), "v2".to_owned()));
    let stages = sm
        .describe_secret()
        .secret_id("app/v")
        .send()
        .await
        .unwrap()
        .version_ids_to_stages
        .unwrap();
    assert_eq!(stages[TOKEN_A], ["AWSPREVIOUS"]);
    assert_eq!(stages[TOKEN_B], ["AWSCURRENT"]);
    // Moving AWSCURRENT back names the version that holds it.
    let moved = sm
        .update_secret_version_stage()
        .secret_id("app/v")
        .version_stage("AWSCURRENT")
        .move_to_version_id(TOKEN_A)
        .remove_from_version_id(TOKEN_B)
        .send()
        .await;
    moved.unwrap();
    assert_eq!(current(&sm).await, (TOKEN_A.to_owned(), "v1".to_owned()));
    let previous = sm
        .get_secret_value()
        .secret_id("app/v")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(previous.version_id(), Some(TOKEN_B));
}

contract!(moving_current_names_its_holder);
async fn moving_current_names_its_holder(b: Backend) {
    let sm = b.admin();
    sm.create_secret()
        .name("app/m")
        .client_request_token(TOKEN_A)
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    sm.put_secret_value()
        .secret_id("app/m")
        .client_request_token(TOKEN_B)
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    let unnamed = sm
        .update_secret_version_stage()
        .secret_id("app/m")
        .version_stage("AWSCURRENT")
        .move_to_version_id(TOKEN_A)
        .send()
        .await;
    assert_eq!(code(unnamed), "InvalidParameterException");
}

contract!(tags_merge_by_key);
async fn tags_merge_by_key(b: Backend) {
    let sm = b.admin();
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    sm.create_secret()
        .name("app/t")
        .secret_string("v")
        .tags(tag("a", "1"))
        .tags(tag("b", "2"))
        .send()
        .await
        .unwrap();
    sm.tag_resource()
        .secret_id("app/t")
        .tags(tag("b", "3"))
        .tags(tag("c", "4"))
        .send()
        .await
        .unwrap();
    let described = sm
        .describe_secret()
        .secret_id("app/t")
        .send()
        .await
        .unwrap();
    let mut tags: Vec<(String, String)> = described
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
        .collect();
    tags.sort();
    let expected = [("a", "1"), ("b", "3"), ("c", "4")].map(|(k, v)| (k.into(), v.into()));
    assert_eq!(tags, expected);
}

contract!(a_deleted_secret_until_restored);
async fn a_deleted_secret_until_restored(b: Backend) {
    let sm = b.admin();
    sm.create_secret()
        .name("app/d")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    let short = sm
        .delete_secret()
        .secret_id("app/d")
        .recovery_window_in_days(6)
        .send()
        .await;
    assert_eq!(code(short), "InvalidParameterException");
    sm.delete_secret()
        .secret_id("app/d")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let described = sm
        .describe_secret()
        .secret_id("app/d")
        .send()
        .await
        .unwrap();
    assert!(described.deleted_date().is_some());
    let read = sm.get_secret_value().secret_id("app/d").send().await;
    assert_eq!(code(read), "InvalidRequestException");
    let listed = sm.list_secrets().send().await.unwrap();
    assert!(
        listed
            .secret_list()
            .iter()
            .all(|s| s.name() != Some("app/d"))
    );
    // AWS documents `InvalidRequestException` here; moto answers
    // `ResourceExistsException`. Either way the name is not taken over.
    let recreate = sm
        .create_secret()
        .name("app/d")
        .secret_string("w")
        .send()
        .await;
    let recreate = code(recreate);
    assert!(
        ["InvalidRequestException", "ResourceExistsException"].contains(&recreate.as_str()),
        "{recreate}"
    );
    let still = sm.get_secret_value().secret_id("app/d").send().await;
    assert_eq!(code(still), "InvalidRequestException");
    sm.restore_secret().secret_id("app/d").send().await.unwrap();
    let read = sm
        .get_secret_value()
        .secret_id("app/d")
        .send()
        .await
        .unwrap();
    assert_eq!(read.secret_string(), Some("v"));
    let described = sm
        .describe_secret()
        .secret_id("app/d")
        .send()
        .await
        .unwrap();
    assert!(described.deleted_date().is_none());
}

contract!(listing_pages_cover_every_secret);
async fn listing_pages_cover_every_secret(b: Backend) {
    let sm = b.admin();
    let mut names: Vec<String> = (0..7).map(|i| format!("list/{i}")).collect();
    for name in &names {
        sm.create_secret()
            .name(name)
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    let mut listed = Vec::new();
    let mut next = None;
    loop {
        let page = sm
            .list_secrets()
            .max_results(3)
            .set_next_token(next)
            .send()
            .await
            .unwrap();
        assert!(page.secret_list().len() <= 3);
        listed.extend(page.secret_list().iter().filter_map(|s| s.name.clone()));
        next = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    listed.sort();
    names.sort();
    assert_eq!(listed, names);
}

contract!(binary_values_round_trip);
async fn binary_values_round_trip(b: Backend) {
    let sm = b.admin();
    let bytes = vec![0u8, 159, 146, 150, 255];
    sm.create_secret()
        .name("app/bin")
        .secret_binary(Blob::new(bytes.clone()))
        .send()
        .await
        .unwrap();
    let read = sm
        .get_secret_value()
        .secret_id("app/bin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.secret_binary().map(|b| b.as_ref().to_vec()),
        Some(bytes)
    );
    assert_eq!(read.secret_string(), None);
}

contract!(web_identity_reaches_the_writer_role);
async fn web_identity_reaches_the_writer_role(b: Backend) {
    let credentials = b.exchange(AUDIENCE).await.unwrap();
    let writer = b.client(credentials);
    writer
        .create_secret()
        .name("app/w")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    let read = writer
        .get_secret_value()
        .secret_id("app/w")
        .send()
        .await
        .unwrap();
    assert_eq!(read.secret_string(), Some("v"));
    assert_eq!(
        b.exchange("another-audience").await.unwrap_err(),
        "AccessDenied"
    );
}

contract!(refusals_by_class);
async fn refusals_by_class(b: Backend) {
    let describer = b.client(b.describer.clone());
    let denied = describer
        .create_secret()
        .name("app/denied")
        .secret_string("v")
        .send()
        .await;
    // AWS answers `AccessDeniedException`; moto answers 403 `AccessDenied` in the
    // Query protocol's XML, which the JSON client reads as a bare 403.
    let (denied, status) = refusal(denied);
    assert!(
        denied.as_deref() == Some("AccessDeniedException") || status == 403,
        "{denied:?} {status}"
    );
    let absent = describer
        .describe_secret()
        .secret_id("app/none")
        .send()
        .await;
    assert_eq!(code(absent), "ResourceNotFoundException");
    let unknown = b.client(Credentials::new(
        "AKIAUNKNOWNKEY000000",
        "not-a-secret-key-anyone-knows-0000000000",
        None,
        None,
        "made-up",
    ));
    // AWS: `UnrecognizedClientException`; moto: 403 `InvalidClientTokenId` in XML.
    let (refused, status) = refusal(unknown.list_secrets().send().await);
    assert!(
        refused.as_deref() == Some("UnrecognizedClientException") || status == 403,
        "{refused:?} {status}"
    );
}
