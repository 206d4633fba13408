//! Exchange economy: how many exchanges a burst and a steady hour of changes cost
//! each (identity, destination). A burst of concurrent changes on a fresh process
//! must make exactly one exchange per destination, and a second burst none; a
//! simulated hour of changes must exchange once per token lifetime: a token is
//! renewed a fifth of its lifetime (at most five minutes) before it expires, and
//! never earlier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::report::{Table, verdict};
use crate::world::{Cloud, World, secret_name};
use fedsync_tests::azure::entra::EXPIRES_IN;
use fedsync_tests::conditions;

const BURST: usize = 100;
const HOUR_CHANGES: usize = 10_000;
/// A simulated hour lasts a minute: every credential lives 1/60 of its lifetime.
const TIME_SCALE: u32 = 60;
/// The lifetime each cloud gives the credentials fedsync asks for: an hour from
/// AWS STS (fedsync's default session) and Google, `EXPIRES_IN` from Entra.
fn lifetime(cloud: Cloud) -> Duration {
    conditions::lifetime(Duration::from_secs(match cloud {
        Cloud::Aws | Cloud::Google => 3600,
        Cloud::Azure => EXPIRES_IN,
    }))
}

pub async fn run(delay: Duration) -> Table {
    let mut table = Table::new(
        "Exchange economy",
        &format!(
            "Exchanges granted per destination (AWS: STS sessions of its role; Google: \
             impersonations of its service account, each after one STS exchange; Azure: \
             Entra tokens of its application), counted by the emulated clouds. Burst: \
             {BURST} changes of {BURST} secrets sent at once to a fresh `fedsync-webhook`, \
             every cloud API {} ms late; then the same again, warm. Hour: {HOUR_CHANGES} \
             changes spread evenly over a simulated hour (every credential lives 1/{TIME_SCALE} \
             of its lifetime, so the hour takes a minute), no delay; expected: one exchange \
             per usable token lifetime (renewed a fifth of its lifetime, at most five \
             minutes, before it expires).",
            delay.as_millis()
        ),
        &["run", "destination", "exchanges", "expected", ""],
    );
    burst(delay, &mut table).await;
    hour(&mut table).await;
    table
}

async fn burst(delay: Duration, table: &mut Table) {
    let world = World::start(3, BURST).await;
    let receiver = world.receiver().await;
    conditions::set_delay(delay);
    for (round, expected) in [("burst, cold", 1), ("burst, warm", 0)] {
        let before: Vec<usize> = world
            .destinations
            .iter()
            .map(|d| world.exchanges(d))
            .collect();
        let sts_before = world.google.sts.successes();
        let changes: Vec<_> = (0..BURST)
            .map(|s| world.change(&secret_name(s), s + 1))
            .collect();
        for synced in join_all(changes.iter().map(|c| world.notify(&receiver, c))).await {
            assert_eq!(
                synced.written,
                world.destinations.len(),
                "every destination writes each change"
            );
        }
        for (d, before) in world.destinations.iter().zip(before) {
            let made = world.exchanges(d) - before;
            table.row(vec![
                format!("{round}: {BURST} changes at once"),
                d.name.clone(),
                made.to_string(),
                expected.to_string(),
                verdict(made == expected),
            ]);
        }
        let sts = world.google.sts.successes() - sts_before;
        table.row(vec![
            format!("{round}: {BURST} changes at once"),
            "(Google STS, before impersonation)".into(),
            sts.to_string(),
            expected.to_string(),
            verdict(sts == expected),
        ]);
    }
    conditions::set_delay(Duration::ZERO);
}

async fn hour(table: &mut Table) {
    conditions::set_time_scale(TIME_SCALE);
    let secrets = 100;
    let world = Arc::new(World::start(3, secrets).await);
    let receiver = Arc::new(world.receiver().await);
    let hour = Duration::from_secs(3600) / TIME_SCALE;
    let every = hour / HOUR_CHANGES as u32;
    let started = Instant::now();
    let mut ticks = tokio::time::interval(every);
    let mut sends = Vec::with_capacity(HOUR_CHANGES);
    for n in 0..HOUR_CHANGES {
        ticks.tick().await;
        let change = world.change(&secret_name(n % secrets), n + 1);
        let (world, receiver) = (Arc::clone(&world), Arc::clone(&receiver));
        sends.push(tokio::spawn(async move {
            world.notify(&receiver, &change).await;
        }));
    }
    // From the first exchange (at the first change) to the last change.
    let last_send = started.elapsed();
    let hour_run = format!(
        "hour: {HOUR_CHANGES} changes in {:.0} s",
        last_send.as_secs_f64()
    );
    for send in sends {
        send.await.expect("every change syncs");
    }
    for d in &world.destinations {
        let expected = expected(last_send, d.cloud);
        let made = world.exchanges(d);
        table.row(vec![
            hour_run.clone(),
            d.name.clone(),
            made.to_string(),
            expected.to_string(),
            verdict(made == expected),
        ]);
    }
    let sts = world.google.sts.successes();
    let expected = expected(last_send, Cloud::Google);
    table.row(vec![
        hour_run,
        "(Google STS, before impersonation)".into(),
        sts.to_string(),
        expected.to_string(),
        verdict(sts == expected),
    ]);
    conditions::set_time_scale(1);
}

/// Exchanges a destination of `cloud` needs for changes over `span`: the first,
/// then one each time its token is due for renewal.
fn expected(span: Duration, cloud: Cloud) -> usize {
    1 + (span.as_secs_f64() / usable(lifetime(cloud)).as_secs_f64()).floor() as usize
}

/// How long a token of `lifetime` is used before it is renewed: fedsync's
/// policy (`shared/src/exchange/cache.rs`), restated here so that a change to
/// it shows as a missed figure.
fn usable(lifetime: Duration) -> Duration {
    lifetime - (lifetime / 5).min(Duration::from_secs(300))
}
