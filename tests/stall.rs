//! Stall reports: a poll that keeps its thread past the stall threshold is
//! counted, and reported once per spawn site with the site's location, its
//! name and the poll's duration; a hook that panics is counted, never fatal.

mod common;
use common::{quiet_expected_panics, watchdog};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebbtide::runtime::{Builder, Runtime, StallReport};

/// What the `on_stall` hook saw.
type Seen = Arc<Mutex<Vec<StallReport>>>;

/// A runtime whose stall reports go into the returned list.
fn runtime(builder: &mut Builder, threshold: Option<Duration>) -> (Runtime, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let rt = builder
        .stall_threshold(threshold)
        .on_stall(move |r| log.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();
    (rt, seen)
}

/// The flavours: a current-thread runtime (tasks run inside `block_on`)
/// and two workers.
fn flavours(threshold: Option<Duration>) -> Vec<(&'static str, Runtime, Seen)> {
    let (ct, ct_seen) = runtime(Runtime::builder().current_thread(), threshold);
    let (mt, mt_seen) = runtime(Runtime::builder().worker_threads(2), threshold);
    vec![("current_thread", ct, ct_seen), ("2 workers", mt, mt_seen)]
}

/// Shuts `rt` down, joining its workers: a report is made after the poll
/// it is about, which may be after `block_on` saw the task's output.
fn settle(rt: &Runtime) {
    let report = rt.shutdown(Duration::from_secs(5));
    assert_eq!(report.workers_leaked, 0, "{report}");
}

const THRESHOLD: Option<Duration> = Some(Duration::from_millis(100));
const BLOCK: Duration = Duration::from_millis(300);

#[test]
fn a_blocking_poll_is_reported_with_its_spawn_location() {
    watchdog(|| {
        for (name, rt, seen) in flavours(THRESHOLD) {
            let line = line!() + 1;
            let task = rt.spawn(async { std::thread::sleep(BLOCK) });
            rt.block_on(task).unwrap();
            settle(&rt);
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "{name}: {seen:?}");
            let report = &seen[0];
            assert_eq!(report.location.file(), file!(), "{name}");
            assert_eq!(report.location.line(), line, "{name}");
            assert!(report.duration >= BLOCK, "{name}: {report}");
            assert_eq!(report.threshold, THRESHOLD.unwrap(), "{name}");
            assert_eq!((report.name.clone(), report.block_on), (None, false));
            let text = report.to_string();
            assert!(
                text.contains(&format!("a task spawned at {}:{line}:", file!())),
                "{name}: {text}"
            );
            assert_eq!(rt.metrics().stalled_polls, 1, "{name}");
        }
    });
}

#[test]
fn a_site_is_reported_once_and_each_stalled_poll_is_counted() {
    watchdog(|| {
        for (name, rt, seen) in flavours(Some(Duration::from_millis(50))) {
            let mut lines = Vec::new();
            for _ in 0..2 {
                lines.push(line!() + 1);
                let task = rt.spawn(async { std::thread::sleep(Duration::from_millis(100)) });
                rt.block_on(task).unwrap();
            }
            let line = line!() + 1;
            let other = rt.spawn(async { std::thread::sleep(Duration::from_millis(100)) });
            rt.block_on(other).unwrap();
            settle(&rt);
            let seen = seen.lock().unwrap();
            let mut reported: Vec<u32> = seen.iter().map(|r| r.location.line()).collect();
            reported.sort(); // two workers may report in either order
            assert_eq!(reported, [lines[0], line], "{name}: one report per site");
            assert_eq!(lines[0], lines[1]);
            assert_eq!(rt.metrics().stalled_polls, 3, "{name}: every stall counted");
        }
    });
}

#[test]
fn a_stall_threshold_of_none_reports_nothing() {
    watchdog(|| {
        for (name, rt, seen) in flavours(None) {
            let task = rt.spawn(async { std::thread::sleep(BLOCK) });
            rt.block_on(task).unwrap();
            rt.block_on(async { std::thread::sleep(BLOCK) });
            settle(&rt);
            assert!(seen.lock().unwrap().is_empty(), "{name}");
            assert_eq!(rt.metrics().stalled_polls, 0, "{name}");
        }
    });
}

#[test]
fn a_named_task_is_reported_by_its_name() {
    watchdog(|| {
        for (name, rt, seen) in flavours(THRESHOLD) {
            let builder = ebbtide::task::Builder::new().name("acceptor");
            let line = line!() + 1;
            let task = builder.spawn_on(async { std::thread::sleep(BLOCK) }, rt.handle());
            rt.block_on(task.unwrap()).unwrap();
            settle(&rt);
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "{name}: {seen:?}");
            assert_eq!(seen[0].name.as_deref(), Some("acceptor"), "{name}");
            assert_eq!(seen[0].location.line(), line, "{name}");
            let text = seen[0].to_string();
            assert!(
                text.contains(&format!("{}:{line}:", file!())) && text.contains("(acceptor)"),
                "{name}: {text}"
            );
        }
    });
}

#[test]
fn a_local_task_and_a_block_on_future_are_reported_at_their_call_sites() {
    watchdog(|| {
        for (name, rt, seen) in flavours(THRESHOLD) {
            let (local_line, block_on_line) = (line!() + 2, line!() + 6);
            rt.block_on(async {
                ebbtide::spawn_local(async { std::thread::sleep(BLOCK) })
                    .await
                    .unwrap();
            });
            rt.block_on(async { std::thread::sleep(BLOCK) });
            settle(&rt);
            let seen = seen.lock().unwrap();
            let got: Vec<(u32, bool)> = seen
                .iter()
                .map(|r| (r.location.line(), r.block_on))
                .collect();
            assert_eq!(
                got,
                [(local_line, false), (block_on_line, true)],
                "{name}: {seen:?}"
            );
            assert!(seen[1].duration >= BLOCK, "{name}");
            assert!(
                seen[1].to_string().contains("the block_on future at"),
                "{name}"
            );
        }
    });
}

#[test]
fn time_spent_waiting_for_a_timer_is_no_stall() {
    watchdog(|| {
        for (name, rt, seen) in flavours(THRESHOLD) {
            let task = rt.spawn(ebbtide::time::sleep(BLOCK));
            rt.block_on(task).unwrap();
            rt.block_on(ebbtide::time::sleep(BLOCK));
            settle(&rt);
            assert!(seen.lock().unwrap().is_empty(), "{name}");
            assert_eq!(rt.metrics().stalled_polls, 0, "{name}");
        }
    });
}

#[test]
fn a_panicking_stall_hook_is_counted_and_its_worker_goes_on() {
    quiet_expected_panics();
    watchdog(|| {
        for builder in [
            Runtime::builder().current_thread(),
            Runtime::builder().worker_threads(1),
        ] {
            let rt = builder
                .stall_threshold(Some(Duration::from_millis(50)))
                .on_stall(|_| panic!("deliberate: a stall hook that panics"))
                .build()
                .unwrap();
            let stall = rt.spawn(async { std::thread::sleep(Duration::from_millis(100)) });
            rt.block_on(stall).unwrap();
            // The same (only) worker still runs tasks.
            let after = rt.spawn(async { 7 });
            assert_eq!(rt.block_on(after).unwrap(), 7);
            settle(&rt);
            let m = rt.metrics();
            assert_eq!((m.stalled_polls, m.stall_hook_panics), (1, 1), "{m}");
        }
    });
}

#[test]
fn without_a_hook_a_stall_is_one_line_on_stderr() {
    const CHILD: &str = "EBBTIDE_STALL_TEST_CHILD";
    let line = line!() + 9;
    if std::env::var_os(CHILD).is_some() {
        // The child: two stalls of one site, then exit.
        let rt = Runtime::builder()
            .current_thread()
            .stall_threshold(Some(Duration::from_millis(50)))
            .build()
            .unwrap();
        for _ in 0..2 {
            let task = ebbtide::task::Builder::new().name("sleeper").spawn_on(
                async { std::thread::sleep(Duration::from_millis(100)) },
                rt.handle(),
            );
            rt.block_on(task.unwrap()).unwrap();
        }
        assert_eq!(rt.metrics().stalled_polls, 2);
        return;
    }
    watchdog(move || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "without_a_hook_a_stall_is_one_line_on_stderr",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("ebbtide:")).collect();
        assert_eq!(warnings.len(), 1, "{stderr}");
        let site = format!("a task spawned at {}:{line}:", file!());
        assert!(
            warnings[0].contains(&site) && warnings[0].contains("(sleeper) ran "),
            "{}",
            warnings[0]
        );
    });
}
