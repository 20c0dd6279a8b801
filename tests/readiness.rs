//! Readiness: every task waiting on a direction of one handle is woken by
//! the event that concerns it, and `readable()` / `writable()` resolve at
//! once while the handle may be ready now. Scenarios after tokio's
//! `tcp_accept.rs` / `tcp_stream.rs` and async-io's `tests/async.rs`.

mod common;
use common::net::tcp_pair;
use common::{spin_forever, watchdog};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
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
                let (mut client, server) = tcp_pair().await;
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
                let (mut client, server) = tcp_pair().await;
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
                let (client, server) = tcp_pair().await;
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
                let (mut client, server) = tcp_pair().await;
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
                let (mut client, server) = tcp_pair().await;
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

/// After tokio's `tcp_accept.rs::accept_many`: fifty tasks each poll
/// `accept` once and wait; a single connection must wake every one of them
/// (the event takes the whole waiter set, not one slot). A waiter woken
/// spuriously before the connect polls `accept` again, so it stays
/// registered.
#[test]
fn one_connection_wakes_every_task_waiting_to_accept() {
    const TASKS: usize = 50;
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let listener = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
                let addr = listener.local_addr().unwrap();
                let connecting = Arc::new(AtomicBool::new(false));
                let registered = Arc::new(AtomicUsize::new(0));
                let woken = Arc::new(AtomicUsize::new(0));
                let waiters: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let (l, connecting) = (listener.clone(), connecting.clone());
                        let (registered, woken) = (registered.clone(), woken.clone());
                        ebbtide::spawn(async move {
                            let mut first = true;
                            std::future::poll_fn(|cx| {
                                if connecting.load(Ordering::SeqCst) && !first {
                                    woken.fetch_add(1, Ordering::SeqCst);
                                    return Poll::Ready(());
                                }
                                match l.poll_accept(cx) {
                                    Poll::Pending if first => {
                                        first = false;
                                        registered.fetch_add(1, Ordering::SeqCst);
                                        Poll::Pending
                                    }
                                    Poll::Pending => Poll::Pending,
                                    // The connection came while re-polling:
                                    // that poll was the wake.
                                    Poll::Ready(r) => {
                                        r.unwrap();
                                        woken.fetch_add(1, Ordering::SeqCst);
                                        Poll::Ready(())
                                    }
                                }
                            })
                            .await
                        })
                    })
                    .collect();
                while registered.load(Ordering::SeqCst) < TASKS {
                    ebbtide::yield_now().await;
                }
                connecting.store(true, Ordering::SeqCst);
                let _client = TcpStream::connect(addr).await.unwrap();
                for h in waiters {
                    h.await.unwrap();
                }
                assert_eq!(woken.load(Ordering::SeqCst), TASKS);
            });
        }
    });
}

/// After async-io's `tests/async.rs::tcp_duplex`: a reader and a writer
/// blocked on the same stream at once; an event for one direction must
/// neither consume nor drop the other direction's waiter.
#[test]
fn a_reader_and_a_writer_blocked_on_one_stream_are_each_woken_by_their_own_direction() {
    // Far more than the loopback socket buffers hold, so the writer blocks.
    const CHUNKS: usize = 4096;
    async fn read_to_eof(s: Arc<TcpStream>) -> usize {
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        loop {
            match (&*s).read(&mut buf).await.unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    }
    async fn write_then_shut(s: Arc<TcpStream>) {
        let chunk = vec![7u8; 4096];
        for _ in 0..CHUNKS {
            (&*s).write_all(&chunk).await.unwrap();
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (a, b) = tcp_pair().await;
                let (a, b) = (Arc::new(a), Arc::new(b));
                let read_a = ebbtide::spawn(read_to_eof(a.clone()));
                let write_a = ebbtide::spawn(write_then_shut(a.clone()));
                settle().await;
                assert!(!read_a.is_finished() && !write_a.is_finished());
                // Draining `b` makes `a` writable only.
                let read_b = ebbtide::spawn(read_to_eof(b.clone()));
                write_a.await.unwrap();
                assert_eq!(read_b.await.unwrap(), CHUNKS * 4096);
                assert!(!read_a.is_finished(), "nothing was sent to `a` yet");
                // Now `a` becomes readable: its reader, waiting since before
                // the write events, must still be woken.
                let write_b = ebbtide::spawn(write_then_shut(b.clone()));
                assert_eq!(read_a.await.unwrap(), CHUNKS * 4096);
                write_b.await.unwrap();
            });
        }
    });
}

/// Writes through `s` until a write would block; returns the bytes written.
async fn fill_send_buffer(s: &TcpStream) -> usize {
    let chunk = vec![1u8; 64 * 1024];
    let mut written = 0;
    // Unconstrained: `Pending` must mean "full", not "budget spent".
    while let Some(n) = future::poll_once(ebbtide::task::unconstrained((&*s).write(&chunk))).await {
        written += n.unwrap();
    }
    written
}

/// Reads exactly `n` bytes from `s`, discarding them.
async fn drain(s: &TcpStream, n: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = n;
    while left > 0 {
        let k = (&*s).read(&mut buf[..left.min(64 * 1024)]).await.unwrap();
        assert!(k > 0, "EOF with {left} bytes to go");
        left -= k;
    }
}

/// After tokio's `tcp_stream.rs::try_read_write` and `poll_write_ready`:
/// once a write would block, `writable()` waits (it does not resolve on a
/// stale readiness), and a task waiting in it is woken when the peer reads
/// the queued bytes.
#[test]
fn writable_waits_while_the_send_buffer_is_full_and_wakes_when_the_peer_drains_it() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (client, server) = tcp_pair().await;
                let client = Arc::new(client);
                for round in 0..3 {
                    let written = fill_send_buffer(&client).await;
                    assert!(written > 0, "round {round}");
                    let now = future::poll_once(client.writable()).await;
                    assert!(now.is_none(), "round {round}: writable while full: {now:?}");
                    let c = client.clone();
                    let watcher = ebbtide::spawn(async move { c.writable().await.unwrap() });
                    settle().await;
                    assert!(!watcher.is_finished(), "round {round}: woken while full");
                    drain(&server, written).await;
                    watcher.await.unwrap();
                    // Writable at once again, and a write goes through.
                    let now = future::poll_once(client.writable()).await;
                    assert!(matches!(now, Some(Ok(()))), "round {round}: {now:?}");
                }
            });
        }
    });
}

/// After tokio's `tcp_stream.rs::poll_write_ready` ("detect the server
/// disconnect") and async-io's `tcp_reader_hangup`: a writer blocked on a
/// full send buffer, and a `writable()` waiter beside it, are woken when the
/// peer goes away, and the writer gets an error instead of waiting forever.
#[test]
fn a_writer_blocked_on_a_full_buffer_is_woken_with_an_error_when_the_peer_drops() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (client, server) = tcp_pair().await;
                let client = Arc::new(client);
                fill_send_buffer(&client).await;
                let c = client.clone();
                let writer = ebbtide::spawn(async move {
                    let chunk = vec![2u8; 64 * 1024];
                    loop {
                        if let Err(e) = (&*c).write_all(&chunk).await {
                            return e;
                        }
                    }
                });
                let c = client.clone();
                let watcher = ebbtide::spawn(async move { c.writable().await });
                settle().await;
                assert!(!writer.is_finished() && !watcher.is_finished());
                // Unread data queued: closing resets the connection.
                drop(server);
                let err = writer.await.unwrap();
                assert!(
                    matches!(
                        err.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    ),
                    "{err:?}"
                );
                // Woken; whether it reports the error or readiness is the OS's.
                let _ = watcher.await.unwrap();
            });
        }
    });
}

/// After tokio's `tcp_stream.rs::poll_read_ready` ("detect the client
/// disconnect") and async-io's `tcp_writer_hangup`: a reader and a
/// `readable()` waiter on a stream that has nothing queued are both woken
/// when the peer closes without sending, and the reader sees EOF.
#[test]
fn a_reader_and_a_readable_waiter_are_woken_when_the_peer_closes_without_sending() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (client, server) = tcp_pair().await;
                let server = Arc::new(server);
                let s = server.clone();
                let reader = ebbtide::spawn(async move {
                    let mut buf = [0u8; 16];
                    (&*s).read(&mut buf).await.unwrap()
                });
                let s = server.clone();
                let watcher = ebbtide::spawn(async move { s.readable().await.unwrap() });
                settle().await;
                assert!(!reader.is_finished() && !watcher.is_finished());
                drop(client);
                assert_eq!(reader.await.unwrap(), 0, "EOF");
                watcher.await.unwrap();
                // The closed read side stays readable: no wait, EOF again.
                let now = future::poll_once(server.readable()).await;
                assert!(matches!(now, Some(Ok(()))), "{now:?}");
                let mut buf = [0u8; 4];
                assert_eq!((&*server).read(&mut buf).await.unwrap(), 0);
            });
        }
    });
}

/// After tokio's `tcp_stream.rs::try_read_write` (`readable().await` then
/// `try_read`): once `readable()` has resolved because data arrived, the
/// next read returns that data on its first poll, round after round,
/// including after a read that drained the queue.
#[test]
fn a_read_right_after_readable_resolves_returns_data_on_its_first_poll() {
    const ROUNDS: usize = 100;
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let (mut client, server) = tcp_pair().await;
                let (ack_tx, ack_rx) = async_channel::bounded::<()>(1);
                let reader = ebbtide::spawn(async move {
                    let mut buf = [0u8; 64];
                    for round in 0..ROUNDS {
                        server.readable().await.unwrap();
                        let first = future::poll_once((&server).read(&mut buf)).await;
                        let mut got = match first {
                            Some(Ok(n)) if n > 0 => n,
                            other => panic!("round {round}: read after readable: {other:?}"),
                        };
                        while got < 10 {
                            got += (&server).read(&mut buf[got..10]).await.unwrap();
                        }
                        assert_eq!(&buf[..10], b"0123456789", "round {round}");
                        ack_tx.send(()).await.unwrap();
                    }
                });
                for round in 0..ROUNDS {
                    if round % 2 == 0 {
                        settle_briefly().await; // the reader waits first
                    }
                    client.write_all(b"0123456789").await.unwrap();
                    ack_rx.recv().await.unwrap();
                }
                reader.await.unwrap();
            });
        }
    });
}

/// A few yields: enough for a spawned task on this runtime to get going.
async fn settle_briefly() {
    for _ in 0..20 {
        ebbtide::yield_now().await;
    }
}

/// After tokio's `rt_common.rs::io_driver_called_when_under_load`: while
/// every runner is kept busy by a hundred tasks that are always ready, the
/// reactor is still polled, so a TCP exchange between two other tasks
/// completes.
#[test]
fn io_events_reach_tasks_while_every_runner_is_busy_with_always_ready_tasks() {
    watchdog(|| {
        for rt in runtimes() {
            let spinners: Vec<_> = (0..100).map(|_| rt.spawn(spin_forever())).collect();
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = ebbtide::spawn(async move {
                    let (mut s, _) = listener.accept().await.unwrap();
                    s.write_all(b"hello world").await.unwrap();
                });
                let client = ebbtide::spawn(async move {
                    let mut s = TcpStream::connect(addr).await.unwrap();
                    let mut got = [0u8; 11];
                    s.read_exact(&mut got).await.unwrap();
                    got
                });
                server.await.unwrap();
                assert_eq!(&client.await.unwrap(), b"hello world");
            });
            let report = rt.shutdown(Duration::ZERO);
            assert_eq!(report.cancelled, 100, "{report}");
            for h in spinners {
                assert!(futures_lite::future::block_on(h)
                    .unwrap_err()
                    .is_cancelled());
            }
        }
    });
}

/// After tokio's `tcp_accept.rs::no_extra_poll`: an accept loop is polled
/// once to start waiting, and each connection costs exactly two more polls
/// (one that accepts, one that finds the queue empty and waits again): the
/// reactor sends no wake that has no event behind it.
#[test]
fn an_accept_loop_is_polled_twice_per_connection_and_never_spuriously() {
    watchdog(|| {
        for rt in runtimes() {
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let polls = Arc::new(AtomicUsize::new(0));
                let (accepted_tx, accepted_rx) = async_channel::unbounded();
                let p = polls.clone();
                let acceptor = ebbtide::spawn(async move {
                    let mut conns = Vec::new();
                    loop {
                        let conn = std::future::poll_fn(|cx| {
                            p.fetch_add(1, Ordering::SeqCst);
                            listener.poll_accept(cx)
                        })
                        .await
                        .unwrap();
                        conns.push(conn); // keep it open
                        accepted_tx.send(()).await.unwrap();
                    }
                });
                settle().await;
                assert_eq!(polls.load(Ordering::SeqCst), 1, "the first poll only");
                let mut clients = Vec::new();
                for n in 1..=5 {
                    clients.push(TcpStream::connect(addr).await.unwrap());
                    accepted_rx.recv().await.unwrap();
                    settle().await;
                    assert_eq!(polls.load(Ordering::SeqCst), 1 + 2 * n, "connection {n}");
                }
                acceptor.abort();
            });
        }
    });
}
