//! The runtime's own spawn (`Command::new(..)` on Linux starts the process
//! itself, not through std): each scenario runs the same command through
//! `ebbtide::process::Command` and through `std::process::Command` and
//! asserts the child got the same thing: signal mask and dispositions,
//! open descriptors, environment, `PATH` lookup, errors, stdio from a
//! file. Commands that carry settings only std knows still run (through
//! std).
#![cfg(target_os = "linux")]

mod common;

use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use common::child::{run_test_in_child, seccomp};
use common::fs::TempDir;
use common::{watchdog, workers};
use ebbtide::process::{Command, Stdio};

/// Applies a [`Case`]'s arguments and environment to a command of either
/// type (they share the method names).
macro_rules! configure {
    ($cmd:ident, $case:expr) => {
        $cmd.args(&$case.args);
        if $case.clear {
            $cmd.env_clear();
        }
        for (key, value) in &$case.env {
            match value {
                Some(value) => $cmd.env(key, value),
                None => $cmd.env_remove(key),
            };
        }
    };
}

/// One command, as data, so both spawns get exactly the same.
#[derive(Clone, Default)]
struct Case {
    program: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, Option<OsString>)>,
    clear: bool,
}

impl Case {
    fn new(program: &'static str, args: &[&str]) -> Case {
        Case {
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Case::default()
        }
    }

    fn ours(&self) -> Command {
        let mut cmd = Command::new(self.program);
        configure!(cmd, self);
        cmd
    }

    fn std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.program);
        configure!(cmd, self);
        cmd
    }

    /// stdout of both, or the error kinds of both.
    async fn both(&self) -> (Result<String, ErrorKind>, Result<String, ErrorKind>) {
        let ours = self.ours().output().await;
        let theirs = self.std().output();
        let text = |out: std::io::Result<std::process::Output>| {
            out.map(|o| String::from_utf8(o.stdout).unwrap())
                .map_err(|e| e.kind())
        };
        (text(ours), text(theirs))
    }
}

/// The masks of `/proc/self/status` that say how a process treats
/// signals: blocked, ignored, caught.
fn signal_masks(status: &str) -> [u64; 3] {
    ["SigBlk:", "SigIgn:", "SigCgt:"].map(|name| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
    })
}

const fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// A child starts with the spawning thread's signal mask (the spawn blocks
/// every signal around the clone, and the child restores it), `SIGPIPE` at
/// its default (Rust programs ignore it), and no handler of the parent's.
#[test]
fn the_child_gets_the_signal_state_std_gives_it() {
    watchdog(|| {
        // Blocked in this thread, which runs `block_on`'s future.
        // SAFETY: valid sigset pointers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        let rt = workers(1);
        rt.block_on(async {
            // A handler in the parent, which the child must not keep.
            let _usr1 = ebbtide::signal::Signals::new([libc::SIGUSR1]).unwrap();
            let (ours, std) = Case::new("cat", &["/proc/self/status"]).both().await;
            let [blocked, ignored, caught] = signal_masks(&ours.unwrap());
            let [std_blocked, std_ignored, std_caught] = signal_masks(&std.unwrap());
            assert_eq!(blocked, std_blocked);
            assert_eq!(blocked, bit(libc::SIGUSR2), "the thread's mask");
            // glibc's `posix_spawn` also marks its two internal signals (32
            // and 33) ignored in the child; the classic ones must agree.
            let classic = (1u64 << 31) - 1;
            assert_eq!(ignored & classic, std_ignored & classic);
            assert_eq!(ignored & bit(libc::SIGPIPE), 0, "SIGPIPE at its default");
            assert_eq!((caught, std_caught), (0, 0));
        });
    });
}

/// The parent's descriptors without `FD_CLOEXEC` (the ones a child
/// inherits), by number.
fn inheritable_fds() -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        // SAFETY: F_GETFD on a number; a closed one (the listing's own
        // descriptor, gone by now) fails and is left out.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == 0)
        .collect();
    fds.sort_unstable();
    fds
}

/// The child gets descriptors 0, 1 and 2 and only those of the parent's
/// that are not close-on-exec: none of the runtime's own (the pipes' other
/// ends, the pidfd, the poller's).
#[test]
fn the_child_inherits_only_what_is_not_close_on_exec() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            // Held open across the spawns: more descriptors in the parent.
            let _mine = std::fs::File::open("/proc/self/status").unwrap();
            let (ours, std) = Case::new("ls", &["/proc/self/fd"]).both().await;
            assert_eq!(ours, std);
            let mut child: Vec<i32> = ours.unwrap().lines().map(|l| l.parse().unwrap()).collect();
            child.sort_unstable();
            // The parent's inheritable ones, and `ls`'s own directory (the
            // lowest free number).
            let mut expect: Vec<i32> = (0..3).chain(inheritable_fds()).collect();
            expect.sort_unstable();
            expect.dedup();
            let free = (0..).find(|fd| !expect.contains(fd)).unwrap();
            expect.push(free);
            expect.sort_unstable();
            assert_eq!(child, expect);
        });
    });
}

#[test]
fn the_environment_is_the_one_std_gives() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let env = |case: Case| async move {
                let (ours, std) = case.both().await;
                assert_eq!(ours, std);
                ours.unwrap()
            };
            // Inherited whole.
            let all = env(Case::new("/usr/bin/env", &[])).await;
            assert!(all.contains("PATH="), "{all}");
            // Set, overridden and removed.
            let mut case = Case::new("/usr/bin/env", &[]);
            case.env = vec![
                ("EBBTIDE_SET", Some("1".into())),
                ("PATH", Some("/usr/bin:/bin".into())),
                ("HOME", None),
            ];
            let changed = env(case).await;
            assert!(changed.contains("EBBTIDE_SET=1\n"), "{changed}");
            assert!(changed.contains("PATH=/usr/bin:/bin\n"), "{changed}");
            assert!(
                !changed.lines().any(|l| l.starts_with("HOME=")),
                "{changed}"
            );
            // Cleared, then set.
            let mut case = Case::new("/usr/bin/env", &[]);
            case.clear = true;
            case.env = vec![("ONLY", Some("1".into()))];
            assert_eq!(env(case).await, "ONLY=1\n");
        });
    });
}

/// A name without `/` is looked for in the `PATH` the child gets: the
/// command's own if it sets one, entry by entry, skipping entries where
/// it is missing or not executable; a name found only as a
/// non-executable file is `PermissionDenied`, as with std.
#[test]
fn the_program_is_looked_for_in_the_childs_path_as_std_does() {
    watchdog(|| {
        let dir = TempDir::new("spawn-path");
        let script = dir.file("ebbtide-hello", b"#!/bin/sh\necho \"hello $0 $1\"\n");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.file("ebbtide-plain", b"#!/bin/sh\necho no\n");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path: OsString = format!(
            "/ebbtide/no/such/dir::{}:/usr/bin:/bin",
            dir.path("").display()
        )
        .into();
        let rt = workers(1);
        rt.block_on(async move {
            let with_path = |program: &'static str| {
                let mut case = Case::new(program, &["x"]);
                case.env = vec![("PATH", Some(path.clone()))];
                case
            };
            let (ours, std) = with_path("ebbtide-hello").both().await;
            assert_eq!(ours, std);
            assert!(ours.unwrap().starts_with("hello "), "argv[0] as given");
            // Found after the directories where it is not.
            let (ours, std) = with_path("true").both().await;
            assert_eq!((ours, std), (Ok(String::new()), Ok(String::new())));
            let (ours, std) = with_path("ebbtide-plain").both().await;
            assert_eq!(ours, std);
            assert_eq!(ours, Err(ErrorKind::PermissionDenied));
            let (ours, std) = with_path("ebbtide-nowhere").both().await;
            assert_eq!(ours, std);
            assert_eq!(ours, Err(ErrorKind::NotFound));
            // Without a `PATH`, the default one.
            let mut case = Case::new("true", &[]);
            case.clear = true;
            let (ours, std) = case.both().await;
            assert_eq!((ours, std), (Ok(String::new()), Ok(String::new())));
            // A NUL byte is refused before anything runs, as std does.
            for mut cmd in [
                Command::new("tr\0ue"),
                {
                    let mut c = Command::new("true");
                    c.arg("a\0b");
                    c
                },
                {
                    let mut c = Command::new("true");
                    c.env("K\0", "v");
                    c
                },
                {
                    let mut c = Command::new("true");
                    c.current_dir("/t\0mp");
                    c
                },
            ] {
                let err = cmd.spawn().unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            }
        });
    });
}

/// A file given as stdout gets the child's output; the command keeps it,
/// so a second spawn writes to it again. The null device reads empty.
#[test]
fn a_file_as_stdout_receives_the_output_of_each_spawn() {
    watchdog(|| {
        let dir = TempDir::new("spawn-file");
        let out = dir.path("out");
        let file = std::fs::File::create(&out).unwrap();
        let rt = workers(1);
        rt.block_on(async {
            let mut cmd = Command::new("echo");
            cmd.arg("line").stdout(file);
            assert!(cmd.status().await.unwrap().success());
            assert!(cmd.status().await.unwrap().success());
            // `cat` reads the null device: nothing, at once.
            let null = Command::new("cat")
                .stdin(Stdio::null())
                .output()
                .await
                .unwrap();
            assert!(null.status.success() && null.stdout.is_empty());
        });
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "line\nline\n");
    });
}

/// Settings only std knows (through `as_std_mut`, or a std command) are
/// applied: such commands spawn through std.
#[test]
fn settings_only_std_knows_are_applied() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "echo $0; cut -d' ' -f5 /proc/$$/stat"]);
            cmd.as_std_mut().arg0("renamed").process_group(0);
            let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
            let pid = child.id();
            let mut text = String::new();
            futures_lite::AsyncReadExt::read_to_string(child.stdout.as_mut().unwrap(), &mut text)
                .await
                .unwrap();
            assert!(child.wait().await.unwrap().success());
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some("renamed"));
            assert_eq!(lines.next().unwrap().trim(), pid.to_string(), "own group");

            let mut std = std::process::Command::new("sh");
            std.args(["-c", "echo $0"]).arg0("from-std");
            let out = Command::from(std).output().await.unwrap();
            assert_eq!(out.stdout, b"from-std\n");
            // A std `Stdio` works too.
            let out = Command::new("echo")
                .arg("std stdio")
                .stdout(std::process::Stdio::piped())
                .output()
                .await
                .unwrap();
            assert_eq!(out.stdout, b"std stdio\n");
        });
    });
}

/// On a kernel without `CLONE_PIDFD` (before 5.2; here a seccomp filter
/// makes `clone` with that flag fail with `EINVAL`, as such a kernel does)
/// the command spawns through std, and the child is waited for as usual.
#[test]
fn without_clone_pidfd_the_spawn_goes_through_std() {
    const CHILD: &str = "EBBTIDE_TEST_NO_CLONE_PIDFD_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = run_test_in_child("without_clone_pidfd_the_spawn_goes_through_std", CHILD);
        assert!(String::from_utf8_lossy(&out.stdout).contains("child: spawned through std"));
        return;
    }
    watchdog(|| {
        seccomp::install(&[
            seccomp::load(0),
            seccomp::unless_eq(libc::SYS_clone as u32, 3),
            seccomp::load(16),
            seccomp::unless_any_bit(libc::CLONE_PIDFD as u32, 1),
            seccomp::fail(libc::EINVAL),
            seccomp::allow(),
        ]);
        let rt = workers(1);
        rt.block_on(async {
            let out = Command::new("sh")
                .args(["-c", "echo hi; exit 5"])
                .output()
                .await
                .unwrap();
            assert_eq!(out.status.code(), Some(5));
            assert_eq!(out.stdout, b"hi\n");
        });
    });
    println!("child: spawned through std");
}
