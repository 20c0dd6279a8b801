//! Addresses in `ebbtide::net` (`src/net/addr.rs`): every `ToSocketAddrs`
//! form resolves, host names resolve on the blocking pool, and `connect` /
//! `bind` try each resolved address in turn.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::net::closed_port;
use common::watchdog;
use ebbtide::net::{TcpListener, TcpStream, UdpSocket};

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
