#[ebbtide::main(flavor = "single_thread")]
async fn main() {}

#[ebbtide::test(flavor = 1)]
async fn the_flavor_is_a_string() {}
