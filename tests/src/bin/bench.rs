//! Benchmark of the function binaries: start-up (process start to the first
//! Runtime API poll for the Lambda, to the first accepted connection for the
//! Pub/Sub receiver), peak RSS after one event, and stripped binary size.
//! Run it with the release build (see BENCHMARKS.md):
//!
//!     cargo build --release --bins
//!     cargo run --release -p fedsync-tests --bin bench

use fedsync_tests::clouds::{Clouds, SUBJECT, event};
use fedsync_tests::google_world::{GOOGLE_SECRET, SOURCE_PROJECT, push_world};
use fedsync_tests::lambda_api::{LambdaApi, LambdaProcess, workspace_binary};
use fedsync_tests::receiver::Receiver;
use std::time::{Duration, Instant};

const STARTS: usize = 30;

struct Figures {
    function: &'static str,
    start_up: &'static str,
    starts: Vec<Duration>,
    peak_rss_kib: u64,
    size: u64,
}

#[tokio::main]
async fn main() {
    let lambda = lambda().await;
    let pubsub = pubsub().await;
    println!(
        "| function | start-up (median of {STARTS}) | start-up (p90) | peak RSS after one event | binary size (stripped) |"
    );
    println!("|---|---|---|---|---|");
    for f in [lambda, pubsub] {
        let (median, p90) = (f.starts[STARTS / 2], f.starts[STARTS * 9 / 10]);
        println!(
            "| {} ({}) | {:.1} ms | {:.1} ms | {:.1} MiB | {:.1} MiB |",
            f.function,
            f.start_up,
            ms(median),
            ms(p90),
            f.peak_rss_kib as f64 / 1024.0,
            f.size as f64 / 1024.0 / 1024.0
        );
    }
    println!("| target | < 10 ms | < 10 ms | < 20 MiB | < 12 MiB |");
}

async fn lambda() -> Figures {
    let binary = workspace_binary("fedsync-eventbridge");
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
    Figures {
        function: "fedsync-eventbridge",
        start_up: "to the first Runtime API poll",
        starts,
        peak_rss_kib: peak_rss_kib(process.id()),
        size: size(&binary),
    }
}

async fn pubsub() -> Figures {
    let binary = workspace_binary("fedsync-pubsub-push");
    let world = push_world().await;
    let mut body = event("pubsub-secret-version-add.json");
    body["message"]["attributes"]["secretId"] =
        format!("projects/{}/secrets/{GOOGLE_SECRET}", SOURCE_PROJECT.1).into();
    let (status, answer) = world.push(&body, Some(world.good_token())).await;
    assert_eq!(status, 200, "{answer:#}");
    let peak_rss_kib = peak_rss_kib(world.receiver.id());
    let env = [(
        "FEDSYNC_CONFIG_TOML".to_string(),
        world.receiver_config.clone(),
    )];
    let mut starts = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        starts.push(Receiver::start("fedsync-pubsub-push", &env).await.startup());
    }
    starts.sort();
    Figures {
        function: "fedsync-pubsub-push",
        start_up: "to the first accepted connection",
        starts,
        peak_rss_kib,
        size: size(&binary),
    }
}

fn size(binary: &std::path::Path) -> u64 {
    std::fs::metadata(binary).expect("the binary exists").len()
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
