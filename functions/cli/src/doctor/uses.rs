//! Who presents which identity, and for which audience: every destination, every
//! source reached through federation, and every `vault-oidc` identity's Vault
//! login. Each use is one token to request, and one exchange to try.

use fedsync::config::{Config, IdentityConfig, SourceConfig};

/// What kind of thing a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Identity,
    Destination,
    Source,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Identity => "identity",
            Kind::Destination => "destination",
            Kind::Source => "source",
        }
    }
}

/// One store (or identity) presenting an identity's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub kind: Kind,
    /// Its name in the configuration.
    pub name: String,
    /// The identity it presents.
    pub identity: String,
    /// The `aud` it asks that identity's tokens for.
    pub audience: String,
}

/// Every use of every identity, destinations first, in the configuration's order.
pub fn uses(config: &Config) -> Vec<Use> {
    let mut all: Vec<Use> = config
        .destinations
        .iter()
        .map(|(name, d)| Use {
            kind: Kind::Destination,
            name: name.clone(),
            identity: d.identity().to_string(),
            audience: d.audience(),
        })
        .collect();
    for (name, source) in &config.sources {
        let (identity, audience) = match source {
            SourceConfig::GcpSecretManager(g) => match (&g.identity, &g.workload_identity_provider)
            {
                (Some(identity), Some(provider)) => (
                    identity.clone(),
                    g.audience
                        .clone()
                        .unwrap_or_else(|| fedsync::config::google_default_audience(provider)),
                ),
                _ => continue,
            },
            SourceConfig::AzureKeyVault(kv) => (kv.identity.clone(), kv.audience.clone()),
            SourceConfig::VaultKv(v) => match (&v.login.role, &v.login.identity) {
                (Some(_), Some(identity)) => (identity.clone(), v.login.audience.clone()),
                _ => continue,
            },
            // Read with the host's own credentials: no identity, no exchange.
            SourceConfig::AwsSecretsManager { .. } => continue,
        };
        all.push(Use {
            kind: Kind::Source,
            name: name.clone(),
            identity,
            audience,
        });
    }
    for (name, identity) in &config.identities {
        if let IdentityConfig::VaultOidc(v) = identity
            && let (Some(_), Some(login)) = (&v.login.role, &v.login.identity)
        {
            all.push(Use {
                kind: Kind::Identity,
                name: name.clone(),
                identity: login.clone(),
                audience: v.login.audience.clone(),
            });
        }
    }
    all
}

/// The audiences `identity` is asked for, each once, in the order of its uses.
pub fn audiences<'a>(uses: &'a [Use], identity: &str) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for u in uses.iter().filter(|u| u.identity == identity) {
        if !seen.contains(&u.audience.as_str()) {
            seen.push(&u.audience);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[identities.deploy]
kind = "file"
path = "/var/run/token"

[identities.vault]
kind = "vault-oidc"
address = "https://vault.example.com"
role = "fedsync"
login = { role = "fedsync", identity = "deploy", audience = "vault" }

[sources.main]
kind = "aws-secrets-manager"

[sources.kv]
kind = "azure-key-vault"
vault_url = "https://kv.vault.azure.net"
tenant_id = "t"
client_id = "c"
identity = "deploy"

[destinations.aws]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "arn:aws:iam::123456789012:role/w"
identity = "deploy"

[destinations.gcp]
kind = "gcp-secret-manager"
project = "p"
workload_identity_provider = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/p"
identity = "vault"
"#;

    #[test]
    fn every_federated_use_is_found_with_its_audience() {
        let config = fedsync::Config::parse(CONFIG, "test").unwrap();
        let all = uses(&config);
        let found: Vec<(Kind, &str, &str, &str)> = all
            .iter()
            .map(|u| (u.kind, &*u.name, &*u.identity, &*u.audience))
            .collect();
        assert_eq!(
            found,
            vec![
                (Kind::Destination, "aws", "deploy", "sts.amazonaws.com"),
                (
                    Kind::Destination,
                    "gcp",
                    "vault",
                    "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/p"
                ),
                (Kind::Source, "kv", "deploy", "api://AzureADTokenExchange"),
                (Kind::Identity, "vault", "deploy", "vault"),
            ]
        );
        assert_eq!(
            audiences(&all, "deploy"),
            vec!["sts.amazonaws.com", "api://AzureADTokenExchange", "vault"]
        );
    }
}
