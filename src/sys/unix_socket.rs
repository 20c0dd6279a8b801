//! Unix-domain socket addresses that only some systems have: Linux's (and
//! Android's) abstract namespace.

use std::io;
use std::os::unix::net::SocketAddr;

use socket2::SockAddr;

#[cfg(target_os = "android")]
use std::os::android::net::SocketAddrExt;
#[cfg(target_os = "linux")]
use std::os::linux::net::SocketAddrExt;

/// `addr` as std's address type if it is in the abstract namespace; `None`
/// for any other address.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn abstract_unix_addr(addr: &SockAddr) -> Option<io::Result<SocketAddr>> {
    addr.as_abstract_namespace()
        .map(SocketAddr::from_abstract_name)
}

/// `None`: this system has no abstract namespace.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn abstract_unix_addr(_: &SockAddr) -> Option<io::Result<SocketAddr>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pathname_address_is_not_abstract() {
        let addr = SockAddr::unix("/tmp/ebbtide-not-abstract.sock").unwrap();
        assert!(abstract_unix_addr(&addr).is_none());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn an_abstract_address_keeps_its_name() {
        let addr = SockAddr::unix("\0ebbtide-abstract").unwrap();
        let std_addr = abstract_unix_addr(&addr)
            .expect("an abstract address")
            .unwrap();
        assert_eq!(std_addr.as_abstract_name(), Some(&b"ebbtide-abstract"[..]));
    }
}
