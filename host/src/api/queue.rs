//! The bounded alert queue between `POST /v1/alerts` and the loop.
//!
//! The handler admits alerts durably (see [`Responder::admit`]) and only
//! then queues them, after reserving room: when there is none it answers 503
//! with `Retry-After` *before* admitting anything, so Alertmanager retries
//! and nothing is lost or half-accepted. A dispatcher takes alerts off the
//! queue and processes up to `max_in_flight` at once, each in its own task
//! (a run may wait minutes for its verification). Alerts admitted but never
//! processed, because the process stopped, are taken up again by recovery
//! ([`Responder::undecided`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::metrics::Metrics;
use crate::respond::{Admission, Responder};

/// An admitted alert waiting to be processed.
#[derive(Debug)]
pub struct Queued {
    /// The alert, on the record.
    pub admission: Admission,
    /// When its request arrived (for latency metrics).
    pub arrived: Instant,
}

/// Why nothing could be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRefusal {
    /// No room now: retry later.
    Full,
    /// The host is shutting down.
    Closing,
}

/// The queue; cheap to clone.
#[derive(Clone)]
pub struct AlertQueue {
    inner: Arc<Inner>,
}

struct Inner {
    sender: RwLock<Option<mpsc::Sender<Queued>>>,
    capacity: usize,
    max_in_flight: usize,
    /// Incidents queued or being processed by this process.
    pending: Mutex<HashSet<String>>,
    in_flight: AtomicUsize,
    slots: Arc<Semaphore>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

impl AlertQueue {
    /// Starts the dispatcher.
    pub fn start(
        responder: Arc<Responder>,
        metrics: Arc<Metrics>,
        capacity: usize,
        max_in_flight: usize,
    ) -> AlertQueue {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let inner = Arc::new(Inner {
            sender: RwLock::new(Some(sender)),
            capacity: capacity.max(1),
            max_in_flight: max_in_flight.max(1),
            pending: Mutex::new(HashSet::new()),
            in_flight: AtomicUsize::new(0),
            slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
            dispatcher: Mutex::new(None),
            metrics,
        });
        let handle = tokio::spawn(dispatch(inner.clone(), responder, receiver));
        *inner.dispatcher.lock().expect("not poisoned") = Some(handle);
        AlertQueue { inner }
    }

    /// The sending side, unless the queue is closing.
    pub fn sender(&self) -> Result<mpsc::Sender<Queued>, QueueRefusal> {
        self.inner
            .sender
            .read()
            .expect("not poisoned")
            .clone()
            .ok_or(QueueRefusal::Closing)
    }

    /// Queues an admitted alert on a reserved permit, unless this process is
    /// already processing its incident (the delivery is on the record either
    /// way). Returns whether it was queued.
    pub fn send(&self, permit: mpsc::Permit<'_, Queued>, queued: Queued) -> bool {
        if !self.claim(&queued.admission.id) {
            return false;
        }
        permit.send(queued);
        self.update_metrics();
        true
    }

    /// Queues admissions found by recovery, as room allows; returns how many.
    pub fn requeue(&self, admissions: Vec<Admission>) -> usize {
        let Ok(sender) = self.sender() else { return 0 };
        let mut queued = 0;
        for admission in admissions {
            let Ok(permit) = sender.try_reserve() else {
                break;
            };
            let arrived = Instant::now();
            if self.send(permit, Queued { admission, arrived }) {
                queued += 1;
            }
        }
        queued
    }

    fn claim(&self, incident: &str) -> bool {
        self.inner
            .pending
            .lock()
            .expect("not poisoned")
            .insert(incident.to_string())
    }

    /// Alerts waiting.
    pub fn depth(&self) -> usize {
        self.sender()
            .map(|s| self.inner.capacity - s.capacity())
            .unwrap_or(0)
    }

    /// Alerts being processed.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// Whether there is room for `n` more alerts.
    pub fn has_room(&self) -> bool {
        self.sender().is_ok_and(|s| s.capacity() > 0)
    }

    fn update_metrics(&self) {
        self.inner.metrics.load(self.depth(), self.in_flight());
    }

    /// Stops taking alerts, processes what was queued, and waits up to
    /// `timeout` for everything in flight. Returns whether all finished.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        drop(self.inner.sender.write().expect("not poisoned").take());
        let dispatcher = self.inner.dispatcher.lock().expect("not poisoned").take();
        let inner = self.inner.clone();
        let drained = async move {
            if let Some(dispatcher) = dispatcher {
                let _ = dispatcher.await;
            }
            let all = u32::try_from(inner.max_in_flight).unwrap_or(u32::MAX);
            let _ = inner.slots.acquire_many(all).await;
        };
        tokio::time::timeout(timeout, drained).await.is_ok()
    }
}

async fn dispatch(
    inner: Arc<Inner>,
    responder: Arc<Responder>,
    mut receiver: mpsc::Receiver<Queued>,
) {
    while let Some(queued) = receiver.recv().await {
        let Ok(slot) = inner.slots.clone().acquire_owned().await else {
            break;
        };
        inner.in_flight.fetch_add(1, Ordering::Relaxed);
        let id = queued.admission.id.clone();
        // Released however the task ends, a panic included.
        let finished = Finished {
            inner: inner.clone(),
            id: id.clone(),
            _slot: slot,
        };
        let (metrics, responder) = (inner.metrics.clone(), responder.clone());
        tokio::spawn(async move {
            let _finished = finished;
            match responder.process(queued.admission).await {
                Ok(handled) => metrics.handled(&handled, queued.arrived),
                // The alert stays admitted and undecided (or mid-way, on the
                // record): recovery takes it up again.
                Err(error) => tracing::error!(incident = %id, %error, "processing an alert failed"),
            }
        });
    }
}

/// Marks an alert's processing finished when dropped.
struct Finished {
    inner: Arc<Inner>,
    id: String,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Finished {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.inner.pending.lock() {
            pending.remove(&self.id);
        }
        self.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
