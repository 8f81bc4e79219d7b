//! Writes a random-weight INSTRUCTOR folder at a real shape, for benchmarks (native, wasm, wgpu).
//!
//! `cargo run --release --example random_model -- base /tmp/instructor-base-random`

#[path = "../benches/support/random_model.rs"]
mod random_model;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(shape), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: random_model <small|base|large|xl> <output dir>");
        std::process::exit(2);
    };
    let dir = random_model::write_random_model(std::path::Path::new(&dir), &shape);
    println!("{}", dir.display());
}
