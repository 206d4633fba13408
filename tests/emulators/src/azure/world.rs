//! The Azure world of the end-to-end tests: Entra with fedsync's application
//! trusting one issuer and subject through a federated credential, another
//! application for the webhook's Event Grid audience, and a Key Vault the first
//! may write.

use super::entra::{Application, Entra, FederatedCredential};
use super::key_vault::{KeyVault, Role, VaultConfig};

pub const TENANT: &str = "6c2f1a3e-8b4d-4f5a-9e2c-1d3b5a7c9e0f";
pub const CLIENT: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
pub const WEBHOOK_APP: &str = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";

pub struct Azure {
    pub entra: Entra,
    pub vault: KeyVault,
}

/// Entra with fedsync's application trusting `issuer`/`subject`, and a vault it may write.
pub async fn azure(issuer: &str, subject: &str) -> Azure {
    let azure = Azure::start().await;
    azure.trust(issuer, subject);
    azure
}

impl Azure {
    /// Entra with fedsync's application (trusting nothing yet), and a vault it may write.
    pub async fn start() -> Azure {
        let entra = Entra::start().await;
        entra.add_tenant(TENANT);
        entra.add_application(TENANT, Application::new(CLIENT));
        entra.add_application(TENANT, Application::new(WEBHOOK_APP));
        let vault = KeyVault::start(&entra, VaultConfig::new("prod-kv", TENANT)).await;
        vault.grant(CLIENT, Role::SecretsOfficer);
        Azure { entra, vault }
    }

    /// Lets tokens from `issuer` with `subject` act as fedsync's application.
    pub fn trust(&self, issuer: &str, subject: &str) {
        self.entra.add_federated_credential(
            TENANT,
            CLIENT,
            FederatedCredential::new("fedsync", issuer, subject),
        );
    }

    /// The TOML table `[table]` of a Key Vault store using `identity` (`extra` is appended).
    pub fn vault_config(&self, table: &str, identity: &str, extra: &str) -> String {
        format!(
            "\n[{table}]\nkind = \"azure-key-vault\"\nvault_url = \"{}\"\nvault_name = \"prod-kv\"\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nidentity = \"{identity}\"\nauthority_host = \"{}\"\n{extra}\n",
            self.vault.url(),
            self.entra.authority_host()
        )
    }

    /// The tags of the latest version of `name`.
    pub fn tags(&self, name: &str) -> Vec<(String, String)> {
        let latest = self
            .vault
            .latest(name)
            .unwrap_or_else(|| panic!("{name} is not in the vault"));
        latest.tags.unwrap_or_default().into_iter().collect()
    }
}
