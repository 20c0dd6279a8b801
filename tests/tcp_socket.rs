//! `ebbtide::net::TcpSocket` and the socket options of `TcpStream`: every
//! option round-trips through the OS (set, then read back with
//! `getsockopt`), `SO_REUSEPORT` really lets two listeners share a port,
//! and a configured socket listens and connects (v4, v6, bound first),
//! carrying its options into the stream. Scenarios after tokio's
//! `tests/tcp_socket.rs`.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::net::tcp_pair;
use common::{current_thread, watchdog, workers};
use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
use ebbtide::net::{TcpListener, TcpSocket};

fn loopback_v4() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn tcp_socket_options_round_trip_through_the_os() {
    watchdog(|| {
        let s = TcpSocket::new_v4().unwrap();
        for on in [true, false] {
            s.set_reuseaddr(on).unwrap();
            assert_eq!(s.reuseaddr().unwrap(), on, "SO_REUSEADDR");
            s.set_keepalive(on).unwrap();
            assert_eq!(s.keepalive().unwrap(), on, "SO_KEEPALIVE");
            s.set_nodelay(on).unwrap();
            assert_eq!(s.nodelay().unwrap(), on, "TCP_NODELAY");
        }
        let before = s.send_buffer_size().unwrap();
        let want = before.saturating_mul(2).max(64 * 1024);
        s.set_send_buffer_size(want).unwrap();
        let got = s.send_buffer_size().unwrap();
        assert!(
            got >= want,
            "SO_SNDBUF: asked {want}, got {got} (was {before})"
        );
        let before = s.recv_buffer_size().unwrap();
        let want = before.saturating_mul(2).max(64 * 1024);
        s.set_recv_buffer_size(want).unwrap();
        let got = s.recv_buffer_size().unwrap();
        assert!(
            got >= want,
            "SO_RCVBUF: asked {want}, got {got} (was {before})"
        );
        assert_eq!(s.linger().unwrap(), None);
        s.set_linger(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(3)));
        s.set_linger(Some(Duration::ZERO)).unwrap();
        assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
        s.set_linger(None).unwrap();
        assert_eq!(s.linger().unwrap(), None);
    });
}

#[cfg(unix)]
#[test]
fn tcp_socket_reuseport_round_trips() {
    watchdog(|| {
        let s = TcpSocket::new_v4().unwrap();
        assert!(!s.reuseport().unwrap());
        s.set_reuseport(true).unwrap();
        assert!(s.reuseport().unwrap());
        s.set_reuseport(false).unwrap();
        assert!(!s.reuseport().unwrap());
    });
}

#[test]
fn tcp_stream_keepalive_and_buffer_sizes_round_trip_through_the_os() {
    watchdog(|| {
        current_thread().block_on(async {
            let (client, server) = tcp_pair().await;
            for s in [&client, &server] {
                assert!(!s.keepalive().unwrap(), "off by default");
                s.set_keepalive(true).unwrap();
                assert!(s.keepalive().unwrap());
                s.set_keepalive(false).unwrap();
                assert!(!s.keepalive().unwrap());

                let want = s.send_buffer_size().unwrap().saturating_mul(2);
                s.set_send_buffer_size(want).unwrap();
                assert!(s.send_buffer_size().unwrap() >= want, "SO_SNDBUF");
                let want = s.recv_buffer_size().unwrap().saturating_mul(2);
                s.set_recv_buffer_size(want).unwrap();
                assert!(s.recv_buffer_size().unwrap() >= want, "SO_RCVBUF");
            }
        });
    });
}

#[cfg(unix)]
#[test]
fn reuseport_lets_two_listeners_bind_one_port() {
    watchdog(|| {
        workers(2).block_on(async {
            let a = TcpSocket::new_v4().unwrap();
            a.set_reuseport(true).unwrap();
            a.bind(loopback_v4()).unwrap();
            let addr = a.local_addr().unwrap();
            let la = a.listen(16).unwrap();

            // Without the option the port is taken ...
            let plain = TcpSocket::new_v4().unwrap();
            let err = plain.bind(addr).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");

            // ... with it, a second listener binds the same port.
            let b = TcpSocket::new_v4().unwrap();
            b.set_reuseport(true).unwrap();
            b.bind(addr).unwrap();
            let lb = b.listen(16).unwrap();
            assert_eq!(la.local_addr().unwrap(), lb.local_addr().unwrap());

            // Connections reach one of the two; each is accepted once.
            let mut accepted = 0;
            for _ in 0..8 {
                let mut client = ebbtide::net::TcpStream::connect(addr).await.unwrap();
                client.write_all(b"x").await.unwrap();
                let (mut server, _) = futures_lite::future::or(la.accept(), lb.accept())
                    .await
                    .unwrap();
                let mut one = [0; 1];
                server.read_exact(&mut one).await.unwrap();
                accepted += 1;
            }
            assert_eq!(accepted, 8);
        });
    });
}

#[test]
fn tcp_socket_v4_listens_and_connects() {
    watchdog(|| {
        workers(2).block_on(async {
            let srv = TcpSocket::new_v4().unwrap();
            srv.bind(loopback_v4()).unwrap();
            let listener = srv.listen(128).unwrap();
            let addr = listener.local_addr().unwrap();

            let mut client = TcpSocket::new_v4().unwrap().connect(addr).await.unwrap();
            let (mut server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            assert_eq!(client.peer_addr().unwrap(), addr);
            client.write_all(b"ping").await.unwrap();
            let mut buf = [0; 4];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
        });
    });
}

#[test]
fn tcp_socket_v6_listens_and_connects_where_ipv6_exists() {
    watchdog(|| {
        workers(2).block_on(async {
            let srv = match TcpSocket::new_v6() {
                Ok(s) => s,
                Err(e) => return eprintln!("skipped: no IPv6 sockets here: {e}"),
            };
            if let Err(e) = srv.bind("[::1]:0".parse().unwrap()) {
                return eprintln!("skipped: no IPv6 loopback here: {e}");
            }
            let listener = srv.listen(128).unwrap();
            let addr = listener.local_addr().unwrap();
            assert!(addr.is_ipv6());
            let client = TcpSocket::new_v6().unwrap().connect(addr).await.unwrap();
            let (_server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
        });
    });
}

#[test]
fn tcp_socket_bound_before_connect_uses_its_local_address() {
    watchdog(|| {
        workers(2).block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let cli = TcpSocket::new_v4().unwrap();
            cli.bind(loopback_v4()).unwrap();
            let local = cli.local_addr().unwrap();
            assert_ne!(local.port(), 0);
            let stream = cli.connect(listener.local_addr().unwrap()).await.unwrap();
            assert_eq!(stream.local_addr().unwrap(), local);
            let (_server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, local);
        });
    });
}

#[test]
fn tcp_socket_options_carry_into_the_connected_stream() {
    watchdog(|| {
        workers(2).block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let cli = TcpSocket::new_v4().unwrap();
            cli.set_keepalive(true).unwrap();
            cli.set_nodelay(true).unwrap();
            cli.set_linger(Some(Duration::from_secs(2))).unwrap();
            let stream = cli.connect(listener.local_addr().unwrap()).await.unwrap();
            assert!(stream.keepalive().unwrap());
            assert!(stream.nodelay().unwrap());
            assert_eq!(stream.linger().unwrap(), Some(Duration::from_secs(2)));
        });
    });
}

#[test]
fn tcp_socket_from_std_stream_sees_and_sets_its_options() {
    watchdog(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        std_stream.set_nodelay(true).unwrap();
        let local = std_stream.local_addr().unwrap();
        let s = TcpSocket::from_std_stream(std_stream);
        assert!(s.nodelay().unwrap(), "an option set through std is visible");
        assert_eq!(s.local_addr().unwrap(), local);
        s.set_keepalive(true).unwrap();
        assert!(s.keepalive().unwrap());
    });
}

#[test]
fn tcp_socket_connect_to_a_closed_port_is_refused() {
    watchdog(|| {
        current_thread().block_on(async {
            let addr = common::net::closed_port();
            let err = TcpSocket::new_v4()
                .unwrap()
                .connect(addr)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        });
    });
}

#[test]
fn tcp_socket_listen_and_connect_outside_a_runtime_say_so() {
    watchdog(|| {
        let s = TcpSocket::new_v4().unwrap(); // creating one needs no runtime
        s.bind(loopback_v4()).unwrap();
        let err = s.listen(8).unwrap_err();
        assert!(err.to_string().contains("TcpSocket::listen"), "{err}");
        let s = TcpSocket::new_v4().unwrap();
        let err = futures_lite::future::block_on(s.connect(loopback_v4())).unwrap_err();
        assert!(err.to_string().contains("TcpSocket::connect"), "{err}");
    });
}
