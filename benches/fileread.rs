//! Random positional reads of a cached file (or, with `--uncached`, of one
//! the page cache keeps dropping): ebbtide (io_uring, epoll + pool) vs
//! tokio, smol, compio and monoio, in one process.
//!
//! `cargo bench --bench fileread [-- [--quick] [--uncached] [--rounds N] [--tasks T] [--only VARIANT] [--json PATH]]`
//! (`--only` runs one of `ebb-uring`, `ebb-epoll`, `ebb-pool`, `tokio`,
//! `smol`, `compio`, `monoio`: for `strace -c` or `perf` on one runtime)
//!
//! A 256 MiB file (32 MiB with `--quick`) is written to the temporary
//! directory and read through once, so every page is in the page cache.
//! Then, per variant, `T` tasks (64) each loop: pick a random 4 KiB-aligned
//! offset, read 4 KiB there into an owned buffer (one reused `Vec` per
//! task), check the first byte (the file's content is a function of the
//! offset), count one read. Each variant has 2 threads (this machine's
//! cores) and reads for a warm-up (0.2 s) and a measured window (1 s;
//! 0.3 s with `--quick`).
//!
//! What each variant runs (each runtime's cheapest positional read, what its
//! users write):
//! - `ebb-uring`: ebbtide built with `io_backend(IoBackend::IoUring)`, 2
//!   workers, `fs::File::read_at` with an owned `Vec` (one shared `File`).
//!   Where `build()` refuses io_uring, the row says `unavailable: <error>`.
//! - `ebb-epoll`: the same on `IoBackend::Epoll` (the inline cached read,
//!   else the blocking pool).
//! - `ebb-pool`: the epoll runtime through `spawn_blocking(move ||
//!   file.read_at(..))` on a shared `Arc<std::fs::File>`, like the peers'
//!   pool rows: the blocking pool's own cost.
//! - `tokio`: `spawn_blocking(move || file.read_at(..))` on a shared
//!   `Arc<std::fs::File>`, 2 workers (tokio's `fs::File` has no positional
//!   read; its seek + read costs two pool trips).
//! - `smol`: `blocking::unblock(move || file.read_at(..))` (what async-fs
//!   does for every call), the executor run by 2 threads.
//! - `compio` (Linux): 2 threads, each with its own compio `Runtime` on the
//!   io_uring driver (`benches/common/tpc.rs`), each opening the file with
//!   `compio::fs::File::open` and spawning 32 reader tasks (`T / 2`) that
//!   call `AsyncReadAt::read_at(Vec, pos)` (an `IORING_OP_READ` per read).
//! - `monoio` (Linux): the same shape on monoio: 2 threads, each with a
//!   `RuntimeBuilder::<IoUringDriver>` runtime, `monoio::fs::File::open`,
//!   32 tasks each calling `File::read_at(Vec, pos)`.
//!
//! With `--uncached`, a thread drops the file's pages from the page cache
//! (`posix_fadvise(POSIX_FADV_DONTNEED)`) before each warm-up and every 5
//! ms until the window ends, so nearly every read waits for the disk: what
//! the blocking pool and the ring do when the cache cannot answer
//! (ebbtide's inline cached read fails at once with `EAGAIN` there, and the
//! read goes to the pool or the ring).
//!
//! Columns per variant: reads per second, CPU time of the whole process
//! per read (user + system from `/proc/self/stat`, all threads: the cost a
//! server pays, far steadier than throughput on a shared machine), and
//! context switches per read (`getrusage`, voluntary + involuntary, all
//! threads). Rounds rotate the variant order; cells show the median with
//! min–max. The ratios are of medians, each ebbtide variant over each peer
//! (`thr` > 1: ebbtide reads more; `cpu` < 1: ebbtide spends less per
//! read; `-` where the peer did not run, and no ratios at all when no
//! ebbtide variant or no peer ran, as with `--only`).
//!
//! `--json PATH` also writes the CPU medians for
//! `scripts/plot-benchmarks.py`: one entry per ebbtide variant that ran,
//! named `fileread cached cpu/read VARIANT` (`uncached` with
//! `--uncached`), `{"name", "ebbtide_ns", "tokio_ns", "smol_ns",
//! "compio_ns", "monoio_ns"}`: the median CPU ns per read of that variant
//! and of each peer, a peer's key only where it ran (not with `--only`,
//! not compio and monoio off Linux); a variant with no peer has no entry.

#[path = "common/mod.rs"]
mod common;

fn main() {
    #[cfg(unix)]
    unix::main();
    #[cfg(not(unix))]
    println!("fileread bench: Unix only (positional reads through std's FileExt)");
}

#[cfg(unix)]
mod unix {
    use super::common;
    use std::future::Future;
    use std::io;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;
    #[cfg(target_os = "linux")]
    use std::rc::Rc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use common::median;
    use common::smol_rt::SmolRt;

    const BLOCK: usize = 4096;
    const WORKERS: usize = 2;

    struct Opts {
        quick: bool,
        rounds: usize,
        tasks: usize,
        only: Option<String>,
        uncached: bool,
        json: Option<String>,
    }

    /// The bench file, while `--uncached` keeps dropping its pages.
    static EVICT: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

    /// Drops the bench file's pages from the page cache (`--uncached`).
    fn evict() {
        use std::os::fd::AsRawFd;
        if let Some(file) = EVICT.get() {
            // SAFETY: a plain advice call on an open descriptor.
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }

    fn parse_args() -> Opts {
        let mut opts = Opts {
            quick: false,
            rounds: 0,
            tasks: 64,
            only: None,
            uncached: false,
            json: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => opts.quick = true,
                "--uncached" => opts.uncached = true,
                "--only" => opts.only = args.next(),
                "--rounds" => opts.rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(3),
                "--json" => opts.json = Some(args.next().expect("--json needs a PATH")),
                "--tasks" => opts.tasks = args.next().and_then(|v| v.parse().ok()).unwrap_or(64),
                _ => {} // `--bench` and filters from cargo
            }
        }
        if opts.rounds == 0 {
            opts.rounds = if opts.quick { 1 } else { 5 };
        }
        opts
    }

    /// The byte at `offset` of the file: every block starts with its index.
    fn expected(offset: u64) -> u8 {
        (offset / BLOCK as u64) as u8
    }

    fn make_file(bytes: u64) -> PathBuf {
        let path = std::env::temp_dir().join(format!("ebbtide-fileread-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create the bench file");
        let mut block = vec![0u8; BLOCK];
        for i in 0..bytes / BLOCK as u64 {
            block.fill(expected(i * BLOCK as u64));
            file.write_all_at(&block, i * BLOCK as u64)
                .expect("write the bench file");
        }
        // Read it back once: every page is cached before the first window.
        let mut off = 0;
        while off < bytes {
            file.read_at(&mut block, off).expect("read the bench file");
            off += BLOCK as u64;
        }
        path
    }

    /// xorshift64*: a cheap per-task random offset.
    fn next_offset(state: &mut u64, blocks: u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % blocks) * BLOCK as u64
    }

    /// What one run shares with its tasks.
    struct Run {
        stop: AtomicBool,
        counting: AtomicBool,
        reads: AtomicU64,
        blocks: u64,
    }

    impl Run {
        fn new(blocks: u64) -> Arc<Run> {
            Arc::new(Run {
                stop: AtomicBool::new(false),
                counting: AtomicBool::new(false),
                reads: AtomicU64::new(0),
                blocks,
            })
        }

        fn count(&self) -> bool {
            if self.counting.load(Ordering::Relaxed) {
                self.reads.fetch_add(1, Ordering::Relaxed);
            }
            !self.stop.load(Ordering::Relaxed)
        }
    }

    #[derive(Clone, Copy)]
    struct Sample {
        reads_per_s: f64,
        cpu_ns_per_read: f64,
        switches_per_read: f64,
    }

    fn process_cpu_ns() -> f64 {
        let me = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after_comm = me.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ticks: u64 = after_comm
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        ticks as f64 * 1e9 / hz
    }

    fn context_switches() -> f64 {
        // SAFETY: an all-zero rusage is a valid out-parameter for getrusage.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable rusage.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        (usage.ru_nvcsw + usage.ru_nivcsw) as f64
    }

    /// Runs the warm-up and the window with `run` being read from, then stops
    /// the readers (`wait_done` returns once every reader has seen the stop).
    fn measure(run: &Run, window: Duration, wait_done: impl FnOnce()) -> Sample {
        let evicting = Arc::new(AtomicBool::new(EVICT.get().is_some()));
        let evictor = evicting.load(Ordering::Relaxed).then(|| {
            let evicting = evicting.clone();
            std::thread::spawn(move || {
                while evicting.load(Ordering::Relaxed) {
                    evict();
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        });
        std::thread::sleep(Duration::from_millis(200));
        let (cpu0, sw0, t0) = (process_cpu_ns(), context_switches(), Instant::now());
        run.counting.store(true, Ordering::Relaxed);
        std::thread::sleep(window);
        run.counting.store(false, Ordering::Relaxed);
        let (cpu1, sw1, elapsed) = (process_cpu_ns(), context_switches(), t0.elapsed());
        evicting.store(false, Ordering::Relaxed);
        if let Some(evictor) = evictor {
            evictor.join().expect("the evictor thread");
        }
        run.stop.store(true, Ordering::Relaxed);
        wait_done();
        let reads = run.reads.load(Ordering::Relaxed).max(1) as f64;
        Sample {
            reads_per_s: reads / elapsed.as_secs_f64(),
            cpu_ns_per_read: (cpu1 - cpu0) / reads,
            switches_per_read: (sw1 - sw0) / reads,
        }
    }

    /// One reader task: reads `BLOCK` bytes at random offsets through
    /// `read(offset, buf) -> (result, buf)` and checks them, until the run
    /// stops.
    async fn reader<R, Fut>(run: Arc<Run>, seed: u64, mut read: R)
    where
        R: FnMut(u64, Vec<u8>) -> Fut,
        Fut: Future<Output = (io::Result<usize>, Vec<u8>)>,
    {
        let mut state = 0x9E37_79B9_7F4A_7C15 ^ (seed + 1);
        let mut buf = Vec::with_capacity(BLOCK);
        loop {
            let off = next_offset(&mut state, run.blocks);
            buf.clear();
            let (res, b) = read(off, buf).await;
            buf = b;
            assert_eq!(res.expect("read"), BLOCK);
            assert_eq!(buf[0], expected(off));
            if !run.count() {
                break;
            }
        }
    }

    /// The job of the pool variants: `pread` into `buf`, run on a pool
    /// thread.
    fn pread_job(
        file: &Arc<std::fs::File>,
        off: u64,
        mut buf: Vec<u8>,
    ) -> impl FnOnce() -> (io::Result<usize>, Vec<u8>) + Send + 'static {
        let file = file.clone();
        move || {
            buf.resize(BLOCK, 0);
            let res = file.read_at(&mut buf, off);
            (res, buf)
        }
    }

    /// The ebbtide variants, on `rt` (its backend is the variant's):
    /// `File::read_at` (`pool == false`), or `spawn_blocking` + `pread` like
    /// the peers (`pool == true`).
    fn ebbtide_round(
        rt: &ebbtide::runtime::Runtime,
        path: &PathBuf,
        opts: &Opts,
        window: Duration,
        pool: bool,
    ) -> Sample {
        let run = Run::new(blocks_of(path));
        let ebb_file = Arc::new(rt.block_on(ebbtide::fs::File::open(path)).expect("open"));
        let std_file = Arc::new(std::fs::File::open(path).expect("open"));
        let tasks: Vec<_> = (0..opts.tasks as u64)
            .map(|i| {
                let (ebb_file, std_file) = (ebb_file.clone(), std_file.clone());
                rt.spawn(reader(run.clone(), i, move |off, buf| {
                    let (ebb_file, std_file) = (ebb_file.clone(), std_file.clone());
                    async move {
                        if pool {
                            let job = pread_job(&std_file, off, buf);
                            ebbtide::spawn_blocking(job).await.expect("pool")
                        } else {
                            ebb_file.read_at(buf, off).await.into_parts()
                        }
                    }
                }))
            })
            .collect();
        measure(&run, window, || {
            rt.block_on(async {
                for t in tasks {
                    t.await.expect("reader");
                }
            })
        })
    }

    /// compio or monoio: `WORKERS` threads, one runtime each, each thread
    /// opening the file with its runtime's `File` and running `tasks /
    /// WORKERS` readers on it (the first threads take the remainder).
    #[cfg(target_os = "linux")]
    fn tpc_round(tpc: common::tpc::Tpc, path: &PathBuf, opts: &Opts, window: Duration) -> Sample {
        use common::tpc::Tpc;
        let run = Run::new(blocks_of(path));
        let tasks = opts.tasks;
        let threads = tpc.threads(WORKERS, {
            let (run, path) = (run.clone(), path.clone());
            move |t| {
                let (run, path) = (run.clone(), path.clone());
                async move {
                    let mine = (t..tasks).step_by(WORKERS).map(|i| i as u64);
                    match tpc {
                        Tpc::Compio => {
                            use compio::io::AsyncReadAt;
                            let file = Rc::new(compio::fs::File::open(&path).await.expect("open"));
                            let readers = mine
                                .map(|i| {
                                    let file = file.clone();
                                    reader(run.clone(), i, move |off, buf| {
                                        let file = file.clone();
                                        async move {
                                            let compio::BufResult(res, buf) =
                                                file.read_at(buf, off).await;
                                            (res, buf)
                                        }
                                    })
                                })
                                .collect();
                            tpc.join_all(readers).await;
                        }
                        Tpc::Monoio => {
                            let file = Rc::new(monoio::fs::File::open(&path).await.expect("open"));
                            let readers = mine
                                .map(|i| {
                                    let file = file.clone();
                                    reader(run.clone(), i, move |off, buf| {
                                        let file = file.clone();
                                        async move { file.read_at(buf, off).await }
                                    })
                                })
                                .collect();
                            tpc.join_all(readers).await;
                        }
                    }
                }
            }
        });
        measure(&run, window, || {
            for t in threads {
                t.join().expect("reader thread");
            }
        })
    }

    fn tokio_round(
        rt: &tokio::runtime::Runtime,
        path: &PathBuf,
        opts: &Opts,
        window: Duration,
    ) -> Sample {
        let run = Run::new(blocks_of(path));
        let file = Arc::new(std::fs::File::open(path).expect("open"));
        let tasks: Vec<_> = (0..opts.tasks as u64)
            .map(|i| {
                let file = file.clone();
                rt.spawn(reader(run.clone(), i, move |off, buf| {
                    let job = tokio::task::spawn_blocking(pread_job(&file, off, buf));
                    async move { job.await.expect("pool") }
                }))
            })
            .collect();
        measure(&run, window, || {
            rt.block_on(async {
                for t in tasks {
                    t.await.expect("reader");
                }
            })
        })
    }

    fn smol_round(rt: &SmolRt, path: &PathBuf, opts: &Opts, window: Duration) -> Sample {
        let run = Run::new(blocks_of(path));
        let file = Arc::new(std::fs::File::open(path).expect("open"));
        let tasks: Vec<_> = (0..opts.tasks as u64)
            .map(|i| {
                let file = file.clone();
                rt.ex.spawn(reader(run.clone(), i, move |off, buf| {
                    smol::unblock(pread_job(&file, off, buf))
                }))
            })
            .collect();
        measure(&run, window, || {
            async_io::block_on(async {
                for t in tasks {
                    t.await;
                }
            })
        })
    }

    fn blocks_of(path: &PathBuf) -> u64 {
        std::fs::metadata(path).expect("stat").len() / BLOCK as u64
    }

    fn cell(v: &mut [f64], digits: usize) -> String {
        let (lo, hi) = (
            v.iter().cloned().fold(f64::INFINITY, f64::min),
            v.iter().cloned().fold(0.0, f64::max),
        );
        let m = median(v);
        format!("{m:.digits$} ({lo:.digits$}–{hi:.digits$})")
    }

    /// The variants, in table order.
    const NAMES: [&str; 7] = [
        "ebb-uring",
        "ebb-epoll",
        "ebb-pool",
        "tokio",
        "smol",
        "compio",
        "monoio",
    ];
    /// The ebbtide variants (rows of the ratios) and the peers (columns).
    const EBB: [usize; 3] = [0, 1, 2];
    const PEERS: [usize; 4] = [3, 4, 5, 6];

    /// `--json PATH`: per ebbtide variant that ran, its median CPU ns per
    /// read and those of the peers that ran (`med[i][1]`, NaN where none).
    fn write_json(path: &str, opts: &Opts, med: &[[f64; 2]; 7]) {
        let workload = if opts.uncached { "uncached" } else { "cached" };
        let rows: Vec<common::JsonRow> = EBB
            .iter()
            .filter(|&&e| !med[e][1].is_nan())
            .map(|&e| common::JsonRow {
                name: format!("fileread {workload} cpu/read {}", NAMES[e]),
                ebbtide_ns: med[e][1],
                peers: PEERS
                    .iter()
                    .filter(|&&p| !med[p][1].is_nan())
                    .map(|&p| (NAMES[p], med[p][1]))
                    .collect(),
            })
            .filter(|r| !r.peers.is_empty())
            .collect();
        common::write_json_rows(path, &rows);
    }

    /// The ratios of medians, each ebbtide variant that ran over each peer
    /// (`-` for a peer that did not run); nothing when no ebbtide variant
    /// or no peer ran (`--only`).
    fn print_ratios(med: &[[f64; 2]; 7]) {
        let ran = |i: usize| !med[i][0].is_nan();
        if !EBB.iter().any(|&e| ran(e)) || !PEERS.iter().any(|&p| ran(p)) {
            return;
        }
        println!(
            "ratios of medians, ebbtide variant / peer (thr > 1: ebbtide reads more; \
             cpu < 1: ebbtide spends less per read; -: the peer did not run):"
        );
        let mut head = format!("{:<9}", "");
        for m in ["thr", "cpu"] {
            for p in PEERS {
                head.push_str(&format!(" {:>11}", format!("{m} /{}", NAMES[p])));
            }
        }
        println!("{head}");
        for e in EBB.into_iter().filter(|&e| ran(e)) {
            let mut line = format!("{:<9}", NAMES[e]);
            for (m, mine) in med[e].iter().enumerate() {
                for p in PEERS {
                    let ratio = if ran(p) {
                        format!("{:.2}", mine / med[p][m])
                    } else {
                        "-".to_owned()
                    };
                    line.push_str(&format!(" {ratio:>11}"));
                }
            }
            println!("{line}");
        }
    }

    /// An ebbtide runtime on `backend`, or why there is none.
    fn ebbtide_rt(
        backend: ebbtide::runtime::IoBackend,
    ) -> Result<ebbtide::runtime::Runtime, String> {
        let rt = ebbtide::runtime::Runtime::builder()
            .worker_threads(WORKERS)
            .io_backend(backend)
            .build()
            .map_err(|e| e.to_string())?;
        match rt.metrics().io_backend {
            b if b == backend => Ok(rt),
            b => Err(format!("asked for {backend:?}, runs {b:?}")),
        }
    }

    pub(crate) fn main() {
        use ebbtide::runtime::IoBackend;
        let opts = parse_args();
        let bytes: u64 = if opts.quick { 32 << 20 } else { 256 << 20 };
        let window = Duration::from_millis(if opts.quick { 300 } else { 1000 });
        if let Some(o) = &opts.only {
            assert!(
                NAMES.contains(&o.as_str()),
                "--only {o:?}: one of {NAMES:?}"
            );
        }
        let path = make_file(bytes);
        if opts.uncached {
            let file = std::fs::File::open(&path).expect("open the bench file");
            EVICT.set(file).expect("set once");
            evict();
        }
        let uring = ebbtide_rt(IoBackend::IoUring);
        let epoll = ebbtide_rt(IoBackend::Epoll);
        let tok = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .build()
            .expect("tokio runtime");
        let smo = SmolRt::new(WORKERS);
        // Why a variant has no row (its runtime could not be built here).
        let mut unavailable: [Option<String>; 7] = Default::default();
        unavailable[0] = uring.as_ref().err().cloned();
        unavailable[1] = epoll.as_ref().err().cloned();
        unavailable[2] = epoll.as_ref().err().cloned();
        if !cfg!(target_os = "linux") {
            unavailable[5] = Some("Linux only (io_uring)".into());
            unavailable[6] = Some("Linux only (io_uring)".into());
        }
        println!(
            "random {} {} KiB reads of a {} MiB file by {} tasks, {WORKERS} workers; {} round(s) of {} ms; \
             median (min–max)",
            if opts.uncached { "uncached" } else { "cached" },
            BLOCK / 1024,
            bytes >> 20,
            opts.tasks,
            opts.rounds,
            window.as_millis()
        );
        let mut samples: [Vec<Sample>; 7] = Default::default();
        for round in 0..opts.rounds {
            for k in 0..NAMES.len() {
                let which = (round + k) % NAMES.len();
                if unavailable[which].is_some()
                    || opts.only.as_ref().is_some_and(|o| o != NAMES[which])
                {
                    continue;
                }
                let s = match which {
                    0 => ebbtide_round(uring.as_ref().unwrap(), &path, &opts, window, false),
                    1 => ebbtide_round(epoll.as_ref().unwrap(), &path, &opts, window, false),
                    2 => ebbtide_round(epoll.as_ref().unwrap(), &path, &opts, window, true),
                    3 => tokio_round(&tok, &path, &opts, window),
                    4 => smol_round(&smo, &path, &opts, window),
                    #[cfg(target_os = "linux")]
                    5 => tpc_round(common::tpc::Tpc::Compio, &path, &opts, window),
                    #[cfg(target_os = "linux")]
                    6 => tpc_round(common::tpc::Tpc::Monoio, &path, &opts, window),
                    _ => unreachable!("variant {which} is unavailable here"),
                };
                samples[which].push(s);
            }
        }
        println!(
            "{:<9} {:>30} {:>26} {:>24}",
            "runtime", "reads/s", "cpu ns/read", "switches/read"
        );
        // Medians of reads/s and CPU ns/read; NaN where there is no row.
        let mut med = [[f64::NAN; 2]; 7];
        for (i, name) in NAMES.iter().enumerate() {
            if let Some(why) = &unavailable[i] {
                println!("{name:<9} unavailable: {why}");
                continue;
            }
            if samples[i].is_empty() {
                continue; // `--only` another one
            }
            let mut thr: Vec<f64> = samples[i].iter().map(|s| s.reads_per_s).collect();
            let mut cpu: Vec<f64> = samples[i].iter().map(|s| s.cpu_ns_per_read).collect();
            let mut sw: Vec<f64> = samples[i].iter().map(|s| s.switches_per_read).collect();
            println!(
                "{name:<9} {:>30} {:>26} {:>24}",
                cell(&mut thr, 0),
                cell(&mut cpu, 0),
                cell(&mut sw, 2)
            );
            med[i] = [median(&mut thr), median(&mut cpu)];
        }
        print_ratios(&med);
        if let Some(path) = &opts.json {
            write_json(path, &opts, &med);
        }
        drop(smo);
        drop(tok);
        drop((uring, epoll));
        let _ = std::fs::remove_file(&path);
    }
}
