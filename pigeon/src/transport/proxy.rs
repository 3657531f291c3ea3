//! PROXY protocol v1 (text) and v2 (binary) headers, as load balancers such as
//! HAProxy and AWS NLB send them before the client's bytes. Read byte-exact
//! (nothing past the header is consumed), so TLS, WebSocket or MQTT follows.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

use super::accept::HandshakeError;

/// The v2 signature.
const V2: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line (107 bytes, CRLF included).
const V1_MAX: usize = 107;

fn bad(message: impl Into<String>) -> HandshakeError {
    HandshakeError::Proxy(message.into())
}

/// Reads the header; `Some(addr)`: the client's address, `None`: the proxy
/// speaks for itself (v1 `UNKNOWN`, v2 `LOCAL`) and the socket's address stays.
pub(super) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, HandshakeError> {
    let io = |e: std::io::Error| bad(e.to_string());
    let mut start = [0u8; 5];
    stream.read_exact(&mut start).await.map_err(io)?;
    if &start == b"PROXY" {
        let mut line = start.to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err(bad("v1 header longer than 107 bytes"));
            }
            line.push(stream.read_u8().await.map_err(io)?);
        }
        return parse_v1(&line);
    }
    if start != V2[..5] {
        return Err(bad("no PROXY protocol header"));
    }
    let mut rest = [0u8; 11];
    stream.read_exact(&mut rest).await.map_err(io)?;
    if rest[..7] != V2[5..] {
        return Err(bad("bad v2 signature"));
    }
    let (version_command, family) = (rest[7], rest[8]);
    let len = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.map_err(io)?;
    if version_command >> 4 != 2 {
        return Err(bad("unsupported v2 version"));
    }
    match version_command & 0x0f {
        0 => return Ok(None), // LOCAL: health checks from the proxy itself
        1 => {}
        _ => return Err(bad("unknown v2 command")),
    }
    parse_v2_addr(family, &body)
}

fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, HandshakeError> {
    let text = std::str::from_utf8(line).map_err(|_| bad("v1 header is not ASCII"))?;
    let fields: Vec<&str> = text.trim_end_matches("\r\n").split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip: IpAddr = src.parse().map_err(|_| bad("bad v1 source address"))?;
            if (*family == "TCP4") != ip.is_ipv4() {
                return Err(bad("v1 address does not match its family"));
            }
            let port: u16 = sport.parse().map_err(|_| bad("bad v1 source port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(bad("malformed v1 header")),
    }
}

fn parse_v2_addr(family: u8, body: &[u8]) -> Result<Option<SocketAddr>, HandshakeError> {
    let short = || bad("v2 address block too short");
    match family >> 4 {
        0 => Ok(None), // AF_UNSPEC
        1 => {
            let b: &[u8; 12] = body
                .get(..12)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(short)?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Ok(Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([b[8], b[9]]),
            )))
        }
        2 => {
            let b: &[u8; 36] = body
                .get(..36)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(short)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[..16]);
            let ip = Ipv6Addr::from(octets);
            Ok(Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([b[32], b[33]]),
            )))
        }
        // AF_UNIX and the rest: no IP address to report.
        _ => Ok(None),
    }
}
