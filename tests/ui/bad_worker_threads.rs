#[ebbtide::main(worker_threads = 0)]
async fn main() {}

#[ebbtide::test(flavor = "multi_thread", worker_threads = "two")]
async fn worker_threads_is_a_number() {}

#[ebbtide::test(flavor = "multi_thread", worker_threads = 1 + 1)]
async fn worker_threads_is_a_literal() {}
