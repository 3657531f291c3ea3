//! Start a module inside a test, NestJS testing-module style.
//!
//! ```no_run
//! use pigeon::prelude::*;
//!
//! #[module(providers = [])]
//! struct AppModule;
//!
//! # async fn test() {
//! // inside a #[tokio::test]:
//! let app = pigeon::testing::start::<AppModule>().await.unwrap();
//! let addr = app.local_addr(); // 127.0.0.1:<ephemeral port>
//! let service = app.service(); // publish, close, broker()
//! # let _ = (addr, service);
//! # }
//! ```

use super::{App, BootstrapError, Module, Pigeon};

/// Starts module `M` on `127.0.0.1` with an ephemeral port.
pub async fn start<M: Module>() -> Result<App, BootstrapError> {
    start_with::<M>(|_| {}).await
}

/// As [`start`], with a configuration tweak applied before the port override.
pub async fn start_with<M: Module>(
    configure: impl FnOnce(&mut crate::Config),
) -> Result<App, BootstrapError> {
    Pigeon::bootstrap_with::<M>(|config| {
        configure(config);
        config.host = "127.0.0.1".into();
        config.port = 0;
    })
    .await
}
