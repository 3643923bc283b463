//! The bodies of the fuzz targets (issue #9, "Bad input"), one function per target.
//!
//! Each is called by its libFuzzer binary (`fuzz_targets/NAME.rs`, run with cargo-fuzz) and by
//! the workspace test `tests/fuzz_replay.rs`, which replays every committed corpus file
//! (`corpus/NAME/`) on stable. A target fails by panicking: the parsers must return an error
//! for any input, never panic, and never put a full personal identifier in an error message.
//!
//! The parsers are the real ones: the roster and register readers (`ykt-files`, CSV and xlsx
//! by content), Sichuan's bank result files and treasury receipts (`ykt_http::sichuan`) and
//! the simulators' readers of what the platform sends (instruction files, 8202 vouchers),
//! Heilongjiang's GB18030 XML replies (plan receipts, 5201 notices, returns, refunds) on both
//! sides, Henan's bank result posts and budget-system replies on both sides, and the kernel's
//! identifier, period and money parsers.

use std::path::PathBuf;

/// True when `s` has a run of at least `n` ASCII digits: what a leaked resident ID (18),
/// bank account (16-19) or phone number (11) looks like.
pub fn has_digit_run(s: &str, n: usize) -> bool {
    let mut run = 0;
    for b in s.bytes() {
        if b.is_ascii_digit() {
            run += 1;
            if run >= n {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// An error message shown to an operator must not carry a full identifier from the input.
fn assert_no_identifier(what: &str, message: &str) {
    assert!(
        !has_digit_run(message, 11),
        "{what}: error message carries 11+ digits (a full identifier?): {message}"
    );
}

/// A scratch file for the readers that take a path, one per thread, rewritten each run.
fn scratch(data: &[u8], ext: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("ykt-fuzz");
    let _ = std::fs::create_dir_all(&dir);
    let tid = format!("{:?}", std::thread::current().id());
    let tid: String = tid.chars().filter(|c| c.is_ascii_digit()).collect();
    let path = dir.join(format!("{}-{tid}.{ext}", std::process::id()));
    std::fs::write(&path, data).expect("scratch file");
    path
}

/// The roster reader on a file (CSV in any of its encodings, or xlsx: the reader tells by
/// content, so one target covers both): open, map the header, read every line.
pub fn roster(data: &[u8]) {
    for ext in ["csv", "xlsx"] {
        // A zip only under .xlsx and text only under .csv: each file is read once.
        if data.starts_with(b"PK") != (ext == "xlsx") {
            continue;
        }
        let path = scratch(data, ext);
        match ykt_files::RosterReader::open(&path) {
            Ok(r) => {
                for (i, line) in r.enumerate() {
                    if let Err(e) = line {
                        assert_no_identifier("roster line", &e.to_string());
                    }
                    assert!(i <= data.len() + 1, "more lines than bytes");
                }
            }
            Err(e) => assert_no_identifier("roster open", &e.to_string()),
        }
    }
}

/// The reference registers (card registry, death register, region table) on a file.
pub fn registers(data: &[u8]) {
    let ext = if data.starts_with(b"PK") {
        "xlsx"
    } else {
        "csv"
    };
    let path = scratch(data, ext);
    let today = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    let check = |what: &str, problems: &[ykt_files::RowProblem]| {
        for p in problems {
            assert_no_identifier(what, &p.to_string());
        }
    };
    match ykt_files::registry::read_card_registry(&path, today) {
        Ok(l) => check("card registry", &l.problems),
        Err(e) => assert_no_identifier("card registry", &e.to_string()),
    }
    match ykt_files::registry::read_death_register(&path, today) {
        Ok(l) => check("death register", &l.problems),
        Err(e) => assert_no_identifier("death register", &e.to_string()),
    }
    // The region table holds no personal data: its 12-digit codes are the public statistical
    // division codes, and an operator needs the wrong one quoted (`行政区划代码「23010000000…」`,
    // found by the first fuzz run of this target). It must only never panic.
    match ykt_files::registry::read_region_table(&path) {
        Ok(l) => l.problems.iter().for_each(|p| drop(p.to_string())),
        Err(e) => drop(e.to_string()),
    }
}

/// Sichuan: the bank's result file as the platform reads it from the file drop, and the
/// platform's instruction file as the simulated bank reads it.
pub fn sichuan_bank(data: &[u8]) {
    // The order number the platform expects is the one in the file's header when there is
    // one, so that the deeper checks are reached.
    let order = ykt_http::sichuan::from_gb18030(data)
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split('|').nth(1).unwrap_or("").to_owned())
        })
        .unwrap_or_default();
    if let Ok((_, records, total)) = ykt_http::sichuan::bank::parse_result(data, &order) {
        let sum = records
            .iter()
            .try_fold(ykt_kernel::Fen(0), |s, r| s.checked_add(r.amount));
        assert_eq!(
            sum,
            Some(total),
            "accepted result file whose lines do not add up"
        );
    }
    let _ = ykt_sim::sichuan::bank::read_instruction(data);
}

/// Sichuan: the treasury's receipt as the platform reads it, and the 8202 voucher as the
/// simulated treasury reads it.
pub fn sichuan_voucher(data: &[u8]) {
    let _ = ykt_http::sichuan::voucher::parse_receipt(data);
    if let Some(text) = ykt_http::sichuan::from_gb18030(data)
        && let Ok(root) = ykt_sim::sichuan::xml::parse(&text)
        && let Some(v) = root.child("Voucher")
    {
        let _ = ykt_sim::sichuan::treasury::check(v);
    }
}

/// Heilongjiang: every reply the platform reads from the budget system (plan receipt, 5201
/// voucher notice, return vouchers, refund receipt), and the 5201 voucher as the simulated
/// budget system and agent bank read it.
#[cfg(feature = "province-heilongjiang")]
pub fn heilongjiang_xml(data: &[u8]) {
    use ykt_http::heilongjiang::{messages, xml};
    if let Ok(n) = xml::parse(data) {
        let _ = messages::read_plan_receipt(&n);
        let _ = messages::read_notice(&n);
        let order = n.text_of("OrderNo").to_owned();
        let _ = messages::read_returns(&n, &order);
        let _ = messages::read_refund(&n);
        let _ = messages::read_amt(n.text_of("PayAmt"));
        let _ = messages::iso(n.text_of("PayDate"));
    }
    if let Ok(root) = ykt_sim::heilongjiang::xml::parse(data) {
        let _ = ykt_sim::heilongjiang::budget::voucher_of(&root);
        for vb in root.all("VoucherBody") {
            if let Some(list) = vb.child("Voucher").and_then(|v| v.child("DetailList")) {
                for d in list.all("Detail") {
                    let _ = ykt_sim::heilongjiang::bank::detail_of(d);
                }
            }
        }
    }
}

#[cfg(not(feature = "province-heilongjiang"))]
pub fn heilongjiang_xml(_data: &[u8]) {}

/// Henan: the bank's result post (JSON) as the platform's bank interface reads it, the
/// budget system's replies as the platform reads them, and the platform's order as the
/// simulated budget system reads it.
#[cfg(feature = "province-henan")]
pub fn henan(data: &[u8]) {
    use ykt_http::henan::{bank_api, budget};
    if let Ok(results) = bank_api::read_result_post(data) {
        for r in results {
            match r {
                Ok((_, _, amount, _, _)) => assert!(amount.0 != i64::MIN),
                Err(e) => assert_no_identifier("henan result", &e),
            }
        }
    }
    if let Ok(text) = budget::decode(data) {
        let _ = budget::parse_flat(&text);
    }
    let _ = ykt_sim::henan::budget::parse(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ykt_http::henan::parse_amount(s);
    }
}

#[cfg(not(feature = "province-henan"))]
pub fn henan(_data: &[u8]) {}

/// The kernel's parsers of identifiers, periods and money: whatever they accept prints back
/// to a form they accept again as the same value, and a masked identifier never equals the
/// identifier.
pub fn ident(data: &[u8]) {
    use ykt_kernel::money::parse_decimal;
    use ykt_kernel::period::CrossPeriodRule;
    use ykt_kernel::{BankAccount, Period, Phone, RegionCode, ResidentId, Yuan};
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let today = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    if let Ok(p) = ResidentId::parse(s, today) {
        let again = ResidentId::parse(p.id.as_str(), today).expect("an accepted ID parses again");
        assert_eq!(again.id, p.id);
        assert_ne!(p.id.masked(), p.id.as_str());
        assert!(!format!("{} {:?}", p.id, p.id).contains(p.id.as_str()));
    }
    if let Ok(a) = BankAccount::parse(s) {
        assert_eq!(BankAccount::parse(a.as_str()).ok(), Some(a.clone()));
        assert!(!format!("{a} {a:?}").contains(a.as_str()));
    }
    if let Ok(p) = Phone::parse(s) {
        assert_eq!(Phone::parse(p.as_str()).ok(), Some(p.clone()));
        assert!(!format!("{p} {p:?}").contains(p.as_str()));
    }
    if let Ok(r) = RegionCode::parse(s) {
        assert_eq!(RegionCode::parse(r.full_str()).ok(), Some(r.clone()));
        if let Some(parent) = r.parent() {
            assert!(parent.contains(&r));
        }
    }
    if let Ok(p) = Period::parse(s) {
        assert_eq!(Period::parse(&p.to_string()).ok(), Some(p));
    }
    if let Ok(y) = Yuan::parse(s) {
        assert_eq!(Yuan::parse(&y.to_string()).ok(), Some(y));
        let _ = y.to_fen();
    }
    let _ = parse_decimal(s);
    if let Some(r) = CrossPeriodRule::parse_zh(s) {
        assert_eq!(CrossPeriodRule::parse_zh(&r.to_string()), Some(r));
    }
    let mask = ykt_kernel::mask::MaskPolicy::default();
    for m in [mask.id(s), mask.account(s), mask.phone(s)] {
        // Masking only adds stars: every character it keeps is the input's own, in place (an
        // input that is already masked, `428****…0018`, legitimately comes back unchanged:
        // found by the first fuzz run of this target).
        assert_eq!(
            m.chars().count(),
            s.chars().count(),
            "masking changed the length"
        );
        assert!(
            m.chars().zip(s.chars()).all(|(a, b)| a == b || a == '*'),
            "masking changed a character it kept"
        );
        // And it always hides something: a non-empty input never comes back without a star.
        assert!(s.is_empty() || m.contains('*'), "masking hid nothing");
    }
    let _ = mask.name(s);
}

/// Every target by its name, as the corpus directories are named.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("roster", roster),
    ("registers", registers),
    ("sichuan_bank", sichuan_bank),
    ("sichuan_voucher", sichuan_voucher),
    ("heilongjiang_xml", heilongjiang_xml),
    ("henan", henan),
    ("ident", ident),
];
