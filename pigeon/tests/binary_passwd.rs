//! `pigeon passwd` and `--password-file` as an operator uses them: a file made
//! by the subcommand lets its users in (raw MQTT and `mosquitto_pub`), its
//! `$7$` entries work in the real Mosquitto too, and SIGHUP reloads the file
//! without dropping connected clients.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use common::{Running, PATIENCE};

/// A fresh folder for one test under cargo's tmp dir.
fn test_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pigeon-passwd-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// `pigeon passwd ARGS…` with `stdin` piped in (not a terminal, so one line is read).
fn pigeon_passwd(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pigeon"))
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pigeon passwd");
    let written = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes());
    // A refusal may come before the password is read (a user name with `:`):
    // the process is gone and the pipe broken, which is fine.
    if let Err(e) = written {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write the password: {e}"
        );
    }
    child.wait_with_output().expect("pigeon passwd exits")
}

fn add_user(file: &Path, extra: &[&str], user: &str, password: &str) {
    let mut args = extra.to_vec();
    args.extend([file.to_str().expect("utf-8 path"), user]);
    let out = pigeon_passwd(&args, &format!("{password}\n"));
    assert!(
        out.status.success(),
        "pigeon passwd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a Mosquitto tool; a missing one fails the test saying what to install.
fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}): install Debian's mosquitto and mosquitto-clients packages")
    })
}

fn mosquitto_pub(addr: SocketAddr, user: &str, password: &str) -> Output {
    let port = addr.port().to_string();
    run(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            user,
            "-P",
            password,
            "-t",
            "t",
            "-m",
            "x",
        ],
    )
}

/// An MQTT 3.1.1 CONNECT (clean session, keep alive 60 s) with a username and password.
fn connect_packet(id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60];
    for field in [id, user, password] {
        let len = u16::try_from(field.len()).expect("short field");
        body.extend(len.to_be_bytes());
        body.extend(field.as_bytes());
    }
    let mut packet = vec![0x10, u8::try_from(body.len()).expect("short packet")];
    packet.extend(body);
    packet
}

/// Connects over raw TCP; returns the stream and CONNACK's return code.
fn raw_connect(addr: SocketAddr, id: &str, user: &str, password: &str) -> (TcpStream, u8) {
    let mut stream = TcpStream::connect(addr).expect("connect to the broker");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(&connect_packet(id, user, password))
        .unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).expect("read CONNACK");
    assert_eq!(connack[..2], [0x20, 0x02], "a CONNACK");
    (stream, connack[3])
}

/// PINGREQ → PINGRESP: the connection is still up.
fn assert_alive(stream: &mut TcpStream) {
    stream.write_all(&[0xC0, 0x00]).expect("send PINGREQ");
    let mut pong = [0u8; 2];
    stream.read_exact(&mut pong).expect("PINGRESP");
    assert_eq!(pong, [0xD0, 0x00]);
}

fn hangup(running: &Running) {
    let status = Command::new("kill")
        .args(["-HUP", &running.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP failed");
}

#[test]
fn a_file_made_by_pigeon_passwd_is_accepted() {
    let dir = test_dir("made");
    let file = dir.join("passwd");
    add_user(&file, &[], "alice", "s3cret");
    add_user(&file, &["-H", "sha512-pbkdf2"], "bob", "hunter2");
    add_user(&file, &[], "carol", "first");
    add_user(&file, &[], "carol", "second");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("alice:$argon2id$v=19$"), "{text}");
    assert!(lines[1].starts_with("bob:$7$"), "{text}");
    assert!(lines[2].starts_with("carol:$argon2id$"), "{text}");

    let file_arg = file.to_str().unwrap();
    let mut running = Running::start(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--password-file",
        file_arg,
    ]);
    assert_eq!(raw_connect(running.addr, "a", "alice", "s3cret").1, 0);
    assert_eq!(raw_connect(running.addr, "b", "bob", "hunter2").1, 0);
    assert_eq!(raw_connect(running.addr, "c", "carol", "second").1, 0);
    assert_eq!(
        raw_connect(running.addr, "c", "carol", "first").1,
        5,
        "old password"
    );
    assert_eq!(raw_connect(running.addr, "m", "mallory", "s3cret").1, 5);
    let out = mosquitto_pub(running.addr, "alice", "s3cret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mosquitto_pub(running.addr, "alice", "wrong");
    assert!(!out.status.success(), "a wrong password is refused");

    // -D removes a user; the others stay.
    let out = pigeon_passwd(&["-D", file_arg, "bob"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("bob:") && text.contains("alice:") && text.contains("carol:"),
        "{text}"
    );
    assert_eq!(running.stop_with("TERM").code(), Some(0));
}

#[test]
fn pigeon_passwd_refuses_bad_input_clearly() {
    let dir = test_dir("bad_input");
    let file = dir.join("passwd");
    let file_arg = file.to_str().unwrap();
    let out = pigeon_passwd(&[file_arg, "alice"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no password on standard input"));
    let out = pigeon_passwd(&[file_arg, "a:b"], "pw\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot contain `:`"));
    assert!(!file.exists(), "nothing written after a refusal");
    std::fs::write(&file, "alice:plain\n").unwrap();
    let out = pigeon_passwd(&[file_arg, "bob"], "pw\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("password file {file_arg}: line 1: user `alice`")),
        "{stderr}"
    );
    // The broker refuses the same file at startup, naming it and the line, exit 2.
    let done = common::run_to_end(&["--port", "0", "--password-file", file_arg]);
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains(&format!(
            "--password-file / password_file: password file {file_arg}: line 1"
        )),
        "{}",
        done.stderr
    );
    // Options of the broker and the subcommand do not mix.
    let done = common::run_to_end(&["--port", "0", "passwd", file_arg, "bob"]);
    assert_eq!(done.code, Some(2), "{}", done.stderr);
}

#[test]
fn sighup_reloads_the_password_file_without_dropping_clients() {
    let dir = test_dir("sighup");
    let file = dir.join("passwd");
    add_user(&file, &[], "alice", "s3cret");
    let file_arg = file.to_str().unwrap();
    let mut running = Running::start(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--password-file",
        file_arg,
    ]);
    let (mut alice, code) = raw_connect(running.addr, "alice-1", "alice", "s3cret");
    assert_eq!(code, 0);
    assert_eq!(
        raw_connect(running.addr, "bob-0", "bob", "hunter2").1,
        5,
        "not yet in the file"
    );

    add_user(&file, &[], "bob", "hunter2");
    hangup(&running);
    running
        .wait_for_log("password file reloaded")
        .expect("reload logged");
    assert_eq!(raw_connect(running.addr, "bob-1", "bob", "hunter2").1, 0);
    assert_alive(&mut alice);

    // A broken file: logged with its name and line, the old contents kept.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}carol\n")).unwrap();
    hangup(&running);
    let line = running
        .wait_for_log("keeping the previous passwords")
        .expect("reload error logged");
    assert!(
        line.contains(&format!("password file {file_arg}: line 3")),
        "{line}"
    );
    assert_eq!(raw_connect(running.addr, "bob-2", "bob", "hunter2").1, 0);
    assert_alive(&mut alice);
    assert_eq!(running.stop_with("TERM").code(), Some(0));
}

/// A port nothing listens on right now (the real Mosquitto needs a number).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

#[test]
fn mosquitto_reads_the_sha512_pbkdf2_entries_of_pigeon_passwd() {
    let dir = test_dir("mosquitto_reads");
    let file = dir.join("passwd");
    add_user(&file, &["-H", "sha512-pbkdf2"], "bob", "hunter2");
    // Started as root, mosquitto drops to its own user, which must read the
    // file `pigeon passwd` made 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    let text = format!(
        "listener {port} 127.0.0.1\npassword_file {}\nallow_anonymous false\n",
        file.display()
    );
    std::fs::write(&conf, text).unwrap();
    let mut mosquitto = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run mosquitto ({e}): install Debian's mosquitto package")
        });
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).is_err() {
        if let Some(status) = mosquitto.try_wait().unwrap() {
            let mut stderr = String::new();
            let _ = mosquitto
                .stderr
                .take()
                .map(|mut e| e.read_to_string(&mut stderr));
            panic!("mosquitto exited ({status}): {stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "mosquitto did not listen on {addr}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let right = mosquitto_pub(addr, "bob", "hunter2");
    let wrong = mosquitto_pub(addr, "bob", "hunter3");
    let _ = mosquitto.kill();
    let _ = mosquitto.wait();
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert!(!wrong.status.success());
}
