//! Connection limits: timeouts and a per-listener cap on open connections,
//! so that no pattern of connections can starve other clients.
//!
//! The module owns [`ConnLimits`] (the `listener "tcp"` settings
//! `http_idle_timeout`, `http_read_header_timeout`, `http_read_timeout`,
//! `http_write_timeout` and `max_connections`), the per-listener
//! [`Tracker`] of open connections, the per-connection supervisor that
//! enforces the timeouts, the I/O wrapper that notices reads and bounds
//! stalled writes, the request-body wrapper that bounds body reads, and the
//! process file-descriptor limit ([`raise_fd_limit`]).
//!
//! # Timeouts (OpenBao's names and defaults)
//!
//! * `http_read_header_timeout` (10 s): a new connection must deliver its
//!   first request head within this time, and a kept-alive connection that
//!   has started sending its next request must finish the head within it
//!   (slow-header attackers).
//! * `http_idle_timeout` (5 min): a kept-alive connection with no request in
//!   flight and no byte of the next one is closed after this time.
//! * `http_read_timeout` (30 s): a request body must arrive within this time
//!   of its head; otherwise the handler sees a read error, the client gets
//!   408 and the connection is closed (slow-body attackers). OpenBao answers
//!   a 500 after the same 30 s.
//! * `http_write_timeout` (0: none, as in OpenBao): a write to the client
//!   that makes no progress for this long fails and closes the connection.
//!
//! 0 disables a timeout. While a request is in flight the connection has
//! no deadline of its own (the body has `http_read_timeout`; handlers are
//! not cut off). HTTP/2 connections follow the same rules with "a request
//! in flight" meaning any open stream; any frame received while idle (a
//! PING, say) starts the header clock.
//!
//! # The connection cap and its reserve
//!
//! Each listener serves at most `max_connections` connections at once
//! (default: the process's file-descriptor limit, less a reserve for
//! storage, logs and outgoing calls, shared among the listeners; see
//! [`default_max_connections`]). A timeout alone does not stop an attacker
//! who simply reopens connections, so the cap must not lock legitimate
//! clients out. When a new connection arrives at the cap, the listener
//! *evicts* the connection that has been waiting longest without a request
//! being handled: idle kept-alive connections, connections still sending a
//! request head, and connections still sending a request body all qualify
//! (oldest first by when they entered that state); a connection whose
//! request has been fully received and is being handled is never evicted.
//! An attacker who holds every slot with idle, slow-header or slow-body
//! connections therefore only ever holds *evictable* slots: a new client is
//! admitted at once by closing the stalest attacker connection, sends its
//! request within milliseconds and is then protected until it is answered
//! (it is also the newest, so the last in line for eviction). Only when
//! every slot holds a request being handled does the listener stop
//! accepting until one finishes; new connections then wait in the kernel's
//! backlog. That reserve needs no fixed number of slots: the whole cap is
//! available to real requests, and all of it can be reclaimed from stalled
//! ones. `sys/health`, authenticated reads and every other request are
//! served the same way.
//!
//! # Cost on the hot path
//!
//! Per connection: one entry in the tracker's map, and one timer that is
//! re-armed at most every `min(http_read_header_timeout,
//! http_idle_timeout)`. Per request: a few relaxed atomic updates; no
//! wake-up and no timer. Eviction scans the tracker, but only at the cap.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// A boxed error, as request bodies report them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Per-listener connection settings (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// `http_idle_timeout`: how long a kept-alive connection may sit with
    /// no request; `None` never closes idle connections.
    pub idle_timeout: Option<Duration>,
    /// `http_read_header_timeout`: how long a client may take to send a
    /// request head; `None` waits forever.
    pub read_header_timeout: Option<Duration>,
    /// `http_read_timeout`: how long a client may take to send a request
    /// body after its head; `None` waits forever.
    pub read_timeout: Option<Duration>,
    /// `http_write_timeout`: how long a write to the client may stall;
    /// `None` waits forever.
    pub write_timeout: Option<Duration>,
    /// `max_connections`: the most connections the listener serves at once.
    pub max_connections: usize,
}

impl ConnLimits {
    /// OpenBao's default `http_idle_timeout`: 5 minutes.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
    /// OpenBao's default `http_read_header_timeout`: 10 seconds.
    pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// OpenBao's default `http_read_timeout`: 30 seconds.
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

    /// OpenBao's timeouts and a cap of [`default_max_connections`] for a
    /// process with `listeners` listeners.
    pub fn with_defaults(listeners: usize) -> ConnLimits {
        ConnLimits {
            idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            read_header_timeout: Some(Self::DEFAULT_READ_HEADER_TIMEOUT),
            read_timeout: Some(Self::DEFAULT_READ_TIMEOUT),
            write_timeout: None,
            max_connections: default_max_connections(listeners),
        }
    }
}

impl Default for ConnLimits {
    /// [`ConnLimits::with_defaults`] for a single listener.
    fn default() -> Self {
        ConnLimits::with_defaults(1)
    }
}

/// File descriptors kept back from the connection caps for everything else
/// the process opens (storage, logs, TLS files, outgoing HTTP clients),
/// plus one sixteenth of the limit.
const FD_RESERVE: u64 = 64;

/// The smallest default cap, whatever the file-descriptor limit.
const MIN_DEFAULT_CONNECTIONS: usize = 16;

/// The soft limit assumed when the process has none.
const UNLIMITED_FDS: u64 = 1 << 20;

/// The default `max_connections` of each of `listeners` listeners: the
/// current soft file-descriptor limit less a reserve (64 plus 1/16 of the
/// limit), divided among the listeners, at least 16. With the common limit
/// of 1,024 and one listener that is 896; with 20,000 it is 18,686.
pub fn default_max_connections(listeners: usize) -> usize {
    let soft = fd_limit().map_or(1024, |l| l.soft);
    let usable = soft.saturating_sub(FD_RESERVE + soft / 16);
    let per = usable / u64::try_from(listeners.max(1)).unwrap_or(1);
    usize::try_from(per)
        .unwrap_or(usize::MAX)
        .max(MIN_DEFAULT_CONNECTIONS)
}

/// The process's open-file limit (`RLIMIT_NOFILE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit in force (unlimited is shown as 2^20).
    pub soft: u64,
    /// The hard limit (unlimited is shown as 2^20).
    pub hard: u64,
}

/// Reads `RLIMIT_NOFILE`, or `None` where the platform has no such limit.
pub fn fd_limit() -> Option<FdLimit> {
    #[cfg(unix)]
    {
        let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        Some(FdLimit {
            soft: l.current.unwrap_or(UNLIMITED_FDS),
            hard: l.maximum.unwrap_or(UNLIMITED_FDS),
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft open-file limit to the hard limit and logs both; returns
/// the limit now in force. Called once at startup: every connection holds a
/// descriptor, and the common default soft limit of 1,024 is far below what
/// a server needs. A failure is logged and the old limit kept.
pub fn raise_fd_limit() -> Option<FdLimit> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let before = getrlimit(Resource::Nofile);
        if before.current != before.maximum {
            let raised = rustix::process::Rlimit {
                current: before.maximum,
                maximum: before.maximum,
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(error = %e, "could not raise the file-descriptor soft limit");
            }
        }
    }
    let limit = fd_limit();
    if let Some(l) = limit {
        tracing::info!(
            soft = l.soft,
            hard = l.hard,
            "file-descriptor limit (soft raised to hard)"
        );
    }
    limit
}

/// The open connections of one listener.
pub(crate) struct Tracker {
    limits: ConnLimits,
    /// When the tracker was made: connection times are nanoseconds since.
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
    /// Signalled when a connection ends (a slot may be free).
    freed: Notify,
}

impl Tracker {
    /// A tracker enforcing `limits`.
    pub(crate) fn new(limits: ConnLimits) -> Arc<Tracker> {
        Arc::new(Tracker {
            limits,
            epoch: Instant::now(),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        // The map holds plain data and no code that can panic runs under
        // the lock, so a poisoned lock still holds a consistent map.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    /// Waits until a new connection may be admitted: below the cap, or at it
    /// after evicting the stalest connection with no request being handled.
    /// When every slot is handling a request, waits for one to finish.
    pub(crate) async fn admit(self: &Arc<Self>) -> Arc<ConnState> {
        loop {
            let freed = self.freed.notified();
            {
                let mut conns = self.lock();
                if conns.len() < self.limits.max_connections || self.evict_oldest(&mut conns) {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let state = Arc::new(ConnState::new(id, Arc::clone(self)));
                    conns.insert(id, Arc::clone(&state));
                    return state;
                }
            }
            // Every slot is handling a request: wait for a connection to end,
            // or look again shortly (a request may finish and leave its
            // connection idle, hence evictable, without ending it).
            let _ = tokio::time::timeout(Duration::from_millis(50), freed).await;
        }
    }

    /// Evicts the evictable connection that has waited longest; false when
    /// every connection is handling a request.
    fn evict_oldest(&self, conns: &mut HashMap<u64, Arc<ConnState>>) -> bool {
        let victim = conns
            .values()
            .filter(|c| c.handling.load(Ordering::Relaxed) == 0)
            .min_by_key(|c| (c.since.load(Ordering::Relaxed), c.id))
            .map(|c| c.id);
        let Some(id) = victim else {
            return false;
        };
        if let Some(c) = conns.remove(&id) {
            tracing::debug!(
                max_connections = self.limits.max_connections,
                "connection cap reached: closing the connection idle the longest"
            );
            c.evicted.store(true, Ordering::Relaxed);
            c.wake.notify_one();
        }
        true
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
        self.freed.notify_one();
    }

    /// How many connections are open (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What the listener knows of one connection. All fields are updated with
/// relaxed atomics: a deadline computed from a slightly stale view is
/// checked again before anything is closed.
pub(crate) struct ConnState {
    id: u64,
    tracker: Arc<Tracker>,
    /// Requests whose service future is running.
    in_flight: AtomicU32,
    /// Of those, requests whose body has been fully received.
    handling: AtomicU32,
    /// When the connection entered its current state (opened, a request
    /// started, or the last request finished), in tracker nanoseconds.
    since: AtomicU64,
    /// When the first byte arrived after the connection went idle (0: none).
    first_byte: AtomicU64,
    /// Whether a request has started on this connection.
    served: AtomicBool,
    /// Set when the tracker evicted the connection.
    evicted: AtomicBool,
    /// Wakes the connection's supervisor when it was evicted.
    wake: Notify,
}

impl ConnState {
    fn new(id: u64, tracker: Arc<Tracker>) -> ConnState {
        let now = tracker.now();
        ConnState {
            id,
            tracker,
            in_flight: AtomicU32::new(0),
            handling: AtomicU32::new(0),
            since: AtomicU64::new(now),
            first_byte: AtomicU64::new(0),
            served: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// The instant at which the connection should be closed as it stands,
    /// or `None` when no timeout applies.
    fn deadline(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let limits = &self.tracker.limits;
        let at = |t: u64, d: Duration| self.tracker.epoch + Duration::from_nanos(t) + d;
        if !self.served.load(Ordering::Relaxed) {
            // A new connection must send its first request head in time.
            let since = self.since.load(Ordering::Relaxed);
            return limits.read_header_timeout.map(|d| at(since, d));
        }
        match self.first_byte.load(Ordering::Relaxed) {
            0 => limits
                .idle_timeout
                .map(|d| at(self.since.load(Ordering::Relaxed), d)),
            first => limits.read_header_timeout.map(|d| at(first, d)),
        }
    }

    /// Notes bytes read from the client: the first byte after the
    /// connection went idle starts the header clock. No wake-up is needed:
    /// the supervisor never sleeps past [`ConnState::recheck`], so it sees
    /// the new deadline in time.
    fn on_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) != 0
            || !self.served.load(Ordering::Relaxed)
            || self.first_byte.load(Ordering::Relaxed) != 0
        {
            return;
        }
        self.first_byte
            .store(self.tracker.now().max(1), Ordering::Relaxed);
    }

    /// The longest the supervisor may sleep without looking at the
    /// connection again: the shorter of the header and idle timeouts, or
    /// `None` when neither applies.
    ///
    /// Every deadline that can appear while the supervisor sleeps (the
    /// header clock started by a first byte, the idle clock started by the
    /// end of a request) lies at least that far after the moment the
    /// supervisor went to sleep, so it never needs waking for one: the
    /// connection task is not woken per request, and the timers are
    /// re-armed only every few seconds per connection.
    fn recheck(&self) -> Option<Duration> {
        let limits = &self.tracker.limits;
        match (limits.read_header_timeout, limits.idle_timeout) {
            (Some(h), Some(i)) => Some(h.min(i)),
            (h, i) => h.or(i),
        }
    }

    /// Notes that a request head was received; the returned guard notes the
    /// end of the request when the last reference to it is dropped.
    pub(crate) fn start_request(self: &Arc<Self>) -> Arc<RequestTrack> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
        self.first_byte.store(0, Ordering::Relaxed);
        self.since.store(self.tracker.now(), Ordering::Relaxed);
        Arc::new(RequestTrack {
            conn: Arc::clone(self),
            started: Instant::now(),
            handling: AtomicBool::new(false),
        })
    }
}

/// One request in flight on a connection.
pub(crate) struct RequestTrack {
    conn: Arc<ConnState>,
    started: Instant,
    handling: AtomicBool,
}

impl RequestTrack {
    /// Notes that the body has been fully received: from now on the
    /// connection is busy with real work and is not evicted.
    fn mark_handling(&self) {
        if !self.handling.swap(true, Ordering::Relaxed) {
            self.conn.handling.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for RequestTrack {
    fn drop(&mut self) {
        let conn = &self.conn;
        if self.handling.load(Ordering::Relaxed) {
            conn.handling.fetch_sub(1, Ordering::Relaxed);
        }
        conn.since.store(conn.tracker.now(), Ordering::Relaxed);
        // Idle again when this was the last request: the supervisor sees
        // the idle clock at its next look (see `ConnState::recheck`).
        conn.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `conn` under `state`'s deadlines; returns its output, or `None`
/// when it was closed for a timeout or evicted. The connection is always
/// removed from its tracker when this returns.
pub(crate) async fn supervise<F: Future>(state: Arc<ConnState>, conn: F) -> Option<F::Output> {
    struct Leave(Arc<ConnState>);
    impl Drop for Leave {
        fn drop(&mut self) {
            self.0.tracker.remove(self.0.id);
        }
    }
    let _leave = Leave(Arc::clone(&state));
    tokio::pin!(conn);
    let recheck = state.recheck();
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    let mut armed = false;
    loop {
        if state.evicted.load(Ordering::Relaxed) {
            return None;
        }
        if !armed {
            // Sleep until the deadline, but never past the next look.
            let now = Instant::now();
            let look = recheck.map(|r| now + r);
            let wake_at = match (state.deadline(), look) {
                (Some(d), Some(l)) => Some(d.min(l)),
                (d, l) => d.or(l),
            };
            if let Some(at) = wake_at {
                sleep.as_mut().reset(at);
                armed = true;
            }
        }
        tokio::select! {
            out = &mut conn => return Some(out),
            // Only an eviction notifies.
            () = state.wake.notified() => {}
            () = &mut sleep, if armed => {
                armed = false;
                // Closed only if the deadline still holds (a request may
                // have started meanwhile).
                if state.deadline().is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!("closing a connection that timed out");
                    return None;
                }
            }
        }
    }
}

/// A client stream that reports reads to its connection state and fails
/// writes that stall longer than the write timeout.
pub(crate) struct TrackedIo<I> {
    inner: I,
    state: Arc<ConnState>,
    write_timeout: Option<Duration>,
    write_stall: Option<Pin<Box<Sleep>>>,
}

impl<I> TrackedIo<I> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: I, state: Arc<ConnState>) -> TrackedIo<I> {
        let write_timeout = state.tracker.limits.write_timeout;
        TrackedIo {
            inner,
            state,
            write_timeout,
            write_stall: None,
        }
    }

    /// Maps a pending write to a timeout error once it has stalled too long.
    fn on_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        res: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match res {
            Poll::Pending => {
                let Some(limit) = self.write_timeout else {
                    return Poll::Pending;
                };
                let stall = self
                    .write_stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if stall.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "write to the client timed out",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.write_stall = None;
                ready
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for TrackedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.on_read();
        }
        res
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for TrackedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.on_write(cx, res)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.on_write(cx, res)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_flush(cx);
        this.on_write(cx, res)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The error a request body reports when the client took longer than
/// `http_read_timeout` to send it. The router answers it with 408.
#[derive(Debug, thiserror::Error)]
#[error("timed out reading the request body")]
pub struct BodyReadTimeout;

/// A request body that marks its request as being handled once it has been
/// fully received, and fails with [`BodyReadTimeout`] when it is not
/// received within the read timeout.
pub(crate) struct TrackedBody<B> {
    inner: B,
    track: Arc<RequestTrack>,
    timeout: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl<B: Body> TrackedBody<B> {
    /// Wraps the body of the request `track` follows.
    pub(crate) fn new(inner: B, track: Arc<RequestTrack>) -> TrackedBody<B> {
        if inner.is_end_stream() {
            track.mark_handling();
        }
        let timeout = track.conn.tracker.limits.read_timeout;
        TrackedBody {
            inner,
            track,
            timeout,
            timer: None,
            timed_out: false,
        }
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.track.mark_handling();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.track.mark_handling();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Pending => {
                let Some(limit) = this.timeout else {
                    return Poll::Pending;
                };
                let deadline = this.track.started + limit;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.timed_out = true;
                    tracing::debug!("request body not received within the read timeout");
                    return Poll::Ready(Some(Err(Box::new(BodyReadTimeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> ConnLimits {
        ConnLimits {
            max_connections: max,
            ..ConnLimits::default()
        }
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_waiting_connection_is_evicted() {
        let tracker = Tracker::new(limits(2));
        let a = tracker.admit().await;
        let b = tracker.admit().await;
        // b has a request fully received and being handled.
        let req = b.start_request();
        req.mark_handling();
        let c = tracker.admit().await;
        assert!(a.evicted.load(Ordering::Relaxed), "a waited longest");
        assert!(
            !b.evicted.load(Ordering::Relaxed),
            "b is handling a request"
        );
        assert_eq!(tracker.len(), 2);
        // c is now the only evictable connection.
        let _d = tracker.admit().await;
        assert!(c.evicted.load(Ordering::Relaxed));
        assert!(!b.evicted.load(Ordering::Relaxed));
        drop(req);
    }

    #[tokio::test]
    async fn a_connection_reading_a_body_is_evictable_and_one_handling_is_not() {
        let tracker = Tracker::new(limits(1));
        let a = tracker.admit().await;
        let req = a.start_request();
        // The body has not arrived: the slot can be reclaimed.
        let body = TrackedBody::new(
            http_body_util::StreamBody::new(futures_pending()),
            Arc::clone(&req),
        );
        let b = tracker.admit().await;
        assert!(a.evicted.load(Ordering::Relaxed));
        drop(body);
        drop(req);
        // b handles a request with an empty body: marked at once.
        let req = b.start_request();
        let body = TrackedBody::new(http_body_util::Empty::<Bytes>::new(), Arc::clone(&req));
        assert_eq!(b.handling.load(Ordering::Relaxed), 1);
        let waiting = futures::FutureExt::now_or_never(tracker.admit());
        assert!(
            waiting.is_none(),
            "no slot while the only connection is handling"
        );
        drop(body);
        drop(req);
        assert_eq!(b.handling.load(Ordering::Relaxed), 0);
        assert_eq!(b.in_flight.load(Ordering::Relaxed), 0);
    }

    fn timeouts(idle: u64, head: u64, body: u64, write: u64) -> ConnLimits {
        ConnLimits {
            idle_timeout: Some(Duration::from_secs(idle)),
            read_header_timeout: Some(Duration::from_secs(head)),
            read_timeout: Some(Duration::from_secs(body)),
            write_timeout: Some(Duration::from_secs(write)),
            max_connections: 8,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_supervisor_applies_the_header_and_idle_timeouts() {
        let tracker = Tracker::new(timeouts(300, 10, 30, 5));
        // A new connection that sends nothing: closed at the header timeout.
        let state = tracker.admit().await;
        let start = Instant::now();
        let out = supervise(state, std::future::pending::<()>()).await;
        assert!(out.is_none());
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(tracker.len(), 0, "a closed connection leaves the tracker");

        // After a request: idle until the idle timeout.
        let state = tracker.admit().await;
        drop(state.start_request());
        let start = Instant::now();
        let out = supervise(Arc::clone(&state), std::future::pending::<()>()).await;
        assert!(out.is_none());
        assert_eq!(start.elapsed(), Duration::from_secs(300));

        // After a request, the first byte of the next one starts the header
        // clock, which ends before the idle one.
        let state = tracker.admit().await;
        drop(state.start_request());
        let start = Instant::now();
        let reader = Arc::clone(&state);
        let out = supervise(Arc::clone(&state), async move {
            tokio::time::sleep(Duration::from_secs(100)).await;
            reader.on_read();
            std::future::pending::<()>().await
        })
        .await;
        assert!(out.is_none());
        assert_eq!(start.elapsed(), Duration::from_secs(110));

        // While a request is in flight nothing is closed; the connection's
        // own end is returned.
        let state = tracker.admit().await;
        let req = state.start_request();
        let out = supervise(Arc::clone(&state), async move {
            tokio::time::sleep(Duration::from_secs(1000)).await;
            drop(req);
            7
        })
        .await;
        assert_eq!(out, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn an_evicted_connection_is_closed_at_once() {
        let tracker = Tracker::new(timeouts(300, 10, 30, 5));
        let victim = tracker.admit().await;
        let run = tokio::spawn(supervise(victim, std::future::pending::<()>()));
        for _ in 0..8 {
            let _ = tracker.admit().await;
        }
        let start = Instant::now();
        assert_eq!(run.await.unwrap(), None);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_not_received_within_the_read_timeout_fails() {
        use http_body_util::BodyExt;
        let tracker = Tracker::new(timeouts(300, 10, 30, 5));
        let state = tracker.admit().await;
        let req = state.start_request();
        let body = TrackedBody::new(
            http_body_util::StreamBody::new(futures_pending()),
            Arc::clone(&req),
        );
        let start = Instant::now();
        let err = body.collect().await.err().unwrap();
        assert!(err.is::<BodyReadTimeout>(), "{err}");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(state.handling.load(Ordering::Relaxed), 0, "never received");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_fails_after_the_write_timeout() {
        use tokio::io::AsyncWriteExt;
        let tracker = Tracker::new(timeouts(300, 10, 30, 5));
        let state = tracker.admit().await;
        // The peer never reads: the 64-byte pipe fills up.
        let (ours, _peer) = tokio::io::duplex(64);
        let mut io = TrackedIo::new(ours, state);
        let start = Instant::now();
        let err = io.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    /// A body stream that never yields.
    fn futures_pending(
    ) -> impl futures::Stream<Item = Result<Frame<Bytes>, std::convert::Infallible>> + Unpin {
        futures::stream::pending()
    }

    #[test]
    fn the_default_cap_leaves_a_reserve_below_the_fd_limit() {
        let n = default_max_connections(1);
        if let Some(l) = fd_limit() {
            assert!(
                (n as u64) < l.soft || n == MIN_DEFAULT_CONNECTIONS,
                "{n} vs {l:?}"
            );
        }
        assert!(default_max_connections(2) <= n);
    }
}
