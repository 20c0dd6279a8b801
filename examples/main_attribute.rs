//! `#[ebbtide::main]` on an `async fn main` that returns a `Result`: `?`
//! works as in any `main`, and an error ends the program with it.
//!
//! Counts the lines of the files named on the command line (this example's
//! own source by default), one task per file:
//!
//! ```text
//! cargo run --example main_attribute -- Cargo.toml README.md
//! ```

/// Shadows std's `Result`: the attribute's expansion never names it.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[ebbtide::main(drain_timeout = "500ms")]
async fn main() -> Result<()> {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        paths.push(concat!(env!("CARGO_MANIFEST_DIR"), "/", file!()).into());
    }
    let counts: Vec<_> = paths
        .into_iter()
        .map(|path| ebbtide::spawn(async move { count_lines(path).await }))
        .collect();
    for count in counts {
        let (path, lines) = count.await??;
        println!("{lines:>6} {path}");
    }
    Ok(())
}

async fn count_lines(path: String) -> std::io::Result<(String, usize)> {
    let bytes = ebbtide::fs::read(&path).await?;
    Ok((path, bytes.iter().filter(|&&b| b == b'\n').count()))
}
