//! Child processes on the runtime's own reactor: [`Command`], [`Child`],
//! and its pipes, shaped like tokio's and async-process's.
//!
//! # How a child is watched
//!
//! 1. **Spawn.** [`Command::spawn`] starts the process, then makes its
//!    exit watcher, then registers the child with the runtime (for its
//!    shutdown) and its pipes with the reactor (non-blocking, read and
//!    written like sockets; on Windows, overlapped pipes on the reactor's
//!    port). An exit before the watcher exists is still seen (step 2).
//!    On Linux the runtime starts the process itself (`sys::spawn`:
//!    `clone` with `CLONE_VFORK` on a stack the thread keeps, and the
//!    kernel's `pidfd` of the child with it, so the parent makes no
//!    `mmap`, `munmap` or `pidfd_open` per spawn); it spawns through
//!    `std::process::Command` instead when the command carries settings
//!    only std knows (it came [`From`] a std command, was changed through
//!    [`Command::as_std_mut`], or has a std [`std::process::Stdio`]), on
//!    other systems, and on kernels without `CLONE_PIDFD`.
//! 2. **Wait.** [`Child::wait`] loops: reap the child if it has exited
//!    (`Child::try_wait`, which waits for this child's pid only, never for
//!    other libraries' children), else wait for the watcher to say
//!    something changed. The watcher is the platform's: a descriptor
//!    registered with the reactor that is readable once the child exits
//!    (a `pidfd` on Linux, a kqueue holding an `EVFILT_PROC` filter on
//!    macOS and the BSDs); where there is none, `SIGCHLD` through the
//!    signal self-pipe; on Windows the process handle, a waitable on the
//!    reactor's port.
//!    Dropping the future loses nothing: the status, once reaped, is kept,
//!    and a later `wait` returns it.
//! 3. **Drop.** A `Child` dropped before it was reaped is killed first if
//!    it was spawned with `kill_on_drop(true)`, and is then reaped in the
//!    background: by a task on its runtime while that runs, else by one
//!    reaper thread shared by the process, which polls its orphans until
//!    they have all exited. No child is ever left a zombie.
//! 4. **Shutdown.** The runtime's shutdown kills and reaps the children
//!    spawned with `kill_on_drop(true)` that still run, and counts those
//!    left running (`ShutdownReport::children_killed`,
//!    `children_running`).

mod orphans;

// The platform's exit watcher and pipes.
#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

use std::ffi::OsStr;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};

pub use std::process::{ExitStatus, Output};

use crate::io::{BufResult, IoBuf, IoBufMut};
use crate::runtime::children::{Settled, Tracked};
use crate::runtime::{context, Shared};

/// A process builder: `std::process::Command` plus what the runtime adds.
///
/// # Examples
///
/// ```
/// # #[cfg(unix)]
/// ebbtide::block_on(async {
///     let out = ebbtide::process::Command::new("echo").arg("hi").output().await?;
///     assert_eq!(out.stdout, b"hi\n");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    /// Stdin, stdout, stderr as set through this type; `None`: default.
    stdio: [Option<StdioKind>; 3],
    /// Whether `env_clear` was called (std does not say).
    env_cleared: bool,
    /// Whether `std` may carry settings only std can apply (step 1).
    std_only: bool,
}

impl Command {
    /// A command that runs `program` (see `std::process::Command::new`).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        let program = program.as_ref();
        Command {
            std_only: has_nul(program),
            ..Command::from(std::process::Command::new(program))
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std_only |= has_nul(arg.as_ref());
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self.arg(arg);
        }
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std_only |= has_nul(key.as_ref()) || has_nul(val.as_ref());
        self.std.env(key, val);
        self
    }

    /// Sets environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, val) in vars {
            self.env(key, val);
        }
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Clears the environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self.env_cleared = true;
        self
    }

    /// Sets the working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std_only |= has_nul(dir.as_ref().as_os_str());
        self.std.current_dir(dir);
        self
    }

    /// Configures the child's stdin (default: inherited by `spawn` and
    /// `status`, null for `output`).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.set_stdio(0, cfg.into())
    }

    /// Configures the child's stdout (default: inherited, piped for
    /// `output`).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.set_stdio(1, cfg.into())
    }

    /// Configures the child's stderr (default: inherited, piped for
    /// `output`).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.set_stdio(2, cfg.into())
    }

    /// Keeps `cfg` for descriptor `i`; a std `Stdio`, which nothing but
    /// std can read, goes to the std command at once.
    fn set_stdio(&mut self, i: usize, cfg: Stdio) -> &mut Command {
        match cfg.0 {
            Ok(kind) => self.stdio[i] = Some(kind),
            Err(std) => {
                self.set_std_stdio(i, std);
                self.std_only = true;
                self.stdio[i] = None;
            }
        }
        self
    }

    /// Sets std's descriptor `i` (0, 1, 2) to `std`.
    fn set_std_stdio(&mut self, i: usize, std: std::process::Stdio) {
        match i {
            0 => self.std.stdin(std),
            1 => self.std.stdout(std),
            _ => self.std.stderr(std),
        };
    }

    /// Hands the stdio set through this type to the std command, for a
    /// spawn through std.
    fn stdio_to_std(&mut self) -> io::Result<()> {
        for i in 0..3 {
            let std = match &self.stdio[i] {
                None => continue,
                Some(StdioKind::Inherit) => std::process::Stdio::inherit(),
                Some(StdioKind::Null) => std::process::Stdio::null(),
                Some(StdioKind::Piped) => std::process::Stdio::piped(),
                Some(StdioKind::File(file)) => file.try_clone()?.into(),
            };
            self.set_std_stdio(i, std);
        }
        Ok(())
    }

    /// Whether dropping the [`Child`] (or shutting its runtime down) kills
    /// the process if it still runs. Default: `false`, and a dropped child
    /// keeps running and is reaped in the background.
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// The underlying `std::process::Command`.
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// The underlying `std::process::Command`, to set what this type does
    /// not expose (e.g. `std::os::unix::process::CommandExt`).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        self.std_only = true;
        &mut self.std
    }

    /// Starts the process (step 1 of the module doc).
    ///
    /// # Errors
    ///
    /// If no runtime is current, or the OS cannot start it: the program or
    /// the working directory does not exist (`NotFound`), no permission, or
    /// out of processes or descriptors (`EMFILE`, `EAGAIN`). The error has
    /// the OS error's kind, names the program, and has the OS error (with
    /// its code) as its `source()`.
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_with(imp::ExitWatch::watch)
    }

    /// Spawns through std (step 1's fallback).
    fn spawn_std(&mut self) -> io::Result<imp::Started> {
        self.stdio_to_std()?;
        Ok(imp::Started::from_std(self.std.spawn()?))
    }

    /// [`spawn`](Self::spawn) with the exit watcher `watch` makes (tests
    /// choose the `SIGCHLD` one where a `pidfd` would be used).
    fn spawn_with(
        &mut self,
        watch: impl FnOnce(&mut imp::Started) -> io::Result<imp::ExitWatch>,
    ) -> io::Result<Child> {
        let shared = context::current("ebbtide::process::Command::spawn")?;
        let mut started = imp::start(self).map_err(|source| {
            let kind = source.kind();
            let program = self.std.get_program().to_owned();
            io::Error::new(kind, SpawnError { program, source })
        })?;
        let [stdin, stdout, stderr] = std::mem::take(&mut started.pipes).map(Option::transpose);
        let watch = watch(&mut started);
        let state = Arc::new(ChildState {
            id: started.proc.id(),
            child: Mutex::new(Some(started.proc)),
            status: std::sync::OnceLock::new(),
            kill_on_drop: self.kill_on_drop,
        });
        // Registered before anything can fail below, so a failure drops a
        // tracked child (step 3 reaps it).
        shared
            .children
            .insert(Arc::downgrade(&state) as Weak<dyn Tracked>);
        let (watch, stdin, stdout, stderr) = match (watch, stdin, stdout, stderr) {
            (Ok(watch), Ok(stdin), Ok(stdout), Ok(stderr)) => (watch, stdin, stdout, stderr),
            (watch, stdin, stdout, stderr) => {
                // The caller gets no `Child` to wait for or kill: the process
                // must not run on unseen. Killed, and reaped in the background.
                let _ = state.start_kill();
                let e = [watch.err(), stdin.err(), stdout.err(), stderr.err()];
                return Err(e.into_iter().flatten().next().expect("one failed"));
            }
        };
        let child = Child {
            state,
            watch: Some(watch),
            shared,
            stdin: stdin.map(ChildStdin),
            stdout: stdout.map(ChildStdout),
            stderr: stderr.map(ChildStderr),
        };
        Ok(child)
    }

    /// Runs the process to completion and returns its exit status (stdin,
    /// stdout and stderr inherited unless configured).
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Self::spawn) and [`Child::wait`].
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        child.wait().await
    }

    /// Runs the process to completion and collects its stdout and stderr
    /// (both set to piped; stdin as configured, inherited by default, as
    /// tokio's). Both pipes are read at once, so a child that fills one
    /// while writing the other never deadlocks.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Self::spawn) and [`Child::wait_with_output`].
    pub async fn output(&mut self) -> io::Result<Output> {
        self.stdout(Stdio::piped());
        self.stderr(Stdio::piped());
        self.spawn()?.wait_with_output().await
    }
}

impl From<std::process::Command> for Command {
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
            stdio: [None, None, None],
            env_cleared: false,
            std_only: true,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("std", &self.std)
            .field("kill_on_drop", &self.kill_on_drop)
            .finish()
    }
}

/// Whether `s` holds a NUL byte, which std's getters hide (they return a
/// placeholder) and std's spawn refuses with the right error: such a
/// command spawns through std.
fn has_nul(s: &OsStr) -> bool {
    s.as_encoded_bytes().contains(&0)
}

/// What a child's stdin, stdout or stderr is connected to (std's
/// `Stdio`, which this one wraps or names: `From<std::process::Stdio>`
/// takes any of std's).
///
/// # Examples
///
/// ```
/// # #[cfg(unix)]
/// ebbtide::block_on(async {
///     use ebbtide::process::{Command, Stdio};
///     let out = Command::new("echo").arg("hi").stdout(Stdio::piped()).output().await?;
///     assert_eq!(out.stdout, b"hi\n");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Stdio(Result<StdioKind, std::process::Stdio>);

/// A `Stdio` the runtime's own spawn can read (`Err` in [`Stdio`]: one of
/// std's, opaque, and the command spawns through std).
#[derive(Debug)]
enum StdioKind {
    Inherit,
    Null,
    Piped,
    File(std::fs::File),
}

impl Stdio {
    /// The parent's own descriptor or handle.
    pub fn inherit() -> Stdio {
        Stdio(Ok(StdioKind::Inherit))
    }

    /// Nothing: the null device.
    pub fn null() -> Stdio {
        Stdio(Ok(StdioKind::Null))
    }

    /// A new pipe, whose other end the [`Child`] holds
    /// ([`Child::stdin`], [`Child::stdout`], [`Child::stderr`]).
    pub fn piped() -> Stdio {
        Stdio(Ok(StdioKind::Piped))
    }
}

impl From<std::process::Stdio> for Stdio {
    fn from(std: std::process::Stdio) -> Stdio {
        Stdio(Err(std))
    }
}

impl From<std::fs::File> for Stdio {
    /// The file (the child gets a duplicate; the command keeps this one
    /// for each spawn).
    fn from(file: std::fs::File) -> Stdio {
        Stdio(Ok(StdioKind::File(file)))
    }
}

/// Why a program could not be started: names the program, and keeps the
/// OS error (with its code) as its source.
#[derive(Debug)]
struct SpawnError {
    program: std::ffi::OsString,
    source: io::Error,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ebbtide::process: cannot start {:?}: {}",
            self.program, self.source
        )
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The child, shared by the [`Child`], the runtime's shutdown and,
/// once the `Child` is dropped, whoever reaps it in the background.
struct ChildState {
    id: u32,
    /// `None` only while `Drop` hands it to the orphan reaper.
    child: Mutex<Option<imp::Proc>>,
    /// The status, once reaped (std keeps it too; this needs no lock).
    status: std::sync::OnceLock<ExitStatus>,
    kill_on_drop: bool,
}

impl ChildState {
    fn lock(&self) -> MutexGuard<'_, Option<imp::Proc>> {
        // Only nonblocking syscalls run under this lock.
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reaps the child if it has exited.
    fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.reaped() {
            return Ok(Some(status));
        }
        let status = match self.lock().as_mut() {
            Some(child) => child.try_wait()?,
            None => return Err(io::Error::other("ebbtide::process: the child is gone")),
        };
        if let Some(status) = status {
            let _ = self.status.set(status);
        }
        Ok(status)
    }

    /// The status, if the child was reaped.
    fn reaped(&self) -> Option<ExitStatus> {
        self.status.get().copied()
    }

    fn start_kill(&self) -> io::Result<()> {
        let mut guard = self.lock();
        let Some(child) = guard.as_mut() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(()); // exited already: nothing to kill, no pid to reuse
        }
        child.kill()
    }
}

impl Tracked for ChildState {
    /// Step 4.
    fn settle(&self, until: Instant) -> Settled {
        if matches!(self.try_wait(), Ok(Some(_)) | Err(_)) {
            return Settled::Exited;
        }
        if !self.kill_on_drop || self.start_kill().is_err() {
            return Settled::Running;
        }
        // SIGKILL / TerminateProcess: the child goes at once, unless it is
        // in an uninterruptible wait; reap it, within the bound.
        loop {
            if let Ok(Some(_)) = self.try_wait() {
                return Settled::Killed;
            }
            if Instant::now() >= until {
                return Settled::Running;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for ChildState {
    /// Step 3's last resort: nobody holds the child any more and it has not
    /// been reaped; the process-wide reaper thread waits for it.
    fn drop(&mut self) {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut child) = child {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                if self.kill_on_drop {
                    let _ = child.kill();
                }
                orphans::adopt(child);
            }
        }
    }
}

/// A running (or exited, not yet dropped) child process.
///
/// Dropping it does not kill the process unless the command set
/// [`kill_on_drop`](Command::kill_on_drop); either way it is reaped in the
/// background (module doc, step 3).
pub struct Child {
    state: Arc<ChildState>,
    /// `None` only during `Drop`.
    watch: Option<imp::ExitWatch>,
    shared: Arc<Shared>,
    /// The child's stdin, if piped. Taken by [`wait`](Self::wait), which
    /// closes it so a child reading stdin to its end can exit.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// The OS process id.
    pub fn id(&self) -> u32 {
        self.state.id
    }

    /// Waits for the process to exit and reaps it (step 2). Closes the
    /// child's stdin first, if piped and not taken.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses nothing; a later `wait` (or
    /// [`try_wait`](Self::try_wait)) returns the status.
    ///
    /// # Errors
    ///
    /// If the runtime has shut down while the child runs, or the OS fails
    /// to report the status.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.stdin = None; // closes it
        let state = &self.state;
        let watch = self.watch.as_mut().expect("present until drop");
        // A watcher that shows past exits is asked first: a running child
        // then costs no `waitpid` that would find nothing.
        let mut ask_os = !watch.shows_past_exits();
        poll_fn(|cx| loop {
            if let Some(status) = state.reaped() {
                return Poll::Ready(Ok(status));
            }
            if ask_os {
                if let Some(status) = state.try_wait()? {
                    return Poll::Ready(Ok(status));
                }
            }
            ask_os = true;
            std::task::ready!(watch.poll_changed(cx))?;
        })
        .await
    }

    /// The exit status if the process has exited (reaping it), else `None`
    /// at once.
    ///
    /// # Errors
    ///
    /// The OS error of `waitpid` / `GetExitCodeProcess`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.state.try_wait()
    }

    /// Asks the OS to kill the process (`SIGKILL`, `TerminateProcess`) and
    /// returns at once; a process that has exited already is left alone.
    ///
    /// # Errors
    ///
    /// The OS error of the kill.
    pub fn start_kill(&mut self) -> io::Result<()> {
        self.state.start_kill()
    }

    /// Kills the process and waits until it is reaped.
    ///
    /// # Errors
    ///
    /// As for [`start_kill`](Self::start_kill) and [`wait`](Self::wait).
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Waits for the process to exit while reading all of its stdout and
    /// stderr (those not taken), at once so that neither pipe fills up.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait), or a read error of either pipe.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        async fn read_all(pipe: Option<impl AsyncRead + Unpin>) -> io::Result<Vec<u8>> {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut out).await?;
            }
            Ok(out)
        }
        self.stdin = None;
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let (stdout, stderr) =
            futures_lite::future::try_zip(read_all(stdout), read_all(stderr)).await?;
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Child {
    /// Step 3.
    fn drop(&mut self) {
        if matches!(self.state.try_wait(), Ok(Some(_))) {
            return;
        }
        if self.state.kill_on_drop {
            let _ = self.state.start_kill();
        }
        let (Some(mut watch), state) = (self.watch.take(), self.state.clone()) else {
            return;
        };
        if self.shared.lifecycle.is_shutting_down() {
            return; // `ChildState`'s drop hands it to the reaper thread
        }
        // Reaped by a task while the runtime runs; if the task is
        // cancelled, `ChildState`'s drop hands it on.
        self.shared.spawn(async move {
            let _ = poll_fn(|cx| loop {
                if state.try_wait()?.is_some() {
                    return Poll::Ready(Ok::<(), io::Error>(()));
                }
                std::task::ready!(watch.poll_changed(cx))?;
            })
            .await;
        });
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.state.id)
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .finish()
    }
}

macro_rules! pipe_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(imp::Pipe);

        impl $name {
            /// Reads into the buffer's spare capacity; the buffer comes back
            /// with the result (`Ok(0)` at the end of the stream).
            pub async fn read_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
                self.0.read_owned(buf).await
            }

            /// Writes the buffer's initialized bytes once; returns how many
            /// were written, with the buffer.
            pub async fn write_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
                self.0.write_owned(buf).await
            }

            /// Writes all the buffer's initialized bytes.
            pub async fn write_all_owned<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
                self.0.write_all_owned(buf).await
            }
        }

        impl AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().0.poll_read(cx, buf)
            }
        }

        impl AsyncWrite for $name {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().0.poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_flush(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_flush(cx)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

pipe_type!(
    /// The write end of a child's stdin pipe. Dropping it closes the pipe,
    /// so the child reads end-of-file.
    ChildStdin
);
pipe_type!(
    /// The read end of a child's stdout pipe.
    ChildStdout
);
pipe_type!(
    /// The read end of a child's stderr pipe.
    ChildStderr
);
