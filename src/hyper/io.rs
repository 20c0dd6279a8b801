//! [`EbbtideIo`]: a stream as hyper's `Read` + `Write` (module doc, "Reading
//! into hyper's buffer").

use std::any::Any;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use ::hyper::rt::ReadBufCursor;
use futures_lite::{AsyncRead, AsyncWrite};

use crate::net::TcpStream;
#[cfg(unix)]
use crate::net::UnixStream;

/// The first window of a foreign stream's read (hyper's first read buffer
/// is 8 KiB too).
const FIRST_WINDOW: usize = 8 * 1024;

/// A stream wrapped for hyper: implements `hyper::rt::Read` and
/// `hyper::rt::Write` for any `futures-io` stream `T` (ebbtide's
/// [`TcpStream`] and `UnixStream`, or anything else: a TLS stream, a pipe).
///
/// ebbtide's own sockets read straight into hyper's uninitialised buffer;
/// other streams get a window of it zeroed first (see the
/// [module docs](crate::hyper)). `T: 'static` is what lets the two cases
/// be told apart.
///
/// # Examples
///
/// An HTTP/1.1 request with hyper's client over an ebbtide `TcpStream`:
///
/// ```
/// use ebbtide::hyper::{serve, EbbtideIo};
/// use ebbtide::net::{TcpListener, TcpStream};
/// use http_body_util::{BodyExt, Empty, Full};
/// use hyper::body::{Bytes, Incoming};
/// use hyper::{Request, Response};
///
/// ebbtide::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let hello = hyper::service::service_fn(|_req: Request<Incoming>| async {
///         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hi"))))
///     });
///     ebbtide::spawn(serve(listener, hello)).detach();
///
///     let stream = TcpStream::connect(addr).await?;
///     let (mut client, conn) = hyper::client::conn::http1::handshake(EbbtideIo::new(stream))
///         .await
///         .unwrap();
///     ebbtide::spawn(conn).detach();
///     let req = Request::get("/").body(Empty::<Bytes>::new()).unwrap();
///     let res = client.send_request(req).await.unwrap();
///     let body = res.into_body().collect().await.unwrap().to_bytes();
///     assert_eq!(&body[..], b"hi");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct EbbtideIo<T> {
    inner: T,
    /// How many bytes of hyper's buffer a foreign stream's next read is
    /// offered (and so how many get zeroed): doubled after a read fills it.
    window: usize,
}

impl<T> EbbtideIo<T> {
    /// Wraps `inner`.
    ///
    /// # Examples
    ///
    /// ```
    /// let io = ebbtide::hyper::EbbtideIo::new(futures_lite::io::Cursor::new(vec![1u8]));
    /// assert_eq!(io.inner().get_ref(), &[1]);
    /// ```
    pub fn new(inner: T) -> EbbtideIo<T> {
        EbbtideIo {
            inner,
            window: FIRST_WINDOW,
        }
    }

    /// The wrapped stream.
    ///
    /// # Examples
    ///
    /// ```
    /// let io = ebbtide::hyper::EbbtideIo::new(futures_lite::io::Cursor::new(vec![1u8]));
    /// assert_eq!(io.inner().position(), 0);
    /// ```
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut io = ebbtide::hyper::EbbtideIo::new(futures_lite::io::Cursor::new(vec![1u8]));
    /// io.inner_mut().set_position(1);
    /// assert_eq!(io.inner().position(), 1);
    /// ```
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    ///
    /// # Examples
    ///
    /// ```
    /// let io = ebbtide::hyper::EbbtideIo::new(futures_lite::io::Cursor::new(vec![1u8]));
    /// assert_eq!(io.into_inner().into_inner(), vec![1]);
    /// ```
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: 'static> EbbtideIo<T> {
    /// Step 1's read for ebbtide's own sockets; `None` for any other `T`.
    fn poll_read_native(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Option<Poll<io::Result<usize>>> {
        let inner: &mut dyn Any = &mut self.inner;
        if let Some(tcp) = inner.downcast_ref::<TcpStream>() {
            return Some(tcp.poll_read_uninit(cx, buf));
        }
        poll_read_unix(inner, cx, buf)
    }

    /// Whether `T` is one of ebbtide's own sockets (real `writev`).
    fn is_native() -> bool {
        let id = std::any::TypeId::of::<T>();
        id == std::any::TypeId::of::<TcpStream>() || is_unix_stream(id)
    }
}

#[cfg(unix)]
fn poll_read_unix(
    inner: &mut dyn Any,
    cx: &mut Context<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> Option<Poll<io::Result<usize>>> {
    let unix = inner.downcast_ref::<UnixStream>()?;
    Some(unix.poll_read_uninit(cx, buf))
}

#[cfg(not(unix))]
fn poll_read_unix(
    _inner: &mut dyn Any,
    _cx: &mut Context<'_>,
    _buf: &mut [MaybeUninit<u8>],
) -> Option<Poll<io::Result<usize>>> {
    None
}

#[cfg(unix)]
fn is_unix_stream(id: std::any::TypeId) -> bool {
    id == std::any::TypeId::of::<UnixStream>()
}

#[cfg(not(unix))]
fn is_unix_stream(_id: std::any::TypeId) -> bool {
    false
}

impl<T: AsyncRead + Unpin + 'static> ::hyper::rt::Read for EbbtideIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // SAFETY: step 1 only lets `recv` write initialised bytes into the
        // slice; nothing here de-initialises a byte.
        if let Some(res) = this.poll_read_native(cx, unsafe { buf.as_mut() }) {
            let n = ready!(res)?;
            // SAFETY: `recv` initialised the first `n` bytes of the slice
            // (the unfilled part of the cursor).
            unsafe { buf.advance(n) };
            return Poll::Ready(Ok(()));
        }
        // Step 2: zero the window (the cursor skips bytes it knows are
        // initialised) and read into it.
        let window = this.window.min(buf.remaining());
        let n =
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf.initialize_unfilled_to(window)))?;
        if n > 0 && n == window {
            this.window = this.window.max(n.saturating_mul(2));
        }
        // SAFETY: the window is initialised (zeroed above) and the read
        // wrote at most its length, `n <= window`.
        unsafe { buf.advance(n.min(window)) };
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin + 'static> ::hyper::rt::Write for EbbtideIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn is_write_vectored(&self) -> bool {
        Self::is_native()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}
