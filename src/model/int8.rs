//! Int8 matrix products `y = x · Wᵀ` with weights quantized per output channel and activations
//! quantized per row (token) as they come: `y[m, n] ≈ sx[m] · sw[n] · Σₖ qx[m, k] · qw[n, k]`.
//!
//! Hand-written rather than candle's `QMatMul` (Q8_0): measured at instructor-base shapes on an
//! AVX-512 Xeon, Q8_0 ran at only 0.97–1.21× candle's f32 matmul for 1,024 token rows, because its
//! CPU path is a dot product per output element with the activations re-quantized per block of 32.
//! Here the weights are packed once into panels that the integer dot-product instructions consume
//! directly (16 output channels × 4 consecutive k per 64 bytes: `vpdpbusd`, `vpmaddubsw`, wasm's
//! `i32x4.dot_i16x8_s` and relaxed SIMD's `i32x4.relaxed_dot_i8x16_i7x16_add`), each token row is
//! quantized once per product, and the integer sums are exact: every kernel returns the same i32
//! sums as the scalar one (the tests check them on ragged shapes).
//!
//! This file depends on nothing but `std` (and rayon for threads), so that
//! `crates/int8-check` can compile these very kernels for wasm32 and run their tests under
//! Node's WASI (scripts/test-int8-wasm.sh).

/// Output channels per packed panel.
pub const PANEL: usize = 16;
/// Consecutive k values a dot-product instruction sums into one i32 lane.
const GROUP: usize = 4;
/// Output channels one kernel call computes: two panels (the second may be absent).
const PAIR: usize = 2 * PANEL;
/// Token rows one kernel call computes (rows are padded to a multiple of it).
const MR: usize = 4;
/// Token rows one task quantizes and multiplies, keeping them in cache across panels.
const BLOCK_ROWS: usize = 64;

/// A weight matrix `[n, k]` quantized symmetrically per output channel and packed into panels.
#[derive(Debug, Clone)]
pub struct Int8Matrix {
    n: usize,
    k: usize,
    /// k rounded up to a multiple of [`GROUP`] (the padding is zeros).
    kp: usize,
    /// `[n.div_ceil(PANEL)][kp / GROUP][PANEL][GROUP]`.
    packed: Vec<i8>,
    /// Per output channel: the f32 value of one integer step.
    scales: Vec<f32>,
    /// Per output channel: `Σₖ qw[n, k]`, undoing the unsigned offset of `vpdpbusd`'s operand.
    col_sums: Vec<i32>,
}

/// Quantizes `rows` rows of `k` values symmetrically: `scale = max|x| / 127`,
/// `q = round(x / scale)` in `[-127, 127]` (a row of zeros gets scale 0).
pub fn quantize_rows(x: &[f32], rows: usize, k: usize) -> (Vec<i8>, Vec<f32>) {
    assert_eq!(
        x.len(),
        rows * k,
        "quantize_rows: {} values for {rows}×{k}",
        x.len()
    );
    let mut q = vec![0i8; rows * k];
    let mut scales = vec![0f32; rows];
    for r in 0..rows {
        scales[r] = quantize_row(&x[r * k..(r + 1) * k], &mut q[r * k..(r + 1) * k], 0);
    }
    (q, scales)
}

/// Quantizes one row into `out` (XOR-ed with `flip`: 0x80 gives `q + 128` as u8) and returns its
/// scale. Written so that LLVM vectorizes both passes (no `f32::round` call; `max` by compare).
#[inline(always)]
fn quantize_row(x: &[f32], out: &mut [i8], flip: u8) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (m, v) in lanes.iter_mut().zip(c) {
            let a = v.abs();
            *m = if a > *m { a } else { *m };
        }
    }
    let mut max = tail
        .iter()
        .fold(0f32, |m, v| if v.abs() > m { v.abs() } else { m });
    for m in lanes {
        max = if m > max { m } else { max };
    }
    if max == 0.0 || !max.is_finite() {
        out.fill(flip as i8);
        return if max == 0.0 { 0.0 } else { f32::NAN };
    }
    let inv = 127.0 / max;
    // Adding 1.5·2²³ rounds to the nearest integer (ties to even) in f32 and leaves it in the low
    // mantissa bits: read as bits, no float-to-int conversion (whose saturating `as` would keep
    // LLVM from vectorizing the loop).
    const MAGIC: f32 = 12_582_912.0;
    const MAGIC_BITS: i32 = 0x4B40_0000;
    for (o, v) in out.iter_mut().zip(x) {
        let r = (v * inv + MAGIC).to_bits() as i32 - MAGIC_BITS;
        *o = (r as i8 as u8 ^ flip) as i8;
    }
    max / 127.0
}

impl Int8Matrix {
    /// Quantizes a row-major `[n, k]` f32 matrix per output channel.
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Self {
        let (q, scales) = quantize_rows(w, n, k);
        Self::from_quantized(&q, scales, n, k)
    }

    /// Packs row-major `[n, k]` int8 values with one scale per row (a checkpoint's `weight` and
    /// `weight_scale`).
    pub fn from_quantized(q: &[i8], scales: Vec<f32>, n: usize, k: usize) -> Self {
        assert_eq!(q.len(), n * k);
        assert_eq!(scales.len(), n);
        let kp = k.div_ceil(GROUP) * GROUP;
        let panels = n.div_ceil(PANEL);
        let mut packed = vec![0i8; panels * kp * PANEL];
        for (row, values) in q.chunks_exact(k.max(1)).enumerate().take(n) {
            let base = (row / PANEL) * kp * PANEL + (row % PANEL) * GROUP;
            for (i, &v) in values.iter().enumerate() {
                packed[base + (i / GROUP) * PANEL * GROUP + i % GROUP] = v;
            }
        }
        let col_sums = q
            .chunks_exact(k.max(1))
            .take(n)
            .map(|r| r.iter().map(|&v| v as i32).sum())
            .chain(std::iter::repeat(0))
            .take(n)
            .collect();
        Self {
            n,
            k,
            kp,
            packed,
            scales,
            col_sums,
        }
    }

    /// `(n, k)`: output and input features.
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// The scales, one per output channel.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// The int8 values as row-major `[n, k]` again: the packing's inverse, for its test.
    #[cfg(test)]
    fn values(&self) -> Vec<i8> {
        let mut q = vec![0i8; self.n * self.k];
        for row in 0..self.n {
            let base = (row / PANEL) * self.kp * PANEL + (row % PANEL) * GROUP;
            for i in 0..self.k {
                q[row * self.k + i] = self.packed[base + (i / GROUP) * PANEL * GROUP + i % GROUP];
            }
        }
        q
    }

    /// Bytes held: the packed values, scales and sums.
    pub fn bytes(&self) -> usize {
        self.packed.len() + 8 * self.n
    }

    fn panel(&self, p: usize) -> &[i8] {
        &self.packed[p * self.kp * PANEL..(p + 1) * self.kp * PANEL]
    }
}

/// The integer dot-product kernels; [`Kernel::best`] is what this CPU or build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Portable Rust: the reference the others are tested against, and the fallback.
    Scalar,
    /// x86-64 AVX2: `vpmaddubsw` on |x| and sign-moved weights (no i16 saturation: 2·127² < 2¹⁵).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// x86-64 AVX-512 VNNI: `vpdpbusd` on `q + 128` (u8), the offset removed with the column sums.
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    /// wasm simd128: `i32x4.dot_i16x8_s` on sign-extended bytes.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
    /// wasm relaxed SIMD: `i32x4.relaxed_dot_i8x16_i7x16_add` on |x| (7 bits) and sign-moved
    /// weights, which every implementation computes exactly.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    RelaxedSimd,
}

impl Kernel {
    /// The fastest kernel this CPU (natively, detected at run time) or this wasm build has.
    pub fn best() -> Self {
        *Self::available()
            .last()
            .expect("the scalar kernel is always there")
    }

    /// [`best`](Self::best), or natively the one the `INSTRUCTOR_INT8_KERNEL` environment
    /// variable names (benchmarks and tests compare kernels on one CPU with it).
    pub fn chosen() -> Result<Self, String> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(name) = std::env::var("INSTRUCTOR_INT8_KERNEL") {
            let all = Self::available();
            return all
                .iter()
                .copied()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    let names: Vec<_> = all.iter().map(|k| k.name()).collect();
                    format!(
                        "INSTRUCTOR_INT8_KERNEL={name}: not a kernel this CPU runs (it has {})",
                        names.join(", ")
                    )
                });
        }
        Ok(Self::best())
    }

    /// Every kernel this CPU or build can run, slowest first.
    pub fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut k = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                k.push(Kernel::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                k.push(Kernel::Avx512Vnni);
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        k.push(Kernel::Simd128);
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        k.push(Kernel::RelaxedSimd);
        k
    }

    /// The name `model.info` and the CLI report.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => "avx512-vnni",
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Kernel::Simd128 => "simd128",
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            Kernel::RelaxedSimd => "relaxed-simd",
        }
    }

    /// The XOR applied to quantized activations: `vpdpbusd` takes them unsigned.
    fn flip(self) -> u8 {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => 0x80,
            _ => 0,
        }
    }

    /// [`tile`](Self::tile) for two panels side by side (`second` absent at the end: its half of
    /// `out` is then left as it is). AVX-512 VNNI computes both in one pass, loading each
    /// activation once for 32 channels; the others take one panel at a time.
    fn tile_pair(
        self,
        a: &[i8],
        kp: usize,
        first: &[i8],
        second: Option<&[i8]>,
        out: &mut [[i32; PAIR]; MR],
    ) {
        #[cfg(target_arch = "x86_64")]
        if let (Kernel::Avx512Vnni, Some(second)) = (self, second) {
            assert!(a.len() >= MR * kp && first.len() >= kp * PANEL && second.len() >= kp * PANEL);
            // SAFETY: as in `tile`; the assert bounds every read.
            return unsafe {
                x86::tile_vnni_pair(a.as_ptr(), kp, first.as_ptr(), second.as_ptr(), out)
            };
        }
        let mut half = [[0i32; PANEL]; MR];
        for (i, panel) in [Some(first), second].into_iter().enumerate() {
            if let Some(panel) = panel {
                self.tile(a, kp, panel, &mut half);
                for (o, h) in out.iter_mut().zip(&half) {
                    o[i * PANEL..(i + 1) * PANEL].copy_from_slice(h);
                }
            }
        }
    }

    /// Exact sums `Σₖ a[r, k] · panel[c, k]` for [`MR`] rows of `a` (stride `kp`) and one panel,
    /// before the offset correction.
    fn tile(self, a: &[i8], kp: usize, panel: &[i8], out: &mut [[i32; PANEL]; MR]) {
        assert!(a.len() >= MR * kp && panel.len() >= kp * PANEL);
        match self {
            Kernel::Scalar => tile_scalar(a, kp, panel, out),
            // SAFETY (each arm): the kernel is only constructed where `available` found its CPU
            // features, and the asserts above bound every read.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::tile_avx2(a.as_ptr(), kp, panel.as_ptr(), out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => unsafe { x86::tile_vnni(a.as_ptr(), kp, panel.as_ptr(), out) },
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Kernel::Simd128 => unsafe { wasm::tile_simd128(a.as_ptr(), kp, panel.as_ptr(), out) },
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            Kernel::RelaxedSimd => unsafe {
                wasm::tile_relaxed(a.as_ptr(), kp, panel.as_ptr(), out)
            },
        }
    }
}

fn tile_scalar(a: &[i8], kp: usize, panel: &[i8], out: &mut [[i32; PANEL]; MR]) {
    for (r, acc) in out.iter_mut().enumerate() {
        *acc = [0; PANEL];
        let row = &a[r * kp..(r + 1) * kp];
        for (g, xs) in row.chunks_exact(GROUP).enumerate() {
            let w = &panel[g * PANEL * GROUP..(g + 1) * PANEL * GROUP];
            for (c, ws) in w.chunks_exact(GROUP).enumerate() {
                acc[c] += xs
                    .iter()
                    .zip(ws)
                    .map(|(&x, &w)| x as i32 * w as i32)
                    .sum::<i32>();
            }
        }
    }
}

/// `x · Wᵀ` for row-major `x` `[m, k]`: `[m, n]` in f32. Token rows are split into blocks of
/// 64, one task each on the rayon pool (natively, and in the threaded wasm build).
pub fn matmul(x: &[f32], m: usize, w: &Int8Matrix, kernel: Kernel) -> Vec<f32> {
    let (n, k, kp) = (w.n, w.k, w.kp);
    assert_eq!(
        x.len(),
        m * k,
        "int8 matmul: {} values for {m}×{k}",
        x.len()
    );
    let mut y = vec![0f32; m * n];
    if m == 0 || n == 0 {
        return y;
    }
    let job = Job {
        x,
        k,
        kp,
        n,
        w,
        kernel,
    };
    #[cfg(target_arch = "x86_64")]
    let avx2 = kernel != Kernel::Scalar && std::arch::is_x86_feature_detected!("avx2");
    let block = |(b, y): (usize, &mut [f32])| {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: AVX2 was detected just above.
            return unsafe { job.rows_avx2(b, y) };
        }
        job.rows(b, y)
    };
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    {
        use rayon::prelude::*;
        y.par_chunks_mut(BLOCK_ROWS * n).enumerate().for_each(block);
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    y.chunks_mut(BLOCK_ROWS * n).enumerate().for_each(block);
    y
}

/// One `matmul`, shared by its row blocks.
struct Job<'a> {
    x: &'a [f32],
    k: usize,
    kp: usize,
    n: usize,
    w: &'a Int8Matrix,
    kernel: Kernel,
}

impl Job<'_> {
    /// Block `b` of [`BLOCK_ROWS`] token rows into `y`: quantized once, then every panel.
    #[inline(always)]
    fn rows(&self, b: usize, y: &mut [f32]) {
        let Job {
            x,
            k,
            kp,
            n,
            w,
            kernel,
        } = *self;
        let flip = kernel.flip();
        let offset = if flip != 0 { 128 } else { 0 };
        let rows = y.len() / n;
        let padded = rows.div_ceil(MR) * MR;
        let mut a = vec![flip as i8; padded * kp];
        let mut sx = vec![0f32; padded];
        for r in 0..rows {
            let src = &x[(b * BLOCK_ROWS + r) * k..][..k];
            sx[r] = quantize_row(src, &mut a[r * kp..r * kp + k], flip);
        }
        let mut acc = [[0i32; PAIR]; MR];
        let panels = n.div_ceil(PANEL);
        for p in (0..panels).step_by(2) {
            let c0 = p * PANEL;
            let cols = PAIR.min(n - c0);
            let mut sw = [0f32; PAIR];
            let mut corr = [0i32; PAIR];
            sw[..cols].copy_from_slice(&w.scales[c0..c0 + cols]);
            for (c, s) in corr[..cols].iter_mut().zip(&w.col_sums[c0..c0 + cols]) {
                *c = offset * s;
            }
            let second = (p + 1 < panels).then(|| w.panel(p + 1));
            for g in (0..rows).step_by(MR) {
                kernel.tile_pair(&a[g * kp..], kp, w.panel(p), second, &mut acc);
                for (r, acc) in acc.iter().enumerate().take(rows - g) {
                    let s = sx[g + r];
                    let dst = &mut y[(g + r) * n + c0..][..cols];
                    if let Ok(dst) = <&mut [f32; PAIR]>::try_from(&mut *dst) {
                        // Two whole panels: fixed-size, so the compiler vectorizes it.
                        for c in 0..PAIR {
                            dst[c] = (acc[c] - corr[c]) as f32 * (s * sw[c]);
                        }
                    } else {
                        for (c, d) in dst.iter_mut().enumerate() {
                            *d = (acc[c] - corr[c]) as f32 * (s * sw[c]);
                        }
                    }
                }
            }
        }
    }

    /// [`rows`](Self::rows) compiled for AVX2: the quantization and the dequantization vectorize
    /// 8 wide instead of SSE2's 4 (the x86-64 baseline this crate is built for).
    ///
    /// # Safety
    /// AVX2 must be present.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn rows_avx2(&self, b: usize, y: &mut [f32]) {
        self.rows(b, y)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{GROUP, MR, PAIR, PANEL};
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX2 must be present; `a` holds `MR·kp` bytes and `panel` `kp·PANEL`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn tile_avx2(
        a: *const i8,
        kp: usize,
        panel: *const i8,
        out: &mut [[i32; PANEL]; MR],
    ) {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        for g in 0..kp / GROUP {
            let wp = panel.add(g * PANEL * GROUP) as *const __m256i;
            let w = [_mm256_loadu_si256(wp), _mm256_loadu_si256(wp.add(1))];
            for (r, acc) in acc.iter_mut().enumerate() {
                let x =
                    _mm256_set1_epi32((a.add(r * kp + g * GROUP) as *const i32).read_unaligned());
                let ax = _mm256_sign_epi8(x, x);
                for (acc, w) in acc.iter_mut().zip(w) {
                    let p = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w, x));
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(p, ones));
                }
            }
        }
        for (o, acc) in out.iter_mut().zip(acc) {
            let o = o.as_mut_ptr() as *mut __m256i;
            _mm256_storeu_si256(o, acc[0]);
            _mm256_storeu_si256(o.add(1), acc[1]);
        }
    }

    /// # Safety
    /// AVX-512F and VNNI must be present; `a` holds `MR·kp` bytes (`q + 128`) and `panel`
    /// `kp·PANEL`.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn tile_vnni(
        a: *const i8,
        kp: usize,
        panel: *const i8,
        out: &mut [[i32; PANEL]; MR],
    ) {
        let mut acc = [_mm512_setzero_si512(); MR];
        for g in 0..kp / GROUP {
            let w = _mm512_loadu_si512(panel.add(g * PANEL * GROUP) as *const __m512i);
            for (r, acc) in acc.iter_mut().enumerate() {
                let x =
                    _mm512_set1_epi32((a.add(r * kp + g * GROUP) as *const i32).read_unaligned());
                *acc = _mm512_dpbusd_epi32(*acc, x, w);
            }
        }
        for (o, acc) in out.iter_mut().zip(acc) {
            _mm512_storeu_si512(o.as_mut_ptr() as *mut __m512i, acc);
        }
    }

    /// [`tile_vnni`] for two panels at once: each broadcast activation feeds 32 channels.
    ///
    /// # Safety
    /// As [`tile_vnni`], for both panels.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn tile_vnni_pair(
        a: *const i8,
        kp: usize,
        first: *const i8,
        second: *const i8,
        out: &mut [[i32; PAIR]; MR],
    ) {
        let mut acc = [[_mm512_setzero_si512(); 2]; MR];
        for g in 0..kp / GROUP {
            let w = [
                _mm512_loadu_si512(first.add(g * PANEL * GROUP) as *const __m512i),
                _mm512_loadu_si512(second.add(g * PANEL * GROUP) as *const __m512i),
            ];
            for (r, acc) in acc.iter_mut().enumerate() {
                let x =
                    _mm512_set1_epi32((a.add(r * kp + g * GROUP) as *const i32).read_unaligned());
                acc[0] = _mm512_dpbusd_epi32(acc[0], x, w[0]);
                acc[1] = _mm512_dpbusd_epi32(acc[1], x, w[1]);
            }
        }
        for (o, acc) in out.iter_mut().zip(acc) {
            let o = o.as_mut_ptr() as *mut __m512i;
            _mm512_storeu_si512(o, acc[0]);
            _mm512_storeu_si512(o.add(1), acc[1]);
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
// Indexes read as the register layout the comments describe.
#[allow(clippy::needless_range_loop)]
mod wasm {
    use super::{GROUP, MR, PANEL};
    use std::arch::wasm32::*;

    /// Rows are taken in pairs: V8 has 16 vector registers on x86, and a pair's accumulators,
    /// weights and temporaries fit them.
    ///
    /// # Safety
    /// `a` holds `MR·kp` bytes and `panel` `kp·PANEL`.
    #[target_feature(enable = "simd128")]
    pub unsafe fn tile_simd128(
        a: *const i8,
        kp: usize,
        panel: *const i8,
        out: &mut [[i32; PANEL]; MR],
    ) {
        for r0 in (0..MR).step_by(2) {
            // [row][4 columns][two k pairs]: lane j of the low (high) vector holds columns
            // 2j'… of the pair sums; they are added together at the end.
            let mut acc = [[[i32x4_splat(0); 2]; 4]; 2];
            for g in 0..kp / GROUP {
                let wp = panel.add(g * PANEL * GROUP) as *const v128;
                let mut xs = [i32x4_splat(0); 2];
                for (i, x) in xs.iter_mut().enumerate() {
                    let v = v128_load32_splat(a.add((r0 + i) * kp + g * GROUP) as *const u32);
                    *x = i16x8_extend_low_i8x16(v);
                }
                for v in 0..4 {
                    let w = v128_load(wp.add(v));
                    let (lo, hi) = (i16x8_extend_low_i8x16(w), i16x8_extend_high_i8x16(w));
                    for i in 0..2 {
                        acc[i][v][0] = i32x4_add(acc[i][v][0], i32x4_dot_i16x8(lo, xs[i]));
                        acc[i][v][1] = i32x4_add(acc[i][v][1], i32x4_dot_i16x8(hi, xs[i]));
                    }
                }
            }
            for i in 0..2 {
                for v in 0..4 {
                    // lo = [c0 (k0+k1), c0 (k2+k3), c1 …, c1 …]; hi the same for c2, c3.
                    let (lo, hi) = (acc[i][v][0], acc[i][v][1]);
                    let sum = i32x4_add(
                        i32x4_shuffle::<0, 2, 4, 6>(lo, hi),
                        i32x4_shuffle::<1, 3, 5, 7>(lo, hi),
                    );
                    v128_store(out[r0 + i].as_mut_ptr().add(4 * v) as *mut v128, sum);
                }
            }
        }
    }

    /// # Safety
    /// `a` holds `MR·kp` bytes and `panel` `kp·PANEL`.
    #[cfg(target_feature = "relaxed-simd")]
    #[target_feature(enable = "simd128,relaxed-simd")]
    pub unsafe fn tile_relaxed(
        a: *const i8,
        kp: usize,
        panel: *const i8,
        out: &mut [[i32; PANEL]; MR],
    ) {
        for r0 in (0..MR).step_by(2) {
            let mut acc = [[i32x4_splat(0); 4]; 2];
            for g in 0..kp / GROUP {
                let wp = panel.add(g * PANEL * GROUP) as *const v128;
                let mut ax = [i32x4_splat(0); 2];
                let mut neg = [i32x4_splat(0); 2];
                for i in 0..2 {
                    let x = v128_load32_splat(a.add((r0 + i) * kp + g * GROUP) as *const u32);
                    ax[i] = i8x16_abs(x);
                    neg[i] = i8x16_lt(x, i8x16_splat(0));
                }
                for v in 0..4 {
                    let w = v128_load(wp.add(v));
                    let wn = i8x16_neg(w);
                    for i in 0..2 {
                        let ws = v128_bitselect(wn, w, neg[i]);
                        acc[i][v] = i32x4_relaxed_dot_i8x16_i7x16_add(ws, ax[i], acc[i][v]);
                    }
                }
            }
            for i in 0..2 {
                for v in 0..4 {
                    v128_store(out[r0 + i].as_mut_ptr().add(4 * v) as *mut v128, acc[i][v]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small LCG: the tests need reproducible integers, nothing more.
    struct Lcg(u64);
    impl Lcg {
        fn int(&mut self, bound: i32) -> i32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % (2 * bound as u64 + 1)) as i32 - bound
        }
    }

    /// Integer-valued rows whose largest magnitude is exactly 127, so that quantization keeps
    /// them as they are (scale 1) and the f32 products are the exact integer sums.
    fn int_rows(rng: &mut Lcg, rows: usize, k: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..rows * k).map(|_| rng.int(127) as f32).collect();
        for r in 0..rows {
            v[r * k + (r * 7) % k] = if r % 2 == 0 { 127.0 } else { -127.0 };
        }
        v
    }

    #[test]
    fn every_kernel_gives_the_exact_integer_sums_on_ragged_shapes() {
        let kernels = Kernel::available();
        println!(
            "kernels: {:?}",
            kernels.iter().map(|k| k.name()).collect::<Vec<_>>()
        );
        let mut rng = Lcg(7);
        // m, n, k: none a multiple of the 4-row tile, 16-column panel, 4-byte group or 64-row
        // block, plus the degenerate ones. k ≤ 1040 keeps |Σ| < 2²⁴, exact in f32.
        for &(m, n, k) in &[
            (1, 1, 1),
            (2, 3, 5),
            (5, 17, 7),
            (3, 33, 66),
            (67, 31, 129),
            (130, 47, 1039),
            (9, 16, 4),
        ] {
            let x = int_rows(&mut rng, m, k);
            let w = int_rows(&mut rng, n, k);
            let expect: Vec<f32> = (0..m * n)
                .map(|i| {
                    let (r, c) = (i / n, i % n);
                    (0..k)
                        .map(|j| x[r * k + j] as i64 * w[c * k + j] as i64)
                        .sum::<i64>() as f32
                })
                .collect();
            let wq = Int8Matrix::quantize(&w, n, k);
            assert!(wq.scales().iter().all(|&s| s == 1.0));
            for &kernel in &kernels {
                let got = matmul(&x, m, &wq, kernel);
                let bad = got.iter().zip(&expect).position(|(g, e)| g != e);
                assert!(
                    bad.is_none(),
                    "{} on {m}×{n}×{k}: element {bad:?}",
                    kernel.name()
                );
            }
        }
    }

    #[test]
    fn extremes_do_not_saturate() {
        // Every product at ±127·127 with the same sign: the case vpmaddubsw would saturate on
        // unsigned 255·127 pairs.
        let (m, n, k) = (4, 16, 1040);
        for (xs, ws) in [(127.0, 127.0), (-127.0, 127.0), (-127.0, -127.0)] {
            let x = vec![xs; m * k];
            let w = Int8Matrix::quantize(&vec![ws; n * k], n, k);
            let expect = xs * ws * k as f32;
            for kernel in Kernel::available() {
                let got = matmul(&x, m, &w, kernel);
                assert!(
                    got.iter().all(|&g| g == expect),
                    "{}: {got:?}",
                    kernel.name()
                );
            }
        }
    }

    #[test]
    fn quantization_rounds_to_nearest_within_half_a_step() {
        let mut rng = Lcg(3);
        let (rows, k) = (5, 37);
        let x: Vec<f32> = (0..rows * k).map(|_| rng.int(1000) as f32 * 0.37).collect();
        let (q, s) = quantize_rows(&x, rows, k);
        for r in 0..rows {
            let max = x[r * k..(r + 1) * k]
                .iter()
                .fold(0f32, |m, v| m.max(v.abs()));
            assert_eq!(s[r], max / 127.0);
            for j in 0..k {
                let back = q[r * k + j] as f32 * s[r];
                assert!(
                    (back - x[r * k + j]).abs() <= s[r] * 0.5001,
                    "row {r} col {j}"
                );
            }
        }
        let w = Int8Matrix::from_quantized(&q, s.clone(), rows, k);
        assert_eq!(w.values(), q);
        assert_eq!(quantize_rows(&[0.0; 3], 1, 3), (vec![0; 3], vec![0.0]));
    }
}
