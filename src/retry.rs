//! Waiting before trying again, the one way coroha does it: the HA
//! sessions' reconnects, the corosync reconnect and the multicast outbox's
//! TRY_AGAIN all use [`Backoff`], and every optional deadline in a
//! `select!` is a [`sleep_until`].

use std::time::Duration;
use tokio::time::Instant;

/// Delays between reconnect attempts: doubling from `first` up to `cap`,
/// back to `first` after a success.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// After a failure: how long to wait before the next attempt.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.cap);
        wait
    }

    pub fn succeeded(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    /// 100 ms doubling to 5 s: a restarting NSO is found within 5 s of
    /// listening again, and a dead one costs a connect attempt per 5 s.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

/// Sleep until `at`, or forever when there is no deadline (a `select!`
/// branch that never fires).
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let waits: Vec<u128> = (0..5).map(|_| b.failed().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        b.succeeded();
        assert_eq!(b.failed(), Duration::from_millis(100));
    }
}
