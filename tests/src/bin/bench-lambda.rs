//! Benchmark of the Lambda binary (`fedsync-eventbridge`): time from process start
//! to its first Runtime API poll, peak RSS after one event, and binary size.
//! Run it with the release build (see BENCHMARKS.md):
//!
//!     cargo build --release -p fedsync-eventbridge
//!     cargo run --release -p fedsync-tests --bin bench-lambda

use fedsync_tests::clouds::{Clouds, SUBJECT, event};
use fedsync_tests::lambda_api::{LambdaApi, LambdaProcess, workspace_binary};
use std::time::{Duration, Instant};

const STARTS: usize = 30;

#[tokio::main]
async fn main() {
    let binary = workspace_binary("fedsync-eventbridge");
    let size = std::fs::metadata(&binary).expect("the binary exists").len();
    let clouds = Clouds::start().await;
    let config = clouds.config("", SUBJECT);

    let mut starts = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let api = LambdaApi::start().await;
        let env = clouds.function_env(&config);
        let spawned = Instant::now();
        let process = LambdaProcess::spawn(&binary, &api, env);
        let first = api.wait_for_first_poll(Duration::from_secs(10)).await;
        let first =
            first.unwrap_or_else(|| panic!("no Runtime API poll; logs:\n{}", process.logs()));
        starts.push(first.duration_since(spawned));
    }
    starts.sort();

    let (api, process) = clouds.function(&config).await;
    api.invoke(
        event("eventbridge-put-secret-value.json"),
        Duration::from_secs(30),
    )
    .await
    .expect_ok();
    let peak_rss_kib = peak_rss_kib(process.id());

    let median = starts[STARTS / 2];
    let p90 = starts[STARTS * 9 / 10];
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    println!(
        "| start-up to first Runtime API poll (median of {STARTS}) | {:.1} ms | < 10 ms |",
        ms(median)
    );
    println!(
        "| start-up to first Runtime API poll (p90) | {:.1} ms | < 10 ms |",
        ms(p90)
    );
    println!(
        "| peak RSS after one event | {:.1} MiB | < 20 MiB |",
        peak_rss_kib as f64 / 1024.0
    );
    println!(
        "| binary size (stripped) | {:.1} MiB | < 12 MiB |",
        size as f64 / 1024.0 / 1024.0
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `VmHWM` of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is running");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}
