use std::sync::{Arc, OnceLock};

use super::{Completion, Deliver, Emitter};
use crate::model::Message;

/// The single-node emitter: `emit` is a direct, synchronous call into local delivery.
#[derive(Default)]
pub struct LocalEmitter {
    sink: OnceLock<Arc<dyn Deliver>>,
}

impl LocalEmitter {
    /// An emitter not bound yet (the broker binds it at start).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Emitter for LocalEmitter {
    fn bind(&self, local: Arc<dyn Deliver>) {
        // A second bind is ignored: one emitter serves one broker.
        let _ = self.sink.set(local);
    }

    fn emit(&self, message: Arc<Message>) -> Completion {
        match self.sink.get() {
            Some(sink) => sink.deliver(message),
            None => Completion::Done,
        }
    }
}
