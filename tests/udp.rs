//! `ebbtide::net` UDP sockets: datagrams arrive intact and whole with the
//! borrowed and the owned-buffer APIs, unconnected and connected.

mod common;

use common::net::pattern;
use common::{watchdog, Flavour};
use ebbtide::io::BufResult;
use ebbtide::net::UdpSocket;

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
