//! Running the built `pigeon` binary from tests.

#![allow(dead_code)] // each test file uses a different part

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

/// How long a test waits for the binary to start, answer or exit.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Writes `text` to a file of a per-test folder under cargo's test tmp dir.
pub(crate) fn temp_file(test: &str, name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pigeon-{test}"));
    std::fs::create_dir_all(&dir).expect("create test dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// What a finished run of the binary left.
#[derive(Debug)]
pub(crate) struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary to its end (killing it after [`PATIENCE`]).
pub(crate) fn run_to_end(args: &[&str]) -> Finished {
    run_to_end_with_env(args, &[])
}

/// As [`run_to_end`], with environment variables `env` added.
pub(crate) fn run_to_end_with_env(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pigeon"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pigeon");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("wait pigeon").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!(
                "pigeon {args:?} did not exit; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("collect output");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running broker process; killed on drop if a test failed half-way.
pub(crate) struct Running {
    child: Child,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    pub stderr: Vec<String>,
}

impl Running {
    /// Starts the binary and waits for its `listening on ADDR` log line.
    pub(crate) fn start(args: &[&str]) -> Running {
        Self::start_with_env(args, &[])
    }

    /// As [`Running::start`], with environment variables `env` added.
    pub(crate) fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pigeon"))
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pigeon");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let addr = line
                        .split("listening on ")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|a| a.parse::<SocketAddr>().ok());
                    seen.push(line);
                    if let Some(addr) = addr {
                        return Running {
                            child,
                            addr,
                            lines,
                            stderr: seen,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "pigeon {args:?} never logged `listening on`; stderr:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    /// Waits for a log line containing `needle` (keeping every line seen in
    /// `stderr`); `None` after [`PATIENCE`].
    pub(crate) fn wait_for_log(&mut self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            self.stderr.push(line.clone());
            if line.contains(needle) {
                return Some(line);
            }
        }
    }

    /// The process id, to send it signals.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (up to 100 ms) for one more stderr line and keeps it in `stderr`.
    #[allow(dead_code)] // not every test binary reads further lines
    pub(crate) fn next_line(&mut self) {
        if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
            self.stderr.push(line);
        }
    }

    /// Sends `signal` (e.g. "TERM", "INT") and waits for the exit status.
    pub(crate) fn stop_with(&mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait pigeon") {
                self.stderr.extend(self.lines.try_iter());
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pigeon did not exit after SIG{signal}; stderr:\n{}",
                self.stderr.join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
