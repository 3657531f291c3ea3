//! Logs work out of the box: `Pigeon::bootstrap` installs a `tracing`
//! subscriber on stderr (honouring `RUST_LOG`) when the application has
//! none, and a refused login is logged. The application runs in a child
//! process (this test program again, with `PIGEON_LOG_CHILD` set), so that its
//! stderr is what a user sees; no test harness (`harness = false`), so that
//! nothing but this program's `main` decides which part runs.

use std::process::Command;

use pigeon::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[injectable]
struct Gate;

#[handlers]
impl Gate {
    #[on_authenticate]
    async fn auth(&self, credential: Credential) -> Result<(), AuthError> {
        match credential.username.as_deref() {
            Some("admin") => Ok(()),
            _ => Err(AuthError::with_return_code("who are you?", 4)),
        }
    }
}

#[module(host = "127.0.0.1", port = 0, providers = [Gate])]
struct AppModule;

/// What the child does: start the app, have a stranger knock, stop.
async fn child_app() {
    let app = Pigeon::bootstrap::<AppModule>().await.expect("boots");
    let addr = app.local_addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // MQTT 3.1.1 CONNECT, client id "stranger", user name "eve".
    let connect: &[u8] = &[
        0x10, 25, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x82, 0, 60, 0, 8, b's', b't', b'r', b'a', b'n',
        b'g', b'e', b'r', 0, 3, b'e', b'v', b'e',
    ];
    stream.write_all(connect).await.unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).await.unwrap();
    assert_eq!(
        connack,
        [0x20, 2, 0, 4],
        "refused: bad user name or password"
    );
    app.close().await;
}

fn main() {
    if std::env::var_os("PIGEON_LOG_CHILD").is_some() {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(child_app());
        return;
    }
    a_refused_login_is_logged_without_any_setup();
    println!("test a_refused_login_is_logged_without_any_setup ... ok");
}

fn a_refused_login_is_logged_without_any_setup() {
    let me = std::env::current_exe().expect("this test program");
    let out = Command::new(me)
        .env("PIGEON_LOG_CHILD", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stderr}");
    let refused = stderr
        .lines()
        .find(|l| l.contains("connection refused"))
        .unwrap_or_else(|| panic!("no 'connection refused' line in:\n{stderr}"));
    assert!(refused.contains("INFO"), "{refused}");
    assert!(refused.contains("stranger"), "{refused}");
    assert!(refused.contains("who are you?"), "{refused}");

    // RUST_LOG is honoured: at `warn`, the refusal (info) is not shown.
    let quiet = Command::new(std::env::current_exe().unwrap())
        .env("PIGEON_LOG_CHILD", "1")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(quiet.status.success(), "{stderr}");
    assert!(!stderr.contains("connection refused"), "{stderr}");
}
