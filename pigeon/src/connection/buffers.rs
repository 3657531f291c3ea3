//! Per-thread spare buffers. A connection gives its read and write buffers
//! back whenever it waits with nothing in them (an idle client holds none),
//! and takes them again when bytes come or go: from here, that costs a
//! `Vec::pop` instead of an allocation of several kilobytes each time.
//!
//! Bounded per thread, so the spares cost at most `SPARES * (READ + WRITE)`
//! bytes per worker thread, whatever the number of connections.

use std::cell::RefCell;

use bytes::BytesMut;

use crate::model::Delivery;

/// A read buffer's size (as `FramedRead`'s).
pub(crate) const READ: usize = 8 * 1024;
/// A write buffer's first size.
pub(crate) const WRITE: usize = 4 * 1024;
/// Spare buffers kept per thread and kind.
const SPARES: usize = 16;

thread_local! {
    static READS: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static WRITES: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty read buffer of at least [`READ`] bytes.
pub(crate) fn read_buffer() -> BytesMut {
    take(&READS, READ)
}

/// An empty write buffer of at least [`WRITE`] bytes.
pub(crate) fn write_buffer() -> BytesMut {
    take(&WRITES, WRITE)
}

/// Gives an empty read buffer back (kept only if no decoded packet still
/// holds a slice of it).
pub(crate) fn give_read(buf: BytesMut) {
    give(&READS, buf, READ);
}

/// Gives an empty write buffer back.
pub(crate) fn give_write(buf: BytesMut) {
    give(&WRITES, buf, WRITE);
}

type Spares = std::thread::LocalKey<RefCell<Vec<BytesMut>>>;

fn take(spares: &'static Spares, size: usize) -> BytesMut {
    spares
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(size))
}

fn give(spares: &'static Spares, mut buf: BytesMut, size: usize) {
    buf.clear();
    // Unique and whole again, and not grown huge: otherwise it is dropped.
    if buf.capacity() < size || buf.capacity() > 16 * size || !buf.try_reclaim(size) {
        return;
    }
    spares.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARES {
            s.push(buf);
        }
    });
}

thread_local! {
    static BATCHES: RefCell<Vec<Vec<Delivery>>> = const { RefCell::new(Vec::new()) };
}

/// An empty vector for a batch of deliveries taken from a session's queue:
/// a spare one of this thread's, so that a connection holds none between
/// batches (three words less in every idle client).
pub(crate) fn batch() -> Vec<Delivery> {
    BATCHES.with(|b| b.borrow_mut().pop()).unwrap_or_default()
}

/// Gives a batch's vector back, emptied.
pub(crate) fn give_batch(mut batch: Vec<Delivery>) {
    batch.clear();
    if batch.capacity() == 0 || batch.capacity() > 4 * super::BATCH {
        return;
    }
    BATCHES.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < SPARES {
            b.push(batch);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_unless_still_shared() {
        let mut buf = read_buffer();
        let ptr = buf.as_ptr();
        buf.extend_from_slice(b"abc");
        let _ = buf.split_to(3);
        give_read(buf);
        assert_eq!(read_buffer().as_ptr(), ptr, "reused");

        let mut shared = read_buffer();
        shared.extend_from_slice(b"abc");
        let held = shared.split_to(3).freeze();
        let ptr = shared.as_ptr();
        give_read(shared);
        assert_ne!(read_buffer().as_ptr(), ptr, "a packet still holds it");
        assert_eq!(&held[..], b"abc");
    }
}
