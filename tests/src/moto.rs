//! Runs a moto server (the AWS emulator for STS, IAM, Secrets Manager and KMS) for one test,
//! sets up IAM in it (an admin user, roles with inline policies), turns IAM signature and
//! policy checking on, and hands out SDK clients and role credentials.
//!
//! Facts about moto 5.2.5 this relies on (checked by experiment):
//! - A request is routed by the service in the `Authorization` header's credential scope;
//!   a request without that header is taken for S3. Until IAM checking is on, the signature
//!   itself is not checked, so setup requests carry a well-formed but unsigned header.
//! - `POST /moto-api/reset-auth` with body `N` lets the next `N` requests through unchecked
//!   and checks every one after them: `0` turns checking on at once, `inf` turns it off.
//!   moto parses the body as a float (`1.5` lets two through; a non-number, or a form
//!   content type, is a 500). `/moto-api/` itself is never checked.
//! - With checking on, moto verifies SigV4, requires the session token of temporary
//!   credentials and applies IAM policies (an explicit Deny is a 403). For `AssumeRole` of
//!   an existing role it also checks the role's trust policy, comparing an AWS principal
//!   with the caller's ARN literally (or `*`); it does not check that the role exists (an
//!   unknown role ARN gets credentials), nor credential expiry.
//! - Refusals while checking is on come as `<ErrorResponse><Errors><Error>…` XML, even from
//!   JSON services: the AWS SDK for Rust cannot read their code, only the HTTP status.
//! - STS and IAM state is per account and partition, not per region: credentials from
//!   `AssumeRole` in one region work in every region.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use serde_json::{Value, json};
use url::form_urlencoded;

use crate::leaks::Role;
use crate::process::CapturedProcess;
use crate::xml;

/// moto's default account.
pub const ACCOUNT_ID: &str = "123456789012";
/// The region the clients use.
pub const REGION: &str = "us-east-1";
/// The moto version the harness is written against.
pub const MOTO_VERSION: &str = "5.2.5";

const ADMIN_USER: &str = "fedsync-test-admin";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// A well-formed but unsigned SigV4 header naming IAM: moto routes by the credential scope
/// and checks no signature while IAM checking is off.
const UNSIGNED_IAM_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
     Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, \
     SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000";

/// A running moto server with an admin user; killed when dropped.
#[derive(Debug)]
pub struct Moto {
    process: CapturedProcess,
    endpoint: String,
    http: reqwest::Client,
    admin: Credentials,
    iam_auth: AtomicBool,
}

impl Moto {
    /// Starts `.venv/bin/moto_server` on a free port, waits until it answers, and creates
    /// an admin user (policy `*` on `*`) with an access key. IAM checking is still off.
    ///
    /// # Panics
    /// If moto is not installed in the workspace's `.venv`, or does not come up.
    pub async fn start() -> Self {
        let moto_server = moto_server_path();
        let port = free_port();
        let mut command = Command::new(&moto_server);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut process = CapturedProcess::spawn(Role::Server, &mut command)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto_server.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        wait_until_ready(&http, &endpoint, &mut process).await;
        let admin = create_admin(&http, &endpoint).await;
        Self {
            process,
            endpoint,
            http,
            admin,
            iam_auth: AtomicBool::new(false),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Everything moto has logged so far (one line per request, and tracebacks).
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// The admin user's long-term access key.
    pub fn admin_credentials(&self) -> &Credentials {
        &self.admin
    }

    /// Creates a role with one inline policy, assumable by the admin user; returns its ARN.
    ///
    /// # Panics
    /// While IAM checking is on: roles are set up while it is off.
    pub async fn create_role(&self, name: &str, policy: &Value) -> String {
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "AWS": admin_arn() },
                "Action": "sts:AssumeRole",
            }],
        });
        let created = self
            .iam(&[
                ("Action", "CreateRole"),
                ("RoleName", name),
                ("AssumeRolePolicyDocument", &trust.to_string()),
                ("MaxSessionDuration", "43200"),
            ])
            .await;
        self.iam(&[
            ("Action", "PutRolePolicy"),
            ("RoleName", name),
            ("PolicyName", "inline"),
            ("PolicyDocument", &policy.to_string()),
        ])
        .await;
        xml::element_text(&created, "Arn").expect("CreateRole answers the role's Arn")
    }

    /// Turns IAM checking on for every later request (`reset-auth` with `0`).
    pub async fn enable_iam_auth(&self) {
        self.reset_auth("0").await;
        self.iam_auth.store(true, Ordering::SeqCst);
    }

    /// Turns IAM checking off again (`reset-auth` with `inf`), for setup in mid-test.
    pub async fn disable_iam_auth(&self) {
        self.reset_auth("inf").await;
        self.iam_auth.store(false, Ordering::SeqCst);
    }

    /// `POST /moto-api/reset-auth`: moto reads the body as a float (so only `text/plain`
    /// works: a form content type leaves the body empty and moto answers 500).
    async fn reset_auth(&self, unchecked_requests: &str) {
        let response = self
            .http
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body(unchecked_requests.to_owned())
            .send()
            .await
            .expect("POST /moto-api/reset-auth");
        assert!(
            response.status().is_success(),
            "reset-auth {unchecked_requests} failed: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Whether IAM checking is on.
    pub fn iam_auth_enabled(&self) -> bool {
        self.iam_auth.load(Ordering::SeqCst)
    }

    /// An STS client signed with the admin key.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        self.sts_as(self.admin.clone())
    }

    /// An STS client signed with `credentials`.
    pub fn sts_as(&self, credentials: Credentials) -> aws_sdk_sts::Client {
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .build();
        aws_sdk_sts::Client::from_conf(config)
    }

    /// A Secrets Manager client signed with the admin key, for setup and assertions.
    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        self.secrets_manager_as(self.admin.clone())
    }

    /// A Secrets Manager client signed with `credentials`.
    pub fn secrets_manager_as(&self, credentials: Credentials) -> aws_sdk_secretsmanager::Client {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }

    /// An SQS client (moto's default region) signed with the admin key.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(self.admin.clone())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    /// The relay's change queue: a FIFO queue `name` with content-based
    /// deduplication; its URL, and a role that may send to it and do nothing else.
    /// Call while IAM checking is off.
    pub async fn change_queue(&self, name: &str) -> (String, String) {
        let url = self
            .sqs()
            .create_queue()
            .queue_name(name)
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::ContentBasedDeduplication,
                "true",
            )
            .send()
            .await
            .expect("create the change queue")
            .queue_url
            .expect("CreateQueue answers the queue's URL");
        let role = self
            .create_role(
                "fedsync-relay",
                &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")}]}),
            )
            .await;
        (url, role)
    }

    /// A KMS client for `region` signed with the admin key.
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(self.admin.clone())
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    /// Temporary credentials for `role_arn` from moto's `AssumeRole` (one hour), signed
    /// with the admin key: what Lambda gives a function as its execution role.
    pub async fn role_credentials(&self, role_arn: &str, session_name: &str) -> Credentials {
        let assumed = self
            .sts()
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .duration_seconds(3600)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto AssumeRole {role_arn}: {e:?}"));
        let credentials = assumed.credentials.expect("AssumeRole answers credentials");
        let expiry = SystemTime::try_from(credentials.expiration)
            .expect("the credentials expire after 1970");
        Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            Some(credentials.session_token),
            Some(expiry),
            "moto-assume-role",
        )
    }

    /// Sends an unsigned IAM request; only valid while IAM checking is off.
    async fn iam(&self, params: &[(&str, &str)]) -> String {
        assert!(
            !self.iam_auth_enabled(),
            "IAM setup needs IAM checking off (before Moto::enable_iam_auth or after disable_iam_auth)"
        );
        iam_request(&self.http, &self.endpoint, params).await
    }
}

async fn create_admin(http: &reqwest::Client, endpoint: &str) -> Credentials {
    let everything = json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*" }],
    });
    iam_request(
        http,
        endpoint,
        &[("Action", "CreateUser"), ("UserName", ADMIN_USER)],
    )
    .await;
    iam_request(
        http,
        endpoint,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", ADMIN_USER),
            ("PolicyName", "everything"),
            ("PolicyDocument", &everything.to_string()),
        ],
    )
    .await;
    let key = iam_request(
        http,
        endpoint,
        &[("Action", "CreateAccessKey"), ("UserName", ADMIN_USER)],
    )
    .await;
    let field = |name| {
        xml::element_text(&key, name)
            .unwrap_or_else(|| panic!("CreateAccessKey answers {name}: {key}"))
    };
    Credentials::new(
        field("AccessKeyId"),
        field("SecretAccessKey"),
        None,
        None,
        "moto-admin",
    )
}

/// Sends an IAM Query request with an unsigned `Authorization` header naming IAM (moto
/// routes by it) and returns the response body.
async fn iam_request(http: &reqwest::Client, endpoint: &str, params: &[(&str, &str)]) -> String {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .append_pair("Version", "2010-05-08")
        .finish();
    let response = http
        .post(format!("{endpoint}/"))
        .header("authorization", UNSIGNED_IAM_AUTHORIZATION)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("send an IAM request to moto");
    let status = response.status();
    let text = response.text().await.expect("read an IAM response");
    assert!(
        status.is_success(),
        "IAM {params:?} failed ({status}): {text}"
    );
    text
}

/// The admin user's ARN: moto compares a trust policy's AWS principal with the caller's ARN
/// literally (an account root ARN does not cover the account's users).
fn admin_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{ADMIN_USER}")
}

/// The environment variables through which Lambda hands a function its role credentials.
pub fn credentials_env(credentials: &Credentials) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id().to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            credentials.secret_access_key().to_owned(),
        ),
    ];
    if let Some(token) = credentials.session_token() {
        env.push(("AWS_SESSION_TOKEN", token.to_owned()));
    }
    env
}

/// `<workspace root>/.venv/bin/moto_server`, where the workspace root is the parent of
/// this crate's directory.
fn moto_server_path() -> PathBuf {
    let workspace_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf();
    let moto_server = workspace_root.join(".venv/bin/moto_server");
    assert!(
        moto_server.is_file(),
        "moto is not installed at {}: from {}, run \
         `python3 -m venv .venv && .venv/bin/pip install 'moto[server]=={MOTO_VERSION}'`",
        moto_server.display(),
        workspace_root.display(),
    );
    moto_server
}

/// A port that was free a moment ago (the listener is closed before moto binds it).
/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port on 127.0.0.1")
        .port()
}

async fn wait_until_ready(http: &reqwest::Client, endpoint: &str, process: &mut CapturedProcess) {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let answered = http.get(format!("{endpoint}/moto-api/")).send().await;
        if answered.is_ok_and(|response| response.status().is_success()) {
            return;
        }
        if let Some(status) = process.try_exit_status() {
            panic!(
                "moto_server exited ({status}) before answering:\n{}",
                process.logs()
            );
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer within {STARTUP_TIMEOUT:?}:\n{}",
            process.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
