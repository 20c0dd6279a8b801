//! Unix: starting the process (the runtime's own spawn, `sys::spawn`, or
//! std's), the exit watcher (a descriptor readable once the child exits: a
//! `pidfd` on Linux, a kqueue with `EVFILT_PROC` on macOS and the BSDs;
//! else `SIGCHLD`) and the child's pipes, non-blocking and registered with
//! the reactor.
//!
//! The runtime's own spawn takes the command as std would run it: the
//! program and arguments, the environment (the process's own unless the
//! command changed or cleared it), the working directory, and the three
//! descriptors. A program name without a `/` is looked for in the `PATH`
//! the child gets (the command's, else the process's, else
//! `/bin:/usr/bin`), as std does.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use super::{Command, StdioKind};
use crate::io::{Async, BufResult, IoBuf, IoBufMut};
use crate::net::socket::{self, StreamSocket};
use crate::signal::Receiver;
use crate::sys;
use crate::sys::spawn::{ChildIo, SpawnPlan};

/// The process, started by std or by the runtime itself.
pub(super) enum Proc {
    Std(std::process::Child),
    Own(OwnChild),
}

/// A child the runtime started: its pid and, once reaped, its status (so
/// the pid is never waited for or signalled once the OS may reuse it).
pub(super) struct OwnChild {
    pid: u32,
    status: Option<ExitStatus>,
}

impl Proc {
    pub(super) fn id(&self) -> u32 {
        match self {
            Proc::Std(child) => child.id(),
            Proc::Own(child) => child.pid,
        }
    }

    /// Reaps the process if it has exited (this pid only).
    pub(super) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self {
            Proc::Std(child) => child.try_wait(),
            Proc::Own(child) => {
                if child.status.is_none() {
                    child.status = sys::spawn::try_reap(child.pid)?.map(ExitStatus::from_raw);
                }
                Ok(child.status)
            }
        }
    }

    /// `SIGKILL`, unless the process was reaped already.
    pub(super) fn kill(&mut self) -> io::Result<()> {
        match self {
            Proc::Std(child) => child.kill(),
            Proc::Own(child) if child.status.is_some() => Ok(()),
            Proc::Own(child) => sys::spawn::kill(child.pid),
        }
    }
}

/// A started process and the parent's ends of its pipes.
pub(super) struct Started {
    pub(super) proc: Proc,
    /// The exit descriptor the spawn made, if it made one.
    pidfd: Option<OwnedFd>,
    pub(super) pipes: [Option<io::Result<Pipe>>; 3],
}

impl Started {
    pub(super) fn from_std(mut child: std::process::Child) -> Started {
        let pipes = [
            child.stdin.take().map(Pipe::new),
            child.stdout.take().map(Pipe::new),
            child.stderr.take().map(Pipe::new),
        ];
        Started {
            proc: Proc::Std(child),
            pidfd: None,
            pipes,
        }
    }
}

/// Starts `cmd`'s process: with the runtime's own spawn where it can (the
/// module doc of `crate::process`, step 1), else through std.
pub(super) fn start(cmd: &mut Command) -> io::Result<Started> {
    if sys::spawn::OWN_SPAWN && !cmd.std_only {
        if let Some(child) = sys::spawn::spawn(&plan(cmd)?)? {
            return Ok(Started {
                proc: Proc::Own(OwnChild {
                    pid: child.pid,
                    status: None,
                }),
                pidfd: Some(child.pidfd),
                pipes: child.pipes.map(|end| end.map(Pipe::new)),
            });
        }
    }
    cmd.spawn_std()
}

/// What `sys::spawn` needs to run `cmd` as std would (the module doc).
fn plan(cmd: &Command) -> io::Result<SpawnPlan<'_>> {
    let std = &cmd.std;
    let program = std.get_program();
    let argv = std::iter::once(program)
        .chain(std.get_args())
        .map(|arg| c_string(arg.as_bytes().to_vec()))
        .collect::<io::Result<_>>()?;
    let changes: Vec<(&OsStr, Option<&OsStr>)> = std.get_envs().collect();
    let env = if changes.is_empty() && !cmd.env_cleared {
        None
    } else {
        let mut vars: BTreeMap<OsString, OsString> = if cmd.env_cleared {
            BTreeMap::new()
        } else {
            std::env::vars_os().collect()
        };
        for &(key, value) in &changes {
            match value {
                Some(value) => vars.insert(key.to_owned(), value.to_owned()),
                None => vars.remove(key),
            };
        }
        let pairs = vars.into_iter().map(|(key, value)| {
            let mut pair = key.into_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            c_string(pair)
        });
        Some(pairs.collect::<io::Result<_>>()?)
    };
    let name = program.as_bytes();
    let paths = if name.is_empty() {
        Vec::new() // nothing to run: the child reports `ENOENT`
    } else if name.contains(&b'/') {
        vec![c_string(name.to_vec())?]
    } else {
        let search = match changes.iter().find(|(key, _)| *key == "PATH") {
            Some(&(_, value)) => value.map(OsStr::to_owned),
            None if cmd.env_cleared => None,
            None => std::env::var_os("PATH"),
        };
        let search = search.unwrap_or_else(|| "/bin:/usr/bin".into());
        search
            .as_bytes()
            .split(|&b| b == b':')
            .map(|dir| {
                let mut path = if dir.is_empty() {
                    b".".to_vec()
                } else {
                    dir.to_vec()
                };
                path.push(b'/');
                path.extend_from_slice(name);
                c_string(path)
            })
            .collect::<io::Result<_>>()?
    };
    let cwd = std
        .get_current_dir()
        .map(|dir| c_string(dir.as_os_str().as_bytes().to_vec()))
        .transpose()?;
    let stdio = |i: usize| match &cmd.stdio[i] {
        None | Some(StdioKind::Inherit) => ChildIo::Inherit,
        Some(StdioKind::Null) => ChildIo::Null,
        Some(StdioKind::Piped) => ChildIo::Piped,
        Some(StdioKind::File(file)) => ChildIo::Fd(file.as_fd()),
    };
    Ok(SpawnPlan {
        paths,
        argv,
        env,
        cwd,
        stdio: [stdio(0), stdio(1), stdio(2)],
    })
}

/// `bytes` as a C string; std's error for an inner NUL.
fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

/// What tells a waiting `Child` that its process may have exited.
pub(super) enum ExitWatch {
    /// Readable once the process has exited (`sys::process_exit_fd`).
    Pidfd(Async<OwnedFd>),
    /// Elsewhere (or no `pidfd_open`): some child of this process changed
    /// state; the caller's `try_wait` says whether it was this one.
    Sigchld(Receiver),
}

impl ExitWatch {
    /// A watcher for `started`, made right after it was spawned: the
    /// spawn's own `pidfd` if it made one. An exit before this returns is
    /// still seen: the caller's next `try_wait` finds it (step 2).
    pub(super) fn watch(started: &mut Started) -> io::Result<ExitWatch> {
        let fd = match started.pidfd.take() {
            Some(fd) => Some(fd),
            None => sys::process_exit_fd(started.proc.id())?,
        };
        match fd {
            // Only polled, never read: its blocking mode does not matter.
            Some(fd) => Ok(ExitWatch::Pidfd(Async::polled_only(fd)?)),
            None => ExitWatch::sigchld(),
        }
    }

    /// The `SIGCHLD` watcher (used where there is no `pidfd`; tests use it
    /// on Linux too).
    pub(super) fn sigchld() -> io::Result<ExitWatch> {
        Ok(ExitWatch::Sigchld(Receiver::new(&[libc::SIGCHLD])?))
    }

    /// Whether an exit that happened before this watcher existed still
    /// shows (a `pidfd` of an exited process is readable at once), so a
    /// first wait may poll the watcher before asking the OS for the
    /// status. `SIGCHLD` does not replay: there `try_wait` goes first.
    pub(super) fn shows_past_exits(&self) -> bool {
        matches!(self, ExitWatch::Pidfd(_))
    }

    /// `Ready` when the process may have changed state since the last
    /// `Ready`; registers the waker otherwise.
    pub(super) fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            ExitWatch::Pidfd(fd) => fd.poll_readable(cx),
            ExitWatch::Sigchld(signals) => signals.poll_recv(cx).map_ok(drop),
        }
    }
}

/// One end of a pipe to the child: non-blocking, registered with the
/// reactor, read and written like a stream socket.
///
/// A pipe that turns out to carry a stream (a write finds it full, or a
/// read takes a whole default-sized buffer) is grown once
/// (`sys::grow_pipe`: 1 MiB on Linux), so each wake-up moves 16 times the
/// bytes. Only such pipes pay for the memory: the kernel counts large pipe
/// buffers against a per-user budget, and a thousand short-lived children
/// must not spend it.
pub(super) struct Pipe {
    io: Async<PipeFd>,
    grown: AtomicBool,
}

/// A read this long means the pipe was full: the default pipe size.
const FULL_READ: usize = 64 * 1024;

/// A pipe descriptor as the socket code wants it.
struct PipeFd(File);

impl AsFd for PipeFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Read for &PipeFd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }
}

impl Write for &PipeFd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.0).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StreamSocket for PipeFd {
    const IS_SOCKET: bool = false;
    fn recv_stream(
        &self,
        buf: &mut [MaybeUninit<u8>],
        _hint: bool,
    ) -> io::Result<(usize, Option<usize>)> {
        Ok((sys::read_uninit(self.0.as_fd(), buf)?, None))
    }
}

impl Pipe {
    fn new(fd: impl Into<OwnedFd>) -> io::Result<Pipe> {
        Ok(Pipe {
            io: Async::new(PipeFd(File::from(fd.into())))?,
            grown: AtomicBool::new(false),
        })
    }

    /// Grows the pipe, the first time it shows it carries a stream.
    fn carries_a_stream(&self) {
        if !self.grown.swap(true, Ordering::Relaxed) {
            sys::grow_pipe(self.io.get_ref().0.as_fd());
        }
    }

    /// Notes a read of `n` bytes (a full one grows the pipe).
    fn read_done(&self, n: usize) {
        if n >= FULL_READ {
            self.carries_a_stream();
        }
    }

    pub(super) async fn read_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        let out = socket::read_owned(&self.io, &socket::NO_STASH, buf).await;
        if let BufResult(Ok(n), _) = &out {
            self.read_done(*n);
        }
        out
    }

    pub(super) async fn write_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        socket::write_owned(&self.io, buf).await
    }

    pub(super) async fn write_all_owned<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        if buf.buf_len() >= FULL_READ {
            self.carries_a_stream(); // more than a default pipe holds
        }
        socket::write_all_owned(&self.io, buf).await
    }

    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let polled = socket::poll_read(&self.io, &socket::NO_STASH, cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.read_done(n);
        }
        polled
    }

    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = socket::poll_write(&self.io, cx, buf);
        if polled.is_pending() {
            self.carries_a_stream(); // it was full
        }
        polled
    }

    /// Writes go straight to the pipe: nothing to flush.
    pub(super) fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The `SIGCHLD` path, which Linux uses only without `pidfd_open`: the
/// scenarios of `tests/process.rs` that depend on how exits are learned.
#[cfg(all(test, not(miri)))]
mod tests {
    use std::time::Duration;

    use super::super::{Child, Command};
    use super::ExitWatch;
    use crate::runtime::Runtime;

    fn spawn_sigchld(cmd: &mut Command) -> Child {
        cmd.spawn_with(|_| ExitWatch::sigchld()).unwrap()
    }

    fn exists(pid: u32) -> bool {
        // SAFETY: signal 0 checks for existence only.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    #[test]
    fn sigchld_waits_many_children_and_leaves_other_childrens_status_alone() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let mut theirs = std::process::Command::new("sh")
            .args(["-c", "sleep 0.2; exit 4"])
            .spawn()
            .unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = (0..50)
                .map(|i| {
                    crate::spawn(async move {
                        let mut child =
                            spawn_sigchld(Command::new("sh").args(["-c", &format!("exit {i}")]));
                        assert!(matches!(child.watch, Some(ExitWatch::Sigchld(_))));
                        assert_eq!(child.wait().await.unwrap().code(), Some(i));
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert_eq!(theirs.wait().unwrap().code(), Some(4), "reaped by ebbtide");
    }

    #[test]
    fn sigchld_wait_is_cancel_safe_and_a_dropped_child_is_reaped() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let dropped = rt.block_on(async {
            let mut child = spawn_sigchld(Command::new("sh").args(["-c", "sleep 0.2; exit 6"]));
            assert!(futures_lite::future::poll_once(child.wait())
                .await
                .is_none());
            assert_eq!(child.wait().await.unwrap().code(), Some(6));
            let dropped = spawn_sigchld(Command::new("sh").args(["-c", "sleep 0.2"]));
            let id = dropped.id();
            drop(dropped);
            id
        });
        let start = std::time::Instant::now();
        while exists(dropped) {
            assert!(start.elapsed() < Duration::from_secs(10), "never reaped");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[cfg(target_os = "linux")]
    fn pipe_size(pipe: &super::Pipe) -> i32 {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open while `pipe` lives.
        unsafe { libc::fcntl(pipe.io.get_ref().0.as_raw_fd(), libc::F_GETPIPE_SZ) }
    }

    /// A pipe that carries a stream is grown once; one that carries a line
    /// keeps the default size (the kernel's per-user budget for large pipe
    /// buffers is not spent on it).
    #[test]
    #[cfg(target_os = "linux")]
    fn only_pipes_that_carry_a_stream_are_grown() {
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let mut child = Command::new("cat")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let default = pipe_size(&stdin.0);
            let writer = crate::spawn(async move {
                stdin.write_all(&vec![7u8; 4 << 20]).await.unwrap();
                pipe_size(&stdin.0)
            });
            let mut all = Vec::new();
            stdout.read_to_end(&mut all).await.unwrap();
            assert_eq!(all.len(), 4 << 20);
            assert_eq!(
                writer.await.unwrap(),
                1 << 20,
                "the full stdin pipe was grown"
            );
            assert_eq!(pipe_size(&stdout.0), 1 << 20, "full reads grew stdout");
            child.wait().await.unwrap();

            let mut small = Command::new("echo")
                .arg("hi")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = small.stdout.take().unwrap();
            let mut line = String::new();
            out.read_to_string(&mut line).await.unwrap();
            assert_eq!(line, "hi\n");
            assert_eq!(pipe_size(&out.0), default, "a line does not grow a pipe");
            small.wait().await.unwrap();
        });
    }
}
