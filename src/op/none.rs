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
    buf: B,
    _pos: u64,
) -> Result<Op<BufResult<usize, B>>, B> {
    Err(buf)
}

/// As [`read_file_at`].
pub(crate) fn write_file_at<B: IoBuf>(
    _ops: &OpContext,
    _file: &Arc<File>,
    buf: B,
    _pos: u64,
) -> Result<Op<BufResult<usize, B>>, B> {
    Err(buf)
}

#[cfg(test)]
mod tests {
    use super::super::table::{retained_forever, Cancel, Erased, OpTable};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Slot-owned state that counts its drops and cancels, and answers
    /// each cancel with its third field.
    struct Counted(Arc<AtomicUsize>, Arc<AtomicUsize>, Cancel);

    impl OwnedState for Counted {
        fn cancel(&self) -> Cancel {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.2
        }
        fn finish(self: Box<Self>, _: std::io::Result<usize>) -> Erased {
            Box::new(())
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn slots_owning_os_state_are_leaked_not_freed_when_the_table_drops() {
        let (dropped, cancels): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let table = OpTable::new();
        let key = table.submit_owned(Box::new(Counted(
            dropped.clone(),
            cancels.clone(),
            Cancel::Requested,
        )));
        table.cancel(key);
        table.cancel(key); // a second cancel asks the OS nothing more
        assert_eq!(cancels.load(Ordering::SeqCst), 1);
        let before = retained_forever();
        drop(table);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        assert_eq!(retained_forever(), before + 1);
    }

    #[test]
    fn an_acknowledged_cancel_drops_the_owned_state_once() {
        let (dropped, cancels): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let table = OpTable::new();
        let key = table.submit_owned(Box::new(Counted(
            dropped.clone(),
            cancels,
            Cancel::Requested,
        )));
        table.cancel(key);
        let owned = table.take_owned(key).expect("the slot owns it");
        table.complete(key, owned.finish(Ok(0))); // the backend's ack
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_cancel_that_is_its_own_acknowledgement_frees_the_slot_at_once() {
        let (dropped, cancels): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let table = OpTable::new();
        let key = table.submit_owned(Box::new(Counted(
            dropped.clone(),
            cancels.clone(),
            Cancel::Acknowledged,
        )));
        table.cancel(key);
        assert_eq!(table.len(), 0, "freed by the cancel");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert_eq!(table.cancelled(), 1);
        table.cancel(key); // the slot is gone: nothing more
        assert_eq!(cancels.load(Ordering::SeqCst), 1);
        table.complete(key, Box::new(())); // a late completion: stale
        assert_eq!(table.stale_completions(), 1);
    }
}
