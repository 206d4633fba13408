//! The sync configuration (one TOML file): identities, sources, destinations and
//! rules, validated when loaded so that a mistake is found at deploy time with an
//! error naming the key, not at 3 a.m. in a failed write.

use crate::naming::{NameRules, NameTemplate, Placeholder};
use crate::reference::Reference;
use crate::stores;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The environment variable that names the configuration file.
pub const CONFIG_PATH_ENV: &str = "FEDSYNC_CONFIG";
/// The environment variable that may hold the whole configuration inline
/// (it holds no credential, so an environment variable is a fine home for it).
pub const CONFIG_INLINE_ENV: &str = "FEDSYNC_CONFIG_TOML";

/// A validated configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub identities: BTreeMap<String, IdentityConfig>,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    pub destinations: BTreeMap<String, DestinationConfig>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Settings of the receivers (HTTP triggers).
    #[serde(default)]
    pub triggers: TriggersConfig,
    /// Settings of the scheduled full pass (`fedsync reconcile`).
    #[serde(default)]
    pub reconcile: ReconcileConfig,
}

/// The reconcile pass: how to tell drift, and how fast to go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// `env:NAME` or `file:PATH`: the key of the value hash kept in the marks
    /// (at least 32 bytes). Without it a reconcile pass still finds destinations
    /// that are behind or whose current version is not fedsync's, but cannot
    /// tell a value changed behind marks that were left in place.
    pub value_key: Option<String>,
    /// Calls per second to each store (listing, reading, writing) during a pass.
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: u32,
    /// Secrets reconciled at the same time.
    #[serde(default = "default_reconcile_concurrency")]
    pub concurrency: usize,
    /// How long one pass may run before it stops (on Lambda, the invocation's
    /// deadline stops it sooner when that comes first).
    #[serde(default = "default_time_limit", deserialize_with = "duration")]
    pub time_limit: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            value_key: None,
            requests_per_second: default_requests_per_second(),
            concurrency: default_reconcile_concurrency(),
            time_limit: default_time_limit(),
        }
    }
}

fn default_requests_per_second() -> u32 {
    20
}

fn default_reconcile_concurrency() -> usize {
    4
}

fn default_time_limit() -> Duration {
    Duration::from_secs(10 * 60)
}

/// Settings of the HTTP triggers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggersConfig {
    pub pubsub: Option<PubSubConfig>,
    pub event_grid: Option<EventGridConfig>,
    pub notify: Option<NotifyConfig>,
    pub vault_audit: Option<VaultAuditConfig>,
}

/// The OpenBao/Vault audit stream listener: a `socket` audit device (TCP)
/// streams one JSON entry per request; KV v2 writes and deletes become changes.
/// The stream carries no credential, so the listener accepts it only on a
/// loopback or private address, and only from the peers it names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAuditConfig {
    /// `IP:PORT` on a loopback or private address.
    pub listen: std::net::SocketAddr,
    /// The `vault-kv` source whose server streams here.
    pub source: String,
    /// The addresses the server connects from (default: loopback only).
    #[serde(default)]
    pub allowed_peers: Vec<std::net::IpAddr>,
}

impl VaultAuditConfig {
    /// Whether a connection from `peer` may stream entries.
    pub fn admits(&self, peer: std::net::IpAddr) -> bool {
        let peer = peer.to_canonical();
        if self.allowed_peers.is_empty() {
            peer.is_loopback()
        } else {
            self.allowed_peers.iter().any(|p| p.to_canonical() == peer)
        }
    }
}

/// Loopback, or a private (RFC 1918) or unique-local (RFC 4193) address.
fn is_private(ip: std::net::IpAddr) -> bool {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// How the webhook authenticates fedsync's own change notices (`POST /v1/notify`):
/// an HMAC-SHA256 signature with a shared secret, and/or bearer JWTs from
/// trusted issuers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `env:NAME` or `file:PATH`: the key of `X-Fedsync-Signature`.
    pub hmac_secret: Option<String>,
    #[serde(default)]
    pub issuers: Vec<TrustedIssuer>,
}

/// An issuer whose tokens may send notices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// Its keys are found through `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The exact `aud` required.
    pub audience: String,
    /// The `sub` values allowed (exact).
    pub subjects: Vec<String>,
}

/// How the webhook authenticates Event Grid deliveries: an Entra bearer token
/// issued to Event Grid for the webhook's application (`tenant_id`, `audience`),
/// or a shared key (`shared_key`, given as the `key` query parameter or the
/// `X-Fedsync-Key` header).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventGridConfig {
    pub tenant_id: Option<String>,
    /// The webhook application's client id or application ID URI.
    pub audience: Option<String>,
    pub authority_host: Option<String>,
    /// `env:NAME` or `file:PATH`.
    pub shared_key: Option<String>,
}

/// How the Pub/Sub push receiver authenticates requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PubSubConfig {
    /// The audience of the push subscription's OIDC token (by default, Pub/Sub
    /// uses the push endpoint's URL).
    pub audience: String,
    /// The service account the subscription signs its tokens as.
    pub service_account: String,
    /// Google's signing keys (default `https://www.googleapis.com/oauth2/v3/certs`).
    #[serde(default = "default_google_jwks")]
    pub jwks_url: String,
    /// Accepted `iss` values (default Google's two spellings).
    #[serde(default = "default_google_issuers")]
    pub issuers: Vec<String>,
    /// The subscription's acknowledgement deadline (10 s to 600 s; default 10 s,
    /// Pub/Sub's own default): every push is answered within it, retries included.
    #[serde(default = "default_ack_deadline", deserialize_with = "duration")]
    pub ack_deadline: Duration,
}

fn default_ack_deadline() -> Duration {
    Duration::from_secs(10)
}

fn default_google_jwks() -> String {
    "https://www.googleapis.com/oauth2/v3/certs".into()
}

fn default_google_issuers() -> Vec<String> {
    vec![
        "https://accounts.google.com".into(),
        "accounts.google.com".into(),
    ]
}

/// A named token source: where fedsync's own signed JWT comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum IdentityConfig {
    /// A token file written by the platform (Kubernetes projected token, EKS/AKS
    /// conventions), re-read at every refresh. `path` is a path or `env:NAME`.
    File { path: String },
    /// fedsync signs its own short-lived tokens with a private key.
    SigningKey(SigningKeyConfig),
    /// The GitHub Actions runner's OIDC token (`ACTIONS_ID_TOKEN_REQUEST_URL`).
    GithubActions {},
    /// The Google metadata server's identity token (Cloud Run, GCE, GKE).
    GcpMetadata {
        /// `host[:port]` of the metadata server (default: `GCE_METADATA_HOST`, else
        /// `metadata.google.internal`).
        metadata_host: Option<String>,
    },
    /// A token minted by Vault/OpenBao (`identity/oidc/token/:role`).
    VaultOidc(VaultOidcConfig),
    /// AWS outbound identity federation: STS `GetWebIdentityToken`, signed with the
    /// host's own AWS credentials, issues a token for the host's IAM principal.
    AwsOutbound(AwsOutboundConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// The issuer URL the clouds trust; its discovery document and JWKS are hosted there.
    pub issuer: String,
    /// The private key: a PEM key in `env:NAME` or `file:PATH`, or `kms:ARN`, an
    /// AWS KMS asymmetric key that signs without ever leaving KMS.
    pub key: String,
    /// The `sub` claim: name the deployment narrowly (e.g. `fedsync:prod`).
    pub subject: String,
    /// Token lifetime (default 5 minutes; at most 1 hour).
    #[serde(default = "default_token_ttl", deserialize_with = "duration")]
    pub ttl: Duration,
}

fn default_token_ttl() -> Duration {
    Duration::from_secs(300)
}

/// An `aws-outbound` identity: the token's `iss` is the account's AWS issuer URL
/// (returned by `aws iam enable-outbound-web-identity-federation`) and its `sub`
/// the ARN of the host's IAM principal (for a Lambda, its execution role).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsOutboundConfig {
    /// The STS region (default: the host's, `AWS_REGION`); the call is not served
    /// by the global endpoint.
    pub region: Option<String>,
    /// `RS256` (default) or `ES384`.
    #[serde(default = "default_outbound_algorithm")]
    pub signing_algorithm: String,
    /// Token lifetime (default 5 minutes; 1 minute to 1 hour).
    #[serde(default = "default_token_ttl", deserialize_with = "duration")]
    pub ttl: Duration,
    /// Custom claims (request tags), at most 50.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_outbound_algorithm() -> String {
    "RS256".into()
}

/// Where changes come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// AWS Secrets Manager, read with the host's ambient credentials.
    AwsSecretsManager {
        /// Defaults to the host's region (`AWS_REGION`).
        region: Option<String>,
        endpoint: Option<String>,
    },
    /// Google Secret Manager.
    GcpSecretManager(GcpSourceConfig),
    /// Azure Key Vault, read through an Entra federated credential.
    AzureKeyVault(AzureKeyVaultConfig),
    /// A Vault or OpenBao KV v2 engine.
    VaultKv(VaultKvConfig),
}

/// A Vault/OpenBao KV v2 source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultKvConfig {
    /// `https://vault.example.com:8200`
    pub address: String,
    /// The KV v2 mount (default `secret`).
    #[serde(default = "default_kv_mount")]
    pub mount: String,
    /// A namespace (Vault Enterprise, OpenBao).
    pub namespace: Option<String>,
    /// How fedsync logs in (default: a token in `VAULT_TOKEN`).
    #[serde(default)]
    pub login: VaultLogin,
}

/// How fedsync logs in to Vault: JWT auth (`role` and one of its identities'
/// tokens), or a Vault token from a file it re-reads or a variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultLogin {
    /// JWT auth: the role to log in as...
    pub role: Option<String>,
    /// ...with a token from this identity...
    pub identity: Option<String>,
    /// ...for this audience (default `vault`)...
    #[serde(default = "default_vault_audience")]
    pub audience: String,
    /// ...at this auth mount (default `jwt`).
    #[serde(default = "default_jwt_mount")]
    pub auth_mount: String,
    /// Or a Vault token: `file:PATH` (re-read at every use) or `env:NAME`.
    pub token: Option<String>,
}

impl Default for VaultLogin {
    fn default() -> Self {
        VaultLogin {
            role: None,
            identity: None,
            audience: default_vault_audience(),
            auth_mount: default_jwt_mount(),
            token: Some("env:VAULT_TOKEN".into()),
        }
    }
}

/// The `vault-oidc` identity: tokens minted by Vault/OpenBao's identity secrets
/// engine (`identity/oidc/token/:role`), so Vault is the issuer the clouds trust.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultOidcConfig {
    /// `https://vault.example.com:8200`
    pub address: String,
    /// A namespace (Vault Enterprise, OpenBao).
    pub namespace: Option<String>,
    /// The OIDC role; its `client_id` is the tokens' audience.
    pub role: String,
    /// How fedsync logs in to Vault to mint them (default: a token in `VAULT_TOKEN`).
    #[serde(default)]
    pub login: VaultLogin,
}

fn default_kv_mount() -> String {
    "secret".into()
}
fn default_vault_audience() -> String {
    "vault".into()
}
fn default_jwt_mount() -> String {
    "jwt".into()
}

/// Google Secret Manager as a source: read as the host's own service account
/// (the metadata server's access token), or through workload identity
/// federation when `identity` and `workload_identity_provider` are set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpSourceConfig {
    pub project: String,
    /// The project's number, as Secret Manager's notifications name the project
    /// (needed to route them when `project` is the project's id).
    pub project_number: Option<String>,
    pub identity: Option<String>,
    pub workload_identity_provider: Option<String>,
    pub service_account: Option<String>,
    pub audience: Option<String>,
    pub secretmanager_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    pub iamcredentials_endpoint: Option<String>,
    /// `host[:port]` of the metadata server, for the ambient access token.
    pub metadata_host: Option<String>,
}

/// Google Secret Manager as a destination, reached through workload identity
/// federation (Google STS), optionally impersonating a service account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpDestinationConfig {
    pub project: String,
    /// `//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`
    pub workload_identity_provider: String,
    /// Impersonated with IAM Credentials `generateAccessToken` when set.
    pub service_account: Option<String>,
    pub identity: String,
    /// The token's `aud` (default `https:` + the provider's name).
    pub audience: Option<String>,
    /// Locations for user-managed replication of the secrets fedsync creates
    /// (default: automatic replication).
    #[serde(default)]
    pub replication_locations: Vec<String>,
    pub secretmanager_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    pub iamcredentials_endpoint: Option<String>,
}

/// The default `aud` Google expects: the provider's full name with `https:` in front.
pub fn google_default_audience(provider: &str) -> String {
    format!("https:{provider}")
}

/// Where secrets are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DestinationConfig {
    AwsSecretsManager(AwsDestinationConfig),
    GcpSecretManager(GcpDestinationConfig),
    AzureKeyVault(AzureKeyVaultConfig),
}

/// Azure Key Vault, reached with an Entra access token obtained by presenting
/// fedsync's token as a federated credential (`client_assertion`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureKeyVaultConfig {
    /// `https://NAME.vault.azure.net`
    pub vault_url: String,
    /// The vault's name, when `vault_url` does not start with it (a private
    /// endpoint or a custom domain): Event Grid events name vaults by name.
    pub vault_name: Option<String>,
    /// The directory (default `AZURE_TENANT_ID`).
    pub tenant_id: Option<String>,
    /// The app registration's or managed identity's client id (default `AZURE_CLIENT_ID`).
    pub client_id: Option<String>,
    pub identity: String,
    /// The token's `aud` (default `api://AzureADTokenExchange`).
    #[serde(default = "default_azure_audience")]
    pub audience: String,
    /// Default `AZURE_AUTHORITY_HOST`, else `https://login.microsoftonline.com/`.
    pub authority_host: Option<String>,
    /// What to do when a name is held by a soft-deleted secret (destinations).
    #[serde(default)]
    pub on_soft_deleted: SoftDeleted,
}

fn default_azure_audience() -> String {
    "api://AzureADTokenExchange".into()
}

/// A Key Vault name held by a soft-deleted secret.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SoftDeleted {
    /// Fail with an error that says how to fix it.
    #[default]
    Fail,
    /// Recover the secret, wait until it is usable, then write.
    Recover,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsDestinationConfig {
    pub region: String,
    /// The role assumed with `AssumeRoleWithWebIdentity`.
    pub role_arn: String,
    /// The identity whose token is presented to STS.
    pub identity: String,
    /// The token's `aud` (default `sts.amazonaws.com`).
    #[serde(default = "default_aws_audience")]
    pub audience: String,
    pub endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    /// The role session name (default `fedsync`), visible in CloudTrail.
    #[serde(default = "default_session_name")]
    pub session_name: String,
    /// Lifetime of the role credentials (default 1 hour; 15 minutes to 12 hours).
    #[serde(default = "default_session_duration", deserialize_with = "duration")]
    pub session_duration: Duration,
    /// KMS key for secrets fedsync creates (default: the account's `aws/secretsmanager` key).
    pub kms_key_id: Option<String>,
    /// Recovery window for deletions propagated with `on_delete = "delete"` (7 to 30 days).
    #[serde(default = "default_recovery_window")]
    pub recovery_window_days: u8,
}

fn default_aws_audience() -> String {
    "sts.amazonaws.com".into()
}
fn default_session_name() -> String {
    "fedsync".into()
}
fn default_session_duration() -> Duration {
    Duration::from_secs(3600)
}
fn default_recovery_window() -> u8 {
    30
}

impl DestinationConfig {
    pub fn identity(&self) -> &str {
        match self {
            DestinationConfig::AwsSecretsManager(d) => &d.identity,
            DestinationConfig::GcpSecretManager(d) => &d.identity,
            DestinationConfig::AzureKeyVault(d) => &d.identity,
        }
    }

    /// The `aud` its identity's tokens are requested for.
    pub fn audience(&self) -> String {
        match self {
            DestinationConfig::AwsSecretsManager(d) => d.audience.clone(),
            DestinationConfig::GcpSecretManager(d) => d
                .audience
                .clone()
                .unwrap_or_else(|| google_default_audience(&d.workload_identity_provider)),
            DestinationConfig::AzureKeyVault(d) => d.audience.clone(),
        }
    }

    pub fn name_rules(&self) -> &'static NameRules {
        match self {
            DestinationConfig::AwsSecretsManager(_) => &stores::aws_sm::NAME_RULES,
            DestinationConfig::GcpSecretManager(_) => &stores::gcp_sm::NAME_RULES,
            DestinationConfig::AzureKeyVault(_) => &stores::azure_kv::NAME_RULES,
        }
    }
}

/// One destination secret per source secret, or one per JSON key of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    #[default]
    Secret,
    Key,
}

/// Whether fedsync may overwrite a destination secret that already exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    /// Only secrets fedsync created (or adopted) for this same source.
    #[default]
    Managed,
    /// Any secret; an unmanaged one is adopted.
    Always,
    /// Never overwrite; only create.
    IfAbsent,
}

/// What a source deletion does at the destinations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDelete {
    #[default]
    Ignore,
    /// Delete the destination secret, only when fedsync manages it for this source.
    Delete,
}

/// What a reconcile pass does with drift: a destination secret changed outside
/// fedsync (its current version is not the one fedsync wrote, or its value no
/// longer matches the value hash in its marks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDrift {
    /// Report it and leave the destination as it is.
    #[default]
    Report,
    /// Report it and write the source's value over it again.
    Repair,
}

/// Source + name pattern -> destinations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub source: String,
    /// Glob on the source secret's name: `*` within one `/` segment, `**` across them.
    #[serde(rename = "match")]
    pub pattern: String,
    pub destinations: Vec<String>,
    /// Destination name template (default `{name}`).
    #[serde(default = "default_name_template", deserialize_with = "template")]
    pub name: NameTemplate,
    #[serde(default)]
    pub granularity: Granularity,
    #[serde(default)]
    pub overwrite: Overwrite,
    #[serde(default)]
    pub on_delete: OnDelete,
    #[serde(default)]
    pub on_drift: OnDrift,
    /// Extra tags written on every destination secret.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_name_template() -> NameTemplate {
    NameTemplate::parse("{name}").expect("the default template is valid")
}

impl Rule {
    /// Whether this rule covers the named secret of the named source.
    pub fn matches(&self, source: &str, secret: &str) -> bool {
        self.source == source && glob_match::glob_match(&self.pattern, secret)
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|_| {
        serde::de::Error::custom(format!(
            "{} is not a duration; write e.g. \"5m\" or \"1h\"",
            crate::excerpt::quote(&s)
        ))
    })
}

fn template<'de, D: Deserializer<'de>>(d: D) -> Result<NameTemplate, D::Error> {
    let s = String::deserialize(d)?;
    NameTemplate::parse(&s).map_err(serde::de::Error::custom)
}

/// Everything wrong with a configuration, each problem with the key it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the configuration came from (a path, or the environment variable).
    pub origin: String,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, e.g. `destinations.aws-dr.identity` or `rules[0].name`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration {}:", self.origin)?;
        for p in &self.problems {
            if p.key.is_empty() {
                write!(f, "\n  {}", p.message)?;
            } else {
                write!(f, "\n  {}: {}", p.key, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads the configuration the way every entry point does: inline from
    /// `FEDSYNC_CONFIG_TOML` when set, else from the file `FEDSYNC_CONFIG` names
    /// (default `fedsync.toml`).
    pub fn from_environment() -> Result<Config, ConfigError> {
        if let Ok(text) = std::env::var(CONFIG_INLINE_ENV) {
            return Config::parse(&text, CONFIG_INLINE_ENV);
        }
        let path = std::env::var(CONFIG_PATH_ENV).unwrap_or_else(|_| "fedsync.toml".into());
        Config::load(Path::new(&path))
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            problems: vec![Problem {
                key: String::new(),
                message: format!("cannot read it: {e}"),
            }],
        })?;
        Config::parse(&text, &origin)
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError {
            origin: origin.to_string(),
            problems,
        };
        let raw: toml::Table =
            toml::from_str(text).map_err(|e| fail(vec![toml_problem(text, &e)]))?;
        let mut problems = Vec::new();
        find_inline_credentials(&toml::Value::Table(raw), "", &mut problems);
        if !problems.is_empty() {
            return Err(fail(problems));
        }
        let config: Config =
            toml::from_str(text).map_err(|e| fail(vec![toml_problem(text, &e)]))?;
        config.validate(&mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }

    fn validate(&self, problems: &mut Vec<Problem>) {
        let mut report = |key: String, message: String| problems.push(Problem { key, message });

        let r = &self.reconcile;
        if let Some(key) = &r.value_key
            && !matches!(
                Reference::parse(key),
                Ok(Reference::Env(_) | Reference::File(_))
            )
        {
            report(
                "reconcile.value_key".into(),
                "must be \"env:NAME\" or \"file:PATH\"".into(),
            );
        }
        if !(1..=1000).contains(&r.requests_per_second) {
            report(
                "reconcile.requests_per_second".into(),
                "must be between 1 and 1000".into(),
            );
        }
        if !(1..=64).contains(&r.concurrency) {
            report(
                "reconcile.concurrency".into(),
                "must be between 1 and 64".into(),
            );
        }

        for (name, identity) in &self.identities {
            let key = format!("identities.{name}");
            match identity {
                IdentityConfig::GithubActions {} => {}
                IdentityConfig::AwsOutbound(o) => check_aws_outbound(&key, o, &mut report),
                IdentityConfig::VaultOidc(v) => {
                    check_url(&v.address, &format!("{key}.address"), &mut report);
                    if v.role.is_empty() {
                        report(format!("{key}.role"), "must name an OIDC role".into());
                    }
                    let login = format!("{key}.login");
                    self.check_vault_login(&v.login, &login, &mut report);
                    let via = v
                        .login
                        .identity
                        .as_ref()
                        .and_then(|i| self.identities.get(i));
                    if matches!(via, Some(IdentityConfig::VaultOidc(_))) {
                        report(
                            format!("{login}.identity"),
                            "must not be another vault-oidc identity: Vault needs a token from elsewhere to let fedsync in".into(),
                        );
                    }
                }
                IdentityConfig::File { path } => {
                    // A path, or env:NAME naming the variable that holds the path.
                    let problem = match path.split_once(':') {
                        _ if path.is_empty() => Some("must name a file"),
                        Some(("env", "")) => Some("\"env:\" must name a variable"),
                        Some(("env", _)) | None => None,
                        Some(("file", _)) => Some("write the path itself, without \"file:\""),
                        Some(_) if path.starts_with('/') => None,
                        Some(_) => Some(
                            "expected a file path or \"env:NAME\" naming a variable that holds the path",
                        ),
                    };
                    if let Some(problem) = problem {
                        report(format!("{key}.path"), problem.into());
                    }
                }
                IdentityConfig::GcpMetadata {
                    metadata_host: Some(host),
                } => {
                    check_metadata_host(host, &format!("{key}.metadata_host"), &mut report);
                }
                IdentityConfig::GcpMetadata {
                    metadata_host: None,
                } => {}
                IdentityConfig::SigningKey(sk) => {
                    check_url(&sk.issuer, &format!("{key}.issuer"), &mut report);
                    match Reference::parse(&sk.key) {
                        Ok(Reference::Env(_) | Reference::File(_)) => {}
                        Ok(Reference::Kms(arn)) => {
                            if let Err(e) = crate::identity::kms_key_region(&arn) {
                                report(format!("{key}.key"), e);
                            }
                        }
                        Err(e) => report(format!("{key}.key"), e),
                    }
                    if sk.subject.is_empty() {
                        report(format!("{key}.subject"), "must not be empty".into());
                    }
                    if sk.ttl < Duration::from_secs(60) || sk.ttl > Duration::from_secs(3600) {
                        report(
                            format!("{key}.ttl"),
                            "tokens must live between 1 minute and 1 hour".into(),
                        );
                    }
                }
            }
        }

        // Events name a region, not a source: one Secrets Manager source per region.
        let mut regions: BTreeMap<Option<&str>, &str> = BTreeMap::new();
        for (name, source) in &self.sources {
            let key = format!("sources.{name}");
            match source {
                SourceConfig::AwsSecretsManager { endpoint, region } => {
                    if let Some(e) = endpoint {
                        check_url(e, &format!("{key}.endpoint"), &mut report);
                    }
                    if let Some(other) = regions.insert(region.as_deref(), name) {
                        let region = region.as_deref().unwrap_or("the host's region");
                        report(
                            format!("{key}.region"),
                            format!(
                                "source {other:?} already reads AWS Secrets Manager in {region}"
                            ),
                        );
                    }
                }
                SourceConfig::VaultKv(v) => {
                    check_url(&v.address, &format!("{key}.address"), &mut report);
                    self.check_vault_login(&v.login, &format!("{key}.login"), &mut report);
                }
                SourceConfig::AzureKeyVault(kv) => {
                    check_azure(&key, kv, &mut report);
                    if !self.identities.contains_key(&kv.identity) {
                        report(
                            format!("{key}.identity"),
                            unknown("identity", &kv.identity, self.identities.keys()),
                        );
                    }
                }
                SourceConfig::GcpSecretManager(gcp) => {
                    check_gcp_source(&key, gcp, &mut report);
                    if let Some(identity) = &gcp.identity
                        && !self.identities.contains_key(identity)
                    {
                        report(
                            format!("{key}.identity"),
                            unknown("identity", identity, self.identities.keys()),
                        );
                    }
                }
            }
        }

        for (name, destination) in &self.destinations {
            let key = format!("destinations.{name}");
            if !self.identities.contains_key(destination.identity()) {
                report(
                    format!("{key}.identity"),
                    unknown("identity", destination.identity(), self.identities.keys()),
                );
            }
            match destination {
                DestinationConfig::AwsSecretsManager(aws) => {
                    check_aws_destination(&key, aws, &mut report)
                }
                DestinationConfig::GcpSecretManager(gcp) => {
                    check_gcp_destination(&key, gcp, &mut report)
                }
                DestinationConfig::AzureKeyVault(kv) => check_azure(&key, kv, &mut report),
            }
        }

        if let Some(p) = &self.triggers.pubsub {
            check_url(&p.jwks_url, "triggers.pubsub.jwks_url", &mut report);
            if p.audience.is_empty() {
                report(
                    "triggers.pubsub.audience".into(),
                    "must be the push subscription's audience".into(),
                );
            }
            if !p.service_account.contains('@') {
                report(
                    "triggers.pubsub.service_account".into(),
                    format!("{:?} is not a service account email", p.service_account),
                );
            }
            if !(Duration::from_secs(10)..=Duration::from_secs(600)).contains(&p.ack_deadline) {
                report(
                    "triggers.pubsub.ack_deadline".into(),
                    "must be the subscription's acknowledgement deadline, 10s to 600s".into(),
                );
            }
        }

        if let Some(n) = &self.triggers.notify {
            if n.hmac_secret.is_none() && n.issuers.is_empty() {
                report(
                    "triggers.notify".into(),
                    "set hmac_secret, or at least one of issuers".into(),
                );
            }
            if let Some(secret) = &n.hmac_secret
                && !matches!(
                    Reference::parse(secret),
                    Ok(Reference::Env(_) | Reference::File(_))
                )
            {
                report(
                    "triggers.notify.hmac_secret".into(),
                    "must be \"env:NAME\" or \"file:PATH\"".into(),
                );
            }
            for (i, t) in n.issuers.iter().enumerate() {
                check_url(
                    &t.issuer,
                    &format!("triggers.notify.issuers[{i}].issuer"),
                    &mut report,
                );
                if t.subjects.is_empty() || t.audience.is_empty() {
                    report(
                        format!("triggers.notify.issuers[{i}]"),
                        "needs an audience and at least one allowed subject".into(),
                    );
                }
            }
        }

        if let Some(a) = &self.triggers.vault_audit {
            if !is_private(a.listen.ip()) {
                report(
                    "triggers.vault_audit.listen".into(),
                    "the audit stream is not authenticated: listen on a loopback or private address only".into(),
                );
            }
            for (i, peer) in a.allowed_peers.iter().enumerate() {
                if !is_private(*peer) {
                    report(
                        format!("triggers.vault_audit.allowed_peers[{i}]"),
                        "must be a loopback or private address".into(),
                    );
                }
            }
            if !matches!(self.sources.get(&a.source), Some(SourceConfig::VaultKv(_))) {
                report(
                    "triggers.vault_audit.source".into(),
                    unknown(
                        "vault-kv source",
                        &a.source,
                        self.vault_kv_sources().map(|(n, _)| n),
                    ),
                );
            }
        }

        if let Some(e) = &self.triggers.event_grid {
            let entra = e.tenant_id.is_some() || e.audience.is_some();
            match (&e.shared_key, entra) {
                (Some(_), true) | (None, false) => report(
                    "triggers.event_grid".into(),
                    "set either tenant_id and audience (Entra authentication) or shared_key, not both".into(),
                ),
                (Some(key), false) => {
                    if !matches!(Reference::parse(key), Ok(Reference::Env(_) | Reference::File(_))) {
                        report("triggers.event_grid.shared_key".into(), "must be \"env:NAME\" or \"file:PATH\"".into());
                    }
                }
                (None, true) if e.tenant_id.is_none() || e.audience.is_none() => {
                    report("triggers.event_grid".into(), "Entra authentication needs both tenant_id and audience".into());
                }
                (None, true) => {}
            }
            if let Some(host) = &e.authority_host {
                check_url(host, "triggers.event_grid.authority_host", &mut report);
            }
        }

        for (i, rule) in self.rules.iter().enumerate() {
            let key = format!("rules[{i}]");
            if !self.sources.contains_key(&rule.source) {
                report(
                    format!("{key}.source"),
                    unknown("source", &rule.source, self.sources.keys()),
                );
            }
            if rule.destinations.is_empty() {
                report(format!("{key}.destinations"), "names no destination".into());
            }
            match (rule.granularity, rule.name.uses(Placeholder::Key)) {
                (Granularity::Secret, true) => report(
                    format!("{key}.name"),
                    "{key} is only available with granularity = \"key\"".into(),
                ),
                (Granularity::Key, false) => report(
                    format!("{key}.name"),
                    "granularity = \"key\" needs {key} in the name template, or every key would land on one name".into(),
                ),
                _ => {}
            }
            if rule.granularity == Granularity::Key && rule.on_delete == OnDelete::Delete {
                report(
                    format!("{key}.on_delete"),
                    "on_delete = \"delete\" is not available with granularity = \"key\": the keys of a deleted secret cannot be read back".into(),
                );
            }
            for (j, dest) in rule.destinations.iter().enumerate() {
                if rule.destinations[..j].contains(dest) {
                    report(
                        format!("{key}.destinations[{j}]"),
                        format!("{dest:?} is listed twice"),
                    );
                    continue;
                }
                match self.destinations.get(dest) {
                    None => report(
                        format!("{key}.destinations[{j}]"),
                        unknown("destination", dest, self.destinations.keys()),
                    ),
                    Some(d) => {
                        if matches!(d, DestinationConfig::AzureKeyVault(_)) && rule.tags.len() > 12
                        {
                            report(
                                format!("{key}.tags"),
                                format!(
                                    "at most 12 tags for Key Vault destination {dest:?}: a secret holds 15, and fedsync's marks take 3"
                                ),
                            );
                        }
                        if let Err(e) = rule.name.check_against(d.name_rules()) {
                            report(
                                format!("{key}.name"),
                                format!("for destination {dest:?}: {e}"),
                            );
                        }
                    }
                }
            }
            if rule.tags.len() > MAX_USER_TAGS {
                report(
                    format!("{key}.tags"),
                    format!(
                        "at most {MAX_USER_TAGS} tags: secrets hold 50, and fedsync's marks take 3"
                    ),
                );
            }
            for (tag, value) in &rule.tags {
                if tag.starts_with(crate::marks::PREFIX) {
                    report(
                        format!("{key}.tags.{tag}"),
                        format!(
                            "tags starting with {:?} are fedsync's own marks",
                            crate::marks::PREFIX
                        ),
                    );
                }
                if tag.starts_with("aws:") {
                    report(
                        format!("{key}.tags.{tag}"),
                        "the \"aws:\" prefix is reserved by AWS".into(),
                    );
                }
                if tag.is_empty() || tag.len() > 128 || value.len() > 256 {
                    report(
                        format!("{key}.tags.{tag}"),
                        "tag keys are 1-128 characters and values at most 256".into(),
                    );
                }
            }
        }
    }

    /// The rules that cover one secret of one source, in file order.
    pub fn rules_for<'c, 'q>(
        &'c self,
        source: &'q str,
        secret: &'q str,
    ) -> impl Iterator<Item = &'c Rule> + use<'c, 'q> {
        self.rules.iter().filter(move |r| r.matches(source, secret))
    }
}

/// A TOML error as line, column and message: never the offending line itself,
/// which could hold a credential pasted into the file by mistake, nor a value
/// the parser quotes from it (names it quotes are cut to an excerpt).
fn toml_problem(text: &str, e: &toml::de::Error) -> Problem {
    let message = crate::excerpt::serde_message(e.message());
    let Some(span) = e.span() else {
        return Problem {
            key: String::new(),
            message,
        };
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    Problem {
        key: String::new(),
        message: format!("line {line}, column {column}: {message}"),
    }
}

type Report<'a> = dyn FnMut(String, String) + 'a;

fn check_aws_destination(key: &str, aws: &AwsDestinationConfig, report: &mut Report<'_>) {
    for (field, value) in [
        ("endpoint", &aws.endpoint),
        ("sts_endpoint", &aws.sts_endpoint),
    ] {
        if let Some(v) = value {
            check_url(v, &format!("{key}.{field}"), report);
        }
    }
    if !aws.role_arn.starts_with("arn:") || !aws.role_arn.contains(":role/") {
        report(
            format!("{key}.role_arn"),
            format!("{:?} is not an IAM role ARN", aws.role_arn),
        );
    }
    let valid_session = (2..=64).contains(&aws.session_name.len())
        && aws
            .session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !valid_session {
        report(
            format!("{key}.session_name"),
            "must be 2 to 64 characters of letters, digits and _+=,.@-".into(),
        );
    }
    if !(900..=43_200).contains(&aws.session_duration.as_secs()) {
        report(
            format!("{key}.session_duration"),
            "must be between 15m and 12h".into(),
        );
    }
    if !(7..=30).contains(&aws.recovery_window_days) {
        report(
            format!("{key}.recovery_window_days"),
            "must be between 7 and 30".into(),
        );
    }
}

/// Checks an `aws-outbound` identity against the limits of STS `GetWebIdentityToken`.
fn check_aws_outbound(key: &str, o: &AwsOutboundConfig, report: &mut Report<'_>) {
    if let Some(region) = &o.region {
        let shaped = region.contains('-')
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if region == "aws-global" || !shaped {
            report(
                format!("{key}.region"),
                format!(
                    "{region:?} is not an AWS region such as \"us-east-1\" (GetWebIdentityToken is served by regional STS endpoints only)"
                ),
            );
        }
    }
    if !OUTBOUND_ALGORITHMS.contains(&o.signing_algorithm.as_str()) {
        report(
            format!("{key}.signing_algorithm"),
            format!(
                "{:?} is not offered by AWS STS: use \"RS256\" or \"ES384\"",
                o.signing_algorithm
            ),
        );
    }
    if !(60..=3600).contains(&o.ttl.as_secs()) || o.ttl.subsec_nanos() != 0 {
        report(
            format!("{key}.ttl"),
            "tokens must live between 1 minute and 1 hour, in whole seconds".into(),
        );
    }
    if o.tags.len() > MAX_OUTBOUND_TAGS {
        report(
            format!("{key}.tags"),
            format!("at most {MAX_OUTBOUND_TAGS} tags"),
        );
    }
    let tag_char = |c: char| c == ' ' || c.is_alphanumeric() || "_.:/=+-@".contains(c);
    for (tag, value) in &o.tags {
        let key_ok = (1..=128).contains(&tag.chars().count()) && tag.chars().all(tag_char);
        let value_ok = value.chars().count() <= 256 && value.chars().all(tag_char);
        if !key_ok || !value_ok {
            report(
                format!("{key}.tags.{tag}"),
                "tag keys are 1-128 and values at most 256 letters, digits, spaces or _.:/=+-@"
                    .into(),
            );
        }
    }
}

/// Checks what Google federation needs: a provider's full name, an impersonated
/// service account that is one, and https endpoints.
fn check_google_access(
    key: &str,
    provider: Option<&str>,
    service_account: Option<&str>,
    endpoints: [(&str, &Option<String>); 3],
    report: &mut Report<'_>,
) {
    if let Some(p) = provider {
        let parts: Vec<&str> = p
            .strip_prefix("//iam.googleapis.com/")
            .unwrap_or("")
            .split('/')
            .collect();
        let shaped = matches!(parts.as_slice(), ["projects", number, "locations", "global", "workloadIdentityPools", pool, "providers", provider]
            if number.bytes().all(|b| b.is_ascii_digit()) && !number.is_empty() && !pool.is_empty() && !provider.is_empty());
        if !shaped {
            report(
                format!("{key}.workload_identity_provider"),
                "expected //iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER (the project number, not its id)".into(),
            );
        }
    }
    if let Some(sa) = service_account
        && !(sa.contains('@') && sa.ends_with(".iam.gserviceaccount.com"))
    {
        report(
            format!("{key}.service_account"),
            format!("{sa:?} is not a service account email (NAME@PROJECT.iam.gserviceaccount.com)"),
        );
    }
    for (field, value) in endpoints {
        if let Some(v) = value {
            check_url(v, &format!("{key}.{field}"), report);
        }
    }
}

fn check_gcp_destination(key: &str, gcp: &GcpDestinationConfig, report: &mut Report<'_>) {
    if gcp.project.is_empty() {
        report(format!("{key}.project"), "must name the project".into());
    }
    check_google_access(
        key,
        Some(&gcp.workload_identity_provider),
        gcp.service_account.as_deref(),
        [
            ("secretmanager_endpoint", &gcp.secretmanager_endpoint),
            ("sts_endpoint", &gcp.sts_endpoint),
            ("iamcredentials_endpoint", &gcp.iamcredentials_endpoint),
        ],
        report,
    );
    for (i, location) in gcp.replication_locations.iter().enumerate() {
        if location.is_empty()
            || !location
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            report(
                format!("{key}.replication_locations[{i}]"),
                format!("{location:?} is not a Google location such as \"us-east1\""),
            );
        }
    }
}

fn check_gcp_source(key: &str, gcp: &GcpSourceConfig, report: &mut Report<'_>) {
    if gcp.project.is_empty() {
        report(format!("{key}.project"), "must name the project".into());
    }
    if gcp.identity.is_some() != gcp.workload_identity_provider.is_some() {
        report(
            format!("{key}.identity"),
            "identity and workload_identity_provider go together: set both to read through federation, or neither to read as the host's service account".into(),
        );
    }
    check_google_access(
        key,
        gcp.workload_identity_provider.as_deref(),
        gcp.service_account.as_deref(),
        [
            ("secretmanager_endpoint", &gcp.secretmanager_endpoint),
            ("sts_endpoint", &gcp.sts_endpoint),
            ("iamcredentials_endpoint", &gcp.iamcredentials_endpoint),
        ],
        report,
    );
    if let Some(host) = &gcp.metadata_host {
        check_metadata_host(host, &format!("{key}.metadata_host"), report);
    }
}

impl Config {
    /// The `vault-kv` sources, by name.
    pub fn vault_kv_sources(&self) -> impl Iterator<Item = (&String, &VaultKvConfig)> {
        self.sources.iter().filter_map(|(name, s)| match s {
            SourceConfig::VaultKv(v) => Some((name, v)),
            _ => None,
        })
    }

    /// A Vault login is JWT auth (role and a known identity) or a token reference.
    fn check_vault_login(&self, login: &VaultLogin, key: &str, report: &mut Report<'_>) {
        match (&login.role, &login.identity, &login.token) {
            (Some(_), Some(identity), None) => {
                if !self.identities.contains_key(identity) {
                    report(
                        format!("{key}.identity"),
                        unknown("identity", identity, self.identities.keys()),
                    );
                }
            }
            (None, None, Some(token)) => {
                if !matches!(
                    Reference::parse(token),
                    Ok(Reference::Env(_) | Reference::File(_))
                ) {
                    report(
                        format!("{key}.token"),
                        "must be \"file:PATH\" or \"env:NAME\"".into(),
                    );
                }
            }
            _ => report(
                key.to_string(),
                "log in either with JWT auth (role and identity) or with a token (token), not both"
                    .into(),
            ),
        }
    }
}

fn check_azure(key: &str, kv: &AzureKeyVaultConfig, report: &mut Report<'_>) {
    check_url(&kv.vault_url, &format!("{key}.vault_url"), report);
    if let Some(host) = &kv.authority_host {
        check_url(host, &format!("{key}.authority_host"), report);
    }
    for (field, value, env) in [
        ("tenant_id", &kv.tenant_id, "AZURE_TENANT_ID"),
        ("client_id", &kv.client_id, "AZURE_CLIENT_ID"),
    ] {
        match value {
            Some(v) if v.is_empty() => report(format!("{key}.{field}"), "must not be empty".into()),
            Some(_) => {}
            None if std::env::var(env).is_ok() => {}
            None => report(
                format!("{key}.{field}"),
                format!("is not set, and neither is {env}"),
            ),
        }
    }
}

/// The metadata server is plain HTTP by nature, so only its own addresses (and
/// loopback, for emulators) are accepted: the egress guard's rule.
fn check_metadata_host(host: &str, key: &str, report: &mut Report<'_>) {
    if let Err(refused) = crate::egress::check_metadata_server(host) {
        report(key.into(), format!("{host:?}: {}", refused.reason));
    }
}

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<_> = known.map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown {what} {name:?}: none is defined")
    } else {
        format!("unknown {what} {name:?}; defined: {}", known.join(", "))
    }
}

/// Endpoints must pass the egress guard: https, except plain http to a loopback
/// address (emulators, tests), and never a link-local or metadata address.
fn check_url(value: &str, key: &str, report: &mut Report<'_>) {
    match url::Url::parse(value) {
        Err(e) => report(key.into(), format!("{value:?} is not a URL ({e})")),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => report(
            key.into(),
            "a URL must not carry a user name or password; fedsync authenticates with federated tokens".into(),
        ),
        Ok(u) => {
            if let Err(refused) = crate::egress::check(&u) {
                report(
                    key.into(),
                    format!("{} (host {})", refused.reason, refused.host),
                );
            }
        }
    }
}

/// The algorithms STS `GetWebIdentityToken` signs with.
const OUTBOUND_ALGORITHMS: &[&str] = &["RS256", "ES384"];
/// Request tags `GetWebIdentityToken` takes.
const MAX_OUTBOUND_TAGS: usize = 50;

/// Tags a rule may add: AWS allows 50 per secret, and fedsync's marks take 3.
const MAX_USER_TAGS: usize = 47;

/// Key names that would hold a credential; fedsync takes none of them inline.
const CREDENTIAL_KEYS: &[&str] = &[
    "access_key_id",
    "aws_access_key_id",
    "secret_access_key",
    "aws_secret_access_key",
    "session_token",
    "client_secret",
    "password",
    "private_key",
    "credentials",
    "token",
];

/// Flags anything that looks like a credential written into the file: a PEM block,
/// an AWS access key id, a JWT, or a credential-named key whose value is not an
/// `env:`/`file:` reference.
fn find_inline_credentials(value: &toml::Value, key: &str, problems: &mut Vec<Problem>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let child = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                let named_credential = CREDENTIAL_KEYS.contains(&k.to_ascii_lowercase().as_str());
                if named_credential
                    && !v
                        .as_str()
                        .is_some_and(|s| s.starts_with("env:") || s.starts_with("file:"))
                {
                    problems.push(Problem {
                        key: child.clone(),
                        message: "a credential must not be written in the configuration; fedsync uses short-lived federated credentials (refer to material with \"env:NAME\" or \"file:PATH\" where a key is needed)".into(),
                    });
                    continue;
                }
                find_inline_credentials(v, &child, problems);
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                find_inline_credentials(v, &format!("{key}[{i}]"), problems);
            }
        }
        toml::Value::String(s) => {
            let what = if s.contains("-----BEGIN") {
                Some("a PEM key or certificate")
            } else if looks_like_aws_key_id(s) {
                Some("an AWS access key id")
            } else if looks_like_jwt(s) {
                Some("a token (JWT)")
            } else {
                None
            };
            if let Some(what) = what {
                problems.push(Problem {
                    key: key.into(),
                    message: format!("this looks like {what} written inline; put it in an environment variable or file and refer to it with \"env:NAME\" or \"file:PATH\""),
                });
            }
        }
        _ => {}
    }
}

fn looks_like_aws_key_id(s: &str) -> bool {
    s.as_bytes().windows(20).any(|w| {
        (w.starts_with(b"AKIA") || w.starts_with(b"ASIA"))
            && w[4..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    })
}

fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<_> = s.split('.').collect();
    parts.len() == 3 && parts[0].starts_with("eyJ") && parts[1].starts_with("eyJ")
}

#[cfg(test)]
mod tests;
