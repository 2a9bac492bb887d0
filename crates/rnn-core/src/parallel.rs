//! The engine's own thread pool. Every parallel kernel (the threaded GEMM, the sharded loops)
//! runs inside it, never in rayon's global pool, so the engine's thread count is one setting
//! that the host application (Node's libuv threads, a user's own rayon work) does not disturb.
//!
//! Size: `RNNKIT_THREADS` (read once, on first use; a positive integer) or, by default, the
//! available parallelism of the process. [`set_threads`] replaces the pool: work started after
//! the call uses the new pool; work already running finishes on the old one (it holds its own
//! reference), so changing the count never interrupts a training step.
//!
//! Determinism: the kernels split work into shards that depend only on the shapes and on the
//! thread count, and each output element is written by exactly one shard in a fixed order
//! (no reduction whose order depends on scheduling). Same inputs and thread count ⇒ same bits.
//! Changing the thread count may change the last bits of results (the GEMM's blocking changes).

use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, OnceLock, RwLock};

static POOL: OnceLock<RwLock<Arc<ThreadPool>>> = OnceLock::new();

/// The thread count to start with: `RNNKIT_THREADS` if it is a positive integer, else the
/// available parallelism (1 when unknown).
fn default_threads() -> usize {
    std::env::var("RNNKIT_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n >= 1)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build(n: usize) -> Arc<ThreadPool> {
    let pool = ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("rnnkit-{i}"))
        .build()
        .expect("creating the rnnkit thread pool");
    Arc::new(pool)
}

fn cell() -> &'static RwLock<Arc<ThreadPool>> {
    POOL.get_or_init(|| RwLock::new(build(default_threads())))
}

/// The current pool (a clone of its handle: it stays alive while the caller uses it).
pub fn pool() -> Arc<ThreadPool> {
    cell().read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Number of threads of the engine's pool.
pub fn threads() -> usize {
    pool().current_num_threads()
}

/// Replaces the pool by one of `n` threads (`n` = 0 means the default: `RNNKIT_THREADS` or the
/// available parallelism). Applies to work started after the call.
pub fn set_threads(n: usize) {
    let n = if n == 0 { default_threads() } else { n };
    let new = build(n);
    *cell().write().unwrap_or_else(|e| e.into_inner()) = new;
}

/// Runs `f` inside the engine's pool (directly when already on one of its threads).
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let pool = pool();
    if pool.current_thread_index().is_some() {
        return f();
    }
    pool.install(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_threads_replaces_the_pool_and_work_runs_inside_it() {
        // One test touches the global pool, so the assertions cannot race with another test.
        set_threads(3);
        assert_eq!(threads(), 3);
        let inside = install(|| rayon::current_num_threads());
        assert_eq!(inside, 3, "install runs on the engine's pool, not rayon's global one");
        set_threads(1);
        assert_eq!(threads(), 1);
        set_threads(0);
        assert_eq!(threads(), default_threads());
    }
}
