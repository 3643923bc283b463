//! Crash points at the commit boundaries of the payment cycle (issue #9, "Faults").
//!
//! [`hit`] marks a place where a crash must leave the store consistent and the cycle
//! resumable: before and after each transaction's commit, and between a call to an outside
//! system and the commit that records it. Without the `failpoints` feature it compiles to
//! nothing. With it (only in test builds: the root package turns it on from its
//! dev-dependencies), the `fail` crate reads `FAILPOINTS` from the environment
//! ([`setup`], called by `ykt`'s entry point):
//!
//! - `FAILPOINTS=<point>=panic`: the process panics at the point (a crashed operation).
//! - `FAILPOINTS=<point>=return`: the process prints `YKT-FAILPOINT <point>` on stderr and
//!   waits, so a test can `kill -9` it exactly there (a killed process or a lost machine).
//!
//! Every point is in [`POINTS`], the one list the crash-point matrix
//! (`tests/crash_points.rs`) runs through; [`hit`] refuses a name that is not in it.

/// Every crash point, in the order a payment cycle reaches them.
pub const POINTS: &[&str] = &[
    // Roster import: lines, issues, batches, control totals and audit in one transaction.
    "import.before_commit",
    "import.after_commit",
    // A workflow step's outside-system call (plan, funding request, approval, funding
    // confirmation, publication) done, its transition not yet recorded.
    "step.after_port_call",
    // The transition, its ledger moves and audit entry.
    "step.before_commit",
    "step.after_commit",
    // Lines marked in flight as new attempts.
    "dispatch.before_commit",
    "dispatch.after_commit",
    // The instruction delivered to the bank, not yet recorded as sent.
    "dispatch.after_send",
    // Attempts recorded as sent.
    "sent.before_commit",
    "sent.after_commit",
    // The bank's results fetched, not yet applied.
    "results.after_fetch",
    // Results applied: line states, anomalies, the payment's ledger entry, audit.
    "results.before_commit",
    "results.after_commit",
    // A failed line corrected.
    "correct.before_commit",
    "correct.after_commit",
    // A refund done by the treasury, not yet recorded.
    "refund.after_port_call",
    // The refund, its ledger moves and audit entry.
    "refund.before_commit",
    "refund.after_commit",
    // Heilongjiang: a message to the budget system archived (before it is sent).
    "hlj.archive.before_commit",
    "hlj.archive.after_commit",
    // Heilongjiang: the agent bank's per-line returns recorded.
    "hlj.returns.before_commit",
    "hlj.returns.after_commit",
    // Sichuan: the pre-payment publicity started (公示).
    "sichuan.publicity.before_commit",
    "sichuan.publicity.after_commit",
    // Sichuan: an objection raised or resolved during the publicity.
    "sichuan.objection.before_commit",
    "sichuan.objection.after_commit",
    // Sichuan: the department's funding plan declared (用款计划).
    "sichuan.plan.before_commit",
    "sichuan.plan.after_commit",
    // Sichuan: finance's procedural review recorded (程序性复核).
    "sichuan.review.before_commit",
    "sichuan.review.after_commit",
    // Sichuan: a voucher (funding of the zero-balance account, or a red-letter return)
    // answered by the treasury, not yet recorded; then recorded.
    "sichuan.voucher.after_port_call",
    "sichuan.voucher.before_commit",
    "sichuan.voucher.after_commit",
    // Sichuan: a payment instruction written to the bank's drop, not yet recorded; a file
    // exchanged with the bank (instruction or result) recorded.
    "sichuan.bank_file.after_write",
    "sichuan.bank_file.before_commit",
    "sichuan.bank_file.after_commit",
    // Sichuan: the post-payment publicity's dual verification recorded (双核对).
    "sichuan.verification.before_commit",
    "sichuan.verification.after_commit",
    // Henan: the order assigned its agent bank and budget unit (the finance review).
    "henan.order.before_commit",
    "henan.order.after_commit",
    // Henan: the order pushed to the budget system, its payment request not yet recorded;
    // then recorded.
    "henan.push.after_port_call",
    "henan.push.before_commit",
    "henan.push.after_commit",
    // Henan: the treasury's payment to the agent bank recorded.
    "henan.funded.before_commit",
    "henan.funded.after_commit",
    // Henan: an order's detail released for the bank to pull (the bank notified).
    "henan.release.before_commit",
    "henan.release.after_commit",
    // Henan (the bank interface of `ykt serve`): a post of the bank's results kept, not yet
    // applied, in the transaction that applies it (`results.*` then end that transaction).
    "henan.post.before_commit",
    // Henan: a hand-over of paid totals received (`ykt serve`) or checked.
    "henan.handover.before_commit",
    "henan.handover.after_commit",
    // Henan: the business date and signatures of a correction or refund recorded (before
    // the correction or refund itself, which a retry then completes).
    "henan.line_event.before_commit",
    "henan.line_event.after_commit",
];

/// Read `FAILPOINTS` (with the `failpoints` feature; otherwise nothing). Keep the returned
/// guard alive for the life of the process.
pub fn setup() -> Guard {
    #[cfg(feature = "failpoints")]
    {
        Guard(Some(fail::FailScenario::setup()))
    }
    #[cfg(not(feature = "failpoints"))]
    {
        Guard(())
    }
}

/// Whether this build has crash points (the test build of `ykt`).
pub const ENABLED: bool = cfg!(feature = "failpoints");

/// Keeps the fail-point configuration for the life of the process.
#[cfg(feature = "failpoints")]
pub struct Guard(#[allow(dead_code)] Option<fail::FailScenario<'static>>);
#[cfg(not(feature = "failpoints"))]
pub struct Guard(());

/// A crash point (see the module docs). Without the feature: nothing.
///
/// Test builds also read two variables, so that the matrix can reach every occurrence of a
/// point in a cycle that spans many processes:
/// - `FAILPOINT_TRACE=<file>`: every point reached is appended to the file, one a line.
/// - `FAILPOINT_NTH=<n>` with `FAILPOINT_COUNT=<file>`: the configured point acts only
///   at its `n`-th occurrence (1-based), counted in the file across processes.
#[inline(always)]
pub fn hit(name: &'static str) {
    #[cfg(feature = "failpoints")]
    reached(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

#[cfg(feature = "failpoints")]
fn reached(name: &'static str) {
    use std::io::Write;
    assert!(
        POINTS.contains(&name),
        "crash point {name} is not in ykt_store::failpoints::POINTS"
    );
    if let Ok(path) = std::env::var("FAILPOINT_TRACE") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("FAILPOINT_TRACE {path}: {e}"));
        let _ = writeln!(f, "{name}");
    }
    let configured = std::env::var("FAILPOINTS")
        .is_ok_and(|v| v.split(';').any(|p| p.split('=').next() == Some(name)));
    if !configured {
        return;
    }
    if let (Ok(nth), Ok(path)) = (
        std::env::var("FAILPOINT_NTH"),
        std::env::var("FAILPOINT_COUNT"),
    ) {
        let nth: u64 = nth.parse().unwrap_or(1);
        let seen: u64 = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
            + 1;
        std::fs::write(&path, seen.to_string())
            .unwrap_or_else(|e| panic!("FAILPOINT_COUNT {path}: {e}"));
        if seen != nth {
            return;
        }
    }
    if fail::eval(name, |_| ()).is_some() {
        let mut e = std::io::stderr();
        let _ = writeln!(e, "YKT-FAILPOINT {name}");
        let _ = e.flush();
        // Wait to be killed (the test sends SIGKILL): never return into the operation.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
