//! The int8 matmul kernels against candle's f32 matmul at instructor-base/-large shapes.
//!
//! `cargo bench --bench int8` prints, per shape and kernel, GMAC/s and the ratio to f32 measured
//! in the same run. `RAYON_NUM_THREADS` sets the threads of both; `ROWS` the token rows (512).

use candle_core::{Device, Tensor};
use instructor::model::int8::{matmul, Int8Matrix, Kernel};
use std::time::Instant;

/// Best of `reps` runs, in seconds.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let m: usize = std::env::var("ROWS").map_or(512, |r| r.parse().expect("ROWS"));
    println!(
        "int8 matmul, {m} rows, threads {:?}, kernels {:?}",
        std::env::var("RAYON_NUM_THREADS").ok(),
        Kernel::available()
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
    );
    // (k, n): attention projections, the feed-forward in and out, of base (768/3072) and large.
    for (k, n) in [
        (768, 768),
        (768, 3072),
        (3072, 768),
        (1024, 4096),
        (4096, 1024),
    ] {
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104729) % 2003) as f32 / 1001.0 - 1.0)
            .collect();
        let xt = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap();
        let wt = Tensor::from_vec(w.clone(), (n, k), &Device::Cpu)
            .unwrap()
            .t()
            .unwrap();
        let macs = (m * k * n) as f64;
        let f32_s = best(5, || {
            xt.matmul(&wt).unwrap();
        });
        print!("k={k:5} n={n:5}  f32 {:6.1} GMAC/s", macs / f32_s / 1e9);
        let q = Int8Matrix::quantize(&w, n, k);
        for kernel in Kernel::available() {
            if kernel == Kernel::Scalar {
                continue;
            }
            let s = best(5, || {
                matmul(&x, m, &q, kernel);
            });
            print!(
                "  {} {:6.1} ({:.2}×)",
                kernel.name(),
                macs / s / 1e9,
                f32_s / s
            );
        }
        println!();
    }
}
