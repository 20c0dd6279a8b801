//! Child processes (`ebbtide::process`) on Windows, run under Wine by
//! `.ci/run`: the portable scenarios of `tests/process.rs` (exit codes,
//! pipes that never deadlock, many children, cancellation, `kill_on_drop`,
//! shutdown, errors), plus what the IOCP backend adds: a wait withdrawn
//! with its child leaves no op behind, and a wait's packet that arrives
//! after its op was dropped is not a stale completion.
//!
//! The children are `cmd /c exit N` where that is enough, and otherwise
//! this test binary run again ([`me`]), which plays the role named in
//! [`ROLE`] (see [`child_role`]): Wine has no `sleep` or `cat`. The test
//! harness prints a banner on the child's stdout before the role runs, so
//! the roles put bytes that must come back whole on stderr, and the
//! stdout checks count a byte the banner never holds.
#![cfg(windows)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{current_thread, scaled, watchdog, watchdog_for, workers};
use ebbtide::io::BufResult;
use ebbtide::process::{Command, Stdio};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// Names the child's role: `exit:CODE`, `sleep:MS:CODE`, `spew:BYTES`
/// (that many `STDOUT_BYTE`s on stdout and `STDERR_BYTE`s on stderr, from
/// two threads at once), `echo:MS` (after a sleep of `MS`, stdin to
/// stderr until end-of-file).
const ROLE: &str = "EBBTIDE_PROCESS_TEST_ROLE";
const STDOUT_BYTE: u8 = 0xAB;
const STDERR_BYTE: u8 = 0xCD;

/// This test binary, run again as a child playing `role`; its stdout (the
/// harness's banner) goes nowhere unless piped.
fn me(role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdout(Stdio::null());
    cmd
}

/// Not a check: the child's side of the tests that run [`me`]. Without
/// [`ROLE`] set it does nothing.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let args: Vec<&str> = role.split(':').collect();
    let code = match args[..] {
        ["exit", code] => code.parse().unwrap(),
        ["sleep", ms, code] => {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            code.parse().unwrap()
        }
        ["spew", bytes] => {
            let n: usize = bytes.parse().unwrap();
            let err = std::thread::spawn(move || {
                std::io::stderr().write_all(&vec![STDERR_BYTE; n]).unwrap()
            });
            let mut out = std::io::stdout();
            out.write_all(&vec![STDOUT_BYTE; n]).unwrap();
            out.flush().unwrap();
            err.join().unwrap();
            0
        }
        ["echo", ms] => {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            let (mut stdin, mut stderr) = (std::io::stdin().lock(), std::io::stderr().lock());
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = stdin.read(&mut buf).unwrap();
                if n == 0 {
                    break 0;
                }
                stderr.write_all(&buf[..n]).unwrap();
            }
        }
        _ => panic!("unknown role {role:?}"),
    };
    std::process::exit(code);
}

/// A handle of our own to a child, to see whether it is still running
/// after its `Child` is gone. Holding it keeps the pid from being reused.
struct Process(std::os::windows::io::OwnedHandle);

mod kernel32 {
    use std::os::windows::io::RawHandle;

    pub(crate) const SYNCHRONIZE: u32 = 0x0010_0000;
    pub(crate) const PROCESS_TERMINATE: u32 = 0x0001;
    pub(crate) const WAIT_OBJECT_0: u32 = 0;

    #[link(name = "kernel32")]
    extern "system" {
        pub(crate) fn OpenProcess(access: u32, inherit: i32, pid: u32) -> RawHandle;
        pub(crate) fn WaitForSingleObject(handle: RawHandle, ms: u32) -> u32;
        pub(crate) fn TerminateProcess(handle: RawHandle, code: u32) -> i32;
    }
}

impl Process {
    /// Opens process `pid`, which must exist (a child not yet waited for).
    fn open(pid: u32) -> Process {
        use std::os::windows::io::FromRawHandle;
        let access = kernel32::SYNCHRONIZE | kernel32::PROCESS_TERMINATE;
        // SAFETY: plain FFI with value arguments.
        let raw = unsafe { kernel32::OpenProcess(access, 0, pid) };
        assert!(!raw.is_null(), "OpenProcess({pid}) failed");
        // SAFETY: a new handle that nothing else owns.
        Process(unsafe { std::os::windows::io::OwnedHandle::from_raw_handle(raw) })
    }

    /// Whether the process exits within `limit` (`ZERO`: has exited).
    fn exits_within(&self, limit: Duration) -> bool {
        use std::os::windows::io::AsRawHandle;
        let ms = u32::try_from(limit.as_millis()).unwrap();
        // SAFETY: the handle is open (owned by `self`) for the whole call.
        unsafe {
            kernel32::WaitForSingleObject(self.0.as_raw_handle(), ms) == kernel32::WAIT_OBJECT_0
        }
    }

    fn terminate(&self) {
        use std::os::windows::io::AsRawHandle;
        // SAFETY: the handle is open (owned by `self`) for the whole call.
        unsafe { kernel32::TerminateProcess(self.0.as_raw_handle(), 9) };
    }
}

fn checksum(bytes: &[u8], sum: u64) -> u64 {
    bytes
        .iter()
        .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)))
}

#[test]
fn exit_codes_are_reported_and_a_killed_child_exits_with_1() {
    watchdog(|| {
        let rt = workers(2);
        rt.block_on(async {
            let ok = Command::new("cmd").args(["/c", "exit 0"]).status().await;
            assert!(ok.unwrap().success());
            let three = Command::new("cmd").args(["/c", "exit 3"]).status().await;
            assert_eq!(three.unwrap().code(), Some(3));
            assert_eq!(me("exit:7").status().await.unwrap().code(), Some(7));
            let mut sleeper = me("sleep:30000:0").spawn().unwrap();
            sleeper.kill().await.unwrap();
            // std's `kill` is `TerminateProcess(handle, 1)`.
            assert_eq!(sleeper.wait().await.unwrap().code(), Some(1));
        });
    });
}

#[test]
fn output_reads_mibs_written_to_stdout_and_stderr_at_once() {
    watchdog(|| {
        let rt = workers(2);
        // Each far beyond a pipe's 64 KiB: reading one pipe before the
        // other would deadlock.
        let n = 4 << 20;
        let out = rt.block_on(async { me(&format!("spew:{n}")).output().await.unwrap() });
        assert!(out.status.success(), "{:?}", out.status);
        let ours = out.stdout.iter().filter(|&&b| b == STDOUT_BYTE).count();
        assert_eq!(ours, n, "stdout: {} bytes in all", out.stdout.len());
        assert_eq!(out.stderr.len(), n);
        assert!(out.stderr.iter().all(|&b| b == STDERR_BYTE));
    });
}

#[test]
fn stdin_piped_through_an_echoing_child_comes_back_whole() {
    watchdog(|| {
        let rt = workers(2);
        let size: usize = scaled(64 << 20, 8 << 20);
        rt.block_on(async move {
            let mut child = me("echo:0")
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut echoed = child.stderr.take().unwrap();
            let writer = ebbtide::spawn(async move {
                let chunk: Vec<u8> = (0..65536u32).map(|i| (i * 31 % 251) as u8).collect();
                let (mut sum, mut sent) = (0, 0);
                while sent < size {
                    stdin.write_all(&chunk).await.unwrap();
                    sum = checksum(&chunk, sum);
                    sent += chunk.len();
                }
                // No flush: the write still in flight is finished, not
                // lost, and the child then reads end-of-file.
                drop(stdin);
                sum
            });
            let (mut sum, mut got) = (0, 0);
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = echoed.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                sum = checksum(&buf[..n], sum);
                got += n;
            }
            assert_eq!(got, size);
            assert_eq!(sum, writer.await.unwrap());
            assert!(child.wait().await.unwrap().success());
        });
        let m = rt.metrics();
        assert_eq!(m.ops_in_flight, 0, "{m}");
        assert_eq!(m.ops_stale_completions, 0, "{m}");
    });
}

#[test]
fn a_write_still_in_flight_when_stdin_is_dropped_reaches_the_child() {
    watchdog(|| {
        let rt = workers(2);
        let size = 1 << 20;
        let echoed = rt.block_on(async move {
            // The child reads nothing for a while: the write pends.
            let mut child = me("echo:300")
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            // Returns once the bytes are the pipe's, as on Unix (where they
            // would be in the kernel's buffer, if it were large enough).
            stdin.write_all(&vec![7u8; size]).await.unwrap();
            drop(stdin);
            let mut echoed = Vec::new();
            let mut stderr = child.stderr.take().unwrap();
            stderr.read_to_end(&mut echoed).await.unwrap();
            assert!(child.wait().await.unwrap().success());
            echoed
        });
        assert_eq!(echoed.len(), size);
        let m = rt.metrics();
        assert_eq!(m.ops_in_flight, 0, "{m}");
    });
}

#[test]
fn owned_buffer_pipes_return_their_buffers() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let mut child = me("echo:0")
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let BufResult(res, msg) = stdin.write_all_owned(b"hello".to_vec()).await;
            res.unwrap();
            assert_eq!(msg, b"hello");
            drop(stdin);
            let echoed = child.stderr.take().unwrap();
            let mut all = Vec::new();
            loop {
                let BufResult(res, buf) = echoed.read_owned(Vec::with_capacity(3)).await;
                if res.unwrap() == 0 {
                    break;
                }
                all.extend_from_slice(&buf);
            }
            assert_eq!(all, b"hello");
            assert!(child.wait().await.unwrap().success());
        });
    });
}

#[test]
fn a_hundred_children_at_once_are_all_waited_for() {
    // Starting a process under Wine costs tens of milliseconds of CPU.
    watchdog_for(Duration::from_secs(120), || {
        let rt = workers(2);
        rt.block_on(async {
            let tasks: Vec<_> = (0..100)
                .map(|i| {
                    ebbtide::spawn(async move {
                        let status = Command::new("cmd")
                            .args(["/c", &format!("exit {}", i % 7)])
                            .status()
                            .await
                            .unwrap();
                        assert_eq!(status.code(), Some(i % 7));
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let m = rt.metrics();
        assert_eq!(m.ops_in_flight, 0, "{m}");
        assert_eq!(m.ops_stale_completions, 0, "{m}");
    });
}

#[test]
fn a_dropped_wait_loses_nothing_and_a_later_wait_gets_the_status() {
    watchdog(|| {
        let rt = workers(2);
        rt.block_on(async {
            let mut child = me("sleep:300:5").spawn().unwrap();
            {
                let wait = child.wait();
                let polled = futures_lite::future::poll_once(wait).await;
                assert!(polled.is_none(), "the child is still running");
            } // the wait future is dropped here
            assert_eq!(child.wait().await.unwrap().code(), Some(5));
            // And again: the status is kept.
            assert_eq!(child.try_wait().unwrap().and_then(|s| s.code()), Some(5));
        });
    });
}

#[test]
fn a_child_dropped_with_its_exit_unheard_counts_no_stale_completion() {
    watchdog(|| {
        // On a current-thread runtime the reactor runs only while
        // `block_on` waits: the exit's packet can be queued on the port
        // while the child, and its wait in flight, are dropped.
        let rt = current_thread();
        rt.block_on(async {
            let mut child = me("sleep:500:0").spawn().unwrap();
            let process = Process::open(child.id());
            let polled = futures_lite::future::poll_once(child.wait()).await;
            assert!(polled.is_none(), "the child is still running");
            // The reactor runs: the port starts waiting for the exit.
            ebbtide::time::sleep(Duration::from_millis(20)).await;
            // The reactor does not run: the exit's packet is queued.
            assert!(process.exits_within(Duration::from_secs(20)));
            std::thread::sleep(Duration::from_millis(100));
            drop(child);
            // The reactor runs: the packet arrives after its op is gone.
            ebbtide::time::sleep(Duration::from_millis(50)).await;
        });
        let m = rt.metrics();
        assert_eq!(m.ops_in_flight, 0, "{m}");
        assert_eq!(m.ops_stale_completions, 0, "{m}");
    });
}

#[test]
fn kill_on_drop_kills_and_a_plain_drop_keeps_running() {
    watchdog(|| {
        let rt = workers(2);
        let (killed, kept) = rt.block_on(async {
            let killed = me("sleep:30000:0").kill_on_drop(true).spawn().unwrap();
            let kept = me("sleep:1000:0").spawn().unwrap();
            let handles = (Process::open(killed.id()), Process::open(kept.id()));
            drop((killed, kept));
            handles
        });
        assert!(
            killed.exits_within(Duration::from_secs(10)),
            "the kill_on_drop child still runs"
        );
        assert!(
            !kept.exits_within(Duration::ZERO),
            "a plain drop does not kill"
        );
        assert!(
            kept.exits_within(Duration::from_secs(20)),
            "it ends by itself"
        );
        drop(rt);
    });
}

#[test]
fn a_child_outlives_the_task_that_spawned_it() {
    watchdog(|| {
        let rt = workers(2);
        let (tx, rx) = std::sync::mpsc::channel();
        let task = rt.spawn(async move {
            let mut child = me("sleep:1000:0").spawn().unwrap();
            tx.send(Process::open(child.id())).unwrap();
            let _ = child.wait().await; // cancelled while it waits
        });
        let process = rx.recv().unwrap();
        task.abort();
        assert!(rt.block_on(task).unwrap_err().is_cancelled());
        assert!(
            !process.exits_within(Duration::ZERO),
            "cancelling the task does not kill the child"
        );
        assert!(process.exits_within(Duration::from_secs(20)));
        let m = rt.metrics();
        assert_eq!(m.ops_stale_completions, 0, "{m}");
    });
}

#[test]
fn shutdown_kills_kill_on_drop_children_and_counts_the_others() {
    watchdog(|| {
        let rt = workers(2);
        let (doomed, survivor) = rt.block_on(async {
            let doomed = me("sleep:30000:0").kill_on_drop(true).spawn().unwrap();
            let survivor = me("sleep:30000:0").spawn().unwrap();
            (doomed, survivor)
        });
        let doomed_process = Process::open(doomed.id());
        let survivor_process = Process::open(survivor.id());
        let (tx, rx) = std::sync::mpsc::channel();
        // The children are held at shutdown by tasks waiting for them: the
        // waits are dropped in flight with their children still running.
        for mut child in [doomed, survivor] {
            let tx = tx.clone();
            rt.spawn(async move {
                let wait = child.wait();
                futures_lite::pin!(wait);
                assert!(futures_lite::future::poll_once(&mut wait).await.is_none());
                tx.send(()).unwrap();
                let _ = wait.await;
            });
        }
        rx.recv().unwrap();
        rx.recv().unwrap();
        let report = rt.shutdown(Duration::from_millis(50));
        assert_eq!(report.children_killed, 1, "{report}");
        assert_eq!(report.children_running, 1, "{report}");
        // The survivor's wait was dropped in flight (the doomed one's may
        // have completed first) and withdrawn at once, not left to settle.
        assert!(report.ops_cancelled >= 1, "{report}");
        assert_eq!(report.ops_leaked, 0, "{report}");
        assert!(
            doomed_process.exits_within(Duration::ZERO),
            "killed before the report"
        );
        assert!(!survivor_process.exits_within(Duration::ZERO));
        survivor_process.terminate();
        assert!(
            report
                .to_string()
                .contains("1 child processes killed, 1 left running"),
            "{report}"
        );
    });
}

#[test]
fn missing_programs_are_clear_errors() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let err = Command::new("ebbtide-no-such-program").spawn().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
            assert!(err.to_string().contains("ebbtide-no-such-program"), "{err}");
            let err = Command::new("cmd")
                .args(["/c", "exit 0"])
                .current_dir(r"C:\ebbtide\no\such\dir")
                .status()
                .await
                .unwrap_err();
            assert!(err.to_string().contains("cmd"), "{err}");
        });
        let err = Command::new("cmd").spawn().unwrap_err();
        assert!(err.to_string().contains("outside a runtime"), "{err}");
    });
}
