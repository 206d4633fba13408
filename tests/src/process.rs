//! Child processes (moto, the function binaries) whose stdout and stderr are kept in memory
//! so tests can search the logs afterwards, and appended to the suite's log file of the
//! process (see `leaks`); the process is killed when the handle drops.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::leaks::{self, Role};

const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running child process with its output (stdout and stderr, interleaved line by line)
/// captured into memory and into its suite log file.
#[derive(Debug)]
pub struct CapturedProcess {
    child: Child,
    output: Arc<Mutex<Output>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a process wrote so far, and its suite log file.
#[derive(Debug)]
struct Output {
    memory: Vec<u8>,
    file: File,
}

impl CapturedProcess {
    /// Spawns `command`, a process of `role`, with stdin closed and stdout and stderr
    /// captured.
    pub fn spawn(role: Role, command: &mut Command) -> io::Result<Self> {
        let file = leaks::log_file(role, &program_name(command.get_program()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let output = Arc::new(Mutex::new(Output {
            memory: Vec::new(),
            file,
        }));
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
        String::from_utf8_lossy(&output.memory).into_owned()
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
fn capture(stream: impl Read + Send + 'static, output: Arc<Mutex<Output>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let mut output = output.lock().expect("output buffer lock");
                    output.memory.extend_from_slice(&line);
                    output
                        .file
                        .write_all(&line)
                        .expect("append to the suite log file");
                }
            }
        }
    })
}

/// Runs `command`, a process of `role`, to completion with stdin closed, and appends its
/// output (stdout, then stderr) to its suite log file, as [`CapturedProcess`] does.
pub async fn output(
    role: Role,
    command: &mut tokio::process::Command,
) -> io::Result<std::process::Output> {
    let mut file = leaks::log_file(role, &program_name(command.as_std().get_program()))?;
    let output = command.stdin(Stdio::null()).output().await?;
    file.write_all(&output.stdout)?;
    file.write_all(&output.stderr)?;
    Ok(output)
}

/// The file name of a program.
fn program_name(program: &std::ffi::OsStr) -> String {
    Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy()
        .into_owned()
}

/// The profile directory of the running executable's target directory: tests live in
/// `target/PROFILE/deps`, binaries in `target/PROFILE`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running executable");
    let exe_dir = exe.parent().expect("the executable lives in a directory");
    if exe_dir.ends_with("deps") {
        exe_dir.parent().unwrap_or(exe_dir).to_path_buf()
    } else {
        exe_dir.to_path_buf()
    }
}
