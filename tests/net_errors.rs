//! `ebbtide::net` failures and misuse are clear errors: a refused
//! connect, sockets made outside a runtime, operations after the runtime
//! shut down or while it ends, and an accept loop that runs out of
//! descriptors (`EMFILE`, Unix) and recovers.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::net::{closed_port, tcp_pair, tcp_with_std_peer};
use common::{watchdog, Flavour};
use ebbtide::io::{AsyncReadExt, BufResult};
use ebbtide::net::{TcpListener, TcpStream, UdpSocket};

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

/// Descriptor exhaustion, in a child process of its own (Unix: the limit
/// is lowered with `setrlimit`).
#[cfg(unix)]
mod emfile {
    use std::io::Read;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::common::{self, watchdog};
    use ebbtide::io::BufResult;
    use ebbtide::net::TcpListener;

    const EMFILE_TEST: &str =
        "emfile::accept_returns_emfile_and_a_backing_off_loop_then_accepts_every_queued_connection";
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
