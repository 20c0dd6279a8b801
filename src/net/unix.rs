//! Unix-domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`].

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use socket2::{Domain, SockAddr, Socket, Type};

use super::socket::{self, raw_handle_traits, register, stream_io_traits, Direction};
use crate::io::{Async, BufResult, IoBuf, IoBufMut};
use crate::op;

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
    /// Connections accepted through the ring for dropped accepts.
    stash: Arc<op::AcceptStash>,
}

impl UnixListener {
    /// Binds a listener to the filesystem path `path` (which must not
    /// exist yet; remove a stale socket file first).
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `bind`/`listen` (`AddrInUse`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixListener;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-listener-bind-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path)?;
    ///     assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        socket::ensure_runtime("UnixListener::bind")?;
        let listener = std_unix::UnixListener::bind(path)?;
        let io = register(listener, "UnixListener::bind")?;
        Ok(UnixListener {
            io,
            stash: Arc::default(),
        })
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
    /// Cancel-safe: dropping the future loses no connection. Through the
    /// io_uring ring (`Builder::io_uring_sockets`), a connection the
    /// kernel accepted before it acknowledged the cancel is kept by the
    /// listener (counted in `ops_completed_after_cancel`) and returned by
    /// the next `accept` or [`poll_accept`](Self::poll_accept), which
    /// itself always uses readiness.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{UnixListener, UnixStream};
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-accept-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path)?;
    ///     let _client = UnixStream::connect(&path).await?;
    ///     let (server, _peer) = listener.accept().await?;
    ///     assert_eq!(server.local_addr()?.as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        if let Some(conn) = self.stash.pop() {
            return Self::connection(conn);
        }
        let Some(op) = socket::accept_through_ring(&self.io, &self.stash) else {
            return std::future::poll_fn(|cx| self.poll_accept(cx)).await;
        };
        Self::connection(op.await?.take())
    }

    /// A connection accepted through the ring, as a registered stream.
    fn connection((stream, peer): op::Connection) -> io::Result<(UnixStream, SocketAddr)> {
        let io = register(std_unix::UnixStream::from(stream), "UnixListener::accept")?;
        Ok((
            UnixStream {
                io,
                stash: socket::StashCell::new(),
            },
            unix_addr(&peer)?,
        ))
    }

    /// [`accept`](Self::accept) as a poll function.
    ///
    /// # Errors
    ///
    /// As for [`accept`](Self::accept).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use ebbtide::net::{UnixListener, UnixStream};
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-poll-accept-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path)?;
    ///     let _client = UnixStream::connect(&path).await?;
    ///     let (_server, _peer) = poll_fn(|cx| listener.poll_accept(cx)).await?;
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        if let Some(conn) = self.stash.pop() {
            return Poll::Ready(Self::connection(conn));
        }
        let (stream, peer) =
            std::task::ready!(socket::poll_io(&self.io, Direction::Read, cx, |l| l.accept()))?;
        let io = register(stream, "UnixListener::accept")?;
        Poll::Ready(Ok((
            UnixStream {
                io,
                stash: socket::StashCell::new(),
            },
            peer,
        )))
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
    /// use ebbtide::net::UnixListener;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-listener-addr-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path)?;
    ///     assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The std listener inside (non-blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixListener;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-listener-get-ref-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path)?;
    ///     let std_listener: &std::os::unix::net::UnixListener = listener.get_ref();
    ///     assert!(std_listener.local_addr()?.as_pathname().is_some());
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std_unix::UnixListener {
        self.io.get_ref()
    }

    /// Deregisters the listener and returns the std one, still in
    /// non-blocking mode.
    ///
    /// # Errors
    ///
    /// If the poller fails to deregister it (it is closed then).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixListener;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-listener-into-std-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path)?;
    ///     let std_listener = listener.into_std()?;
    ///     std_listener.set_nonblocking(false)?; // for blocking use
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixListener;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-listener-try-from-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::try_from(std::os::unix::net::UnixListener::bind(&path)?)?;
    ///     assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn try_from(listener: std_unix::UnixListener) -> io::Result<UnixListener> {
        let io = register(listener, "UnixListener::try_from")?;
        Ok(UnixListener {
            io,
            stash: Arc::default(),
        })
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
    /// Bytes of reads through the ring whose futures were dropped
    /// (`socket::read_owned`).
    stash: socket::StashCell,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `connect` (`NotFound`,
    /// `ConnectionRefused`; `WouldBlock` on Linux when the listener's
    /// backlog is full).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{UnixListener, UnixStream};
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-connect-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path)?;
    ///     let client = UnixStream::connect(&path).await?;
    ///     assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
    ///     let (_server, _) = listener.accept().await?;
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        socket::ensure_runtime("UnixStream::connect")?;
        let addr = SockAddr::unix(path)?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        let (socket, connected) = socket::start_connect(socket, &addr).await?;
        let io = register(std_unix::UnixStream::from(socket), "UnixStream::connect")?;
        if !connected {
            socket::finish_connect(&io).await?;
        }
        Ok(UnixStream {
            io,
            stash: socket::StashCell::new(),
        })
    }

    /// A connected pair of streams.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `socketpair`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (mut a, mut b) = UnixStream::pair()?;
    ///     a.write_all(b"ping").await?;
    ///     let mut buf = [0; 4];
    ///     b.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"ping");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    /// Cancel-safe: by readiness (the default), the buffer is dropped with
    /// the future, and no data is lost.
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
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (mut a, b) = UnixStream::pair()?;
    ///     a.write_all(b"hello").await?;
    ///     let BufResult(res, buf) = b.read_owned(Vec::with_capacity(16)).await;
    ///     assert_eq!(&buf[..res?], b"hello");
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

    /// Writes some of `buf`'s initialized bytes (one `write`).
    ///
    /// # Errors
    ///
    /// The OS error of `write` (`BrokenPipe`).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe by readiness (the default): nothing was sent if the
    /// future is dropped before it completes. Through the io_uring ring
    /// (`Builder::io_uring_sockets(true)`), not in one race: a send the
    /// kernel made before it acknowledged the cancel has sent its bytes
    /// (counted in the runtime's `ops_completed_after_cancel`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let BufResult(res, buf) = a.write_owned(b"hello".to_vec()).await;
    ///     assert!(res? <= buf.len()); // the buffer comes back
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, BufResult};
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     let BufResult(res, _buf) = a.write_all_owned(b"hello".to_vec()).await;
    ///     res?;
    ///     let mut got = [0; 5];
    ///     b.read_exact(&mut got).await?;
    ///     assert_eq!(&got, b"hello");
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

    /// Reads into `buf` if data is queued now, without waiting and without
    /// registering interest ([`TcpStream::try_read`](super::TcpStream::try_read)'s
    /// rules).
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is queued (it also clears read readiness,
    /// so a following [`readable`](Self::readable) waits); the OS error of
    /// `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let mut buf = [0; 8];
    ///     assert_eq!(b.try_read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    ///     assert_eq!(a.try_write(b"hi")?, 2);
    ///     b.readable().await?;
    ///     assert_eq!(b.try_read(&mut buf)?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        socket::try_stream_read(&self.io, &self.stash, buf)
    }

    /// Vectored form of [`try_read`](Self::try_read).
    ///
    /// # Errors
    ///
    /// As for [`try_read`](Self::try_read).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::IoSliceMut;
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.try_write(b"abcd")?;
    ///     b.readable().await?;
    ///     let (mut x, mut y) = ([0; 2], [0; 2]);
    ///     let n = b.try_read_vectored(&mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)])?;
    ///     assert_eq!((n, &x, &y), (4, b"ab", b"cd"));
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

    /// Writes some of `buf` if the socket can take it now, without waiting
    /// and without registering interest.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the send buffer is full (it also clears write
    /// readiness, so a following [`writable`](Self::writable) waits until
    /// the peer reads); the OS error of `send`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     assert_eq!(a.try_write(b"hi")?, 2);
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
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let n = a.try_write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cd")])?;
    ///     assert_eq!(n, 4);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        socket::try_io(&self.io, Direction::Write, |mut s| {
            std::io::Write::write_vectored(&mut s, bufs)
        })
    }

    /// Waits for data and reads it into `buf` without removing it from the
    /// queue.
    ///
    /// # Errors
    ///
    /// The OS error of `recv(MSG_PEEK)`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: nothing is consumed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (mut a, mut b) = UnixStream::pair()?;
    ///     a.write_all(b"hi").await?;
    ///     let mut buf = [0; 2];
    ///     assert_eq!(b.peek(&mut buf).await?, 2);
    ///     b.read_exact(&mut buf).await?; // the bytes are still there
    ///     assert_eq!(&buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        socket::peek_stream(&self.io, &self.stash, buf, peek_stream).await
    }

    /// Reads queued data into `buf` without removing it, if any is queued
    /// now; never waits.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is queued; the OS error of
    /// `recv(MSG_PEEK)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     assert!(b.try_peek(&mut [0; 4]).is_err()); // WouldBlock
    ///     a.try_write(b"hi")?;
    ///     b.readable().await?;
    ///     assert_eq!(b.try_peek(&mut [0; 4])?, 2);
    ///     assert_eq!(b.try_read(&mut [0; 4])?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(res) = socket::try_stashed(&self.stash, buf, false) {
            return res;
        }
        socket::try_io(&self.io, Direction::Read, |s| peek_stream(s, buf))
    }

    /// Splits the stream into a read half and a write half that can move
    /// to different tasks; [`reunite`](super::unix::OwnedReadHalf::reunite)
    /// puts them back together. Dropping the
    /// [`OwnedWriteHalf`](super::unix::OwnedWriteHalf) shuts down the write
    /// direction (the peer reads end-of-file) while the read half keeps
    /// reading; the socket closes when both halves are gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, mut server) = UnixStream::pair()?;
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
    ///     let _client: UnixStream = rd.reunite(wr).unwrap();
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_split(self) -> (super::unix::OwnedReadHalf, super::unix::OwnedWriteHalf) {
        super::split::unix::into_split(self)
    }

    /// Borrows the stream as a read half and a write half, for use in one
    /// task (`&UnixStream` implements both `AsyncRead` and `AsyncWrite`
    /// too; this is for code written in tokio's shape). Dropping the halves
    /// does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (mut client, mut server) = UnixStream::pair()?;
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
    pub fn split(&mut self) -> (super::unix::ReadHalf<'_>, super::unix::WriteHalf<'_>) {
        super::split::unix::split(self)
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
    /// use ebbtide::io::Interest;
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.try_write(b"hi")?;
    ///     assert!(b.ready(Interest::READABLE).await?.is_readable());
    ///     assert_eq!(b.try_read(&mut [0; 8])?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn ready(&self, interest: crate::io::Interest) -> io::Result<crate::io::Ready> {
        socket::stream_ready(&self.io, &self.stash, interest).await
    }

    /// Waits until the stream may be readable.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.try_write(b"x")?;
    ///     b.readable().await?;
    ///     assert_eq!(b.try_read(&mut [0; 8])?, 1);
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
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     a.writable().await?; // an idle stream is writable
    ///     assert_eq!(a.try_write(b"hi")?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{UnixListener, UnixStream};
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-stream-local-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path)?;
    ///     let _client = UnixStream::connect(&path).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     assert_eq!(server.local_addr()?.as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// The OS error of `getpeername`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::{UnixListener, UnixStream};
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-stream-peer-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path)?;
    ///     let client = UnixStream::connect(&path).await?;
    ///     assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
    ///     drop(listener);
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// The OS error of `shutdown`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Shutdown;
    /// use ebbtide::io::AsyncReadExt;
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     a.shutdown(Shutdown::Write)?;
    ///     let mut rest = Vec::new();
    ///     b.read_to_end(&mut rest).await?; // end-of-file at once
    ///     assert!(rest.is_empty());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The std stream inside (non-blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let std_stream: &std::os::unix::net::UnixStream = a.get_ref();
    ///     assert!(std_stream.peer_addr().is_ok());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std_unix::UnixStream {
        self.io.get_ref()
    }

    /// Deregisters the stream and returns the std one, still in
    /// non-blocking mode.
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
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let std_stream = a.into_std()?;
    ///     std_stream.set_nonblocking(false)?; // for blocking use
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    ///     let a = UnixStream::try_from(a)?;
    ///     assert_eq!(a.try_write(b"hi")?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn try_from(stream: std_unix::UnixStream) -> io::Result<UnixStream> {
        let io = register(stream, "UnixStream::try_from")?;
        Ok(UnixStream {
            io,
            stash: socket::StashCell::new(),
        })
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
    /// Datagrams of receives through the ring whose futures were dropped
    /// (`socket::recv_from_owned`).
    stash: socket::DatagramCell,
}

impl UnixDatagram {
    /// A socket bound to the filesystem path `path`.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `bind` (`AddrInUse`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-dgram-bind-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let socket = UnixDatagram::bind(&path)?;
    ///     assert_eq!(socket.local_addr()?.as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-dgram-unbound-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let rx = UnixDatagram::bind(&path)?;
    ///     let tx = UnixDatagram::unbound()?;
    ///     tx.send_to(b"hi", &path).await?;
    ///     assert_eq!(rx.recv(&mut [0; 8]).await?, 2);
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        socket::ensure_runtime("UnixDatagram::unbound")?;
        UnixDatagram::try_from(std_unix::UnixDatagram::unbound()?)
    }

    /// A connected pair of sockets.
    ///
    /// # Errors
    ///
    /// Outside a runtime; the OS error of `socketpair`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"hi").await?;
    ///     assert_eq!(b.recv(&mut [0; 8]).await?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-dgram-connect-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let rx = UnixDatagram::bind(&path)?;
    ///     let tx = UnixDatagram::unbound()?;
    ///     tx.connect(&path)?;
    ///     tx.send(b"hi").await?;
    ///     assert_eq!(rx.recv(&mut [0; 8]).await?, 2);
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-dgram-send-to-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let rx = UnixDatagram::bind(&path)?;
    ///     let tx = UnixDatagram::unbound()?;
    ///     assert_eq!(tx.send_to(b"hi", &path).await?, 2);
    ///     assert_eq!(rx.recv(&mut [0; 8]).await?, 2);
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-dgram-recv-from-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let rx = UnixDatagram::bind(&path)?;
    ///     let tx_path = path.with_extension("tx");
    ///     let _ = std::fs::remove_file(&tx_path);
    ///     let tx = UnixDatagram::bind(&tx_path)?;
    ///     tx.send_to(b"hi", &path).await?;
    ///     let mut buf = [0; 8];
    ///     let (n, from) = rx.recv_from(&mut buf).await?;
    ///     assert_eq!((&buf[..n], from.as_pathname()), (&b"hi"[..], Some(tx_path.as_path())));
    ///     std::fs::remove_file(&path)?;
    ///     std::fs::remove_file(&tx_path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        socket::io_with(&self.io, Direction::Read, |s| {
            socket::recv_from_kept(
                &self.stash,
                buf,
                false,
                |a| unix_addr(&a),
                |b| s.recv_from(b),
            )
        })
        .await
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     assert_eq!(a.send(b"hi").await?, 2);
    ///     assert_eq!(b.recv(&mut [0; 8]).await?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"hi").await?;
    ///     let mut buf = [0; 8];
    ///     let n = b.recv(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        socket::io_with(&self.io, Direction::Read, |s| {
            socket::recv_kept(&self.stash, buf, |b| s.recv(b))
        })
        .await
    }

    /// Sends `buf`'s initialized bytes to the socket at `path`.
    ///
    /// # Errors
    ///
    /// The OS error of `sendto`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe by readiness (the default): nothing was sent if the
    /// future is dropped before it completes. Through the io_uring ring
    /// (`Builder::io_uring_sockets(true)`), not in one race: a datagram the
    /// kernel sent before it acknowledged the cancel is gone (counted in
    /// the runtime's `ops_completed_after_cancel`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-dgram-send-to-owned-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let rx = UnixDatagram::bind(&path)?;
    ///     let tx = UnixDatagram::unbound()?;
    ///     let BufResult(res, _buf) = tx.send_to_owned(b"hi".to_vec(), &path).await;
    ///     assert_eq!(res?, 2);
    ///     assert_eq!(rx.recv(&mut [0; 8]).await?, 2);
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn send_to_owned<B: IoBuf>(
        &self,
        buf: B,
        path: impl AsRef<Path>,
    ) -> BufResult<usize, B> {
        let path = path.as_ref();
        let send = |s: &std_unix::UnixDatagram, bytes: &[u8]| s.send_to(bytes, path);
        match SockAddr::unix(path) {
            Ok(target) => socket::send_to_owned(&self.io, buf, &target, send).await,
            // A path no address can hold: readiness's `sendto` reports it.
            Err(_) => socket::send_owned(&self.io, buf, send).await,
        }
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
    /// Cancel-safe. By readiness (the default), the buffer is dropped with
    /// the future. Through the io_uring ring (`Builder::io_uring_sockets`),
    /// the buffer is dropped when the kernel acknowledges the cancel, and a
    /// datagram the kernel delivered into it before that is kept, with its
    /// sender, for the socket's next receive of any kind (counted in
    /// `ops_completed_after_cancel`; a receive already waiting by readiness
    /// sees it with the next datagram or event).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"hi").await?;
    ///     let BufResult(res, buf) = b.recv_from_owned(Vec::with_capacity(16)).await;
    ///     let (n, _from) = res?;
    ///     assert_eq!(&buf[..n], b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv_from_owned<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let BufResult(res, buf) = socket::recv_from_owned(&self.io, &self.stash, buf).await;
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     let BufResult(res, _buf) = a.send_owned(b"hi".to_vec()).await;
    ///     assert_eq!(res?, 2);
    ///     assert_eq!(b.recv(&mut [0; 8]).await?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"hi").await?;
    ///     let BufResult(res, buf) = b.recv_owned(Vec::with_capacity(16)).await;
    ///     assert_eq!(&buf[..res?], b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        socket::recv_owned(&self.io, &self.stash, buf).await
    }

    /// Sends `buf` to the connected peer if the socket can take it now,
    /// without waiting and without registering interest.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the socket's buffer is full (it also clears write
    /// readiness, so a following [`writable`](Self::writable) waits); the
    /// OS error of `send`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     assert_eq!(a.try_send(b"hi")?, 2);
    ///     assert_eq!(b.try_recv(&mut [0; 8])?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        socket::try_io(&self.io, Direction::Write, |s| s.send(buf))
    }

    /// Sends `buf` to the socket at `path` if this socket can take it now,
    /// without waiting.
    ///
    /// # Errors
    ///
    /// As for [`try_send`](Self::try_send), with `sendto`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-try-send-to-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let rx = UnixDatagram::bind(&path)?;
    ///     let tx = UnixDatagram::unbound()?;
    ///     assert_eq!(tx.try_send_to(b"hi", &path)?, 2);
    ///     assert_eq!(rx.recv(&mut [0; 8]).await?, 2);
    ///     std::fs::remove_file(&path)
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        socket::try_io(&self.io, Direction::Write, |s| s.send_to(buf, path))
    }

    /// Receives a datagram from the connected peer if one is queued now,
    /// without waiting and without registering interest.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when none is queued (it also clears read readiness, so
    /// a following [`readable`](Self::readable) waits); the OS error of
    /// `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     let mut buf = [0; 8];
    ///     assert_eq!(b.try_recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    ///     a.send(b"hi").await?;
    ///     b.readable().await?;
    ///     assert_eq!(b.try_recv(&mut buf)?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        socket::try_io(&self.io, Direction::Read, |s| {
            socket::recv_kept(&self.stash, buf, |b| s.recv(b))
        })
    }

    /// Receives a datagram and its sender if one is queued now, without
    /// waiting.
    ///
    /// # Errors
    ///
    /// As for [`try_recv`](Self::try_recv), with `recvfrom`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"hi").await?;
    ///     let (n, _from) = b.try_recv_from(&mut [0; 8])?;
    ///     assert_eq!(n, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        socket::try_io(&self.io, Direction::Read, |s| {
            socket::recv_from_kept(
                &self.stash,
                buf,
                false,
                |a| unix_addr(&a),
                |b| s.recv_from(b),
            )
        })
    }

    /// Waits for a datagram and reads it and its sender without taking it
    /// from the queue.
    ///
    /// # Errors
    ///
    /// The OS error of `recvfrom(MSG_PEEK)`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: nothing is consumed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"hi").await?;
    ///     let mut buf = [0; 8];
    ///     let (n, _from) = b.peek_from(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"hi");
    ///     assert_eq!(b.recv(&mut buf).await?, 2); // still queued
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        socket::io_with(&self.io, Direction::Read, |s| {
            socket::recv_from_kept(
                &self.stash,
                buf,
                true,
                |a| unix_addr(&a),
                |b| peek_datagram_from(s, b),
            )
        })
        .await
    }

    /// Waits until the socket may be ready in a direction of `interest`
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
    /// use ebbtide::io::Interest;
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixDatagram::pair()?;
    ///     assert!(a.ready(Interest::WRITABLE).await?.is_writable());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn ready(&self, interest: crate::io::Interest) -> io::Result<crate::io::Ready> {
        socket::datagram_ready(&self.io, &self.stash, interest).await
    }

    /// Waits until a datagram may be ready to receive.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"hi").await?;
    ///     b.readable().await?;
    ///     assert_eq!(b.try_recv(&mut [0; 8])?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        socket::datagram_ready(&self.io, &self.stash, crate::io::Interest::READABLE)
            .await
            .map(drop)
    }

    /// Waits until the socket may accept a datagram to send.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixDatagram::pair()?;
    ///     a.writable().await?;
    ///     assert_eq!(a.try_send(b"hi")?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// The address this socket is bound to.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-dgram-local-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let socket = UnixDatagram::bind(&path)?;
    ///     assert_eq!(socket.local_addr()?.as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` before [`connect`](Self::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-dgram-peer-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let rx = UnixDatagram::bind(&path)?;
    ///     let tx = UnixDatagram::unbound()?;
    ///     tx.connect(&path)?;
    ///     assert_eq!(tx.peer_addr()?.as_pathname(), Some(path.as_path()));
    ///     drop(rx);
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// The OS error of `shutdown`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Shutdown;
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixDatagram::pair()?;
    ///     a.shutdown(Shutdown::Write)?;
    ///     assert!(a.send(b"late").await.is_err()); // nothing more can be sent
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The std socket inside (non-blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = UnixDatagram::pair()?;
    ///     let std_socket: &std::os::unix::net::UnixDatagram = a.get_ref();
    ///     assert!(std_socket.peer_addr().is_ok());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std_unix::UnixDatagram {
        self.io.get_ref()
    }

    /// Deregisters the socket and returns the std one, still in
    /// non-blocking mode.
    ///
    /// A datagram that a dropped receive through the io_uring ring got and
    /// no receive has taken yet (`Builder::io_uring_sockets`; see
    /// `recv_from_owned`) is not in the std socket: receive it first.
    ///
    /// # Errors
    ///
    /// If the poller fails to deregister it (it is closed then).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     let std_socket = a.into_std()?;
    ///     std_socket.set_nonblocking(false)?; // for blocking use
    ///     std_socket.send(b"hi")?;
    ///     assert_eq!(b.recv(&mut [0; 8]).await?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixDatagram;
    ///
    /// ebbtide::block_on(async {
    ///     let (a, _b) = std::os::unix::net::UnixDatagram::pair()?;
    ///     let a = UnixDatagram::try_from(a)?;
    ///     assert_eq!(a.try_send(b"hi")?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn try_from(socket: std_unix::UnixDatagram) -> io::Result<UnixDatagram> {
        let io = register(socket, "UnixDatagram::try_from")?;
        Ok(UnixDatagram {
            io,
            stash: socket::DatagramCell::new(),
        })
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
        socket::poll_stream_read(&self.io, &self.stash, cx, buf)
    }
}

/// `recv(MSG_PEEK)` on a stream into initialized bytes.
fn peek_stream(s: &std_unix::UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have one layout, and `recv`
    // only writes initialized bytes into it, so `buf` stays initialized.
    let buf = unsafe { socket::as_uninit(buf) };
    socket2::SockRef::from(s).peek(buf)
}

/// `recvfrom(MSG_PEEK)` on a datagram socket into initialized bytes.
fn peek_datagram_from(
    s: &std_unix::UnixDatagram,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr)> {
    // SAFETY: as in `peek_stream`.
    let buf = unsafe { socket::as_uninit(buf) };
    let (n, from) = socket2::SockRef::from(s).peek_from(buf)?;
    Ok((n, unix_addr(&from)?))
}
