//! Batches (发放批次) and payment lines, with their state machines and the control-total
//! invariant of DOMAIN.md §5: for every batch, count and amount of
//! `pending + in flight + credited + failed-open + refunded` (+ `cancelled`, for a batch
//! cancelled before submission) equal the frozen control totals,
//! and a line is credited at most once.

use crate::money::Fen;
use crate::ports::{BankOutcome, BankResult, FailureReason};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! states {
    ($name:ident { $( $v:ident => $key:literal, $zh:literal; )* }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name { $( $v, )* }
        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$v, )* ];
            pub fn as_str(self) -> &'static str { match self { $( $name::$v => $key, )* } }
            pub fn label_zh(self) -> &'static str { match self { $( $name::$v => $zh, )* } }
            pub fn parse(s: &str) -> Option<$name> { match s { $( $key => Some($name::$v), )* _ => None } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown state `{s}`")))
            }
        }
    };
}

states!(BatchState {
    Draft => "draft", "草稿";
    Publicity => "publicity", "发放前公示中";
    Submitted => "submitted", "已提交";
    Reviewed => "reviewed", "主管部门已审核";
    Approved => "approved", "财政已审核";
    PlanPushed => "plan_pushed", "发放计划已推送";
    FundingRequested => "funding_requested", "已申请拨付";
    Funded => "funded", "资金已到位";
    DisbursementSubmitted => "disbursement_submitted", "已提交发放申请";
    DisbursementConfirmed => "disbursement_confirmed", "财政已确认发放";
    Dispatched => "dispatched", "已交银行发放";
    Settled => "settled", "逐笔发放完毕";
    Reconciled => "reconciled", "已对账";
    Closed => "closed", "已办结";
    Returned => "returned", "已退回修改";
    Cancelled => "cancelled", "已作废";
});

impl BatchState {
    /// Lines and control totals can no longer change (DOMAIN.md §5.2: "A batch's lines and
    /// totals are frozen once submitted").
    pub fn is_frozen(self) -> bool {
        !matches!(
            self,
            BatchState::Draft | BatchState::Publicity | BatchState::Returned
        )
    }
    /// No further step can run.
    pub fn is_terminal(self) -> bool {
        matches!(self, BatchState::Closed | BatchState::Cancelled)
    }
}

states!(LineState {
    Pending => "pending", "待发放";
    InFlight => "in_flight", "发放中";
    Credited => "credited", "已到账";
    Failed => "failed", "发放失败";
    Refunded => "refunded", "已退回";
    Cancelled => "cancelled", "已作废";
});

impl LineState {
    /// Final states: a line in one of them never moves again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            LineState::Credited | LineState::Refunded | LineState::Cancelled
        )
    }
}

/// What can happen to a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineEvent {
    /// Sent to the bank (a new attempt).
    Dispatch,
    /// The bank credited the card.
    Credit,
    /// The bank could not credit the card.
    Fail,
    /// The department corrected the data; the line waits for a new attempt.
    Correct,
    /// The money goes back through the original channel.
    Refund,
    /// The batch was cancelled (作废) before anything was sent: the line will never be paid
    /// from this batch, and no longer counts as the person's line for the project and period.
    Cancel,
}

/// A transition the line state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("发放明细状态为「{}」，不能执行「{event:?}」 (line in state {from} cannot take {event:?})", from.label_zh())]
pub struct LineTransitionError {
    pub from: LineState,
    pub event: LineEvent,
}

impl LineState {
    /// The line state machine:
    /// `pending -dispatch-> in_flight -credit-> credited`,
    /// `in_flight -fail-> failed -correct-> pending`, `failed -dispatch-> in_flight` (re-pay
    /// with unchanged data, e.g. a dormant account reactivated), `failed -refund-> refunded`,
    /// `pending -cancel-> cancelled` (the whole batch cancelled before it was submitted).
    pub fn on(self, event: LineEvent) -> Result<LineState, LineTransitionError> {
        use LineEvent as E;
        use LineState as S;
        match (self, event) {
            (S::Pending, E::Dispatch) | (S::Failed, E::Dispatch) => Ok(S::InFlight),
            (S::InFlight, E::Credit) => Ok(S::Credited),
            (S::InFlight, E::Fail) => Ok(S::Failed),
            (S::Failed, E::Correct) => Ok(S::Pending),
            (S::Failed, E::Refund) => Ok(S::Refunded),
            (S::Pending, E::Cancel) => Ok(S::Cancelled),
            (from, event) => Err(LineTransitionError { from, event }),
        }
    }
}

/// The part of a line that result handling needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineStatus {
    pub state: LineState,
    /// Current attempt number (1 for the first dispatch; 0 before).
    pub attempt: u32,
    pub amount: Fen,
}

/// What a bank result does to a line. Only `Applied` changes anything; every other variant
/// is recorded as an anomaly (or silently ignored for `Duplicate`) and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum ResultEffect {
    Applied {
        to: LineState,
        reason: Option<FailureReason>,
    },
    /// The same outcome for the same attempt again: nothing to do.
    Duplicate,
    /// A result for an earlier attempt than the current one.
    Stale { current_attempt: u32 },
    /// A different outcome for an attempt already settled (e.g. credited, then "failed").
    Conflict { recorded: LineState },
    /// The amount does not match the line's.
    AmountMismatch { expected: Fen, got: Fen },
    /// The line was not sent (or not this attempt).
    NotInFlight,
}

impl ResultEffect {
    pub fn is_anomaly(&self) -> bool {
        !matches!(self, ResultEffect::Applied { .. } | ResultEffect::Duplicate)
    }
}

/// Decide what a result does to a line. Results may arrive twice, partially or out of
/// order: each line reaches its final state once and is never credited twice.
pub fn apply_result(line: LineStatus, r: &BankResult) -> ResultEffect {
    if r.amount != line.amount {
        return ResultEffect::AmountMismatch {
            expected: line.amount,
            got: r.amount,
        };
    }
    if r.attempt < line.attempt {
        return ResultEffect::Stale {
            current_attempt: line.attempt,
        };
    }
    if r.attempt > line.attempt {
        return ResultEffect::NotInFlight;
    }
    match (line.state, &r.outcome) {
        (LineState::InFlight, BankOutcome::Credited) => ResultEffect::Applied {
            to: LineState::Credited,
            reason: None,
        },
        (LineState::InFlight, BankOutcome::Failed { reason }) => ResultEffect::Applied {
            to: LineState::Failed,
            reason: Some(*reason),
        },
        // A cancelled batch was never sent: whatever the bank says of it is an anomaly.
        (LineState::Cancelled, _) => ResultEffect::NotInFlight,
        (LineState::Credited, BankOutcome::Credited) => ResultEffect::Duplicate,
        (LineState::Failed, BankOutcome::Failed { .. }) => ResultEffect::Duplicate,
        (LineState::Refunded, BankOutcome::Failed { .. }) => ResultEffect::Duplicate,
        (LineState::Pending, BankOutcome::Failed { .. }) => ResultEffect::Duplicate,
        (
            recorded @ (LineState::Credited
            | LineState::Failed
            | LineState::Refunded
            | LineState::Pending),
            _,
        ) => ResultEffect::Conflict { recorded },
    }
}

/// Count and amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    pub count: u64,
    pub amount: Fen,
}

impl Totals {
    pub fn is_zero(&self) -> bool {
        self.count == 0 && self.amount == Fen(0)
    }
    pub fn add(&mut self, amount: Fen) {
        self.count += 1;
        self.amount += amount;
    }
}

impl std::ops::Add for Totals {
    type Output = Totals;
    fn add(self, o: Totals) -> Totals {
        Totals {
            count: self.count + o.count,
            amount: self.amount + o.amount,
        }
    }
}

/// Lines of a batch by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tally {
    pub pending: Totals,
    pub in_flight: Totals,
    pub credited: Totals,
    pub failed: Totals,
    pub refunded: Totals,
    /// Lines of a cancelled batch (作废): counted in the control totals, never paid.
    #[serde(default, skip_serializing_if = "Totals::is_zero")]
    pub cancelled: Totals,
}

impl Tally {
    pub fn slot(&mut self, s: LineState) -> &mut Totals {
        match s {
            LineState::Pending => &mut self.pending,
            LineState::InFlight => &mut self.in_flight,
            LineState::Credited => &mut self.credited,
            LineState::Failed => &mut self.failed,
            LineState::Refunded => &mut self.refunded,
            LineState::Cancelled => &mut self.cancelled,
        }
    }
    pub fn get(&self, s: LineState) -> Totals {
        match s {
            LineState::Pending => self.pending,
            LineState::InFlight => self.in_flight,
            LineState::Credited => self.credited,
            LineState::Failed => self.failed,
            LineState::Refunded => self.refunded,
            LineState::Cancelled => self.cancelled,
        }
    }
    pub fn total(&self) -> Totals {
        self.pending + self.in_flight + self.credited + self.failed + self.refunded + self.cancelled
    }
    /// Every line is credited or refunded.
    pub fn is_settled(&self) -> bool {
        self.pending.count == 0 && self.in_flight.count == 0 && self.failed.count == 0
    }
}

/// The control totals do not add up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("批次{batch}控制数不平：控制数{}笔{}元，明细合计{}笔{}元 (batch {batch} does not balance)", control.count, control.amount, actual.count, actual.amount)]
pub struct BalanceError {
    pub batch: i64,
    pub control: Totals,
    pub actual: Totals,
}

/// Check the batch invariant of DOMAIN.md §5.
pub fn check_balance(batch: i64, control: Totals, tally: &Tally) -> Result<(), BalanceError> {
    let actual = tally.total();
    if actual == control {
        Ok(())
    } else {
        Err(BalanceError {
            batch,
            control,
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(attempt: u32, amount: i64, ok: bool) -> BankResult {
        BankResult {
            order_no: "O1".into(),
            line_id: 1,
            attempt,
            amount: Fen(amount),
            outcome: if ok {
                BankOutcome::Credited
            } else {
                BankOutcome::Failed {
                    reason: FailureReason::WrongAccount,
                }
            },
            date: "2023-05-20".into(),
        }
    }

    #[test]
    fn line_state_machine() {
        use LineEvent::*;
        let s = LineState::Pending.on(Dispatch).unwrap();
        assert_eq!(s, LineState::InFlight);
        assert_eq!(s.on(Fail).unwrap().on(Correct).unwrap(), LineState::Pending);
        assert_eq!(s.on(Credit).unwrap(), LineState::Credited);
        assert!(LineState::Credited.on(Credit).is_err());
        assert!(LineState::Credited.on(Refund).is_err());
        assert!(LineState::Pending.on(Credit).is_err());
        assert_eq!(LineState::Failed.on(Refund).unwrap(), LineState::Refunded);
        assert!(LineState::Refunded.on(Dispatch).is_err());
        assert_eq!(LineState::Pending.on(Cancel).unwrap(), LineState::Cancelled);
        for s in [
            LineState::InFlight,
            LineState::Credited,
            LineState::Failed,
            LineState::Refunded,
            LineState::Cancelled,
        ] {
            assert!(s.on(Cancel).is_err(), "{s} cannot be cancelled");
        }
        for e in [Dispatch, Credit, Fail, Correct, Refund] {
            assert!(LineState::Cancelled.on(e).is_err(), "cancelled is final");
        }
    }

    #[test]
    fn results_apply_once() {
        let l = LineStatus {
            state: LineState::InFlight,
            attempt: 1,
            amount: Fen(100),
        };
        assert_eq!(
            apply_result(l, &res(1, 100, true)),
            ResultEffect::Applied {
                to: LineState::Credited,
                reason: None
            }
        );
        let credited = LineStatus {
            state: LineState::Credited,
            ..l
        };
        assert_eq!(
            apply_result(credited, &res(1, 100, true)),
            ResultEffect::Duplicate
        );
        assert_eq!(
            apply_result(credited, &res(1, 100, false)),
            ResultEffect::Conflict {
                recorded: LineState::Credited
            }
        );
        assert_eq!(
            apply_result(l, &res(1, 99, true)),
            ResultEffect::AmountMismatch {
                expected: Fen(100),
                got: Fen(99)
            }
        );
        let second = LineStatus {
            state: LineState::InFlight,
            attempt: 2,
            amount: Fen(100),
        };
        assert_eq!(
            apply_result(second, &res(1, 100, true)),
            ResultEffect::Stale { current_attempt: 2 }
        );
        assert_eq!(
            apply_result(l, &res(2, 100, true)),
            ResultEffect::NotInFlight
        );
    }

    #[test]
    fn balance_check() {
        let mut t = Tally::default();
        t.slot(LineState::Credited).add(Fen(100));
        t.slot(LineState::Failed).add(Fen(50));
        assert!(
            check_balance(
                1,
                Totals {
                    count: 2,
                    amount: Fen(150)
                },
                &t
            )
            .is_ok()
        );
        assert!(
            check_balance(
                1,
                Totals {
                    count: 2,
                    amount: Fen(151)
                },
                &t
            )
            .is_err()
        );
    }
}
