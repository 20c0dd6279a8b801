//! Halves of a [`UnixStream`] (the same protocol as the `TcpStream` halves
//! in `split.rs`): owned ([`OwnedReadHalf`], [`OwnedWriteHalf`],
//! from `into_split`) and borrowed ([`ReadHalf`], [`WriteHalf`], from
//! `split`).
//!
//! The owned halves share the stream through an `Arc`:
//!
//! 1. Each half only uses its own direction (`&UnixStream` reads and writes
//!    independently: the reactor keeps one readiness state per direction),
//!    so the halves need no lock between them.
//! 2. Dropping the write half shuts down the write direction
//!    (`shutdown(Write)`), as tokio does: the peer reads end-of-file while
//!    the read half keeps reading. [`OwnedWriteHalf::forget`] drops it
//!    without that.
//! 3. The socket itself closes when the last half is dropped.
//! 4. `reunite` checks that both halves hold the same `Arc`; then the write
//!    half is dropped *without* the shutdown and the stream is taken back.
//!
//! A copy of `split.rs` with the stream type changed (as tokio keeps one per
//! stream type): the examples differ, and so do the address types.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

use super::UnixStream;
use crate::io::{BufResult, IoBuf, IoBufMut};

/// The owned read half of a [`UnixStream`], from
/// [`UnixStream::into_split`]: implements `AsyncRead`, and has the stream's
/// read-side methods.
///
/// # Examples
///
/// ```
/// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
/// use ebbtide::net::UnixStream;
///
/// ebbtide::block_on(async {
///     let (client, mut server) = UnixStream::pair()?;
///     let (mut rd, _wr) = client.into_split();
///     server.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     rd.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<UnixStream>,
}

/// The owned write half of a [`UnixStream`], from
/// [`UnixStream::into_split`]: implements `AsyncWrite`, and has the
/// stream's write-side methods.
///
/// Dropping it shuts down the write direction (the peer reads
/// end-of-file); the read half keeps working. Closing it
/// (`AsyncWriteExt::close`) does the same at once.
///
/// # Examples
///
/// ```
/// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
/// use ebbtide::net::UnixStream;
///
/// ebbtide::block_on(async {
///     let (client, mut server) = UnixStream::pair()?;
///     let (_rd, mut wr) = client.into_split();
///     wr.write_all(b"bye").await?;
///     drop(wr); // shuts down writing
///     let mut all = Vec::new();
///     server.read_to_end(&mut all).await?; // ends: the peer read EOF
///     assert_eq!(all, b"bye");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<UnixStream>,
    /// Step 2: shut down writing on drop (`false` after `forget`,
    /// `reunite` or a close).
    shutdown_on_drop: bool,
}

/// The error of `reunite` with halves of two different streams: both
/// halves, given back.
///
/// # Examples
///
/// ```
/// use ebbtide::net::UnixStream;
///
/// ebbtide::block_on(async {
///     let (a, _a_peer) = UnixStream::pair()?;
///     let (b, _b_peer) = UnixStream::pair()?;
///     let (a_rd, _a_wr) = a.into_split();
///     let (_b_rd, b_wr) = b.into_split();
///     let err = a_rd.reunite(b_wr).unwrap_err();
///     println!("{err}"); // the halves are not from the same socket
///     let (a_rd, b_wr) = (err.0, err.1); // both back
///     drop((a_rd, b_wr));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same UnixStream")
    }
}

impl std::error::Error for ReuniteError {}

pub(crate) fn into_split(stream: UnixStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    let inner = Arc::new(stream);
    let write = OwnedWriteHalf {
        inner: Arc::clone(&inner),
        shutdown_on_drop: true,
    };
    (OwnedReadHalf { inner }, write)
}

/// `UnixStream::split`: both halves borrow the stream.
pub(crate) fn split(stream: &UnixStream) -> (ReadHalf<'_>, WriteHalf<'_>) {
    (ReadHalf { stream }, WriteHalf { stream })
}

/// Step 4, shared by both `reunite` methods.
fn reunite(read: OwnedReadHalf, mut write: OwnedWriteHalf) -> Result<UnixStream, ReuniteError> {
    if !Arc::ptr_eq(&read.inner, &write.inner) {
        return Err(ReuniteError(read, write));
    }
    write.shutdown_on_drop = false;
    drop(write);
    Ok(Arc::try_unwrap(read.inner)
        .expect("ebbtide: the two halves of a UnixStream hold its only references"))
}

impl OwnedReadHalf {
    /// Puts the stream back together with its write half.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`] (with both halves) if `write` comes from another
    /// stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (stream, _peer) = UnixStream::pair()?;
    ///     let (rd, wr) = stream.into_split();
    ///     let stream = rd.reunite(wr).expect("same stream");
    ///     assert!(stream.local_addr()?.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reunite(self, write: OwnedWriteHalf) -> Result<UnixStream, ReuniteError> {
        reunite(self, write)
    }

    /// [`UnixStream::read_owned`] on this half.
    ///
    /// # Errors
    ///
    /// As for [`UnixStream::read_owned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncWriteExt, BufResult};
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, mut server) = UnixStream::pair()?;
    ///     let (rd, _wr) = client.into_split();
    ///     server.write_all(b"hi").await?;
    ///     let BufResult(res, buf) = rd.read_owned(Vec::with_capacity(8)).await;
    ///     assert_eq!(&buf[..res?], b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        self.inner.read_owned(buf).await
    }

    /// [`UnixStream::try_read`] on this half: never waits.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is queued; the OS error of `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, _peer) = UnixStream::pair()?;
    ///     let (rd, _wr) = client.into_split();
    ///     let err = rd.try_read(&mut [0; 8]).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.try_read(buf)
    }

    /// [`UnixStream::peek`] on this half: reads without consuming.
    ///
    /// # Errors
    ///
    /// The OS error of `recv(MSG_PEEK)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, mut server) = UnixStream::pair()?;
    ///     let (mut rd, _wr) = client.into_split();
    ///     server.write_all(b"x").await?;
    ///     let mut buf = [0; 1];
    ///     assert_eq!(rd.peek(&mut buf).await?, 1);
    ///     rd.read_exact(&mut buf).await?; // still there
    ///     assert_eq!(&buf, b"x");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf).await
    }

    /// [`UnixStream::readable`] on this half.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::AsyncWriteExt;
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, mut server) = UnixStream::pair()?;
    ///     let (rd, _wr) = client.into_split();
    ///     server.write_all(b"x").await?;
    ///     rd.readable().await?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        self.inner.readable().await
    }

    /// The local address of the stream.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, _peer) = UnixStream::pair()?;
    ///     let (rd, _wr) = client.into_split();
    ///     assert!(rd.local_addr()?.is_unnamed()); // a `pair` has no names
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
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
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, _peer) = UnixStream::pair()?;
    ///     let (rd, _wr) = client.into_split();
    ///     assert!(rd.peer_addr()?.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

impl OwnedWriteHalf {
    /// Puts the stream back together with its read half.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`] (with both halves) if `read` comes from another
    /// stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (stream, _peer) = UnixStream::pair()?;
    ///     let (rd, wr) = stream.into_split();
    ///     let _stream: UnixStream = wr.reunite(rd).expect("same stream");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reunite(self, read: OwnedReadHalf) -> Result<UnixStream, ReuniteError> {
        reunite(read, self)
    }

    /// Drops the half *without* shutting down the write direction: the
    /// connection stays fully open while the read half lives.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::AsyncWriteExt;
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, mut server) = UnixStream::pair()?;
    ///     let (_rd, wr) = client.into_split();
    ///     wr.forget();
    ///     // The peer's writes still reach the read half's socket.
    ///     server.write_all(b"still open").await?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    /// [`UnixStream::write_owned`] on this half.
    ///
    /// # Errors
    ///
    /// As for [`UnixStream::write_owned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, _peer) = UnixStream::pair()?;
    ///     let (_rd, wr) = client.into_split();
    ///     let BufResult(res, _buf) = wr.write_owned(b"hi".to_vec()).await;
    ///     assert!(res? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.inner.write_owned(buf).await
    }

    /// [`UnixStream::write_all_owned`] on this half.
    ///
    /// # Errors
    ///
    /// As for [`UnixStream::write_all_owned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, _peer) = UnixStream::pair()?;
    ///     let (_rd, wr) = client.into_split();
    ///     let BufResult(res, _buf) = wr.write_all_owned(b"hello".to_vec()).await;
    ///     res?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_all_owned<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        self.inner.write_all_owned(buf).await
    }

    /// [`UnixStream::try_write`] on this half: never waits.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the send queue is full; the OS error of `send`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, _peer) = UnixStream::pair()?;
    ///     let (_rd, wr) = client.into_split();
    ///     wr.writable().await?;
    ///     assert_eq!(wr.try_write(b"hi")?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.try_write(buf)
    }

    /// [`UnixStream::writable`] on this half.
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
    ///     let (client, _peer) = UnixStream::pair()?;
    ///     let (_rd, wr) = client.into_split();
    ///     wr.writable().await?; // an idle connection is writable
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        self.inner.writable().await
    }

    /// The local address of the stream.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, _peer) = UnixStream::pair()?;
    ///     let (_rd, wr) = client.into_split();
    ///     assert!(wr.local_addr()?.is_unnamed()); // a `pair` has no names
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
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
    /// use ebbtide::net::UnixStream;
    ///
    /// ebbtide::block_on(async {
    ///     let (client, _peer) = UnixStream::pair()?;
    ///     let (_rd, wr) = client.into_split();
    ///     assert!(wr.peer_addr()?.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // Step 2. `NotConnected` (the peer reset it) leaves nothing to do.
            let _ = self.inner.shutdown(Shutdown::Write);
        }
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.inner).poll_read(cx, buf)
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.inner).poll_read_vectored(cx, bufs)
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let res = std::task::ready!(Pin::new(&mut &*self.inner).poll_close(cx));
        if res.is_ok() {
            self.shutdown_on_drop = false; // done already
        }
        Poll::Ready(res)
    }
}

/// The borrowed read half of a [`UnixStream`], from
/// [`UnixStream::split`]: implements `AsyncRead`.
///
/// # Examples
///
/// ```
/// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
/// use ebbtide::net::UnixStream;
///
/// ebbtide::block_on(async {
///     let (mut client, mut server) = UnixStream::pair()?;
///     let (mut rd, _wr) = client.split();
///     server.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     rd.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ReadHalf<'a> {
    stream: &'a UnixStream,
}

/// The borrowed write half of a [`UnixStream`], from
/// [`UnixStream::split`]: implements `AsyncWrite` (closing it shuts down
/// the write direction; dropping it does nothing).
///
/// # Examples
///
/// ```
/// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
/// use ebbtide::net::UnixStream;
///
/// ebbtide::block_on(async {
///     let (mut client, mut server) = UnixStream::pair()?;
///     let (_rd, mut wr) = client.split();
///     wr.write_all(b"hi").await?;
///     wr.close().await?;
///     let mut all = Vec::new();
///     server.read_to_end(&mut all).await?;
///     assert_eq!(all, b"hi");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct WriteHalf<'a> {
    stream: &'a UnixStream,
}

impl AsyncRead for ReadHalf<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }

    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read_vectored(cx, bufs)
    }
}

impl AsyncWrite for WriteHalf<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
