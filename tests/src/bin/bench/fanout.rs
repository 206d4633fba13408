//! Fan-out latency against the network floor, and how it scales with the number
//! of destinations. Every cloud API answers after a fixed delay `d` (one round
//! trip); a change's latency is measured from the notice's request to the
//! receiver's answer, after every destination has written.
//!
//! The floor of a path is its unavoidable round trips times `d`, plus the same
//! path's time with no delay (fedsync's and the emulators' CPU, loopback I/O):
//! - warm (credentials cached): the source read in parallel with every
//!   destination's state read, the writes in parallel, and one confirming source
//!   read (a notice does not serialize changes per secret): 3 round trips;
//! - cold (a fresh process, nothing cached): the longest exchange chain first,
//!   Google's STS then its impersonation (2, where Google is a destination; 1
//!   otherwise), then the same 3.

use std::time::Duration;

use crate::cpu;
use crate::report::{Table, ms, quantile, us, verdict};
use crate::world::{Cloud, World, secret_name};
use fedsync_tests::conditions;

/// Round trips of a warm change.
const WARM_TRIPS: u32 = 3;
const WARM_TARGET: f64 = 1.15;
const COLD_TARGET: f64 = 1.2;
/// Changes kept in every warm measurement.
const WARM_SAMPLES: usize = 40;
/// Fresh processes per cold measurement.
const COLD_SAMPLES: usize = 12;
/// Changes CPU per write is measured over.
const CPU_CHANGES: usize = 300;

/// One fan-out's figures.
pub struct Fanout {
    pub destinations: usize,
    pub warm: Measured,
    pub cold: Measured,
    pub cpu_per_write: Duration,
    pub cpu_per_change: Duration,
}

/// A path's median latency with the delay and without it, and its floor.
pub struct Measured {
    pub trips: u32,
    pub delayed: Duration,
    pub undelayed: Duration,
    pub floor: Duration,
}

impl Measured {
    fn new(trips: u32, delay: Duration, delayed: Duration, undelayed: Duration) -> Measured {
        Measured {
            trips,
            delayed,
            undelayed,
            floor: delay * trips + undelayed,
        }
    }

    pub fn ratio(&self) -> f64 {
        self.delayed.as_secs_f64() / self.floor.as_secs_f64()
    }

    /// Against the round trips alone, as if fedsync and the clouds took no time.
    pub fn network_ratio(&self, delay: Duration) -> f64 {
        self.delayed.as_secs_f64() / (delay * self.trips).as_secs_f64()
    }
}

/// Measures one change to `destinations` destinations, warm and cold.
pub async fn measure(destinations: usize, delay: Duration) -> Fanout {
    let world = World::start(destinations, 8).await;
    let cold_trips = WARM_TRIPS + longest_chain(&world);

    let receiver = world.receiver().await;
    conditions::set_delay(Duration::ZERO);
    let mut n = 0;
    let mut next_change = |world: &'_ World| {
        n += 1;
        world.change(&secret_name(n % 8), n)
    };
    // Credentials, connections and the JWKS-free notice path all warmed up.
    for _ in 0..8 {
        let change = next_change(&world);
        world.notify(&receiver, &change).await;
    }
    let before = (cpu::of(receiver.id()), world.all_exchanges());
    let mut written = 0;
    let mut undelayed = Vec::new();
    for _ in 0..CPU_CHANGES {
        let change = next_change(&world);
        let synced = world.notify(&receiver, &change).await;
        assert_eq!(
            synced.written, destinations,
            "every destination writes each change"
        );
        written += synced.written;
        undelayed.push(synced.latency);
    }
    let cpu = cpu::since(receiver.id(), before.0);
    let cpu_per_write = cpu / written.max(1) as u32;
    let cpu_per_change = cpu / CPU_CHANGES as u32;
    conditions::set_delay(delay);
    let mut delayed = Vec::new();
    for _ in 0..WARM_SAMPLES {
        let change = next_change(&world);
        let synced = world.notify(&receiver, &change).await;
        assert_eq!(
            synced.written, destinations,
            "every destination writes each change"
        );
        delayed.push(synced.latency);
    }
    assert_eq!(
        world.all_exchanges(),
        before.1,
        "a warm change made an exchange"
    );
    drop(receiver);
    let warm = Measured::new(WARM_TRIPS, delay, median(delayed), median(undelayed));

    let mut cold_delayed = Vec::new();
    let mut cold_undelayed = Vec::new();
    for i in 0..2 * COLD_SAMPLES {
        let with_delay = i % 2 == 1;
        conditions::set_delay(Duration::ZERO);
        let receiver = world.receiver().await;
        let change = next_change(&world);
        conditions::set_delay(if with_delay { delay } else { Duration::ZERO });
        let synced = world.notify(&receiver, &change).await;
        assert_eq!(
            synced.written, destinations,
            "every destination writes each change"
        );
        let latency = synced.latency;
        if with_delay {
            cold_delayed.push(latency);
        } else {
            cold_undelayed.push(latency);
        }
    }
    conditions::set_delay(Duration::ZERO);
    let cold = Measured::new(
        cold_trips,
        delay,
        median(cold_delayed),
        median(cold_undelayed),
    );
    Fanout {
        destinations,
        warm,
        cold,
        cpu_per_write,
        cpu_per_change,
    }
}

/// The longest exchange chain of the world's destinations, in round trips.
fn longest_chain(world: &World) -> u32 {
    world
        .destinations
        .iter()
        .map(|d| match d.cloud {
            Cloud::Google => 2,
            Cloud::Aws | Cloud::Azure => 1,
        })
        .max()
        .unwrap_or(0)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    quantile(&samples, 0.5)
}

/// The fan-out table (3 destinations: AWS, Google, Azure) and the scaling table.
pub async fn run(delay: Duration) -> (Table, Table) {
    let mut fanouts = Vec::new();
    for destinations in [1, 3, 10, 30] {
        fanouts.push(measure(destinations, delay).await);
    }
    let d = ms(delay);
    let mut latency = Table::new(
        "Fan-out latency against the floor",
        &format!(
            "One change from AWS Secrets Manager to 3 destinations (AWS Secrets Manager, \
             Google Secret Manager through impersonation, Azure Key Vault), through the \
             release `fedsync-webhook`; every cloud API answers {d} late. Median of \
             {WARM_SAMPLES} changes (warm) and of {COLD_SAMPLES} fresh processes (cold). \
             Floor = round trips × {d} + the same path's median with no delay."
        ),
        &[
            "path",
            "round trips",
            "measured",
            "with no delay",
            "floor",
            "measured / floor",
            "target",
            "",
            "measured / round trips alone",
        ],
    );
    let three = fanouts
        .iter()
        .find(|f| f.destinations == 3)
        .expect("3 destinations measured");
    for (path, m, target) in [
        ("warm (credentials cached)", &three.warm, WARM_TARGET),
        (
            "cold (empty cache, exchanges first)",
            &three.cold,
            COLD_TARGET,
        ),
    ] {
        latency.row(vec![
            path.into(),
            m.trips.to_string(),
            ms(m.delayed),
            ms(m.undelayed),
            ms(m.floor),
            format!("{:.2}", m.ratio()),
            format!("≤ {target}"),
            verdict(m.ratio() <= target),
            format!("{:.2}", m.network_ratio(delay)),
        ]);
    }

    let mut scaling = Table::new(
        "Scaling with the number of destinations",
        &format!(
            "The same change to 1, 3, 10 and 30 destinations (AWS, Google and Azure in \
             turn, each AWS and Google destination with its own role or service account; \
             the Key Vault destinations share one Entra application), each cloud API \
             {d} late. CPU per write: the receiver's CPU time over {CPU_CHANGES} changes \
             with no delay, divided by the writes."
        ),
        &[
            "destinations",
            "warm",
            "warm / floor",
            "cold",
            "cold / floor",
            "warm, cold / round trips alone",
            "CPU per change",
            "CPU per write",
        ],
    );
    for f in &fanouts {
        scaling.row(vec![
            f.destinations.to_string(),
            ms(f.warm.delayed),
            format!("{:.2}", f.warm.ratio()),
            ms(f.cold.delayed),
            format!("{:.2}", f.cold.ratio()),
            format!(
                "{:.2}, {:.2}",
                f.warm.network_ratio(delay),
                f.cold.network_ratio(delay)
            ),
            us(f.cpu_per_change),
            us(f.cpu_per_write),
        ]);
    }
    if let (Some(first), Some(last)) = (fanouts.first(), fanouts.last()) {
        let more = (last.destinations - first.destinations).max(1) as u32;
        let marginal = last.cpu_per_change.saturating_sub(first.cpu_per_change) / more;
        scaling.note(format!(
            "CPU per change grows by {} per destination from {} to {} destinations; CPU \
             per write falls towards that as the change's own work (the notice, the \
             source read and its confirmation) is shared by more writes.",
            us(marginal),
            first.destinations,
            last.destinations
        ));
    }
    (latency, scaling)
}
