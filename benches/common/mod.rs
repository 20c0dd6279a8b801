//! What the benches share (`mod common;`): one copy of each measurement
//! helper. Not every bench uses every item.
#![allow(dead_code)]

pub(crate) mod fds;
pub(crate) mod load;
pub(crate) mod smol_rt;
pub(crate) mod spawn;
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
    let entries: Vec<String> = rows
        .iter()
        .map(|(name, [e, t, s])| {
            format!(
                "  {{\"name\": \"{name}\", \"ebbtide_ns\": {e:.1}, \"tokio_ns\": {t:.1}, \"smol_ns\": {s:.1}}}"
            )
        })
        .collect();
    let out = format!("[\n{}\n]\n", entries.join(",\n"));
    std::fs::write(path, out).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    println!("wrote {path}");
}
