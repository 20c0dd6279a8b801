//! `ebbtide::net` Unix-domain sockets: streams over a listener and a pair,
//! datagrams bound, unbound and paired, with the borrowed and the
//! owned-buffer APIs.
#![cfg(unix)]

mod common;

use std::net::Shutdown;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::net::{checksum, pattern};
use common::{watchdog, Flavour};
use ebbtide::io::{AsyncReadExt, AsyncWriteExt, BufResult};
use ebbtide::net::{UnixDatagram, UnixListener, UnixStream};

/// A fresh socket path in the temp dir (removed first if left over).
fn sock_path(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("ebbtide-{}-{n}-{name}.sock", std::process::id()));
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
