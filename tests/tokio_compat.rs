//! tokio-only crates on ebbtide (`docs/guide.md`, "tokio crates through
//! async-compat"): what the guide claims, checked.
//!
//! - tokio's own `TcpStream` (a tokio-only API: it registers with tokio's
//!   reactor) talks to an ebbtide listener when the code that uses it runs
//!   inside `async_compat::Compat`, and panics "no reactor running" without
//!   it; the reactor `Compat` brings is one extra thread,
//!   `async-compat/tokio-1`, started once per process.
//! - a real tokio-based client crate, `reqwest`, fetches from an ebbtide
//!   HTTP server inside `Compat`.
//! - the other direction needs no tokio reactor: an ebbtide stream wrapped
//!   in `Compat` implements tokio's `AsyncRead` / `AsyncWrite`, so tokio's
//!   io adapters (`BufReader`, `read_line`, `write_all`) run over it.
//! - `tokio::sync` (`mpsc`, `oneshot`, `Mutex`, `Notify`) is
//!   runtime-agnostic: it works between ebbtide tasks with no wrapper, on a
//!   current-thread runtime and on several workers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use async_compat::Compat;
use common::{flavours, panic_message, watchdog};
use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
use ebbtide::net::{SocketAddr, TcpListener};

/// Serves `conns` connections on `listener`, each as an uppercasing echo
/// until end-of-file, with ebbtide's own futures-io `TcpStream`; returns
/// the bytes echoed per connection.
async fn upper_echo(listener: TcpListener, conns: usize) -> Vec<usize> {
    let mut echoed = Vec::new();
    for _ in 0..conns {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            buf[..n].make_ascii_uppercase();
            s.write_all(&buf[..n]).await.unwrap();
            total += n;
        }
        echoed.push(total);
    }
    echoed
}

/// One request-reply over tokio's `TcpStream` and tokio's io traits.
async fn tokio_client(addr: SocketAddr, msgs: &[&[u8]]) -> Vec<Vec<u8>> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut replies = Vec::new();
    for m in msgs {
        s.write_all(m).await.unwrap();
        let mut reply = vec![0u8; m.len()];
        s.read_exact(&mut reply).await.unwrap();
        replies.push(reply);
    }
    s.shutdown().await.unwrap();
    replies
}

#[test]
fn tokio_tcp_stream_talks_to_an_ebbtide_listener_inside_compat() {
    watchdog(|| {
        for f in flavours() {
            let (echoed, replies) = f.rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = ebbtide::spawn(upper_echo(listener, 1));
                let msgs: [&[u8]; 3] = [b"a", b"hello", &[b'x'; 3000]];
                let replies = Compat::new(tokio_client(addr, &msgs)).await;
                (server.await.unwrap(), replies)
            });
            assert_eq!(echoed, [1 + 5 + 3000], "{}", f.name);
            assert_eq!(replies[0], b"A", "{}", f.name);
            assert_eq!(replies[1], b"HELLO", "{}", f.name);
            assert_eq!(replies[2], vec![b'X'; 3000], "{}", f.name);
        }
    });
}

/// The panic the tests below provoke on purpose.
const NO_REACTOR: &str = "no reactor running";

/// Keeps the default panic hook for everything but [`NO_REACTOR`] panics
/// (expected: printing them would only clutter the output).
fn quiet_no_reactor_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !panic_message(info.payload()).contains(NO_REACTOR) {
                default(info);
            }
        }));
    });
}

#[test]
fn tokio_tcp_stream_without_compat_panics_no_reactor_running() {
    quiet_no_reactor_panics();
    watchdog(|| {
        // A thread of its own, so the panic ends that thread only and its
        // payload comes back through `join`.
        let outcome = std::thread::spawn(|| {
            let rt = common::current_thread();
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                // No `Compat`: tokio finds no reactor of its own here.
                tokio::net::TcpStream::connect(addr).await.map(|_| ())
            })
        })
        .join();
        let payload = outcome.expect_err("tokio's TcpStream ran without a tokio reactor");
        let msg = panic_message(&*payload);
        assert!(
            msg.contains(NO_REACTOR),
            "unexpected panic message: {msg:?}"
        );
    });
}

#[test]
fn tokio_time_without_compat_panics_and_works_inside_it() {
    quiet_no_reactor_panics();
    watchdog(|| {
        let outcome = std::thread::spawn(|| {
            common::current_thread().block_on(tokio::time::sleep(std::time::Duration::ZERO))
        })
        .join();
        let msg = panic_message(&*outcome.expect_err("tokio's timer ran without tokio"));
        assert!(
            msg.contains(NO_REACTOR),
            "unexpected panic message: {msg:?}"
        );
        let rt = common::current_thread();
        let woke = rt.block_on(Compat::new(async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            true
        }));
        assert!(woke);
    });
}

/// Names of this process's threads (Linux: `/proc/self/task/*/comm`,
/// truncated by the kernel to 15 bytes).
#[cfg(target_os = "linux")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim_end().to_string())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn compat_runs_one_extra_tokio_thread_per_process() {
    watchdog(|| {
        // Two runtimes, several `Compat` futures each: still one thread.
        for _ in 0..2 {
            let rt = common::workers(2);
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = ebbtide::spawn(upper_echo(listener, 3));
                for _ in 0..3 {
                    Compat::new(tokio_client(addr, &[b"ping"])).await;
                }
                assert_eq!(server.await.unwrap(), [4, 4, 4]);
            });
        }
        let compat_threads = thread_names()
            .into_iter()
            .filter(|n| n.starts_with("async-compat"))
            .count();
        assert_eq!(compat_threads, 1);
    });
}

#[test]
fn tokio_io_adapters_run_over_an_ebbtide_stream_in_compat() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    watchdog(|| {
        for f in flavours() {
            let lines = f.rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = ebbtide::spawn(upper_echo(listener, 1));
                // An ebbtide stream, seen through tokio's io traits.
                let stream = ebbtide::net::TcpStream::connect(addr).await.unwrap();
                let mut stream = tokio::io::BufReader::new(Compat::new(stream));
                let mut lines = Vec::new();
                for word in ["one", "two", "three"] {
                    stream
                        .write_all(format!("{word}\n").as_bytes())
                        .await
                        .unwrap();
                    let mut line = String::new();
                    stream.read_line(&mut line).await.unwrap();
                    lines.push(line);
                }
                stream.shutdown().await.unwrap();
                assert_eq!(server.await.unwrap(), [4 + 4 + 6]);
                lines
            });
            assert_eq!(lines, ["ONE\n", "TWO\n", "THREE\n"], "{}", f.name);
        }
    });
}

/// A one-response-per-connection HTTP/1.1 server on ebbtide: reads a
/// request head, answers `200` with `body` and closes; returns the request
/// lines it saw.
async fn http_server(listener: TcpListener, conns: usize, body: &'static str) -> Vec<String> {
    let mut request_lines = Vec::new();
    for _ in 0..conns {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before the end of its request");
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8(head).unwrap();
        request_lines.push(head.lines().next().unwrap().to_string());
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(response.as_bytes()).await.unwrap();
        s.close().await.unwrap();
    }
    request_lines
}

#[test]
fn reqwest_fetches_from_an_ebbtide_http_server_inside_compat() {
    watchdog(|| {
        let rt = common::workers(2);
        let (seen, bodies) = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = ebbtide::spawn(http_server(listener, 2, "hello from ebbtide"));
            let bodies = Compat::new(async move {
                let client = reqwest::Client::new();
                let mut bodies = Vec::new();
                for path in ["/a", "/b"] {
                    let resp = client
                        .get(format!("http://{addr}{path}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                    bodies.push(resp.text().await.unwrap());
                }
                bodies
            })
            .await;
            (server.await.unwrap(), bodies)
        });
        assert_eq!(seen, ["GET /a HTTP/1.1", "GET /b HTTP/1.1"]);
        assert_eq!(bodies, ["hello from ebbtide", "hello from ebbtide"]);
    });
}

// ---------------------------------------------------------------------------
// tokio::sync: runtime-agnostic, no wrapper
// ---------------------------------------------------------------------------

#[test]
fn tokio_mpsc_carries_every_message_in_order_between_ebbtide_tasks() {
    const PRODUCERS: usize = 4;
    const EACH: usize = 500;
    watchdog(|| {
        for f in flavours() {
            // Capacity 4: producers wait for room, so the receiver's wakes
            // of blocked senders are exercised too.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, usize)>(4);
            for p in 0..PRODUCERS {
                let tx = tx.clone();
                f.rt.spawn(async move {
                    for i in 0..EACH {
                        tx.send((p, i)).await.unwrap();
                    }
                });
            }
            drop(tx);
            let (next, _) = f.run(async move {
                let mut next = [0usize; PRODUCERS];
                while let Some((p, i)) = rx.recv().await {
                    assert_eq!(i, next[p], "producer {p} out of order");
                    next[p] += 1;
                }
                next
            });
            assert_eq!(next, [EACH; PRODUCERS], "{}", f.name);
        }
    });
}

#[test]
fn tokio_oneshot_delivers_a_value_and_reports_a_dropped_sender() {
    watchdog(|| {
        for f in flavours() {
            let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
            let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<u32>();
            f.rt.spawn(async move {
                ebbtide::yield_now().await;
                tx.send(42).unwrap();
                drop(dropped_tx);
            });
            // A value from the blocking pool, too (another thread).
            let (blocking_tx, blocking_rx) = tokio::sync::oneshot::channel::<u32>();
            f.rt.spawn_blocking(move || blocking_tx.send(7).unwrap());
            let ((v, closed, b), _) =
                f.run(async move { (rx.await, dropped_rx.await, blocking_rx.await) });
            assert_eq!(v, Ok(42), "{}", f.name);
            assert!(closed.is_err(), "{}: a dropped sender must close", f.name);
            assert_eq!(b, Ok(7), "{}", f.name);
        }
    });
}

#[test]
fn tokio_mutex_serialises_ebbtide_tasks_that_yield_while_holding_it() {
    const TASKS: usize = 8;
    const EACH: usize = 200;
    watchdog(|| {
        for f in flavours() {
            // (value, holders): `holders` must never exceed 1.
            let lock = Arc::new(tokio::sync::Mutex::new((0usize, 0usize)));
            let max_holders = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (lock, max_holders) = (lock.clone(), max_holders.clone());
                    f.rt.spawn(async move {
                        for _ in 0..EACH {
                            let mut g = lock.lock().await;
                            g.1 += 1;
                            max_holders.fetch_max(g.1, Ordering::SeqCst);
                            // Yield holding the lock: the others must wait.
                            ebbtide::yield_now().await;
                            g.0 += 1;
                            g.1 -= 1;
                        }
                    })
                })
                .collect();
            for t in tasks {
                f.join(t).unwrap();
            }
            let total = f.rt.block_on(async { lock.lock().await.0 });
            assert_eq!(total, TASKS * EACH, "{}", f.name);
            assert_eq!(max_holders.load(Ordering::SeqCst), 1, "{}", f.name);
        }
    });
}

#[test]
fn tokio_notify_wakes_every_waiter_and_keeps_one_permit() {
    const WAITERS: usize = 16;
    watchdog(|| {
        for f in flavours() {
            let notify = Arc::new(tokio::sync::Notify::new());
            let registered = Arc::new(AtomicUsize::new(0));
            let woken = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..WAITERS)
                .map(|_| {
                    let (notify, registered, woken) =
                        (notify.clone(), registered.clone(), woken.clone());
                    f.rt.spawn(async move {
                        let notified = notify.notified();
                        tokio::pin!(notified);
                        // Registered before it is counted, so no wake is lost.
                        notified.as_mut().enable();
                        registered.fetch_add(1, Ordering::SeqCst);
                        notified.await;
                        woken.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            f.wait_until(|| registered.load(Ordering::SeqCst) == WAITERS);
            assert_eq!(woken.load(Ordering::SeqCst), 0, "{}", f.name);
            notify.notify_waiters();
            for t in tasks {
                f.join(t).unwrap();
            }
            assert_eq!(woken.load(Ordering::SeqCst), WAITERS, "{}", f.name);

            // `notify_one` with no waiter stores a permit: the next waiter
            // passes at once.
            notify.notify_one();
            let (passed, _) = f.run({
                let notify = notify.clone();
                async move {
                    notify.notified().await;
                    true
                }
            });
            assert!(passed, "{}", f.name);
        }
    });
}
