//! UDP: [`UdpSocket`].

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::addr::{each_addr, resolve};
use super::socket::{self, raw_handle_traits, register, Direction};
use super::ToSocketAddrs;
use crate::io::{Async, BufResult, IoBuf, IoBufMut};

/// A UDP socket.
///
/// Unconnected, it sends to and receives from any address
/// ([`send_to`](Self::send_to), [`recv_from`](Self::recv_from));
/// after [`connect`](Self::connect), [`send`](Self::send) and
/// [`recv`](Self::recv) use the one peer. Each has an owned-buffer form.
/// Methods take `&self`: one task may receive while another sends.
///
/// A datagram longer than the buffer is truncated (the rest is lost).
///
/// # Examples
///
/// ```
/// use ebbtide::io::BufResult;
/// use ebbtide::net::UdpSocket;
///
/// ebbtide::block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///
///     a.send_to(b"hi", b.local_addr()?).await?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr()?));
///
///     let BufResult(res, _) = b.send_to_owned(b"owned".to_vec(), from).await;
///     res?;
///     let BufResult(res, buf) = a.recv_from_owned(Vec::with_capacity(64)).await;
///     let (n, _) = res?;
///     assert_eq!(&buf[..n], b"owned");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    io: Async<std::net::UdpSocket>,
    /// Datagrams of receives through the ring whose futures were dropped
    /// (`socket::recv_from_owned`).
    stash: socket::DatagramCell,
}

/// An inet address from `recvfrom`.
fn inet(addr: SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::other("ebbtide: a UDP socket received from a non-IP address"))
}

impl UdpSocket {
    /// Binds a socket to `addr`, trying each resolved address in turn (port
    /// 0 picks a free port).
    ///
    /// # Errors
    ///
    /// Outside a runtime; the last address's error; a failed host-name
    /// lookup.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     assert_ne!(socket.local_addr()?.port(), 0);
    ///     let v4 = UdpSocket::bind(([127, 0, 0, 1], 0)).await?;
    ///     assert!(v4.local_addr()?.is_ipv4());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        socket::ensure_runtime("UdpSocket::bind")?;
        each_addr(&addr, |a| std::future::ready(UdpSocket::bind_addr(a))).await
    }

    fn bind_addr(addr: SocketAddr) -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let io = register(std::net::UdpSocket::from(socket), "UdpSocket::bind")?;
        Ok(UdpSocket {
            io,
            stash: socket::DatagramCell::new(),
        })
    }

    /// Sets the default peer for [`send`](Self::send) and only accepts
    /// datagrams from it, trying each resolved address in turn.
    ///
    /// # Errors
    ///
    /// The last address's error; a failed host-name lookup.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.connect(b.local_addr()?).await?;
    ///     assert_eq!(a.peer_addr()?, b.local_addr()?);
    ///     a.send(b"hi").await?;
    ///     let (n, from) = b.recv_from(&mut [0; 8]).await?;
    ///     assert_eq!((n, from), (2, a.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let io = self.io.get_ref();
        each_addr(&addr, |a| std::future::ready(io.connect(a))).await
    }

    /// Sends `buf` to `target` (its first resolved address, as std does);
    /// returns the bytes sent.
    ///
    /// # Errors
    ///
    /// The OS error of `sendto`; a failed lookup.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropped before completion, nothing was sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     assert_eq!(a.send_to(b"hi", b.local_addr()?).await?, 2);
    ///     let (n, from) = b.recv_from(&mut [0; 8]).await?;
    ///     assert_eq!((n, from), (2, a.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target = resolve(&target).await?.first()?;
        socket::io_with(&self.io, Direction::Write, |s| s.send_to(buf, target)).await
    }

    /// Receives one datagram into `buf`; returns its length and sender.
    ///
    /// # Errors
    ///
    /// The OS error of `recvfrom`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropped before completion, no datagram was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"hi", b.local_addr()?).await?;
    ///     let mut buf = [0; 8];
    ///     let (n, from) = b.recv_from(&mut buf).await?;
    ///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    /// [`recv_from`](Self::recv_from) as a poll function.
    ///
    /// # Errors
    ///
    /// As for [`recv_from`](Self::recv_from).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"hi", b.local_addr()?).await?;
    ///     let mut buf = [0; 8];
    ///     let (n, from) = poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await?;
    ///     assert_eq!((n, from), (2, a.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        socket::poll_io(&self.io, Direction::Read, cx, |s| {
            socket::recv_from_kept(&self.stash, buf, false, inet, |b| s.recv_from(b))
        })
    }

    /// [`send_to`](Self::send_to) to an address, as a poll function.
    ///
    /// # Errors
    ///
    /// As for [`send_to`](Self::send_to).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let to = b.local_addr()?;
    ///     assert_eq!(poll_fn(|cx| a.poll_send_to(cx, b"hi", to)).await?, 2);
    ///     assert_eq!(b.recv_from(&mut [0; 8]).await?.0, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        socket::poll_io(&self.io, Direction::Write, cx, |s| s.send_to(buf, target))
    }

    /// Sends `buf` to the connected peer.
    ///
    /// # Errors
    ///
    /// The OS error of `send` (`NotConnected` before `connect`;
    /// `ConnectionRefused` after an ICMP port-unreachable).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.connect(b.local_addr()?).await?;
    ///     b.connect(a.local_addr()?).await?;
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.connect(b.local_addr()?).await?;
    ///     b.connect(a.local_addr()?).await?;
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

    /// Receives one datagram into `buf`'s spare capacity (growing its
    /// length by the count); returns the count, the sender, and the buffer.
    ///
    /// # Errors
    ///
    /// The OS error of `recvfrom`; `InvalidInput` at once if `buf` has no
    /// spare capacity (reporting a sender would discard a datagram).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe. By readiness (the default), the buffer is dropped with
    /// the future and no datagram was taken. Through the io_uring ring
    /// (`Builder::io_uring_sockets`), the buffer is dropped when the
    /// kernel acknowledges the cancel, and a datagram the kernel delivered
    /// into it before that is kept, with its sender, for the socket's next
    /// receive of any kind (counted in `ops_completed_after_cancel`; a
    /// receive already waiting by readiness sees it with the next datagram
    /// or event).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"hi", b.local_addr()?).await?;
    ///     let BufResult(res, buf) = b.recv_from_owned(Vec::with_capacity(64)).await;
    ///     let (n, from) = res?;
    ///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv_from_owned<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let BufResult(res, buf) = socket::recv_from_owned(&self.io, &self.stash, buf).await;
        BufResult(res.and_then(|(n, from)| Ok((n, inet(from)?))), buf)
    }

    /// Sends `buf`'s initialized bytes to `target` (its first resolved
    /// address); returns the count and the buffer.
    ///
    /// # Errors
    ///
    /// The OS error of `sendto`; a failed lookup.
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let BufResult(res, _buf) = a.send_to_owned(b"hi".to_vec(), b.local_addr()?).await;
    ///     assert_eq!(res?, 2);
    ///     assert_eq!(b.recv(&mut [0; 8]).await?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn send_to_owned<B: IoBuf>(
        &self,
        buf: B,
        target: impl ToSocketAddrs,
    ) -> BufResult<usize, B> {
        let target = match resolve(&target).await.and_then(|a| a.first()) {
            Ok(t) => t,
            Err(e) => return BufResult(Err(e), buf),
        };
        socket::send_to_owned(&self.io, buf, &target.into(), |s, bytes| {
            s.send_to(bytes, target)
        })
        .await
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.connect(b.local_addr()?).await?;
    ///     b.connect(a.local_addr()?).await?;
    ///     a.send(b"hi").await?;
    ///     let BufResult(res, buf) = b.recv_owned(Vec::with_capacity(64)).await;
    ///     assert_eq!(&buf[..res?], b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        socket::recv_owned(&self.io, &self.stash, buf).await
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.connect(b.local_addr()?).await?;
    ///     b.connect(a.local_addr()?).await?;
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

    /// Reads a datagram without taking it from the queue.
    ///
    /// # Errors
    ///
    /// The OS error of `recvfrom(MSG_PEEK)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"hi", b.local_addr()?).await?;
    ///     let mut buf = [0; 8];
    ///     let (n, from) = b.peek_from(&mut buf).await?;
    ///     assert_eq!((n, from), (2, a.local_addr()?));
    ///     assert_eq!(b.recv(&mut buf).await?, 2); // still queued
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        socket::io_with(&self.io, Direction::Read, |s| {
            socket::recv_from_kept(&self.stash, buf, true, inet, |b| s.peek_from(b))
        })
        .await
    }

    /// Sends `buf` to the connected peer if the socket can take it now,
    /// without waiting and without registering interest.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the send buffer is full (it also clears write
    /// readiness, so a following [`writable`](Self::writable) waits); the
    /// OS error of `send`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.connect(b.local_addr()?).await?;
    ///     a.writable().await?;
    ///     assert_eq!(a.try_send(b"hi")?, 2);
    ///     assert_eq!(b.recv(&mut [0; 8]).await?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        socket::try_io(&self.io, Direction::Write, |s| s.send(buf))
    }

    /// Sends `buf` to `target` if the socket can take it now, without
    /// waiting (the target is a resolved address: no lookup here).
    ///
    /// # Errors
    ///
    /// As for [`try_send`](Self::try_send), with `sendto`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.writable().await?;
    ///     assert_eq!(a.try_send_to(b"hi", b.local_addr()?)?, 2);
    ///     let (n, from) = b.recv_from(&mut [0; 8]).await?;
    ///     assert_eq!((n, from), (2, a.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        socket::try_io(&self.io, Direction::Write, |s| s.send_to(buf, target))
    }

    /// Receives a datagram from the connected peer if one is queued now,
    /// without waiting and without registering interest.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when none is queued (it also clears read readiness, so
    /// a following [`readable`](Self::readable) waits for a datagram); the
    /// OS error of `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     b.connect(a.local_addr()?).await?;
    ///     let mut buf = [0; 8];
    ///     assert_eq!(b.try_recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    ///     a.send_to(b"hi", b.local_addr()?).await?;
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"hi", b.local_addr()?).await?;
    ///     let mut buf = [0; 8];
    ///     let (n, from) = loop {
    ///         b.readable().await?;
    ///         match b.try_recv_from(&mut buf) {
    ///             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
    ///             res => break res?,
    ///         }
    ///     };
    ///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        socket::try_io(&self.io, Direction::Read, |s| {
            socket::recv_from_kept(&self.stash, buf, false, inet, |b| s.recv_from(b))
        })
    }

    /// Reads the next datagram and its sender without taking it from the
    /// queue, if one is queued now; never waits.
    ///
    /// # Errors
    ///
    /// As for [`try_recv_from`](Self::try_recv_from), with
    /// `recvfrom(MSG_PEEK)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"hi", b.local_addr()?).await?;
    ///     b.peek_from(&mut [0; 8]).await?; // wait until it is there
    ///     let mut buf = [0; 8];
    ///     assert_eq!(b.try_peek_from(&mut buf)?.0, 2);
    ///     assert_eq!(b.try_recv_from(&mut buf)?.0, 2); // still queued
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        socket::try_io(&self.io, Direction::Read, |s| {
            socket::recv_from_kept(&self.stash, buf, true, inet, |b| s.peek_from(b))
        })
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let ready = socket.ready(Interest::READABLE | Interest::WRITABLE).await?;
    ///     assert!(ready.is_writable() && !ready.is_readable()); // nothing received
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"hi", b.local_addr()?).await?;
    ///     b.readable().await?;
    ///     assert_eq!(b.try_recv_from(&mut [0; 8])?.0, 2);
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.writable().await?;
    ///     assert_eq!(a.try_send_to(b"hi", b.local_addr()?)?, 2);
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     assert!(socket.local_addr()?.ip().is_loopback());
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.connect(b.local_addr()?).await?;
    ///     assert_eq!(a.peer_addr()?, b.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     socket.set_broadcast(true)?;
    ///     assert!(socket.broadcast()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// The `SO_BROADCAST` option.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     assert!(!socket.broadcast()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     socket.set_ttl(42)?;
    ///     assert_eq!(socket.ttl()?, 42);
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     assert!(socket.ttl()? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Joins an IPv4 multicast group on `interface` (`UNSPECIFIED`: the
    /// default one).
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("0.0.0.0:0").await?;
    ///     let group = Ipv4Addr::new(239, 255, 0, 1);
    ///     match socket.join_multicast_v4(group, Ipv4Addr::UNSPECIFIED) {
    ///         Ok(()) => socket.leave_multicast_v4(group, Ipv4Addr::UNSPECIFIED)?,
    ///         // A machine without a multicast route refuses to join.
    ///         Err(e) => eprintln!("no IPv4 multicast here: {e}"),
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().join_multicast_v4(&group, &interface)
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("0.0.0.0:0").await?;
    ///     let group = Ipv4Addr::new(239, 255, 0, 1);
    ///     match socket.join_multicast_v4(group, Ipv4Addr::UNSPECIFIED) {
    ///         Ok(()) => socket.leave_multicast_v4(group, Ipv4Addr::UNSPECIFIED)?,
    ///         // A machine without a multicast route refuses to join.
    ///         Err(e) => eprintln!("no IPv4 multicast here: {e}"),
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v4(&group, &interface)
    }

    /// Joins an IPv6 multicast group on interface index `interface` (0: the
    /// default one).
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x123);
    ///     // Skipped where there is no IPv6.
    ///     if let Ok(socket) = UdpSocket::bind("[::]:0").await {
    ///         match socket.join_multicast_v6(group, 0) {
    ///             Ok(()) => socket.leave_multicast_v6(group, 0)?,
    ///             Err(e) => eprintln!("no IPv6 multicast here: {e}"),
    ///         }
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().join_multicast_v6(&group, interface)
    }

    /// Leaves an IPv6 multicast group.
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x123);
    ///     // Skipped where there is no IPv6.
    ///     if let Ok(socket) = UdpSocket::bind("[::]:0").await {
    ///         match socket.join_multicast_v6(group, 0) {
    ///             Ok(()) => socket.leave_multicast_v6(group, 0)?,
    ///             Err(e) => eprintln!("no IPv6 multicast here: {e}"),
    ///         }
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v6(&group, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`.
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     socket.set_multicast_loop_v4(false)?;
    ///     assert!(!socket.get_ref().multicast_loop_v4()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_multicast_loop_v4(on)
    }

    /// The std socket inside (non-blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let std_socket: &std::net::UdpSocket = socket.get_ref();
    ///     assert_eq!(std_socket.local_addr()?, socket.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std::net::UdpSocket {
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let addr = socket.local_addr()?;
    ///     let std_socket = socket.into_std()?;
    ///     std_socket.set_nonblocking(false)?; // for blocking use
    ///     assert_eq!(std_socket.local_addr()?, addr);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        self.io.into_inner()
    }
}

impl TryFrom<std::net::UdpSocket> for UdpSocket {
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
    /// use ebbtide::net::UdpSocket;
    ///
    /// ebbtide::block_on(async {
    ///     let socket = UdpSocket::try_from(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    ///     assert!(socket.local_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn try_from(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        let io = register(socket, "UdpSocket::try_from")?;
        Ok(UdpSocket {
            io,
            stash: socket::DatagramCell::new(),
        })
    }
}

raw_handle_traits!(UdpSocket);
