//! The global allocator of this project's programs: the `instructor` command, the Python module
//! (`instructor_embed._native`) and the benchmarks. A library cannot choose its users' allocator,
//! so the core crate does not; a Rust program embedding `instructor` can use this one the same
//! way:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: instructor_alloc::Allocator = instructor_alloc::Allocator;
//! ```
//!
//! Why: every candle operation allocates its output, and at instructor-base shapes a batch's
//! activations are megabytes (32 pairs: `[1650, 3072]` f32 is 20 MB). glibc's malloc serves
//! those from fresh mappings (or trims them back to the OS), so each one page-faults in again on
//! first touch: on a 2-vCPU AMD EPYC, int8 encoding spent about a tenth of its time in the
//! kernel's page-fault path. mimalloc with purging off keeps freed pages for the next batch, as
//! ONNX Runtime's arena does; measured with `examples/encode_throughput` on `benches/pairs.jsonl`
//! (instructor-base shape, 2 threads) int8 went from 1,492 to 2,035 tokens/s and f32 from 797 to
//! 830. The cost: the process keeps its peak memory until it exits. `MIMALLOC_PURGE_DELAY` and
//! `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still override these defaults.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Once;

/// mimalloc, its options set before its first allocation.
pub struct Allocator;

/// Indices in mimalloc's `mi_option_e` (mimalloc.h; stable, retired options keep their slots). The
/// `libmimalloc-sys` constants stop short of these.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

static OPTIONS: Once = Once::new();

fn set_options() {
    OPTIONS.call_once(|| {
        // SAFETY: plain stores into mimalloc's option table (no allocation), made once, before
        // this allocator's first allocation; `set_default` leaves options read from the
        // environment as they are.
        unsafe {
            // -1: never return freed pages to the OS.
            libmimalloc_sys::mi_option_set_default(PURGE_DELAY, -1);
            // 1: commit each arena as it is reserved, rather than page by page.
            libmimalloc_sys::mi_option_set_default(ARENA_EAGER_COMMIT, 1);
        }
    });
}

// SAFETY: every call is forwarded to mimalloc's own `GlobalAlloc`, which upholds the contract.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        set_options();
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        set_options();
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}
