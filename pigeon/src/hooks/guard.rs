//! Running handler futures so that a panicking handler is an error, not a
//! hung client.

use std::{future::Future, panic::AssertUnwindSafe};

use futures_util::FutureExt;

/// Runs a hook future, turning a panic into an error message so a failing
/// handler never leaves a client hanging.
pub(crate) async fn guard<F: Future>(future: F) -> Result<F::Output, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .map_or_else(
                    || "handler panicked".to_owned(),
                    |m| format!("handler panicked: {m}"),
                )
        })
}
