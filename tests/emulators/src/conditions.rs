//! The conditions every cloud API emulator answers under, set for the whole process
//! by a benchmark: a fixed delay before each answer (the round trip to a distant
//! region), and a factor that shortens the lifetime of every credential the clouds
//! issue (so that a simulated hour passes in a minute). Both default to none, so
//! tests see the emulators as written. Documents the clouds fetch for themselves
//! (an issuer's discovery document and JWKS, which real clouds cache) are served
//! without the delay: it stands for fedsync's own round trips.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

static DELAY_MICROS: AtomicU64 = AtomicU64::new(0);
static TIME_SCALE: AtomicU32 = AtomicU32::new(1);

/// Every cloud API answers each request `delay` later from now on.
pub fn set_delay(delay: Duration) {
    let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
    DELAY_MICROS.store(micros, Ordering::Relaxed);
}

/// The delay every cloud API adds to each answer.
pub fn delay() -> Duration {
    Duration::from_micros(DELAY_MICROS.load(Ordering::Relaxed))
}

/// Credentials issued from now on live `1 / scale` of their stated lifetime:
/// with 60, an hour-long session lasts a minute. At least 1.
pub fn set_time_scale(scale: u32) {
    TIME_SCALE.store(scale.max(1), Ordering::Relaxed);
}

/// How long credentials with the stated `lifetime` really live.
pub fn lifetime(lifetime: Duration) -> Duration {
    scaled(lifetime, TIME_SCALE.load(Ordering::Relaxed))
}

fn scaled(lifetime: Duration, scale: u32) -> Duration {
    lifetime / scale.max(1)
}

/// Middleware: answers after the current delay.
pub(crate) async fn delayed(request: Request, next: Next) -> Response {
    let delay = delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_scale_shortens_lifetimes_and_never_divides_by_zero() {
        let hour = Duration::from_secs(3600);
        assert_eq!(scaled(hour, 1), hour);
        assert_eq!(scaled(hour, 60), Duration::from_secs(60));
        assert_eq!(scaled(hour, 0), hour);
    }
}
