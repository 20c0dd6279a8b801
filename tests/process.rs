//! Child processes (`ebbtide::process`) on Unix: exit statuses, pipes that
//! never deadlock, many children at once, cancellation, `kill_on_drop`,
//! shutdown, errors, and other libraries' children left alone. Scenarios
//! from tokio's `tests/process_*.rs` and async-process's tests, plus the
//! runtime's own promises (no zombie, counted at shutdown).
#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::process::{exists, until};
use common::{watchdog, workers};
use ebbtide::process::{Command, Stdio};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

#[test]
fn exit_codes_and_signals_are_reported() {
    watchdog(|| {
        let rt = workers(2);
        rt.block_on(async {
            let ok = Command::new("true").status().await.unwrap();
            assert!(ok.success());
            let three = Command::new("sh")
                .args(["-c", "exit 3"])
                .status()
                .await
                .unwrap();
            assert_eq!(three.code(), Some(3));
            let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
            sleeper.kill().await.unwrap();
            let status = sleeper.wait().await.unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL));
            assert_eq!(status.code(), None);
        });
    });
}

#[test]
fn output_reads_ten_mib_from_stdout_and_stderr_at_once() {
    watchdog(|| {
        let rt = workers(2);
        let out = rt.block_on(async {
            // Each pipe's 10 MiB far exceeds a pipe's buffer: reading one
            // before the other would deadlock.
            Command::new("sh")
                .args([
                    "-c",
                    "head -c 10485760 /dev/zero >&2 & head -c 10485760 /dev/zero; wait",
                ])
                .output()
                .await
                .unwrap()
        });
        assert!(out.status.success());
        assert_eq!(out.stdout.len(), 10 << 20);
        assert_eq!(out.stderr.len(), 10 << 20);
    });
}

#[test]
fn stdin_piped_through_cat_comes_back_whole() {
    watchdog(|| {
        let rt = workers(2);
        let size: usize = 64 << 20;
        rt.block_on(async move {
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let writer = ebbtide::spawn(async move {
                let mut sum = 0u64;
                let chunk: Vec<u8> = (0..65536u32).map(|i| (i * 31 % 251) as u8).collect();
                let mut sent = 0;
                while sent < size {
                    stdin.write_all(&chunk).await.unwrap();
                    sum = chunk
                        .iter()
                        .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
                    sent += chunk.len();
                }
                drop(stdin); // cat sees end-of-file
                sum
            });
            let mut sum = 0u64;
            let mut got = 0;
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = stdout.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                sum = buf[..n]
                    .iter()
                    .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
                got += n;
            }
            assert_eq!(got, size);
            assert_eq!(sum, writer.await.unwrap());
            assert!(child.wait().await.unwrap().success());
        });
    });
}

#[test]
fn owned_buffer_pipes_return_their_buffers() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let ebbtide::io::BufResult(res, msg) = stdin.write_all_owned(b"hello".to_vec()).await;
            res.unwrap();
            assert_eq!(msg, b"hello");
            drop(stdin);
            let stdout = child.stdout.take().unwrap();
            let mut all = Vec::new();
            loop {
                let ebbtide::io::BufResult(res, buf) =
                    stdout.read_owned(Vec::with_capacity(3)).await;
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
fn a_dropped_wait_loses_nothing_and_a_later_wait_gets_the_status() {
    watchdog(|| {
        let rt = workers(2);
        rt.block_on(async {
            let mut child = Command::new("sh")
                .args(["-c", "sleep 0.2; exit 5"])
                .spawn()
                .unwrap();
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
fn kill_on_drop_kills_and_a_plain_drop_keeps_running_until_reaped() {
    watchdog(|| {
        let rt = workers(2);
        let (killed, kept) = rt.block_on(async {
            let killed = Command::new("sleep")
                .arg("30")
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let kept = Command::new("sh")
                .args(["-c", "sleep 0.3"])
                .spawn()
                .unwrap();
            let ids = (killed.id(), kept.id());
            drop((killed, kept));
            ids
        });
        assert!(
            until(Duration::from_secs(10), || !exists(killed)),
            "the kill_on_drop child still exists"
        );
        assert!(exists(kept), "a plain drop does not kill");
        // It exits by itself and is reaped in the background: no zombie.
        assert!(
            until(Duration::from_secs(10), || !exists(kept)),
            "never reaped"
        );
        drop(rt);
    });
}

#[test]
fn a_child_outlives_the_task_that_spawned_it_and_is_reaped() {
    watchdog(|| {
        let rt = workers(2);
        let (tx, rx) = std::sync::mpsc::channel();
        let task = rt.spawn(async move {
            let child = Command::new("sh")
                .args(["-c", "sleep 0.3"])
                .spawn()
                .unwrap();
            tx.send(child.id()).unwrap();
            std::future::pending::<()>().await;
            drop(child);
        });
        let pid = rx.recv().unwrap();
        task.abort();
        assert!(rt.block_on(task).unwrap_err().is_cancelled());
        assert!(exists(pid), "cancelling the task does not kill the child");
        assert!(
            until(Duration::from_secs(10), || !exists(pid)),
            "never reaped"
        );
    });
}

#[test]
fn shutdown_kills_kill_on_drop_children_and_counts_the_others() {
    watchdog(|| {
        let rt = workers(2);
        let (doomed, survivor) = rt.block_on(async {
            let doomed = Command::new("sleep")
                .arg("30")
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let survivor = Command::new("sh")
                .args(["-c", "sleep 0.5"])
                .spawn()
                .unwrap();
            (doomed, survivor)
        });
        let (doomed_pid, survivor_pid) = (doomed.id(), survivor.id());
        // The children are held by a task at shutdown.
        rt.spawn(async move {
            let _hold = (doomed, survivor);
            std::future::pending::<()>().await;
        });
        let report = rt.shutdown(Duration::from_millis(50));
        assert_eq!(report.children_killed, 1, "{report}");
        assert_eq!(report.children_running, 1, "{report}");
        assert!(!exists(doomed_pid), "killed and reaped before the report");
        assert!(exists(survivor_pid));
        // Left running, but reaped once it exits: never a zombie.
        assert!(
            until(Duration::from_secs(10), || !exists(survivor_pid)),
            "never reaped"
        );
        assert!(
            report
                .to_string()
                .contains("1 child processes killed, 1 left running"),
            "{report}"
        );
    });
}

#[test]
fn missing_programs_and_directories_are_clear_errors() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let err = Command::new("ebbtide-no-such-program").spawn().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            assert!(err.to_string().contains("ebbtide-no-such-program"), "{err}");
            let err = Command::new("true")
                .current_dir("/ebbtide/no/such/dir")
                .status()
                .await
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        });
        let err = Command::new("true").spawn().unwrap_err();
        assert!(err.to_string().contains("outside a runtime"), "{err}");
    });
}

#[test]
fn other_libraries_children_are_never_reaped_by_ebbtide() {
    watchdog(|| {
        let rt = workers(2);
        let mut theirs = std::process::Command::new("sh")
            .args(["-c", "sleep 0.3; exit 4"])
            .spawn()
            .unwrap();
        rt.block_on(async {
            for _ in 0..20 {
                Command::new("true").status().await.unwrap();
            }
        });
        // Had ebbtide reaped it, std's wait would fail with ECHILD.
        assert_eq!(theirs.wait().unwrap().code(), Some(4));
    });
}

/// tokio's `process_issue_2174`: a writer blocked on a child's full stdin
/// pipe gets an error when the child dies, instead of waiting forever.
#[test]
fn a_writer_blocked_on_a_dead_childs_stdin_gets_an_error() {
    watchdog(|| {
        let rt = workers(2);
        rt.block_on(async {
            let mut child = Command::new("sleep")
                .arg("30")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            let mut input = child.stdin.take().unwrap();
            let writer = ebbtide::spawn(async move {
                let data = [0u8; 8192];
                loop {
                    input.write_all(&data).await?;
                }
                #[allow(unreachable_code)]
                Ok::<(), std::io::Error>(())
            });
            // Let the pipe's buffer fill, so the writer waits for room.
            ebbtide::time::sleep(Duration::from_millis(200)).await;
            child.kill().await.unwrap();
            let err = writer.await.unwrap().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
        });
    });
}

/// async-process's environment and directory tests: `env`, `env_remove`,
/// `env_clear` and `current_dir` reach the child.
#[test]
fn environment_and_working_directory_reach_the_child() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let out = Command::new("sh")
                .args(["-c", "echo \"$EBBTIDE_A|$EBBTIDE_B|$HOME\"; pwd"])
                .env("EBBTIDE_A", "one")
                .env("EBBTIDE_B", "two")
                .env_remove("EBBTIDE_B")
                .current_dir("/tmp")
                .output()
                .await
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let mut lines = text.lines();
            let vars = lines.next().unwrap();
            assert!(vars.starts_with("one||"), "{vars}");
            assert_eq!(lines.next(), Some("/tmp"));
            let cleared = Command::new("/usr/bin/env")
                .env_clear()
                .env("ONLY", "1")
                .output()
                .await
                .unwrap();
            assert_eq!(cleared.stdout, b"ONLY=1\n");
        });
    });
}

/// async-process's `test_finish_twice` and `child_status_preserved_with_kill_on_drop`:
/// waiting twice returns the same status, and dropping an exited
/// `kill_on_drop` child kills nothing.
#[test]
fn waiting_twice_returns_the_same_status_and_an_exited_child_is_not_killed() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let mut child = Command::new("sh")
                .args(["-c", "exit 9"])
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let first = child.wait().await.unwrap();
            let second = child.wait().await.unwrap();
            assert_eq!(first.code(), Some(9));
            assert_eq!(first, second);
            drop(child); // exited and reaped: `kill_on_drop` has nothing to kill
        });
    });
}

/// async-process's `spawn_multiple_with_stdio`: several children with all
/// three pipes at once, each answering on its own pipes.
#[test]
fn several_children_with_all_three_pipes_answer_on_their_own() {
    watchdog(|| {
        let rt = workers(2);
        rt.block_on(async {
            let children: Vec<_> = (0..8)
                .map(|i| {
                    let mut child = Command::new("sh")
                        .args([
                            "-c",
                            "read line; echo \"out $line\"; echo \"err $line\" >&2",
                        ])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    (i, child.stdin.take().unwrap(), child)
                })
                .collect();
            for (i, mut stdin, child) in children {
                stdin.write_all(format!("{i}\n").as_bytes()).await.unwrap();
                drop(stdin);
                let out = child.wait_with_output().await.unwrap();
                assert_eq!(out.stdout, format!("out {i}\n").as_bytes());
                assert_eq!(out.stderr, format!("err {i}\n").as_bytes());
            }
        });
    });
}

/// tokio's `process_kill_on_drop`: dropping a `kill_on_drop` child kills
/// that process only; a grandchild it started keeps the stdout pipe and
/// its output still arrives, then end-of-file.
#[test]
fn kill_on_drop_kills_the_child_not_its_own_children() {
    watchdog(|| {
        let rt = workers(2);
        rt.block_on(async {
            let mut child = Command::new("sh")
                .args([
                    "-c",
                    // `exec`: the killed process is the one holding the sleep.
                    "sh -c 'sleep 0.3; echo child ran' &\n exec sleep 10",
                ])
                .kill_on_drop(true)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            ebbtide::time::sleep(Duration::from_millis(100)).await;
            let mut out = child.stdout.take().unwrap();
            drop(child);
            // End-of-file long before the sleep's 10 s, or it was not killed.
            let read = async {
                let mut msg = String::new();
                out.read_to_string(&mut msg).await.unwrap();
                Some(msg)
            };
            let limit = async {
                ebbtide::time::sleep(Duration::from_secs(5)).await;
                None
            };
            let msg = futures_lite::future::or(read, limit).await;
            assert_eq!(
                msg.as_deref(),
                Some("child ran\n"),
                "the child was not killed"
            );
        });
    });
}
