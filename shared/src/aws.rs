//! AWS SDK plumbing shared by the STS exchange, the Secrets Manager adapter and
//! KMS-held signing keys: the ambient SDK configuration, timeouts, the egress
//! guard on every SDK request, fedsync's retry policy in place of the SDK's, and
//! the classification and description of SDK errors.

use crate::report::{Failure, FailureClass};
use crate::retry::{self, Idempotency};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_secretsmanager::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use std::time::Duration;

/// The SDK configuration of the host's ambient credentials (Lambda role, instance
/// profile, environment) with fedsync's timeouts. Without an explicit `endpoint`,
/// the SDK's own settings apply (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`).
pub(crate) async fn ambient_config(
    region: Option<&str>,
    endpoint: Option<&str>,
) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts())
        .retry_config(no_retries());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

/// The egress guard for AWS SDK clients: every request's endpoint (configured,
/// from `AWS_ENDPOINT_URL*`, or resolved from the region) passes the same check
/// as fedsync's own HTTP requests just before it is sent. Every SDK client
/// fedsync builds carries it.
#[derive(Debug)]
pub(crate) struct EgressGuard;

impl Intercept for EgressGuard {
    fn name(&self) -> &'static str {
        "fedsync egress guard"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let uri = context.request().uri();
        let url = url::Url::parse(uri)
            .map_err(|e| format!("the AWS endpoint {uri:?} is not a URL ({e})"))?;
        crate::egress::check(&url)?;
        Ok(())
    }
}

/// Timeouts for every AWS call: fail fast, so retries stay inside the invocation.
pub(crate) fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(25))
        .build()
}

/// The SDK's own retries are off on every client fedsync builds: each call runs
/// under fedsync's policy instead ([`send`]), bounded by the invocation's deadline.
pub(crate) fn no_retries() -> RetryConfig {
    RetryConfig::disabled()
}

/// Sends one SDK operation (`attempt` builds and sends it) under the retry
/// policy; `operation` names it in logs.
pub(crate) async fn send<T, E, F, Fut>(
    operation: &str,
    idempotency: Idempotency,
    mut attempt: F,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, Response>>>,
{
    retry::run(operation, idempotency, || {
        let sent = attempt();
        async move { sent.await.map_err(|e| AwsError::from_sdk(&e)) }
    })
    .await
}

/// Error codes AWS documents as throttling (Secrets Manager quotas page, STS common errors).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "LimitExceededException",
    "RequestLimitExceeded",
    "SlowDown",
];

const TRANSIENT: &[&str] = &[
    "InternalServiceError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "IDPCommunicationError",
    // KMS
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
];

const AUTH: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidIdentityToken",
    "IDPRejectedClaim",
    "MissingAuthenticationToken",
];

/// The facts of one failed AWS call.
#[derive(Debug, Clone)]
pub(crate) struct AwsError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub status: Option<u16>,
    pub class: FailureClass,
}

impl AwsError {
    pub fn from_sdk<E>(err: &SdkError<E, Response>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        // The egress guard refused the endpoint: nothing was sent, retrying cannot help.
        if let Some(refused) = crate::egress::refusal_in(err) {
            return AwsError {
                code: None,
                message: Some(refused.to_string()),
                status: None,
                class: FailureClass::BadInput,
            };
        }
        let status = err.raw_response().map(|r| r.status().as_u16());
        let (code, message) = match err {
            SdkError::ServiceError(e) => (
                e.err().code().map(str::to_string),
                e.err().message().map(str::to_string),
            ),
            // A response that cannot be parsed may be a secret value: never quote it.
            SdkError::ResponseError(_) => (None, Some("the response could not be read".into())),
            // Transport and construction errors carry no secret value: show their causes.
            other => (None, Some(DisplayErrorContext(other).to_string())),
        };
        let class = classify(code.as_deref(), status, err);
        AwsError {
            code,
            message,
            status,
            class,
        }
    }

    /// Whether the credentials used look expired or revoked (worth one fresh exchange).
    pub fn is_expired_credential(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "ExpiredToken"
                    | "ExpiredTokenException"
                    | "InvalidClientTokenId"
                    | "UnrecognizedClientException"
            )
        )
    }

    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// `Code: message (HTTP n)`, or what is known of it.
    pub fn describe(&self) -> String {
        let mut s = match (&self.code, &self.message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => "an unrecognized error".into(),
        };
        if let Some(status) = self.status {
            s.push_str(&format!(" (HTTP {status})"));
        }
        s
    }

    pub fn into_failure(self, context: impl std::fmt::Display) -> Failure {
        Failure::new(self.class, format!("{context}: {}", self.describe()))
    }
}

/// Throttling and transient failures are retried. A call that may not be
/// repeated is sent again only when AWS answered that it did not act: a
/// throttling error or 503; anything else (a 500, a timeout, a lost connection)
/// may have landed.
impl retry::Transient for AwsError {
    fn is_transient(&self) -> bool {
        self.class.is_retryable()
    }

    fn may_have_acted(&self) -> bool {
        !(self.class == FailureClass::Throttled
            || self.status == Some(503)
            || self.is("ServiceUnavailable"))
    }

    fn class(&self) -> FailureClass {
        self.class
    }

    fn out_of_time(call: &str, sent: bool) -> Self {
        let message = if sent {
            format!("{call} timed out at the invocation's deadline")
        } else {
            format!("{call} was not sent: the invocation's deadline is too near")
        };
        AwsError {
            code: None,
            message: Some(message),
            status: None,
            class: FailureClass::Unavailable,
        }
    }
}

fn classify<E>(
    code: Option<&str>,
    status: Option<u16>,
    err: &SdkError<E, Response>,
) -> FailureClass {
    if matches!(
        err,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
    ) {
        return FailureClass::Unavailable;
    }
    if let Some(code) = code {
        if THROTTLING.contains(&code) {
            return FailureClass::Throttled;
        }
        if TRANSIENT.contains(&code) {
            return FailureClass::Unavailable;
        }
        if AUTH.contains(&code) {
            return FailureClass::Auth;
        }
        match code {
            "ResourceNotFoundException" | "NotFoundException" => return FailureClass::NotFound,
            // A KMS key that is disabled or pending deletion refuses to work for fedsync.
            "KMSInvalidStateException" | "DisabledException" => return FailureClass::Auth,
            "ResourceExistsException" | "PreconditionNotMetException" => {
                return FailureClass::Conflict;
            }
            "InvalidParameterException"
            | "InvalidRequestException"
            | "ValidationError"
            | "MalformedPolicyDocumentException"
            | "KMSInvalidKeyUsageException"
            | "InvalidKeyUsageException"
            | "UnsupportedOperationException"
            | "InvalidArnException" => {
                return FailureClass::BadInput;
            }
            _ => {}
        }
    }
    // Some servers answer without a code we can read: classify by status.
    match status {
        Some(401 | 403) => FailureClass::Auth,
        Some(404) => FailureClass::NotFound,
        Some(409) => FailureClass::Conflict,
        Some(429) => FailureClass::Throttled,
        Some(s) if s >= 500 => FailureClass::Unavailable,
        _ => FailureClass::BadInput,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};

    #[tokio::test]
    async fn an_sdk_endpoint_the_guard_refuses_is_never_called() {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url("http://169.254.169.254")
            .interceptor(EgressGuard)
            .build();
        let client = aws_sdk_secretsmanager::Client::from_conf(config);
        let started = std::time::Instant::now();
        let err = client
            .get_secret_value()
            .secret_id("prod/db")
            .send()
            .await
            .unwrap_err();
        let e = AwsError::from_sdk(&err);
        assert_eq!(e.class, FailureClass::BadInput, "{e:?}");
        assert!(
            e.describe()
                .starts_with("refused to call 169.254.169.254: link-local"),
            "{}",
            e.describe()
        );
        assert!(started.elapsed() < Duration::from_secs(1), "not retried");
    }
}
