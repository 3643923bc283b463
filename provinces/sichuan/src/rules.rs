//! Sichuan's rules as pure functions: the procedural review, the publicity windows, the
//! dual verification of publicity against bank credits, the month-end zero-balance check and
//! the statement periods. The application feeds them figures from the store and the bank's
//! files; nothing here does I/O.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ykt_kernel::batch::Totals;
use ykt_kernel::{Fen, Period, PeriodKind};

/// Days the pre-payment village list stays posted when the configuration says nothing.
///
/// 乐山办法 四(二)1 leaves the length to each project's own rules ("按照相关补贴项目资金管理办法
/// 或要求在乡镇、村级公开栏张榜公示"); seven days is the usual period of the social-assistance
/// rules (低保、特困) the demo pays, and `publicity_days` overrides it.
pub const DEFAULT_PUBLICITY_DAYS: u32 = 7;

/// Days after payment within which the result is published again (乐山办法 四(六): "各类补贴
/// 资金发放后5日内，业务主管部门及乡镇、村（社区）应对相应项目实际发放情况、实际发放时间进行再公示").
pub const POST_PUBLICITY_DAYS: u64 = 5;

/// The three figures finance compares in the procedural review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReviewFigures {
    /// 汇总数据: the batch's control totals.
    pub summary: Totals,
    /// 明细数据: the sum of the batch's payment lines.
    pub detail: Totals,
    /// 申报数据: what the department declared in its authorised payment plan.
    pub declared: Totals,
}

/// The procedural review (程序性复核) of 乐山办法 三(四)1: "对业务主管部门录入报送的补贴资金
/// 发放汇总数据、明细数据与申报数据是否一致进行程序性复核，将审核存在错误的数据及时返回到业务主管
/// 部门进行修改". Returns every mismatch as a sentence the department can act on; an empty
/// list means the three agree (count and amount).
pub fn procedural_review(f: &ReviewFigures) -> Vec<String> {
    let mut out = Vec::new();
    // Declared against summary follows from the two comparisons below.
    let pairs = [
        ("汇总数据", f.summary, "明细数据", f.detail),
        ("申报数据", f.declared, "明细数据", f.detail),
    ];
    for (a, x, b, y) in pairs {
        if x.count != y.count {
            out.push(format!("{a}{}笔与{b}{}笔不一致", x.count, y.count));
        }
        if x.amount != y.amount {
            out.push(format!(
                "{a}{}元与{b}{}元不一致（相差{}元）",
                x.amount,
                y.amount,
                x.amount - y.amount
            ));
        }
    }
    out
}

/// A pre-payment publicity period: the list is posted from `starts` to `ends`, both
/// inclusive (乐山办法 四(二)1: "公示期满无异议的，由乡镇人民政府……报送县级业务主管部门").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicityWindow {
    pub starts: NaiveDate,
    pub ends: NaiveDate,
}

impl PublicityWindow {
    /// The window of `days` days starting on `start` (at least one day).
    pub fn new(start: NaiveDate, days: u32) -> PublicityWindow {
        let span = u64::from(days.max(1) - 1);
        PublicityWindow {
            starts: start,
            ends: start.checked_add_days(Days::new(span)).unwrap_or(start),
        }
    }
    /// Whether the period is over on `today` (the township may submit from the day after the
    /// last day).
    pub fn is_over(&self, today: NaiveDate) -> bool {
        today > self.ends
    }
}

/// The last day on which the post-payment publicity is on time: five days after the bank
/// credited the cards (乐山办法 四(六)).
pub fn post_publicity_deadline(paid_on: NaiveDate) -> NaiveDate {
    paid_on
        .checked_add_days(Days::new(POST_PUBLICITY_DAYS))
        .unwrap_or(paid_on)
}

/// One line as it was publicised before payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publicised {
    pub line_id: i64,
    pub amount: Fen,
}

/// One credit the bank reported in its result files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankCredit {
    pub line_id: i64,
    pub amount: Fen,
    pub date: NaiveDate,
}

/// A difference found by the dual verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// Publicised before payment, but the bank reports no credit.
    NotCredited { line_id: i64, publicised: Fen },
    /// Credited by the bank, but never publicised.
    NotPublicised { line_id: i64, credited: Fen },
    /// Publicised and credited with different amounts.
    AmountDiffers {
        line_id: i64,
        publicised: Fen,
        credited: Fen,
    },
    /// The bank reports more than one credit for the line.
    CreditedTwice { line_id: i64, credits: usize },
}

impl Difference {
    pub fn line_id(&self) -> i64 {
        match self {
            Difference::NotCredited { line_id, .. }
            | Difference::NotPublicised { line_id, .. }
            | Difference::AmountDiffers { line_id, .. }
            | Difference::CreditedTwice { line_id, .. } => *line_id,
        }
    }
    pub fn label_zh(&self) -> String {
        match self {
            Difference::NotCredited { publicised, .. } => {
                format!("已公示{publicised}元，银行未到账")
            }
            Difference::NotPublicised { credited, .. } => {
                format!("银行到账{credited}元，未经公示")
            }
            Difference::AmountDiffers {
                publicised,
                credited,
                ..
            } => format!("公示金额{publicised}元与银行到账{credited}元不一致"),
            Difference::CreditedTwice { credits, .. } => {
                format!("银行报告到账{credits}次")
            }
        }
    }
}

/// The dual verification (双向验证) of 川财办〔2018〕61号 五(四) ("实现公示信息与银行到账信息的双向
/// 验证") and 乐山办法 四(六): every publicised payment must have exactly one bank credit of the
/// same amount, and every bank credit must have been publicised. Returns the differences in
/// line order; empty means the two agree.
pub fn dual_verification(publicised: &[Publicised], credits: &[BankCredit]) -> Vec<Difference> {
    let mut pubs: BTreeMap<i64, Fen> = BTreeMap::new();
    for p in publicised {
        pubs.insert(p.line_id, p.amount);
    }
    let mut by_line: BTreeMap<i64, Vec<&BankCredit>> = BTreeMap::new();
    for c in credits {
        by_line.entry(c.line_id).or_default().push(c);
    }
    let mut out = Vec::new();
    let lines: std::collections::BTreeSet<i64> =
        pubs.keys().chain(by_line.keys()).copied().collect();
    for line_id in lines {
        match (pubs.get(&line_id), by_line.get(&line_id)) {
            (Some(p), None) => out.push(Difference::NotCredited {
                line_id,
                publicised: *p,
            }),
            (None, Some(cs)) => out.push(Difference::NotPublicised {
                line_id,
                credited: cs.iter().map(|c| c.amount).sum(),
            }),
            (Some(p), Some(cs)) => {
                if cs.len() > 1 {
                    out.push(Difference::CreditedTwice {
                        line_id,
                        credits: cs.len(),
                    });
                } else if cs[0].amount != *p {
                    out.push(Difference::AmountDiffers {
                        line_id,
                        publicised: *p,
                        credited: cs[0].amount,
                    });
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// How often beneficiaries get a statement (乐山办法 四(六): "鼓励各级业务主管部门通过对账单的
/// 形式，按照补贴资金发放时限，按月、按季或按年将补贴资金发放明细告知享受对象").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatementFrequency {
    #[default]
    Monthly,
    Quarterly,
    Yearly,
}

impl StatementFrequency {
    pub fn parse(s: &str) -> Option<StatementFrequency> {
        match s.trim() {
            "monthly" | "按月" | "月" => Some(StatementFrequency::Monthly),
            "quarterly" | "按季" | "季" => Some(StatementFrequency::Quarterly),
            "yearly" | "按年" | "年" => Some(StatementFrequency::Yearly),
            _ => None,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            StatementFrequency::Monthly => "按月",
            StatementFrequency::Quarterly => "按季",
            StatementFrequency::Yearly => "按年",
        }
    }
    pub fn kind(self) -> PeriodKind {
        match self {
            StatementFrequency::Monthly => PeriodKind::Month,
            StatementFrequency::Quarterly => PeriodKind::Quarter,
            StatementFrequency::Yearly => PeriodKind::Year,
        }
    }
    /// Whether `p` is a statement period of this frequency (`2023-05`, `2023Q2`, `2023`).
    pub fn accepts(self, p: &Period) -> bool {
        p.kind() == self.kind()
    }
}

/// Something that keeps a zero-balance account from being zero at month end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outstanding {
    /// Funds arrived in the zero-balance account and the instruction was not sent yet.
    FundedNotInstructed { batch: i64, amount: Fen },
    /// A line failed and the money has neither been paid again nor returned to the treasury.
    FailedOpen { batch: i64, line: i64, amount: Fen },
    /// A line sent to the bank without a result yet.
    InFlight { batch: i64, line: i64, amount: Fen },
    /// A recovered payment (duplicate or deceased person) not yet returned to the treasury.
    RecoveredNotReturned { batch: i64, line: i64, amount: Fen },
}

impl Outstanding {
    pub fn amount(&self) -> Fen {
        match self {
            Outstanding::FundedNotInstructed { amount, .. }
            | Outstanding::FailedOpen { amount, .. }
            | Outstanding::InFlight { amount, .. }
            | Outstanding::RecoveredNotReturned { amount, .. } => *amount,
        }
    }
    pub fn label_zh(&self) -> &'static str {
        match self {
            Outstanding::FundedNotInstructed { .. } => "资金已到零余额账户，尚未向银行提交发放指令",
            Outstanding::FailedOpen { .. } => "发放失败，尚未更正重发或退回财政",
            Outstanding::InFlight { .. } => "已交银行，尚无发放结果",
            Outstanding::RecoveredNotReturned { .. } => "追回资金在零余额账户，尚未退回财政",
        }
    }
}

/// The month-end verdict (乐山办法 四(五)3: "因重复领取、死亡冒领等退回不符合领取条件的资金，
/// 业务主管部门应通过单位零余额账户及时退回财政，按月清零"): the zero-balance accounts hold
/// nothing and nothing is outstanding.
pub fn month_end_passes(zero_balance: Fen, outstanding: &[Outstanding]) -> bool {
    zero_balance.is_zero() && outstanding.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(count: u64, fen: i64) -> Totals {
        Totals {
            count,
            amount: Fen(fen),
        }
    }

    #[test]
    fn review_passes_only_when_all_three_agree() {
        let ok = ReviewFigures {
            summary: t(13, 546_000),
            detail: t(13, 546_000),
            declared: t(13, 546_000),
        };
        assert!(procedural_review(&ok).is_empty());
        let declared_short = ReviewFigures {
            declared: t(13, 536_000),
            ..ok
        };
        assert_eq!(
            procedural_review(&declared_short),
            ["申报数据5360.00元与明细数据5460.00元不一致（相差-100.00元）"]
        );
        let wrong_count = ReviewFigures {
            declared: t(12, 546_000),
            ..ok
        };
        assert_eq!(
            procedural_review(&wrong_count),
            ["申报数据12笔与明细数据13笔不一致"]
        );
        let summary_off = ReviewFigures {
            summary: t(13, 545_000),
            ..ok
        };
        assert_eq!(
            procedural_review(&summary_off),
            ["汇总数据5450.00元与明细数据5460.00元不一致（相差-10.00元）"]
        );
    }

    #[test]
    fn publicity_window_is_inclusive() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let w = PublicityWindow::new(d("2023-05-08"), 7);
        assert_eq!(w.ends, d("2023-05-14"));
        assert!(!w.is_over(d("2023-05-14")));
        assert!(w.is_over(d("2023-05-15")));
        assert_eq!(
            PublicityWindow::new(d("2023-05-08"), 0).ends,
            d("2023-05-08")
        );
        assert_eq!(post_publicity_deadline(d("2023-05-16")), d("2023-05-21"));
    }

    #[test]
    fn dual_verification_flags_each_kind_of_difference() {
        let d = NaiveDate::from_ymd_opt(2023, 5, 16).unwrap();
        let p = |line_id, fen| Publicised {
            line_id,
            amount: Fen(fen),
        };
        let c = |line_id, fen| BankCredit {
            line_id,
            amount: Fen(fen),
            date: d,
        };
        assert!(dual_verification(&[p(1, 100), p(2, 200)], &[c(2, 200), c(1, 100)]).is_empty());
        let diffs = dual_verification(
            &[p(1, 100), p(2, 200), p(3, 300), p(5, 500)],
            &[c(1, 100), c(2, 250), c(4, 400), c(5, 500), c(5, 500)],
        );
        assert_eq!(
            diffs,
            vec![
                Difference::AmountDiffers {
                    line_id: 2,
                    publicised: Fen(200),
                    credited: Fen(250)
                },
                Difference::NotCredited {
                    line_id: 3,
                    publicised: Fen(300)
                },
                Difference::NotPublicised {
                    line_id: 4,
                    credited: Fen(400)
                },
                Difference::CreditedTwice {
                    line_id: 5,
                    credits: 2
                },
            ]
        );
    }

    #[test]
    fn month_end_needs_zero_and_nothing_outstanding() {
        assert!(month_end_passes(Fen(0), &[]));
        assert!(!month_end_passes(Fen(1), &[]));
        assert!(!month_end_passes(
            Fen(0),
            &[Outstanding::InFlight {
                batch: 1,
                line: 2,
                amount: Fen(5)
            }]
        ));
    }

    #[test]
    fn statement_frequencies() {
        assert_eq!(
            StatementFrequency::parse("按季"),
            Some(StatementFrequency::Quarterly)
        );
        assert!(StatementFrequency::Monthly.accepts(&Period::parse("2023-05").unwrap()));
        assert!(!StatementFrequency::Monthly.accepts(&Period::parse("2023Q2").unwrap()));
        assert!(StatementFrequency::Yearly.accepts(&Period::parse("2023").unwrap()));
    }
}
