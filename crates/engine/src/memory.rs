//! The process allocator's settings, applied before the first thread starts.
//!
//! glibc's malloc gives every thread that meets contention an arena of its own
//! (up to 8 per core) and hands freed memory back to the system only from the
//! top of each arena. A long-running stream (stage 04, a scheduler or an
//! executor serving thousands of jobs) runs its tasks on ever-changing tokio
//! and Ballista threads, so freed batches stay scattered over many arenas and
//! the resident size creeps up by tens of KiB per micro-batch. One arena per
//! core, with freed pages handed back after each batch, keeps it flat
//! (`bench/stream_soak.py`; figures in docs/benchmarks.md, "Long-running stream (soak)").

/// Limits glibc's malloc arenas to one per core (at least two), unless the
/// user set `MALLOC_ARENA_MAX` (glibc reads that itself). Call first thing in
/// `main`, before any runtime or thread exists. A no-op off glibc.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes a malloc tunable; no thread allocates concurrently yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Hands the pages of freed memory back to the system (glibc keeps them in
/// its arenas, free but resident). A long-running loop calls it between
/// iterations (stage 04 after each batch): a few milliseconds, and the
/// resident size then follows what is really in use. A no-op off glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Stack of each runtime thread. DataFusion plans and optimises recursively
/// (deep expression trees: stage 05's v2 detector); tokio's default of 2 MiB
/// overflows there when the planner is not optimised (the `quick` profile).
/// Untouched stack pages cost no memory.
const THREAD_STACK: usize = 8 << 20;

/// The multi-threaded tokio runtime of our binaries, built after
/// [`limit_malloc_arenas`] (what `#[tokio::main]` would build, too late for it).
pub fn main_runtime() -> tokio::runtime::Runtime {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(THREAD_STACK)
        .enable_all()
        .build()
        .expect("the tokio runtime starts (threads and I/O driver)")
}
