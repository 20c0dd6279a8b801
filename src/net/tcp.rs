//! TCP: [`TcpListener`] and [`TcpStream`].

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::addr::each_addr;
use super::socket::{self, raw_handle_traits, register, stream_io_traits, Direction};
use super::ToSocketAddrs;
use crate::io::{Async, BufResult, IoBuf, IoBufMut};
use crate::op;

/// How many connections the kernel queues for `accept` (it may cap this:
/// `net.core.somaxconn` on Linux).
const BACKLOG: i32 = 1024;

/// A TCP server socket, listening for connections.
///
/// # Examples
///
/// An echo server and a client on loopback:
///
/// ```
/// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
/// use ebbtide::net::{TcpListener, TcpStream};
///
/// ebbtide::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let server = ebbtide::spawn(async move {
///         let (mut stream, _peer) = listener.accept().await?;
///         let mut buf = [0; 5];
///         stream.read_exact(&mut buf).await?;
///         stream.write_all(&buf).await?;
///         Ok::<(), std::io::Error>(())
///     });
///
///     let mut client = TcpStream::connect(addr).await?;
///     client.write_all(b"hello").await?;
///     let mut echoed = [0; 5];
///     client.read_exact(&mut echoed).await?;
///     assert_eq!(&echoed, b"hello");
///     server.await.unwrap()
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Running out of file descriptors
///
/// When the process (`EMFILE`) or the system (`ENFILE`) has no descriptor
/// left, [`accept`](Self::accept) returns that error and the connection
/// stays queued in the kernel. Retrying at once would spin: nothing has
/// changed. Back off briefly (no CPU is used while sleeping) and continue;
/// the queued connections are accepted once descriptors are free:
///
/// ```no_run
/// use std::io::ErrorKind;
/// use std::time::Duration;
/// use ebbtide::net::TcpListener;
///
/// async fn serve(listener: TcpListener) {
///     loop {
///         match listener.accept().await {
///             Ok((stream, _peer)) => {
///                 ebbtide::spawn(async move { drop(stream) /* handle it */ });
///             }
///             // This one connection failed before we took it: next.
///             Err(e) if matches!(e.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset) => {}
///             // EMFILE, ENFILE, ENOBUFS, ENOMEM: wait for resources.
///             Err(e) => {
///                 eprintln!("accept: {e}; retrying in 50 ms");
///                 ebbtide::time::sleep(Duration::from_millis(50)).await;
///             }
///         }
///     }
/// }
/// ```
#[derive(Debug)]
pub struct TcpListener {
    io: Async<std::net::TcpListener>,
    /// Connections accepted through the ring for dropped accepts.
    stash: Arc<op::AcceptStash>,
}

impl TcpListener {
    /// Binds a listener to `addr`, trying each resolved address in turn
    /// (port 0 picks a free port; see [`local_addr`](Self::local_addr)).
    ///
    /// On Unix `SO_REUSEADDR` is set, as std does, so a server restarts
    /// while old connections linger in `TIME_WAIT`.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the last address's error (`AddrInUse`, …); a
    /// failed host-name lookup.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let listener = ebbtide::net::TcpListener::bind("127.0.0.1:0").await?;
    ///     assert_ne!(listener.local_addr()?.port(), 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        socket::ensure_runtime("TcpListener::bind")?;
        each_addr(&addr, |a| std::future::ready(TcpListener::bind_addr(a))).await
    }

    fn bind_addr(addr: SocketAddr) -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        crate::sys::prepare_listener(&socket)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        let io = register(std::net::TcpListener::from(socket), "TcpListener::bind")?;
        Ok(TcpListener {
            io,
            stash: Arc::default(),
        })
    }

    /// Waits for a connection and accepts it, registered with the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// The OS error of `accept`; the connection stays queued on `EMFILE` /
    /// `ENFILE` (see [Running out of file descriptors](Self#running-out-of-file-descriptors)).
    /// Outside a runtime, or after the listener's runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses no connection. On
    /// readiness a connection is taken from the kernel only when the
    /// future returns it. Through the io_uring ring
    /// (`Builder::io_uring_sockets`), a connection the kernel accepted
    /// before it acknowledged the cancel is kept by the listener (counted
    /// in `ops_completed_after_cancel`) and returned by the next
    /// `accept` or [`poll_accept`](Self::poll_accept), which itself
    /// always uses readiness.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, peer) = listener.accept().await?;
    ///     assert_eq!(peer, client.local_addr()?);
    ///     assert_eq!(server.peer_addr()?, peer);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        if let Some(conn) = self.stash.pop() {
            return Self::connection(conn);
        }
        let Some(op) = socket::accept_through_ring(&self.io, &self.stash) else {
            return std::future::poll_fn(|cx| self.poll_accept(cx)).await;
        };
        Self::connection(op.await?.take())
    }

    /// A connection accepted through the ring, as a registered stream.
    fn connection((stream, peer): op::Connection) -> io::Result<(TcpStream, SocketAddr)> {
        let peer = peer
            .as_socket()
            .ok_or_else(|| io::Error::other("ebbtide: a TCP accept returned a non-IP address"))?;
        Ok((TcpStream::accepted(stream.into())?, peer))
    }

    /// Polls for a connection: [`accept`](Self::accept) as a poll function.
    ///
    /// # Errors
    ///
    /// As for [`accept`](Self::accept).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_server, peer) = poll_fn(|cx| listener.poll_accept(cx)).await?;
    ///     assert_eq!(peer, client.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        if let Some(conn) = self.stash.pop() {
            return Poll::Ready(Self::connection(conn));
        }
        let (stream, peer) =
            std::task::ready!(socket::poll_io(&self.io, Direction::Read, cx, |l| l.accept()))?;
        Poll::Ready(Ok((TcpStream::accepted(stream)?, peer)))
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::TcpListener;
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let addr = listener.local_addr()?;
    ///     assert!(addr.ip().is_loopback());
    ///     assert_ne!(addr.port(), 0); // the port the OS picked
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets `IP_TTL` for connections accepted from now on.
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::TcpListener;
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     listener.set_ttl(42)?;
    ///     assert_eq!(listener.ttl()?, 42);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// The `IP_TTL` option.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::TcpListener;
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     assert!(listener.ttl()? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// The std listener inside (non-blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::TcpListener;
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let std_listener: &std::net::TcpListener = listener.get_ref();
    ///     assert_eq!(std_listener.local_addr()?, listener.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std::net::TcpListener {
        self.io.get_ref()
    }

    /// Deregisters the listener and returns the std one, still in
    /// non-blocking mode (call `set_nonblocking(false)` for blocking use).
    ///
    /// # Errors
    ///
    /// If the poller fails to deregister it (it is closed then).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::TcpListener;
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let addr = listener.local_addr()?;
    ///     let std_listener = listener.into_std()?;
    ///     std_listener.set_nonblocking(false)?; // for blocking use
    ///     assert_eq!(std_listener.local_addr()?, addr);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        self.io.into_inner()
    }
}

impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;

    /// Makes `listener` non-blocking and registers it with the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of registering it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::TcpListener;
    ///
    /// ebbtide::block_on(async {
    ///     let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    ///     let listener = TcpListener::try_from(std_listener)?;
    ///     assert!(listener.local_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn try_from(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        let io = register(listener, "TcpListener::try_from")?;
        Ok(TcpListener {
            io,
            stash: Arc::default(),
        })
    }
}

raw_handle_traits!(TcpListener);

/// A TCP connection.
///
/// Read and write with the `futures-io` traits
/// ([`AsyncReadExt`](crate::io::AsyncReadExt),
/// [`AsyncWriteExt`](crate::io::AsyncWriteExt)), on the stream or on
/// `&TcpStream` (one reader and one writer may share it with no `split`;
/// [`into_split`](Self::into_split) gives halves that move to two tasks), or
/// with owned buffers ([`read_owned`](Self::read_owned),
/// [`write_all_owned`](Self::write_all_owned)). Closing through
/// `AsyncWriteExt::close` shuts down the write half (and is `Ok` on a
/// connection the peer already reset); dropping the stream closes it.
///
/// # Examples
///
/// Owned buffers on loopback:
///
/// ```
/// use ebbtide::io::BufResult;
/// use ebbtide::net::{TcpListener, TcpStream};
///
/// ebbtide::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server, _) = listener.accept().await?;
///
///     let BufResult(res, _sent) = client.write_all_owned(b"ping".to_vec()).await;
///     res?;
///     let BufResult(res, buf) = server.read_owned(Vec::with_capacity(64)).await;
///     let n = res?;
///     assert_eq!(&buf[..n], b"ping"); // `buf.len()` grew by `n`
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpStream {
    io: Async<std::net::TcpStream>,
    /// Bytes of reads through the ring whose futures were dropped
    /// (`socket::read_owned`).
    stash: socket::StashCell,
}

impl TcpStream {
    /// Connects to `addr`, trying each resolved address in turn.
    ///
    /// The connect is non-blocking: the future waits for the handshake on
    /// the reactor.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the last address's error (`ConnectionRefused`,
    /// `TimedOut`, …); a failed host-name lookup.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the half-open socket (through the
    /// io_uring ring, `Builder::io_uring_sockets`: once the kernel
    /// acknowledges the cancel; a connection that completed first is
    /// closed too).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let port = listener.local_addr()?.port();
    ///     let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    ///     assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        socket::ensure_runtime("TcpStream::connect")?;
        each_addr(&addr, TcpStream::connect_addr).await
    }

    async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        TcpStream::connect_socket(socket, addr, "TcpStream::connect").await
    }

    /// Connects the fresh `socket` to `addr` (non-blocking), registers it
    /// (`what` names the caller if there is no runtime) and waits for the
    /// handshake.
    pub(crate) async fn connect_socket(
        socket: Socket,
        addr: SocketAddr,
        what: &str,
    ) -> io::Result<TcpStream> {
        socket.set_nonblocking(true)?;
        let (socket, connected) = socket::start_connect(socket, &addr.into()).await?;
        let stream = TcpStream::registered(socket.into(), what)?;
        if !connected {
            socket::finish_connect(&stream.io).await?;
        }
        Ok(stream)
    }

    /// A connection `accept` returned, registered with the current runtime.
    fn accepted(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::registered(stream, "TcpListener::accept")
    }

    /// A connected stream, registered (`what` names the caller if there is
    /// no runtime), with the receive-queue hint on.
    fn registered(stream: std::net::TcpStream, what: &str) -> io::Result<TcpStream> {
        crate::sys::tcp_enable_queue_hint(&stream);
        let io = register(stream, what)?;
        Ok(TcpStream {
            io,
            stash: socket::StashCell::new(),
        })
    }

    /// Reads into the spare capacity of `buf` (after its initialized
    /// length), growing its length by the count; returns the buffer with
    /// the result, on error too.
    ///
    /// `Ok(0)` means end-of-file, or that `buf` had no spare capacity (then
    /// the socket is not touched).
    ///
    /// # Errors
    ///
    /// The OS error of `recv`; after the runtime shut down, if it would
    /// have to wait.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: by readiness (the default), the buffer lives in the
    /// future and is dropped with it, and no data is lost (see the [module
    /// docs](crate::net)).
    /// Through the io_uring ring (`Builder::io_uring_sockets(true)`) too:
    /// the buffer is dropped when the kernel acknowledges the cancel, and
    /// bytes the kernel received into it before that are kept, in order,
    /// for the stream's next read of any kind (which waits for that
    /// acknowledgement first).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncWriteExt, BufResult};
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"hello").await?;
    ///     let BufResult(res, buf) = server.read_owned(Vec::with_capacity(16)).await;
    ///     let n = res?;
    ///     assert_eq!(&buf[..n], b"hello"); // `buf.len()` grew by `n`
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_owned<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl Future<Output = BufResult<usize, B>> + Send + '_ {
        socket::read_owned(&self.io, &self.stash, buf)
    }

    /// Writes some of `buf`'s initialized bytes (one `send`); returns how
    /// many, and the buffer.
    ///
    /// # Errors
    ///
    /// The OS error of `send` (`BrokenPipe`, `ConnectionReset`, …).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe by readiness (the default): nothing was sent if the
    /// future is dropped before it completes.
    /// Through the io_uring ring (`Builder::io_uring_sockets(true)`), not
    /// in one race: a send the kernel made before it acknowledged the
    /// cancel has sent its bytes (counted in the runtime's
    /// `ops_completed_after_cancel`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_server, _) = listener.accept().await?;
    ///     let BufResult(res, buf) = client.write_owned(b"hello".to_vec()).await;
    ///     let n = res?;
    ///     assert!(n > 0 && n <= buf.len()); // the buffer comes back
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        socket::write_owned(&self.io, buf).await
    }

    /// Writes all of `buf`'s initialized bytes; returns the buffer.
    ///
    /// # Errors
    ///
    /// As for [`write_owned`](Self::write_owned); how much was written
    /// before an error is not reported.
    ///
    /// # Cancel safety
    ///
    /// Not cancel-safe: dropped part-way, an unknown prefix was sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, BufResult};
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (mut server, _) = listener.accept().await?;
    ///     let BufResult(res, buf) = client.write_all_owned(b"hello".to_vec()).await;
    ///     res?;
    ///     let mut got = [0; 5];
    ///     server.read_exact(&mut got).await?;
    ///     assert_eq!(&got[..], &buf[..]);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_all_owned<B: IoBuf>(
        &self,
        buf: B,
    ) -> impl Future<Output = BufResult<(), B>> + Send + '_ {
        socket::write_all_owned(&self.io, buf)
    }

    /// Reads without removing the data from the socket's queue.
    ///
    /// # Errors
    ///
    /// The OS error of `recv(MSG_PEEK)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (mut server, _) = listener.accept().await?;
    ///     client.write_all(b"hi").await?;
    ///     let mut buf = [0; 2];
    ///     let n = server.peek(&mut buf).await?;
    ///     assert_eq!(&buf[..n], &b"hi"[..n]);
    ///     server.read_exact(&mut buf).await?; // still queued
    ///     assert_eq!(&buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        socket::peek_stream(&self.io, &self.stash, buf, |s, b| s.peek(b)).await
    }

    /// Waits until the stream may be ready in a direction of `interest`
    /// (readable, writable or both), and says which (tokio's `ready`).
    /// A `WouldBlock` from a `try_*` call clears a direction again.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncWriteExt, Interest};
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"hi").await?;
    ///     let ready = server.ready(Interest::READABLE).await?;
    ///     assert!(ready.is_readable());
    ///     assert_eq!(server.try_read(&mut [0; 8])?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn ready(&self, interest: crate::io::Interest) -> io::Result<crate::io::Ready> {
        socket::stream_ready(&self.io, &self.stash, interest).await
    }

    /// Waits until the stream may be readable (a later read may still
    /// return `WouldBlock` through `get_ref`).
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::AsyncWriteExt;
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"x").await?;
    ///     server.readable().await?;
    ///     assert_eq!(server.try_read(&mut [0; 8])?, 1);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        socket::stream_ready(&self.io, &self.stash, crate::io::Interest::READABLE)
            .await
            .map(drop)
    }

    /// Waits until the stream may be writable.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_server, _) = listener.accept().await?;
    ///     client.writable().await?; // an idle connection is writable
    ///     assert_eq!(client.try_write(b"hi")?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// The local address of this end.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_server, peer) = listener.accept().await?;
    ///     assert_eq!(client.local_addr()?, peer);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The address of the peer.
    ///
    /// # Errors
    ///
    /// The OS error of `getpeername` (`NotConnected`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert_eq!(client.peer_addr()?, listener.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half (the peer reads
    /// end-of-file), or both.
    ///
    /// # Errors
    ///
    /// The OS error of `shutdown` (`NotConnected`, also once the peer reset
    /// the connection; `AsyncWriteExt::close` treats that as done).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Shutdown;
    /// use ebbtide::io::AsyncReadExt;
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (mut server, _) = listener.accept().await?;
    ///     client.shutdown(Shutdown::Write)?;
    ///     let mut rest = Vec::new();
    ///     server.read_to_end(&mut rest).await?; // end-of-file at once
    ///     assert!(rest.is_empty());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Reads into `buf` if data is queued now, without waiting and without
    /// registering interest (tokio's `try_read`).
    ///
    /// `Ok(0)` means end-of-file (or an empty `buf`). `WouldBlock` means
    /// nothing is queued; it also clears the stream's read readiness, so a
    /// following [`readable`](Self::readable) waits for new data.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is queued; the OS error of `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use ebbtide::io::AsyncWriteExt;
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     let mut buf = [0; 16];
    ///     // Nothing sent yet: no waiting, just `WouldBlock`.
    ///     assert_eq!(server.try_read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    ///     client.write_all(b"hi").await?;
    ///     loop {
    ///         server.readable().await?;
    ///         match server.try_read(&mut buf) {
    ///             Ok(n) => break assert_eq!(&buf[..n], b"hi"),
    ///             Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
    ///             Err(e) => return Err(e),
    ///         }
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        socket::try_stream_read(&self.io, &self.stash, buf)
    }

    /// Vectored form of [`try_read`](Self::try_read): fills `bufs` in
    /// order.
    ///
    /// # Errors
    ///
    /// As for [`try_read`](Self::try_read).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::IoSliceMut;
    /// use ebbtide::io::AsyncWriteExt;
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"abcd").await?;
    ///     let (mut head, mut tail) = ([0; 2], [0; 2]);
    ///     let mut got = 0;
    ///     while got < 4 {
    ///         server.readable().await?;
    ///         let mut bufs = [IoSliceMut::new(&mut head[got.min(2)..]), IoSliceMut::new(&mut tail[got.saturating_sub(2)..])];
    ///         match server.try_read_vectored(&mut bufs) {
    ///             Ok(n) => got += n,
    ///             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
    ///             Err(e) => return Err(e),
    ///         }
    ///     }
    ///     assert_eq!((&head, &tail), (b"ab", b"cd"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        if let Some(res) = socket::try_stashed_vectored(&self.stash, bufs) {
            return res;
        }
        socket::try_io(&self.io, Direction::Read, |mut s| {
            std::io::Read::read_vectored(&mut s, bufs)
        })
    }

    /// Writes some of `buf` if the send queue has room now, without
    /// waiting and without registering interest (tokio's `try_write`).
    ///
    /// `WouldBlock` means the send queue is full; it also clears the
    /// stream's write readiness, so a following
    /// [`writable`](Self::writable) waits until the peer has read.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the send queue is full; the OS error of `send`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_server, _) = listener.accept().await?;
    ///     let mut sent = 0;
    ///     while sent < 5 {
    ///         client.writable().await?;
    ///         match client.try_write(&b"hello"[sent..]) {
    ///             Ok(n) => sent += n,
    ///             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
    ///             Err(e) => return Err(e),
    ///         }
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        socket::try_io(&self.io, Direction::Write, |mut s| {
            std::io::Write::write(&mut s, buf)
        })
    }

    /// Vectored form of [`try_write`](Self::try_write).
    ///
    /// # Errors
    ///
    /// As for [`try_write`](Self::try_write).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::IoSlice;
    /// use ebbtide::io::AsyncReadExt;
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (mut server, _) = listener.accept().await?;
    ///     client.writable().await?;
    ///     // A fresh connection has room for a few bytes.
    ///     let n = client.try_write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cd")])?;
    ///     assert_eq!(n, 4);
    ///     let mut buf = [0; 4];
    ///     server.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"abcd");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        socket::try_io(&self.io, Direction::Write, |mut s| {
            std::io::Write::write_vectored(&mut s, bufs)
        })
    }

    /// Reads what is queued into `buf` without removing it, if anything is
    /// queued now; never waits.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is queued (clearing read readiness as
    /// [`try_read`](Self::try_read) does); the OS error of `recv(MSG_PEEK)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     let mut buf = [0; 8];
    ///     assert!(server.try_peek(&mut buf).is_err()); // WouldBlock
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(res) = socket::try_stashed(&self.stash, buf, false) {
            return res;
        }
        socket::try_io(&self.io, Direction::Read, |s| s.peek(buf))
    }

    /// Sets `SO_KEEPALIVE`: the OS probes an idle connection and fails it
    /// if the peer has gone (the probe timing is the system's default).
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     stream.set_keepalive(true)?;
    ///     assert!(stream.keepalive()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        SockRef::from(self.io.get_ref()).set_keepalive(keepalive)
    }

    /// The `SO_KEEPALIVE` option.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert!(!stream.keepalive()?); // off by default
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn keepalive(&self) -> io::Result<bool> {
        SockRef::from(self.io.get_ref()).keepalive()
    }

    /// Sets `SO_SNDBUF`, the size of the kernel's send buffer. The OS may
    /// adjust it (Linux doubles it); read it back with
    /// [`send_buffer_size`](Self::send_buffer_size).
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     stream.set_send_buffer_size(64 * 1024)?;
    ///     assert!(stream.send_buffer_size()? >= 64 * 1024);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        SockRef::from(self.io.get_ref()).set_send_buffer_size(size as usize)
    }

    /// The `SO_SNDBUF` option.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert!(stream.send_buffer_size()? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        SockRef::from(self.io.get_ref())
            .send_buffer_size()
            .map(super::tcp_socket::saturate)
    }

    /// Sets `SO_RCVBUF`, the size of the kernel's receive buffer (the OS
    /// may adjust it, as for [`set_send_buffer_size`](Self::set_send_buffer_size)).
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     stream.set_recv_buffer_size(64 * 1024)?;
    ///     assert!(stream.recv_buffer_size()? >= 64 * 1024);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        SockRef::from(self.io.get_ref()).set_recv_buffer_size(size as usize)
    }

    /// The `SO_RCVBUF` option.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert!(stream.recv_buffer_size()? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        SockRef::from(self.io.get_ref())
            .recv_buffer_size()
            .map(super::tcp_socket::saturate)
    }

    /// Splits the stream into a read half and a write half that can move
    /// to different tasks; [`reunite`](super::tcp::OwnedReadHalf::reunite)
    /// puts them back together.
    ///
    /// Dropping the [`OwnedWriteHalf`](super::tcp::OwnedWriteHalf) shuts
    /// down the write direction (the peer reads end-of-file) while the read
    /// half keeps reading. The socket closes when both halves are gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (mut server, _) = listener.accept().await?;
    ///
    ///     let (mut rd, mut wr) = client.into_split();
    ///     let writer = ebbtide::spawn(async move {
    ///         wr.write_all(b"ping").await?;
    ///         Ok::<_, std::io::Error>(wr)
    ///     });
    ///     let mut buf = [0; 4];
    ///     server.read_exact(&mut buf).await?;
    ///     server.write_all(b"pong").await?;
    ///     rd.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"pong");
    ///     let wr = writer.await.unwrap()?;
    ///     let _client: TcpStream = rd.reunite(wr).unwrap();
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_split(self) -> (super::tcp::OwnedReadHalf, super::tcp::OwnedWriteHalf) {
        super::split::tcp::into_split(self)
    }

    /// Borrows the stream as a read half and a write half, for use in one
    /// task (e.g. `futures_lite::io::copy` from one while writing the
    /// other). No reference counting; dropping the halves does nothing.
    ///
    /// (`&TcpStream` implements both `AsyncRead` and `AsyncWrite` too, so
    /// this is a convenience for code written against tokio's shape.)
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (mut server, _) = listener.accept().await?;
    ///     let (mut rd, mut wr) = server.split();
    ///     client.write_all(b"echo").await?;
    ///     let mut buf = [0; 4];
    ///     rd.read_exact(&mut buf).await?;
    ///     wr.write_all(&buf).await?;
    ///     client.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"echo");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn split(&mut self) -> (super::tcp::ReadHalf<'_>, super::tcp::WriteHalf<'_>) {
        super::split::tcp::split(self)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     stream.set_nodelay(true)?;
    ///     assert!(stream.nodelay()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// The `TCP_NODELAY` option.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert!(!stream.nodelay()?); // Nagle's algorithm is on by default
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     stream.set_ttl(42)?;
    ///     assert_eq!(stream.ttl()?, 42);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// The `IP_TTL` option.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert!(stream.ttl()? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Sets `SO_LINGER`: `Some(Duration::ZERO)` makes a close send a reset
    /// instead of a graceful FIN.
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     stream.set_linger(Some(Duration::ZERO))?;
    ///     assert_eq!(stream.linger()?, Some(Duration::ZERO));
    ///     drop(stream); // sends a reset, not a FIN
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        SockRef::from(self.io.get_ref()).set_linger(linger)
    }

    /// The `SO_LINGER` option.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert_eq!(stream.linger()?, None);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        SockRef::from(self.io.get_ref()).linger()
    }

    /// The std stream inside (non-blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     let std_stream: &std::net::TcpStream = stream.get_ref();
    ///     assert_eq!(std_stream.local_addr()?, stream.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std::net::TcpStream {
        self.io.get_ref()
    }

    /// Deregisters the stream and returns the std one, still in
    /// non-blocking mode (call `set_nonblocking(false)` for blocking use).
    ///
    /// Bytes that a dropped read through the io_uring ring received and no
    /// read has taken yet (`Builder::io_uring_sockets`; see `read_owned`)
    /// are not in the std stream: read them first.
    ///
    /// # Errors
    ///
    /// If the poller fails to deregister it (it is closed then).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{TcpListener, TcpStream};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     let std_stream = stream.into_std()?;
    ///     std_stream.set_nonblocking(false)?; // for blocking use
    ///     assert_eq!(std_stream.peer_addr()?, listener.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.io.into_inner()
    }
}

impl TryFrom<std::net::TcpStream> for TcpStream {
    type Error = io::Error;

    /// Makes `stream` non-blocking and registers it with the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of registering it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::TcpStream;
    ///
    /// ebbtide::block_on(async {
    ///     let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    ///     let std_stream = std::net::TcpStream::connect(std_listener.local_addr()?)?;
    ///     let stream = TcpStream::try_from(std_stream)?;
    ///     assert_eq!(stream.peer_addr()?, std_listener.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn try_from(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        crate::sys::tcp_enable_queue_hint(&stream);
        let io = register(stream, "TcpStream::try_from")?;
        Ok(TcpStream {
            io,
            stash: socket::StashCell::new(),
        })
    }
}

stream_io_traits!(TcpStream);
raw_handle_traits!(TcpStream);

/// The read path of `ebbtide::hyper::EbbtideIo`: one read straight into
/// hyper's uninitialised buffer (no zeroing first).
#[cfg(feature = "hyper")]
impl TcpStream {
    /// One read into `buf`; `Ok(n)`: the first `n` bytes of `buf` are
    /// initialised now (`recv` wrote them), the rest untouched.
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        socket::poll_stream_read(&self.io, &self.stash, cx, buf)
    }
}
