//! CPU per destination write and the receiver's throughput: many changes sent
//! at a fixed concurrency to one warm `fedsync-webhook`, every cloud API on
//! loopback with no added delay. The receiver's CPU time (all its threads) over
//! the run, divided by the writes it made; and changes synced per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream;

use crate::cpu;
use crate::report::{Table, us};
use crate::world::{World, secret_name};

const CHANGES: usize = 10_000;
const CONCURRENCY: usize = 16;
/// More secrets than changes in flight, so that no change waits for another
/// change of the same secret.
const SECRETS: usize = 64;

pub async fn run() -> Table {
    let world = Arc::new(World::start(3, SECRETS).await);
    let receiver = world.receiver().await;
    // Credentials cached and connections open, as in a warm instance.
    for s in 0..SECRETS {
        world
            .notify(&receiver, &world.change(&secret_name(s), 0))
            .await;
    }
    let calls_before = aws_calls(&world);
    let (cpu_before, own_before) = (cpu::of(receiver.id()), cpu::own());
    let started = Instant::now();
    let written: usize = stream::iter(0..CHANGES)
        .map(|n| {
            let world = &world;
            let receiver = &receiver;
            async move {
                let change = world.change(&secret_name(n % SECRETS), n + 1);
                world.notify(receiver, &change).await.written
            }
        })
        .buffer_unordered(CONCURRENCY)
        .fold(0, |sum, w| async move { sum + w })
        .await;
    let elapsed = started.elapsed();
    let receiver_cpu = cpu::since(receiver.id(), cpu_before);
    let harness_cpu = cpu::since(std::process::id(), own_before);
    let calls: Vec<String> = aws_calls(&world)
        .iter()
        .zip(calls_before)
        .filter(|((_, after), (_, before))| after > before)
        .map(|((op, after), (_, before))| {
            format!("{op} {:.2}", (after - before) as f64 / CHANGES as f64)
        })
        .collect();
    let per = |total: Duration, count: usize| total / count.max(1) as u32;
    let mut table = Table::new(
        "CPU per write and throughput",
        &format!(
            "{CHANGES} changes of {SECRETS} secrets, {CONCURRENCY} at a time, to one warm \
             `fedsync-webhook` with 3 destinations (AWS, Google, Azure); every cloud API on \
             loopback with no added delay. The emulated clouds and the sender share the \
             machine's cores with the receiver."
        ),
        &["figure", "value"],
    );
    table.row(vec![
        "writes (destinations that took a new value)".into(),
        written.to_string(),
    ]);
    table.row(vec![
        "receiver CPU per destination write".into(),
        us(per(receiver_cpu, written)),
    ]);
    table.row(vec![
        "receiver CPU per change".into(),
        us(per(receiver_cpu, CHANGES)),
    ]);
    table.row(vec![
        format!("throughput at concurrency {CONCURRENCY}"),
        format!("{:.0} changes/s", CHANGES as f64 / elapsed.as_secs_f64()),
    ]);
    table.row(vec![
        "AWS Secrets Manager calls per change (source and destination)".into(),
        calls.join(", "),
    ]);
    table.row(vec![
        "emulated clouds and sender: CPU per change".into(),
        us(per(harness_cpu, CHANGES)),
    ]);
    table
}

/// Secrets Manager's answered calls so far, by operation.
fn aws_calls(world: &World) -> Vec<(&'static str, usize)> {
    [
        "GetSecretValue",
        "DescribeSecret",
        "ListSecretVersionIds",
        "CreateSecret",
        "PutSecretValue",
        "UpdateSecretVersionStage",
        "TagResource",
    ]
    .into_iter()
    .map(|op| (op, world.aws.secrets_manager.calls(op)))
    .collect()
}
