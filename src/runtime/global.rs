//! The global runtime behind [`crate::spawn`] and [`crate::block_on`] when no
//! runtime is current: a lazily built multi-threaded [`Runtime`], a thin
//! layer over the core (which never refers to it).

use std::sync::{Arc, OnceLock};

use super::{Runtime, Shared};

static GLOBAL: OnceLock<Runtime> = OnceLock::new();

/// The global runtime, started on first use.
///
/// # Panics
///
/// If it cannot be started (no poller, no threads): there is no runtime to
/// report the error through.
pub(crate) fn global() -> &'static Arc<Shared> {
    let rt = GLOBAL.get_or_init(|| {
        Runtime::builder()
            .thread_name("ebbtide-global")
            .build()
            .unwrap_or_else(|e| panic!("ebbtide: cannot start the global runtime: {e}"))
    });
    &rt.handle().shared
}
