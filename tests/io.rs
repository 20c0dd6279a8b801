//! Readiness I/O through `ebbtide::io::Async`: data arrives intact, pending
//! reads can be dropped, registrations are released, misuse is an error.

mod common;

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::net::{checksum, pattern};
use common::watchdog;
use ebbtide::io::{Async, AsyncReadExt, AsyncWriteExt};
use ebbtide::runtime::Runtime;

#[test]
fn echo_over_64_loopback_connections_returns_exactly_what_was_sent() {
    const CONNS: usize = 64;
    const LEN: usize = 64 * 1024;
    watchdog(|| {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let listener = Async::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
            let addr = listener.get_ref().local_addr().unwrap();
            let server = ebbtide::spawn(async move {
                for _ in 0..CONNS {
                    let (s, _) = listener.read_with(|l| l.accept()).await.unwrap();
                    ebbtide::spawn(async move {
                        let mut s = Async::new(s).unwrap();
                        let mut buf = vec![0u8; 8192];
                        loop {
                            let n = s.read(&mut buf).await.unwrap();
                            if n == 0 {
                                break;
                            }
                            s.write_all(&buf[..n]).await.unwrap();
                        }
                    });
                }
            });
            let clients: Vec<_> = (0..CONNS)
                .map(|c| {
                    ebbtide::spawn(async move {
                        let stream = Async::new(TcpStream::connect(addr).unwrap()).unwrap();
                        let data = pattern(c, LEN);
                        let (mut reader, mut writer) = futures_lite::io::split(stream);
                        let sent = data.clone();
                        let w = ebbtide::spawn(async move {
                            writer.write_all(&sent).await.unwrap();
                            writer.flush().await.unwrap();
                            writer
                        });
                        let mut got = vec![0u8; LEN];
                        reader.read_exact(&mut got).await.unwrap();
                        drop(w.await.unwrap());
                        (checksum(&data), checksum(&got))
                    })
                })
                .collect();
            for c in clients {
                let (sent, got) = c.await.unwrap();
                assert_eq!(sent, got);
            }
            server.await.unwrap();
        });
    });
}

#[test]
fn a_dropped_pending_read_leaves_the_stream_usable() {
    watchdog(|| {
        ebbtide::block_on(async {
            let listener = Async::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
            let addr = listener.get_ref().local_addr().unwrap();
            let mut client = Async::new(TcpStream::connect(addr).unwrap()).unwrap();
            let (server, _) = listener.read_with(|l| l.accept()).await.unwrap();
            let mut server = Async::new(server).unwrap();
            let mut buf = [0u8; 4];
            // Nothing to read yet: the read is pending when the timeout drops it.
            let r = ebbtide::time::timeout(Duration::from_millis(10), server.read(&mut buf)).await;
            assert!(r.is_err());
            client.write_all(b"late").await.unwrap();
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"late");
        });
    });
}

#[test]
fn dropping_io_objects_releases_their_registrations() {
    watchdog(|| {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let listener = Async::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
            let addr = listener.get_ref().local_addr().unwrap();
            let client = Async::new(TcpStream::connect(addr).unwrap()).unwrap();
            assert_eq!(ebbtide::runtime::Handle::current().metrics().io_sources, 2);
            drop(client);
            let std_listener = listener.into_inner().unwrap();
            drop(std_listener);
        });
        assert_eq!(rt.metrics().io_sources, 0);
    });
}

#[test]
fn async_new_outside_a_runtime_is_an_error_not_a_panic() {
    let err = Async::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap_err();
    assert!(err.to_string().contains("outside a runtime"), "{err}");
}

#[test]
fn io_after_the_runtime_shut_down_reports_it() {
    watchdog(|| {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let (client, server) = rt.block_on(async {
            let listener = Async::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
            let addr = listener.get_ref().local_addr().unwrap();
            let client = Async::new(TcpStream::connect(addr).unwrap()).unwrap();
            let (server, _) = listener.read_with(|l| l.accept()).await.unwrap();
            (client, Async::new(server).unwrap())
        });
        rt.shutdown(Duration::from_millis(10));
        let mut server = server;
        let mut buf = [0u8; 1];
        let err = futures_lite::future::block_on(server.read(&mut buf)).unwrap_err();
        assert!(err.to_string().contains("has shut down"), "{err}");
        drop(client); // deregistering after shutdown is fine
    });
}

#[cfg(unix)]
#[test]
fn unix_stream_pair_round_trip_and_eof() {
    use std::os::unix::net::UnixStream;
    watchdog(|| {
        ebbtide::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (mut a, mut b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
            a.write_all(b"over the pair").await.unwrap();
            let mut buf = [0u8; 13];
            b.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"over the pair");
            drop(a);
            let mut rest = Vec::new();
            assert_eq!(
                b.read_to_end(&mut rest).await.unwrap(),
                0,
                "EOF after the peer closed"
            );
        });
    });
}
