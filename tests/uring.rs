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

/// Ops of every kind the ring takes (pipe and TCP reads, file reads and
/// writes, opens), each dropped after a random number of polls (often in
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
            let mut rng = Rng::new(0x5eed);
            for i in 0..ops {
                let polls = rng.below(3) as usize;
                match i % 6 {
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

/// Runs this test binary's test `name` in a child process with `env` set,
/// and returns its output: for tests that change process-wide state
/// (seccomp filters, descriptor limits).
fn run_child(name: &str, env: &str) -> std::process::Output {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Makes `io_uring_setup` fail with `EPERM` in this process, as a container
/// runtime's seccomp profile does.
fn forbid_io_uring_setup() {
    #[repr(C)]
    struct SockFilter {
        code: u16,
        jt: u8,
        jf: u8,
        k: u32,
    }
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const SockFilter,
    }
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let filter = [
        SockFilter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        }, // seccomp_data.nr
        SockFilter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        SockFilter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        SockFilter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ];
    let prog = SockFprog {
        len: filter.len() as u16,
        filter: filter.as_ptr(),
    };
    // SAFETY: plain prctl calls; `prog` and `filter` outlive them.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const SockFprog
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[test]
fn without_io_uring_auto_falls_back_to_epoll_and_forcing_it_is_a_clear_error() {
    if std::env::var_os("EBBTIDE_TEST_NO_URING_CHILD").is_none() {
        let out = run_child(
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
        let out = run_child(
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
                assert_eq!(m.ops_submitted, if ring_sockets { 2 } else { 0 });
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
