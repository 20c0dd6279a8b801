//! Networking: TCP, UDP and (on Unix) Unix-domain sockets.
//!
//! [`TcpListener`], [`TcpStream`] and [`UdpSocket`] work everywhere;
//! `UnixListener`, `UnixStream` and `UnixDatagram` on Unix. Streams
//! implement the `futures-io` traits ([`AsyncRead`](crate::io::AsyncRead),
//! [`AsyncWrite`](crate::io::AsyncWrite)) for `T` and for `&T`, so one task
//! may read while another writes through a shared reference, with no
//! `split` needed (it exists for code written in tokio's shape). Every socket type also has owned-buffer methods
//! (`read_owned`, `write_all_owned`, `recv_from_owned`, …) that take a
//! buffer by value and return it in a [`BufResult`](crate::io::BufResult),
//! on success and on error alike.
//!
//! Addresses are anything [`ToSocketAddrs`] (`"127.0.0.1:0"`,
//! `([127, 0, 0, 1], 0)`, `("localhost", 80)`, `&[SocketAddr]`, …): literal
//! IP addresses are used at once; host names are resolved on the runtime's
//! blocking pool, as [`lookup_host`] does.
//!
//! Beyond reading and writing, the surface tokio users expect:
//! [`TcpSocket`] sets options (`SO_REUSEADDR`, `SO_REUSEPORT`, keepalive,
//! buffer sizes) before `listen` or `connect`; streams have keepalive and
//! buffer sizes too; every socket has non-waiting `try_*` methods
//! (`try_read`, `try_write`, `try_send`, `try_recv_from`, …) beside
//! `readable()` / `writable()`, and `peek`; and a [`TcpStream`] splits into
//! halves for two tasks ([`TcpStream::into_split`], with `reunite`, in
//! [`tcp`]).
//!
//! # How an operation runs (the readiness protocol)
//!
//! Sockets are non-blocking and registered with the reactor of the runtime
//! current when they are created ([`Async`](crate::io::Async)). Every
//! operation, borrowed or owned, runs these steps:
//!
//! 1. Try the system call (`recv`, `send`, `accept`, the connect check) at
//!    once, on the calling thread.
//! 2. If it returns `WouldBlock`, ask the reactor for readiness in that
//!    direction; if no event arrived since, the future stores its waker and
//!    returns `Pending`. (`Interrupted` retries at once.)
//! 3. When woken, go back to step 1. Any other result, success or error,
//!    completes the operation. (The `try_*` methods run step 1 only: a
//!    `WouldBlock` is returned to the caller, and it clears the direction's
//!    readiness as step 2 would, without storing a waker, so that a
//!    following `readable()` / `writable()` waits for the next event
//!    instead of resolving on stale readiness and spinning.)
//! 4. Owned-buffer operations keep the buffer *in the future* the whole
//!    time. The kernel sees the buffer only during the system call of step
//!    1, which returns before `poll` does: on these readiness backends the
//!    kernel never holds it between polls.
//! 5. So dropping the future, at any point, drops the buffer exactly once,
//!    right then; there is no cancellation to wait for. (A completion
//!    backend hands owned operations to the op table instead, which
//!    keeps the buffer until the kernel lets go of it: see below.)
//! 6. When the operation completes, the future returns the buffer with the
//!    result: reads have advanced its initialized length by the count.
//!
//! # Through the io_uring ring
//!
//! On Linux's io_uring backend with
//! [`Builder::io_uring_sockets(true)`](crate::runtime::Builder::io_uring_sockets)
//! (readiness stays the default), these calls skip steps 1–3: each is one
//! entry in the ring, and the op table's slot owns everything the kernel
//! reads or writes until the op's own completion arrives, cancellation
//! included (`crate::op`'s protocol; the list and the reasons are in its
//! io_uring backend's module doc):
//!
//! - streams' `read_owned` / `write_owned` / `write_all_owned` (`RECV` /
//!   `SEND`);
//! - `recv_from_owned` / `send_to_owned` of [`UdpSocket`] and
//!   `UnixDatagram` (`RECVMSG` / `SENDMSG`: the slot owns the buffer, the
//!   `msghdr`, its iovec and the address);
//! - the listeners' `accept` (`ACCEPT`) and the streams' `connect`
//!   (`CONNECT`: the slot owns the socket and the address).
//!
//! Dropping such a future drops its buffer only after the kernel's
//! acknowledgement. If the op completed first, it is counted in the
//! runtime's `ops_completed_after_cancel`: a connection accepted for a
//! dropped `accept` is kept by its listener for the next `accept` (so
//! `accept` stays cancel-safe), and the bytes a dropped stream
//! `read_owned` received are kept, in order, for the stream's next read
//! (`op::ReadStash`; every read, peek and `readable()` of the stream looks
//! there first, and waits while a dropped read is still in flight, whose
//! bytes would come first); a datagram received for a dropped
//! `recv_from_owned` is kept, with its sender, for the socket's next
//! receive (`op::DatagramStash`). But a dropped `write_owned` or
//! `send_to_owned` may have sent: those calls are not cancel-safe on the
//! ring in that one race, as their `# Cancel safety` sections say.
//!
//! # Owned buffers
//!
//! Reads fill the buffer's *spare capacity* after its initialized length
//! (`Vec::with_capacity(n)` reads up to `n` bytes, and its `len` grows by
//! the count), without zeroing it first. **A buffer with no spare capacity
//! reads `Ok(0)` at once**, without touching the socket: on a stream that
//! is not end-of-file, so give reads room (`Vec::with_capacity`,
//! `reserve`). Writes send the buffer's initialized bytes.
//!
//! # Sharing and errors
//!
//! - Any number of tasks may wait on each direction of a socket (several
//!   readers through `&T`, a `readable()` beside them): a readiness event
//!   wakes every one of them (`reactor::source`, steps 3 and 5).
//! - Creating a socket (`bind`, `connect`, `TryFrom` a std socket) outside
//!   a runtime fails with an error that says so.
//! - Once the runtime the socket belongs to has shut down, an operation
//!   that would have to wait fails with a "runtime has shut down" error.

mod addr;
pub(crate) mod socket;
mod split;
// The file keeps its name; the module name `tcp` is the public one below.
mod tcp_socket;
#[path = "tcp.rs"]
mod tcp_stream;
mod udp;
// The file keeps its name; the module name `unix` is the public one below.
#[cfg(unix)]
#[path = "unix.rs"]
mod unix_sockets;

/// The halves of a [`TcpStream`] (tokio's `net::tcp` module): owned ones
/// from [`TcpStream::into_split`], borrowed ones from
/// [`TcpStream::split`], and the error of a mismatched `reunite`.
///
/// # Examples
///
/// ```
/// use ebbtide::io::AsyncWriteExt;
/// use ebbtide::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
/// use ebbtide::net::{TcpListener, TcpStream};
///
/// ebbtide::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (_server, _) = listener.accept().await?;
///     let (rd, mut wr): (OwnedReadHalf, OwnedWriteHalf) = client.into_split();
///     wr.write_all(b"hi").await?;
///     let _client: TcpStream = rd.reunite(wr).expect("halves of one stream");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub mod tcp {
    pub use super::split::tcp::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
}

/// The halves of a [`UnixStream`] (tokio's `net::unix` module): owned ones
/// from [`UnixStream::into_split`], borrowed ones from
/// [`UnixStream::split`], and the error of a mismatched `reunite`.
///
/// # Examples
///
/// ```
/// use ebbtide::io::AsyncWriteExt;
/// use ebbtide::net::unix::{OwnedReadHalf, OwnedWriteHalf};
/// use ebbtide::net::UnixStream;
///
/// ebbtide::block_on(async {
///     let (client, _server) = UnixStream::pair()?;
///     let (rd, mut wr): (OwnedReadHalf, OwnedWriteHalf) = client.into_split();
///     wr.write_all(b"hi").await?;
///     let _client: UnixStream = rd.reunite(wr).expect("halves of one stream");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
pub mod unix {
    pub use super::split::unix::{
        OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf,
    };
}

pub use addr::{lookup_host, ToSocketAddrs};
pub use tcp_socket::TcpSocket;
pub use tcp_stream::{TcpListener, TcpStream};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix_sockets::{UnixDatagram, UnixListener, UnixStream};

pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
