//! The one task that talks to Redis for the store: every operation (write or
//! read) is a [`Job`] sent down one channel, in the order the engine made the
//! calls. The task takes every job waiting, sends them as one `MULTI`/`EXEC`
//! pipeline (group commit: one round trip for a window's changes, applied
//! all or nothing), and hands each job its replies. Reads ride the same
//! queue, so a read sees every change asked for before it.
//!
//! While Redis is unreachable the batch is retried (the connection manager
//! reconnects by itself): changes wait, publishers waiting for
//! [`Persistence::commit`](crate::persistence::Persistence::commit) are held,
//! and `failing` is set (what `health` reports).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use redis::{aio::ConnectionManager, Cmd, Value};
use tokio::sync::{mpsc, oneshot};

/// The most jobs sent in one pipeline.
const BATCH_LIMIT: usize = 1024;
/// How long to wait before sending a batch Redis refused again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What a job's caller gets back: one value per command, or why the batch
/// could not be applied.
pub(super) type Reply = Result<Vec<Value>, String>;

/// Commands to apply in order, and where their replies go (if anyone waits).
pub(super) struct Job {
    pub(super) cmds: Vec<Cmd>,
    pub(super) reply: Option<oneshot::Sender<Reply>>,
}

/// The sending side, shared by the store and its background tasks.
#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::UnboundedSender<Job>,
    /// True while the last attempt to reach Redis failed.
    pub(super) failing: Arc<AtomicBool>,
    /// The last error, for `health`.
    pub(super) last_error: Arc<Mutex<String>>,
}

impl Writer {
    /// Starts the task on `conn`.
    pub(super) fn start(conn: ConnectionManager) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let failing = Arc::new(AtomicBool::new(false));
        let last_error = Arc::new(Mutex::new(String::new()));
        tokio::spawn(run(conn, rx, failing.clone(), last_error.clone()));
        Self {
            tx,
            failing,
            last_error,
        }
    }

    /// Queues commands nobody waits for.
    pub(super) fn send(&self, cmds: Vec<Cmd>) {
        if !cmds.is_empty() {
            let _ = self.tx.send(Job { cmds, reply: None });
        }
    }

    /// Queues commands; the receiver gets their replies once applied.
    pub(super) fn ask(&self, cmds: Vec<Cmd>) -> oneshot::Receiver<Reply> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Job {
            cmds,
            reply: Some(reply),
        });
        rx
    }

    /// Resolves (true) once everything queued so far is applied.
    pub(super) fn barrier(&self) -> oneshot::Receiver<Reply> {
        self.ask(Vec::new())
    }
}

fn retryable(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

async fn run(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Job>,
    failing: Arc<AtomicBool>,
    last_error: Arc<Mutex<String>>,
) {
    // A batch given up (Redis refused a command) since the last barrier: the
    // next barrier reports it, so that a publisher is not told it is safe.
    let mut lost = false;
    let mut logged: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_LIMIT {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let count: usize = batch.iter().map(|j| j.cmds.len()).sum();
        let result = if count == 0 {
            Ok(Vec::new())
        } else {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for job in &batch {
                for cmd in &job.cmds {
                    pipe.add_command(cmd.clone());
                }
            }
            loop {
                match pipe.query_async::<Vec<Value>>(&mut conn).await {
                    Ok(values) => {
                        if failing.swap(false, Relaxed) {
                            tracing::info!("redis reachable again; the store resumes");
                        }
                        break Ok(values);
                    }
                    Err(e) if retryable(&e) => {
                        failing.store(true, Relaxed);
                        *last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
                        if logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                            tracing::error!(error = %e, "redis unreachable; the store's changes wait");
                            logged = Some(Instant::now());
                        }
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, commands = count, "redis refused a batch of the store's changes");
                        break Err(e.to_string());
                    }
                }
            }
        };
        match result {
            Ok(values) if values.len() == count => {
                let mut values = values.into_iter();
                for job in batch {
                    let mine: Vec<Value> = values.by_ref().take(job.cmds.len()).collect();
                    if let Some(reply) = job.reply {
                        if job.cmds.is_empty() && std::mem::take(&mut lost) {
                            let _ = reply.send(Err("an earlier batch was refused".into()));
                        } else {
                            let _ = reply.send(Ok(mine));
                        }
                    }
                }
            }
            other => {
                let why = match other {
                    Ok(values) => format!(
                        "redis answered {} replies for {count} commands",
                        values.len()
                    ),
                    Err(e) => e,
                };
                lost = true;
                for job in batch {
                    if let Some(reply) = job.reply {
                        let _ = reply.send(Err(why.clone()));
                    }
                }
            }
        }
    }
}
