//! The heap an idle, parked client costs the broker, counted by allocation
//! (not by page, as RSS is: this is exact and the same on every run).
//!
//! `bench/connections.sh` measures RSS per idle connection beside Mosquitto;
//! this pins the part of it the broker's own data structures make, and says
//! which blocks it is made of when it grows. (730 B now: the client id and
//! the parked connection's slots, 24 B each; the `Client`, 112; the session
//! and the parked connection, 224 each; a share of the keep-alive ring and
//! of two hash tables.)
//!
//! It also pins where those blocks are: none in the allocator's classes of
//! the blocks a connection frees when it parks (its task and socket
//! registration, 256 bytes; its `Connection` box, 320). A block kept there
//! keeps the slab of freed ones around it from being returned: the
//! keep-alive B-tree's leaves (280 bytes) did that, and cost 410 bytes of
//! RSS per idle client at 10,000 (`bench/connections.sh`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use pigeon::Config;
use pigeon_tests::{config, parked, start_with};

/// Live blocks by requested size, in 8-byte steps (the last counts the rest).
const BUCKETS: usize = 129;
static LIVE: [AtomicI64; BUCKETS] = [const { AtomicI64::new(0) }; BUCKETS];
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

struct Counting;

fn bucket(size: usize) -> usize {
    (size.div_ceil(8)).min(BUCKETS - 1)
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds
// `GlobalAlloc`'s contract; the counters beside it allocate nothing.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE[bucket(layout.size())].fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE[bucket(layout.size())].fetch_sub(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn snapshot() -> (i64, Vec<i64>) {
    let live = LIVE.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    (LIVE_BYTES.load(Ordering::Relaxed), live)
}

/// Opens `n` MQTT 3.1.1 connections with plain std sockets (they cost the
/// test no heap of their own) and waits for each CONNACK, on a thread of its
/// own: the broker's runtime goes on.
async fn open(addr: std::net::SocketAddr, first: usize, n: usize) -> Vec<TcpStream> {
    let connect = move || {
        let mut sockets = Vec::with_capacity(n);
        for i in first..first + n {
            let mut s = TcpStream::connect(addr).expect("connects");
            let mut packet = [
                0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'm', 0, 0, 0, 0,
            ];
            packet[15..19].copy_from_slice(format!("{i:04}").as_bytes());
            s.write_all(&packet).expect("sends CONNECT");
            let mut connack = [0u8; 4];
            s.read_exact(&mut connack).expect("reads CONNACK");
            assert_eq!(connack, [0x20, 2, 0, 0], "client {i} accepted");
            sockets.push(s);
        }
        sockets
    };
    tokio::task::spawn_blocking(connect)
        .await
        .expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_parked_client_costs_under_800_bytes_of_heap() {
    let broker = start_with(Config {
        park_idle_after: Duration::from_millis(20),
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    // The broker's hash tables double when 7/8 full: at 50 and at 200
    // clients they are equally full (64 and 256 slots), so what the
    // difference shows is their usual cost per client, not a doubling. (Few
    // clients: each takes two descriptors here, and the soft limit may be
    // 1024.)
    let (first, more) = (50, 150);
    let mut sockets = open(addr, 0, first).await;
    parked(&broker, first as u64).await;
    let (bytes0, live0) = snapshot();
    sockets.extend(open(addr, first, more).await);
    parked(&broker, (first + more) as u64).await;
    let (bytes1, live1) = snapshot();

    let per_client = (bytes1 - bytes0) as f64 / more as f64;
    let mut blocks = String::new();
    for (i, (a, b)) in live0.iter().zip(&live1).enumerate() {
        let per = (b - a) as f64 / more as f64;
        if per.abs() >= 0.1 {
            let size = if i == BUCKETS - 1 {
                format!(">{}", 8 * (BUCKETS - 1))
            } else {
                format!("{}", 8 * i)
            };
            blocks += &format!("  {per:5.2} blocks of <= {size} B\n");
        }
    }
    println!("heap per parked client: {per_client:.0} B\n{blocks}");
    // jemalloc's 256- and 320-byte classes: requests of 225 to 320 bytes.
    let freed_classes: f64 = (bucket(225)..=bucket(320))
        .map(|i| (live1[i] - live0[i]) as f64 / more as f64)
        .sum();
    assert!(
        freed_classes < 0.05,
        "an idle client keeps {freed_classes:.2} blocks of 225-320 B, the classes parking frees:\n{blocks}"
    );
    assert!(
        per_client <= 800.0,
        "an idle client costs {per_client:.0} B of heap:\n{blocks}"
    );
    assert_eq!(sockets.len(), first + more);
    broker.close().await;
}
