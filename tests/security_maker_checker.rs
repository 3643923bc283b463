//! Maker ≠ checker for every approval step of every compiled-in province (issue #9,
//! "Security"), read from the province registry rather than listed by hand, so a step a
//! province adds later is covered without touching this test.
//!
//! An *approval* is a decision step (effect `None`, `RequestFunding` or `Return`) taken by a
//! reviewing role (department head or finance). For each one, in each state it starts from:
//!
//! - the batch's maker is refused, even when the maker holds every role (one person holding
//!   both the maker's and the checker's role);
//! - whoever took a preparing step (township clerk or department maker) that leads to the
//!   approval in the same round (a path without a return) is refused, again holding every role;
//! - someone else holding the same roles is allowed, so the refusals above are the
//!   maker-checker rule and nothing else (role, region and state are all right).
//!
//! `authorize` is the one gate: the CLI, the console, the API and the cycle runners all take
//! steps through the store's `step_batch`, which calls it (see `tests/cli.rs` for the same rule
//! through the binary).

use std::collections::{BTreeSet, VecDeque};
use ykt_kernel::workflow::{
    BatchFacts, Effect, MAKER, StepDef, WorkflowDef, WorkflowError, authorize,
};
use ykt_kernel::{BatchState, RegionCode, Role, User};

const HUMAN_ROLES: &[Role] = &[
    Role::TownshipClerk,
    Role::DeptMaker,
    Role::DeptHead,
    Role::FinanceReviewer,
    Role::Hrss,
    Role::BankOperator,
    Role::Auditor,
    Role::Admin,
];

fn everyone(login: &str) -> User {
    User {
        login: login.into(),
        name: login.into(),
        roles: HUMAN_ROLES.to_vec(),
        region: RegionCode::parse("23").unwrap(),
        bank: None,
    }
}

fn is_approval(s: &StepDef) -> bool {
    matches!(s.role, Role::DeptHead | Role::FinanceReviewer)
        && matches!(
            s.effect,
            Effect::None | Effect::RequestFunding | Effect::Return
        )
}

fn is_preparing(s: &StepDef) -> bool {
    matches!(s.role, Role::TownshipClerk | Role::DeptMaker)
}

/// Can the batch get from the state after `p` to a state `a` starts from without a return
/// and without taking `a` itself? (The same round of preparation and approval.)
fn leads_to(def: &WorkflowDef, p: &StepDef, a: &StepDef) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = VecDeque::from([p.to]);
    while let Some(st) = todo.pop_front() {
        if a.from.contains(&st) {
            return true;
        }
        if !seen.insert(st.as_str()) {
            continue;
        }
        for s in def.steps_from(st) {
            if s.effect != Effect::Return && s.code != a.code {
                todo.push_back(s.to);
            }
        }
    }
    false
}

fn facts<'a>(
    state: BatchState,
    region: &'a RegionCode,
    maker: &'a str,
    history: &'a [(String, String)],
) -> BatchFacts<'a> {
    BatchFacts {
        id: 1,
        state,
        region,
        maker,
        history,
    }
}

#[test]
fn no_approval_in_any_province_can_be_taken_by_its_maker() {
    let region = RegionCode::parse("230102").unwrap();
    let mut approvals = 0;
    let mut checked = Vec::new();
    for d in yikatong::provinces() {
        let p = (d.build)(&Default::default()).expect("province builds");
        let def = p.workflow();
        def.validate().expect("valid workflow");
        for a in def.steps.iter().filter(|s| is_approval(s)) {
            approvals += 1;
            assert!(
                a.separate_from.contains(&MAKER),
                "{}: approval {} is not separated from the batch's maker",
                d.code,
                a.code
            );
            let preparing: Vec<&StepDef> = def
                .steps
                .iter()
                .filter(|s| is_preparing(s) && leads_to(def, s, a))
                .collect();
            assert!(
                !preparing.is_empty(),
                "{}: nothing prepares {}?",
                d.code,
                a.code
            );
            for &state in a.from {
                // The maker, holding every role (maker and checker at once).
                let x = everyone("x");
                let none: Vec<(String, String)> = Vec::new();
                let e = authorize(def, a.code, &facts(state, &region, "x", &none), &x)
                    .expect_err("the maker approves their own batch");
                assert!(
                    matches!(e, WorkflowError::MakerChecker { .. }),
                    "{} {} from {state:?}: {e}",
                    d.code,
                    a.code
                );
                assert!(e.to_string().contains("经办与审核不得为同一人"), "{e}");
                // Whoever prepared the batch in this round, not its maker.
                for prep in &preparing {
                    let history = vec![(prep.code.to_owned(), "x".to_owned())];
                    let e = authorize(def, a.code, &facts(state, &region, "m", &history), &x)
                        .expect_err("the preparer approves");
                    assert!(
                        matches!(e, WorkflowError::MakerChecker { .. }),
                        "{}: who took {} may take {} from {state:?}: {e}",
                        d.code,
                        prep.code,
                        a.code
                    );
                }
                // Someone else with the same roles may: only maker-checker refused the above.
                let history: Vec<(String, String)> = preparing
                    .iter()
                    .map(|s| (s.code.to_owned(), "m".to_owned()))
                    .collect();
                let t = authorize(
                    def,
                    a.code,
                    &facts(state, &region, "m", &history),
                    &everyone("y"),
                );
                assert!(
                    t.is_ok(),
                    "{} {} from {state:?}: {:?}",
                    d.code,
                    a.code,
                    t.err()
                );
            }
            checked.push(format!("{}:{}", d.code, a.code));
        }
    }
    eprintln!("{approvals} approval steps checked: {}", checked.join(", "));
    // Each compiled-in province has a finance decision at least.
    assert!(approvals >= 2 * yikatong::provinces().len(), "{checked:?}");
}
