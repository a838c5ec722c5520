//! Background tasks that must not die quietly. A panic in the writer or in a loop
//! (timers, outbox, ticket desk, runbook executor) would leave the API answering
//! 503 to every write while `/readyz` stays green; instead it trips [`Fatal`]:
//! `/readyz` answers 503 and `serve` exits non-zero, so a supervisor restarts us.

use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Set once, by the first task that panics.
#[derive(Clone)]
pub struct Fatal {
    reason: Arc<OnceLock<String>>,
    tripped: watch::Sender<bool>,
}

impl Default for Fatal {
    fn default() -> Self {
        Self {
            reason: Arc::default(),
            tripped: watch::Sender::new(false),
        }
    }
}

impl Fatal {
    /// Records why the process cannot go on; the first reason is kept.
    pub fn trip(&self, reason: String) {
        let _ = self.reason.set(reason);
        self.tripped.send_replace(true);
    }

    /// Why the process cannot go on, once a task has died.
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }

    /// Resolves once a task has died.
    pub async fn tripped(&self) {
        let mut receiver = self.tripped.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = receiver.wait_for(|tripped| *tripped).await;
    }
}

/// Spawns `future`; if it panics, `fatal` is tripped with the task's name.
pub fn spawn<F>(name: &'static str, fatal: &Fatal, future: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let fatal = fatal.clone();
    tokio::spawn(async move {
        if let Err(panic) = AssertUnwindSafe(future).catch_unwind().await {
            let detail = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            tracing::error!(
                task = name,
                detail,
                "a background task panicked; Tocsin stops"
            );
            fatal.trip(format!(
                "the {name} task panicked ({detail}); restart Tocsin and report the log"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_trips_fatal_with_its_name() {
        let fatal = Fatal::default();
        assert_eq!(fatal.reason(), None);
        let task = spawn("writer", &fatal, async { panic!("boom") });
        let _ = task.await;
        tokio::time::timeout(std::time::Duration::from_secs(1), fatal.tripped())
            .await
            .unwrap_or_else(|_| panic!("not tripped"));
        let reason = fatal.reason().unwrap_or_default();
        assert!(
            reason.contains("writer") && reason.contains("boom"),
            "{reason}"
        );
    }
}
