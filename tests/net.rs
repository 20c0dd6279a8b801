//! `ebbtide::net`: data arrives intact over TCP, UDP and Unix sockets with
//! both the `futures-io` and the owned-buffer APIs; owned buffers are
//! dropped exactly once however a read ends; accept loops survive running
//! out of descriptors; misuse and failures are clear errors.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{watchdog, BufLedger, CountedBuf, Flavour, Rng};
use ebbtide::io::{AsyncReadExt, AsyncWriteExt, BufResult, IoBuf};
use ebbtide::net::{TcpListener, TcpStream, UdpSocket};
use ebbtide::runtime::Runtime;

fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 9) ^ seed) as u8)
        .collect()
}

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
fn address_forms_all_resolve() {
    watchdog(|| {
        ebbtide::block_on(async {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = s.local_addr().unwrap().port();
            let want = SocketAddr::from(([127, 0, 0, 1], port));
            let r = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let dst = r.local_addr().unwrap();
            // Send to `r` naming it every supported way.
            let port = dst.port();
            let ip = Ipv4Addr::LOCALHOST;
            let slice: &[SocketAddr] = &[dst];
            s.send_to(b"1", dst).await.unwrap();
            s.send_to(b"2", (ip, port)).await.unwrap();
            s.send_to(b"3", (std::net::IpAddr::from(ip), port))
                .await
                .unwrap();
            s.send_to(b"4", ("127.0.0.1", port)).await.unwrap();
            s.send_to(b"5", ("127.0.0.1".to_string(), port))
                .await
                .unwrap();
            s.send_to(b"6", format!("127.0.0.1:{port}")).await.unwrap();
            s.send_to(b"7", format!("127.0.0.1:{port}").as_str())
                .await
                .unwrap();
            s.send_to(b"8", slice).await.unwrap();
            s.send_to(b"9", vec![dst]).await.unwrap();
            s.send_to(b"A", std::net::SocketAddrV4::new(ip, port))
                .await
                .unwrap();
            let mut got = Vec::new();
            for _ in 0..10 {
                let mut buf = [0u8; 4];
                let (n, from) = r.recv_from(&mut buf).await.unwrap();
                assert_eq!((n, from), (1, want));
                got.push(buf[0]);
            }
            got.sort();
            assert_eq!(got, b"123456789A");
        });
    });
}

#[test]
fn host_names_resolve_and_each_address_is_tried_in_turn() {
    watchdog(|| {
        ebbtide::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            // "localhost" may resolve to ::1 first (refused) and then
            // 127.0.0.1: connect must go on to the one that works.
            let client = TcpStream::connect(("localhost", port)).await.unwrap();
            let (_server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());

            // A list: the first address is refused, the second accepts.
            let closed = closed_port();
            let list = [closed, listener.local_addr().unwrap()];
            let client = TcpStream::connect(&list[..]).await.unwrap();
            let (_server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());

            // All fail: the last error is returned.
            let err = TcpStream::connect(&[closed, closed][..]).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
            let empty: &[SocketAddr] = &[];
            let err = TcpStream::connect(empty).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

            // bind: the taken address fails, the next one is used.
            let taken = listener.local_addr().unwrap();
            let err = TcpListener::bind(taken).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
            let free = SocketAddr::from(([127, 0, 0, 1], 0));
            let l2 = TcpListener::bind(&[taken, free][..]).await.unwrap();
            assert_ne!(l2.local_addr().unwrap(), taken);
        });
    });
}

/// A loopback address nothing listens on.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    watchdog(|| {
        for f in [Flavour::current_thread(), Flavour::workers(2)] {
            let err =
                f.rt.block_on(TcpStream::connect(closed_port()))
                    .unwrap_err();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{}: {err}",
                f.name
            );
        }
    });
}

#[test]
fn sockets_made_outside_a_runtime_are_a_clear_error() {
    watchdog(|| {
        // A fresh thread: no runtime is current there.
        std::thread::spawn(|| {
            let addr = closed_port();
            let check = |err: std::io::Error| {
                let msg = err.to_string();
                assert!(msg.contains("outside a runtime"), "{msg}");
            };
            check(futures_lite::future::block_on(TcpStream::connect(addr)).unwrap_err());
            check(
                futures_lite::future::block_on(TcpStream::connect(("localhost", 1))).unwrap_err(),
            );
            check(futures_lite::future::block_on(TcpListener::bind("127.0.0.1:0")).unwrap_err());
            check(futures_lite::future::block_on(UdpSocket::bind("127.0.0.1:0")).unwrap_err());
            let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            check(TcpListener::try_from(std_l).unwrap_err());
            #[cfg(unix)]
            check(ebbtide::net::UnixStream::pair().unwrap_err());
        })
        .join()
        .unwrap();
    });
}

#[test]
fn operations_after_the_runtime_shut_down_report_it() {
    watchdog(|| {
        let rt = common::current_thread();
        let (a, b) = rt.block_on(tcp_pair());
        rt.shutdown(Duration::from_millis(10));
        let BufResult(res, buf) =
            futures_lite::future::block_on(a.read_owned(Vec::with_capacity(8)));
        let err = res.unwrap_err();
        assert!(err.to_string().contains("has shut down"), "{err}");
        assert_eq!(buf.capacity(), 8);
        // Work that needs no waiting still completes.
        let BufResult(res, _) = futures_lite::future::block_on(b.write_all_owned(b"x".to_vec()));
        res.unwrap();
        let BufResult(res, buf) =
            futures_lite::future::block_on(a.read_owned(Vec::with_capacity(8)));
        assert_eq!(res.unwrap(), 1);
        assert_eq!(buf, b"x");
    });
}

#[test]
fn udp_round_trips_with_borrowed_and_owned_buffers() {
    watchdog(|| {
        for f in [Flavour::current_thread(), Flavour::workers(2)] {
            f.rt.block_on(async {
                let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());

                // Borrowed: many datagrams, each intact and in one piece.
                for i in 0..200usize {
                    let data = pattern(i, 1 + i * 7);
                    assert_eq!(a.send_to(&data, ba).await.unwrap(), data.len());
                    let mut buf = vec![0u8; 2048];
                    let (n, from) = b.recv_from(&mut buf).await.unwrap();
                    assert_eq!((from, &buf[..n]), (aa, &data[..]));
                }

                // Owned.
                for i in 0..200usize {
                    let data = pattern(i, 1 + i * 5);
                    let BufResult(res, sent) = b.send_to_owned(data, aa).await;
                    assert_eq!(res.unwrap(), sent.len());
                    let BufResult(res, got) = a.recv_from_owned(Vec::with_capacity(2048)).await;
                    let (n, from) = res.unwrap();
                    assert_eq!((from, n), (ba, sent.len()));
                    assert_eq!(got, sent);
                }

                // A buffer with no room cannot report a sender: an error, and
                // no datagram is lost.
                let BufResult(res, _) = a.recv_from_owned(Vec::new()).await;
                assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);

                // Connected.
                a.connect(ba).await.unwrap();
                b.connect(aa).await.unwrap();
                assert_eq!(a.peer_addr().unwrap(), ba);
                a.send(b"conn").await.unwrap();
                let mut buf = [0u8; 8];
                assert_eq!(b.recv(&mut buf).await.unwrap(), 4);
                let BufResult(res, _) = b.send_owned(b"owned".to_vec()).await;
                res.unwrap();
                let BufResult(res, got) = a.recv_owned(Vec::with_capacity(16)).await;
                assert_eq!(res.unwrap(), 5);
                assert_eq!(got, b"owned");

                a.set_broadcast(true).unwrap();
                assert!(a.broadcast().unwrap());
            });
        }
    });
}

/// A connected TCP pair: (client, accepted server side).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// A registered stream and a plain blocking std peer.
async fn tcp_with_std_peer() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (s, _) = listener.accept().await.unwrap();
    (s, peer)
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

/// Polls `fut` once with a waker that does nothing.
fn poll_now<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Starts `n` owned reads made by `read`, polls each a pseudo-random 0–3
/// times and drops it; before some, `feed` has the peer send data so those
/// complete. Returns how many completed.
async fn churn<Fut>(
    rng: &mut Rng,
    ledger: &Arc<BufLedger>,
    n: usize,
    mut read: impl FnMut(CountedBuf) -> Fut,
    mut feed: impl FnMut(),
) -> usize
where
    Fut: Future<Output = BufResult<usize, CountedBuf>>,
{
    let mut completed = 0;
    for _ in 0..n {
        if rng.below(4) == 0 {
            feed();
            // Let the reactor see the data: after a short stream read, the
            // next read waits for the readiness event instead of trying
            // `recv` (`reactor::source` step 6), and events are dispatched
            // only when the task yields. Without this, reads would stop
            // completing and the peer's blocking writes would fill the
            // socket buffer.
            ebbtide::yield_now().await;
        }
        let polls = rng.below(4);
        let mut fut = pin!(read(ledger.buf(64)));
        for _ in 0..polls {
            if let Poll::Ready(BufResult(res, buf)) = poll_now(fut.as_mut()) {
                assert!(res.unwrap() > 0);
                drop(buf);
                completed += 1;
                break;
            }
        }
    }
    completed
}

#[test]
fn owned_reads_dropped_at_random_points_drop_each_buffer_exactly_once() {
    // 100,000 reads in all. Under Wine (how Windows is tested here) each
    // socket call is a round trip to wineserver: a read costs ~65 µs there
    // against ~3 µs natively, so 100,000 would take this one test ~7 s on
    // a fast machine; 10,000 (TCP and UDP: no Unix sockets) keeps it ~1 s.
    let (tcp, udp, unix) = if cfg!(windows) {
        (5_000, 5_000, 0)
    } else {
        (40_000, 30_000, 30_000)
    };
    let _ = unix;
    watchdog(move || {
        let ledger = BufLedger::new();
        let mut rng = Rng::new(0x5eed_0feb);
        let rt = common::current_thread();
        rt.block_on(async {
            let (s, mut peer) = tcp_with_std_peer().await;
            let done = churn(
                &mut rng,
                &ledger,
                tcp,
                |b| s.read_owned(b),
                || peer.write_all(&[1u8; 16]).unwrap(),
            )
            .await;
            assert!(done > 0, "some TCP reads complete");

            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let to = sock.local_addr().unwrap();
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let sock = &sock;
            let done = churn(
                &mut rng,
                &ledger,
                udp,
                move |b| async move { sock.recv_from_owned(b).await.map(|(n, _)| n) },
                || {
                    peer.send_to(&[2u8; 16], to).unwrap();
                },
            )
            .await;
            assert!(done > 0, "some UDP reads complete");

            #[cfg(unix)]
            {
                let (s, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
                let s = ebbtide::net::UnixStream::try_from(s).unwrap();
                let done = churn(
                    &mut rng,
                    &ledger,
                    unix,
                    |b| s.read_owned(b),
                    || peer.write_all(&[3u8; 16]).unwrap(),
                )
                .await;
                assert!(done > 0, "some Unix reads complete");
            }
        });
        assert_eq!(
            ledger.made.load(Ordering::SeqCst),
            if cfg!(unix) {
                tcp + udp + unix
            } else {
                tcp + udp
            }
        );
        ledger.assert_all_dropped_once();
    });
}

#[test]
fn a_runtime_dropped_with_reads_pending_drops_each_buffer_once_and_closes_sockets() {
    const EACH: usize = 8;
    watchdog(|| {
        let ledger = BufLedger::new();
        let started = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::builder()
            .worker_threads(2)
            .drain_timeout(Duration::from_millis(20))
            .build()
            .unwrap();
        let mut tcp_peers = Vec::new();
        #[cfg(unix)]
        let mut unix_peers = Vec::new();
        rt.block_on(async {
            for _ in 0..EACH {
                let (s, peer) = tcp_with_std_peer().await;
                tcp_peers.push(peer);
                let (buf, task_started) = (ledger.buf(64), started.clone());
                ebbtide::spawn(async move {
                    task_started.fetch_add(1, Ordering::SeqCst);
                    let _ = s.read_owned(buf).await; // nothing is ever sent
                });

                let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let (buf, task_started) = (ledger.buf(64), started.clone());
                ebbtide::spawn(async move {
                    task_started.fetch_add(1, Ordering::SeqCst);
                    let _ = u.recv_from_owned(buf).await; // nothing is ever sent
                });

                #[cfg(unix)]
                {
                    let (s, peer) = std::os::unix::net::UnixStream::pair().unwrap();
                    unix_peers.push(peer);
                    let s = ebbtide::net::UnixStream::try_from(s).unwrap();
                    let (buf, task_started) = (ledger.buf(64), started.clone());
                    ebbtide::spawn(async move {
                        task_started.fetch_add(1, Ordering::SeqCst);
                        let _ = s.read_owned(buf).await; // nothing is ever sent
                    });
                }
            }
            // Every read is pending inside its task.
            let tasks = if cfg!(unix) { 3 * EACH } else { 2 * EACH };
            while started.load(Ordering::SeqCst) < tasks {
                ebbtide::yield_now().await;
            }
        });
        drop(rt);
        ledger.assert_all_dropped_once();
        // The sockets were closed with their tasks: each peer reads EOF.
        for mut p in tcp_peers {
            assert_eq!(p.read(&mut [0u8; 1]).unwrap(), 0);
        }
        #[cfg(unix)]
        for mut p in unix_peers {
            assert_eq!(p.read(&mut [0u8; 1]).unwrap(), 0);
        }
    });
}

#[test]
fn sockets_and_their_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<TcpListener>();
    send_sync::<TcpStream>();
    send_sync::<UdpSocket>();
    #[cfg(unix)]
    {
        send_sync::<ebbtide::net::UnixListener>();
        send_sync::<ebbtide::net::UnixStream>();
        send_sync::<ebbtide::net::UnixDatagram>();
    }
    let rt = common::current_thread();
    rt.block_on(async {
        let (a, _b) = tcp_pair().await;
        send(&a.read_owned(Vec::new()));
        send(&a.write_all_owned(Vec::new()));
        send(&TcpStream::connect("localhost:1"));
        send(&TcpListener::bind("127.0.0.1:0"));
        let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        send(&u.recv_from_owned(Vec::new()));
        send(&u.send_to_owned(Vec::new(), "127.0.0.1:9"));
    });
}

#[cfg(unix)]
mod unix {
    use super::*;
    use ebbtide::net::{UnixDatagram, UnixListener, UnixStream};
    use std::path::PathBuf;

    /// A fresh socket path in the temp dir (removed first if left over).
    fn sock_path(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("ebbtide-{}-{n}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn unix_stream_round_trips_over_a_listener_and_a_pair() {
        watchdog(|| {
            for f in [Flavour::current_thread(), Flavour::workers(2)] {
                f.rt.block_on(async {
                    let path = sock_path("stream");
                    let listener = UnixListener::bind(&path).unwrap();
                    assert_eq!(
                        listener.local_addr().unwrap().as_pathname(),
                        Some(path.as_path())
                    );
                    let data = pattern(9, 300_000);
                    let want = checksum(&data);
                    let server = ebbtide::spawn(async move {
                        let (s, _) = listener.accept().await.unwrap();
                        let mut got = Vec::new();
                        (&s).read_to_end(&mut got).await.unwrap();
                        let BufResult(res, _) = s.write_all_owned(got).await;
                        res.unwrap();
                    });
                    let client = Arc::new(UnixStream::connect(&path).await.unwrap());
                    let w = client.clone();
                    let writer = ebbtide::spawn(async move {
                        let BufResult(res, _) = w.write_all_owned(data).await;
                        res.unwrap();
                        w.shutdown(Shutdown::Write).unwrap();
                    });
                    let mut got = Vec::new();
                    loop {
                        got.reserve(16 * 1024);
                        let BufResult(res, g) = client.read_owned(got).await;
                        got = g;
                        if res.unwrap() == 0 {
                            break;
                        }
                    }
                    writer.await.unwrap();
                    server.await.unwrap();
                    assert_eq!(checksum(&got), want, "{}", f.name);
                    std::fs::remove_file(&path).unwrap();

                    let (mut a, mut b) = UnixStream::pair().unwrap();
                    a.write_all(b"pair").await.unwrap();
                    let mut buf = [0u8; 4];
                    b.read_exact(&mut buf).await.unwrap();
                    assert_eq!(&buf, b"pair");
                });
            }
        });
    }

    #[test]
    fn unix_connect_to_a_missing_path_fails() {
        watchdog(|| {
            ebbtide::block_on(async {
                let err = UnixStream::connect(sock_path("missing")).await.unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            });
        });
    }

    #[test]
    fn unix_datagrams_round_trip_with_borrowed_and_owned_buffers() {
        watchdog(|| {
            ebbtide::block_on(async {
                let (pa, pb) = (sock_path("dga"), sock_path("dgb"));
                let a = UnixDatagram::bind(&pa).unwrap();
                let b = UnixDatagram::bind(&pb).unwrap();

                a.send_to(b"borrowed", &pb).await.unwrap();
                let mut buf = [0u8; 32];
                let (n, from) = b.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"borrowed");
                assert_eq!(from.as_pathname(), Some(pa.as_path()));

                let BufResult(res, _) = b.send_to_owned(b"owned".to_vec(), &pa).await;
                assert_eq!(res.unwrap(), 5);
                let BufResult(res, got) = a.recv_from_owned(Vec::with_capacity(32)).await;
                let (n, from) = res.unwrap();
                assert_eq!(&got[..n], b"owned");
                assert_eq!(from.as_pathname(), Some(pb.as_path()));

                // An unbound sender shows up as an unnamed address.
                let anon = UnixDatagram::unbound().unwrap();
                let BufResult(res, _) = anon.send_to_owned("anon", &pa).await;
                res.unwrap();
                let BufResult(res, got) = a.recv_from_owned(Vec::with_capacity(32)).await;
                let (_, from) = res.unwrap();
                assert_eq!(got, b"anon");
                assert!(from.is_unnamed());

                // Connected pair, both APIs.
                let (x, y) = UnixDatagram::pair().unwrap();
                x.send(b"one").await.unwrap();
                let BufResult(res, got) = y.recv_owned(Vec::with_capacity(8)).await;
                assert_eq!(res.unwrap(), 3);
                assert_eq!(got, b"one");
                let BufResult(res, _) = y.send_owned(b"two".to_vec()).await;
                res.unwrap();
                let mut buf = [0u8; 8];
                assert_eq!(x.recv(&mut buf).await.unwrap(), 3);
                assert_eq!(&buf[..3], b"two");

                std::fs::remove_file(&pa).unwrap();
                std::fs::remove_file(&pb).unwrap();
            });
        });
    }

    const EMFILE_TEST: &str =
        "unix::accept_returns_emfile_and_a_backing_off_loop_then_accepts_every_queued_connection";
    const EMFILE_CHILD_ENV: &str = "EBBTIDE_EMFILE_CHILD";
    const EMFILE_CHILD_OK: &str = "emfile child: all queued connections accepted";

    /// Runs in a child process (re-executing this test binary), so the
    /// lowered descriptor limit touches no other test.
    #[test]
    fn accept_returns_emfile_and_a_backing_off_loop_then_accepts_every_queued_connection() {
        if std::env::var_os(EMFILE_CHILD_ENV).is_some() {
            return emfile_child();
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", EMFILE_TEST, "--nocapture", "--test-threads=1"])
            .env(EMFILE_CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains(EMFILE_CHILD_OK),
            "the child did not run the test:\n{stdout}\n{stderr}"
        );
    }

    fn emfile_child() {
        const CLIENTS: usize = 4;
        watchdog(|| {
            let rt = common::current_thread();
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                // Queued in the listen backlog (loopback connects complete
                // without an accept).
                let clients: Vec<std::net::TcpStream> = (0..CLIENTS)
                    .map(|_| std::net::TcpStream::connect(addr).unwrap())
                    .collect();

                // Lower the limit a little above what is open, then fill it.
                let probe = std::fs::File::open("/dev/null").unwrap();
                let lowest_free = std::os::fd::AsRawFd::as_raw_fd(&probe);
                drop(probe);
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: `lim` is a valid rlimit to write into.
                assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
                lim.rlim_cur = (lowest_free as libc::rlim_t + 64).min(lim.rlim_max);
                // SAFETY: `lim` is a valid rlimit; lowering the soft limit
                // is always allowed.
                assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
                let mut fillers = Vec::new();
                loop {
                    match std::fs::File::open("/dev/null") {
                        Ok(f) => fillers.push(f),
                        Err(e) => {
                            assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                            break;
                        }
                    }
                }

                // accept reports EMFILE; the connection stays queued.
                let err = listener.accept().await.unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");

                // A server loop that backs off on EMFILE.
                let backoffs = Arc::new(AtomicUsize::new(0));
                let seen = backoffs.clone();
                let server = ebbtide::spawn(async move {
                    let mut accepted = Vec::new();
                    while accepted.len() < CLIENTS {
                        match listener.accept().await {
                            Ok((s, peer)) => accepted.push((s, peer)),
                            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                                seen.fetch_add(1, Ordering::SeqCst);
                                ebbtide::time::sleep(Duration::from_millis(10)).await;
                            }
                            Err(e) => panic!("unexpected accept error: {e}"),
                        }
                    }
                    accepted
                });
                while backoffs.load(Ordering::SeqCst) < 2 {
                    ebbtide::time::sleep(Duration::from_millis(5)).await;
                }
                drop(fillers);
                let accepted = server.await.unwrap();
                assert_eq!(accepted.len(), CLIENTS);
                let mut peers: Vec<SocketAddr> = accepted.iter().map(|(_, p)| *p).collect();
                let mut locals: Vec<SocketAddr> =
                    clients.iter().map(|c| c.local_addr().unwrap()).collect();
                peers.sort();
                locals.sort();
                assert_eq!(peers, locals);
                // The accepted streams work.
                for (s, _) in &accepted {
                    let BufResult(res, _) = s.write_all_owned("ok").await;
                    res.unwrap();
                }
                for mut c in clients {
                    let mut buf = [0u8; 2];
                    c.read_exact(&mut buf).unwrap();
                    assert_eq!(&buf, b"ok");
                }
            });
        });
        println!("{EMFILE_CHILD_OK}");
    }
}

/// A waker that records that it was woken.
struct WokenFlag(std::sync::atomic::AtomicBool);

impl std::task::Wake for WokenFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// After tokio's `io_driver_drop.rs::drop_wakes`: an `accept` and a `read`
/// already waiting (polled by a plain executor, not a task of the runtime)
/// when the runtime ends are woken by its end, and their next poll fails
/// with an error that says the runtime has shut down, instead of waiting
/// forever.
#[test]
fn io_waiting_outside_the_runtime_is_woken_with_an_error_when_the_runtime_ends() {
    watchdog(|| {
        for via_shutdown in [true, false] {
            for flavour in [Flavour::current_thread(), Flavour::workers(2)] {
                let name = flavour.name;
                let rt = flavour.rt;
                let (listener, stream, _peer) = rt.block_on(async {
                    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let (stream, peer) = tcp_with_std_peer().await;
                    (listener, stream, peer)
                });
                let flag = Arc::new(WokenFlag(false.into()));
                let waker = Waker::from(flag.clone());
                let mut cx = Context::from_waker(&waker);
                let mut accept = pin!(listener.accept());
                let mut buf = [0u8; 8];
                let mut reader = &stream;
                let mut read = pin!(reader.read(&mut buf));
                assert!(accept.as_mut().poll(&mut cx).is_pending(), "{name}");
                assert!(read.as_mut().poll(&mut cx).is_pending(), "{name}");
                if via_shutdown {
                    rt.shutdown(Duration::ZERO);
                } else {
                    drop(rt);
                }
                assert!(flag.0.load(Ordering::SeqCst), "{name}: not woken");
                match accept.as_mut().poll(&mut cx) {
                    Poll::Ready(Err(e)) => assert!(e.to_string().contains("shut down"), "{e}"),
                    other => panic!("{name}: accept after the runtime ended: {other:?}"),
                }
                match read.as_mut().poll(&mut cx) {
                    Poll::Ready(Err(e)) => assert!(e.to_string().contains("shut down"), "{e}"),
                    other => panic!("{name}: read after the runtime ended: {other:?}"),
                }
            }
        }
    });
}
