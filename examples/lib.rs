//! Runnable examples of Pigeon, one per feature: `cargo run --release --example NAME`.
