//! Directory listing: `read_dir` reads entries on the blocking pool in
//! batches and hands them out as a stream.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::Stream;

use super::run;

/// How many directory entries one blocking job reads.
const DIR_BATCH: usize = 64;

/// The entries of a directory, as a [`Stream`], read on the blocking pool
/// in batches of 64.
///
/// # Errors
///
/// The OS error of `opendir`; errors for single entries come through the
/// stream.
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
///
/// ebbtide::block_on(async {
///     let mut entries = ebbtide::fs::read_dir("src").await?;
///     let mut names = Vec::new();
///     while let Some(entry) = entries.next().await {
///         names.push(entry?.file_name());
///     }
///     assert!(names.iter().any(|n| n == "lib.rs"));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    let dir = run(move || std::fs::read_dir(path)).await?;
    Ok(ReadDir {
        state: DirState::Idle(Some(Box::new(dir))),
        batch: VecDeque::new(),
    })
}

/// An entry of a directory, from [`read_dir`].
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
///
/// ebbtide::block_on(async {
///     let mut entries = ebbtide::fs::read_dir("src").await?;
///     let entry = entries.next().await.expect("src is not empty")?;
///     assert!(entry.path().starts_with("src"));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct DirEntry(std::fs::DirEntry);

impl DirEntry {
    /// The entry's full path.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    ///
    /// ebbtide::block_on(async {
    ///     let mut entries = ebbtide::fs::read_dir("src").await?;
    ///     while let Some(entry) = entries.next().await {
    ///         let entry = entry?;
    ///         assert_eq!(entry.path(), std::path::Path::new("src").join(entry.file_name()));
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn path(&self) -> PathBuf {
        self.0.path()
    }

    /// The entry's name within its directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    ///
    /// ebbtide::block_on(async {
    ///     let names: Vec<_> = ebbtide::fs::read_dir("src")
    ///         .await?
    ///         .map(|e| e.map(|e| e.file_name()))
    ///         .try_collect()
    ///         .await?;
    ///     assert!(names.iter().any(|n| n == "fs"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file_name(&self) -> OsString {
        self.0.file_name()
    }

    /// The entry's metadata (not following a symlink at the end).
    ///
    /// # Errors
    ///
    /// The OS error of `lstat`.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    ///
    /// ebbtide::block_on(async {
    ///     let mut entries = ebbtide::fs::read_dir("src").await?;
    ///     while let Some(entry) = entries.next().await {
    ///         let entry = entry?;
    ///         let meta = entry.metadata().await?;
    ///         assert_eq!(meta.is_dir(), entry.path().is_dir());
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        let path = self.0.path();
        run(move || std::fs::symlink_metadata(path)).await
    }

    /// The entry's type (usually known without a syscall).
    ///
    /// # Errors
    ///
    /// The OS error, when a syscall was needed.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    ///
    /// ebbtide::block_on(async {
    ///     let mut entries = ebbtide::fs::read_dir("src").await?;
    ///     let mut dirs = 0;
    ///     while let Some(entry) = entries.next().await {
    ///         dirs += usize::from(entry?.file_type()?.is_dir());
    ///     }
    ///     assert!(dirs > 0, "src has subdirectories");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file_type(&self) -> io::Result<std::fs::FileType> {
        self.0.file_type()
    }
}

/// What a batch job hands back: the iterator (`None` once exhausted) and
/// the entries it read.
type Batch = (
    Option<Box<std::fs::ReadDir>>,
    VecDeque<io::Result<DirEntry>>,
);

enum DirState {
    /// The std iterator, or `None` when it is exhausted.
    Idle(Option<Box<std::fs::ReadDir>>),
    /// A batch being read on the pool.
    Reading(Pin<Box<dyn Future<Output = io::Result<Batch>> + Send>>),
}

/// The stream of a directory's entries, from [`read_dir`].
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
///
/// ebbtide::block_on(async {
///     let entries: ebbtide::fs::ReadDir = ebbtide::fs::read_dir("src").await?;
///     assert!(entries.count().await > 0);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReadDir {
    state: DirState,
    /// Entries read and not yet handed out.
    batch: VecDeque<io::Result<DirEntry>>,
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
                            .collect::<VecDeque<_>>();
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
