//! The fuzz corpora replayed on stable (issue #9, "Bad input"): every file under
//! `tests/fuzz/corpus/TARGET/` (the seeds, what the fuzzers kept, and every input that once
//! crashed a parser) goes through the same target body the libFuzzer binary runs
//! (`tests/fuzz/src/lib.rs`). A target fails by panicking, so a regression of a fixed crash
//! fails this test. How to run the fuzzers themselves: RELIABILITY.md.

#[path = "fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_corpus_file_replays_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    let mut total = 0;
    for (name, target) in targets::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(
            files.len() >= 3,
            "{name}: only {} corpus files; the corpus is part of the test",
            files.len()
        );
        for f in &files {
            let bytes = std::fs::read(f).expect("corpus file");
            let run = std::panic::catch_unwind(|| target(&bytes));
            assert!(run.is_ok(), "{name}: {} panics", f.display());
        }
        total += files.len();
    }
    eprintln!("{total} corpus files replayed");
}

#[test]
fn the_digit_run_check_sees_identifiers() {
    // The targets' check for a leaked identifier in an error message must be able to fail.
    assert!(targets::has_digit_run(
        "身份证号码230102198001011237无效",
        11
    ));
    assert!(targets::has_digit_run("13800138000", 11));
    assert!(!targets::has_digit_run("第12行 230102********1237", 11));
}
