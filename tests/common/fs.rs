//! File helpers shared by the `ebbtide::fs` tests: a temporary directory
//! removed on drop, and files whose pages are not in the page cache.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ebbtide-fs-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A file named `name` holding `contents`.
    pub(crate) fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// A file whose pages are not in the page cache: its reads go to the
    /// blocking pool, where a test can hold them in flight (a read of cached
    /// bytes completes at once on the task's thread on Linux; see
    /// `fs::File::read_at`).
    pub(crate) fn uncached_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.file(name, contents);
        evict_from_page_cache(&path);
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the file's dirty pages back and drops its clean ones from the
/// page cache (`posix_fadvise(DONTNEED)`), so its next reads miss it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn evict_from_page_cache(path: &Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: a valid descriptor; the call only advises the kernel.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
}

/// Elsewhere every file read goes to the blocking pool (or IOCP) anyway.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn evict_from_page_cache(_path: &Path) {}
