//! Strict local emulators of the Google Cloud APIs fedsync speaks, written from Google's
//! published API definitions (the STS discovery document, the Secret Manager, IAM
//! Credentials and Pub/Sub protos, `google.rpc.Status`) and documentation, not from
//! fedsync's code, each on its own
//! `127.0.0.1` port like the real hosts:
//!
//! - [`GoogleIssuer`], Google's ID-token issuer (discovery, JWKS, push and identity tokens);
//! - [`Sts`], `sts.googleapis.com/v1/token`, workload identity federation;
//! - [`IamCredentials`], `iamcredentials.googleapis.com`, service account impersonation;
//! - [`SecretManager`], `secretmanager.googleapis.com/v1`;
//! - [`MetadataServer`], the runtime's `metadata.google.internal`.
//!
//! The token services issue opaque access tokens into one shared [`AccessTokens`]
//! registry that the resource services check on every call. [`GoogleCloud::start`] starts
//! them all wired together; each can also be started alone.
//!
//! Configuring trust in a test:
//! - STS: `sts.add_provider(WorkloadIdentityProvider::new(number, pool, provider,
//!   issuer_url).condition("assertion.sub == 'x'"))` returns the provider's full name, the
//!   exchange's `audience`;
//! - IAM Credentials: `iam.grant(sa_email, ServiceAccountRole::WorkloadIdentityUser,
//!   &provider.principal(sub).member())`;
//! - Secret Manager: `secret_manager.add_project(id, number)`, then
//!   `secret_manager.grant(id, member, SecretManagerRole::Admin)` (or `grant_on_secret`).

pub mod auth;
pub mod cel;
pub mod iam_credentials;
pub mod issuer;
pub mod metadata;
mod proto_json;
pub mod secret_manager;
pub mod status;
pub mod sts;

pub use auth::{
    AccessToken, AccessTokens, CLOUD_PLATFORM, Principal, TokenSource, service_account_unique_id,
};
pub use cel::AttributeCondition;
pub use iam_credentials::{IamCredentials, ServiceAccountRole};
pub use issuer::GoogleIssuer;
pub use metadata::{MetadataEndpoint, MetadataServer};
pub use secret_manager::{SecretManager, SecretManagerMethod, SecretManagerRole, VersionState};
pub use status::GoogleError;
pub use sts::{OauthError, Sts, WorkloadIdentityProvider};

/// The service account the metadata server of [`GoogleCloud`] runs as.
pub const INSTANCE_SERVICE_ACCOUNT: &str =
    "fedsync-runtime@fedsync-emulated.iam.gserviceaccount.com";

/// Every Google emulator, started together and sharing one token registry.
#[derive(Debug)]
pub struct GoogleCloud {
    pub issuer: GoogleIssuer,
    pub tokens: AccessTokens,
    pub sts: Sts,
    pub iam: IamCredentials,
    pub secret_manager: SecretManager,
    /// Runs as [`INSTANCE_SERVICE_ACCOUNT`] until told otherwise.
    pub metadata: MetadataServer,
}

impl GoogleCloud {
    /// Starts every emulator; nothing is trusted or granted yet.
    pub async fn start() -> Self {
        let tokens = AccessTokens::new();
        let issuer = GoogleIssuer::start().await;
        let sts = Sts::start(&tokens).await;
        let iam = IamCredentials::start(&tokens).await;
        let secret_manager = SecretManager::start(&tokens).await;
        let metadata = MetadataServer::start(&issuer, &tokens, INSTANCE_SERVICE_ACCOUNT).await;
        Self {
            issuer,
            tokens,
            sts,
            iam,
            secret_manager,
            metadata,
        }
    }
}
