//! `blastwall serve`: the loop behind the HTTP API, running until stopped.
//!
//! [`start`] puts the queue in front of a built [`Responder`] and returns the
//! shared [`App`]; [`run`] serves the API on a listener until `shutdown`
//! resolves, while recovery takes up, every `recovery-interval`, runs left
//! by dead processes and alerts admitted but never decided. Shutdown is
//! graceful: `/readyz` turns 503, new alerts are refused with `Retry-After`,
//! the HTTP server stops accepting and finishes its requests, the queue is
//! processed and runs in flight finish (up to `drain-timeout`). Every
//! acknowledged step is already durable, so nothing needs flushing after.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::api::{self, AlertQueue, ApiConfig, App, AppState, Metrics, PluginInfo, Tokens};
use crate::guardrails::now_ms;
use crate::respond::Responder;

pub mod tls;

/// Builds the API's state and starts the alert queue.
pub fn start(
    responder: Arc<Responder>,
    config: &ApiConfig,
    tokens: Tokens,
    plugins: Vec<PluginInfo>,
) -> AppState {
    let metrics = Arc::new(Metrics::new());
    let queue = AlertQueue::start(
        responder.clone(),
        metrics.clone(),
        config.queue_capacity,
        config.max_in_flight,
    );
    Arc::new(App {
        responder,
        queue,
        tokens,
        metrics,
        plugins,
        max_body_bytes: config.max_body_bytes,
        ready: AtomicBool::new(true),
    })
}

/// One recovery pass: interrupted runs of dead processes are escalated, and
/// alerts admitted at least `grace` ago but never decided are queued again.
pub async fn recover(app: &App, grace: Duration) {
    match app.responder.recover().await {
        Ok(recovered) => {
            for handled in recovered {
                tracing::warn!(incident = %handled.incident, reason = %handled.reason, "recovered an interrupted run");
            }
        }
        Err(error) => tracing::error!(%error, "recovery of interrupted runs failed"),
    }
    let before = now_ms() - grace.as_millis() as i64;
    match app.responder.undecided(before).await {
        Ok(admissions) if !admissions.is_empty() => {
            let found = admissions.len();
            let queued = app.queue.requeue(admissions);
            tracing::info!(found, queued, "took up alerts admitted but never decided");
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "looking for undecided alerts failed"),
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then drains.
pub async fn run<L>(
    listener: L,
    app: AppState,
    config: &ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    // At start, everything undecided is taken up; afterwards only what has
    // waited a whole interval (anything younger is still in some queue).
    recover(&app, Duration::ZERO).await;
    let interval = config.recovery_interval;
    let recovering = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                recover(&app, interval).await;
            }
        })
    };
    let stopping = {
        let app = app.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: refusing new alerts, finishing requests and runs");
            app.ready.store(false, Ordering::Relaxed);
        }
    };
    let served = axum::serve(listener, api::router(app.clone()))
        .with_graceful_shutdown(stopping)
        .await;
    recovering.abort();
    if app.queue.shutdown(config.drain_timeout).await {
        tracing::info!("every queued alert and run in flight finished");
    } else {
        tracing::warn!(
            timeout = ?config.drain_timeout,
            "runs still in flight at the drain timeout: recovery will mark them interrupted at the next start"
        );
    }
    served
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn signalled() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
