//! What every layer shares: the messages that travel through the broker and
//! the session state the seams store. It depends on nothing else in the crate;
//! the seams (`persistence`, `emitter`), the engine and the connection depend
//! on it.

mod limits;
mod message;
mod session_state;
mod subscription;

use std::{future::Future, pin::Pin};

pub use limits::QueueLimits;
pub use message::{Delivery, Message};
pub use session_state::{Inflight, Parked};
pub use subscription::StoredSubscription;

/// A boxed, sendable future: what the seams' object-safe async methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
