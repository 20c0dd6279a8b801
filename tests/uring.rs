//! The io_uring backend (`src/sys/uring.rs`, `src/op/uring.rs`): which
//! backend runs, the fallback when io_uring is unavailable, and the
//! ownership protocol of ops in the ring — a buffer is dropped exactly
//! once, after the kernel's completion, whatever the caller drops when.
//!
//! Every runtime here asks for io_uring by name, so these tests run the
//! ring whatever `EBBTIDE_IO_BACKEND` the suite runs under. Linux only.
#![cfg(target_os = "linux")]

mod common;

use std::future::Future;
use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::fs::TempDir;
use common::{watchdog, BufLedger, Rng};
use ebbtide::fs::File;
use ebbtide::io::BufResult;
use ebbtide::runtime::{IoBackend, Runtime};

fn ring_runtime() -> Runtime {
    Runtime::builder()
        .current_thread()
        .io_backend(IoBackend::IoUring)
        .io_uring_sockets(true)
        .build()
        .expect("io_uring on this kernel")
}

/// A pipe: its read end as an `ebbtide::fs::File` (reads through the ring
/// wait until data arrives), its write end as a std `File`.
fn pipe() -> (File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are new and owned here.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    (
        File::from_std(std::fs::File::from(r)),
        std::fs::File::from(w),
    )
}

/// A pipe read's buffer: larger than the inline cached read tries (whose
/// `preadv2` fails on a pipe with `ESPIPE`), so it goes to the ring.
const PIPE_READ: usize = 128 << 10;

/// Polls `fut` `n` times with a waker that does nothing, then drops it.
fn poll_then_drop<F: Future>(fut: F, n: usize) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..n {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// Lets the runtime's driver submit what is queued and reap what
/// completed (a short sleep blocks in the ring).
async fn drive() {
    ebbtide::time::sleep(Duration::from_millis(2)).await;
}

#[test]
fn auto_runs_io_uring_on_this_kernel_unless_the_environment_says_otherwise() {
    let rt = Runtime::builder().current_thread().build().unwrap();
    let expected = match std::env::var("EBBTIDE_IO_BACKEND").as_deref() {
        Ok("epoll") => IoBackend::Epoll,
        _ => IoBackend::IoUring,
    };
    assert_eq!(rt.metrics().io_backend, expected);
    assert!(format!("{rt:?}").contains(&format!("io_backend: {expected:?}")));
    let epoll = Runtime::builder()
        .current_thread()
        .io_backend(IoBackend::Epoll)
        .build()
        .unwrap();
    assert_eq!(epoll.metrics().io_backend, IoBackend::Epoll);
}

#[test]
fn a_backend_of_another_platform_is_refused_by_name() {
    let err = Runtime::builder()
        .io_backend(IoBackend::Kqueue)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("Kqueue"), "{err}");
}

#[test]
fn an_op_dropped_in_flight_keeps_its_buffer_until_the_kernel_acknowledges_the_cancel() {
    watchdog(|| {
        let ledger = BufLedger::new();
        let l = ledger.clone();
        let rt = ring_runtime();
        rt.block_on(async move {
            let (reader, _writer) = pipe();
            // No data: the read waits in the kernel.
            assert!(poll_then_drop(reader.read_at(l.buf(PIPE_READ), 0), 1).is_none());
            // Dropped: the cancel is requested, the buffer is still the
            // kernel's until the cancel's acknowledgement is reaped.
            assert_eq!(l.dropped.load(Ordering::SeqCst), 0);
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!((m.ops_in_flight, m.ops_cancelled), (1, 1));
            drive().await;
            assert_eq!(l.dropped.load(Ordering::SeqCst), 1);
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!(m.ops_in_flight, 0);
            assert_eq!(m.ops_completed_after_cancel, 0, "ECANCELED, not data");
            assert_eq!(m.ops_stale_completions, 0);
        });
        ledger.assert_all_dropped_once();
    });
}

#[test]
fn a_read_that_completes_after_its_cancel_lands_in_the_still_owned_buffer() {
    watchdog(|| {
        let ledger = BufLedger::new();
        let l = ledger.clone();
        let rt = ring_runtime();
        rt.block_on(async move {
            let (reader, mut writer) = pipe();
            let mut read = Box::pin(reader.read_at(l.buf(PIPE_READ), 0));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(read.as_mut().poll(&mut cx).is_pending());
            drive().await; // the read is in the kernel now
            drop(read); // its cancel is queued, not yet submitted
            assert_eq!(
                ebbtide::runtime::Handle::current().metrics().ops_cancelled,
                1
            );
            // The data arrives first: the kernel completes the read (its
            // task work runs as this write returns), into the buffer the
            // dropped future no longer has.
            std::io::Write::write_all(&mut writer, b"late bytes").unwrap();
            assert_eq!(l.dropped.load(Ordering::SeqCst), 0);
            drive().await;
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!(m.ops_in_flight, 0);
            assert_eq!(m.ops_completed_after_cancel, 1);
        });
        ledger.assert_all_dropped_once();
        assert_eq!(ledger.bytes_at_drop.lock().unwrap()[0], b"late bytes");
    });
}

#[test]
fn a_completed_read_returns_its_buffer_with_the_bytes() {
    watchdog(|| {
        let rt = ring_runtime();
        rt.block_on(async {
            let (reader, mut writer) = pipe();
            std::io::Write::write_all(&mut writer, b"ring").unwrap();
            let BufResult(n, buf) = reader.read_at(Vec::with_capacity(PIPE_READ), 0).await;
            assert_eq!(n.unwrap(), 4);
            assert_eq!(buf, b"ring");
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!(m.ops_submitted, 1, "the read went through the ring");
        });
    });
}

#[test]
fn file_writes_syncs_and_opens_go_through_the_ring() {
    watchdog(|| {
        let dir = TempDir::new("uring-files");
        let path = dir.path("f");
        let rt = ring_runtime();
        rt.block_on(async move {
            let mut file = File::create(&path).await.unwrap();
            let BufResult(n, _) = file.write_at(b"hello ring".to_vec(), 0).await;
            assert_eq!(n.unwrap(), 10);
            file.sync_all().await.unwrap();
            file.sync_data().await.unwrap();
            let file = File::open(&path).await.unwrap();
            // Larger than the inline cached read takes: through the ring.
            let BufResult(n, buf) = file.read_at(Vec::with_capacity(128 << 10), 0).await;
            assert_eq!(n.unwrap(), 10);
            assert_eq!(buf, b"hello ring");
            let m = ebbtide::runtime::Handle::current().metrics();
            // create, write, sync_all, sync_data, open, read.
            assert_eq!(m.ops_submitted, 6);
            assert_eq!(m.blocking_threads, 0, "no op needed the pool");
            let err = File::open(dir.path("missing")).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        });
    });
}

/// Ops of every kind the ring takes (pipe, TCP and UDP reads, accepts,
/// file reads and writes, opens), each dropped after a random number of polls (often in
/// flight, sometimes after completing): every buffer is dropped exactly
/// once, and the table ends empty.
#[test]
fn random_drops_of_in_flight_ops_drop_each_buffer_once_after_its_completion() {
    watchdog(|| {
        let ops = common::scaled(100_000, 20_000);
        let ledger = BufLedger::new();
        let l = ledger.clone();
        let dir = TempDir::new("uring-drops");
        let path = dir.file("data", &vec![7u8; 256 << 10]);
        let rt = ring_runtime();
        rt.block_on(async move {
            let (reader, mut writer) = pipe();
            let file = File::options()
                .read(true)
                .write(true)
                .open(&path)
                .await
                .unwrap();
            let (sock, peer) = tcp_pair().await;
            let udp = ebbtide::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let udp_peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let listener = ebbtide::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let mut rng = Rng::new(0x5eed);
            for i in 0..ops {
                let polls = rng.below(3) as usize;
                match i % 8 {
                    7 => {
                        if rng.below(4) == 0 {
                            // Some datagrams complete a recv.
                            udp_peer.send_to(b"d", udp.local_addr().unwrap()).unwrap();
                        }
                        drop(poll_then_drop(udp.recv_from_owned(l.buf(64)), polls));
                    }
                    6 => {
                        // Accepts own no buffer: a connection some of them
                        // take (or a dropped one took) is closed with its
                        // output; the table ends empty all the same.
                        if rng.below(4) == 0 {
                            let addr = listener.local_addr().unwrap();
                            drop(std::net::TcpStream::connect(addr).unwrap());
                        }
                        drop(poll_then_drop(listener.accept(), polls));
                    }
                    5 => {
                        if rng.below(4) == 0 {
                            peer.write_all_owned(vec![9u8; 8]).await.0.unwrap();
                        }
                        drop(poll_then_drop(sock.read_owned(l.buf(64)), polls));
                    }
                    0 => drop(poll_then_drop(reader.read_at(l.buf(PIPE_READ), 0), polls)),
                    1 => drop(poll_then_drop(
                        file.read_at(l.buf(128 << 10), rng.below(128 << 10)),
                        polls,
                    )),
                    2 => {
                        let mut b = l.buf(64);
                        b.vec.extend_from_slice(&[1; 64]);
                        drop(poll_then_drop(file.write_at(b, rng.below(1 << 16)), polls))
                    }
                    3 => drop(poll_then_drop(File::open(&path), polls)),
                    _ => {
                        if rng.below(4) == 0 {
                            // Some pipe reads complete with data.
                            std::io::Write::write_all(&mut writer, b"x").unwrap();
                        }
                        drop(poll_then_drop(reader.read_at(l.buf(PIPE_READ), 0), polls));
                    }
                }
                if i % 64 == 0 {
                    drive().await;
                }
            }
            for _ in 0..100 {
                if ebbtide::runtime::Handle::current().metrics().ops_in_flight == 0 {
                    break;
                }
                drive().await;
            }
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!(m.ops_in_flight, 0, "every op acknowledged");
            assert_eq!(m.ops_stale_completions, 0);
        });
        ledger.assert_all_dropped_once();
    });
}

#[test]
fn shutdown_settles_ops_in_flight_before_it_reports() {
    watchdog(|| {
        let ledger = BufLedger::new();
        let rt = Runtime::builder()
            .worker_threads(2)
            .io_backend(IoBackend::IoUring)
            .build()
            .unwrap();
        let (reader, writer) = rt.block_on(async { pipe() });
        let reader = Arc::new(reader);
        for _ in 0..32 {
            let (r, l) = (reader.clone(), ledger.clone());
            rt.spawn(async move { r.read_at(l.buf(PIPE_READ), 0).await });
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(rt.metrics().ops_in_flight, 32);
        let report = rt.shutdown(Duration::from_millis(100));
        assert_eq!(report.cancelled, 32);
        assert_eq!(report.ops_cancelled, 32);
        assert_eq!(report.ops_leaked, 0, "{report}");
        assert_eq!(rt.metrics().ops_in_flight, 0);
        assert_eq!(ledger.dropped.load(Ordering::SeqCst), 32);
        ledger.assert_all_dropped_once();
        drop(writer);
    });
}

/// Makes `io_uring_setup` fail with `EPERM` in this process, as a container
/// runtime's seccomp profile does.
fn forbid_io_uring_setup() {
    use common::child::seccomp::{allow, fail, install, load, unless_eq};
    install(&[
        load(0),
        unless_eq(libc::SYS_io_uring_setup as u32, 1),
        fail(libc::EPERM),
        allow(),
    ]);
}

#[test]
fn without_io_uring_auto_falls_back_to_epoll_and_forcing_it_is_a_clear_error() {
    if std::env::var_os("EBBTIDE_TEST_NO_URING_CHILD").is_none() {
        let out = common::child::run_test_in_child(
            "without_io_uring_auto_falls_back_to_epoll_and_forcing_it_is_a_clear_error",
            "EBBTIDE_TEST_NO_URING_CHILD",
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("child: fallback checked"));
        return;
    }
    forbid_io_uring_setup();
    let rt = Runtime::builder()
        .current_thread()
        .io_backend(IoBackend::Auto)
        .build()
        .expect("Auto falls back without an error");
    assert_eq!(rt.metrics().io_backend, IoBackend::Epoll);
    // The epoll runtime does file I/O on the pool.
    let n = rt.block_on(async {
        let file = File::open("Cargo.toml").await.unwrap();
        file.read_at(Vec::with_capacity(128 << 10), 0)
            .await
            .0
            .unwrap()
    });
    assert!(n > 0);
    let err = Runtime::builder()
        .current_thread()
        .io_backend(IoBackend::IoUring)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    let msg = err.to_string();
    assert!(
        msg.contains("io_uring I/O backend cannot run here"),
        "{msg}"
    );
    println!("child: fallback checked");
}

#[test]
fn opening_files_past_the_descriptor_limit_fails_with_emfile_and_loses_nothing() {
    if std::env::var_os("EBBTIDE_TEST_EMFILE_CHILD").is_none() {
        let out = common::child::run_test_in_child(
            "opening_files_past_the_descriptor_limit_fails_with_emfile_and_loses_nothing",
            "EBBTIDE_TEST_EMFILE_CHILD",
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("child: emfile checked"));
        return;
    }
    let rt = ring_runtime();
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads this process's limit into `limit`.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0);
    limit.rlim_cur = open_now + 16;
    // SAFETY: sets this (child) process's soft descriptor limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    rt.block_on(async {
        let mut open = Vec::new();
        let err = loop {
            match File::open("Cargo.toml").await {
                Ok(f) => open.push(f),
                Err(e) => break e,
            }
            assert!(open.len() < 64, "the limit never hit");
        };
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        open.pop();
        let again = File::open("Cargo.toml")
            .await
            .expect("a freed descriptor is reused");
        let BufResult(n, _) = again.read_at(Vec::with_capacity(128 << 10), 0).await;
        assert!(n.unwrap() > 0);
    });
    let m = rt.metrics();
    assert_eq!((m.ops_in_flight, m.ops_stale_completions), (0, 0));
    println!("child: emfile checked");
}

/// A connected TCP pair on the current runtime.
async fn tcp_pair() -> (ebbtide::net::TcpStream, ebbtide::net::TcpStream) {
    let listener = ebbtide::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) =
        futures_lite::future::zip(ebbtide::net::TcpStream::connect(addr), listener.accept()).await;
    (client.unwrap(), accepted.unwrap().0)
}

#[test]
fn a_tcp_read_dropped_in_flight_keeps_its_buffer_until_the_ring_acknowledges_it() {
    watchdog(|| {
        let ledger = BufLedger::new();
        let l = ledger.clone();
        let rt = ring_runtime();
        rt.block_on(async move {
            let (a, _b) = tcp_pair().await;
            let before = ebbtide::runtime::Handle::current().metrics().ops_submitted;
            let mut read = Box::pin(a.read_owned(l.buf(64)));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(read.as_mut().poll(&mut cx).is_pending());
            drive().await; // the recv is in the kernel
            drop(read);
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!(
                m.ops_submitted,
                before + 1,
                "the read went through the ring"
            );
            assert_eq!((m.ops_in_flight, m.ops_cancelled), (1, 1));
            assert_eq!(
                l.dropped.load(Ordering::SeqCst),
                0,
                "the kernel still has it"
            );
            drive().await;
            assert_eq!(l.dropped.load(Ordering::SeqCst), 1);
            assert_eq!(
                ebbtide::runtime::Handle::current().metrics().ops_in_flight,
                0
            );
        });
        ledger.assert_all_dropped_once();
    });
}

/// One ring `read_owned` on `reader` whose bytes come in before its
/// future is dropped (its op completes, and the output waits in the slot):
/// returns what the peer sent, which no read took.
async fn drop_a_read_that_got(
    reader: &ebbtide::net::TcpStream,
    peer: &ebbtide::net::TcpStream,
    bytes: &[u8],
) -> Vec<u8> {
    let mut read = Box::pin(reader.read_owned(Vec::with_capacity(64)));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(read.as_mut().poll(&mut cx).is_pending());
    drive().await; // the recv is in the kernel
    let BufResult(res, _) = peer.write_all_owned(bytes.to_vec()).await;
    res.unwrap();
    drive().await; // and completed, with the bytes
    drop(read);
    bytes.to_vec()
}

#[test]
fn a_tcp_read_dropped_after_its_bytes_came_loses_none_of_them() {
    // `op::ReadStash`: the bytes a dropped ring read got come first, in
    // order, to whichever read of the stream is next: owned, futures-io,
    // `try_read`, vectored; `peek` and `readable()` see them too.
    use ebbtide::io::AsyncReadExt;
    watchdog(|| {
        let rt = ring_runtime();
        rt.block_on(async {
            let (mut a, b) = tcp_pair().await;
            let before = ebbtide::runtime::Handle::current().metrics().ops_submitted;
            let mut expect = Vec::new();
            let mut got = Vec::new();

            // Owned read next.
            expect.extend(drop_a_read_that_got(&a, &b, b"first ").await);
            let BufResult(n, buf) = a.read_owned(Vec::with_capacity(64)).await;
            assert_eq!(n.unwrap(), 6);
            got.extend_from_slice(&buf);

            // futures-io read next, in two pieces, after a peek.
            expect.extend(drop_a_read_that_got(&a, &b, b"second ").await);
            let mut peeked = [0u8; 3];
            assert_eq!(a.peek(&mut peeked).await.unwrap(), 3);
            assert_eq!(&peeked, b"sec");
            let mut small = [0u8; 4];
            let n = a.read(&mut small).await.unwrap();
            got.extend_from_slice(&small[..n]);
            let n = a.read(&mut small).await.unwrap();
            got.extend_from_slice(&small[..n]);

            // `readable()` then `try_read` and a vectored `try_read`.
            expect.extend(drop_a_read_that_got(&a, &b, b"third ").await);
            a.readable().await.unwrap();
            let mut two = [0u8; 2];
            let n = a.try_read(&mut two).unwrap();
            got.extend_from_slice(&two[..n]);
            let mut rest = [0u8; 16];
            let n = a
                .try_read_vectored(&mut [std::io::IoSliceMut::new(&mut rest)])
                .unwrap();
            got.extend_from_slice(&rest[..n]);

            // Bytes sent after the stashed ones come after them.
            expect.extend(drop_a_read_that_got(&a, &b, b"fourth ").await);
            let BufResult(res, _) = b.write_all_owned(b"last".to_vec()).await;
            res.unwrap();
            expect.extend_from_slice(b"last");
            while got.len() < expect.len() {
                let BufResult(n, buf) = a.read_owned(Vec::with_capacity(64)).await;
                assert!(n.unwrap() > 0);
                got.extend_from_slice(&buf);
            }
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expect)
            );
            let m = ebbtide::runtime::Handle::current().metrics();
            assert!(
                m.ops_submitted - before >= 8,
                "the dropped reads and the sends went through the ring"
            );
            drop(b);
            let BufResult(n, _) = a.read_owned(Vec::with_capacity(8)).await;
            assert_eq!(n.unwrap(), 0, "then end-of-file");
        });
    });
}

#[test]
fn owned_tcp_writes_and_reads_through_the_ring_carry_every_byte_in_order() {
    watchdog(|| {
        let rt = Runtime::builder()
            .worker_threads(2)
            .io_backend(IoBackend::IoUring)
            .io_uring_sockets(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let (a, b) = tcp_pair().await;
            let data: Vec<u8> = (0..(4u32 << 20)).map(|i| (i % 251) as u8).collect();
            let expect = data.clone();
            let writer = ebbtide::spawn(async move {
                let BufResult(res, _) = a.write_all_owned(data).await;
                res.unwrap();
            });
            let mut got = Vec::with_capacity(expect.len());
            while got.len() < expect.len() {
                let BufResult(n, buf) = b.read_owned(Vec::with_capacity(64 << 10)).await;
                assert!(n.unwrap() > 0);
                got.extend_from_slice(&buf);
            }
            writer.await.unwrap();
            assert!(got == expect, "the bytes arrived in order");
            let m = ebbtide::runtime::Handle::current().metrics();
            assert!(
                m.ops_submitted > 64,
                "reads and writes went through the ring"
            );
            assert_eq!(m.ops_stale_completions, 0);
        });
    });
}

#[test]
fn stream_sockets_use_readiness_unless_the_ring_is_asked_for() {
    watchdog(|| {
        for ring_sockets in [false, true] {
            let rt = Runtime::builder()
                .current_thread()
                .io_backend(IoBackend::IoUring)
                .io_uring_sockets(ring_sockets)
                .build()
                .unwrap();
            rt.block_on(async {
                let (a, b) = tcp_pair().await;
                a.write_all_owned(b"ping".to_vec()).await.0.unwrap();
                let BufResult(n, buf) = b.read_owned(Vec::with_capacity(8)).await;
                assert_eq!((n.unwrap(), &buf[..]), (4, &b"ping"[..]));
                let m = ebbtide::runtime::Handle::current().metrics();
                // With ring sockets: the connect, the accept, the write
                // and the read.
                assert_eq!(m.ops_submitted, if ring_sockets { 4 } else { 0 });
            });
        }
    });
}

/// The kernel cancels a thread's io_uring requests when the thread exits:
/// an op submitted by a thread that then exits is submitted again, and
/// completes with its data, not with `ECANCELED`.
#[test]
fn an_op_whose_submitting_thread_exits_is_submitted_again() {
    watchdog(|| {
        let rt = Arc::new(ring_runtime());
        let (reader, mut writer) = rt.block_on(async { pipe() });
        // Thread A drives the runtime: the read is submitted from A's
        // waits (a current-thread runtime's driver is its caller), then A
        // exits with the read in the kernel.
        let read = {
            let rt = rt.clone();
            std::thread::spawn(move || {
                rt.block_on(async move {
                    let read = ebbtide::spawn(async move {
                        reader.read_at(Vec::with_capacity(PIPE_READ), 0).await
                    });
                    drive().await;
                    Some(read)
                })
                .expect("the read's handle")
            })
            .join()
            .unwrap()
        };
        assert_eq!(rt.metrics().ops_in_flight, 1);
        std::io::Write::write_all(&mut writer, b"after exit").unwrap();
        let BufResult(n, buf) = rt.block_on(read).unwrap();
        assert_eq!(n.expect("not ECANCELED"), 10);
        assert_eq!(buf, b"after exit");
        assert_eq!(rt.metrics().ops_stale_completions, 0);
    });
}

/// How many ops went through the ring on the current runtime so far.
fn ring_ops() -> u64 {
    ebbtide::runtime::Handle::current().metrics().ops_submitted
}

/// UDP `send_to_owned` / `recv_from_owned` on `local` ("127.0.0.1:0" or
/// "[::1]:0"): each datagram reaches the socket it was sent to, with the
/// sender's address, and the reply reaches the sender; a datagram larger
/// than the buffer is cut to its room. (The scenario of compio's and
/// monoio's `send_to` tests, through the ring.)
async fn udp_round_trips(local: &str) {
    use ebbtide::net::UdpSocket;
    let active = UdpSocket::bind(local).await.unwrap();
    let passives = [
        UdpSocket::bind(local).await.unwrap(),
        UdpSocket::bind(local).await.unwrap(),
        UdpSocket::bind(local).await.unwrap(),
    ];
    let std_passive = std::net::UdpSocket::bind(local).unwrap();
    let before = ring_ops();
    let BufResult(n, _) = active
        .send_to_owned(b"std".to_vec(), std_passive.local_addr().unwrap())
        .await;
    assert_eq!(n.unwrap(), 3);
    for (i, p) in passives.iter().enumerate() {
        let msg = format!("datagram {i}").into_bytes();
        let BufResult(n, _) = active.send_to_owned(msg, p.local_addr().unwrap()).await;
        assert_eq!(n.unwrap(), 10);
    }
    for (i, p) in passives.iter().enumerate() {
        let BufResult(res, buf) = p.recv_from_owned(Vec::with_capacity(64)).await;
        let (n, from) = res.unwrap();
        assert_eq!((n, &buf[..]), (10, format!("datagram {i}").as_bytes()));
        assert_eq!(from, active.local_addr().unwrap(), "the sender's address");
        let BufResult(n, _) = p.send_to_owned(b"reply".to_vec(), from).await;
        assert_eq!(n.unwrap(), 5);
        let BufResult(res, buf) = active.recv_from_owned(Vec::with_capacity(64)).await;
        assert_eq!(res.unwrap(), (5, p.local_addr().unwrap()));
        assert_eq!(buf, b"reply");
    }
    let mut got = [0; 8];
    let (n, from) = std_passive.recv_from(&mut got).unwrap();
    assert_eq!(
        (&got[..n], from),
        (&b"std"[..], active.local_addr().unwrap())
    );
    // Truncated: the buffer keeps what fits, the sender is still right.
    let BufResult(n, _) = active
        .send_to_owned(b"foo bar baz".to_vec(), passives[0].local_addr().unwrap())
        .await;
    assert_eq!(n.unwrap(), 11);
    let BufResult(res, buf) = passives[0].recv_from_owned(Vec::with_capacity(3)).await;
    assert_eq!(res.unwrap(), (3, active.local_addr().unwrap()));
    assert_eq!(buf, b"foo");
    // 4 + 3 + 1 sends, 3 + 3 + 1 receives.
    assert_eq!(
        ring_ops() - before,
        15,
        "every owned call went through the ring"
    );
}

#[test]
fn owned_udp_calls_through_the_ring_carry_each_datagram_and_its_sender_over_ipv4_and_ipv6() {
    watchdog(|| {
        ring_runtime().block_on(async {
            udp_round_trips("127.0.0.1:0").await;
            udp_round_trips("[::1]:0").await;
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!((m.ops_in_flight, m.ops_stale_completions), (0, 0));
        });
    });
}

#[test]
fn owned_unix_datagram_calls_through_the_ring_carry_each_datagram_and_its_sender() {
    watchdog(|| {
        let dir = TempDir::new("uring-dgram");
        let (rx_path, tx_path) = (dir.path("rx.sock"), dir.path("tx.sock"));
        ring_runtime().block_on(async move {
            use ebbtide::net::UnixDatagram;
            let rx = UnixDatagram::bind(&rx_path).unwrap();
            let tx = UnixDatagram::bind(&tx_path).unwrap();
            let before = ring_ops();
            for i in 0..8u8 {
                let BufResult(n, _) = tx.send_to_owned(vec![i; 1 + i as usize], &rx_path).await;
                assert_eq!(n.unwrap(), 1 + i as usize);
            }
            for i in 0..8u8 {
                let BufResult(res, buf) = rx.recv_from_owned(Vec::with_capacity(64)).await;
                let (n, from) = res.unwrap();
                assert_eq!(&buf[..n], &vec![i; 1 + i as usize][..]);
                assert_eq!(from.as_pathname(), Some(tx_path.as_path()));
            }
            assert_eq!(
                ring_ops() - before,
                16,
                "every owned call went through the ring"
            );
            // From an unbound socket: the sender has no name.
            let anon = UnixDatagram::unbound().unwrap();
            let BufResult(n, _) = anon.send_to_owned(b"anon".to_vec(), &rx_path).await;
            assert_eq!(n.unwrap(), 4);
            let BufResult(res, buf) = rx.recv_from_owned(Vec::with_capacity(64)).await;
            let (n, from) = res.unwrap();
            assert_eq!((&buf[..n], from.is_unnamed()), (&b"anon"[..], true));
        });
    });
}

#[test]
fn a_udp_recv_dropped_in_flight_keeps_its_buffer_until_the_ring_acknowledges_it() {
    watchdog(|| {
        let ledger = BufLedger::new();
        let l = ledger.clone();
        ring_runtime().block_on(async move {
            let sock = ebbtide::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let before = ring_ops();
            let mut recv = Box::pin(sock.recv_from_owned(l.buf(64)));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(recv.as_mut().poll(&mut cx).is_pending());
            drive().await; // the recvmsg is in the kernel
            drop(recv);
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!(
                m.ops_submitted,
                before + 1,
                "the recv went through the ring"
            );
            assert_eq!((m.ops_in_flight, m.ops_cancelled), (1, 1));
            assert_eq!(
                l.dropped.load(Ordering::SeqCst),
                0,
                "the kernel still has it"
            );
            drive().await;
            assert_eq!(l.dropped.load(Ordering::SeqCst), 1);
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!((m.ops_in_flight, m.ops_completed_after_cancel), (0, 0));
            // The cancelled recv took nothing: the next datagram goes to
            // the next recv.
            let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            sender.send_to(b"next", sock.local_addr().unwrap()).unwrap();
            let BufResult(res, buf) = sock.recv_from_owned(Vec::with_capacity(8)).await;
            assert_eq!(res.unwrap(), (4, sender.local_addr().unwrap()));
            assert_eq!(buf, b"next");
        });
        ledger.assert_all_dropped_once();
    });
}

/// A datagram that arrives between a recv's drop and its cancel's
/// submission: the kernel either completes the recv into the buffer the
/// slot still owns (counted, the bytes in the buffer at its drop) or
/// cancels it first (the datagram stays queued for the next recv). It is
/// never lost and never written to freed memory.
#[test]
fn a_datagram_arriving_after_a_recv_was_dropped_reaches_the_next_recv_whichever_won() {
    // The kernel delivered it to the dropped recv (it landed in that
    // still-owned buffer, then in the socket's stash) or the cancel came
    // first (it stayed queued): either way the next recv gets it.
    watchdog(|| {
        let ledger = BufLedger::new();
        let l = ledger.clone();
        let late = ring_runtime().block_on(async move {
            let sock = ebbtide::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let before = ring_ops();
            let mut recv = Box::pin(sock.recv_from_owned(l.buf(64)));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(recv.as_mut().poll(&mut cx).is_pending());
            drive().await; // the recvmsg is in the kernel
            drop(recv); // its cancel is queued, not yet submitted
            assert_eq!(ring_ops(), before + 1, "the recv went through the ring");
            sender
                .send_to(b"late datagram", sock.local_addr().unwrap())
                .unwrap();
            drive().await;
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!((m.ops_in_flight, m.ops_stale_completions), (0, 0));
            assert!(m.ops_completed_after_cancel <= 1);
            let BufResult(res, buf) = sock.recv_from_owned(Vec::with_capacity(64)).await;
            assert_eq!(res.unwrap(), (13, sender.local_addr().unwrap()));
            assert_eq!(
                buf, b"late datagram",
                "kept or still queued for the next recv"
            );
            m.ops_completed_after_cancel == 1
        });
        ledger.assert_all_dropped_once();
        if late {
            assert_eq!(ledger.bytes_at_drop.lock().unwrap()[0], b"late datagram");
        }
    });
}

/// One ring `recv_from_owned` on `sock` whose datagram (`bytes`, from
/// `sender`) comes in before its future is dropped.
async fn drop_a_recv_that_got(
    sock: &ebbtide::net::UdpSocket,
    sender: &std::net::UdpSocket,
    bytes: &[u8],
) {
    let mut recv = Box::pin(sock.recv_from_owned(Vec::with_capacity(64)));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(recv.as_mut().poll(&mut cx).is_pending());
    drive().await; // the recvmsg is in the kernel
    sender.send_to(bytes, sock.local_addr().unwrap()).unwrap();
    drive().await; // and completed, with the datagram
    drop(recv);
}

#[test]
fn a_udp_recv_dropped_after_its_datagram_came_loses_no_datagram() {
    // `op::DatagramStash`: the datagram a dropped ring recv got goes to the
    // socket's next receive of any kind, with its sender; `peek_from` and
    // `readable()` see it too.
    watchdog(|| {
        ring_runtime().block_on(async {
            let sock = ebbtide::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let from = sender.local_addr().unwrap();
            let mut buf = [0u8; 64];

            drop_a_recv_that_got(&sock, &sender, b"one").await;
            let BufResult(res, got) = sock.recv_from_owned(Vec::with_capacity(64)).await;
            assert_eq!((res.unwrap(), &got[..]), ((3, from), &b"one"[..]));

            drop_a_recv_that_got(&sock, &sender, b"two").await;
            sock.readable().await.unwrap();
            assert_eq!(sock.peek_from(&mut buf).await.unwrap(), (3, from));
            assert_eq!(sock.recv_from(&mut buf).await.unwrap(), (3, from));
            assert_eq!(&buf[..3], b"two");

            drop_a_recv_that_got(&sock, &sender, b"three").await;
            assert_eq!(sock.try_recv_from(&mut buf).unwrap(), (5, from));
            assert_eq!(&buf[..5], b"three");

            // A kept datagram longer than the buffer is truncated, as
            // `recvfrom` truncates.
            drop_a_recv_that_got(&sock, &sender, b"four!").await;
            let mut two = [0u8; 2];
            assert_eq!(sock.recv_from(&mut two).await.unwrap(), (2, from));
            assert_eq!(&two, b"fo");

            // Connected: `recv`, `try_recv`, `recv_owned`.
            sock.connect(from).await.unwrap();
            drop_a_recv_that_got(&sock, &sender, b"five").await;
            assert_eq!(sock.recv(&mut buf).await.unwrap(), 4);
            assert_eq!(&buf[..4], b"five");
            drop_a_recv_that_got(&sock, &sender, b"six").await;
            assert_eq!(sock.try_recv(&mut buf).unwrap(), 3);
            assert_eq!(&buf[..3], b"six");
            drop_a_recv_that_got(&sock, &sender, b"seven").await;
            let BufResult(n, got) = sock.recv_owned(Vec::with_capacity(64)).await;
            assert_eq!((n.unwrap(), &got[..]), (5, &b"seven"[..]));

            // Nothing is kept twice: the next datagram is a new one.
            sender
                .send_to(b"eight", sock.local_addr().unwrap())
                .unwrap();
            assert_eq!(sock.recv(&mut buf).await.unwrap(), 5);
            assert_eq!(&buf[..5], b"eight");
        });
    });
}

#[test]
fn accepts_and_connects_through_the_ring_pair_every_connection_exactly_once() {
    watchdog(|| {
        const N: usize = 64;
        ring_runtime().block_on(async {
            use ebbtide::net::{TcpListener, TcpStream};
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let before = ring_ops();
            let server = ebbtide::spawn(async move {
                let mut seen = vec![0u32; N];
                for _ in 0..N {
                    let (stream, peer) = listener.accept().await.unwrap();
                    assert_eq!(stream.peer_addr().unwrap(), peer);
                    let BufResult(n, buf) = stream.read_owned(Vec::with_capacity(1)).await;
                    assert_eq!(n.unwrap(), 1);
                    seen[buf[0] as usize] += 1;
                }
                seen
            });
            let clients: Vec<_> = (0..N)
                .map(|i| {
                    ebbtide::spawn(async move {
                        let stream = TcpStream::connect(addr).await.unwrap();
                        assert_eq!(stream.peer_addr().unwrap(), addr);
                        stream.write_all_owned(vec![i as u8]).await.0.unwrap();
                        stream
                    })
                })
                .collect();
            let mut streams = Vec::new();
            for c in clients {
                streams.push(c.await.unwrap());
            }
            let seen = server.await.unwrap();
            assert!(seen.iter().all(|&n| n == 1), "each accepted once: {seen:?}");
            // N accepts, N connects, N writes, N reads.
            assert_eq!(ring_ops() - before, 4 * N as u64);
            let err = TcpStream::connect(common::net::closed_port())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
            assert_eq!(
                ring_ops() - before,
                4 * N as u64 + 1,
                "the refused connect too"
            );
        });
    });
}

#[test]
fn unix_stream_accepts_and_connects_go_through_the_ring() {
    watchdog(|| {
        let dir = TempDir::new("uring-unix-accept");
        let path = dir.path("l.sock");
        ring_runtime().block_on(async move {
            use ebbtide::net::{UnixListener, UnixStream};
            let listener = UnixListener::bind(&path).unwrap();
            let before = ring_ops();
            for i in 0..8u8 {
                let client = UnixStream::connect(&path).await.unwrap();
                let (server, _peer) = listener.accept().await.unwrap();
                client.write_all_owned(vec![i]).await.0.unwrap();
                let BufResult(n, buf) = server.read_owned(Vec::with_capacity(4)).await;
                assert_eq!((n.unwrap(), &buf[..]), (1, &[i][..]));
            }
            assert_eq!(ring_ops() - before, 32, "connect, accept, write, read");
            let err = UnixStream::connect(dir.path("nobody.sock"))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        });
    });
}

/// An accept dropped while the kernel holds it, then a connection: the
/// kernel either accepted it for the dropped op (counted in
/// `ops_completed_after_cancel`, and closed: the client reads end of
/// file) or left it queued for the next accept. Either way nothing is
/// lost or leaked.
#[test]
fn an_accept_dropped_in_flight_loses_no_connection() {
    watchdog(|| {
        ring_runtime().block_on(async {
            use ebbtide::net::TcpListener;
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut cx = Context::from_waker(Waker::noop());
            // Cancelled before the connection: it waits for the next accept.
            let mut accept = Box::pin(listener.accept());
            assert!(accept.as_mut().poll(&mut cx).is_pending());
            drive().await;
            drop(accept);
            drive().await; // the cancel is acknowledged
            let client = std::net::TcpStream::connect(addr).unwrap();
            let (_server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!((m.ops_cancelled, m.ops_completed_after_cancel), (1, 0));
            // Dropped, then the connection before the cancel is submitted:
            // the kernel may accept it for the dropped op (then the
            // listener keeps it for its next accept) or leave it queued.
            let (mut late, mut queued) = (0, 0);
            for round in 0..16u64 {
                let mut accept = Box::pin(listener.accept());
                assert!(accept.as_mut().poll(&mut cx).is_pending());
                drive().await; // the accept is in the kernel
                drop(accept);
                let mut client = std::net::TcpStream::connect(addr).unwrap();
                drive().await;
                let m = ebbtide::runtime::Handle::current().metrics();
                assert_eq!(m.ops_in_flight, 0);
                if m.ops_completed_after_cancel == late + 1 {
                    late += 1; // accepted for the dropped future: kept
                } else {
                    assert_eq!(m.ops_completed_after_cancel, late, "round {round}");
                    queued += 1; // still in the kernel's queue
                }
                // Either way the next accept has it, and it is open.
                let (server, peer) = listener.accept().await.unwrap();
                assert_eq!(peer, client.local_addr().unwrap(), "round {round}");
                server.write_all_owned(b"!".to_vec()).await.0.unwrap();
                let mut b = [0; 1];
                std::io::Read::read_exact(&mut client, &mut b).unwrap();
                assert_eq!(&b, b"!");
            }
            assert_eq!(late + queued, 16);
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!((m.ops_cancelled, m.ops_stale_completions), (17, 0));
        });
    });
}

#[test]
fn shutdown_settles_accepts_and_datagram_recvs_in_flight() {
    watchdog(|| {
        let ledger = BufLedger::new();
        let rt = Runtime::builder()
            .worker_threads(2)
            .io_backend(IoBackend::IoUring)
            .io_uring_sockets(true)
            .build()
            .unwrap();
        let (listener, udp) = rt.block_on(async {
            let l = ebbtide::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let u = ebbtide::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            (Arc::new(l), Arc::new(u))
        });
        for _ in 0..8 {
            let l = listener.clone();
            rt.spawn(async move { l.accept().await.map(drop) });
            let (u, l) = (udp.clone(), ledger.clone());
            rt.spawn(async move { u.recv_from_owned(l.buf(64)).await.1 });
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(rt.metrics().ops_in_flight, 16, "all in the ring");
        let report = rt.shutdown(Duration::from_millis(100));
        assert_eq!((report.cancelled, report.ops_cancelled), (16, 16));
        assert_eq!(report.ops_leaked, 0, "{report}");
        assert_eq!(rt.metrics().ops_in_flight, 0);
        ledger.assert_all_dropped_once();
        assert_eq!(ledger.made.load(Ordering::SeqCst), 8);
    });
}

/// A read queued for the ring whose future and then socket are dropped
/// (closed) before the driver submitted it: the read's cancel hands the
/// queued entries to the kernel, which takes its own reference to the
/// file. Otherwise the entry would be submitted later under a descriptor
/// number that a new socket has taken, and read that socket's data.
#[test]
fn a_socket_closed_with_a_queued_read_leaves_a_socket_that_reuses_its_number_alone() {
    use std::os::fd::AsRawFd;
    // In a process of its own: other tests' threads would take the number.
    const CHILD: &str = "EBBTIDE_TEST_REUSED_NUMBER_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let name =
            "a_socket_closed_with_a_queued_read_leaves_a_socket_that_reuses_its_number_alone";
        let out = common::child::run_test_in_child(name, CHILD);
        assert!(String::from_utf8_lossy(&out.stdout).contains("child: number reused"));
        return;
    }
    watchdog(|| {
        let rt = ring_runtime();
        rt.block_on(async {
            let (a, _a_peer) = ebbtide::net::UnixStream::pair().unwrap();
            let number = a.as_raw_fd();
            let before = ebbtide::runtime::Handle::current().metrics().ops_submitted;
            // Queued, not submitted: this thread is the driver and is busy
            // running this task.
            let polled = poll_then_drop(a.read_owned(Vec::with_capacity(64)), 1);
            assert!(polled.is_none(), "{:?}", polled.map(|r| r.0));
            let m = ebbtide::runtime::Handle::current().metrics();
            assert_eq!(m.ops_submitted, before + 1, "the read went to the ring");
            drop(a);
            // The lowest free number: the one `a` had. Its bytes are there
            // before the driver submits anything.
            let (b, c) = std::os::unix::net::UnixStream::pair().unwrap();
            let (mut reused, mut writer) = if b.as_raw_fd() == number {
                (b, c)
            } else {
                (c, b)
            };
            assert_eq!(reused.as_raw_fd(), number, "the number was reused");
            std::io::Write::write_all(&mut writer, b"kept").unwrap();
            drive().await; // the driver submits whatever is queued
            reused.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 16];
            let n = std::io::Read::read(&mut reused, &mut buf)
                .expect("the new socket's bytes were taken by the old read");
            assert_eq!(&buf[..n], b"kept");
        });
    });
    println!("child: number reused");
}

/// A read the page cache could not serve costs the inline attempt a
/// system call for nothing, so the next 7 reads of that file go straight
/// to the ring, whether their pages are cached or not; the 8th tries the
/// cache again.
#[test]
fn after_a_read_misses_the_cache_the_next_seven_go_straight_to_the_ring() {
    watchdog(|| {
        let dir = TempDir::new("skip-inline");
        let path = dir.uncached_file("f", &[7u8; 64 << 10]);
        ring_runtime().block_on(async move {
            let file = File::open(&path).await.unwrap();
            let submitted = || ebbtide::runtime::Handle::current().metrics().ops_submitted;
            let read = |pos| file.read_at(Vec::with_capacity(4096), pos);
            let before = submitted();
            // A miss: to the ring, which brings the pages into the cache.
            assert_eq!(read(0).await.0.unwrap(), 4096);
            assert_eq!(submitted(), before + 1, "the miss went to the ring");
            // Cached now, but the next seven skip the attempt.
            for i in 1..=7 {
                assert_eq!(read(0).await.0.unwrap(), 4096);
                assert_eq!(submitted(), before + 1 + i, "read {i} went to the ring");
            }
            // Then the cache is tried again, and answers.
            assert_eq!(read(0).await.0.unwrap(), 4096);
            assert_eq!(submitted(), before + 8, "served by the cache");
        });
    });
}

/// liburing's read-write and fpos scenarios, on the ring: positional reads
/// return the bytes at their offset (aligned or not), a read that crosses
/// the end is short, one at or past the end returns 0, and a write past
/// the end leaves zeros between; each through the ring, none on the pool.
#[test]
fn ring_reads_and_writes_land_at_their_offsets_and_stop_at_the_end() {
    watchdog(|| {
        let dir = TempDir::new("uring-offsets");
        // Each byte says where it is: block i of 1 KiB is filled with i.
        let data: Vec<u8> = (0..300 << 10).map(|i: usize| (i >> 10) as u8).collect();
        let path = dir.file("f", &data);
        ring_runtime().block_on(async move {
            let file = File::options()
                .read(true)
                .write(true)
                .open(&path)
                .await
                .unwrap();
            let submitted = || ebbtide::runtime::Handle::current().metrics().ops_submitted;
            let before = submitted();
            // Larger than the inline cached read takes: each goes to the ring.
            let big = 128 << 10;
            for pos in [0u64, 512, 4097, (200 << 10) + 3] {
                let BufResult(n, buf) = file.read_at(Vec::with_capacity(big), pos).await;
                let start = pos as usize;
                let end = (start + big).min(data.len());
                assert_eq!(n.unwrap(), end - start, "at {pos}");
                assert_eq!(buf, &data[start..end], "at {pos}");
            }
            for pos in [data.len() as u64, data.len() as u64 + 4096] {
                let BufResult(n, buf) = file.read_at(Vec::with_capacity(big), pos).await;
                assert_eq!((n.unwrap(), buf.len()), (0, 0), "at {pos}");
            }
            // A write a block past the end.
            let end = data.len() as u64;
            let BufResult(n, _) = file.write_at(vec![0xee; 100], end + 4096).await;
            assert_eq!(n.unwrap(), 100);
            let BufResult(n, buf) = file.read_at(Vec::with_capacity(big), end).await;
            assert_eq!(n.unwrap(), 4096 + 100);
            assert!(buf[..4096].iter().all(|&b| b == 0), "a hole reads as zeros");
            assert!(buf[4096..].iter().all(|&b| b == 0xee));
            let m = ebbtide::runtime::Handle::current().metrics();
            // 6 + 1 reads and the write (the open came before `before`).
            assert_eq!(m.ops_submitted - before, 8);
            assert_eq!(m.blocking_threads, 0, "no op needed the pool");
        });
    });
}
