//! The `vault-oidc` identity: Vault/OpenBao's identity secrets engine mints the
//! token (`GET /v1/identity/oidc/token/:role`), so Vault is the issuer the clouds
//! trust (`{api_addr}/v1/identity/oidc`, keys at `.well-known/keys`). The role's
//! `client_id` is the audience: one role per audience the destinations expect.

use super::{IdentityToken, TokenSource};
use crate::config::VaultOidcConfig;
use crate::exchange::{BearerToken, CredentialCache};
use crate::http;
use crate::report::{Failure, FailureClass};
use crate::vault::VaultClient;
use serde::Deserialize;
use std::sync::Arc;

/// Mints tokens through one OIDC role.
pub struct VaultOidc {
    vault: VaultClient,
    role: String,
}

#[derive(Deserialize)]
struct Answer {
    data: Minted,
}

#[derive(Deserialize)]
struct Minted {
    token: String,
}

impl VaultOidc {
    /// `login_identity` is the token source of the identity `config.login` names.
    pub fn new(
        config: &VaultOidcConfig,
        login_identity: Option<Arc<dyn TokenSource>>,
        cache: Arc<CredentialCache<BearerToken>>,
    ) -> Self {
        VaultOidc {
            vault: VaultClient::new(
                &config.address,
                config.namespace.as_deref(),
                &config.login,
                login_identity,
                cache,
            ),
            role: config.role.clone(),
        }
    }
}

#[async_trait::async_trait]
impl TokenSource for VaultOidc {
    async fn token(&self, audience: &str) -> Result<IdentityToken, Failure> {
        let role = &self.role;
        let what = format!("minting a token with Vault OIDC role {role:?}");
        let path = format!("identity/oidc/token/{role}");
        let response = self.vault.get(&path, &[], &what).await?.ok_or_else(|| {
            Failure::new(
                FailureClass::Auth,
                format!(
                    "{what}: Vault knows no such role (create it with `identity/oidc/role/{role}`)"
                ),
            )
        })?;
        let answer: Answer = http::json(response)
            .await
            .map_err(|e| http::failure(&e, &what))?;
        let token = IdentityToken::new(answer.data.token);
        // The role fixes the audience: a mismatch is a setup error, and saying so
        // here is clearer than the cloud's refusal.
        if !token.claims.aud.iter().any(|a| a == audience) {
            return Err(Failure::new(
                FailureClass::BadInput,
                format!(
                    "Vault OIDC role {role:?} issues tokens for audience {:?}, but this exchange needs {audience:?}: set the role's client_id to {audience:?}, or give the destination that audience",
                    token.claims.aud.join(" ")
                ),
            ));
        }
        Ok(token)
    }
}
