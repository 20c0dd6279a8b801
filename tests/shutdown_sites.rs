//! Shutdown reports that name names: the spawn sites (location, task name,
//! count) of the tasks a shutdown cancelled or leaked, most frequent first,
//! capped, and printed by the report's `Display`.

mod common;
use common::watchdog;

use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ebbtide::runtime::{Runtime, ShutdownReport, TaskSite};
use ebbtide::task::Builder;

fn runtimes() -> Vec<(&'static str, Runtime)> {
    vec![
        (
            "current_thread",
            Runtime::builder().current_thread().build().unwrap(),
        ),
        (
            "2 workers",
            Runtime::builder().worker_threads(2).build().unwrap(),
        ),
    ]
}

/// `(line, name, count)` of each site.
fn sites(sites: &[TaskSite]) -> Vec<(u32, Option<&str>, usize)> {
    sites
        .iter()
        .map(|s| {
            assert_eq!(s.location.file(), file!());
            (s.location.line(), s.name.as_deref(), s.count)
        })
        .collect()
}

/// `file:line:column` of a site, as the report prints it.
fn at(site: &TaskSite) -> String {
    site.location.to_string()
}

#[test]
fn a_shutdown_report_names_the_spawn_sites_it_cancelled() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            let first = line!() + 1;
            rt.spawn(pending::<()>());
            let second = line!() + 1;
            rt.handle().spawn(pending::<()>());
            let report = rt.shutdown(Duration::ZERO);
            assert_eq!(report.cancelled, 2, "{name}: {report}");
            let listed = sites(&report.cancelled_sites);
            assert_eq!(listed, [(first, None, 1), (second, None, 1)], "{name}");
            assert_eq!(report.cancelled_unlisted, 0, "{name}");
            let [a, b] = &report.cancelled_sites[..] else {
                unreachable!()
            };
            let expected = format!("2 cancelled: 1 at {}, 1 at {}; 0 leaked;", at(a), at(b));
            assert!(
                report.to_string().contains(&expected),
                "{name}: {report}\nexpected: {expected}"
            );
            assert!(at(a).starts_with(&format!("{}:{first}:", file!())));
        }
    });
}

#[test]
fn the_most_frequent_site_comes_first() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            let once = line!() + 1;
            rt.spawn(pending::<()>());
            let thrice = line!() + 2;
            for _ in 0..3 {
                rt.spawn(pending::<()>());
            }
            let report = rt.shutdown(Duration::ZERO);
            let listed = sites(&report.cancelled_sites);
            assert_eq!(
                listed,
                [(thrice, None, 3), (once, None, 1)],
                "{name}: {report}"
            );
        }
    });
}

#[test]
fn named_tasks_show_their_names_in_the_shutdown_report() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            let acceptor = Builder::new().name("acceptor");
            let on_handle = line!() + 1;
            acceptor.spawn_on(pending::<()>(), rt.handle()).unwrap();
            let (current, local) = (line!() + 3, line!() + 4);
            rt.block_on(async {
                let conn = Builder::new().name("conn");
                conn.spawn(pending::<()>()).unwrap();
                conn.spawn_local(pending::<()>()).unwrap().abort();
                // Runs the aborted one to its drop (a local task lives on
                // this thread, and is not the runtime's to cancel).
                ebbtide::yield_now().await;
            });
            let unnamed = line!() + 1;
            rt.spawn(pending::<()>());
            let report = rt.shutdown(Duration::ZERO);
            let mut listed = sites(&report.cancelled_sites);
            listed.sort();
            let mut expected = vec![
                (on_handle, Some("acceptor"), 1),
                (current, Some("conn"), 1),
                (unnamed, None, 1),
            ];
            expected.sort();
            assert_eq!(listed, expected, "{name}: {report}");
            let text = report.to_string();
            assert!(text.contains(&format!(":{on_handle}:")), "{name}: {text}");
            assert!(
                text.contains(" (acceptor)") && text.contains(" (conn)"),
                "{text}"
            );
            // The aborted local task was cancelled before the shutdown.
            assert!(!text.contains(&format!(":{local}:")), "{name}: {text}");
        }
    });
}

#[test]
fn the_report_lists_sixteen_sites_and_counts_the_rest() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            for _ in 0..5 {
                rt.spawn(pending::<()>());
            }
            for i in 0..20 {
                let b = Builder::new().name(format!("t{i:02}"));
                b.spawn_on(pending::<()>(), rt.handle()).unwrap();
            }
            let report = rt.shutdown(Duration::ZERO);
            assert_eq!(report.cancelled, 25, "{name}: {report}");
            assert_eq!(report.cancelled_sites.len(), 16, "{name}: {report}");
            assert_eq!(report.cancelled_sites[0].count, 5, "{name}");
            let names: Vec<_> = report.cancelled_sites[1..]
                .iter()
                .map(|s| s.name.as_deref().unwrap().to_owned())
                .collect();
            let expected: Vec<_> = (0..15).map(|i| format!("t{i:02}")).collect();
            assert_eq!(names, expected, "{name}: ties in the order of their names");
            assert_eq!(report.cancelled_unlisted, 5, "{name}");
            assert!(
                report.to_string().contains("(t14), and 5 more; 0 leaked;"),
                "{name}: {report}"
            );
        }
    });
}

#[test]
fn a_leaked_task_is_named_by_its_spawn_site() {
    watchdog(|| {
        let rt = Runtime::builder()
            .worker_threads(2)
            .stall_threshold(None)
            .build()
            .unwrap();
        let (stop, started, parked) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        // A task that parks (shutdown cancels it), then one that never
        // yields (its worker is detached, the task leaked).
        let parked2 = parked.clone();
        let cancelled_line = line!() + 1;
        rt.spawn(async move {
            parked2.store(true, Ordering::SeqCst);
            pending::<()>().await
        });
        while !parked.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let (stop2, started2) = (stop.clone(), started.clone());
        let spinner = Builder::new().name("spinner");
        let line = line!() + 1;
        let stuck = spinner.spawn_on(
            async move {
                started2.store(true, Ordering::SeqCst);
                while !stop2.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1)); // never yields
                }
            },
            rt.handle(),
        );
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let report = rt.shutdown(Duration::from_millis(10));
        stop.store(true, Ordering::SeqCst);
        drop(stuck);
        assert_eq!(
            (report.tasks_leaked, report.workers_leaked),
            (1, 1),
            "{report}"
        );
        assert_eq!(sites(&report.leaked_sites), [(line, Some("spinner"), 1)]);
        assert_eq!(report.leaked_unlisted, 0);
        assert_eq!(sites(&report.cancelled_sites), [(cancelled_line, None, 1)]);
        let expected = format!(
            "1 cancelled: 1 at {}; 1 leaked: 1 at {} (spinner);",
            at(&report.cancelled_sites[0]),
            at(&report.leaked_sites[0])
        );
        assert!(
            report.to_string().contains(&expected),
            "{report}\n{expected}"
        );
    });
}

#[test]
fn a_leaked_unnamed_task_is_listed_at_its_spawn_line() {
    watchdog(|| {
        // With the stall detector on and off: the worker publishes what it
        // polls either way.
        for threshold in [None, Some(Duration::from_secs(3600))] {
            let rt = Runtime::builder()
                .worker_threads(2)
                .stall_threshold(threshold)
                .build()
                .unwrap();
            let (stop, started) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
            );
            let (stop2, started2) = (stop.clone(), started.clone());
            let line = line!() + 1;
            let stuck = rt.spawn(async move {
                started2.store(true, Ordering::SeqCst);
                while !stop2.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1)); // never yields
                }
            });
            while !started.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            let report = rt.shutdown(Duration::from_millis(10));
            stop.store(true, Ordering::SeqCst);
            drop(stuck);
            assert_eq!(
                (report.tasks_leaked, report.workers_leaked),
                (1, 1),
                "{threshold:?}: {report}"
            );
            assert_eq!(
                sites(&report.leaked_sites),
                [(line, None, 1)],
                "{threshold:?}: {report}"
            );
            assert_eq!(report.leaked_unlisted, 0, "{threshold:?}");
        }
    });
}

#[test]
fn a_report_with_nothing_cancelled_reads_as_before() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            rt.spawn(async {});
            let report = rt.shutdown(Duration::from_secs(5));
            assert_eq!(report.cancelled_sites, [], "{name}");
            assert_eq!(report.leaked_sites, [], "{name}");
            let text = report.to_string();
            assert!(
                text.contains("1 tasks completed, 0 cancelled, 0 leaked; 0 ops cancelled"),
                "{name}: {text}"
            );
            let empty = ShutdownReport::default();
            assert!(empty.to_string().contains("0 cancelled, 0 leaked;"));
        }
    });
}

#[test]
fn every_spawn_function_records_the_line_that_called_it() {
    watchdog(|| {
        let rt = Runtime::builder()
            .worker_threads(1)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        // Occupies the one blocking thread, so the jobs below stay queued
        // (and are cancelled by the shutdown).
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let blocker = rt.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            let _ = blocked.recv();
        });
        started.recv().unwrap();
        let mut lines = Vec::new();
        lines.push(line!() + 1);
        rt.spawn(pending::<()>());
        lines.push(line!() + 1);
        handle.spawn(pending::<()>());
        lines.push(line!() + 1);
        handle.try_spawn(pending::<()>()).unwrap();
        lines.push(line!() + 1);
        rt.spawn_blocking(|| ());
        lines.push(line!() + 1);
        handle.spawn_blocking(|| ());
        let (inner, inner_blocking) = (line!() + 2, line!() + 3);
        rt.block_on(async {
            ebbtide::spawn(pending::<()>());
            ebbtide::task::spawn_blocking(|| ());
            ebbtide::task::Builder::new().spawn_blocking(|| ()).unwrap();
        });
        lines.extend([inner, inner_blocking, inner_blocking + 1]);
        let report = rt.shutdown(Duration::from_millis(10));
        release.send(()).unwrap();
        drop(blocker);
        let mut listed: Vec<u32> = sites(&report.cancelled_sites)
            .into_iter()
            .map(|(line, _, count)| {
                assert_eq!(count, 1);
                line
            })
            .collect();
        listed.sort();
        lines.sort();
        assert_eq!(listed, lines, "{report}");
    });
}
