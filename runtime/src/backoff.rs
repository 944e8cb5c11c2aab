//! The one retry wait of the services: capped exponential backoff that gives way to shutdown.
//! Every loop that retries Kafka or ClickHouse sleeps through this, so the policy (start,
//! doubling, cap) and the shutdown behaviour are the same everywhere.

use crate::shutdown::CancellationToken;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at 100 ms, doubles after each wait, never above `max`.
    pub fn new(max: Duration) -> Backoff {
        Backoff { next: Duration::from_millis(100).min(max), max }
    }

    /// The wait the next [`Backoff::wait`] will take.
    pub fn current(&self) -> Duration {
        self.next
    }

    /// Sleeps the current backoff, then doubles it (capped). `false` when shutdown came first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn doubles_up_to_the_cap_and_yields_to_shutdown() {
        let token = CancellationToken::new();
        let mut b = Backoff::new(Duration::from_millis(250));
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(b.current().as_millis());
            assert!(b.wait(&token).await);
        }
        assert_eq!(seen, vec![100, 200, 250, 250]);
        token.cancel();
        assert!(!b.wait(&token).await, "a cancelled token ends the wait");
    }
}
