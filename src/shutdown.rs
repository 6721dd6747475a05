//! The stop signal, in the manner of mini-redis: one sender, many cheap receivers, and every
//! loop `select!`s its work against [`Shutdown::wait`] so it stops at a safe point.

use tokio::sync::watch;

/// Held by whoever decides to stop (main on SIGTERM/SIGINT, a test, a failed task).
#[derive(Clone)]
pub struct Trigger(watch::Sender<bool>);

/// Held by every task that must stop.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn trigger(&self) {
        // send_replace never fails, even when every receiver is gone.
        self.0.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has been triggered (at once if it already was).
    pub async fn wait(&mut self) {
        // An error means the trigger was dropped, which also means: stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_returns_after_trigger() {
        let (trigger, mut shutdown) = channel();
        assert!(!shutdown.is_triggered());
        let mut other = trigger.subscribe();
        trigger.trigger();
        shutdown.wait().await;
        other.wait().await;
        assert!(shutdown.is_triggered());
    }

    #[tokio::test]
    async fn dropped_trigger_means_stop() {
        let (trigger, mut shutdown) = channel();
        drop(trigger);
        shutdown.wait().await;
    }
}
