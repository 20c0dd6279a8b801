//! Files and the file system, on the blocking pool with owned buffers.
//!
//! # Operations
//!
//! Every call here runs the blocking syscall on the runtime's blocking pool
//! as an op (`crate::op`):
//!
//! 1. The call moves its state (the buffer, a clone of the file handle, the
//!    path) into a job and submits the job to the pool; the future keeps only
//!    the op's key.
//! 2. The job runs the syscall and hands back the output, buffer included;
//!    the future's next poll returns it.
//! 3. Dropping the future before that does not stop the syscall (a blocking
//!    syscall cannot be interrupted): the op is marked cancelled, and the
//!    buffer is dropped on the pool thread when the job returns, never
//!    before. The file handle stays open until then too, even if the
//!    [`File`] was dropped.
//! 4. If the runtime shuts down before the job ran, the op completes with
//!    an error and the buffer comes back with it.
//!
//! Where the runtime has a completion backend for files, ops go there
//! instead of the pool; the kernel then holds the buffer and the op is
//! acknowledged by its completion (`crate::op`, step 4):
//!
//! - On Windows, files are opened for overlapped I/O and their positional
//!   reads and writes go through IOCP.
//! - On Linux's io_uring backend ([`IoBackend`](crate::runtime::IoBackend)),
//!   `File::open` / `create` (and [`OpenOptions::open`]), positional reads
//!   the page cache cannot serve inline, writes, `sync_all` and `sync_data`
//!   go through the ring. The path functions (`metadata`, `read_dir`,
//!   `remove_file`, ...) stay on the pool.
//!
//! On Linux a positional read of at most 64 KiB first tries the page cache
//! on the task's thread (`preadv2` with `RWF_NOWAIT`: no op at all when it
//! succeeds), on either backend.
//!
//! Outside a runtime these functions fail with an error that says so.
//!
//! # A `File` as a stream
//!
//! [`File`] implements futures-io's `AsyncRead`, `AsyncWrite` and
//! `AsyncSeek` with one buffer of its own, as tokio's `File` does. The
//! position is kept by the `File` (a file opened for overlapped I/O has no
//! kernel cursor), and every read and write is positional, so the stream
//! works the same on every platform:
//!
//! 1. At most one op of a `File` is in flight, and the `File` owns it, not
//!    the future of the call that started it; a stream read's or write's
//!    op owns the `File`'s buffer until it completes (`crate::op`'s rules:
//!    a cancelled op's buffer is freed only on the backend's
//!    acknowledgement). Every method first waits for that op and
//!    applies its result, so ops happen in the order they were started.
//! 2. A read fills the buffer (at least 64 KiB, at most the
//!    [`max_buf_size`](File::set_max_buf_size)) at the position and hands
//!    out bytes from it; the position moves as bytes are handed out.
//! 3. A write copies the bytes into the buffer, starts the op and returns
//!    `Ready(n)` at once: the bytes are accepted, the position moves past
//!    them, and `Pending` never takes any. The op's error, if any, is
//!    returned by the next operation of the `File` (`poll_flush` is the
//!    one to call); `poll_flush` and `poll_close` wait for the write.
//!    Flushing does not `fsync` (see [`File::sync_all`]).
//! 4. A seek waits for the op in flight, then drops the bytes read ahead:
//!    `SeekFrom::Current` counts from the position of the bytes handed out,
//!    not from where the read-ahead stopped; `SeekFrom::End` reads the
//!    length with one more op.
//!
//! Cancel safety: dropping a read, write, seek or flush future (or any
//! owned-buffer call of a `File`) never loses or duplicates a byte and never
//! leaves the position between two states:
//!
//! - a dropped read's op stays in the `File`; the next operation takes its
//!   result first: its bytes are handed out by the next read, or dropped by
//!   a seek or write, which count from the bytes handed out (so does
//!   `position()`, which never counts bytes not handed out);
//! - a write's bytes were accepted when it returned `Ready`; they are
//!   written before the next operation starts, even if the caller went on
//!   to drop its future;
//! - a dropped [`read_owned`](File::read_owned) leaves the position where
//!   it was (the bytes it read went with its buffer); a dropped
//!   [`write_all_owned`](File::write_all_owned) or
//!   [`set_len`](File::set_len) still completes before the next operation
//!   starts, and its error is returned by that operation (a failed
//!   `write_all_owned` moves the position back to where it started);
//! - dropping the `File` itself with a write (or another call that
//!   changes the file) in flight hands that op to a task of the current
//!   runtime, which finishes it; outside a runtime the op is dropped
//!   (a blocking-pool job still runs; an overlapped write may be
//!   cancelled); a read in flight is dropped (`crate::op`, step 3).
//!
//! The positional calls ([`File::read_at`], [`File::write_at`],
//! [`File::write_all_at`]) neither use nor wait for the stream: they may
//! run at the same time as its op.

mod dir;
mod file;
mod stream;

use std::io;
use std::path::Path;

use crate::io::{BufResult, IoBuf};
use crate::op::{self, job_not_run, OpContext};
use crate::runtime::context;
use crate::sys;

pub use dir::{read_dir, DirEntry, ReadDir};
pub use file::File;

/// The current runtime's op context, or the error that says none is.
fn current() -> io::Result<OpContext> {
    context::current("ebbtide::fs").map(|shared| shared.ops.clone())
}

/// Runs `f` on the blocking pool as an op.
async fn run<T, F>(f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    current()?
        .blocking((), move |()| f(), |()| Err(job_not_run()))
        .await
}

/// Runs `f(buf)` on the blocking pool as an op that owns `buf`.
async fn run_buf<B, T, F>(buf: B, f: F) -> BufResult<T, B>
where
    B: Send + 'static,
    T: Send + 'static,
    F: FnOnce(&mut B) -> io::Result<T> + Send + 'static,
{
    match current() {
        Ok(ops) => run_buf_on(&ops, buf, f).await,
        Err(e) => BufResult(Err(e), buf),
    }
}

/// [`run_buf`] with the op context already at hand.
async fn run_buf_on<B, T, F>(ops: &OpContext, buf: B, f: F) -> BufResult<T, B>
where
    B: Send + 'static,
    T: Send + 'static,
    F: FnOnce(&mut B) -> io::Result<T> + Send + 'static,
{
    ops.blocking(
        buf,
        move |mut buf| {
            let res = f(&mut buf);
            BufResult(res, buf)
        },
        |buf| BufResult(Err(job_not_run()), buf),
    )
    .await
}

/// Options for opening a file, as `std::fs::OpenOptions`.
///
/// # Examples
///
/// ```
/// use ebbtide::fs::OpenOptions;
///
/// ebbtide::block_on(async {
///     let path = std::env::temp_dir().join(format!("ebbtide-doc-options-{}", std::process::id()));
///     let file = OpenOptions::new().write(true).create_new(true).open(&path).await?;
///     drop(file);
///     // A second `create_new` fails: the file exists.
///     let again = OpenOptions::new().write(true).create_new(true).open(&path).await;
///     assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
///     ebbtide::fs::remove_file(&path).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions, op::OpenAccess);

impl OpenOptions {
    /// No access; set some with the methods below.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut opts = ebbtide::fs::OpenOptions::new();
    /// opts.read(true);
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new(), op::OpenAccess::default())
    }

    /// Read access.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let file = ebbtide::fs::OpenOptions::new().read(true).open("Cargo.toml").await?;
    ///     # drop(file);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.read(yes);
        self.1.read = yes;
        self
    }

    /// Write access.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-write-{}", std::process::id()));
    ///     let file = ebbtide::fs::OpenOptions::new().write(true).create(true).open(&path).await?;
    ///     file.write_all_at(b"hi".to_vec(), 0).await.0?;
    ///     assert_eq!(std::fs::read(&path)?, b"hi");
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.write(yes);
        self.1.write = yes;
        self
    }

    /// Append mode. Every write of a [`File`] is positional, so the OS's
    /// rule for positional writes to an append-mode file applies: Linux puts
    /// them at the end of the file, some other systems at the position.
    /// The `File`'s position does not follow the end of the file.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncWriteExt;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-append-{}", std::process::id()));
    ///     std::fs::write(&path, b"log: ")?;
    ///     let mut file = ebbtide::fs::OpenOptions::new().append(true).open(&path).await?;
    ///     file.write_all(b"one line").await?;
    ///     file.close().await?;
    ///     assert!(std::fs::read(&path)?.ends_with(b"one line"));
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn append(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.append(yes);
        self.1.append = yes;
        self
    }

    /// Truncate on open.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-trunc-{}", std::process::id()));
    ///     std::fs::write(&path, b"old contents")?;
    ///     let file = ebbtide::fs::OpenOptions::new().write(true).truncate(true).open(&path).await?;
    ///     assert_eq!(std::fs::metadata(&path)?.len(), 0);
    ///     # drop(file);
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn truncate(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.truncate(yes);
        self.1.truncate = yes;
        self
    }

    /// Create if missing.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-create-{}", std::process::id()));
    ///     let file = ebbtide::fs::OpenOptions::new().write(true).create(true).open(&path).await?;
    ///     assert!(path.exists());
    ///     # drop(file);
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.create(yes);
        self.1.create = yes;
        self
    }

    /// Create, failing if it exists.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let err = ebbtide::fs::OpenOptions::new()
    ///         .write(true)
    ///         .create_new(true)
    ///         .open("Cargo.toml")
    ///         .await
    ///         .unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    /// });
    /// ```
    pub fn create_new(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.create_new(yes);
        self.1.create_new = yes;
        self
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    ///
    /// The OS error of `open`, or the "outside a runtime" error.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let mut file = ebbtide::fs::OpenOptions::new().read(true).open("Cargo.toml").await?;
    ///     assert!(file.metadata().await?.len() > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let mut opts = self.0.clone();
        let overlapped = sys::prepare_file_options(&mut opts);
        if let Some(op) = op::open_file(&current()?, path.as_ref(), &self.1) {
            return Ok(File::from_parts(op.await?, overlapped));
        }
        let path = path.as_ref().to_owned();
        let file = run(move || opts.open(path)).await?;
        Ok(File::from_parts(file, overlapped))
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

/// Reads a whole file.
///
/// # Errors
///
/// The OS error of `open` or `read`.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let manifest = ebbtide::fs::read("Cargo.toml").await?;
///     assert!(manifest.starts_with(b"[package]"));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::read(path)).await
}

/// Reads a whole file as UTF-8.
///
/// # Errors
///
/// The OS error, or `InvalidData` if it is not UTF-8.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let manifest = ebbtide::fs::read_to_string("Cargo.toml").await?;
///     assert!(manifest.contains("name = \"ebbtide\""));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::read_to_string(path)).await
}

/// Writes `contents` as the whole file, creating or truncating it. The
/// buffer is owned by the job, so dropping the future early never frees it
/// under a running write.
///
/// # Errors
///
/// The OS error of `open` or `write`.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let path = std::env::temp_dir().join(format!("ebbtide-doc-fswrite-{}", std::process::id()));
///     ebbtide::fs::write(&path, "contents").await?;
///     assert_eq!(ebbtide::fs::read(&path).await?, b"contents");
///     ebbtide::fs::remove_file(&path).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn write<B: IoBuf>(path: impl AsRef<Path>, contents: B) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run_buf(contents, move |c| std::fs::write(path, c.as_init()))
        .await
        .0
}

/// Metadata of `path`, following symlinks.
///
/// # Errors
///
/// The OS error of `stat`.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let meta = ebbtide::fs::metadata("src").await?;
///     assert!(meta.is_dir());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::metadata(path)).await
}

/// Removes a file.
///
/// # Errors
///
/// The OS error of `unlink`.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let path = std::env::temp_dir().join(format!("ebbtide-doc-rm-{}", std::process::id()));
///     std::fs::write(&path, b"x")?;
///     ebbtide::fs::remove_file(&path).await?;
///     assert!(!path.exists());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::remove_file(path)).await
}

/// Creates a directory.
///
/// # Errors
///
/// The OS error of `mkdir`.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let dir = std::env::temp_dir().join(format!("ebbtide-doc-mkdir-{}", std::process::id()));
///     ebbtide::fs::create_dir(&dir).await?;
///     assert!(dir.is_dir());
///     ebbtide::fs::remove_dir(&dir).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::create_dir(path)).await
}

/// Creates a directory and any missing parents.
///
/// # Errors
///
/// The OS error of `mkdir`.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let root = std::env::temp_dir().join(format!("ebbtide-doc-mkdirs-{}", std::process::id()));
///     ebbtide::fs::create_dir_all(root.join("a/b")).await?;
///     assert!(root.join("a/b").is_dir());
///     ebbtide::fs::remove_dir_all(&root).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::create_dir_all(path)).await
}

/// Removes an empty directory.
///
/// # Errors
///
/// The OS error of `rmdir`.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let dir = std::env::temp_dir().join(format!("ebbtide-doc-rmdir-{}", std::process::id()));
///     std::fs::create_dir(&dir)?;
///     ebbtide::fs::remove_dir(&dir).await?;
///     assert!(!dir.exists());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::remove_dir(path)).await
}

/// Removes a directory and everything in it.
///
/// # Errors
///
/// The first OS error.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let root = std::env::temp_dir().join(format!("ebbtide-doc-rmall-{}", std::process::id()));
///     std::fs::create_dir_all(root.join("sub"))?;
///     std::fs::write(root.join("sub/f"), b"x")?;
///     ebbtide::fs::remove_dir_all(&root).await?;
///     assert!(!root.exists());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::remove_dir_all(path)).await
}

/// Renames `from` to `to`, replacing `to` if it exists.
///
/// # Errors
///
/// The OS error of `rename`.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let dir = std::env::temp_dir();
///     let (from, to) = (
///         dir.join(format!("ebbtide-doc-from-{}", std::process::id())),
///         dir.join(format!("ebbtide-doc-to-{}", std::process::id())),
///     );
///     std::fs::write(&from, b"moved")?;
///     ebbtide::fs::rename(&from, &to).await?;
///     assert_eq!(std::fs::read(&to)?, b"moved");
///     ebbtide::fs::remove_file(&to).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    run(move || std::fs::rename(from, to)).await
}
