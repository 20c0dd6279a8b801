//! A short tour of ebbtide: what a newcomer runs first.
//!
//! `cargo run --release --example demo`

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebbtide::io::BufResult;
use ebbtide::net::{TcpListener, TcpStream};
use ebbtide::runtime::Runtime;
use ebbtide::time::{interval, sleep, timeout};

fn main() -> io::Result<()> {
    let rt = Runtime::builder().thread_name("demo").build()?;
    println!(
        "ebbtide demo: a runtime with {} worker threads\n",
        rt.metrics().workers
    );
    rt.block_on(tour())?;
    println!("\nruntime metrics: {}", rt.metrics());

    // 9. Graceful shutdown: a task still finishing a request, one that would
    //    wait forever; drain for up to 200 ms, cancel the rest, report.
    rt.spawn(async {
        ebbtide::runtime::shutdown_requested().await;
        sleep(Duration::from_millis(20)).await; // finishing an in-flight request
    });
    rt.spawn(std::future::pending::<()>());
    let report = rt.shutdown(Duration::from_millis(200));
    println!("9. {report}");
    Ok(())
}

async fn tour() -> io::Result<()> {
    // 1. Tasks spread over the workers.
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            ebbtide::spawn(async move {
                if i % 2 == 0 {
                    ebbtide::yield_now().await;
                }
                std::thread::current().name().unwrap_or("?").to_owned()
            })
        })
        .collect();
    let mut per_thread = BTreeMap::new();
    for t in tasks {
        *per_thread.entry(t.await?).or_insert(0) += 1;
    }
    println!("1. 1000 tasks ran on: {per_thread:?}");

    // 2. Timers: a sleep, an interval, a timeout.
    let start = Instant::now();
    sleep(Duration::from_millis(20)).await;
    println!("2. slept 20 ms (measured {:?})", start.elapsed());
    let mut ticks = interval(Duration::from_millis(5));
    for _ in 0..3 {
        ticks.tick().await;
    }
    println!("   3 interval ticks of 5 ms after {:?}", start.elapsed());
    let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(60))).await;
    println!("   a 60 s sleep under a 10 ms timeout: {slow:?}");

    // 3. A blocking job on the blocking pool.
    let job = ebbtide::spawn_blocking(|| {
        std::thread::sleep(Duration::from_millis(10));
        std::thread::current().name().unwrap_or("?").to_owned()
    });
    println!("3. blocking job ran on thread {:?}", job.await?);

    // 4. A panicking task: caught, reported, the worker lives on. (A quiet
    //    panic hook keeps the default hook's backtrace out of the tour.)
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| println!("   [panic hook] {info}")));
    let boom = ebbtide::spawn(async { panic!("this task panics on purpose") });
    let err = boom.await.unwrap_err();
    std::panic::set_hook(default_hook);
    println!(
        "4. panicking task -> is_panic={}, \"{err}\"",
        err.is_panic()
    );
    let after = ebbtide::spawn(async { "workers still run" }).await?;
    println!("   next task: {after}");

    // 5. Aborting and cancelling.
    let forever = ebbtide::spawn(std::future::pending::<()>());
    forever.abort();
    println!(
        "5. aborted task -> {:?}",
        forever.await.map_err(|e| e.to_string())
    );
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(dropped.clone());
    let task = ebbtide::spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    let out = task.cancel().await;
    println!(
        "   cancel().await -> {out:?}; future dropped before it returned: {}",
        dropped.load(Ordering::SeqCst)
    );

    // 6. TCP echo over loopback with owned buffers: each read takes the
    //    buffer and gives it back with the count.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = ebbtide::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            let BufResult(n, b) = stream.read_owned(buf).await;
            if n? == 0 {
                return io::Result::Ok(());
            }
            let BufResult(res, b) = stream.write_all_owned(b).await;
            res?;
            buf = b;
        }
    });
    let client = TcpStream::connect(addr).await?;
    client.write_all_owned(b"hello, ebbtide").await.0?;
    let mut reply = Vec::with_capacity(14);
    while reply.len() < 14 {
        let BufResult(n, b) = client.read_owned(reply).await;
        n?;
        reply = b;
    }
    println!(
        "6. TCP echo over {addr} with owned buffers: {:?}",
        String::from_utf8_lossy(&reply)
    );
    // A read with nothing to read, dropped in flight: on a readiness backend
    // the kernel holds nothing between attempts, so the buffer comes back
    // (is dropped) with the future, at once.
    let start = Instant::now();
    let gone = Arc::new(AtomicBool::new(false));
    let pending = client.read_owned(Announced {
        vec: Vec::with_capacity(64),
        start,
        gone: gone.clone(),
    });
    let mut pending = Box::pin(pending);
    assert!(futures_lite::future::poll_once(pending.as_mut())
        .await
        .is_none());
    println!("   a TCP read dropped in flight at +{:?}:", start.elapsed());
    drop(pending);
    drop(client);
    server.await??;

    // 7. Owned buffers: a file read dropped mid-flight.
    dropped_file_read().await?;

    // 8. spawn_local: a !Send future on this thread.
    let rc = std::rc::Rc::new(7);
    let local = ebbtide::spawn_local(async move { *rc * 6 });
    println!("8. spawn_local with an Rc: {}", local.await?);
    Ok(())
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A read owns its buffer until the OS is done with it: the future is
/// dropped right after the read started on the blocking pool, and the
/// buffer comes back (is dropped) only when the job returns, on its thread.
async fn dropped_file_read() -> io::Result<()> {
    let path = std::env::temp_dir().join(format!("ebbtide-demo-{}", std::process::id()));
    std::fs::write(&path, vec![42u8; 32 << 20])?;
    let file = ebbtide::fs::File::open(&path).await?;
    let start = Instant::now();
    let gone = Arc::new(AtomicBool::new(false));
    let buf = Announced {
        vec: Vec::with_capacity(32 << 20),
        start,
        gone: gone.clone(),
    };
    let mut read = Box::pin(file.read_at(buf, 0));
    let first = futures_lite::future::poll_once(read.as_mut()).await;
    assert!(first.is_none(), "a 32 MiB read is still running");
    println!(
        "7. a 32 MiB file read dropped in flight at +{:?} (buffer still owned by the job)",
        start.elapsed()
    );
    drop(read);
    while !gone.load(Ordering::SeqCst) {
        sleep(Duration::from_millis(1)).await;
    }
    drop(file);
    ebbtide::fs::remove_file(&path).await
}

/// An owned buffer that says when and where it is dropped.
struct Announced {
    vec: Vec<u8>,
    start: Instant,
    gone: Arc<AtomicBool>,
}

impl Drop for Announced {
    fn drop(&mut self) {
        println!(
            "   its buffer came back at +{:?} on thread {:?} ({} bytes read)",
            self.start.elapsed(),
            std::thread::current().name().unwrap_or("?"),
            self.vec.len()
        );
        self.gone.store(true, Ordering::SeqCst);
    }
}

// SAFETY: the bytes live in the inner Vec's heap allocation.
unsafe impl ebbtide::io::IoBuf for Announced {
    fn as_buf_ptr(&self) -> *const u8 {
        self.vec.as_ptr()
    }
    fn buf_len(&self) -> usize {
        self.vec.len()
    }
    fn buf_capacity(&self) -> usize {
        self.vec.capacity()
    }
}

// SAFETY: forwarded to the inner Vec.
unsafe impl ebbtide::io::IoBufMut for Announced {
    fn as_buf_mut_ptr(&mut self) -> *mut u8 {
        self.vec.as_mut_ptr()
    }
    unsafe fn set_buf_init(&mut self, len: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { ebbtide::io::IoBufMut::set_buf_init(&mut self.vec, len) }
    }
}
