//! Address arguments: [`ToSocketAddrs`], and trying each resolved address
//! in turn.
//!
//! Literal addresses (`SocketAddr`, `(IpAddr, u16)`, `"127.0.0.1:80"`,
//! `("::1", 80)`) are parsed on the calling thread. Anything else is a host
//! name, looked up with std's blocking resolver on the runtime's blocking
//! pool so no worker stalls on DNS.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::runtime::context;

/// Values that name one or more socket addresses: the async counterpart of
/// [`std::net::ToSocketAddrs`].
///
/// Implemented for [`SocketAddr`], [`SocketAddrV4`], [`SocketAddrV6`],
/// `(IpAddr, u16)`, `(Ipv4Addr, u16)`, `(Ipv6Addr, u16)`, `([u8; 4], u16)`
/// and `([u16; 8], u16)` (`bind(([127, 0, 0, 1], 0))`), `(&str, u16)`,
/// `(String, u16)`, `str` / `String` (`"host:port"`), `[SocketAddr]`,
/// `[SocketAddr; N]` and `Vec<SocketAddr>`, and references to any of them. Sealed: the set may
/// grow, but other crates cannot add to it.
///
/// Literal IP addresses never leave the calling thread. Host names
/// (`"localhost:8080"`, `("example.com", 443)`) are resolved with
/// [`std::net::ToSocketAddrs`] on the current runtime's blocking pool.
///
/// Functions that take one (`bind`, `connect`) try each resolved address
/// in turn and return the first success, or the last error, as std does.
///
/// # Examples
///
/// ```
/// use std::net::{Ipv4Addr, SocketAddr};
/// use ebbtide::net::UdpSocket;
///
/// ebbtide::block_on(async {
///     // All of these name the same kind of address.
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
///     let c = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
///     let d = UdpSocket::bind(("localhost", 0)).await?; // resolved off the worker
///     for s in [&a, &b, &c, &d] {
///         assert!(s.local_addr()?.ip().is_loopback());
///     }
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait ToSocketAddrs: sealed::Resolve {}

impl<T: sealed::Resolve + ?Sized> ToSocketAddrs for T {}

pub(crate) mod sealed {
    // Public in a private module: nameable by the public `ToSocketAddrs`
    // as its supertrait, not by other crates (the sealed-trait pattern).
    #![allow(unreachable_pub)]

    use std::io;
    use std::net::SocketAddr;

    /// How a [`ToSocketAddrs`](super::ToSocketAddrs) value turns into
    /// addresses.
    ///
    /// # Examples
    ///
    /// This is how the sealed [`ToSocketAddrs`](crate::net::ToSocketAddrs)
    /// works inside; users name the public trait instead:
    ///
    /// ```
    /// use ebbtide::net::{ToSocketAddrs, UdpSocket};
    ///
    /// // Generic over every address form `bind` accepts:
    /// async fn bind_any(addr: impl ToSocketAddrs) -> std::io::Result<UdpSocket> {
    ///     UdpSocket::bind(addr).await
    /// }
    ///
    /// ebbtide::block_on(async {
    ///     let s = bind_any(([127, 0, 0, 1], 0)).await?;
    ///     assert!(s.local_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub trait Resolve: Send + Sync {
        /// The addresses, or the host-name query that finds them.
        fn resolve(&self) -> Resolved;
    }

    /// The outcome of [`Resolve::resolve`].
    ///
    /// # Examples
    ///
    /// This is how the sealed [`ToSocketAddrs`](crate::net::ToSocketAddrs)
    /// works inside; users name the public trait instead:
    ///
    /// ```
    /// use ebbtide::net::{ToSocketAddrs, UdpSocket};
    ///
    /// // Generic over every address form `bind` accepts:
    /// async fn bind_any(addr: impl ToSocketAddrs) -> std::io::Result<UdpSocket> {
    ///     UdpSocket::bind(addr).await
    /// }
    ///
    /// ebbtide::block_on(async {
    ///     let s = bind_any(([127, 0, 0, 1], 0)).await?;
    ///     assert!(s.local_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[derive(Debug)]
    pub enum Resolved {
        /// Known without a lookup.
        Ready(io::Result<Addrs>),
        /// A `"host:port"` string to look up.
        Lookup(String),
        /// A host name and port to look up.
        LookupHost(String, u16),
    }

    /// Resolved addresses, in the order to try them.
    ///
    /// # Examples
    ///
    /// This is how the sealed [`ToSocketAddrs`](crate::net::ToSocketAddrs)
    /// works inside; users name the public trait instead:
    ///
    /// ```
    /// use ebbtide::net::{ToSocketAddrs, UdpSocket};
    ///
    /// // Generic over every address form `bind` accepts:
    /// async fn bind_any(addr: impl ToSocketAddrs) -> std::io::Result<UdpSocket> {
    ///     UdpSocket::bind(addr).await
    /// }
    ///
    /// ebbtide::block_on(async {
    ///     let s = bind_any(([127, 0, 0, 1], 0)).await?;
    ///     assert!(s.local_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[derive(Debug)]
    pub enum Addrs {
        /// The common case, kept off the heap.
        One(SocketAddr),
        /// Several, or a lookup's result.
        Many(Vec<SocketAddr>),
    }
}

use sealed::{Addrs, Resolve, Resolved};

impl Addrs {
    fn into_vec(self) -> Vec<SocketAddr> {
        match self {
            Addrs::One(a) => vec![a],
            Addrs::Many(v) => v,
        }
    }

    /// The first address, or the "resolved to no addresses" error.
    pub(crate) fn first(self) -> io::Result<SocketAddr> {
        match self {
            Addrs::One(a) => Ok(a),
            Addrs::Many(v) => v.into_iter().next().ok_or_else(no_addresses),
        }
    }
}

fn ready(addr: impl Into<SocketAddr>) -> Resolved {
    Resolved::Ready(Ok(Addrs::One(addr.into())))
}

impl Resolve for SocketAddr {
    fn resolve(&self) -> Resolved {
        ready(*self)
    }
}

impl Resolve for SocketAddrV4 {
    fn resolve(&self) -> Resolved {
        ready(*self)
    }
}

impl Resolve for SocketAddrV6 {
    fn resolve(&self) -> Resolved {
        ready(*self)
    }
}

impl Resolve for (IpAddr, u16) {
    fn resolve(&self) -> Resolved {
        ready(*self)
    }
}

impl Resolve for (Ipv4Addr, u16) {
    fn resolve(&self) -> Resolved {
        ready(*self)
    }
}

impl Resolve for (Ipv6Addr, u16) {
    fn resolve(&self) -> Resolved {
        ready(*self)
    }
}

impl Resolve for ([u8; 4], u16) {
    fn resolve(&self) -> Resolved {
        ready(*self)
    }
}

impl Resolve for ([u16; 8], u16) {
    fn resolve(&self) -> Resolved {
        ready(*self)
    }
}

impl Resolve for (&str, u16) {
    fn resolve(&self) -> Resolved {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => ready((ip, port)),
            Err(_) => Resolved::LookupHost(host.to_owned(), port),
        }
    }
}

impl Resolve for (String, u16) {
    fn resolve(&self) -> Resolved {
        (self.0.as_str(), self.1).resolve()
    }
}

impl Resolve for str {
    fn resolve(&self) -> Resolved {
        match self.parse::<SocketAddr>() {
            Ok(addr) => ready(addr),
            Err(_) => Resolved::Lookup(self.to_owned()),
        }
    }
}

impl Resolve for String {
    fn resolve(&self) -> Resolved {
        self.as_str().resolve()
    }
}

impl Resolve for [SocketAddr] {
    fn resolve(&self) -> Resolved {
        Resolved::Ready(Ok(Addrs::Many(self.to_vec())))
    }
}

impl<const N: usize> Resolve for [SocketAddr; N] {
    fn resolve(&self) -> Resolved {
        self.as_slice().resolve()
    }
}

impl Resolve for Vec<SocketAddr> {
    fn resolve(&self) -> Resolved {
        self.as_slice().resolve()
    }
}

impl<T: Resolve + ?Sized> Resolve for &T {
    fn resolve(&self) -> Resolved {
        (**self).resolve()
    }
}

/// The error for a name that resolved to nothing (std's wording).
fn no_addresses() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "could not resolve to any addresses",
    )
}

/// Resolves `addr`: at once for literals, on the blocking pool for names.
///
/// # Errors
///
/// The resolver's error; outside a runtime when a lookup is needed; if the
/// runtime shut down before the lookup ran.
pub(crate) async fn resolve<A: ToSocketAddrs + ?Sized>(addr: &A) -> io::Result<Addrs> {
    let query = match addr.resolve() {
        Resolved::Ready(addrs) => return addrs,
        Resolved::Lookup(s) => Query::Str(s),
        Resolved::LookupHost(host, port) => Query::Host(host, port),
    };
    let shared = context::current("ebbtide::net address lookup")?;
    match shared.spawn_blocking(move || query.run()).await {
        Ok(res) => res.map(Addrs::Many),
        Err(e) => Err(io::Error::other(format!(
            "ebbtide: the address lookup on the blocking pool did not finish: {e}"
        ))),
    }
}

/// Resolves `host` to its socket addresses: a literal address at once, a
/// host name with std's resolver on the runtime's blocking pool (so no
/// worker waits on DNS).
///
/// # Errors
///
/// The resolver's error (an unknown host); a lookup outside a runtime, or
/// after it shut down.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let addrs: Vec<_> = ebbtide::net::lookup_host("localhost:80").await?.collect();
///     assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
///     assert!(!addrs.is_empty());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn lookup_host(host: impl ToSocketAddrs) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(resolve(&host).await?.into_vec().into_iter())
}

/// A host-name lookup, moved to a blocking thread.
enum Query {
    Str(String),
    Host(String, u16),
}

impl Query {
    fn run(self) -> io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs as _;
        match self {
            Query::Str(s) => s.to_socket_addrs().map(Iterator::collect),
            Query::Host(host, port) => (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect),
        }
    }
}

/// Resolves `addr` and calls `f` on each address in turn until one
/// succeeds; returns that, or the last error (std's rule).
///
/// # Errors
///
/// As for [`resolve`]; the last address's error; "could not resolve to any
/// addresses" for an empty list.
pub(crate) async fn each_addr<A, T, F, Fut>(addr: &A, mut f: F) -> io::Result<T>
where
    A: ToSocketAddrs + ?Sized,
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut last = None;
    for a in resolve(addr).await?.into_vec() {
        match f(a).await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(no_addresses))
}
