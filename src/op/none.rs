//! No completion backend on this platform: every op runs on the readiness
//! reactor (sockets) or the blocking pool (files), and no slot owns OS
//! state. The items a completion backend provides exist here so that
//! portable code compiles unchanged: they are never reached (a file is never
//! opened for the completion backend here: `sys::prepare_file_options`
//! returns `false`).

use std::fs::File;
use std::sync::Arc;

use super::table::OwnedState;
use super::{JobQueue, Op, OpTable};
use crate::io::{BufResult, IoBuf, IoBufMut};
use crate::reactor::{Completions, Reactor};

/// What a slot owns: nothing a backend made here; tests use their own.
pub(crate) type Owned = Box<dyn OwnedState>;

/// What submitting an op needs: the table its slot goes in and the pool
/// that runs blocking jobs; nothing else here: no completion backend. One per runtime; I/O objects keep a
/// clone.
#[derive(Clone)]
pub(crate) struct OpContext {
    pub(crate) table: Arc<OpTable>,
    pub(crate) jobs: Arc<dyn JobQueue>,
}

impl OpContext {
    pub(crate) fn new(
        table: Arc<OpTable>,
        jobs: Arc<dyn JobQueue>,
        _reactor: &Arc<Reactor>,
    ) -> Self {
        OpContext { table, jobs }
    }

    /// Whether every file's positional ops go through this backend (the
    /// ring); on Windows only files opened for overlapped I/O do, which
    /// each file knows itself.
    pub(crate) fn completes_files(&self) -> bool {
        false
    }

    /// No ring here: stream sockets always use readiness.
    pub(crate) fn with_ring_sockets(self, _on: bool) -> Self {
        self
    }
}

/// No completion events to hand the reactor.
pub(crate) fn completion_handler(_ops: &Arc<OpTable>) -> Option<Box<dyn Completions>> {
    None
}

/// No completion backend for files: the buffer goes back to the caller,
/// which uses the blocking pool.
pub(crate) fn read_file_at<B: IoBufMut>(
    _ops: &OpContext,
    _file: &Arc<File>,
    _overlapped: bool,
    buf: B,
    _pos: u64,
) -> Result<Op<BufResult<usize, B>>, B> {
    Err(buf)
}

/// As [`read_file_at`].
pub(crate) fn write_file_at<B: IoBuf>(
    _ops: &OpContext,
    _file: &Arc<File>,
    _overlapped: bool,
    buf: B,
    _pos: u64,
) -> Result<Op<BufResult<usize, B>>, B> {
    Err(buf)
}

/// No completion backend for `fsync`: the pool runs it.
pub(crate) fn sync_file(
    _ops: &OpContext,
    _file: &Arc<File>,
    _data_only: bool,
) -> Option<Op<std::io::Result<()>>> {
    None
}

/// No completion backend for opening files: the pool opens them.
pub(crate) fn open_file(
    _ops: &OpContext,
    _path: &std::path::Path,
    _access: &super::OpenAccess,
) -> Option<Op<std::io::Result<File>>> {
    None
}

// No socket ops: sockets use readiness.
#[path = "no_socket_ops.rs"]
mod socket_ops;
pub(crate) use socket_ops::{accept, connect, recv, recv_from, send, send_to};
