//! The `socket` device: lines go to a TCP, UDP or unix socket (OpenBao's
//! `socket` audit device).
//!
//! Options:
//! - `address` (required): `host:port`, or the socket's path for `unix`
//!   and `unixgram`.
//! - `socket_type` (default `tcp`): `tcp` (or `tcp4`, `tcp6`), `udp` (or
//!   `udp4`, `udp6`), `unix` (a stream socket), `unixgram`. OpenBao takes
//!   whatever Go's `net.Dial` takes and fails at the first write; Strongroom
//!   refuses any other type when the device is opened, with Go's words
//!   (`dial X: unknown network X`).
//! - `write_timeout` (default `2s`, shared by every type): the device bounds
//!   each write by it; connecting is bounded by it too.
//!
//! Opening the device does not connect, so it never fails because the
//! receiver is down (enabling's test write does, as in OpenBao). The
//! connection is made at the first write and kept. Before writing on a
//! stream, the sink looks (without waiting) whether the receiver closed its
//! end, and reconnects if it did: a restarted receiver gets the next batch
//! instead of it being written into a dead connection. A write that fails
//! anyway is tried once more on a new connection, as OpenBao does; then the
//! batch fails. A receiver across a network whose close has not reached
//! this host yet can still swallow the batch written just before it
//! (OpenBao's warning about TCP).
//!
//! On `tcp` and `unix` a batch goes out in one write; a batch retried whole
//! may leave a partial line on the old connection. On `udp` and `unixgram`
//! each line (with its newline) is one datagram; a retry resumes at the line
//! that failed. UDP cannot tell whether anything arrived (OpenBao's warning
//! applies), and a line longer than a datagram can carry fails. SIGHUP drops
//! the connection; the next write reconnects.

use std::collections::BTreeMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpStream, UdpSocket, UnixDatagram, UnixStream};
use tokio::sync::Mutex;

use super::Sink;
use crate::options::{CommonOptions, ConfigError};

/// Which addresses a TCP or UDP type may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Any,
    V4,
    V6,
}

/// The `socket_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    Tcp(Family),
    Udp(Family),
    Unix,
    Unixgram,
}

/// An open connection to the receiver.
#[derive(Debug)]
enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
    Unix(UnixStream),
    Unixgram(UnixDatagram),
}

/// A `socket` device's sink.
#[derive(Debug)]
pub struct SocketSink {
    network: Network,
    /// The `socket_type` as given, for messages.
    network_name: String,
    address: String,
    /// Bounds connecting; `None` for a zero `write_timeout`.
    timeout: Option<Duration>,
    /// The kept connection; taken out while a write runs, so that a write
    /// cut short (the device's timeout) leaves none behind.
    conn: Mutex<Option<Conn>>,
}

impl SocketSink {
    /// Reads the options; does not connect.
    ///
    /// # Errors
    /// No `address`, an unknown `socket_type`, a bad `write_timeout`.
    pub fn open(options: &BTreeMap<String, String>) -> Result<SocketSink, ConfigError> {
        let address = options
            .get("address")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::Invalid("address is required".into()))?;
        let name = options
            .get("socket_type")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .unwrap_or("tcp");
        let network = match name {
            "tcp" => Network::Tcp(Family::Any),
            "tcp4" => Network::Tcp(Family::V4),
            "tcp6" => Network::Tcp(Family::V6),
            "udp" => Network::Udp(Family::Any),
            "udp4" => Network::Udp(Family::V4),
            "udp6" => Network::Udp(Family::V6),
            "unix" => Network::Unix,
            "unixgram" => Network::Unixgram,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "dial {other}: unknown network {other}"
                )))
            }
        };
        // The device parses the shared options too; the prefix permission
        // is its to check, not the sink's.
        let timeout = CommonOptions::parse(options, true)?.write_timeout;
        Ok(SocketSink {
            network,
            network_name: name.to_string(),
            address: address.to_string(),
            timeout: (!timeout.is_zero()).then_some(timeout),
            conn: Mutex::new(None),
        })
    }

    /// Connects to the receiver, within the timeout.
    async fn connect(&self) -> io::Result<Conn> {
        let dial = async {
            match self.network {
                Network::Tcp(family) => {
                    let mut last = None;
                    for addr in self.resolve(family).await? {
                        match TcpStream::connect(addr).await {
                            Ok(stream) => {
                                // Batches are small and must not wait for
                                // the previous one's acknowledgement.
                                stream.set_nodelay(true)?;
                                return Ok(Conn::Tcp(stream));
                            }
                            Err(e) => last = Some(e),
                        }
                    }
                    Err(last.unwrap_or_else(|| io::Error::other("no address")))
                }
                Network::Udp(family) => {
                    let addr = self.resolve(family).await?[0];
                    let local: SocketAddr = if addr.is_ipv4() {
                        (Ipv4Addr::UNSPECIFIED, 0).into()
                    } else {
                        (Ipv6Addr::UNSPECIFIED, 0).into()
                    };
                    let socket = UdpSocket::bind(local).await?;
                    socket.connect(addr).await?;
                    Ok(Conn::Udp(socket))
                }
                Network::Unix => Ok(Conn::Unix(UnixStream::connect(&self.address).await?)),
                Network::Unixgram => {
                    let socket = UnixDatagram::unbound()?;
                    socket.connect(&self.address)?;
                    Ok(Conn::Unixgram(socket))
                }
            }
        };
        let outcome = match self.timeout {
            Some(t) => tokio::time::timeout(t, dial)
                .await
                .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "i/o timeout"))),
            None => dial.await,
        };
        outcome.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("dial {} {}: {e}", self.network_name, self.address),
            )
        })
    }

    /// The addresses `address` names, of `family`, never none.
    async fn resolve(&self, family: Family) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(self.address.as_str())
            .await?
            .filter(|a| match family {
                Family::Any => true,
                Family::V4 => a.is_ipv4(),
                Family::V6 => a.is_ipv6(),
            })
            .collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no suitable address found",
            ));
        }
        Ok(addrs)
    }

    /// One try: the kept connection (unless the receiver closed it) or a
    /// new one, then the lines from `sent` on.
    async fn attempt(
        &self,
        slot: &mut Option<Conn>,
        batch: &[u8],
        sent: &mut usize,
    ) -> io::Result<()> {
        let mut conn = match slot.take().filter(|c| !c.peer_gone()) {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        conn.send(batch, sent).await?;
        *slot = Some(conn);
        Ok(())
    }
}

impl Conn {
    /// Whether the receiver closed (or reset) its end of a stream, looked
    /// at without waiting and without consuming anything. Datagram
    /// sockets have no end to close.
    fn peer_gone(&self) -> bool {
        let sock = match self {
            Conn::Tcp(s) => socket2::SockRef::from(s),
            Conn::Unix(s) => socket2::SockRef::from(s),
            Conn::Udp(_) | Conn::Unixgram(_) => return false,
        };
        let mut buf = [MaybeUninit::<u8>::uninit(); 1];
        // tokio's sockets are non-blocking: an empty queue is WouldBlock.
        match sock.peek(&mut buf) {
            Ok(0) => true,
            // The receiver sent something: not ours to read, still open.
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        }
    }

    /// Writes the batch (a stream) or its lines from `sent` on, one
    /// datagram each, counting them in `sent`.
    async fn send(&mut self, batch: &[u8], sent: &mut usize) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(batch).await,
            Conn::Unix(s) => s.write_all(batch).await,
            Conn::Udp(s) => {
                for line in batch.split_inclusive(|b| *b == b'\n').skip(*sent) {
                    check_whole(s.send(line).await?, line)?;
                    *sent += 1;
                }
                Ok(())
            }
            Conn::Unixgram(s) => {
                for line in batch.split_inclusive(|b| *b == b'\n').skip(*sent) {
                    check_whole(s.send(line).await?, line)?;
                    *sent += 1;
                }
                Ok(())
            }
        }
    }
}

/// A datagram goes whole or not at all; anything else is a failure.
fn check_whole(n: usize, line: &[u8]) -> io::Result<()> {
    if n == line.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {n} of {} bytes", line.len()),
        ))
    }
}

#[async_trait::async_trait]
impl Sink for SocketSink {
    async fn write(&self, batch: &[u8]) -> io::Result<()> {
        let mut slot = self.conn.lock().await;
        let mut sent = 0;
        let first = match self.attempt(&mut slot, batch, &mut sent).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // Reconnect once and try again (OpenBao): a receiver that came
        // back is picked up without restarting the server.
        self.attempt(&mut slot, batch, &mut sent)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{first}; after reconnecting: {e}")))
    }

    async fn reopen(&self) -> io::Result<()> {
        *self.conn.lock().await = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
    use tokio::net::{TcpListener, UnixListener};

    use crate::options::from_pairs as opts;

    /// Reads `n` lines from a stream the sink connected.
    async fn read_lines<R: AsyncRead + Unpin>(stream: R, n: usize) -> (Vec<String>, R) {
        let mut reader = BufReader::new(stream);
        let mut lines = Vec::new();
        for _ in 0..n {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            lines.push(line);
        }
        (lines, reader.into_inner())
    }

    #[tokio::test]
    async fn tcp_lines_arrive_whole_and_in_order_and_a_restarted_receiver_is_picked_up() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = SocketSink::open(&opts(&[("address", &addr.to_string())])).unwrap();
        sink.write(b"{\"n\":1}\n{\"n\":2}\n").await.unwrap();
        sink.write(b"{\"n\":3}\n").await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (lines, stream) = read_lines(stream, 3).await;
        assert_eq!(lines, ["{\"n\":1}\n", "{\"n\":2}\n", "{\"n\":3}\n"]);

        // The receiver restarts between two writes: the next batch goes to
        // the new one, not into the closed connection.
        drop(stream);
        drop(listener);
        let listener = TcpListener::bind(addr).await.unwrap();
        sink.write(b"{\"n\":4}\n").await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (lines, stream) = read_lines(stream, 1).await;
        assert_eq!(lines, ["{\"n\":4}\n"]);

        // The receiver is down: the write fails, naming the address.
        drop(stream);
        drop(listener);
        let err = sink.write(b"{\"n\":5}\n").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        assert!(
            err.to_string().starts_with(&format!("dial tcp {addr}: ")),
            "{err}"
        );
        assert!(err.to_string().contains("after reconnecting"), "{err}");

        // It comes back: the next write succeeds.
        let listener = TcpListener::bind(addr).await.unwrap();
        sink.write(b"{\"n\":6}\n").await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (lines, _) = read_lines(stream, 1).await;
        assert_eq!(lines, ["{\"n\":6}\n"]);
    }

    #[tokio::test]
    async fn opening_does_not_need_the_receiver() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let sink = SocketSink::open(&opts(&[("address", &addr.to_string())])).unwrap();
        let err = sink.write(b"x\n").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }

    #[tokio::test]
    async fn udp_sends_one_datagram_per_line() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = receiver.local_addr().unwrap().to_string();
        let sink = SocketSink::open(&opts(&[("address", &addr), ("socket_type", "udp")])).unwrap();
        sink.write(b"{\"n\":1}\n{\"n\":22}\n").await.unwrap();
        sink.write(b"{\"n\":333}\n").await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        for _ in 0..3 {
            let n = receiver.recv(&mut buf).await.unwrap();
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        assert_eq!(got, ["{\"n\":1}\n", "{\"n\":22}\n", "{\"n\":333}\n"]);
    }

    fn unix_listener(path: &Path) -> UnixListener {
        let _ = std::fs::remove_file(path);
        UnixListener::bind(path).unwrap()
    }

    #[tokio::test]
    async fn unix_stream_receiver_down_then_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sock");
        let listener = unix_listener(&path);
        let sink = SocketSink::open(&opts(&[
            ("address", path.to_str().unwrap()),
            ("socket_type", "unix"),
        ]))
        .unwrap();
        sink.write(b"a\nb\n").await.unwrap();
        sink.write(b"c\n").await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (lines, stream) = read_lines(stream, 3).await;
        assert_eq!(lines, ["a\n", "b\n", "c\n"]);

        drop(stream);
        drop(listener);
        let err = sink.write(b"d\n").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("dial unix {}: ", path.display())),
            "{err}"
        );

        let listener = unix_listener(&path);
        sink.write(b"e\n").await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (lines, _first) = read_lines(stream, 1).await;
        assert_eq!(lines, ["e\n"]);

        // SIGHUP: the next write comes on a new connection.
        sink.reopen().await.unwrap();
        sink.write(b"f\n").await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (lines, _) = read_lines(stream, 1).await;
        assert_eq!(lines, ["f\n"]);
    }

    #[tokio::test]
    async fn unixgram_sends_one_datagram_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.dgram");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let sink = SocketSink::open(&opts(&[
            ("address", path.to_str().unwrap()),
            ("socket_type", "unixgram"),
        ]))
        .unwrap();
        sink.write(b"one\ntwo\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"one\n");
        let n = receiver.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"two\n");
    }

    #[test]
    fn refusals() {
        for (pairs, want) in [
            (&[][..], "address is required"),
            (&[("address", " ")][..], "address is required"),
            (
                &[("address", "x:1"), ("socket_type", "bogus")][..],
                "dial bogus: unknown network bogus",
            ),
            (
                &[("address", "x:1"), ("write_timeout", "soon")][..],
                "unable to parse 'write_timeout'",
            ),
        ] {
            let err = SocketSink::open(&opts(pairs)).unwrap_err().to_string();
            assert!(err.starts_with(want), "{pairs:?}: {err}");
        }
    }
}
