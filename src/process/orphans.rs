//! The process-wide reaper of last resort (step 3 of the module doc): one
//! thread, started when the first orphan arrives, polls its orphans'
//! `try_wait` every few milliseconds and exits when none is left. An orphan
//! is a child nobody holds any more that has not been reaped (its runtime
//! is gone or shutting down); waiting for it here is what keeps it from
//! becoming a zombie.

use std::sync::Mutex;
use std::time::Duration;

struct Orphans {
    children: Vec<super::imp::Proc>,
    /// Whether the reaper thread runs.
    reaping: bool,
}

static ORPHANS: Mutex<Orphans> = Mutex::new(Orphans {
    children: Vec::new(),
    reaping: false,
});

/// How often the reaper looks at its orphans.
const POLL: Duration = Duration::from_millis(5);

/// Takes `child` and reaps it once it exits.
pub(super) fn adopt(child: super::imp::Proc) {
    let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    orphans.children.push(child);
    if orphans.reaping {
        return;
    }
    orphans.reaping = true;
    drop(orphans);
    let started = std::thread::Builder::new()
        .name("ebbtide-reaper".into())
        .spawn(reap);
    if started.is_err() {
        // No thread: the next orphan tries again; these wait till then.
        ORPHANS.lock().unwrap_or_else(|e| e.into_inner()).reaping = false;
    }
}

fn reap() {
    loop {
        {
            let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
            orphans
                .children
                .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
            if orphans.children.is_empty() {
                orphans.reaping = false;
                return;
            }
        }
        std::thread::sleep(POLL);
    }
}
