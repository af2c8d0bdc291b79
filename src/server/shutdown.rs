//! Process shutdown: one [`CancellationToken`] that every long-running task observes.
//!
//! `main` creates the token, hands clones to the server (and later the reconciler), and
//! cancels it on the first SIGTERM or SIGINT through [`cancel_on_signals`]. Nothing else
//! installs signal handlers, so no component can exit on its own schedule (e.g. kube-runtime's
//! `shutdown_on_signal` must not be used; use `graceful_shutdown_on(token.cancelled_owned())`).

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Spawns a task that cancels `token` on the first SIGTERM or SIGINT.
///
/// The handlers are installed before this returns, so a signal that arrives right after is
/// not lost to the default disposition (which would kill the process without draining).
pub fn cancel_on_signals(token: CancellationToken) -> std::io::Result<JoinHandle<()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            () = token.cancelled() => return,
        };
        tracing::info!(signal = name, "shutdown requested");
        token.cancel();
    }))
}
