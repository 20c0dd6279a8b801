//! Files and the file system, on the blocking pool with owned buffers.
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
//! Outside a runtime these functions fail with an error that says so.
//!
//! A dropped `read_owned`/`write_owned` may still complete after the drop
//! and move the file cursor, as with tokio's `File`; the positional
//! `read_at`/`write_at` have no cursor to race on.
//! On Windows, files are opened for overlapped I/O and their positional
//! reads and writes go through the op layer's completion backend (IOCP)
//! instead of the pool; the kernel then holds the buffer and the op is
//! acknowledged by its completion (`crate::op`, step 4).

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::Stream;

use crate::io::{BufResult, IoBuf, IoBufMut};
use crate::op::{self, job_not_run, OpContext};
use crate::runtime::context;
use crate::sys;

/// How many directory entries one blocking job reads.
const DIR_BATCH: usize = 64;

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
    let ops = match current() {
        Ok(s) => s,
        Err(e) => return BufResult(Err(e), buf),
    };
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

/// The largest read [`File::read_at`] tries on the task's thread (64 KiB:
/// a copy of a few microseconds).
const INLINE_READ_MAX: usize = 64 << 10;

/// The read of [`File::read_at`] that skips the pool: where the OS can read
/// without waiting for the disk (`sys::read_file_at_cached`: the page
/// cache on Linux), the read runs here, on the task's thread, at the cost
/// of a `pread` instead of two thread hand-offs. `None`: the data is not
/// cached (or the OS cannot tell), go to the pool.
///
/// Only reads of at most [`INLINE_READ_MAX`] bytes try it: a larger copy
/// would hold the worker (and every task queued behind it) for longer
/// than the pool's hand-off costs. It takes one unit of the task's
/// cooperative budget first (`crate::coop`), as a socket operation does: a
/// loop over cached reads is always ready, and must still let the worker's
/// other tasks run.
async fn read_cached<B: IoBufMut>(
    file: &std::fs::File,
    buf: &mut B,
    pos: u64,
) -> Option<io::Result<usize>> {
    if buf.buf_capacity() - buf.buf_len() > INLINE_READ_MAX {
        return None;
    }
    std::future::poll_fn(crate::coop::poll_proceed).await;
    let res = sys::read_file_at_cached(file, buf.spare_mut(), pos)?;
    if let Ok(n) = res {
        // SAFETY: the OS wrote `n` bytes, at most the spare capacity's
        // length, into the spare capacity.
        unsafe { buf.advance_init(n) };
    }
    Some(res)
}

/// Reads at `pos` into `buf`'s spare capacity; grows its length by the
/// count. Runs on a pool thread.
fn read_into<B: IoBufMut>(file: &std::fs::File, buf: &mut B, pos: u64) -> io::Result<usize> {
    let spare = buf.spare_zeroed();
    if spare.is_empty() {
        return Ok(0);
    }
    let n = sys::read_file_at(file, spare, pos)?;
    // SAFETY: the OS wrote `n` bytes (at most `spare.len()`) into the spare
    // capacity, which `spare_zeroed` had initialized anyway.
    unsafe { buf.advance_init(n) };
    Ok(n)
}

/// An open file. Cheap to share: each op holds its own reference to the
/// handle until the op is over.
///
/// # Examples
///
/// ```
/// use ebbtide::fs::File;
/// use ebbtide::io::BufResult;
///
/// ebbtide::block_on(async {
///     let path = std::env::temp_dir().join(format!("ebbtide-doc-{}", std::process::id()));
///     let file = File::options()
///         .read(true)
///         .write(true)
///         .create(true)
///         .truncate(true)
///         .open(&path)
///         .await?;
///     let BufResult(res, _) = file.write_at(b"hello world".to_vec(), 0).await;
///     res?;
///     let BufResult(n, buf) = file.read_at(Vec::with_capacity(5), 6).await;
///     assert_eq!(n?, 5);
///     assert_eq!(buf, b"world");
///     ebbtide::fs::remove_file(&path).await?;
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct File {
    inner: Arc<std::fs::File>,
    /// The position `read_owned`/`write_owned` use and advance.
    pos: u64,
    /// Opened for the completion backend (overlapped I/O on Windows): reads
    /// and writes go to the kernel as ops instead of the blocking pool.
    overlapped: bool,
}

impl File {
    /// Opens a file for reading.
    ///
    /// # Errors
    ///
    /// The OS error of `open`, or the "outside a runtime" error.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Creates (or truncates) a file for writing.
    ///
    /// # Errors
    ///
    /// As for [`open`](File::open).
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Options to open a file with.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps an open std file.
    pub fn from_std(file: std::fs::File) -> File {
        File {
            inner: Arc::new(file),
            pos: 0,
            overlapped: false,
        }
    }

    /// The std file, if no op still holds it (after every op future
    /// finished or its job returned); otherwise `self` back.
    ///
    /// # Errors
    ///
    /// `self`, while an op (or a clone of this `File`) still holds the handle.
    pub fn try_into_std(self) -> Result<std::fs::File, File> {
        let pos = self.pos;
        let overlapped = self.overlapped;
        Arc::try_unwrap(self.inner).map_err(|inner| File {
            inner,
            pos,
            overlapped,
        })
    }

    /// Reads up to the buffer's spare capacity at `pos` (the file cursor is
    /// not used); the buffer's length grows by the count, `Ok(0)` at EOF or
    /// when the buffer has no spare capacity.
    ///
    /// On Linux a read of at most 64 KiB whose bytes are in the page cache
    /// runs at once on the task's thread (`preadv2` with `RWF_NOWAIT`: a
    /// copy, no thread hand-off) and may then be short, ending where the
    /// cached bytes end; any other read runs on the blocking pool (on
    /// Windows, as overlapped I/O for files opened by this module).
    ///
    /// # Errors
    ///
    /// The OS error, with the buffer.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let buf = if self.overlapped && buf.buf_len() < buf.buf_capacity() {
            let ops = match current() {
                Ok(s) => s,
                Err(e) => return BufResult(Err(e), buf),
            };
            match op::read_file_at(&ops, &self.inner, buf, pos) {
                Ok(op) => return op.await,
                Err(buf) => buf,
            }
        } else {
            buf
        };
        let mut buf = buf;
        if let Some(res) = read_cached(&self.inner, &mut buf, pos).await {
            return BufResult(res, buf);
        }
        let file = self.inner.clone();
        run_buf(buf, move |buf| read_into(&file, buf, pos)).await
    }

    /// Writes the buffer's initialized bytes at `pos` (the file cursor is not
    /// used); returns how many were written, which may be fewer.
    ///
    /// # Errors
    ///
    /// The OS error, with the buffer.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let buf = if self.overlapped {
            let ops = match current() {
                Ok(s) => s,
                Err(e) => return BufResult(Err(e), buf),
            };
            match op::write_file_at(&ops, &self.inner, buf, pos) {
                Ok(op) => return op.await,
                Err(buf) => buf,
            }
        } else {
            buf
        };
        let file = self.inner.clone();
        run_buf(buf, move |buf| {
            sys::write_file_at(&file, buf.as_init(), pos)
        })
        .await
    }

    /// Writes all the buffer's initialized bytes at `pos`, in one job.
    ///
    /// # Errors
    ///
    /// The first OS error (some bytes may have been written), with the buffer.
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        if self.overlapped {
            // One overlapped write per chunk the kernel takes.
            let total = buf.buf_len();
            let mut done = 0;
            let mut slice = buf.slice(..total);
            while done < total {
                let BufResult(res, s) = self.write_at(slice, pos + done as u64).await;
                let buf = s.into_inner();
                match res {
                    Ok(0) => return BufResult(Err(io::ErrorKind::WriteZero.into()), buf),
                    Ok(n) => done += n,
                    Err(e) => return BufResult(Err(e), buf),
                }
                slice = buf.slice(done..total);
            }
            return BufResult(Ok(()), slice.into_inner());
        }
        let file = self.inner.clone();
        run_buf(buf, move |buf| write_all_at(&file, buf.as_init(), pos)).await
    }

    /// Reads at this `File`'s position and advances it by the count.
    ///
    /// # Errors
    ///
    /// As for [`read_at`](File::read_at).
    pub async fn read_owned<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        let res = self.read_at(buf, self.pos).await;
        if let Ok(n) = res.0 {
            self.pos += n as u64;
        }
        res
    }

    /// Writes all the initialized bytes at this `File`'s position and
    /// advances it.
    ///
    /// # Errors
    ///
    /// As for [`write_all_at`](File::write_all_at); the position does not
    /// move on error.
    pub async fn write_all_owned<B: IoBuf>(&mut self, buf: B) -> BufResult<(), B> {
        let len = buf.buf_len() as u64;
        let res = self.write_all_at(buf, self.pos).await;
        if res.0.is_ok() {
            self.pos += len;
        }
        res
    }

    /// The position `read_owned`/`write_all_owned` use.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Moves the position `read_owned`/`write_all_owned` use.
    pub fn set_position(&mut self, pos: u64) {
        self.pos = pos;
    }

    /// Flushes data and metadata to the device (`fsync`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn sync_all(&self) -> io::Result<()> {
        let file = self.inner.clone();
        run(move || file.sync_all()).await
    }

    /// Flushes data to the device (`fdatasync`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn sync_data(&self) -> io::Result<()> {
        let file = self.inner.clone();
        run(move || file.sync_data()).await
    }

    /// Truncates or extends the file to `len` bytes.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        let file = self.inner.clone();
        run(move || file.set_len(len)).await
    }

    /// The file's metadata.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        let file = self.inner.clone();
        run(move || file.metadata()).await
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("inner", &self.inner)
            .field("pos", &self.pos)
            .finish()
    }
}

fn write_all_at(file: &std::fs::File, mut bytes: &[u8], mut pos: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        match sys::write_file_at(file, bytes, pos) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Options for opening a file, as `std::fs::OpenOptions`.
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl OpenOptions {
    /// No access; set some with the methods below.
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }
    /// Read access.
    pub fn read(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.read(yes);
        self
    }
    /// Write access.
    pub fn write(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.write(yes);
        self
    }
    /// Append mode.
    pub fn append(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.append(yes);
        self
    }
    /// Truncate on open.
    pub fn truncate(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.truncate(yes);
        self
    }
    /// Create if missing.
    pub fn create(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.create(yes);
        self
    }
    /// Create, failing if it exists.
    pub fn create_new(&mut self, yes: bool) -> &mut OpenOptions {
        self.0.create_new(yes);
        self
    }
    /// Opens `path` with these options.
    ///
    /// # Errors
    ///
    /// The OS error of `open`, or the "outside a runtime" error.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let mut opts = self.0.clone();
        let overlapped = sys::prepare_file_options(&mut opts);
        let path = path.as_ref().to_owned();
        let mut file = run(move || opts.open(path)).await.map(File::from_std)?;
        file.overlapped = overlapped;
        Ok(file)
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
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::read(path)).await
}

/// Reads a whole file as UTF-8.
///
/// # Errors
///
/// The OS error, or `InvalidData` if it is not UTF-8.
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
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::metadata(path)).await
}

/// Removes a file.
///
/// # Errors
///
/// The OS error of `unlink`.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::remove_file(path)).await
}

/// Creates a directory.
///
/// # Errors
///
/// The OS error of `mkdir`.
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::create_dir(path)).await
}

/// Creates a directory and any missing parents.
///
/// # Errors
///
/// The OS error of `mkdir`.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::create_dir_all(path)).await
}

/// Removes an empty directory.
///
/// # Errors
///
/// The OS error of `rmdir`.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::remove_dir(path)).await
}

/// Removes a directory and everything in it.
///
/// # Errors
///
/// The first OS error.
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    run(move || std::fs::remove_dir_all(path)).await
}

/// Renames `from` to `to`, replacing `to` if it exists.
///
/// # Errors
///
/// The OS error of `rename`.
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    run(move || std::fs::rename(from, to)).await
}

/// The entries of a directory, as a [`Stream`], read on the blocking pool
/// in batches of 64.
///
/// # Errors
///
/// The OS error of `opendir`; errors for single entries come through the
/// stream.
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    let dir = run(move || std::fs::read_dir(path)).await?;
    Ok(ReadDir {
        state: DirState::Idle(Some(Box::new(dir))),
        batch: std::collections::VecDeque::new(),
    })
}

/// An entry of a directory, from [`read_dir`].
#[derive(Debug)]
pub struct DirEntry(std::fs::DirEntry);

impl DirEntry {
    /// The entry's full path.
    pub fn path(&self) -> PathBuf {
        self.0.path()
    }
    /// The entry's name within its directory.
    pub fn file_name(&self) -> OsString {
        self.0.file_name()
    }
    /// The entry's metadata (not following a symlink at the end).
    ///
    /// # Errors
    ///
    /// The OS error of `lstat`.
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        let path = self.0.path();
        run(move || std::fs::symlink_metadata(path)).await
    }
    /// The entry's type (usually known without a syscall).
    ///
    /// # Errors
    ///
    /// The OS error, when a syscall was needed.
    pub fn file_type(&self) -> io::Result<std::fs::FileType> {
        self.0.file_type()
    }
}

type Batch = (
    Option<Box<std::fs::ReadDir>>,
    std::collections::VecDeque<io::Result<DirEntry>>,
);

enum DirState {
    /// The std iterator, or `None` when it is exhausted.
    Idle(Option<Box<std::fs::ReadDir>>),
    /// A batch being read on the pool.
    Reading(Pin<Box<dyn std::future::Future<Output = io::Result<Batch>> + Send>>),
}

/// The stream of a directory's entries, from [`read_dir`].
pub struct ReadDir {
    state: DirState,
    batch: std::collections::VecDeque<io::Result<DirEntry>>,
}

impl Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(entry) = self.batch.pop_front() {
                return Poll::Ready(Some(entry));
            }
            match &mut self.state {
                DirState::Idle(None) => return Poll::Ready(None),
                DirState::Idle(dir) => {
                    let mut dir = dir.take().expect("matched Some");
                    self.state = DirState::Reading(Box::pin(run(move || {
                        let batch = dir
                            .by_ref()
                            .take(DIR_BATCH)
                            .map(|e| e.map(DirEntry))
                            .collect::<std::collections::VecDeque<_>>();
                        let more = batch.len() == DIR_BATCH;
                        Ok((more.then_some(dir), batch))
                    })));
                }
                DirState::Reading(fut) => {
                    let res = std::task::ready!(fut.as_mut().poll(cx));
                    match res {
                        Ok((dir, batch)) => {
                            self.state = DirState::Idle(dir);
                            self.batch = batch;
                        }
                        Err(e) => {
                            self.state = DirState::Idle(None);
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
            }
        }
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("buffered", &self.batch.len())
            .finish_non_exhaustive()
    }
}
