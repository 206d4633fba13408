//! The `fedsync` command as the end-to-end tests run it: the configuration in a
//! temporary file, nothing in the environment but what the test gives, and the
//! output captured (and kept for the suite's leak count).

use crate::lambda_api::workspace_binary;
use crate::leaks::Role;
use std::process::Output;

/// Runs `fedsync ARGS --config FILE` with `config` in FILE and only `env` set.
pub async fn fedsync(args: &[&str], config: &str, env: &[(&str, String)]) -> Output {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), config).unwrap();
    let mut command = tokio::process::Command::new(workspace_binary("fedsync"));
    command
        .args(args)
        .arg("--config")
        .arg(file.path())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    crate::process::output(Role::Fedsync, &mut command)
        .await
        .expect("run fedsync")
}
