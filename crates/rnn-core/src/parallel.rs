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
//!
//! Two ways to run a split job ([`for_each_index`], [`for_each_mut`]): inside the pool (work
//! handed to it with [`install`]) a rayon parallel iterator; from any other thread (training
//! steps on their training thread, inference called from Node's thread) the caller works with a
//! team (`parallel/team.rs`) of helpers that stay awake between short jobs, which makes
//! splitting pay for jobs of a few microseconds (one time step's products, one token's at
//! batch 1). One caller holds the team at a time; a concurrent caller runs its job alone.

mod team;

use rayon::iter::{IndexedParallelIterator, IntoParallelIterator, ParallelIterator};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, Mutex, OnceLock, RwLock, TryLockError};
use team::Team;

static POOL: OnceLock<RwLock<Arc<ThreadPool>>> = OnceLock::new();

/// The team for callers outside the pool (`threads() − 1` helpers), built on first use and
/// rebuilt when the thread count changes. One caller at a time: a concurrent caller runs its
/// job alone (the other threads are busy with the first caller's job anyway).
static TEAM: Mutex<Option<Team>> = Mutex::new(None);

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

/// Runs `f(0)`, …, `f(count − 1)`, each on one thread: on the pool's threads when called from
/// one of them, otherwise on the calling thread and the team's helpers (on the calling thread
/// alone when the pool has one thread or another caller holds the team). The calls must be
/// independent; then results never depend on which thread ran what. Allocates nothing.
pub fn for_each_index(count: usize, f: impl Fn(usize) + Sync) {
    if count <= 1 {
        return (0..count).for_each(f);
    }
    let pool = pool();
    if pool.current_thread_index().is_some() {
        return (0..count).into_par_iter().with_max_len(1).for_each(&f);
    }
    let helpers = pool.current_num_threads() - 1;
    drop(pool);
    let mut team = match TEAM.try_lock() {
        Ok(team) => team,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return (0..count).for_each(f),
    };
    if helpers == 0 {
        *team = None;
        return (0..count).for_each(f);
    }
    if team.as_ref().map(Team::helpers) != Some(helpers) {
        *team = None;
        *team = Some(Team::new(helpers));
    }
    team.as_mut().expect("built above").run(count, &f);
}

/// [`for_each_index`] over the items of a slice: `f` gets each item mutably, on one thread.
pub fn for_each_mut<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    let base = ItemsPtr(items.as_mut_ptr());
    let len = items.len();
    for_each_index(len, |i| {
        let base = &base;
        assert!(i < len);
        // SAFETY: `for_each_index` runs each index below `len` once, so every `&mut` item is
        // unique; `items` is borrowed mutably for the whole call.
        f(unsafe { &mut *base.0.add(i) })
    });
}

/// Work (multiply-adds) below which a split job runs on one thread: a fork-join on the team
/// costs about a microsecond, on the pool a few (two cross-thread wake-ups).
pub fn min_split_work() -> usize {
    if pool().current_thread_index().is_some() {
        1 << 20
    } else {
        1 << 16
    }
}

/// The items of [`for_each_mut`], shared with the team's threads.
struct ItemsPtr<T>(*mut T);
// SAFETY: each item is handed to one thread at a time (see `for_each_mut`); T: Send.
unsafe impl<T: Send> Sync for ItemsPtr<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_threads_replaces_the_pool_and_work_runs_inside_it() {
        // One test touches the global pool, so the assertions cannot race with another test.
        set_threads(3);
        assert_eq!(threads(), 3);
        let inside = install(rayon::current_num_threads);
        assert_eq!(inside, 3, "install runs on the engine's pool, not rayon's global one");
        set_threads(1);
        assert_eq!(threads(), 1);
        set_threads(0);
        assert_eq!(threads(), default_threads());
    }
}
