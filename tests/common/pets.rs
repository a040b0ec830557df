//! The watchdog stand-in's sampler: custos appends a byte to a plain file at each keepalive;
//! a thread looks at the file's length every 10 ms and keeps the time of each change (each
//! pet), so that a test can ask for the largest time without a pet in any window.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Seen {
    start: Instant,
    end: Option<Instant>,
    /// When the length changed.
    pets: Vec<Instant>,
    first_len: u64,
    len: u64,
    /// The sampler's own longest sleep (asked: 10 ms): how loaded the machine is.
    late: Duration,
}

pub struct PetSampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<JoinHandle<()>>,
}

fn len(dev: &Path) -> u64 {
    fs::metadata(dev).map(|m| m.len()).unwrap_or(0)
}

impl PetSampler {
    /// Starts sampling `dev` at normal priority.
    pub fn start(dev: &Path) -> PetSampler {
        PetSampler::spawn(dev.to_path_buf(), false)
    }

    /// Same, the sampler running SCHED_FIFO when it may (root), so that a busy machine delays
    /// custos, which is measured, rather than the measurement.
    pub fn start_realtime(dev: &Path) -> PetSampler {
        PetSampler::spawn(dev.to_path_buf(), true)
    }

    fn spawn(dev: PathBuf, realtime: bool) -> PetSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let first = len(&dev);
        let seen = Arc::new(Mutex::new(Seen {
            start: Instant::now(),
            end: None,
            pets: Vec::new(),
            first_len: first,
            len: first,
            late: Duration::ZERO,
        }));
        let (flag, shared) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            if realtime {
                // SAFETY: an all-zero sched_param is valid (musl's has more fields than the
                // priority); this sets the calling thread's policy; failure is harmless.
                unsafe {
                    let mut param: libc::sched_param = std::mem::zeroed();
                    param.sched_priority = 1;
                    libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param);
                }
            }
            let mut prev = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                let (now, l) = (Instant::now(), len(&dev));
                let mut s = shared.lock().expect("sampler lock");
                s.late = s.late.max(now - prev);
                prev = now;
                if l != s.len {
                    s.len = l;
                    s.pets.push(now);
                }
            }
        });
        PetSampler {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Seen {
        self.seen.lock().expect("sampler lock").clone()
    }

    /// Ends the sampling (the end of the last gap).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            self.seen.lock().expect("sampler lock").end = Some(Instant::now());
        }
    }

    pub fn started(&self) -> Instant {
        self.seen().start
    }

    /// When the sampling ended (now while it goes on).
    pub fn ended(&self) -> Instant {
        self.seen().end.unwrap_or_else(Instant::now)
    }

    /// The largest time without a pet that overlaps [from, to]; the start of sampling counts
    /// as a pet, and a pet that never comes counts up to `to`.
    pub fn max_gap(&self, from: Instant, to: Instant) -> Duration {
        let s = self.seen();
        let mut worst = Duration::ZERO;
        let mut prev: Option<Instant> = None;
        for t in std::iter::once(s.start).chain(s.pets).chain([to]) {
            let t = t.min(to);
            if let Some(p) = prev {
                if t > from {
                    worst = worst.max(t.saturating_duration_since(p));
                }
            }
            prev = Some(t);
        }
        worst
    }

    /// The largest gap from the first pet seen to the end (the whole time when there was
    /// none): start-up is not a pass of the loop.
    pub fn max_gap_after_first_pet(&self) -> Duration {
        let (first, end) = (self.seen().pets.first().copied(), self.ended());
        match first {
            Some(f) => self.max_gap(f, end),
            None => end - self.started(),
        }
    }

    /// How many pets were seen (changes of the length).
    pub fn pets(&self) -> usize {
        self.seen().pets.len()
    }

    /// How many bytes the pets added while sampled.
    pub fn grown(&self) -> u64 {
        let s = self.seen();
        s.len.saturating_sub(s.first_len)
    }

    /// The file's length: every pet since it was made.
    pub fn len(&self) -> u64 {
        self.seen().len
    }

    /// The sampler's own longest 10 ms sleep.
    pub fn late(&self) -> Duration {
        self.seen().late
    }
}

impl Drop for PetSampler {
    fn drop(&mut self) {
        self.stop();
    }
}
