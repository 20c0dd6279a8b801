//! `task::Builder`: spawning a task with a name.
//!
//! A name costs one word in the task's header (a shared `Arc<String>`; an
//! unnamed task stores `None`) and is read only by the reports: the
//! shutdown report's spawn sites and stall reports.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::executor::{JoinHandle, Site};
use crate::runtime::{context, Handle, SpawnError};

/// Spawns tasks with a name, which shows in stall reports and in the
/// spawn sites of a [`ShutdownReport`](crate::runtime::ShutdownReport).
///
/// Each spawn method is `#[track_caller]`: the task's site is the line
/// that calls it. One builder may spawn many tasks; they share the name.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = ebbtide::runtime::Runtime::new()?;
/// let acceptor = rt.block_on(async {
///     ebbtide::task::Builder::new()
///         .name("acceptor")
///         .spawn(std::future::pending::<()>())
/// });
/// assert!(acceptor.is_ok());
/// let report = rt.shutdown(Duration::ZERO);
/// assert_eq!(report.cancelled_sites[0].name.as_deref(), Some("acceptor"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Builder {
    name: Option<Arc<String>>,
}

impl Builder {
    /// A builder for unnamed tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = ebbtide::task::Builder::new().spawn(async { 1 }).unwrap();
    /// assert_eq!(ebbtide::block_on(h).unwrap(), 1);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the tasks this builder spawns.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = ebbtide::task::Builder::new().name("worker");
    /// assert_eq!(b.get_name(), Some("worker"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(Arc::new(name.into()));
        self
    }

    /// The name set by [`name`](Self::name), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ebbtide::task::Builder::new().get_name(), None);
    /// ```
    pub fn get_name(&self) -> Option<&str> {
        self.name.as_deref().map(String::as_str)
    }

    #[track_caller]
    fn site(&self) -> Site {
        Site {
            name: self.name.clone(),
            ..Site::caller()
        }
    }

    /// Spawns a `Send` task on the current runtime (the global one outside
    /// any), as [`crate::spawn`] does.
    ///
    /// # Errors
    ///
    /// [`SpawnError::ShuttingDown`] if that runtime is shutting down (as
    /// [`Handle::try_spawn`]).
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let h = ebbtide::task::Builder::new().name("answer").spawn(async { 42 }).unwrap();
    ///     assert_eq!(h.await.unwrap(), 42);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let site = self.site();
        let shared = context::with_current(|s| s.cloned())
            .unwrap_or_else(|| crate::runtime::global().clone());
        if shared.lifecycle.is_shutting_down() {
            return Err(SpawnError::ShuttingDown);
        }
        Ok(shared.spawn_at(future, site))
    }

    /// Spawns a `Send` task on `handle`'s runtime.
    ///
    /// # Errors
    ///
    /// [`SpawnError::ShuttingDown`] if it is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// let h = ebbtide::task::Builder::new()
    ///     .name("on a handle")
    ///     .spawn_on(async { 7 }, rt.handle())
    ///     .unwrap();
    /// assert_eq!(rt.block_on(h).unwrap(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(
        &self,
        future: F,
        handle: &Handle,
    ) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let site = self.site();
        if handle.is_shutting_down() {
            return Err(SpawnError::ShuttingDown);
        }
        Ok(handle.shared.spawn_at(future, site))
    }

    /// Spawns a `!Send` task on this thread, as [`crate::spawn_local`] does.
    ///
    /// # Errors
    ///
    /// [`SpawnError::ShuttingDown`] if this thread's runtime is shutting
    /// down.
    ///
    /// # Panics
    ///
    /// On a thread that runs no runtime, as [`crate::spawn_local`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// ebbtide::block_on(async {
    ///     let h = ebbtide::task::Builder::new()
    ///         .name("local")
    ///         .spawn_local(async { Rc::new(3) })
    ///         .unwrap();
    ///     assert_eq!(*h.await.unwrap(), 3);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let site = self.site();
        let shutting_down =
            context::with_current(|s| s.is_some_and(|s| s.lifecycle.is_shutting_down()));
        if shutting_down {
            return Err(SpawnError::ShuttingDown);
        }
        context::with_local(|local| match local {
            Some(local) => Ok(local.spawn(future, site)),
            None => panic!(
                "ebbtide::task::Builder::spawn_local called on a thread that runs no runtime: \
                 call it inside `block_on` or from a task, or use `spawn` for a Send future"
            ),
        })
    }

    /// Runs `f` on the blocking pool of the current runtime (the global
    /// one outside any), as [`crate::spawn_blocking`] does.
    ///
    /// # Errors
    ///
    /// [`SpawnError::ShuttingDown`] if that runtime is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let h = ebbtide::task::Builder::new()
    ///         .name("hash")
    ///         .spawn_blocking(|| 6 * 7)
    ///         .unwrap();
    ///     assert_eq!(h.await.unwrap(), 42);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> Result<JoinHandle<R>, SpawnError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let site = self.site();
        let shared = context::with_current(|s| s.cloned())
            .unwrap_or_else(|| crate::runtime::global().clone());
        if shared.lifecycle.is_shutting_down() {
            return Err(SpawnError::ShuttingDown);
        }
        Ok(shared.spawn_blocking_at(f, site))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.get_name())
            .finish()
    }
}
