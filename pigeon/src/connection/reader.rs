//! Packets from the client's stream, with a read buffer that exists only
//! while there is something to read: an idle client holds none.
//!
//! `tokio_util::codec::FramedRead` keeps an 8 KiB buffer for the life of the
//! stream; with many idle clients that buffer was most of their memory. Here
//! the buffer is given back whenever a read finds nothing more and no partial
//! packet is left, and the next read goes into a scratch array on the stack
//! (not in the connection's future) until bytes actually arrive.

use std::{
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::BytesMut;
use futures_util::Stream;
use pigeon_codec::{DecodeError, MqttCodec, Packet};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::codec::Decoder;

use super::{buffers, ByteStream};

/// The read buffer's size once bytes arrive (as `FramedRead`'s).
const READ_CAPACITY: usize = buffers::READ;
/// A read into an empty buffer goes through this much stack first: as much
/// as a pooled buffer holds, so that a burst up to that size is one read.
/// At 2 KiB, a QoS 1 publisher's usual burst (its whole window of 64
/// messages of 78 bytes, 4992 bytes) took two reads, 2048 bytes and then
/// the rest; one read of it cut the broker's system calls per message from
/// 0.073 to 0.060 in the benchmark's pairs scenario.
const SCRATCH: usize = READ_CAPACITY;
/// Room a partly read buffer must have left for the next read; with less,
/// it grows by [`READ_CAPACITY`] first.
const ROOM: usize = 2 * 1024;

/// Decodes packets from a client's stream (which it owns: the connection
/// writes through [`Reader::get_mut`]).
pub(crate) struct Reader {
    io: ByteStream,
    codec: MqttCodec,
    buf: BytesMut,
    eof: bool,
    /// Bytes read since the owner last took the count ([`Reader::take_count`]).
    count: u32,
}

impl Reader {
    /// A reader that has allocated nothing yet.
    pub(crate) fn new(io: ByteStream, codec: MqttCodec) -> Self {
        Self {
            io,
            codec,
            buf: BytesMut::new(),
            eof: false,
            count: 0,
        }
    }

    /// The codec, which also encodes what is written back (one per
    /// connection, not one each way: it is the same version and limits).
    pub(crate) fn codec(&mut self) -> &mut MqttCodec {
        &mut self.codec
    }

    /// The stream, to write to it, or for a lingering close.
    pub(crate) fn get_mut(&mut self) -> &mut ByteStream {
        &mut self.io
    }

    /// Whether the stream is a plain TCP socket.
    pub(crate) fn is_tcp(&self) -> bool {
        self.io.is_tcp()
    }

    /// Nothing is buffered, not even part of a packet, and the stream has not
    /// ended: all the reader holds is its stream and codec (it can park).
    pub(crate) fn is_drained(&self) -> bool {
        self.buf.is_empty() && !self.eof
    }

    /// Takes a plain TCP socket out, to park it; the reader reads the end of
    /// the stream after that.
    pub(crate) fn take_tcp(&mut self) -> Option<tokio::net::TcpStream> {
        if !self.io.is_tcp() {
            return None;
        }
        let io = std::mem::replace(&mut self.io, Box::new(Gone));
        io.into_any().downcast().ok().map(|tcp| *tcp)
    }

    /// What a drained reader keeps while its connection is parked, its
    /// stream taken ([`Reader::take_tcp`]): its codec and byte count. The
    /// stream's box and the empty buffer are 48 bytes every parked client
    /// would keep for nothing.
    pub(crate) fn into_parts(self) -> (MqttCodec, u32) {
        debug_assert!(self.is_drained(), "a reader with bytes parks");
        (self.codec, self.count)
    }

    /// The reader of a parked connection again ([`Reader::into_parts`]),
    /// reading `io` (or, if its socket could not be watched again, the end
    /// of the stream).
    pub(crate) fn from_parts(codec: MqttCodec, count: u32, io: Option<ByteStream>) -> Self {
        Self {
            io: io.unwrap_or_else(|| Box::new(Gone)),
            codec,
            buf: BytesMut::new(),
            eof: false,
            count,
        }
    }

    /// Bytes read since the last call (for the broker's byte counters: the
    /// reader holds no handle on them, which would cost every connection a word).
    pub(crate) fn take_count(&mut self) -> u64 {
        u64::from(std::mem::take(&mut self.count))
    }

    /// The next packet, `None` at the end of the stream.
    pub(crate) fn poll_packet(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Packet, DecodeError>>> {
        loop {
            if self.eof {
                return Poll::Ready(self.codec.decode_eof(&mut self.buf).transpose());
            }
            if let Some(packet) = self.codec.decode(&mut self.buf)? {
                return Poll::Ready(Some(Ok(packet)));
            }
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) => self.eof = true,
                Poll::Ready(Ok(n)) => self.count = self.count.saturating_add(n as u32),
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Pending => {
                    if self.buf.is_empty() {
                        self.release_buffer();
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Nothing partial is held: the buffer goes now (decoded packets keep
    /// their own slices of it). An empty one of no capacity goes too: the
    /// rest of a buffer whose packets were split off still holds the
    /// allocation they share (a CONNECT's bytes and their shared header, kept
    /// by every idle client otherwise).
    fn release_buffer(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() > 0 {
            buffers::give_read(buf);
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.capacity() == 0 {
            return self.poll_fill_empty(cx);
        }
        if self.buf.capacity() - self.buf.len() < ROOM {
            self.buf.reserve(READ_CAPACITY);
        }
        let before = self.buf.len();
        ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            &mut self.buf
        ))?;
        Poll::Ready(Ok(self.buf.len() - before))
    }

    /// A read with no buffer: into the stack, and into a new buffer only
    /// when bytes came.
    ///
    /// A read that did not fill the scratch (a client publishing now and
    /// then, or a burst of up to 8 KiB) goes into a buffer of exactly its
    /// size: the packets decoded from it are slices of their buffer, and a
    /// message queued for an offline subscriber or retained keeps that whole
    /// buffer alive. In an 8 KiB buffer, one 70-byte message would hold 8 KiB
    /// for as long as it waits. A longer burst fills the scratch and gets a
    /// pooled buffer, shared by the many packets it holds; the rest of the
    /// burst is read after them.
    fn poll_fill_empty(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        // Uninitialized: zeroing it would cost more than most reads.
        let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); SCRATCH];
        let mut read = ReadBuf::uninit(&mut scratch);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        let filled = read.filled();
        if filled.len() == SCRATCH {
            self.buf = buffers::read_buffer();
            self.buf.extend_from_slice(filled);
        } else if !filled.is_empty() {
            self.buf = BytesMut::from(filled);
        }
        Poll::Ready(Ok(filled.len()))
    }
}

/// Where a parked connection's stream was: the end of a stream to read, a
/// closed one to write. No bytes: its box allocates nothing.
struct Gone;

impl AsyncRead for Gone {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Gone {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Stream for Reader {
    type Item = Result<Packet, DecodeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_packet(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use pigeon_codec::{Connect, Protocol};
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::Encoder;

    fn encoded(packets: &[Packet]) -> Vec<u8> {
        let mut codec = MqttCodec::with_protocol(Protocol::V3_1_1, usize::MAX);
        let mut out = BytesMut::new();
        for p in packets {
            Encoder::<&Packet>::encode(&mut codec, p, &mut out).unwrap();
        }
        out.to_vec()
    }

    /// Packets split across reads at every byte come out whole, and the
    /// buffer is gone once the reader waits with nothing partial.
    #[tokio::test]
    async fn decodes_across_reads_and_frees_the_buffer_when_idle() {
        let packets = vec![
            Packet::Connect(Box::new(Connect::new(Protocol::V3_1_1, "c"))),
            Packet::PingReq,
            Packet::PingReq,
        ];
        let bytes = encoded(&packets);
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = Reader::new(Box::new(server), MqttCodec::new(1 << 20));
        let writer = tokio::spawn(async move {
            for b in bytes {
                client.write_all(&[b]).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        for expected in &packets {
            let got = reader.next().await.unwrap().unwrap();
            assert_eq!(format!("{got:?}"), format!("{expected:?}"));
        }
        let client = writer.await.unwrap();
        // Waiting for the next packet with nothing partial holds no buffer.
        assert!(futures_util::FutureExt::now_or_never(reader.next()).is_none());
        assert_eq!(reader.buf.capacity(), 0);
        drop(client);
        assert!(reader.next().await.is_none(), "end of stream");
    }

    /// A PUBLISH that came alone is decoded from a buffer of its own size,
    /// so that keeping the message (queued, retained) keeps only its bytes;
    /// so is a burst the scratch holds, read at once; a longer burst goes
    /// into a pooled buffer.
    #[tokio::test]
    async fn a_lone_publish_holds_only_its_own_bytes() {
        use pigeon_codec::{Publish, QoS};
        let connect = encoded(&[Packet::Connect(Box::new(Connect::new(
            Protocol::V3_1_1,
            "c",
        )))]);
        let publish = |n: usize| {
            Packet::Publish(Publish::new(
                format!("t/{n}"),
                QoS::AtMostOnce,
                vec![7u8; 64],
            ))
        };
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut reader = Reader::new(Box::new(server), MqttCodec::new(1 << 20));
        client.write_all(&connect).await.unwrap();
        assert!(matches!(reader.next().await, Some(Ok(Packet::Connect(_)))));
        assert!(futures_util::FutureExt::now_or_never(reader.next()).is_none());

        let one = encoded(&[publish(0)]);
        client.write_all(&one).await.unwrap();
        let Some(Ok(Packet::Publish(p))) = reader.next().await else {
            panic!("a PUBLISH")
        };
        assert_eq!(p.payload.len(), 64);
        // The packet took the whole buffer: it was exactly the read's size.
        assert_eq!(
            reader.buf.capacity(),
            0,
            "no spare room kept alive by the packet"
        );
        assert!(futures_util::FutureExt::now_or_never(reader.next()).is_none());
        // Waiting, the reader keeps no share of the packet's buffer.
        let payload = p.payload.clone();
        drop(p);
        assert!(payload.is_unique(), "the idle reader holds the buffer");

        // A window's worth of messages, as a QoS 1 publisher sends them
        // when its acknowledgements come: one read, one buffer of its size.
        let window: Vec<u8> = (0..64).flat_map(|n| encoded(&[publish(n)])).collect();
        assert!(window.len() < SCRATCH);
        reader.take_count();
        client.write_all(&window).await.unwrap();
        let Some(Ok(Packet::Publish(first))) = reader.next().await else {
            panic!("a PUBLISH")
        };
        assert_eq!(reader.take_count(), window.len() as u64, "read at once");
        let rest = window.len() - encoded(&[publish(0)]).len();
        assert_eq!(reader.buf.len(), rest);
        assert_eq!(reader.buf.capacity(), rest, "no spare room");
        drop(first);
        for _ in 1..64 {
            assert!(matches!(reader.next().await, Some(Ok(Packet::Publish(_)))));
        }
        assert!(futures_util::FutureExt::now_or_never(reader.next()).is_none());

        let burst: Vec<u8> = (0..200).flat_map(|n| encoded(&[publish(n)])).collect();
        assert!(burst.len() > SCRATCH);
        reader.take_count();
        client.write_all(&burst).await.unwrap();
        let Some(Ok(Packet::Publish(_))) = reader.next().await else {
            panic!("a PUBLISH")
        };
        assert_eq!(
            reader.take_count(),
            SCRATCH as u64,
            "the scratch's worth first"
        );
        assert!(
            reader.buf.capacity() >= READ_CAPACITY - 100,
            "a long burst reads into a pooled buffer"
        );
        for _ in 1..200 {
            assert!(matches!(reader.next().await, Some(Ok(Packet::Publish(_)))));
        }
    }

    /// A stream that ends inside a packet is the peer's fault.
    #[tokio::test]
    async fn truncated_packet_at_eof_is_an_error() {
        let mut bytes = encoded(&[Packet::Connect(Box::new(Connect::new(
            Protocol::V3_1_1,
            "c",
        )))]);
        bytes.pop();
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(&bytes).await.unwrap();
        drop(client);
        let mut reader = Reader::new(Box::new(server), MqttCodec::new(1 << 20));
        let error = reader.next().await.unwrap().unwrap_err();
        assert!(matches!(error, DecodeError::Truncated), "{error:?}");
    }
}
