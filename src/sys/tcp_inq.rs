//! Linux `TCP_INQ`: a TCP read that also says whether it emptied the
//! receive queue, so the next read need not try a `recv` that would fail.
//!
//! # Protocol
//!
//! 1. Every ebbtide TCP stream asks for the hint once, when it is made
//!    ([`enable`]: `setsockopt(SOL_TCP, TCP_INQ, 1)`, Linux 4.18+). Where
//!    the kernel refuses, nothing else changes: reads just get no hint.
//! 2. A stream read that asks for the hint is one `recvmsg` ([`recv`])
//!    with room for one control message; the caller asks only when the
//!    stream's previous read filled its buffer (`reactor::source` step 7),
//!    and otherwise reads with a plain `recv`, which costs less (measured
//!    in `docs/benchmarks.md`, "HTTP"): a short read proves the queue
//!    empty without a hint. With `TCP_INQ` on, the kernel appends `TCP_CM_INQ`: the bytes
//!    left in the receive queue *after* this read, measured after the
//!    socket lock is released (so data that arrived during the copy
//!    counts). After the peer's FIN it reports at least 1, so a reader is
//!    never told "drained" while an end-of-file is still to be read.
//! 3. The caller treats `Some(0)` as it treats a short read
//!    (`reactor::source` step 6): the queue was empty at that instant, so
//!    anything that arrives later makes a new edge-triggered event, and the
//!    next read can wait for it instead of trying first. A full read with
//!    no hint (`None`) or a non-zero hint proves nothing and changes nothing.
//!
//! What it saves: without it, a reader that asks for exactly the bytes that
//! came (a `read_exact` of a whole message, the echo client) pays one
//! `recv` failing with `EAGAIN` before each wait.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Asks the OS to report, with each read of `stream`, how many bytes are
/// still queued (step 1). If the kernel refuses, reads carry no hint.
pub(crate) fn tcp_enable_queue_hint(stream: &TcpStream) {
    let _ = enable(stream.as_fd());
}

/// One read from `stream` into `buf`: the bytes read and, when `hint` is
/// asked for (after [`tcp_enable_queue_hint`]), how many are still queued;
/// without it, one plain `recv` and no count (step 2).
pub(crate) fn tcp_recv(
    stream: &TcpStream,
    buf: &mut [MaybeUninit<u8>],
    hint: bool,
) -> io::Result<(usize, Option<usize>)> {
    if hint {
        recv(stream.as_fd(), buf)
    } else {
        Ok((socket2::SockRef::from(stream).recv(buf)?, None))
    }
}

/// Step 1: asks the kernel to report the receive queue after each
/// `recvmsg`. Returns whether it agreed.
pub(crate) fn enable(sock: BorrowedFd<'_>) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: passes a live `c_int` and its size; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_INQ,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// Room for one control message carrying a `c_int`, aligned for `cmsghdr`.
#[repr(C)]
struct Control {
    _align: [libc::cmsghdr; 0],
    bytes: [u8; 64],
}

/// Step 2: one `recvmsg` into `buf`; returns the bytes read and, when the
/// kernel sent it, how many bytes are still queued.
pub(crate) fn recv(
    sock: BorrowedFd<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> io::Result<(usize, Option<usize>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = Control {
        _align: [],
        bytes: [0; 64],
    };
    // SAFETY: all-zero is a valid `msghdr` (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes.as_mut_ptr().cast();
    msg.msg_controllen = control.bytes.len() as _;
    // SAFETY: `msg` points at `iov` (describing `buf`, which the kernel may
    // fill with initialized bytes) and at `control`, all live for the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut inq = None;
    // SAFETY: the kernel set `msg_controllen` to the bytes it wrote into
    // `control`; the CMSG_* helpers walk only within that length, and a
    // `TCP_CM_INQ` message carries one `c_int` (read unaligned, as
    // CMSG_DATA promises no alignment).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_TCP && (*cmsg).cmsg_type == libc::TCP_CM_INQ {
                let v = libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned();
                inq = usize::try_from(v).ok();
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok((n as usize, inq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// Blocks until `n` bytes are readable on `s` (the test's writes are
    /// on loopback, so they arrive almost at once).
    fn wait_queued(s: &std::net::TcpStream, n: usize) {
        let mut peek = [0u8; 64];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while s.peek(&mut peek).unwrap() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "loopback data never came"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_hint_reports_what_is_left_after_each_read() {
        let (mut a, b) = pair();
        assert!(
            enable(b.as_fd()),
            "TCP_INQ refused: this kernel is older than 4.18"
        );
        a.write_all(b"hello world").unwrap();
        wait_queued(&b, 11);
        let mut buf = [MaybeUninit::uninit(); 5];
        assert_eq!(recv(b.as_fd(), &mut buf).unwrap(), (5, Some(6)));
        let mut buf = [MaybeUninit::uninit(); 6];
        assert_eq!(recv(b.as_fd(), &mut buf).unwrap(), (6, Some(0)));
    }

    #[test]
    fn after_the_peer_closes_the_hint_is_never_zero() {
        let (mut a, b) = pair();
        assert!(enable(b.as_fd()));
        a.write_all(b"bye").unwrap();
        drop(a);
        // Wait until the FIN has come (POLLRDHUP), with the data still queued.
        let mut pfd = libc::pollfd {
            fd: b.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one live `pollfd`.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, 30_000) };
        assert_eq!(rc, 1, "the FIN never came");
        let mut buf = [MaybeUninit::uninit(); 8];
        let (n, inq) = recv(b.as_fd(), &mut buf).unwrap();
        assert_eq!(n, 3);
        assert_eq!(inq, Some(1), "after a FIN the hint must say: read again");
        assert_eq!(recv(b.as_fd(), &mut buf).unwrap().0, 0, "then end-of-file");
    }

    #[test]
    fn without_the_option_there_is_no_hint() {
        let (mut a, b) = pair();
        a.write_all(b"x").unwrap();
        wait_queued(&b, 1);
        let mut buf = [MaybeUninit::uninit(); 8];
        assert_eq!(recv(b.as_fd(), &mut buf).unwrap(), (1, None));
    }
}
