//! Signals: delivered through the self-pipe, coalesced but never lost.
#![cfg(unix)]

mod common;
use common::watchdog_for as watchdog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ebbtide::runtime::Runtime;
use ebbtide::signal::{Signals, SIGHUP, SIGUSR1, SIGWINCH};
use ebbtide::time::timeout;

fn raise(sig: i32) {
    // SAFETY: raising a signal that has a handler installed.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

#[test]
fn a_raised_signal_is_yielded_by_the_stream() {
    watchdog(Duration::from_secs(30), || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let mut signals = Signals::new([SIGUSR1]).unwrap();
            raise(SIGUSR1);
            assert_eq!(signals.recv().await.unwrap(), SIGUSR1);
            // Nothing else is pending.
            assert!(timeout(Duration::from_millis(20), signals.recv())
                .await
                .is_err());
            raise(SIGUSR1);
            assert_eq!(signals.recv().await.unwrap(), SIGUSR1);
        });
    });
}

#[test]
fn two_signals_of_one_stream_are_both_yielded() {
    watchdog(Duration::from_secs(30), || {
        ebbtide::block_on(async {
            let mut signals = Signals::new([SIGHUP, SIGWINCH]).unwrap();
            raise(SIGWINCH);
            raise(SIGHUP);
            let mut got = vec![signals.recv().await.unwrap(), signals.recv().await.unwrap()];
            got.sort();
            let mut want = vec![SIGHUP, SIGWINCH];
            want.sort();
            assert_eq!(got, want);
        });
    });
}

#[test]
fn signals_new_outside_a_runtime_is_an_error() {
    let err = Signals::new([SIGUSR1]).unwrap_err();
    assert!(err.to_string().contains("outside a runtime"), "{err}");
}

#[test]
fn signals_that_cannot_be_handled_are_an_error() {
    ebbtide::block_on(async {
        assert!(Signals::new([libc::SIGKILL]).is_err());
    });
}

#[test]
fn shutdown_on_signals_starts_a_graceful_shutdown() {
    watchdog(Duration::from_secs(30), || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        rt.handle().shutdown_on_signals([libc::SIGALRM]).unwrap();
        assert!(!rt.handle().is_shutting_down());
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        rt.spawn(async move {
            ebbtide::runtime::shutdown_requested().await;
            f.store(true, Ordering::SeqCst);
        });
        // Wait until the watcher's handler is installed (it is, on return
        // from shutdown_on_signals), then signal.
        raise(libc::SIGALRM);
        rt.block_on(ebbtide::runtime::shutdown_requested());
        let report = rt.shutdown(Duration::from_secs(5));
        assert!(finished.load(Ordering::SeqCst), "{report}");
        assert_eq!(report.cancelled, 0, "the watcher ends by itself: {report}");
    });
}

/// `begin_shutdown` from a raw `sigaction` handler (no ebbtide signal
/// machinery in between): it is async-signal-safe, and the waiting
/// `shutdown_requested()` futures are then woken by a runtime thread.
#[test]
fn begin_shutdown_from_a_raw_signal_handler_starts_the_drain() {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<ebbtide::runtime::Handle> = OnceLock::new();
    extern "C" fn on_signal(_: libc::c_int) {
        if let Some(h) = HANDLE.get() {
            h.begin_shutdown();
        }
    }
    watchdog(Duration::from_secs(30), || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        HANDLE.set(rt.handle().clone()).unwrap();
        let waiter = rt.spawn(async {
            ebbtide::runtime::shutdown_requested().await;
            "told"
        });
        // Let the waiter register before the signal.
        rt.block_on(ebbtide::time::sleep(Duration::from_millis(10)));
        // SAFETY: installs a handler that only calls `begin_shutdown`.
        unsafe {
            libc::signal(
                libc::SIGPROF,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
        raise(libc::SIGPROF);
        assert!(rt.handle().is_shutting_down());
        assert_eq!(rt.block_on(waiter).unwrap(), "told");
        let report = rt.shutdown(Duration::from_secs(1));
        assert_eq!(report.cancelled, 0, "{report}");
    });
}

/// Handing signals back (the `Signals` docs: once the last `Signals` for a
/// signal is dropped, it does what it did before). Each test's body runs in
/// a child process (this test binary again, filtered to that one test),
/// because a signal's default action ends the process.
mod handed_back {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Output, Stdio};
    use std::time::Instant;

    use ebbtide::signal::{SIGINT, SIGTERM};

    /// Set (to the test's name) in the child process.
    const CHILD_ENV: &str = "EBBTIDE_SIGNAL_CHILD";

    /// Whether this process is the child running `test`'s body.
    fn is_child(test: &str) -> bool {
        std::env::var(CHILD_ENV).is_ok_and(|t| t == test)
    }

    /// Runs `handed_back::<test>` in a child process and returns how it
    /// ended. The watchdog: a child still running after 30 s is killed and
    /// the test fails.
    fn run_child(test: &str) -> Output {
        let name = format!("handed_back::{test}");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, test)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "watchdog: the child did not finish within 30 s:\n{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    }

    /// Asserts that the child was killed by `sig` after printing `marker`.
    fn assert_killed_by(out: &Output, sig: i32, marker: &str) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(sig),
            "the child was not killed by signal {sig}: {:?}\n{stdout}\n{stderr}",
            out.status
        );
        assert!(
            stdout.contains(marker),
            "the child did not get that far:\n{stdout}\n{stderr}"
        );
    }

    /// The disposition of `sig` (its `sa_sigaction`: `SIG_DFL`, `SIG_IGN`
    /// or a handler).
    fn disposition(sig: i32) -> libc::sighandler_t {
        // SAFETY: `sigaction` is a plain C struct; all-zero is valid.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads; `now` is valid to write.
        let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut now) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        now.sa_sigaction
    }

    /// Sets `sig`'s disposition to `SIG_DFL` or `SIG_IGN`.
    fn set_disposition(sig: i32, how: libc::sighandler_t) {
        // SAFETY: `SIG_DFL` and `SIG_IGN` are valid for any catchable signal.
        assert_ne!(unsafe { libc::signal(sig, how) }, libc::SIG_ERR);
    }

    /// Prints `marker` (line-buffered, so it is out before a signal ends the
    /// process).
    fn reached(marker: &str) {
        println!("{marker}");
    }

    #[test]
    fn a_dropped_signals_gives_sigterm_its_default_action_back() {
        const TEST: &str = "a_dropped_signals_gives_sigterm_its_default_action_back";
        if is_child(TEST) {
            set_disposition(SIGTERM, libc::SIG_DFL);
            ebbtide::block_on(async {
                drop(Signals::new([SIGTERM]).unwrap());
            });
            reached("dropped");
            raise(SIGTERM);
            reached("survived SIGTERM");
            return;
        }
        let out = run_child(TEST);
        assert_killed_by(&out, SIGTERM, "dropped");
    }

    /// The bug report: a server used `shutdown_on_signals`; the first
    /// SIGTERM started the drain, and a second one after it must still end
    /// the process.
    #[test]
    fn a_second_sigterm_after_shutdown_on_signals_fired_ends_the_process() {
        const TEST: &str = "a_second_sigterm_after_shutdown_on_signals_fired_ends_the_process";
        if is_child(TEST) {
            set_disposition(SIGTERM, libc::SIG_DFL);
            let sigint_before = disposition(SIGINT);
            let rt = Runtime::builder().worker_threads(2).build().unwrap();
            rt.handle().shutdown_on_signals([SIGINT, SIGTERM]).unwrap();
            raise(SIGTERM);
            rt.block_on(ebbtide::runtime::shutdown_requested());
            let report = rt.shutdown(Duration::from_secs(5));
            assert_eq!(report.cancelled, 0, "{report}");
            assert_eq!(disposition(SIGINT), sigint_before, "SIGINT not handed back");
            reached("shut down");
            raise(SIGTERM);
            reached("survived the second SIGTERM");
            return;
        }
        let out = run_child(TEST);
        assert_killed_by(&out, SIGTERM, "shut down");
    }

    /// An ignored signal stays ignored, in this process and (`SIG_IGN` is
    /// inherited across `exec`, a handler is not) in the processes it
    /// starts afterwards.
    #[test]
    fn an_ignored_signal_stays_ignored_after_signals_is_dropped() {
        const TEST: &str = "an_ignored_signal_stays_ignored_after_signals_is_dropped";
        if is_child(TEST) {
            set_disposition(SIGTERM, libc::SIG_IGN);
            ebbtide::block_on(async {
                let mut signals = Signals::new([SIGTERM]).unwrap();
                raise(SIGTERM);
                assert_eq!(signals.recv().await.unwrap(), SIGTERM);
            });
            raise(SIGTERM);
            assert_eq!(disposition(SIGTERM), libc::SIG_IGN);
            let sh = Command::new("sh")
                .args(["-c", "kill -TERM $$; echo alive"])
                .output()
                .unwrap();
            assert!(
                sh.status.success() && sh.stdout == b"alive\n",
                "a process started afterwards did not ignore SIGTERM: {:?}",
                sh.status
            );
            reached("still ignored");
            return;
        }
        let out = run_child(TEST);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
        assert!(stdout.contains("still ignored"), "{stdout}\n{stderr}");
    }

    /// Interest is counted per `Signals`: dropping one of two keeps the
    /// signal delivered to the other; dropping both hands it back.
    #[test]
    fn dropping_one_of_two_signals_keeps_delivering_to_the_other() {
        const TEST: &str = "dropping_one_of_two_signals_keeps_delivering_to_the_other";
        if is_child(TEST) {
            set_disposition(SIGTERM, libc::SIG_DFL);
            ebbtide::block_on(async {
                let first = Signals::new([SIGTERM]).unwrap();
                let mut second = Signals::new([SIGTERM]).unwrap();
                drop(first);
                raise(SIGTERM);
                assert_eq!(
                    timeout(Duration::from_secs(10), second.recv())
                        .await
                        .expect("the remaining Signals got nothing")
                        .unwrap(),
                    SIGTERM
                );
                reached("the other still receives");
            });
            raise(SIGTERM);
            reached("survived SIGTERM");
            return;
        }
        let out = run_child(TEST);
        assert_killed_by(&out, SIGTERM, "the other still receives");
    }
}
