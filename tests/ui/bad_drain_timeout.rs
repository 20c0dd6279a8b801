#[ebbtide::main(drain_timeout = "5 minutes")]
async fn main() {}

#[ebbtide::test(drain_timeout = 500)]
async fn the_drain_timeout_is_a_string() {}

#[ebbtide::test(drain_timeout = "1.5s")]
async fn the_drain_timeout_is_a_whole_number() {}
