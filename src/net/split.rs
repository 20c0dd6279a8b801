//! Halves of a stream socket (`TcpStream` in `tcp`, `UnixStream` in
//! `unix`): owned ones (`OwnedReadHalf`, `OwnedWriteHalf`, from
//! `into_split`), borrowed ones (`ReadHalf`, `WriteHalf`, from `split`),
//! and `ReuniteError`. The public paths are `net::tcp::*` and
//! `net::unix::*`.
//!
//! The owned halves share the stream through an `Arc`:
//!
//! 1. Each half only uses its own direction (`&TcpStream` and `&UnixStream`
//!    read and write independently: the reactor keeps one readiness state
//!    per direction), so the halves need no lock between them.
//! 2. Dropping the write half shuts down the write direction
//!    (`shutdown(Write)`), as tokio does: the peer reads end-of-file while
//!    the read half keeps reading. `OwnedWriteHalf::forget` drops it
//!    without that.
//! 3. The socket itself closes when the last half is dropped.
//! 4. `reunite` checks that both halves hold the same `Arc`; then the write
//!    half is dropped *without* the shutdown and the stream is taken back.
//!
//! The halves of both stream types are the same code, written once in
//! `stream_halves!` and invoked once per stream type. A macro rather than a
//! generic `OwnedReadHalf<S>`: the public types stay tokio's plain
//! `tcp::OwnedReadHalf` and `unix::OwnedReadHalf`, each with docs and
//! runnable examples in terms of its own stream. An invocation gives what
//! differs: the stream type, its address type, and the lines the doc
//! examples start with (a connected TCP stream takes a listener; Unix
//! streams come in a `UnixStream::pair`). The examples are written out as
//! doc comments; those lines are spliced in with `#[doc = …]`.

/// Doc-example code lines, each indented into the example's
/// `block_on(async { … })` block, as one doc line.
macro_rules! indented {
    ($first:literal $(, $rest:literal)* $(,)?) => {
        concat!("    ", $first $(, "\n    ", $rest)*)
    };
}

/// `local_addr` and `peer_addr` of the owned half named `$half` in the
/// examples (the same on both halves: `inner` is the shared stream).
/// `set_up` binds `client` (the `idle` set-up of `stream_halves!`), `split`
/// splits it; `local` / `peer` check the `addr` the method returned.
macro_rules! addr_methods {
    (
        half: $half:ident,
        addr: $Addr:ty,
        net_use: $net_use:literal,
        set_up: [$($set_up:literal),+],
        split: $split:literal,
        local: $local:literal,
        peer: $peer:literal $(,)?
    ) => {
        /// The local address of the stream.
        ///
        /// # Errors
        ///
        /// The OS error of `getsockname`.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = $net_use]
        ///
        /// ebbtide::block_on(async {
        #[doc = indented!($($set_up),+, $split)]
        #[doc = concat!("    let addr = ", stringify!($half), ".local_addr()?;")]
        #[doc = indented!($local)]
        ///     Ok::<(), std::io::Error>(())
        /// })?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn local_addr(&self) -> io::Result<$Addr> {
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
        #[doc = $net_use]
        ///
        /// ebbtide::block_on(async {
        #[doc = indented!($($set_up),+, $split)]
        #[doc = concat!("    let addr = ", stringify!($half), ".peer_addr()?;")]
        #[doc = indented!($peer)]
        ///     Ok::<(), std::io::Error>(())
        /// })?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn peer_addr(&self) -> io::Result<$Addr> {
            self.inner.peer_addr()
        }
    };
}

/// The halves of the stream type `$Stream` (in scope where this is
/// invoked), whose addresses are `$Addr`. Each doc example starts with
/// `net_use` (the `use` of the stream's types) and one of these set-ups:
/// `connected` binds `client` and `mut server`, its connected peer;
/// `connected_mut` binds `mut client` and `mut server`; `idle` binds
/// `client`, whose peer stays open but sends nothing; `two` binds `a` and
/// `b`, two streams. `local_addr` / `peer_addr` check the `addr` that
/// method returned in the `idle` set-up.
macro_rules! stream_halves {
    (
        stream: $Stream:ident,
        addr: $Addr:ty,
        net_use: $net_use:literal,
        connected: [$($connected:literal),+ $(,)?],
        connected_mut: [$($connected_mut:literal),+ $(,)?],
        idle: [$($idle:literal),+ $(,)?],
        two: [$($two:literal),+ $(,)?],
        local_addr: $local_addr:literal,
        peer_addr: $peer_addr:literal $(,)?
    ) => {
        use std::fmt;
        use std::io;
        use std::net::Shutdown;
        use std::pin::Pin;
        use std::sync::Arc;
        use std::task::{Context, Poll};

        use futures_lite::{AsyncRead, AsyncWrite};

        use crate::io::{BufResult, IoBuf, IoBufMut};

        #[doc = concat!("The owned read half of a [`", stringify!($Stream), "`], from")]
        #[doc = concat!("[`", stringify!($Stream), "::into_split`]: implements `AsyncRead`, and")]
        /// has the stream's read-side methods.
        ///
        /// # Examples
        ///
        /// ```
        /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
        #[doc = $net_use]
        ///
        /// ebbtide::block_on(async {
        #[doc = indented!($($connected),+)]
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
            inner: Arc<$Stream>,
        }

        #[doc = concat!("The owned write half of a [`", stringify!($Stream), "`], from")]
        #[doc = concat!("[`", stringify!($Stream), "::into_split`]: implements `AsyncWrite`, and")]
        /// has the stream's write-side methods.
        ///
        /// Dropping it shuts down the write direction (the peer reads
        /// end-of-file); the read half keeps working. Closing it
        /// (`AsyncWriteExt::close`) does the same at once.
        ///
        /// # Examples
        ///
        /// ```
        /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
        #[doc = $net_use]
        ///
        /// ebbtide::block_on(async {
        #[doc = indented!($($connected),+)]
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
            inner: Arc<$Stream>,
            /// Step 2: shut down writing on drop (`false` after `forget`,
            /// `reunite` or a close).
            shutdown_on_drop: bool,
        }

        /// The error of `reunite` with halves of two different streams:
        /// both halves, given back.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = $net_use]
        ///
        /// ebbtide::block_on(async {
        #[doc = indented!($($two),+)]
        ///     let (a_rd, a_wr) = a.into_split();
        ///     let (b_rd, b_wr) = b.into_split();
        ///     let err = a_rd.reunite(b_wr).unwrap_err();
        ///     println!("{err}"); // the halves are not from the same socket
        ///     let (a_rd, b_wr) = (err.0, err.1); // both back, intact
        ///     let _a = a_rd.reunite(a_wr).expect("halves of a");
        ///     let _b = b_wr.reunite(b_rd).expect("halves of b");
        ///     Ok::<(), std::io::Error>(())
        /// })?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        #[derive(Debug)]
        pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

        impl fmt::Display for ReuniteError {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(
                    "tried to reunite halves that are not from the same ",
                    stringify!($Stream)
                ))
            }
        }

        impl std::error::Error for ReuniteError {}

        #[doc = concat!("`", stringify!($Stream), "::into_split`: the halves share the stream.")]
        pub(crate) fn into_split(stream: $Stream) -> (OwnedReadHalf, OwnedWriteHalf) {
            let inner = Arc::new(stream);
            let write = OwnedWriteHalf {
                inner: Arc::clone(&inner),
                shutdown_on_drop: true,
            };
            (OwnedReadHalf { inner }, write)
        }

        #[doc = concat!("`", stringify!($Stream), "::split`: both halves borrow the stream.")]
        pub(crate) fn split(stream: &$Stream) -> (ReadHalf<'_>, WriteHalf<'_>) {
            (ReadHalf { stream }, WriteHalf { stream })
        }

        /// Step 4, shared by both `reunite` methods.
        fn reunite(
            read: OwnedReadHalf,
            mut write: OwnedWriteHalf,
        ) -> Result<$Stream, ReuniteError> {
            if !Arc::ptr_eq(&read.inner, &write.inner) {
                return Err(ReuniteError(read, write));
            }
            write.shutdown_on_drop = false;
            drop(write);
            Ok(Arc::try_unwrap(read.inner).expect(concat!(
                "ebbtide: the two halves of a ",
                stringify!($Stream),
                " hold its only references"
            )))
        }

        impl OwnedReadHalf {
            /// Puts the stream back together with its write half.
            ///
            /// # Errors
            ///
            /// [`ReuniteError`] (with both halves) if `write` comes from
            /// another stream.
            ///
            /// # Examples
            ///
            /// ```
            /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($connected),+)]
            ///     let (rd, wr) = client.into_split();
            ///     let mut client = rd.reunite(wr).expect("same stream");
            ///     client.write_all(b"hi").await?; // writing was not shut down
            ///     let mut buf = [0; 2];
            ///     server.read_exact(&mut buf).await?;
            ///     assert_eq!(&buf, b"hi");
            ///     Ok::<(), std::io::Error>(())
            /// })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn reunite(self, write: OwnedWriteHalf) -> Result<$Stream, ReuniteError> {
                reunite(self, write)
            }

            #[doc = concat!("[`", stringify!($Stream), "::read_owned`] on this half.")]
            ///
            /// # Errors
            ///
            #[doc = concat!("As for [`", stringify!($Stream), "::read_owned`].")]
            ///
            /// # Examples
            ///
            /// ```
            /// use ebbtide::io::{AsyncWriteExt, BufResult};
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($connected),+)]
            ///     let (rd, _wr) = client.into_split();
            ///     server.write_all(b"hi").await?;
            ///     let BufResult(res, buf) = rd.read_owned(Vec::with_capacity(8)).await;
            ///     assert_eq!(&buf[..res?], b"hi");
            ///     Ok::<(), std::io::Error>(())
            /// })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn read_owned<B: IoBufMut>(
                &self,
                buf: B,
            ) -> impl std::future::Future<Output = BufResult<usize, B>> + Send + '_ {
                self.inner.read_owned(buf)
            }

            #[doc = concat!("[`", stringify!($Stream), "::try_read`] on this half: never waits.")]
            ///
            /// # Errors
            ///
            /// `WouldBlock` when nothing is queued; the OS error of `recv`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($idle),+)]
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

            #[doc = concat!("[`", stringify!($Stream), "::peek`] on this half: reads without")]
            /// consuming.
            ///
            /// # Errors
            ///
            /// The OS error of `recv(MSG_PEEK)`.
            ///
            /// # Examples
            ///
            /// ```
            /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($connected),+)]
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

            #[doc = concat!("[`", stringify!($Stream), "::readable`] on this half.")]
            ///
            /// # Errors
            ///
            /// If the runtime shut down.
            ///
            /// # Examples
            ///
            /// ```
            /// use ebbtide::io::AsyncWriteExt;
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($connected),+)]
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

            addr_methods! {
                half: rd,
                addr: $Addr,
                net_use: $net_use,
                set_up: [$($idle),+],
                split: "let (rd, _wr) = client.into_split();",
                local: $local_addr,
                peer: $peer_addr,
            }
        }

        impl OwnedWriteHalf {
            /// Puts the stream back together with its read half.
            ///
            /// # Errors
            ///
            /// [`ReuniteError`] (with both halves) if `read` comes from
            /// another stream.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($idle),+)]
            ///     let (rd, wr) = client.into_split();
            ///     let client = wr.reunite(rd).expect("same stream");
            ///     client.peer_addr()?; // still connected
            ///     Ok::<(), std::io::Error>(())
            /// })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn reunite(self, read: OwnedReadHalf) -> Result<$Stream, ReuniteError> {
                reunite(read, self)
            }

            /// Drops the half *without* shutting down the write direction:
            /// the connection stays fully open while the read half lives.
            ///
            /// # Examples
            ///
            /// ```
            /// use ebbtide::io::AsyncWriteExt;
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($connected),+)]
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

            #[doc = concat!("[`", stringify!($Stream), "::write_owned`] on this half.")]
            ///
            /// # Errors
            ///
            #[doc = concat!("As for [`", stringify!($Stream), "::write_owned`].")]
            ///
            /// # Examples
            ///
            /// ```
            /// use ebbtide::io::BufResult;
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($idle),+)]
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

            #[doc = concat!("[`", stringify!($Stream), "::write_all_owned`] on this half.")]
            ///
            /// # Errors
            ///
            #[doc = concat!("As for [`", stringify!($Stream), "::write_all_owned`].")]
            ///
            /// # Examples
            ///
            /// ```
            /// use ebbtide::io::BufResult;
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($idle),+)]
            ///     let (_rd, wr) = client.into_split();
            ///     let BufResult(res, _buf) = wr.write_all_owned(b"hello".to_vec()).await;
            ///     res?;
            ///     Ok::<(), std::io::Error>(())
            /// })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn write_all_owned<B: IoBuf>(
                &self,
                buf: B,
            ) -> impl std::future::Future<Output = BufResult<(), B>> + Send + '_ {
                self.inner.write_all_owned(buf)
            }

            #[doc = concat!("[`", stringify!($Stream), "::try_write`] on this half: never waits.")]
            ///
            /// # Errors
            ///
            /// `WouldBlock` when the send queue is full; the OS error of
            /// `send`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($idle),+)]
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

            #[doc = concat!("[`", stringify!($Stream), "::writable`] on this half.")]
            ///
            /// # Errors
            ///
            /// If the runtime shut down.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $net_use]
            ///
            /// ebbtide::block_on(async {
            #[doc = indented!($($idle),+)]
            ///     let (_rd, wr) = client.into_split();
            ///     wr.writable().await?; // an idle connection is writable
            ///     Ok::<(), std::io::Error>(())
            /// })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub async fn writable(&self) -> io::Result<()> {
                self.inner.writable().await
            }

            addr_methods! {
                half: wr,
                addr: $Addr,
                net_use: $net_use,
                set_up: [$($idle),+],
                split: "let (_rd, wr) = client.into_split();",
                local: $local_addr,
                peer: $peer_addr,
            }
        }

        impl Drop for OwnedWriteHalf {
            fn drop(&mut self) {
                if self.shutdown_on_drop {
                    // Step 2. `NotConnected` (the peer reset it) leaves
                    // nothing to do.
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

            fn poll_close(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                let res = std::task::ready!(Pin::new(&mut &*self.inner).poll_close(cx));
                if res.is_ok() {
                    self.shutdown_on_drop = false; // done already
                }
                Poll::Ready(res)
            }
        }

        #[doc = concat!("The borrowed read half of a [`", stringify!($Stream), "`], from")]
        #[doc = concat!("[`", stringify!($Stream), "::split`]: implements `AsyncRead`.")]
        ///
        /// # Examples
        ///
        /// ```
        /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
        #[doc = $net_use]
        ///
        /// ebbtide::block_on(async {
        #[doc = indented!($($connected_mut),+)]
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
            stream: &'a $Stream,
        }

        #[doc = concat!("The borrowed write half of a [`", stringify!($Stream), "`], from")]
        #[doc = concat!("[`", stringify!($Stream), "::split`]: implements `AsyncWrite` (closing it")]
        /// shuts down the write direction; dropping it does nothing).
        ///
        /// # Examples
        ///
        /// ```
        /// use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
        #[doc = $net_use]
        ///
        /// ebbtide::block_on(async {
        #[doc = indented!($($connected_mut),+)]
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
            stream: &'a $Stream,
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
    };
}

/// The halves of a `TcpStream`, public as `net::tcp`.
pub(crate) mod tcp {
    use crate::net::TcpStream;

    stream_halves! {
        stream: TcpStream,
        addr: std::net::SocketAddr,
        net_use: "use ebbtide::net::{TcpListener, TcpStream};",
        connected: [
            r#"let listener = TcpListener::bind("127.0.0.1:0").await?;"#,
            "let client = TcpStream::connect(listener.local_addr()?).await?;",
            "let (mut server, _) = listener.accept().await?;",
        ],
        connected_mut: [
            r#"let listener = TcpListener::bind("127.0.0.1:0").await?;"#,
            "let mut client = TcpStream::connect(listener.local_addr()?).await?;",
            "let (mut server, _) = listener.accept().await?;",
        ],
        idle: [
            r#"let listener = TcpListener::bind("127.0.0.1:0").await?;"#,
            "let client = TcpStream::connect(listener.local_addr()?).await?;",
        ],
        two: [
            r#"let listener = TcpListener::bind("127.0.0.1:0").await?;"#,
            "let a = TcpStream::connect(listener.local_addr()?).await?;",
            "let b = TcpStream::connect(listener.local_addr()?).await?;",
        ],
        local_addr: "assert!(addr.ip().is_loopback());",
        peer_addr: "assert_eq!(addr, listener.local_addr()?);",
    }
}

/// The halves of a `UnixStream`, public as `net::unix`.
#[cfg(unix)]
pub(crate) mod unix {
    use crate::net::UnixStream;

    stream_halves! {
        stream: UnixStream,
        addr: std::os::unix::net::SocketAddr,
        net_use: "use ebbtide::net::UnixStream;",
        connected: ["let (client, mut server) = UnixStream::pair()?;"],
        connected_mut: ["let (mut client, mut server) = UnixStream::pair()?;"],
        idle: ["let (client, _server) = UnixStream::pair()?;"],
        two: [
            "let (a, _a_peer) = UnixStream::pair()?;",
            "let (b, _b_peer) = UnixStream::pair()?;",
        ],
        local_addr: "assert!(addr.is_unnamed()); // a `pair` has no names",
        peer_addr: "assert!(addr.is_unnamed()); // a `pair` has no names",
    }
}
