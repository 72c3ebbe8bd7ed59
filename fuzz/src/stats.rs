//! What a fuzz run reached, printed once when the process exits:
//!
//! ```text
//! paychan-fuzz: voucher_v1: accepted 81234 of 1290311 inputs
//! paychan-fuzz: paywall: accepted 1203 of 40311 inputs; responses 200:2210 400:30011 402:9120
//! ```
//!
//! "Accepted" is the decoder's (or the live path's) success path, where the
//! round-trip and accounting assertions run. libFuzzer ends a run (time or
//! run limit, `-runs=0` over a corpus) with `exit`, which runs the hook; a
//! crash aborts without it.
use std::{
    collections::BTreeMap,
    io::Write,
    sync::{
        Mutex, Once, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

static TARGET: OnceLock<&'static str> = OnceLock::new();
static INPUTS: AtomicU64 = AtomicU64::new(0);
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static STATUSES: Mutex<BTreeMap<u16, u64>> = Mutex::new(BTreeMap::new());

#[allow(unsafe_code)]
mod libc {
    // SAFETY: `atexit` is the C library's; it stores the pointer to a
    // function that lives for the whole process and takes no arguments.
    unsafe extern "C" {
        pub safe fn atexit(callback: extern "C" fn()) -> core::ffi::c_int;
    }
}

/// Counts one input of `target`, and whether it reached the accepting path.
pub fn input(target: &'static str, accepted: bool) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let _ = TARGET.set(target);
        if libc::atexit(report) != 0 {
            let _ = writeln!(std::io::stderr(), "paychan-fuzz: no exit hook, no stats");
        }
    });
    INPUTS.fetch_add(1, Ordering::Relaxed);
    if accepted {
        ACCEPTED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one HTTP response of a live-path harness.
pub fn status(code: u16) {
    let mut statuses = STATUSES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *statuses.entry(code).or_default() += 1;
}

/// Whether `PAYCHAN_FUZZ_TRACE` is set: the live-path harnesses then print
/// each request and its answer (to read what a crashing input does).
pub fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PAYCHAN_FUZZ_TRACE").is_some())
}

/// Prints one request and its answer when [`tracing`].
pub fn trace(request: &str, status: u16, body: &[u8]) {
    if tracing() {
        let body = String::from_utf8_lossy(body);
        let _ = writeln!(std::io::stderr(), "{request} -> {status} {body:.300}");
    }
}

extern "C" fn report() {
    let target = TARGET.get().copied().unwrap_or("?");
    let mut line = format!(
        "paychan-fuzz: {target}: accepted {} of {} inputs",
        ACCEPTED.load(Ordering::Relaxed),
        INPUTS.load(Ordering::Relaxed)
    );
    let statuses = STATUSES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !statuses.is_empty() {
        line.push_str("; responses");
        for (code, n) in statuses.iter() {
            line.push_str(&format!(" {code}:{n}"));
        }
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}
