//! A team of helper threads that stay awake between short jobs, for parallel work started outside
//! the engine's pool (inference called from Node's thread: one token at a time).
//!
//! Why not the pool: handing a job to a rayon pool from a foreign thread parks the caller until a
//! pool thread has run it, and a pool thread that went to sleep between two tokens takes a
//! futex wake-up to start. On 2-vCPU VMs each of those costs ~15–30 µs, while a whole batch-1
//! token of a small model takes ~70 µs, so the pool would make batch-1 generation slower than one
//! thread. Here the caller takes
//! part in its own job, and idle helpers poll for the next one for [`SPIN`] before they sleep, so
//! a job handed to a polling helper starts within a cache-line transfer (~0.1–1 µs).
//!
//! Protocol: a job is `parts` independent closures `f(0..parts)`. The caller publishes it in one
//! 64-bit claim word — epoch (32 bits) | parts (16) | next unclaimed part (16) — and every
//! participant, the caller included, claims parts by compare-and-swap on that word until none is
//! left. The caller then waits for the parts claimed by helpers to finish, so the closure, which
//! borrows the caller's stack, outlives every use. A helper sleeping through a job does no harm:
//! the caller runs the parts it leaves. Which thread runs a part never changes what the part
//! computes, so results do not depend on scheduling.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle helper polls for a new job before it sleeps. Long enough to span the gap
/// between two tokens of a generation loop in JavaScript (a few µs), short enough that a team
/// left idle gives its cores back quickly.
const SPIN: Duration = Duration::from_micros(500);

/// Parts per job at most (the claim word holds them in 16 bits).
pub const MAX_PARTS: usize = u16::MAX as usize;

type PartFn<'a> = dyn Fn(usize) + Sync + 'a;

/// What helpers read through the job pointer: the caller's closure.
struct JobRef<'a> {
    run: &'a PartFn<'a>,
}

fn pack(epoch: u32, parts: usize, next: usize) -> u64 {
    ((epoch as u64) << 32) | ((parts as u64) << 16) | next as u64
}

fn epoch_of(claim: u64) -> u32 {
    (claim >> 32) as u32
}

fn parts_of(claim: u64) -> usize {
    ((claim >> 16) & 0xffff) as usize
}

fn next_of(claim: u64) -> usize {
    (claim & 0xffff) as usize
}

/// State shared by the caller and the helpers.
struct Shared {
    claim: AtomicU64,
    /// The current job's `JobRef` (valid while a part of the current epoch is claimed and not done).
    job: AtomicPtr<()>,
    /// Parts of the current job finished by helpers.
    done_by_helpers: AtomicUsize,
    /// A part run by a helper panicked (the caller re-raises it).
    panicked: AtomicBool,
    /// Helpers asleep on `wake`.
    sleeping: AtomicUsize,
    shutdown: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Shared {
    /// Claims the next part of job `epoch`, or None when none is left (or the job has closed).
    fn claim(&self, epoch: u32) -> Option<usize> {
        let mut current = self.claim.load(Ordering::Acquire);
        loop {
            if epoch_of(current) != epoch || next_of(current) >= parts_of(current) {
                return None;
            }
            match self.claim.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(next_of(current)),
                Err(seen) => current = seen,
            }
        }
    }
}

/// The caller's side: helpers, and the epoch of the last job.
pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    epoch: u32,
}

impl Team {
    /// Starts `helpers` helper threads (polling, then asleep until the first job).
    pub fn new(helpers: usize) -> Team {
        let shared = Arc::new(Shared {
            claim: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done_by_helpers: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleeping: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let helpers = (0..helpers)
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("rnnkit-team-{i}"))
                    .spawn(move || helper_loop(&shared))
                    .expect("starting an rnnkit team thread")
            })
            .collect();
        Team { shared, helpers, epoch: 0 }
    }

    /// Number of helper threads (the caller makes one more participant).
    pub fn helpers(&self) -> usize {
        self.helpers.len()
    }

    /// Runs `run(0)`, …, `run(parts − 1)`, each exactly once, on the calling thread and the
    /// helpers; returns when all have finished. A panic in a part is raised here after every
    /// part has stopped.
    pub fn run(&mut self, parts: usize, run: &PartFn<'_>) {
        assert!(parts <= MAX_PARTS, "team: {parts} parts, at most {MAX_PARTS}");
        let shared = &*self.shared;
        self.epoch = self.epoch.wrapping_add(1);
        let epoch = self.epoch;
        let job = JobRef { run };
        shared.done_by_helpers.store(0, Ordering::Relaxed);
        shared.panicked.store(false, Ordering::Relaxed);
        shared.job.store(&job as *const JobRef as *mut (), Ordering::Relaxed);
        // SeqCst store then SeqCst load of `sleeping`, against the helper's SeqCst increment of
        // `sleeping` then load of the claim: one of the two sides sees the other, so a helper
        // never sleeps through a job it was not woken for.
        shared.claim.store(pack(epoch, parts, 0), Ordering::SeqCst);
        if shared.sleeping.load(Ordering::SeqCst) > 0 {
            let _guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }
        // Closes the job and waits for the helpers' parts even when one of ours panics: they
        // borrow `job` and whatever `run` captured.
        let mut closer = CloseOnDrop { shared, epoch, parts, claimed_here: 0 };
        while let Some(part) = shared.claim(epoch) {
            closer.claimed_here += 1;
            run(part);
        }
        drop(closer);
        if shared.panicked.load(Ordering::Acquire) {
            panic!("rnnkit: a part of a parallel job panicked on a team thread");
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        {
            let _guard = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for helper in self.helpers.drain(..) {
            // A helper only exits through the shutdown flag; its parts never unwind out of it.
            let _ = helper.join();
        }
    }
}

/// Ends a job: no part can be claimed any more, and every claimed part has finished.
struct CloseOnDrop<'a> {
    shared: &'a Shared,
    epoch: u32,
    parts: usize,
    /// Parts the caller claimed (finished, or unwinding now).
    claimed_here: usize,
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        let before = self.shared.claim.swap(pack(self.epoch, self.parts, self.parts), Ordering::AcqRel);
        let claimed_by_helpers = next_of(before).min(self.parts) - self.claimed_here;
        let mut spins = 0u32;
        while self.shared.done_by_helpers.load(Ordering::Acquire) < claimed_by_helpers {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// A helper: polls for a job for [`SPIN`], sleeps when none comes, claims parts while any is left.
fn helper_loop(shared: &Shared) {
    let mut seen = epoch_of(shared.claim.load(Ordering::Acquire));
    loop {
        let mut idle_since = Instant::now();
        let mut polls = 0u32;
        loop {
            if shared.shutdown.load(Ordering::Relaxed) {
                return;
            }
            if epoch_of(shared.claim.load(Ordering::Acquire)) != seen {
                break;
            }
            polls = polls.wrapping_add(1);
            if !polls.is_multiple_of(64) || idle_since.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.sleeping.fetch_add(1, Ordering::SeqCst);
            let guard = shared
                .wake
                .wait_while(guard, |_| {
                    epoch_of(shared.claim.load(Ordering::SeqCst)) == seen && !shared.shutdown.load(Ordering::SeqCst)
                })
                .unwrap_or_else(|e| e.into_inner());
            shared.sleeping.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
            idle_since = Instant::now();
        }
        seen = epoch_of(shared.claim.load(Ordering::Acquire));
        while let Some(part) = shared.claim(seen) {
            // SAFETY: the part of job `seen` claimed just above keeps that job open: its caller
            // waits in `CloseOnDrop` until this part is counted done, so `JobRef` (on the
            // caller's stack) and the closure it points to are alive. The pointer was stored
            // before the claim word that the successful claim read (release/acquire).
            let job = unsafe { &*(shared.job.load(Ordering::Acquire) as *const JobRef) };
            if catch_unwind(AssertUnwindSafe(|| (job.run)(part))).is_err() {
                shared.panicked.store(true, Ordering::Release);
            }
            shared.done_by_helpers.fetch_add(1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Every part runs exactly once, with helpers polling (jobs back to back) and asleep (after
    /// an idle pause), and with more parts than threads.
    #[test]
    fn every_part_runs_exactly_once() {
        let mut team = Team::new(2);
        for (round, parts) in [1usize, 2, 3, 7, 64, 5].into_iter().enumerate() {
            if round == 4 {
                std::thread::sleep(SPIN * 4);
            }
            let counts: Vec<AtomicU32> = (0..parts).map(|_| AtomicU32::new(0)).collect();
            team.run(parts, &|part| {
                counts[part].fetch_add(1, Ordering::Relaxed);
            });
            let counts: Vec<u32> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            assert_eq!(counts, vec![1; parts], "{parts} parts");
        }
    }

    /// Helpers take part: with slow parts, some run on a thread other than the caller's.
    #[test]
    fn helpers_take_part_in_a_job() {
        let mut team = Team::new(1);
        let caller = std::thread::current().id();
        let mut elsewhere = 0;
        for _ in 0..20 {
            let threads = Mutex::new(Vec::new());
            team.run(4, &|_| {
                std::thread::sleep(Duration::from_millis(2));
                threads.lock().unwrap().push(std::thread::current().id());
            });
            elsewhere += threads.into_inner().unwrap().iter().filter(|&&t| t != caller).count();
        }
        assert!(elsewhere > 0, "no part ran on the helper in 20 jobs of 4 slow parts");
    }

    /// A panic in a part, on the caller or on a helper, reaches the caller after the job has
    /// stopped, and the team still works afterwards.
    #[test]
    fn a_panicking_part_is_raised_in_the_caller() {
        let mut team = Team::new(1);
        for bad in 0..4 {
            let result = catch_unwind(AssertUnwindSafe(|| {
                team.run(4, &|part| {
                    std::thread::sleep(Duration::from_millis(1));
                    assert_ne!(part, bad, "part {bad} fails");
                })
            }));
            assert!(result.is_err(), "part {bad}'s panic was lost");
        }
        let ran = AtomicU32::new(0);
        team.run(3, &|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 3);
    }
}
