//! A real `redis-server` for the cluster tests: one per test, on a free
//! port, without persistence, killed when dropped.
//!
//! ```no_run
//! # async fn run() {
//! let redis = pigeon_tests::redis::RedisServer::start();
//! let mut conn = redis.conn().await;
//! let n: usize = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
//! assert_eq!(n, 0);
//! # }
//! ```

use std::{
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A `redis-server` child process.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    /// A TLS port as well: its number and the redis-server arguments for it.
    tls: Option<(u16, Vec<std::ffi::OsString>)>,
}

/// A port nobody listens on now (bound, then closed: `--port 0` is not supported).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        Self::start_on(free_port())
    }

    /// Starts one on `port` (a restart reuses the port of the one before).
    pub fn start_on(port: u16) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("pigeon-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis");
        let mut server = RedisServer {
            port,
            child: None,
            dir,
            tls: None,
        };
        server.spawn();
        server
    }

    /// Starts one that also serves TLS (`rediss://`) on another free port,
    /// with the server certificate `cert` / `key` signed by `ca` (client
    /// certificates not asked for). The plain port stays, for the test's
    /// own checks.
    pub fn start_tls(
        ca: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> RedisServer {
        let port = free_port();
        let tls_port = free_port();
        let dir = std::env::temp_dir().join(format!("pigeon-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis");
        let args = [
            "--tls-port".into(),
            tls_port.to_string().into(),
            "--tls-cert-file".into(),
            cert.into(),
            "--tls-key-file".into(),
            key.into(),
            "--tls-ca-cert-file".into(),
            ca.into(),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
        .into_iter()
        .collect();
        let mut server = RedisServer {
            port,
            child: None,
            dir,
            tls: Some((tls_port, args)),
        };
        server.spawn();
        server
    }

    /// `rediss://127.0.0.1:PORT` of a server started with [`RedisServer::start_tls`].
    pub fn tls_url(&self) -> String {
        let (port, _) = self.tls.as_ref().expect("started with start_tls");
        format!("rediss://127.0.0.1:{port}")
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(self.tls.iter().flat_map(|(_, args)| args))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test installs Debian's redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection for the test's own checks.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("redis answers")
    }

    /// Runs one command and gives its reply as text: a string or integer as
    /// written, an array's elements joined with '\n', nil as "(nil)", an
    /// error as its message.
    pub async fn query(&self, args: &[&str]) -> String {
        let Some((name, rest)) = args.split_first() else {
            return String::new();
        };
        let mut conn = self.conn().await;
        match redis::cmd(name)
            .arg(rest)
            .query_async::<redis::Value>(&mut conn)
            .await
        {
            Ok(value) => text(&value),
            Err(e) => e.to_string(),
        }
    }

    /// Kills it (SIGKILL: everything it held is gone, as nothing is saved).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A reply as [`RedisServer::query`] gives it.
fn text(value: &redis::Value) -> String {
    match value {
        redis::Value::Nil => "(nil)".into(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".into(),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().map(text).collect::<Vec<_>>().join("\n")
        }
        other => format!("{other:?}"),
    }
}
