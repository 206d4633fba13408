//! The one retry policy for every outbound call (HTTP and AWS SDK alike):
//! exponential backoff with full jitter, a server's `Retry-After` honoured, only
//! for failures that may pass by themselves, a bounded number of attempts, and
//! never an attempt or a wait past the invocation's deadline.
//!
//! The deadline belongs to the invocation (the Lambda deadline, the Pub/Sub ack
//! deadline, a configured budget): an entry point sets it once around its work
//! with [`with_deadline`], and every call made inside (same task; the engine
//! fans out with `join_all`, never `tokio::spawn`) finds it without it being
//! passed along. A task spawned for background work sets its own.
//!
//! A request whose answer was lost (sent, then a timeout, a reset, a body cut
//! short) is sent again only when repeating it is harmless: reads, token
//! exchanges, writes carrying an idempotency token. Otherwise the failure is
//! returned as it is (unavailable, so retryable by the trigger): the next sync
//! inspects the destination, whose marks make a completed write a no-op.

use crate::report::FailureClass;
use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use std::future::Future;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The first backoff's upper bound; each retry doubles it, up to [`CAP`].
pub const BASE: Duration = Duration::from_millis(200);
/// The largest backoff before jitter.
pub const CAP: Duration = Duration::from_secs(5);
/// Attempts per call at most, the first included.
pub const MAX_ATTEMPTS: usize = 5;
/// Kept free before the deadline, for reporting the outcome.
pub const MARGIN: Duration = Duration::from_millis(500);
/// An attempt is not started with less time than this left.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);
/// Each call's own budget when no invocation deadline is set (start-up, tools).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);
/// The variable that sets the budget of entry points without a platform deadline.
pub const BUDGET_ENV: &str = "FEDSYNC_BUDGET";

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as the deadline of every outbound call inside it.
pub async fn with_deadline<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The deadline `budget` from now.
pub fn deadline_in(budget: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(budget)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
}

/// The deadline at wall-clock time `at` (a platform's deadline).
pub fn deadline_at(at: SystemTime) -> Instant {
    Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default()
}

/// The deadline of the current invocation, if one was set.
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// The time left for outbound calls (the deadline less the margin), if a
/// deadline was set: for waits of fedsync's own, such as polling.
pub fn time_left() -> Option<Duration> {
    let deadline = deadline()?;
    let end = deadline.checked_sub(MARGIN).unwrap_or(deadline);
    Some(end.saturating_duration_since(Instant::now()))
}

/// The budget of an entry point without a platform deadline: `FEDSYNC_BUDGET`
/// (a duration such as `20s`) when set, else `default`.
pub fn budget_from_env(default: Duration) -> Result<Duration, String> {
    parse_budget(std::env::var(BUDGET_ENV).ok().as_deref(), default)
}

fn parse_budget(text: Option<&str>, default: Duration) -> Result<Duration, String> {
    match text {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text.trim())
            .ok()
            .filter(|d| *d > MARGIN)
            .ok_or_else(|| {
                format!(
                    "{BUDGET_ENV} must be a duration longer than {} ms, such as \"20s\"",
                    MARGIN.as_millis()
                )
            }),
    }
}

/// Whether a request may be sent again after its answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Repeating it is harmless: a read, a token exchange, a write carrying an
    /// idempotency token.
    Idempotent,
    /// Repeating it could act twice (a write that adds a version each time): it
    /// is sent again only when an answer proves it was not acted on.
    NotIdempotent,
}

/// What the policy needs to know of a failed attempt.
pub trait Transient: Sized {
    /// Whether the same request may succeed later without anyone changing
    /// anything (throttling, a transient failure, a lost answer).
    fn is_transient(&self) -> bool;
    /// Whether the server may have acted on the request: it was sent and no
    /// answer says that it was not (a 500, a timeout, a reset, a body cut short).
    fn may_have_acted(&self) -> bool;
    /// How long the server asked to wait.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
    /// The class reported in the retry log.
    fn class(&self) -> FailureClass;
    /// The failure of `call` when the invocation's time ran out: before an
    /// attempt (`sent` false) or during one.
    fn out_of_time(call: &str, sent: bool) -> Self;
}

/// The policy's backoff before each retry: exponential (`BASE`, doubling, at
/// most `CAP`) with full jitter, for `MAX_ATTEMPTS - 1` retries.
///
/// backon drives the attempts (retry predicate, `adjust` for `Retry-After` and
/// the deadline, async sleeping); it is small, maintained, and its backoff is
/// any iterator of durations. Its own jitter only adds up to one delay on top
/// (`delay + random(0, delay)`), so full jitter (`random(0, delay)`) is applied
/// here to its plain exponential sequence.
pub fn backoff() -> impl Iterator<Item = Duration> + Send + Sync + Unpin {
    let exponential = ExponentialBuilder::default()
        .with_min_delay(BASE)
        .with_max_delay(CAP)
        .with_factor(2.0)
        .with_max_times(MAX_ATTEMPTS - 1)
        .build();
    exponential.map(full_jitter as fn(Duration) -> Duration)
}

fn full_jitter(delay: Duration) -> Duration {
    delay.mul_f64(fastrand::f64())
}

/// Runs `attempt` under the policy. `call` names it in logs (method and path,
/// or the AWS operation; never a query, a body or a token).
pub async fn run<T, E, F, Fut>(call: &str, idempotency: Idempotency, mut attempt: F) -> Result<T, E>
where
    E: Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = deadline().unwrap_or_else(|| deadline_in(DEFAULT_BUDGET));
    // Time for attempts and waits ends MARGIN before the deadline.
    let end = deadline.checked_sub(MARGIN).unwrap_or(deadline);
    let timed = || {
        let left = end.saturating_duration_since(Instant::now());
        let future = attempt();
        async move {
            if left < MIN_ATTEMPT {
                return Err(E::out_of_time(call, false));
            }
            match tokio::time::timeout(left, future).await {
                Ok(result) => result,
                Err(_) => Err(E::out_of_time(call, true)),
            }
        }
    };
    let mut retries = 0u32;
    // Boxed: the nested futures of a call chain would otherwise grow too deep to lay out.
    let retrying = timed
        .retry(backoff())
        .when(|e: &E| {
            if !e.is_transient() {
                return false;
            }
            let resend = idempotency == Idempotency::Idempotent || !e.may_have_acted();
            if !resend {
                tracing::warn!(
                    call,
                    class = %e.class(),
                    "not sending again: the request may have been acted on, and repeating it is not harmless"
                );
            }
            resend
        })
        .adjust(|e: &E, backoff: Option<Duration>| {
            retries += 1;
            let class = e.class();
            let Some(backoff) = backoff else {
                tracing::warn!(call, attempts = retries, %class, "giving up: every attempt failed");
                return None;
            };
            // At least as long as the server asked.
            let wait = e.retry_after().map_or(backoff, |asked| asked.max(backoff));
            // (A Retry-After of any size: never an overflow.)
            let resumes = Instant::now().checked_add(wait.saturating_add(MIN_ATTEMPT));
            if resumes.is_none_or(|at| at > end) {
                tracing::warn!(
                    call,
                    attempt = retries,
                    wait_ms = wait.as_millis() as u64,
                    %class,
                    "not retrying: the wait would pass the invocation's deadline"
                );
                return None;
            }
            tracing::warn!(
                call,
                attempt = retries,
                wait_ms = wait.as_millis() as u64,
                %class,
                "retrying after a transient failure"
            );
            Some(wait)
        });
    Box::pin(retrying).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A scripted failure.
    #[derive(Debug, Clone, PartialEq)]
    enum Fake {
        Throttled(Option<Duration>),
        Unavailable,
        Lost,
        Refused,
        OutOfTime(bool),
    }

    impl Transient for Fake {
        fn is_transient(&self) -> bool {
            !matches!(self, Fake::Refused)
        }
        fn may_have_acted(&self) -> bool {
            matches!(self, Fake::Lost | Fake::OutOfTime(true))
        }
        fn retry_after(&self) -> Option<Duration> {
            match self {
                Fake::Throttled(after) => *after,
                _ => None,
            }
        }
        fn class(&self) -> FailureClass {
            match self {
                Fake::Throttled(_) => FailureClass::Throttled,
                Fake::Refused => FailureClass::BadInput,
                _ => FailureClass::Unavailable,
            }
        }
        fn out_of_time(_: &str, sent: bool) -> Self {
            Fake::OutOfTime(sent)
        }
    }

    /// Runs the policy over `script` (one answer per attempt; success once it
    /// runs out); returns the result and when each attempt started.
    async fn scripted(
        idempotency: Idempotency,
        script: Vec<Fake>,
    ) -> (Result<(), Fake>, Vec<Duration>) {
        let started = Instant::now();
        let starts = Mutex::new(vec![]);
        let script = Mutex::new(script.into_iter());
        let result = run("GET /test", idempotency, || async {
            starts.lock().unwrap().push(started.elapsed());
            match script.lock().unwrap().next() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
        .await;
        (result, starts.into_inner().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_until_it_passes() {
        let (result, starts) = scripted(
            Idempotency::NotIdempotent,
            vec![Fake::Unavailable, Fake::Throttled(None)],
        )
        .await;
        assert_eq!(result, Ok(()));
        assert_eq!(starts.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_that_cannot_pass_is_not_retried() {
        let (result, starts) = scripted(Idempotency::Idempotent, vec![Fake::Refused]).await;
        assert_eq!(result, Err(Fake::Refused));
        assert_eq!(starts.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded() {
        let (result, starts) = scripted(Idempotency::Idempotent, vec![Fake::Unavailable; 20]).await;
        assert_eq!(result, Err(Fake::Unavailable));
        assert_eq!(starts.len(), MAX_ATTEMPTS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_resent_only_when_that_is_harmless() {
        let (result, starts) = scripted(Idempotency::NotIdempotent, vec![Fake::Lost]).await;
        assert_eq!(result, Err(Fake::Lost));
        assert_eq!(
            starts.len(),
            1,
            "a write that may have landed is not sent again"
        );
        let (result, starts) = scripted(Idempotency::Idempotent, vec![Fake::Lost]).await;
        assert_eq!(result, Ok(()));
        assert_eq!(starts.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_at_least() {
        let asked = Duration::from_secs(3);
        let (result, starts) =
            scripted(Idempotency::Idempotent, vec![Fake::Throttled(Some(asked))]).await;
        assert_eq!(result, Ok(()));
        assert!(starts[1] - starts[0] >= asked, "{starts:?}");
        assert!(starts[1] - starts[0] <= asked + BASE, "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_past_the_deadline_gives_up_at_once() {
        let deadline = deadline_in(Duration::from_secs(5));
        let (result, starts) = with_deadline(
            deadline,
            scripted(
                Idempotency::Idempotent,
                vec![Fake::Throttled(Some(Duration::from_secs(10)))],
            ),
        )
        .await;
        assert_eq!(result, Err(Fake::Throttled(Some(Duration::from_secs(10)))));
        assert_eq!(starts.len(), 1);
        assert!(
            Instant::now() < deadline - Duration::from_secs(4),
            "no wait"
        );
        let absurd = Fake::Throttled(Some(Duration::MAX));
        let (result, starts) = scripted(Idempotency::Idempotent, vec![absurd.clone()]).await;
        assert_eq!((result, starts.len()), (Err(absurd), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_retries_and_caps_each_attempt() {
        // Every attempt hangs: the one started is cut at the deadline less the margin.
        let deadline = deadline_in(Duration::from_secs(2));
        let attempts = Mutex::new(0);
        let result: Result<(), Fake> = with_deadline(
            deadline,
            run("POST /slow", Idempotency::Idempotent, || async {
                *attempts.lock().unwrap() += 1;
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }),
        )
        .await;
        assert!(matches!(result, Err(Fake::OutOfTime(_))), "{result:?}");
        assert!(Instant::now() <= deadline - MARGIN + MIN_ATTEMPT);
        // Failing fast, waiting 400 ms each time: retried only while there was time.
        let deadline = deadline_in(Duration::from_secs(2));
        let throttled = Fake::Throttled(Some(Duration::from_millis(400)));
        let (result, starts) = with_deadline(
            deadline,
            scripted(Idempotency::Idempotent, vec![throttled.clone(); 1000]),
        )
        .await;
        assert_eq!(result, Err(throttled));
        assert!(
            starts.len() < MAX_ATTEMPTS,
            "the deadline stopped it: {starts:?}"
        );
        let budget = Duration::from_secs(2) - MARGIN;
        assert!(
            starts.iter().all(|s| *s + MIN_ATTEMPT <= budget),
            "{starts:?}"
        );
        assert!(
            Instant::now() <= deadline - MARGIN,
            "returned before the deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_once_the_time_is_up() {
        let deadline = deadline_in(MARGIN);
        let (result, starts) =
            with_deadline(deadline, scripted(Idempotency::Idempotent, vec![])).await;
        assert_eq!(result, Err(Fake::OutOfTime(false)));
        assert_eq!(starts.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_reaches_calls_in_the_same_task_only_when_set() {
        assert_eq!(deadline(), None);
        let at = deadline_in(Duration::from_secs(7));
        let seen = with_deadline(at, async {
            let (a, b) = tokio::join!(async { deadline() }, async { deadline() });
            (a, b)
        })
        .await;
        assert_eq!(seen, (Some(at), Some(at)));
        let left = with_deadline(at, async { time_left() }).await;
        assert_eq!(left, Some(Duration::from_secs(7) - MARGIN));
        assert_eq!(time_left(), None);
    }

    #[test]
    fn backoff_delays_are_full_jitter_within_the_exponential_bound() {
        let bound = |n: usize| (BASE * 2u32.pow(n as u32)).min(CAP);
        let mut firsts = vec![];
        for _ in 0..2000 {
            let delays: Vec<Duration> = backoff().collect();
            assert_eq!(delays.len(), MAX_ATTEMPTS - 1);
            for (n, d) in delays.iter().enumerate() {
                assert!(*d <= bound(n), "retry {n}: {d:?} > {:?}", bound(n));
            }
            firsts.push(delays[0]);
        }
        // Full jitter spreads over the whole range, from near zero to near the bound.
        let (min, max) = (firsts.iter().min().unwrap(), firsts.iter().max().unwrap());
        assert!(*min < BASE / 10, "{min:?}");
        assert!(*max > BASE * 9 / 10, "{max:?}");
    }

    #[test]
    fn a_budget_is_a_duration_longer_than_the_margin() {
        let default = Duration::from_secs(1);
        assert_eq!(parse_budget(None, default), Ok(default));
        assert_eq!(
            parse_budget(Some("20s"), default),
            Ok(Duration::from_secs(20))
        );
        assert!(parse_budget(Some("100ms"), default).is_err());
        assert!(parse_budget(Some("soon"), default).is_err());
    }
}
