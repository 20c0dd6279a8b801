//! `ebbtide::net` TCP streams: data arrives intact with both the
//! `futures-io` and the owned-buffer APIs, owned buffers keep their
//! semantics (spare capacity, returned on error), the write half closes
//! cleanly, options and std conversions work, and a read that drained the
//! receive queue never hides data or end-of-file that comes after it.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::net::{checksum, pattern, tcp_pair, tcp_with_std_peer};
use common::{watchdog, Flavour};
use ebbtide::io::{AsyncReadExt, AsyncWriteExt, BufResult, IoBuf};
use ebbtide::net::{TcpListener, TcpStream, UdpSocket};

/// Echo payload sizes: empty, tiny, odd, past a socket buffer, 1 MiB.
const SIZES: [usize; 5] = [0, 1, 4097, 65_536 + 13, 1 << 20];

#[derive(Clone, Copy, Debug)]
enum Api {
    FuturesIo,
    Owned,
}

/// Echoes one connection until end-of-file, then closes it.
async fn echo_server(stream: TcpStream, api: Api) {
    match api {
        Api::FuturesIo => {
            let mut s = stream;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        }
        Api::Owned => {
            let mut buf = Vec::with_capacity(16 * 1024);
            loop {
                buf.clear();
                let BufResult(res, b) = stream.read_owned(buf).await;
                buf = b;
                if res.unwrap() == 0 {
                    break;
                }
                let BufResult(res, b) = stream.write_all_owned(buf).await;
                buf = b;
                res.unwrap();
            }
        }
    }
}

/// Sends `data` from one task while reading the echo on another through
/// the same `&TcpStream`; returns what came back.
async fn echo_client(addr: SocketAddr, data: Vec<u8>, api: Api) -> Vec<u8> {
    let stream = Arc::new(TcpStream::connect(addr).await.unwrap());
    stream.set_nodelay(true).unwrap();
    let w = stream.clone();
    let writer = ebbtide::spawn(async move {
        match api {
            Api::FuturesIo => {
                let mut w = &*w;
                w.write_all(&data).await.unwrap();
                w.close().await.unwrap(); // shuts down the write half
            }
            Api::Owned => {
                for chunk in data.chunks(50_000) {
                    let BufResult(res, _) = w.write_all_owned(chunk.to_vec()).await;
                    res.unwrap();
                }
                w.shutdown(Shutdown::Write).unwrap();
            }
        }
    });
    let got = match api {
        Api::FuturesIo => {
            let mut got = Vec::new();
            (&*stream).read_to_end(&mut got).await.unwrap();
            got
        }
        Api::Owned => {
            let mut got = Vec::new();
            loop {
                got.reserve(32 * 1024);
                let BufResult(res, g) = stream.read_owned(got).await;
                got = g;
                if res.unwrap() == 0 {
                    break;
                }
            }
            got
        }
    };
    writer.await.unwrap();
    got
}

fn tcp_echo(flavour: &Flavour, api: Api) {
    flavour.rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = ebbtide::spawn(async move {
            for _ in 0..SIZES.len() {
                let (s, _) = listener.accept().await.unwrap();
                ebbtide::spawn(echo_server(s, api));
            }
        });
        let clients: Vec<_> = SIZES
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let data = pattern(i, len);
                let want = checksum(&data);
                let h = ebbtide::spawn(echo_client(addr, data, api));
                (len, want, h)
            })
            .collect();
        for (len, want, h) in clients {
            let got = h.await.unwrap();
            assert_eq!(got.len(), len, "{} {api:?}: echoed length", flavour.name);
            assert_eq!(checksum(&got), want, "{} {api:?}: checksum", flavour.name);
        }
        server.await.unwrap();
    });
}

#[test]
fn tcp_echo_with_futures_io_returns_exactly_what_was_sent() {
    watchdog(|| {
        for f in [Flavour::current_thread(), Flavour::workers(2)] {
            tcp_echo(&f, Api::FuturesIo);
        }
    });
}

#[test]
fn tcp_echo_with_owned_buffers_returns_exactly_what_was_sent() {
    watchdog(|| {
        for f in [Flavour::current_thread(), Flavour::workers(2)] {
            tcp_echo(&f, Api::Owned);
        }
    });
}

#[test]
fn owned_read_fills_spare_capacity_and_an_empty_one_reads_zero_at_once() {
    watchdog(|| {
        ebbtide::block_on(async {
            let (a, b) = tcp_pair().await;
            // No spare capacity: Ok(0) at once, although nothing was sent.
            let full = b"ab".to_vec().into_boxed_slice().into_vec();
            assert_eq!(full.len(), full.capacity());
            let BufResult(res, full) = b.read_owned(full).await;
            assert_eq!(res.unwrap(), 0);
            assert_eq!(full, b"ab");

            let BufResult(res, _) = a.write_all_owned("hello").await;
            res.unwrap();
            // Reads append after the initialized bytes.
            let mut buf = Vec::with_capacity(64);
            buf.extend_from_slice(b">>");
            let mut n = 0;
            while n < 5 {
                let BufResult(res, b2) = b.read_owned(buf).await;
                buf = b2;
                n += res.unwrap();
            }
            assert_eq!(buf, b">>hello");

            // A slice reads into its range of the buffer.
            let BufResult(res, _) = a.write_all_owned(b"xyz".to_vec()).await;
            res.unwrap();
            let BufResult(res, s) = b.read_owned(Vec::with_capacity(8).slice(0..3)).await;
            let n = res.unwrap();
            assert_eq!(&s.into_inner()[..], &b"xyz"[..n]);
        });
    });
}

/// tokio's `write_all` scenario (`tests/io_write_all.rs`: a writer that
/// takes a few bytes per call) on a real socket: with both socket buffers
/// shrunk to 16 KiB, an 8 MiB `write_all_owned` stops part-way on
/// `WouldBlock` hundreds of times while its reader sleeps and then reads.
/// Each time it must resume where the kernel stopped: the reader gets every
/// byte once, in order, and the writer gets its whole buffer back.
#[test]
fn write_all_owned_resumes_where_each_partial_write_stopped() {
    watchdog(|| {
        for f in [Flavour::current_thread(), Flavour::workers(2)] {
            f.rt.block_on(async {
                let (a, b) = tcp_pair().await;
                a.set_send_buffer_size(16 * 1024).unwrap();
                b.set_recv_buffer_size(16 * 1024).unwrap();
                let len = 8 << 20;
                let data = pattern(7, len);
                let want = checksum(&data);
                let writer = ebbtide::spawn(async move {
                    let BufResult(res, buf) = a.write_all_owned(data).await;
                    res.unwrap();
                    a.shutdown(Shutdown::Write).unwrap();
                    buf.len()
                });
                // The writer fills both buffers and waits before any read.
                ebbtide::time::sleep(Duration::from_millis(20)).await;
                let mut got = Vec::with_capacity(len);
                loop {
                    got.reserve(8 * 1024);
                    let BufResult(res, g) = b.read_owned(got).await;
                    got = g;
                    if res.unwrap() == 0 {
                        break;
                    }
                }
                assert_eq!(
                    writer.await.unwrap(),
                    len,
                    "{}: the buffer came back whole",
                    f.name
                );
                assert_eq!(got.len(), len, "{}: bytes received", f.name);
                assert_eq!(
                    checksum(&got),
                    want,
                    "{}: every byte once, in order",
                    f.name
                );
            });
        }
    });
}

#[test]
fn write_all_owned_returns_the_buffer_on_error() {
    watchdog(|| {
        ebbtide::block_on(async {
            let (a, b) = tcp_pair().await;
            b.set_linger(Some(Duration::ZERO)).unwrap();
            drop(b); // reset: later sends fail
            let payload = vec![7u8; 256 * 1024];
            let ptr = payload.as_ptr();
            let mut buf = payload;
            let err = loop {
                let BufResult(res, b) = a.write_all_owned(buf).await;
                buf = b;
                if let Err(e) = res {
                    break e;
                }
            };
            assert!(
                matches!(
                    err.kind(),
                    std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                ),
                "{err:?}"
            );
            assert_eq!(buf.as_ptr(), ptr, "the same buffer came back");
            assert_eq!(buf.len(), 256 * 1024);
        });
    });
}

#[test]
fn close_shuts_down_the_write_half_and_the_peer_reads_eof() {
    watchdog(|| {
        ebbtide::block_on(async {
            let (mut a, b) = tcp_pair().await;
            a.write_all(b"last").await.unwrap();
            a.close().await.unwrap();
            let mut got = Vec::new();
            (&b).read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"last");
            // The other direction still works.
            (&b).write_all(b"reply").await.unwrap();
            let mut r = [0u8; 5];
            a.read_exact(&mut r).await.unwrap();
            assert_eq!(&r, b"reply");
        });
    });
}

/// A connection the peer reset is already gone: shutting down our write half
/// has nothing left to do, and is not the closer's error. The explicit
/// `shutdown` still reports the OS error.
#[test]
fn close_after_peer_reset_is_ok() {
    watchdog(|| {
        ebbtide::block_on(async {
            let (mut a, b) = tcp_pair().await;
            b.set_linger(Some(Duration::ZERO)).unwrap();
            drop(b); // sends RST
            let mut buf = [0u8; 8];
            // Linux reports the reset; Wine's Winsock reports an EOF.
            let read = a.read(&mut buf).await;
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
            // Where the OS says so, the reset left nothing to shut down:
            // this is the error `close` must not return.
            #[cfg(unix)]
            assert_eq!(
                a.shutdown(Shutdown::Write).unwrap_err().kind(),
                std::io::ErrorKind::NotConnected
            );
            a.close().await.unwrap();
            (&a).close().await.unwrap();
        });
    });
}

#[test]
fn socket_options_and_addresses_are_reported() {
    watchdog(|| {
        ebbtide::block_on(async {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let client = TcpStream::connect(addr).await.unwrap();
            let (server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
            assert_eq!(client.peer_addr().unwrap(), addr);
            client.set_nodelay(true).unwrap();
            assert!(client.nodelay().unwrap());
            client.set_ttl(42).unwrap();
            assert_eq!(client.ttl().unwrap(), 42);
            listener.set_ttl(33).unwrap();
            assert_eq!(listener.ttl().unwrap(), 33);
        });
    });
}

#[test]
fn std_sockets_convert_both_ways() {
    watchdog(|| {
        ebbtide::block_on(async {
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let listener = TcpListener::try_from(std_listener).unwrap();
            let addr = listener.local_addr().unwrap();
            let std_client = std::net::TcpStream::connect(addr).unwrap();
            let client = TcpStream::try_from(std_client).unwrap();
            let (server, _) = listener.accept().await.unwrap();

            let mut server = server.into_std().unwrap();
            server.set_nonblocking(false).unwrap();
            (&client).write_all(b"to std").await.unwrap();
            let mut buf = [0u8; 6];
            server.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"to std");
            let back = TcpStream::try_from(server).unwrap();
            (&back).write_all(b"back").await.unwrap();
            let mut buf = [0u8; 4];
            (&client).read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"back");
            let _ = listener.into_std().unwrap();

            let udp =
                UdpSocket::try_from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
            let addr = udp.local_addr().unwrap();
            assert_eq!(udp.into_std().unwrap().local_addr().unwrap(), addr);
        });
    });
}

#[test]
fn a_short_read_then_eof_is_seen_whether_the_fin_came_with_the_data_or_later() {
    // `reactor::source` step 6: after a short stream read, the next read
    // waits for an event instead of trying `recv`. Data and FIN often come
    // in one edge: the reader must still see EOF, not wait forever.
    watchdog(|| {
        common::current_thread().block_on(async {
            for fin_with_data in [true, false] {
                // futures-io
                let (mut s, mut peer) = tcp_with_std_peer().await;
                peer.write_all(b"0123456789").unwrap();
                if fin_with_data {
                    peer.shutdown(Shutdown::Write).unwrap();
                    // Both are queued before the reader's first poll.
                    ebbtide::time::sleep(Duration::from_millis(20)).await;
                }
                let mut buf = [0u8; 64];
                let mut got = 0;
                while got < 10 {
                    let n = s.read(&mut buf[got..]).await.unwrap();
                    assert!(n > 0, "EOF before the data");
                    got += n;
                }
                assert_eq!(&buf[..10], b"0123456789");
                let late = std::thread::spawn(move || {
                    if !fin_with_data {
                        std::thread::sleep(Duration::from_millis(20));
                        peer.shutdown(Shutdown::Write).unwrap();
                    }
                    peer
                });
                assert_eq!(
                    s.read(&mut buf).await.unwrap(),
                    0,
                    "EOF (fin with data: {fin_with_data})"
                );
                drop(late.join().unwrap());

                // owned buffers
                let (s, mut peer) = tcp_with_std_peer().await;
                peer.write_all(b"abc").unwrap();
                if fin_with_data {
                    peer.shutdown(Shutdown::Write).unwrap();
                    ebbtide::time::sleep(Duration::from_millis(20)).await;
                }
                let BufResult(n, b) = s.read_owned(Vec::with_capacity(64)).await;
                assert_eq!((n.unwrap(), &b[..]), (3, &b"abc"[..]));
                let late = std::thread::spawn(move || {
                    if !fin_with_data {
                        std::thread::sleep(Duration::from_millis(20));
                        peer.shutdown(Shutdown::Write).unwrap();
                    }
                    peer
                });
                let BufResult(n, _) = s.read_owned(Vec::with_capacity(64)).await;
                assert_eq!(n.unwrap(), 0, "owned EOF (fin with data: {fin_with_data})");
                drop(late.join().unwrap());
            }
        });
    });
}

#[test]
fn a_short_read_does_not_hide_data_that_arrives_after_it() {
    // Step 6 again: many small writes, each read short; every byte arrives
    // (a lost edge would hang under the watchdog).
    watchdog(|| {
        common::current_thread().block_on(async {
            let (mut s, mut peer) = tcp_with_std_peer().await;
            let writer = std::thread::spawn(move || {
                for i in 0..2_000u32 {
                    peer.write_all(&i.to_le_bytes()).unwrap();
                    if i % 100 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                peer
            });
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            while all.len() < 8_000 {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                all.extend_from_slice(&buf[..n]);
            }
            let expect: Vec<u8> = (0..2_000u32).flat_map(|i| i.to_le_bytes()).collect();
            assert_eq!(all, expect);
            drop(writer.join().unwrap());
        });
    });
}

/// An ebbtide stream and its std peer, the ebbtide side made by `how`:
/// 0 accepted, 1 connected, 2 `TcpStream::try_from` (each enables the
/// receive-queue hint on its own path).
async fn tcp_made_by(how: u8) -> (TcpStream, std::net::TcpStream) {
    match how {
        0 => tcp_with_std_peer().await,
        1 => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let s = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            (s, l.accept().unwrap().0)
        }
        _ => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let std_s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            (TcpStream::try_from(std_s).unwrap(), l.accept().unwrap().0)
        }
    }
}

#[test]
fn a_read_that_fills_its_buffer_skips_the_next_recv_only_when_the_queue_is_empty() {
    // `reactor::source` step 6 with the Linux receive-queue hint
    // (`sys::tcp_inq`): a read that fills its buffer exactly and leaves
    // nothing queued lets the next read wait for an event; one that leaves
    // bytes queued must not (the event for them already came: waiting
    // would hang). Data, FIN with the data and FIN later are all seen.
    watchdog(|| {
        common::current_thread().block_on(async {
            for how in 0..3u8 {
                // Bytes left behind a full read: read at once, no new edge.
                let (mut s, mut peer) = tcp_made_by(how).await;
                peer.write_all(b"0123456789abcdefghij").unwrap();
                ebbtide::time::sleep(Duration::from_millis(20)).await;
                let mut buf = [0u8; 10];
                s.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"0123456789");
                s.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"abcdefghij", "made by {how}");
                let BufResult(n, b) = {
                    peer.write_all(b"klm").unwrap();
                    ebbtide::time::sleep(Duration::from_millis(20)).await;
                    s.read_owned(Vec::with_capacity(2)).await
                };
                assert_eq!(
                    (n.unwrap(), &b[..]),
                    (2, &b"kl"[..]),
                    "owned, made by {how}"
                );
                let BufResult(n, b) = s.read_owned(Vec::with_capacity(1)).await;
                assert_eq!((n.unwrap(), &b[..]), (1, &b"m"[..]), "owned, made by {how}");

                // The queue emptied by a full read: later data and EOF come.
                for fin_with_data in [true, false] {
                    let (mut s, mut peer) = tcp_made_by(how).await;
                    peer.write_all(b"0123456789").unwrap();
                    if fin_with_data {
                        peer.shutdown(Shutdown::Write).unwrap();
                        ebbtide::time::sleep(Duration::from_millis(20)).await;
                    }
                    s.read_exact(&mut buf).await.unwrap();
                    let late = std::thread::spawn(move || {
                        if !fin_with_data {
                            std::thread::sleep(Duration::from_millis(20));
                            peer.write_all(b"later").unwrap();
                            peer.shutdown(Shutdown::Write).unwrap();
                        }
                        peer
                    });
                    let mut rest = Vec::new();
                    s.read_to_end(&mut rest).await.unwrap();
                    let expect: &[u8] = if fin_with_data { b"" } else { b"later" };
                    assert_eq!(
                        rest, expect,
                        "made by {how}, fin with data: {fin_with_data}"
                    );
                    drop(late.join().unwrap());
                }
            }
        });
    });
}

#[cfg(target_os = "linux")]
#[test]
fn a_stream_read_asks_for_the_queue_hint_only_after_a_read_that_filled_its_buffer() {
    // `reactor::source` step 7: reads are plain `recv`s until one fills
    // its buffer; the next asks for the receive-queue hint (`recvmsg`).
    // In a child whose `recvmsg` fails with `EOPNOTSUPP` (seccomp), the
    // call each read made shows in its result.
    use common::child::{run_test_in_child, seccomp};
    const CHILD: &str = "EBBTIDE_TEST_QUEUE_HINT_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = run_test_in_child(
            "a_stream_read_asks_for_the_queue_hint_only_after_a_read_that_filled_its_buffer",
            CHILD,
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("child: recvmsg only after a full read")
        );
        return;
    }
    watchdog(|| {
        seccomp::install(&[
            seccomp::load(0),
            seccomp::unless_eq(libc::SYS_recvmsg as u32, 1),
            seccomp::fail(libc::EOPNOTSUPP),
            seccomp::allow(),
        ]);
        common::current_thread().block_on(async {
            let (mut s, mut peer) = tcp_with_std_peer().await;
            let mut big = [0u8; 64];
            for _ in 0..3 {
                // Short reads: plain `recv`s.
                peer.write_all(b"hello").unwrap();
                let n = s.read(&mut big).await.expect("a short read uses recv");
                assert_eq!(&big[..n], b"hello");
            }
            // A read that fills its buffer, still a `recv`...
            peer.write_all(b"0123456789").unwrap();
            let mut ten = [0u8; 10];
            s.read_exact(&mut ten)
                .await
                .expect("a first full read uses recv");
            assert_eq!(&ten, b"0123456789");
            // ...so the next asks for the hint: `recvmsg`, refused here.
            peer.write_all(b"x").unwrap();
            let err = s
                .read(&mut big)
                .await
                .expect_err("after a full read: recvmsg");
            assert_eq!(err.raw_os_error(), Some(libc::EOPNOTSUPP));
        });
    });
    println!("child: recvmsg only after a full read");
}
