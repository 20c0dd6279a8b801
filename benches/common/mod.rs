//! What the benches share (`mod common;`): one copy of each measurement
//! helper. Not every bench uses every item.
#![allow(dead_code)]

pub(crate) mod fds;
pub(crate) mod load;
pub(crate) mod probe;
pub(crate) mod sched;
pub(crate) mod smol_rt;
pub(crate) mod spawn;
#[cfg(target_os = "linux")]
pub(crate) mod tpc;
pub(crate) mod watchdog;

/// The median of `v` (sorted in place; the mean of the two middle values
/// when `v.len()` is even).
///
/// # Panics
///
/// If `v` is empty.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Writes `--json PATH`'s file: `[{"name", "ebbtide_ns", "tokio_ns",
/// "smol_ns"}]`, one entry per row, in ns per iteration (lower is better),
/// the input of `scripts/plot-benchmarks.py`.
pub(crate) fn write_json(path: &str, rows: &[(String, [f64; 3])]) {
    let rows: Vec<JsonRow> = rows
        .iter()
        .map(|(name, [e, t, s])| JsonRow {
            name: name.clone(),
            ebbtide_ns: *e,
            peers: vec![("tokio", *t), ("smol", *s)],
        })
        .collect();
    write_json_rows(path, &rows);
}

/// One entry of a `--json` file: ebbtide's median and those of the peers
/// it is compared with, in ns (lower is better).
pub(crate) struct JsonRow {
    pub(crate) name: String,
    pub(crate) ebbtide_ns: f64,
    /// `(peer, ns)`, written as `"<peer>_ns"` in this order (`tokio`,
    /// `smol`, `compio`, `monoio`: the keys `scripts/plot-benchmarks.py`
    /// plots); only the peers that ran.
    pub(crate) peers: Vec<(&'static str, f64)>,
}

/// Writes `--json PATH`'s file: `[{"name", "ebbtide_ns", "<peer>_ns"...}]`,
/// one entry per row, the input of `scripts/plot-benchmarks.py`.
pub(crate) fn write_json_rows(path: &str, rows: &[JsonRow]) {
    let entries: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut entry = format!(
                "  {{\"name\": \"{}\", \"ebbtide_ns\": {:.1}",
                r.name, r.ebbtide_ns
            );
            // A peer without a number (NaN) has no key: JSON has no NaN.
            for (peer, ns) in r.peers.iter().filter(|(_, ns)| ns.is_finite()) {
                entry.push_str(&format!(", \"{peer}_ns\": {ns:.1}"));
            }
            entry.push('}');
            entry
        })
        .collect();
    let out = format!("[\n{}\n]\n", entries.join(",\n"));
    std::fs::write(path, out).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    println!("wrote {path}");
}

/// CPU time (user + system, every thread) of process `pid` (`"self"` for
/// this one) in nanoseconds, from `/proc/PID/stat`; 0 where `/proc` is
/// missing.
pub(crate) fn proc_cpu_ns(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // After `(comm)`: state is field 3; utime and stime are 14 and 15.
    let ticks: u64 = after_comm
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 * 1e9 / clock_ticks_per_sec() as f64
}

#[cfg(unix)]
fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as u64
    } else {
        100
    }
}

#[cfg(not(unix))]
fn clock_ticks_per_sec() -> u64 {
    100
}
