//! Strict local emulators of the AWS services fedsync speaks besides STS (see
//! [`crate::sts_front`]): IAM's keys, roles and sessions, and Secrets Manager.
//!
//! [`Aws::start`] starts them wired together: a local STS front that issues sessions of
//! IAM's roles, and Secrets Manager, which accepts only requests signed with keys IAM
//! knows and allowed by the caller's role.

pub mod iam;
pub mod secrets_manager;

use std::sync::Arc;

use crate::sts_front::StsFront;
use iam::Iam;
use secrets_manager::SecretsManager;

/// The actions a destination's role allows fedsync in Secrets Manager: every call a
/// sync makes there, and nothing else.
pub const WRITER_ACTIONS: &[&str] = &[
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:TagResource",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret",
];

/// IAM, a local STS front and Secrets Manager, wired together.
pub struct Aws {
    pub iam: Arc<Iam>,
    pub sts: StsFront,
    pub secrets_manager: SecretsManager,
}

impl Aws {
    /// Starts STS and Secrets Manager on their own ports, over one IAM.
    pub async fn start() -> Self {
        Self::start_with(Arc::new(Iam::new())).await
    }

    /// Starts STS and Secrets Manager over an IAM set up beforehand.
    pub async fn start_with(iam: Arc<Iam>) -> Self {
        let sts = StsFront::start_local(Arc::clone(&iam)).await;
        let secrets_manager = SecretsManager::start(Arc::clone(&iam)).await;
        Aws {
            iam,
            sts,
            secrets_manager,
        }
    }
}
