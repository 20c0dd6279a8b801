//! The socket surface of `ebbtide::net` beyond reading and writing:
//! `try_*` methods that never wait and leave readiness truthful (a
//! `WouldBlock` makes the next `readable()`/`writable()` wait), `peek`
//! that does not consume, `TcpStream` halves (owned and borrowed, with
//! `reunite` and shutdown-on-drop), `lookup_host`, and every address form
//! `bind`/`connect`/`send_to` accept. Scenarios after tokio's
//! `tcp_stream.rs` (try_read_write), `tcp_into_split.rs`, `tcp_split.rs`,
//! `tcp_peek.rs` and `udp.rs`.

mod common;

use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use common::net::{checksum, pattern, tcp_pair};
use common::{current_thread, watchdog, workers};
use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
use ebbtide::net::{lookup_host, TcpListener, TcpStream, UdpSocket};
use futures_lite::future::poll_once;

fn would_block<T: std::fmt::Debug>(res: std::io::Result<T>) -> bool {
    match res {
        Err(e) if e.kind() == ErrorKind::WouldBlock => true,
        other => panic!("expected WouldBlock, got {other:?}"),
    }
}

/// Reads exactly `buf.len()` bytes with `readable` + `try_read` only.
async fn try_read_exact(s: &TcpStream, buf: &mut [u8]) {
    let mut got = 0;
    while got < buf.len() {
        s.readable().await.unwrap();
        match s.try_read(&mut buf[got..]) {
            Ok(0) => panic!("EOF after {got} bytes"),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn try_read_on_an_empty_socket_would_block_then_returns_the_data() {
    watchdog(|| {
        current_thread().block_on(async {
            let (mut client, server) = tcp_pair().await;
            let mut buf = [0; 64];
            assert!(would_block(server.try_read(&mut buf)));
            assert!(would_block(server.try_peek(&mut buf)));
            let mut readable = Box::pin(server.readable());
            assert!(poll_once(&mut readable).await.is_none(), "nothing sent yet");
            client.write_all(b"some data").await.unwrap();
            readable.await.unwrap();
            let n = server.try_read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"some data");
            assert!(
                would_block(server.try_read(&mut buf)),
                "all of it was taken"
            );
            drop(client);
            server.readable().await.unwrap();
            assert_eq!(server.try_read(&mut buf).unwrap(), 0, "EOF");
        });
    });
}

#[test]
fn try_write_until_would_block_then_writable_waits_until_the_peer_reads() {
    watchdog(|| {
        workers(2).block_on(async {
            let (client, server) = tcp_pair().await;
            let chunk = pattern(1, 64 * 1024);
            let mut written = Vec::new();
            client.writable().await.unwrap();
            loop {
                // Still writable: no WouldBlock yet.
                assert!(poll_once(client.writable()).await.is_some());
                match client.try_write(&chunk) {
                    Ok(n) => written.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(!written.is_empty());
            // The WouldBlock cleared write readiness: writable() waits now.
            let mut writable = Box::pin(client.writable());
            assert!(
                poll_once(&mut writable).await.is_none(),
                "writable() must wait after try_write saw WouldBlock"
            );
            let expect = written.len();
            let reader = ebbtide::spawn(async move {
                let mut read = vec![0; expect];
                try_read_exact(&server, &mut read).await;
                (read, server)
            });
            writable.await.unwrap(); // woken once the peer drained
            let (read, _server) = reader.await.unwrap();
            assert_eq!(checksum(&read), checksum(&written));
            let n = client.try_write(b"more").unwrap();
            assert!(n > 0, "room again after the peer read");
        });
    });
}

#[test]
fn vectored_try_read_and_try_write_fill_buffers_in_order() {
    watchdog(|| {
        current_thread().block_on(async {
            let (client, server) = tcp_pair().await;
            client.writable().await.unwrap();
            let n = client
                .try_write_vectored(&[IoSlice::new(b"abc"), IoSlice::new(b"defg")])
                .unwrap();
            assert_eq!(n, 7);
            let (mut a, mut b) = ([0; 3], [0; 4]);
            let mut got = 0;
            while got < 7 {
                server.readable().await.unwrap();
                let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
                match server.try_read_vectored(&mut bufs) {
                    Ok(n) => got += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
                assert!(got == 0 || got == 7, "loopback delivers it in one piece");
            }
            assert_eq!((&a, &b), (b"abc", b"defg"));
        });
    });
}

#[test]
fn peek_does_not_consume_the_data() {
    watchdog(|| {
        current_thread().block_on(async {
            let (mut client, mut server) = tcp_pair().await;
            client.write_all(b"peekaboo").await.unwrap();
            let mut first = [0; 8];
            let n1 = server.peek(&mut first).await.unwrap();
            let mut second = [0; 8];
            let n2 = server.peek(&mut second).await.unwrap();
            assert_eq!((n1, &first[..n1]), (n2, &second[..n2]));
            let mut read = [0; 8];
            server.read_exact(&mut read).await.unwrap();
            assert_eq!(&read, b"peekaboo");
            assert_eq!(&first[..n1], &read[..n1]);
            assert!(would_block(server.try_read(&mut read)));
        });
    });
}

#[test]
fn udp_try_recv_would_block_clears_readiness_so_readable_waits() {
    watchdog(|| {
        current_thread().block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            a.connect(b.local_addr().unwrap()).await.unwrap();
            b.connect(a.local_addr().unwrap()).await.unwrap();
            let mut buf = [0; 32];
            assert!(would_block(b.try_recv(&mut buf)));
            a.writable().await.unwrap();
            assert_eq!(a.try_send(b"one").unwrap(), 3);
            b.readable().await.unwrap();
            assert_eq!(b.try_recv(&mut buf).unwrap(), 3);
            // A datagram read proves nothing about the queue; the next
            // WouldBlock does, and readable() must then wait.
            assert!(would_block(b.try_recv(&mut buf)));
            let mut readable = Box::pin(b.readable());
            assert!(
                poll_once(&mut readable).await.is_none(),
                "readable() must wait after try_recv saw WouldBlock"
            );
            a.send(b"two").await.unwrap();
            readable.await.unwrap();
            assert_eq!(b.try_recv(&mut buf).unwrap(), 3);
            assert_eq!(&buf[..3], b"two");
        });
    });
}

#[test]
fn udp_try_send_to_try_recv_from_and_peeks_keep_datagrams_and_senders() {
    watchdog(|| {
        current_thread().block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            let mut buf = [0; 32];
            assert!(would_block(b.try_recv_from(&mut buf)));
            assert!(would_block(b.try_peek_from(&mut buf)));
            a.writable().await.unwrap();
            assert_eq!(a.try_send_to(b"first", b_addr).unwrap(), 5);
            assert_eq!(a.try_send_to(b"second", b_addr).unwrap(), 6);
            let (n, from) = b.peek_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"first"[..], a_addr));
            let (n, from) = b.try_peek_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"first"[..], a_addr), "peek kept it");
            let (n, from) = b.try_recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"first"[..], a_addr));
            let (n, _) = loop {
                b.readable().await.unwrap();
                match b.try_recv_from(&mut buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    res => break res.unwrap(),
                }
            };
            assert_eq!(&buf[..n], b"second");
            assert!(would_block(b.try_recv_from(&mut buf)));
        });
    });
}

#[cfg(unix)]
#[test]
fn unix_stream_try_read_write_and_peeks() {
    use ebbtide::net::UnixStream;
    watchdog(|| {
        current_thread().block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut buf = [0; 16];
            assert!(would_block(b.try_read(&mut buf)));
            assert!(would_block(b.try_peek(&mut buf)));
            assert!(poll_once(b.readable()).await.is_none());
            assert_eq!(a.try_write(b"hello").unwrap(), 5);
            let n = a
                .try_write_vectored(&[IoSlice::new(b" "), IoSlice::new(b"world")])
                .unwrap();
            assert_eq!(n, 6);
            let n = b.peek(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"hello world");
            assert_eq!(b.try_peek(&mut buf).unwrap(), 11);
            let (mut x, mut y) = ([0; 5], [0; 6]);
            let n = b
                .try_read_vectored(&mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)])
                .unwrap();
            assert_eq!((n, &x, &y), (11, b"hello", b" world"));
            assert!(would_block(b.try_read(&mut buf)));

            // Fill it: WouldBlock, then writable() waits until b reads.
            let chunk = [7u8; 4096];
            let mut written = 0;
            while let Ok(n) = a.try_write(&chunk) {
                written += n;
            }
            assert!(would_block(a.try_write(&chunk)));
            let mut writable = Box::pin(a.writable());
            assert!(poll_once(&mut writable).await.is_none());
            let mut drained = 0;
            while drained < written {
                match b.try_read(&mut [0; 4096]) {
                    Ok(n) => drained += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => b.readable().await.unwrap(),
                    Err(e) => panic!("{e}"),
                }
            }
            writable.await.unwrap();
        });
    });
}

#[cfg(unix)]
#[test]
fn unix_datagram_try_send_recv_and_peek_from() {
    use ebbtide::net::UnixDatagram;
    watchdog(|| {
        current_thread().block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            let mut buf = [0; 16];
            assert!(would_block(b.try_recv(&mut buf)));
            assert!(would_block(b.try_recv_from(&mut buf)));
            assert_eq!(a.try_send(b"one").unwrap(), 3);
            let (n, _) = b.peek_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"one");
            assert_eq!(b.try_recv(&mut buf).unwrap(), 3, "peek kept it");
            assert!(would_block(b.try_recv(&mut buf)));
            assert!(poll_once(b.readable()).await.is_none(), "readiness cleared");

            let dir =
                std::env::temp_dir().join(format!("ebbtide-net-surface-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("rx.sock");
            let rx = UnixDatagram::bind(&path).unwrap();
            let tx = UnixDatagram::bind(dir.join("tx.sock")).unwrap();
            assert_eq!(tx.try_send_to(b"to path", &path).unwrap(), 7);
            rx.readable().await.unwrap();
            let (n, from) = rx.try_recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"to path");
            assert_eq!(from.as_pathname(), Some(dir.join("tx.sock").as_path()));
            std::fs::remove_dir_all(&dir).unwrap();
        });
    });
}

#[test]
fn into_split_halves_move_one_mib_each_way_from_two_tasks() {
    const LEN: usize = 1 << 20;
    watchdog(|| {
        workers(2).block_on(async {
            let (client, server) = tcp_pair().await;
            let (mut c_rd, mut c_wr) = client.into_split();
            let (mut s_rd, mut s_wr) = server.into_split();
            let up = pattern(1, LEN);
            let down = pattern(2, LEN);
            let (up_sum, down_sum) = (checksum(&up), checksum(&down));
            let tasks = [
                ebbtide::spawn(async move {
                    c_wr.write_all(&up).await.unwrap();
                    c_wr.close().await.unwrap();
                    0
                }),
                ebbtide::spawn(async move {
                    s_wr.write_all(&down).await.unwrap();
                    drop(s_wr); // shutdown on drop
                    0
                }),
                ebbtide::spawn(async move {
                    let mut got = Vec::new();
                    s_rd.read_to_end(&mut got).await.unwrap();
                    checksum(&got)
                }),
                ebbtide::spawn(async move {
                    let mut got = Vec::new();
                    c_rd.read_to_end(&mut got).await.unwrap();
                    checksum(&got)
                }),
            ];
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            assert_eq!(out, [0, 0, up_sum, down_sum]);
        });
    });
}

#[test]
fn dropping_the_write_half_makes_the_peer_read_eof_while_the_read_half_still_reads() {
    watchdog(|| {
        workers(2).block_on(async {
            let (client, mut server) = tcp_pair().await;
            let (mut rd, mut wr) = client.into_split();
            wr.write_all(b"last words").await.unwrap();
            drop(wr);
            let mut all = Vec::new();
            server.read_to_end(&mut all).await.unwrap(); // ends: EOF
            assert_eq!(all, b"last words");
            // The other direction is still open.
            server.write_all(b"reply").await.unwrap();
            let mut buf = [0; 5];
            rd.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"reply");
            // A read blocked in the read half sees the peer's EOF later.
            let reader = ebbtide::spawn(async move {
                let mut rest = Vec::new();
                rd.read_to_end(&mut rest).await.unwrap();
                rest
            });
            server.write_all(b"bye").await.unwrap();
            drop(server);
            assert_eq!(reader.await.unwrap(), b"bye");
        });
    });
}

#[test]
fn reunite_gives_back_the_stream_or_both_mismatched_halves() {
    watchdog(|| {
        current_thread().block_on(async {
            let (a, mut a_peer) = tcp_pair().await;
            let (b, _b_peer) = tcp_pair().await;
            let a_local = a.local_addr().unwrap();
            let (a_rd, a_wr) = a.into_split();
            let (b_rd, b_wr) = b.into_split();

            let err = a_rd.reunite(b_wr).unwrap_err();
            assert!(err.to_string().contains("not from the same"), "{err}");
            let ebbtide::net::tcp::ReuniteError(a_rd, b_wr) = err;
            assert_eq!(
                a_rd.local_addr().unwrap(),
                a_local,
                "the read half came back"
            );
            let err = a_wr.reunite(b_rd).unwrap_err(); // the other way round
            let (b_rd, a_wr) = (err.0, err.1);
            let _b = b_rd.reunite(b_wr).unwrap();

            let mut a = a_rd.reunite(a_wr).unwrap();
            assert_eq!(a.local_addr().unwrap(), a_local);
            // Reuniting did not shut down writing: the stream still works.
            a.write_all(b"whole again").await.unwrap();
            let mut buf = [0; 11];
            a_peer.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"whole again");
            a_peer.write_all(b"ok").await.unwrap();
            let mut two = [0; 2];
            a.read_exact(&mut two).await.unwrap();
            assert_eq!(&two, b"ok");
        });
    });
}

#[test]
fn owned_halves_have_owned_buffer_try_and_address_methods() {
    watchdog(|| {
        current_thread().block_on(async {
            let (client, server) = tcp_pair().await;
            let (c_local, c_peer) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
            let (rd, wr) = client.into_split();
            assert_eq!(
                (rd.local_addr().unwrap(), rd.peer_addr().unwrap()),
                (c_local, c_peer)
            );
            assert_eq!(
                (wr.local_addr().unwrap(), wr.peer_addr().unwrap()),
                (c_local, c_peer)
            );
            wr.writable().await.unwrap();
            assert_eq!(wr.try_write(b"a").unwrap(), 1);
            let ebbtide::io::BufResult(res, _) = wr.write_owned(b"b".to_vec()).await;
            assert_eq!(res.unwrap(), 1);
            let ebbtide::io::BufResult(res, _) = wr.write_all_owned(b"cd".to_vec()).await;
            res.unwrap();
            let mut got = [0; 4];
            let mut n = 0;
            while n < 4 {
                server.readable().await.unwrap();
                n += server.try_read(&mut got[n..]).unwrap_or(0);
            }
            assert_eq!(&got, b"abcd");

            assert!(would_block(rd.try_read(&mut [0; 4])));
            server.try_write(b"xyz").unwrap();
            rd.readable().await.unwrap();
            let mut buf = [0; 3];
            assert_eq!(rd.peek(&mut buf).await.unwrap(), 3);
            assert_eq!(rd.try_read(&mut buf[..1]).unwrap(), 1);
            let ebbtide::io::BufResult(res, v) = rd.read_owned(Vec::with_capacity(8)).await;
            assert_eq!(res.unwrap(), 2);
            assert_eq!(v, b"yz");
        });
    });
}

#[test]
fn borrowed_split_halves_read_and_write_one_stream() {
    watchdog(|| {
        current_thread().block_on(async {
            let (mut client, mut server) = tcp_pair().await;
            {
                let (mut rd, mut wr) = server.split();
                client.write_all(b"echo me").await.unwrap();
                let mut buf = [0; 7];
                rd.read_exact(&mut buf).await.unwrap();
                wr.write_all(&buf).await.unwrap();
                let mut back = [0; 7];
                client.read_exact(&mut back).await.unwrap();
                assert_eq!(&back, b"echo me");
                // Dropping borrowed halves does not shut anything down ...
            }
            server.write_all(b"!").await.unwrap();
            let mut one = [0; 1];
            client.read_exact(&mut one).await.unwrap();
            // ... closing the write half does.
            let (_rd, mut wr) = server.split();
            wr.close().await.unwrap();
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
        });
    });
}

#[test]
fn lookup_host_resolves_localhost_on_the_blocking_pool() {
    watchdog(|| {
        current_thread().block_on(async {
            let addrs: Vec<SocketAddr> = lookup_host("localhost:80").await.unwrap().collect();
            assert!(!addrs.is_empty());
            for a in &addrs {
                assert!(a.ip().is_loopback(), "{a}");
                assert_eq!(a.port(), 80);
            }
            let addrs: Vec<_> = lookup_host(("localhost", 443)).await.unwrap().collect();
            assert!(addrs.iter().all(|a| a.port() == 443) && !addrs.is_empty());
            let err = lookup_host("no-such-host.invalid:1")
                .await
                .err()
                .expect("fails");
            assert_ne!(err.kind(), ErrorKind::WouldBlock);
        });
    });
}

#[test]
fn lookup_host_of_a_literal_needs_no_runtime_and_a_name_says_it_does() {
    watchdog(|| {
        let addrs: Vec<_> = futures_lite::future::block_on(lookup_host("127.0.0.1:80"))
            .unwrap()
            .collect();
        assert_eq!(addrs, ["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
        let addrs: Vec<_> = futures_lite::future::block_on(lookup_host((Ipv6Addr::LOCALHOST, 8)))
            .unwrap()
            .collect();
        assert_eq!(addrs, [SocketAddr::from((Ipv6Addr::LOCALHOST, 8))]);
        let err = futures_lite::future::block_on(lookup_host("localhost:80"))
            .err()
            .expect("a lookup needs the blocking pool");
        assert!(err.to_string().contains("runtime"), "{err}");
    });
}

#[test]
fn every_address_form_binds_and_connects() {
    watchdog(|| {
        workers(2).block_on(async {
            let v4 = SocketAddr::from(([127, 0, 0, 1], 0));
            let slice: &[SocketAddr] = &[v4];
            let listeners = [
                TcpListener::bind(([127, 0, 0, 1], 0)).await.unwrap(),
                TcpListener::bind("localhost:0").await.unwrap(),
                TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap(),
                TcpListener::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
                    .await
                    .unwrap(),
                TcpListener::bind("127.0.0.1:0").await.unwrap(),
                TcpListener::bind(String::from("127.0.0.1:0"))
                    .await
                    .unwrap(),
                TcpListener::bind(("127.0.0.1", 0)).await.unwrap(),
                TcpListener::bind(("localhost".to_string(), 0))
                    .await
                    .unwrap(),
                TcpListener::bind(v4).await.unwrap(),
                TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
                    .await
                    .unwrap(),
                TcpListener::bind(slice).await.unwrap(),
                TcpListener::bind([v4]).await.unwrap(),
                TcpListener::bind(&[v4, v4]).await.unwrap(),
                TcpListener::bind(vec![v4]).await.unwrap(),
                TcpListener::bind(&v4).await.unwrap(),
            ];
            for l in &listeners {
                let addr = l.local_addr().unwrap();
                assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
                let port = addr.port();
                // A name ("localhost") may have bound ::1: the IPv4 forms
                // apply to IPv4 listeners only.
                let mut connects = vec![
                    TcpStream::connect(addr).await.unwrap(),
                    TcpStream::connect(&addr).await.unwrap(),
                    TcpStream::connect((addr.ip(), port)).await.unwrap(),
                    TcpStream::connect(addr.to_string()).await.unwrap(),
                    TcpStream::connect(addr.to_string().as_str()).await.unwrap(),
                    TcpStream::connect([addr].as_slice()).await.unwrap(),
                ];
                if addr.is_ipv4() {
                    connects.push(TcpStream::connect(([127, 0, 0, 1], port)).await.unwrap());
                    connects.push(
                        TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                            .await
                            .unwrap(),
                    );
                    connects.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
                    connects.push(
                        TcpStream::connect(format!("127.0.0.1:{port}"))
                            .await
                            .unwrap(),
                    );
                } else {
                    connects.push(
                        TcpStream::connect((Ipv6Addr::LOCALHOST, port))
                            .await
                            .unwrap(),
                    );
                    connects.push(TcpStream::connect(("::1", port)).await.unwrap());
                }
                for c in &connects {
                    assert_eq!(c.peer_addr().unwrap(), addr);
                    let (_s, peer) = l.accept().await.unwrap();
                    assert_eq!(peer, c.local_addr().unwrap());
                }
            }

            // "localhost" may name ::1 first: connecting by name tries each
            // address until one works.
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            let c = TcpStream::connect(("localhost", port)).await.unwrap();
            assert_eq!(c.peer_addr().unwrap().port(), port);

            let udp = [
                UdpSocket::bind(([127, 0, 0, 1], 0)).await.unwrap(),
                UdpSocket::bind("localhost:0").await.unwrap(),
                UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap(),
                UdpSocket::bind(slice).await.unwrap(),
                UdpSocket::bind([v4]).await.unwrap(),
                UdpSocket::bind(vec![v4]).await.unwrap(),
            ];
            for (i, s) in udp.iter().enumerate() {
                let i = i as u8;
                let me = s.local_addr().unwrap();
                assert!(me.ip().is_loopback() && me.port() != 0, "{me}");
                let rx = UdpSocket::bind((me.ip(), 0)).await.unwrap();
                let to = rx.local_addr().unwrap();
                let mut sent = 0u8;
                let mut send = |n: usize| {
                    assert_eq!(n, 2);
                    sent += 1;
                };
                send(s.send_to(&[i, 0], to).await.unwrap());
                send(s.send_to(&[i, 1], (to.ip(), to.port())).await.unwrap());
                send(s.send_to(&[i, 2], to.to_string()).await.unwrap());
                send(s.send_to(&[i, 3], [to].as_slice()).await.unwrap());
                if to.is_ipv4() {
                    send(
                        s.send_to(&[i, 4], ([127, 0, 0, 1], to.port()))
                            .await
                            .unwrap(),
                    );
                    send(
                        s.send_to(&[i, 5], (Ipv4Addr::LOCALHOST, to.port()))
                            .await
                            .unwrap(),
                    );
                    send(
                        s.send_to(&[i, 6], format!("127.0.0.1:{}", to.port()))
                            .await
                            .unwrap(),
                    );
                }
                s.connect(to.to_string()).await.unwrap();
                s.send(&[i, 100]).await.unwrap();
                let mut kinds = Vec::new();
                for _ in 0..=sent {
                    let mut buf = [0; 2];
                    let (n, from) = rx.recv_from(&mut buf).await.unwrap();
                    assert_eq!((n, buf[0], from), (2, i, me));
                    kinds.push(buf[1]);
                }
                let mut want: Vec<u8> = (0..sent).collect();
                want.push(100);
                assert_eq!(kinds, want, "every form reached the receiver, in order");
            }
        });
    });
}

#[cfg(unix)]
#[test]
fn unix_into_split_halves_move_data_both_ways_and_dropping_the_write_half_sends_eof() {
    use ebbtide::net::UnixStream;
    const LEN: usize = 256 * 1024;
    watchdog(|| {
        workers(2).block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (mut a_rd, mut a_wr) = a.into_split();
            let (mut b_rd, mut b_wr) = b.into_split();
            let (up, down) = (pattern(3, LEN), pattern(4, LEN));
            let (up_sum, down_sum) = (checksum(&up), checksum(&down));
            let writers = [
                ebbtide::spawn(async move {
                    a_wr.write_all(&up).await.unwrap();
                    drop(a_wr); // shutdown on drop: b reads EOF
                }),
                ebbtide::spawn(async move {
                    b_wr.write_all(&down).await.unwrap();
                    b_wr.close().await.unwrap();
                }),
            ];
            let b_reader = ebbtide::spawn(async move {
                let mut got = Vec::new();
                b_rd.read_to_end(&mut got).await.unwrap();
                (checksum(&got), b_rd)
            });
            let mut got = Vec::new();
            a_rd.read_to_end(&mut got).await.unwrap();
            assert_eq!(checksum(&got), down_sum);
            let (sum, _b_rd) = b_reader.await.unwrap();
            assert_eq!(sum, up_sum);
            for w in writers {
                w.await.unwrap();
            }
        });
    });
}

#[cfg(unix)]
#[test]
fn unix_reunite_gives_back_the_stream_or_both_mismatched_halves() {
    use ebbtide::net::UnixStream;
    watchdog(|| {
        current_thread().block_on(async {
            let (a, mut a_peer) = UnixStream::pair().unwrap();
            let (b, _b_peer) = UnixStream::pair().unwrap();
            let (a_rd, a_wr) = a.into_split();
            let (b_rd, b_wr) = b.into_split();
            let err = a_rd.reunite(b_wr).unwrap_err();
            assert!(err.to_string().contains("not from the same"), "{err}");
            let ebbtide::net::unix::ReuniteError(a_rd, b_wr) = err;
            let _b = b_wr.reunite(b_rd).unwrap();
            let mut a = a_rd.reunite(a_wr).unwrap();
            a.write_all(b"whole").await.unwrap();
            let mut buf = [0; 5];
            a_peer.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"whole");
            // Borrowed halves: closing the write half ends the peer's reads.
            let (_rd, mut wr) = a.split();
            wr.close().await.unwrap();
            let mut rest = Vec::new();
            a_peer.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
        });
    });
}

#[test]
fn ready_reports_only_the_asked_directions_that_may_be_ready() {
    use ebbtide::io::Interest;
    watchdog(|| {
        workers(2).block_on(async {
            let (client, server) = tcp_pair().await;
            let both = Interest::READABLE | Interest::WRITABLE;
            let r = client.ready(both).await.unwrap();
            assert!(r.is_writable() && !r.is_readable(), "idle: {r:?}");
            // Only what was asked is reported.
            server.try_write(b"x").unwrap();
            let r = client.ready(Interest::READABLE).await.unwrap();
            assert!(r.is_readable() && !r.is_writable(), "{r:?}");
            assert_eq!(client.try_read(&mut [0; 8]).unwrap(), 1);

            // Send buffer full and nothing to read: ready() waits ...
            let chunk = vec![0u8; 64 * 1024];
            let mut written = 0;
            while let Ok(n) = client.try_write(&chunk) {
                written += n;
            }
            assert!(would_block(client.try_read(&mut [0; 8])));
            let mut ready = Box::pin(client.ready(both));
            assert!(
                poll_once(&mut ready).await.is_none(),
                "neither direction is ready"
            );
            // ... until the peer sends: readable, still not writable.
            server.try_write(b"y").unwrap();
            let r = ready.await.unwrap();
            assert!(r.is_readable() && !r.is_writable(), "{r:?}");
            drop(server);
            assert!(written > 0);
        });
    });
}

#[test]
fn new_socket_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ebbtide::net::TcpSocket>();
    send_sync::<ebbtide::net::tcp::OwnedReadHalf>();
    send_sync::<ebbtide::net::tcp::OwnedWriteHalf>();
    send_sync::<ebbtide::net::tcp::ReadHalf<'static>>();
    send_sync::<ebbtide::net::tcp::WriteHalf<'static>>();
    send_sync::<ebbtide::net::tcp::ReuniteError>();
    send_sync::<ebbtide::io::Interest>();
    send_sync::<ebbtide::io::Ready>();
    #[cfg(unix)]
    {
        send_sync::<ebbtide::net::unix::OwnedReadHalf>();
        send_sync::<ebbtide::net::unix::OwnedWriteHalf>();
        send_sync::<ebbtide::net::unix::ReuniteError>();
    }
    // `ReuniteError` is a std error (`?` into `Box<dyn Error>` works).
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    is_error::<ebbtide::net::tcp::ReuniteError>();
}
