use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;

use crate::broker::Engine;

/// Accepts TCP connections until shutdown, one task each.
pub(crate) async fn accept_loop(engine: Arc<Engine>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = engine.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                // Small MQTT packets must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                engine
                    .tracker
                    .spawn(crate::connection::serve(engine.clone(), stream, addr));
            }
            Err(error) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
