//! Readiness: every task waiting on a direction of one handle is woken by
//! the event that concerns it, and `readable()` / `writable()` resolve at
//! once while the handle may be ready now. Scenarios after tokio's
//! `tcp_accept.rs` / `tcp_stream.rs` and async-io's `tests/async.rs`.

mod common;
use common::watchdog;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
use ebbtide::net::{TcpListener, TcpStream, UdpSocket};
use ebbtide::runtime::Runtime;
use futures_lite::future;

fn runtimes() -> Vec<Runtime> {
    vec![
        Runtime::builder().current_thread().build().unwrap(),
        Runtime::builder().worker_threads(2).build().unwrap(),
    ]
}

/// Lets every task spawned so far reach its first `Pending`.
async fn settle() {
    for _ in 0..50 {
        ebbtide::yield_now().await;
    }
    ebbtide::time::sleep(Duration::from_millis(20)).await;
}

async fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[test]
fn two_tasks_accepting_on_one_listener_both_get_a_connection() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let listener = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
                let addr = listener.local_addr().unwrap();
                let accepts: Vec<_> = (0..2)
                    .map(|_| {
                        let l = listener.clone();
                        ebbtide::spawn(async move { l.accept().await.map(|_| ()) })
                    })
                    .collect();
                settle().await; // both accepts wait before anyone connects
                let _a = TcpStream::connect(addr).await.unwrap();
                let _b = TcpStream::connect(addr).await.unwrap();
                for h in accepts {
                    h.await.unwrap().unwrap();
                }
            });
        }
    });
}

#[test]
fn many_tasks_accepting_on_one_listener_all_get_a_connection() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let listener = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
                let addr = listener.local_addr().unwrap();
                // More waiters than the waiter set's first limit.
                let accepted = Arc::new(AtomicUsize::new(0));
                let accepts: Vec<_> = (0..150)
                    .map(|_| {
                        let (l, n) = (listener.clone(), accepted.clone());
                        ebbtide::spawn(async move {
                            let conn = l.accept().await.unwrap();
                            n.fetch_add(1, Ordering::SeqCst);
                            conn
                        })
                    })
                    .collect();
                settle().await;
                let mut clients = Vec::new();
                for _ in 0..150 {
                    clients.push(TcpStream::connect(addr).await.unwrap());
                }
                for h in accepts {
                    h.await.unwrap();
                }
                assert_eq!(accepted.load(Ordering::SeqCst), 150);
            });
        }
    });
}

#[test]
fn two_tasks_reading_through_a_shared_stream_are_both_woken() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (mut client, server) = connected_pair().await;
                let server = Arc::new(server);
                let readers: Vec<_> = (0..2)
                    .map(|_| {
                        let s = server.clone();
                        ebbtide::spawn(async move {
                            let mut byte = [0u8; 1];
                            (&*s).read_exact(&mut byte).await.unwrap();
                            byte[0]
                        })
                    })
                    .collect();
                settle().await; // both readers wait before data arrives
                client.write_all(b"ab").await.unwrap();
                let mut got = Vec::new();
                for h in readers {
                    got.push(h.await.unwrap());
                }
                got.sort_unstable();
                assert_eq!(got, b"ab");
            });
        }
    });
}

#[test]
fn a_readable_waiter_beside_a_reading_task_is_woken_too() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (mut client, server) = connected_pair().await;
                let server = Arc::new(server);
                let s = server.clone();
                let reader = ebbtide::spawn(async move {
                    let mut buf = [0u8; 1];
                    (&*s).read_exact(&mut buf).await.unwrap();
                });
                let s = server.clone();
                let watcher = ebbtide::spawn(async move { s.readable().await.unwrap() });
                settle().await;
                client.write_all(b"xy").await.unwrap();
                reader.await.unwrap();
                watcher.await.unwrap();
            });
        }
    });
}

#[test]
fn two_tasks_receiving_on_one_udp_socket_are_both_woken() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let rx = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                let addr = rx.local_addr().unwrap();
                let receivers: Vec<_> = (0..2)
                    .map(|_| {
                        let s = rx.clone();
                        ebbtide::spawn(async move {
                            let mut buf = [0u8; 8];
                            s.recv_from(&mut buf).await.unwrap().0
                        })
                    })
                    .collect();
                settle().await;
                let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                tx.send_to(b"one", addr).await.unwrap();
                tx.send_to(b"two", addr).await.unwrap();
                for h in receivers {
                    assert_eq!(h.await.unwrap(), 3);
                }
            });
        }
    });
}

#[test]
fn writable_resolves_at_once_on_an_idle_connected_stream() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (client, server) = connected_pair().await;
                settle().await; // the connect's edge is long consumed
                for s in [&client, &server] {
                    let now = future::poll_once(s.writable()).await;
                    assert!(matches!(now, Some(Ok(()))), "writable now: {now:?}");
                }
                // Still so after a write that did not fill the buffer.
                (&client).write_all(b"hello").await.unwrap();
                let now = future::poll_once(client.writable()).await;
                assert!(matches!(now, Some(Ok(()))), "after a write: {now:?}");
            });
        }
    });
}

#[test]
fn readable_resolves_at_once_while_data_is_left_after_a_read() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (mut client, server) = connected_pair().await;
                client.write_all(b"0123456789").await.unwrap();
                settle().await;
                let mut four = [0u8; 4];
                (&server).read_exact(&mut four).await.unwrap();
                // Six bytes are still queued: no new edge will come.
                let now = future::poll_once(server.readable()).await;
                assert!(matches!(now, Some(Ok(()))), "readable now: {now:?}");
                let mut rest = [0u8; 6];
                (&server).read_exact(&mut rest).await.unwrap();
                assert_eq!(&rest, b"456789");
            });
        }
    });
}

#[test]
fn readable_waits_when_nothing_is_queued_and_wakes_on_data() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (mut client, server) = connected_pair().await;
                let server = Arc::new(server);
                // A read that found the queue empty proves "not readable".
                let mut buf = [0u8; 1];
                let pending = future::poll_once((&*server).read(&mut buf)).await;
                assert!(pending.is_none(), "nothing queued: {pending:?}");
                let now = future::poll_once(server.readable()).await;
                assert!(now.is_none(), "not readable after WouldBlock: {now:?}");
                let s = server.clone();
                let watcher = ebbtide::spawn(async move { s.readable().await.unwrap() });
                settle().await;
                client.write_all(b"z").await.unwrap();
                watcher.await.unwrap();
            });
        }
    });
}
