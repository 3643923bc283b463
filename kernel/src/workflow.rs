//! The workflow engine: a province declares its steps (who acts, from which states, to which
//! state, what the step does), and the engine decides whether a given user may take a given
//! step on a given batch now, and describes the transition for the audit log.
//!
//! Checks, in order: the step exists; the user holds the step's role; the batch lies in the
//! user's region; the batch is in one of the step's source states; maker-checker: the user
//! did not perform any of the steps the step must be separate from (DOMAIN.md §5.3: "the
//! person who prepared a batch can never approve it"), whatever other roles they hold.

use crate::actor::{Role, User};
use crate::audit::AuditRecord;
use crate::batch::BatchState;
use crate::catalog::FundingChannel;
use crate::ident::RegionCode;
use crate::ledger::AccountKind;
use serde::Serialize;

/// What a step does besides changing the batch state; the application's step runner
/// performs the port call the effect names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Effect {
    /// A decision only (submit, review, approve, return).
    None,
    /// Push the disbursement plan / order to the budget system (`TreasuryPayment`).
    PushPlan,
    /// Request funding (`TreasuryPayment::request_funding`).
    RequestFunding,
    /// Record that funds moved (ledger funding entries).
    ConfirmFunding,
    /// Deliver the payment instruction, or make it available to pull (`BankAgent::deliver`).
    Dispatch,
    /// Apply the bank's results (`BankAgent::collect_results`).
    CollectResults,
    /// Reconcile bank totals with the batch.
    Reconcile,
    /// Publish notices or lookup records (`DisclosureChannel`).
    Publish,
    /// Return a batch to its maker with a reason.
    Return,
    /// Close the batch.
    Close,
    /// Cancel (作废) a batch that was never submitted: every line becomes `cancelled`, which
    /// frees the person's project and period for a corrected roster. Nothing was sent and no
    /// money moved, so nothing needs undoing outside.
    Cancel,
}

/// A deadline attached to a step: it must be taken within `days` (calendar or working days)
/// of the step `after` (e.g. Henan's "5个工作日内完成核对").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeadlineRule {
    pub after: &'static str,
    pub days: u32,
    pub working_days: bool,
    /// Where the rule comes from.
    pub basis: &'static str,
}

/// Money a step moves: the batch's control amount from one account to the next along the
/// province's route, posted in the same transaction as the state change. `channel` limits the
/// move to batches of one funding channel (e.g. the grain-risk-fund hops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LedgerMove {
    pub channel: Option<FundingChannel>,
    pub from: AccountKind,
    pub to: AccountKind,
    /// Accounting subject (科目) the entry carries, where one applies.
    pub subject: Option<&'static str>,
    pub memo: &'static str,
}

impl LedgerMove {
    /// Whether this move applies to a batch funded through `channel`.
    pub fn applies(&self, channel: FundingChannel) -> bool {
        self.channel.is_none_or(|c| c == channel)
    }
}

/// Maker-checker separation: the actor of this step must not have performed any of these
/// steps on the same batch. `MAKER` stands for the batch's creator.
pub const MAKER: &str = "@maker";

/// One step of a province's workflow.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepDef {
    /// Stable code, e.g. `finance_approve`.
    pub code: &'static str,
    /// Chinese label shown to operators.
    pub label: &'static str,
    pub role: Role,
    pub from: &'static [BatchState],
    pub to: BatchState,
    pub effect: Effect,
    /// Steps (or `MAKER`) whose actors may not take this step.
    pub separate_from: &'static [&'static str],
    pub deadline: Option<DeadlineRule>,
    /// Artifacts the step produces (file kinds), for documentation and the demo.
    pub artifacts: &'static [&'static str],
    /// Money the step moves (see [`LedgerMove`]).
    pub ledger: &'static [LedgerMove],
    /// The clause of the province's document the step implements.
    pub basis: &'static str,
}

impl StepDef {
    /// The cancellation step (作废批次, [`Effect::Cancel`], code `cancel`): the department's
    /// maker cancels a batch in one of `from`, which must be states in which nothing of the
    /// batch has left the platform; `basis` is the province's clause.
    pub const fn cancel(from: &'static [BatchState], basis: &'static str) -> StepDef {
        StepDef {
            code: "cancel",
            label: "作废批次",
            role: Role::DeptMaker,
            from,
            to: BatchState::Cancelled,
            effect: Effect::Cancel,
            separate_from: &[],
            deadline: None,
            artifacts: &[],
            ledger: &[],
            basis,
        }
    }
}

/// A province's whole workflow.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WorkflowDef {
    /// The state a freshly formed batch starts in.
    pub initial: BatchState,
    pub steps: &'static [StepDef],
}

impl WorkflowDef {
    pub fn step(&self, code: &str) -> Option<&'static StepDef> {
        self.steps.iter().find(|s| s.code == code)
    }
    /// Steps that can start from `state` (for "what can I do now" lists).
    pub fn steps_from(&self, state: BatchState) -> impl Iterator<Item = &'static StepDef> + '_ {
        self.steps.iter().filter(move |s| s.from.contains(&state))
    }
    /// Check the definition: unique codes, `separate_from` names existing steps, every
    /// non-initial state is reachable.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for s in self.steps {
            if !seen.insert(s.code) {
                return Err(format!("duplicate step {}", s.code));
            }
            for sep in s.separate_from {
                if *sep != MAKER && self.step(sep).is_none() {
                    return Err(format!("step {} separate from unknown step {sep}", s.code));
                }
            }
        }
        Ok(())
    }
}

/// What the engine needs to know about a batch.
#[derive(Debug, Clone)]
pub struct BatchFacts<'a> {
    pub id: i64,
    pub state: BatchState,
    pub region: &'a RegionCode,
    /// Login of the batch's creator.
    pub maker: &'a str,
    /// Steps already taken on this batch: (step code, actor login), oldest first.
    pub history: &'a [(String, String)],
}

/// Why a step was refused. Messages in Chinese for operators, English in parentheses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("本省流程中没有「{0}」这一步 (no step `{0}` in this province's workflow)")]
    UnknownStep(String),
    #[error("用户{user}不具备「{}」角色，不能执行「{step}」 (user {user} lacks role {required})", required.label_zh())]
    RoleDenied {
        user: String,
        required: Role,
        step: String,
    },
    #[error(
        "批次所属区划{region}不在用户{user}的管辖范围内 (batch region {region} is outside {user}'s scope)"
    )]
    OutOfScope { user: String, region: String },
    #[error("批次状态为「{}」，不能执行「{step}」 (batch is {state}; step {step} needs one of {allowed:?})", state.label_zh())]
    WrongState {
        state: BatchState,
        step: String,
        allowed: Vec<BatchState>,
    },
    #[error(
        "经办与审核不得为同一人：{user}已在本批次执行过「{earlier}」，不能再执行「{step}」 (maker-checker: {user} did {earlier} on this batch)"
    )]
    MakerChecker {
        user: String,
        step: String,
        earlier: String,
    },
}

/// An allowed transition.
#[derive(Debug, Clone)]
pub struct Transition {
    pub step: &'static StepDef,
    pub from: BatchState,
    pub to: BatchState,
    pub role: Role,
}

impl Transition {
    /// The audit record for this transition.
    pub fn audit(
        &self,
        batch: i64,
        actor: &str,
        at: &str,
        detail: serde_json::Value,
    ) -> AuditRecord {
        AuditRecord {
            at: at.to_owned(),
            actor: actor.to_owned(),
            role: self.role.as_str().to_owned(),
            action: format!("batch.{}", self.step.code),
            subject: format!("batch:{batch}"),
            from_state: Some(self.from.as_str().to_owned()),
            to_state: Some(self.to.as_str().to_owned()),
            detail,
        }
    }
}

/// Decide whether `user` may take `step` on `batch` now.
pub fn authorize(
    def: &WorkflowDef,
    step: &str,
    batch: &BatchFacts<'_>,
    user: &User,
) -> Result<Transition, WorkflowError> {
    let s = def
        .step(step)
        .ok_or_else(|| WorkflowError::UnknownStep(step.to_owned()))?;
    let system = user.has(Role::System) && s.role == Role::System;
    if !user.has(s.role) && !system {
        return Err(WorkflowError::RoleDenied {
            user: user.login.clone(),
            required: s.role,
            step: s.label.to_owned(),
        });
    }
    if !user.covers(batch.region) {
        return Err(WorkflowError::OutOfScope {
            user: user.login.clone(),
            region: batch.region.full(),
        });
    }
    if !s.from.contains(&batch.state) {
        return Err(WorkflowError::WrongState {
            state: batch.state,
            step: s.label.to_owned(),
            allowed: s.from.to_vec(),
        });
    }
    for sep in s.separate_from {
        let did = if *sep == MAKER {
            (batch.maker == user.login).then(|| "编制批次".to_owned())
        } else {
            batch
                .history
                .iter()
                .find(|(code, actor)| code == sep && *actor == user.login)
                .map(|(code, _)| {
                    def.step(code)
                        .map(|d| d.label.to_owned())
                        .unwrap_or_else(|| code.clone())
                })
        };
        if let Some(earlier) = did {
            return Err(WorkflowError::MakerChecker {
                user: user.login.clone(),
                step: s.label.to_owned(),
                earlier,
            });
        }
    }
    Ok(Transition {
        step: s,
        from: batch.state,
        to: s.to,
        role: s.role,
    })
}

/// The steps `user` could take on `batch` now.
pub fn available<'d>(
    def: &'d WorkflowDef,
    batch: &BatchFacts<'_>,
    user: &User,
) -> Vec<&'static StepDef> {
    def.steps
        .iter()
        .filter(|s| authorize(def, s.code, batch, user).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use BatchState::*;

    const STEPS: &[StepDef] = &[
        StepDef {
            code: "submit",
            label: "提交",
            role: Role::DeptMaker,
            from: &[Draft, Returned],
            to: Submitted,
            effect: Effect::None,
            separate_from: &[],
            deadline: None,
            artifacts: &[],
            ledger: &[],
            basis: "",
        },
        StepDef {
            code: "approve",
            label: "审核通过",
            role: Role::FinanceReviewer,
            from: &[Submitted],
            to: Approved,
            effect: Effect::None,
            separate_from: &[MAKER, "submit"],
            deadline: None,
            artifacts: &[],
            ledger: &[],
            basis: "",
        },
        StepDef {
            code: "return",
            label: "退回",
            role: Role::FinanceReviewer,
            from: &[Submitted],
            to: Returned,
            effect: Effect::Return,
            separate_from: &[MAKER],
            deadline: None,
            artifacts: &[],
            ledger: &[],
            basis: "",
        },
    ];
    const DEF: WorkflowDef = WorkflowDef {
        initial: Draft,
        steps: STEPS,
    };

    fn user(login: &str, roles: &[Role], region: &str) -> User {
        User {
            login: login.into(),
            name: login.into(),
            roles: roles.to_vec(),
            region: RegionCode::parse(region).unwrap(),
            bank: None,
        }
    }

    #[test]
    fn definition_is_valid() {
        DEF.validate().unwrap();
    }

    #[test]
    fn maker_cannot_approve_even_with_both_roles() {
        let region = RegionCode::parse("230102").unwrap();
        let history = vec![("submit".to_owned(), "alice".to_owned())];
        let b = BatchFacts {
            id: 1,
            state: Submitted,
            region: &region,
            maker: "alice",
            history: &history,
        };
        let alice = user("alice", &[Role::DeptMaker, Role::FinanceReviewer], "23");
        assert!(matches!(
            authorize(&DEF, "approve", &b, &alice),
            Err(WorkflowError::MakerChecker { .. })
        ));
        let bob = user("bob", &[Role::FinanceReviewer], "2301");
        let t = authorize(&DEF, "approve", &b, &bob).unwrap();
        assert_eq!((t.from, t.to), (Submitted, Approved));
        let rec = t.audit(1, "bob", "2023-05-01T00:00:00Z", serde_json::json!({}));
        assert_eq!(rec.action, "batch.approve");
        assert_eq!(rec.to_state.as_deref(), Some("approved"));
    }

    #[test]
    fn role_scope_and_state_are_checked() {
        let region = RegionCode::parse("230102").unwrap();
        let b = BatchFacts {
            id: 1,
            state: Draft,
            region: &region,
            maker: "alice",
            history: &[],
        };
        let carol = user("carol", &[Role::FinanceReviewer], "23");
        assert!(matches!(
            authorize(&DEF, "submit", &b, &carol),
            Err(WorkflowError::RoleDenied { .. })
        ));
        assert!(matches!(
            authorize(&DEF, "approve", &b, &carol),
            Err(WorkflowError::WrongState { .. })
        ));
        let far = user("dave", &[Role::DeptMaker], "2302");
        assert!(matches!(
            authorize(&DEF, "submit", &b, &far),
            Err(WorkflowError::OutOfScope { .. })
        ));
        assert!(matches!(
            authorize(&DEF, "pay", &b, &far),
            Err(WorkflowError::UnknownStep(_))
        ));
        let alice = user("alice", &[Role::DeptMaker], "230102");
        assert_eq!(
            available(&DEF, &b, &alice)
                .iter()
                .map(|s| s.code)
                .collect::<Vec<_>>(),
            ["submit"]
        );
    }
}
