//! An HTTP function binary (the Pub/Sub push receiver, the webhook) running on a
//! free loopback port, as a container platform would run it; its output is kept
//! for log searches, and it is killed when dropped.

use crate::lambda_api::workspace_binary;
use crate::leaks::Role;
use crate::moto::free_port;
use crate::process::CapturedProcess;
use std::process::Command;
use std::time::{Duration, Instant};

/// A running receiver.
#[derive(Debug)]
pub struct Receiver {
    process: CapturedProcess,
    url: String,
    started: Instant,
    ready: Instant,
}

impl Receiver {
    /// Starts the workspace binary `name` with `env` and `PORT`, and waits until it
    /// accepts connections.
    pub async fn start(name: &str, env: &[(&str, String)]) -> Receiver {
        let port = free_port();
        let mut command = Command::new(workspace_binary(name));
        command
            .env_clear()
            .env("PORT", port.to_string())
            .env("PATH", "/usr/bin:/bin");
        for (k, v) in env {
            command.env(k, v);
        }
        let started = Instant::now();
        let process = CapturedProcess::spawn(Role::Fedsync, &mut command)
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let deadline = started + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen on {port}; logs:\n{}",
                process.logs()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Receiver {
            process,
            url: format!("http://127.0.0.1:{port}"),
            started,
            ready: Instant::now(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// From spawning to the first accepted connection.
    pub fn startup(&self) -> Duration {
        self.ready - self.started
    }

    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Everything the receiver has written so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }
}
