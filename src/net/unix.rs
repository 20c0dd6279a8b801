//! Unix-domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`].

use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use socket2::{Domain, SockAddr, Socket, Type};

use super::socket::{self, raw_handle_traits, register, stream_io_traits, Direction};
use crate::io::{Async, BufResult, IoBuf, IoBufMut};

/// A Unix-domain stream server socket.
///
/// # Examples
///
/// ```
/// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
/// use ebbtide::net::{UnixListener, UnixStream};
///
/// ebbtide::block_on(async {
///     let path = std::env::temp_dir().join(format!("ebbtide-doc-{}.sock", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::bind(&path)?;
///     let mut client = UnixStream::connect(&path).await?;
///     let (mut server, _) = listener.accept().await?;
///     client.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     std::fs::remove_file(&path)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixListener {
    io: Async<std_unix::UnixListener>,
}

impl UnixListener {
    /// Binds a listener to the filesystem path `path` (which must not
    /// exist yet; remove a stale socket file first).
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `bind`/`listen` (`AddrInUse`).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        socket::ensure_runtime("UnixListener::bind")?;
        let listener = std_unix::UnixListener::bind(path)?;
        let io = register(listener, "UnixListener::bind")?;
        Ok(UnixListener { io })
    }

    /// Waits for a connection and accepts it, registered with the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// The OS error of `accept` (`EMFILE` leaves the connection queued:
    /// back off as for [`TcpListener`](super::TcpListener)).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// [`accept`](Self::accept) as a poll function.
    ///
    /// # Errors
    ///
    /// As for [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        let (stream, peer) =
            std::task::ready!(socket::poll_io(&self.io, Direction::Read, cx, |l| l.accept()))?;
        let io = register(stream, "UnixListener::accept")?;
        Poll::Ready(Ok((UnixStream { io }, peer)))
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The std listener inside (non-blocking).
    pub fn get_ref(&self) -> &std_unix::UnixListener {
        self.io.get_ref()
    }

    /// Deregisters the listener and returns the std one, still in
    /// non-blocking mode.
    ///
    /// # Errors
    ///
    /// If the poller fails to deregister it (it is closed then).
    pub fn into_std(self) -> io::Result<std_unix::UnixListener> {
        self.io.into_inner()
    }
}

impl TryFrom<std_unix::UnixListener> for UnixListener {
    type Error = io::Error;

    /// Makes `listener` non-blocking and registers it with the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of registering it.
    fn try_from(listener: std_unix::UnixListener) -> io::Result<UnixListener> {
        let io = register(listener, "UnixListener::try_from")?;
        Ok(UnixListener { io })
    }
}

raw_handle_traits!(UnixListener);

/// A Unix-domain stream connection.
///
/// The same reading and writing APIs as [`TcpStream`](super::TcpStream):
/// `futures-io` traits on `UnixStream` and `&UnixStream`, and owned-buffer
/// methods.
///
/// # Examples
///
/// ```
/// use ebbtide::io::BufResult;
/// use ebbtide::net::UnixStream;
///
/// ebbtide::block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     let BufResult(res, _) = a.write_all_owned(b"ping".to_vec()).await;
///     res?;
///     let BufResult(res, buf) = b.read_owned(Vec::with_capacity(16)).await;
///     assert_eq!(&buf[..res?], b"ping");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixStream {
    io: Async<std_unix::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `connect` (`NotFound`,
    /// `ConnectionRefused`; `WouldBlock` on Linux when the listener's
    /// backlog is full).
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        socket::ensure_runtime("UnixStream::connect")?;
        let addr = SockAddr::unix(path)?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr) {
            Err(e) if !crate::sys::connect_in_progress(&e) => return Err(e),
            _ => {}
        }
        let io = register(std_unix::UnixStream::from(socket), "UnixStream::connect")?;
        socket::finish_connect(&io).await?;
        Ok(UnixStream { io })
    }

    /// A connected pair of streams.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `socketpair`.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        socket::ensure_runtime("UnixStream::pair")?;
        let (a, b) = std_unix::UnixStream::pair()?;
        Ok((UnixStream::try_from(a)?, UnixStream::try_from(b)?))
    }

    /// Reads into the spare capacity of `buf`, growing its length by the
    /// count. `Ok(0)`: end-of-file, or no spare capacity (the socket is
    /// not touched).
    ///
    /// # Errors
    ///
    /// The OS error of `recv`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the buffer is dropped with the future.
    pub async fn read_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        socket::read_owned(&self.io, buf).await
    }

    /// Writes some of `buf`'s initialized bytes (one `write`).
    ///
    /// # Errors
    ///
    /// The OS error of `write` (`BrokenPipe`).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn write_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        socket::write_owned(&self.io, buf).await
    }

    /// Writes all of `buf`'s initialized bytes.
    ///
    /// # Errors
    ///
    /// As for [`write_owned`](Self::write_owned); how much was written
    /// before an error is not reported.
    ///
    /// # Cancel safety
    ///
    /// Not cancel-safe: dropped part-way, an unknown prefix was sent.
    pub async fn write_all_owned<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        socket::write_all_owned(&self.io, buf).await
    }

    /// Waits until the stream may be readable.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Waits until the stream may be writable.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// The OS error of `getpeername`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// The OS error of `shutdown`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The std stream inside (non-blocking).
    pub fn get_ref(&self) -> &std_unix::UnixStream {
        self.io.get_ref()
    }

    /// Deregisters the stream and returns the std one, still in
    /// non-blocking mode.
    ///
    /// # Errors
    ///
    /// If the poller fails to deregister it (it is closed then).
    pub fn into_std(self) -> io::Result<std_unix::UnixStream> {
        self.io.into_inner()
    }
}

impl TryFrom<std_unix::UnixStream> for UnixStream {
    type Error = io::Error;

    /// Makes `stream` non-blocking and registers it with the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of registering it.
    fn try_from(stream: std_unix::UnixStream) -> io::Result<UnixStream> {
        let io = register(stream, "UnixStream::try_from")?;
        Ok(UnixStream { io })
    }
}

stream_io_traits!(UnixStream);
raw_handle_traits!(UnixStream);

/// A Unix-domain datagram socket.
///
/// # Examples
///
/// ```
/// use ebbtide::io::BufResult;
/// use ebbtide::net::UnixDatagram;
///
/// ebbtide::block_on(async {
///     let (a, b) = UnixDatagram::pair()?;
///     a.send(b"one").await?;
///     let BufResult(res, buf) = b.recv_owned(Vec::with_capacity(16)).await;
///     assert_eq!(&buf[..res?], b"one");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    io: Async<std_unix::UnixDatagram>,
}

impl UnixDatagram {
    /// A socket bound to the filesystem path `path`.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `bind` (`AddrInUse`).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        socket::ensure_runtime("UnixDatagram::bind")?;
        UnixDatagram::try_from(std_unix::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address: it can send, and receive replies
    /// only after [`connect`](Self::connect) or on a pair.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `socket`.
    pub fn unbound() -> io::Result<UnixDatagram> {
        socket::ensure_runtime("UnixDatagram::unbound")?;
        UnixDatagram::try_from(std_unix::UnixDatagram::unbound()?)
    }

    /// A connected pair of sockets.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `socketpair`.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        socket::ensure_runtime("UnixDatagram::pair")?;
        let (a, b) = std_unix::UnixDatagram::pair()?;
        Ok((UnixDatagram::try_from(a)?, UnixDatagram::try_from(b)?))
    }

    /// Sets the default peer for [`send`](Self::send) (no waiting: a
    /// datagram connect only records the address).
    ///
    /// # Errors
    ///
    /// The OS error of `connect` (`NotFound`, `ConnectionRefused`).
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// Sends `buf` to the socket at `path`.
    ///
    /// # Errors
    ///
    /// The OS error of `sendto`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        socket::io_with(&self.io, Direction::Write, |s| s.send_to(buf, path)).await
    }

    /// Receives one datagram into `buf`; returns its length and sender.
    ///
    /// # Errors
    ///
    /// The OS error of `recvfrom`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        socket::io_with(&self.io, Direction::Read, |s| s.recv_from(buf)).await
    }

    /// Sends `buf` to the connected peer.
    ///
    /// # Errors
    ///
    /// The OS error of `send`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        socket::io_with(&self.io, Direction::Write, |s| s.send(buf)).await
    }

    /// Receives one datagram from the connected peer into `buf`.
    ///
    /// # Errors
    ///
    /// The OS error of `recv`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        socket::io_with(&self.io, Direction::Read, |s| s.recv(buf)).await
    }

    /// Sends `buf`'s initialized bytes to the socket at `path`.
    ///
    /// # Errors
    ///
    /// The OS error of `sendto`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn send_to_owned<B: IoBuf>(
        &self,
        buf: B,
        path: impl AsRef<Path>,
    ) -> BufResult<usize, B> {
        let path = path.as_ref();
        socket::send_owned(&self.io, buf, |s, bytes| s.send_to(bytes, path)).await
    }

    /// Receives one datagram into `buf`'s spare capacity; returns the
    /// count, the sender, and the buffer.
    ///
    /// # Errors
    ///
    /// The OS error of `recvfrom`; `InvalidInput` at once if `buf` has no
    /// spare capacity.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the buffer is dropped with the future.
    pub async fn recv_from_owned<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let BufResult(res, buf) = socket::recv_from_owned(&self.io, buf).await;
        BufResult(res.and_then(|(n, from)| Ok((n, unix_addr(&from)?))), buf)
    }

    /// Sends `buf`'s initialized bytes to the connected peer.
    ///
    /// # Errors
    ///
    /// The OS error of `send`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn send_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        socket::send_owned(&self.io, buf, |s, bytes| s.send(bytes)).await
    }

    /// Receives one datagram from the connected peer into `buf`'s spare
    /// capacity. `Ok(0)` at once if there is none (nothing is received).
    ///
    /// # Errors
    ///
    /// The OS error of `recv`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn recv_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        socket::recv_owned(&self.io, buf).await
    }

    /// Waits until a datagram may be ready to receive.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Waits until the socket may accept a datagram to send.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// The address this socket is bound to.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` before [`connect`](Self::connect).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// The OS error of `shutdown`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The std socket inside (non-blocking).
    pub fn get_ref(&self) -> &std_unix::UnixDatagram {
        self.io.get_ref()
    }

    /// Deregisters the socket and returns the std one, still in
    /// non-blocking mode.
    ///
    /// # Errors
    ///
    /// If the poller fails to deregister it (it is closed then).
    pub fn into_std(self) -> io::Result<std_unix::UnixDatagram> {
        self.io.into_inner()
    }
}

impl TryFrom<std_unix::UnixDatagram> for UnixDatagram {
    type Error = io::Error;

    /// Makes `socket` non-blocking and registers it with the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of registering it.
    fn try_from(socket: std_unix::UnixDatagram) -> io::Result<UnixDatagram> {
        let io = register(socket, "UnixDatagram::try_from")?;
        Ok(UnixDatagram { io })
    }
}

raw_handle_traits!(UnixDatagram);

/// Converts a sender address from `recvfrom` into std's type.
///
/// std can build a pathname (and, on Linux, an abstract) address, but has
/// no constructor for an *unnamed* one (an unbound sender, or one end of a
/// pair; some systems report it as an empty address): anything else is
/// that, taken once from an unbound socket's `getsockname`.
fn unix_addr(addr: &SockAddr) -> io::Result<SocketAddr> {
    if let Some(path) = addr.as_pathname() {
        return SocketAddr::from_pathname(path);
    }
    if let Some(addr) = crate::sys::abstract_unix_addr(addr) {
        return addr;
    }
    static UNNAMED: OnceLock<SocketAddr> = OnceLock::new();
    if let Some(a) = UNNAMED.get() {
        return Ok(a.clone());
    }
    let unnamed = std_unix::UnixDatagram::unbound()?.local_addr()?;
    Ok(UNNAMED.get_or_init(|| unnamed).clone())
}

/// The read path of `ebbtide::hyper::EbbtideIo`: one read straight into
/// hyper's uninitialised buffer (no zeroing first).
#[cfg(feature = "hyper")]
impl UnixStream {
    /// One read into `buf`; `Ok(n)`: the first `n` bytes of `buf` are
    /// initialised now (`recv` wrote them), the rest untouched.
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        socket::poll_stream_read(&self.io, cx, buf)
    }
}
