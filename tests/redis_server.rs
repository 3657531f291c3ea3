//! A real `redis-server` for the cluster tests: each test starts its own on
//! a free port (`--port 0` is not supported: a port is picked by binding
//! 127.0.0.1:0 first), without persistence, killed when dropped.
//!
//! ```no_run
//! # async fn run() {
//! let redis = pigeon_tests::redis_server::RedisServer::start().await;
//! assert_eq!(redis.query(&["PING"]).await, "PONG");
//! # }
//! ```

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

/// A running `redis-server` (killed on drop).
pub struct RedisServer {
    child: Option<Child>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers.
    pub async fn start() -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL): everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty), and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test installs Debian's redis-server)");
        self.child = Some(child);
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Runs one command and returns its reply as text: a simple or bulk
    /// string, an integer, or the elements of an array joined with '\n'
    /// (nil: "(nil)"; an error: "ERR ...").
    pub async fn query(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("redis reachable");
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes()).await.expect("sent");
        let mut reader = BufReader::new(stream);
        Box::pin(read_reply(&mut reader)).await
    }
}

async fn read_reply(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("a reply");
    let line = line.trim_end().to_owned();
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" | ":" => rest.to_owned(),
        "-" => rest.to_owned(),
        "$" => {
            let Ok(len) = rest.parse::<usize>() else {
                return "(nil)".into();
            };
            let mut buf = vec![0; len + 2];
            reader.read_exact(&mut buf).await.expect("bulk");
            buf.truncate(len);
            String::from_utf8_lossy(&buf).into_owned()
        }
        "*" => {
            let n = rest.parse::<i64>().unwrap_or(0).max(0);
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(Box::pin(read_reply(reader)).await);
            }
            items.join("\n")
        }
        _ => line,
    }
}
