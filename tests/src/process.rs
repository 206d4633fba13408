//! Child processes (moto, the function binaries) whose stdout and stderr are kept in memory
//! so tests can search the logs afterwards; the process is killed when the handle drops.

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running child process with its output (stdout and stderr, interleaved line by line)
/// captured into memory.
#[derive(Debug)]
pub struct CapturedProcess {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl CapturedProcess {
    /// Spawns `command` with stdin closed and stdout and stderr captured.
    pub fn spawn(command: &mut Command) -> io::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let readers = vec![
            capture(stdout, Arc::clone(&output)),
            capture(stderr, Arc::clone(&output)),
        ];
        Ok(Self {
            child,
            output,
            readers,
        })
    }

    /// The operating-system process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has written so far (lossily decoded as UTF-8).
    pub fn logs(&self) -> String {
        let output = self.output.lock().expect("output buffer lock");
        String::from_utf8_lossy(&output).into_owned()
    }

    /// Waits until the logs contain `needle`; `false` if they do not within `timeout`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.logs().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("query a child's exit status")
    }

    /// Waits up to `timeout` for the process to exit, then for its output to be fully
    /// read; `None` if it is still running.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.try_exit_status() {
                break status;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        // The pipes close at exit unless a grandchild inherited them: bound the wait.
        let drained_by = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < drained_by {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        Some(status)
    }

    /// Kills the process (SIGKILL) and reaps it. Does nothing if it already exited.
    pub fn kill(&mut self) {
        if self.try_exit_status().is_none() {
            // It may exit between the check and the kill: both outcomes are fine.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for CapturedProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Copies `stream` into `output` line by line on a background thread, so lines from stdout
/// and stderr interleave whole.
fn capture(stream: impl Read + Send + 'static, output: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => output
                    .lock()
                    .expect("output buffer lock")
                    .extend_from_slice(&line),
            }
        }
    })
}
