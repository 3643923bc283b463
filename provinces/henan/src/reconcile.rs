//! 补贴资金发放对账管理 (濮阳规程 第二十六条).
//!
//! "代发金融机构完成每批次代发补贴资金后，应向具体发放补贴资金的项目主管部门提供加盖银行及经办人印章的交易
//! 结果，并填写交接登记簿……项目补贴主管部门在收到乙方交易结果5个工作日内，完成核对工作。如发现错误，应在3个
//! 工作日内通知乙方采取补救措施解决；如确认无误，应在交易结果上加盖印章交回……同时报送财政部门备案。
//! 代发金融机构按发放补贴资金项目设立台账，每月对账，年末汇审。次年1月份与同级“一卡通”管理办公室对上年度
//! 发放补贴资金再进行汇总核对。"
//!
//! Pure rules: comparing a hand-over or a statement with the platform's own figures, and the
//! deadlines (in working days, see [`crate::calendar`]) with what is overdue on a given day.

use crate::calendar::{CalendarError, WorkCalendar};
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use ykt_kernel::batch::Totals;

/// Working days the department has to check a hand-over (第二十六条 "5个工作日内，完成核对工作").
pub const CHECK_WITHIN: u32 = 5;
/// Working days the department has to notify the bank of an error (第二十六条 "应在3个工作日内
/// 通知乙方采取补救措施").
pub const NOTIFY_WITHIN: u32 = 3;

/// What the bank's hand-over (交易结果) says about an order, cumulatively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct HandoverTotals {
    pub credited: Totals,
    pub failed: Totals,
}

/// A difference between the bank's hand-over and the platform's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    pub what: &'static str,
    pub bank: Totals,
    pub platform: Totals,
}

impl Discrepancy {
    pub fn describe(&self) -> String {
        format!(
            "{}：银行{}笔{}元，系统{}笔{}元",
            self.what, self.bank.count, self.bank.amount, self.platform.count, self.platform.amount
        )
    }
}

/// Compare the bank's hand-over with the platform's tally of the order (credited lines, and
/// lines whose last attempt failed).
pub fn compare_handover(bank: HandoverTotals, platform: HandoverTotals) -> Vec<Discrepancy> {
    let mut out = Vec::new();
    if bank.credited != platform.credited {
        out.push(Discrepancy {
            what: "已入账",
            bank: bank.credited,
            platform: platform.credited,
        });
    }
    if bank.failed != platform.failed {
        out.push(Discrepancy {
            what: "发放失败",
            bank: bank.failed,
            platform: platform.failed,
        });
    }
    out
}

/// Where a hand-over stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum HandoverState {
    /// Received, not yet checked.
    Open,
    /// Checked without error, stamped and filed with finance.
    Confirmed { on: NaiveDate },
    /// An error was found and the bank notified to remedy it.
    Disputed { on: NaiveDate },
}

/// The facts of one hand-over the deadlines depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoverFacts {
    pub received_on: NaiveDate,
    /// Whether the platform found a discrepancy at receipt.
    pub discrepancy: bool,
    pub state: HandoverState,
}

/// A deadline and whether it was or is missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub due: NaiveDate,
    /// When it was met, if it was.
    pub met_on: Option<NaiveDate>,
    /// Not met by `due` (met late, or still open after `due`).
    pub overdue: bool,
}

impl Deadline {
    fn new(due: NaiveDate, met_on: Option<NaiveDate>, as_of: NaiveDate) -> Deadline {
        let overdue = match met_on {
            Some(d) => d > due,
            None => as_of > due,
        };
        Deadline {
            due,
            met_on,
            overdue,
        }
    }

    pub fn label_zh(&self) -> String {
        match (self.met_on, self.overdue) {
            (Some(d), false) => format!("{}前，已于{}完成", self.due, d),
            (Some(d), true) => format!("{}前，逾期于{}完成", self.due, d),
            (None, false) => format!("{}前，待办", self.due),
            (None, true) => format!("{}前，已逾期未办", self.due),
        }
    }
}

/// The deadlines of a hand-over as of `as_of`: the check within 5 working days of receipt;
/// when the platform found an error at receipt, the notice to the bank within 3 working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HandoverDeadlines {
    pub check: Deadline,
    pub notify: Option<Deadline>,
}

impl HandoverDeadlines {
    pub fn any_overdue(&self) -> bool {
        self.check.overdue || self.notify.is_some_and(|n| n.overdue)
    }
}

/// Compute the deadlines of a hand-over as of `as_of`.
pub fn handover_deadlines(
    cal: &WorkCalendar,
    h: &HandoverFacts,
    as_of: NaiveDate,
) -> Result<HandoverDeadlines, CalendarError> {
    let check_due = cal.add_working_days(h.received_on, CHECK_WITHIN)?;
    let done_on = match h.state {
        HandoverState::Open => None,
        HandoverState::Confirmed { on } | HandoverState::Disputed { on } => Some(on),
    };
    let notify = if h.discrepancy {
        let due = cal.add_working_days(h.received_on, NOTIFY_WITHIN)?;
        let notified = match h.state {
            HandoverState::Disputed { on } => Some(on),
            _ => None,
        };
        Some(Deadline::new(due, notified, as_of))
    } else {
        None
    };
    Ok(HandoverDeadlines {
        check: Deadline::new(check_due, done_on, as_of),
        notify,
    })
}

/// The annual reconciliation of `year` is due in January of the next year (第二十六条 "次年1月份
/// ……对上年度发放补贴资金再进行汇总核对"): by 31 January.
pub fn annual_due(year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year + 1, 1, 31).unwrap_or(NaiveDate::MAX)
}

/// Whether the annual reconciliation of `year` may be made on `on` (from 1 January of the next
/// year: the year must be over).
pub fn annual_open(year: i32, on: NaiveDate) -> bool {
    on.year() > year
}

/// One project line of a bank statement (台账) compared with the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub project: String,
    pub bank: Totals,
    pub platform: Totals,
}

impl StatementLine {
    pub fn matches(&self) -> bool {
        self.bank == self.platform
    }
}

/// Compare a bank's per-project ledger with the platform's figures for the same bank and
/// period; every project present on either side appears once, sorted by code.
pub fn compare_statement(
    bank: &[(String, Totals)],
    platform: &[(String, Totals)],
) -> Vec<StatementLine> {
    let mut codes: Vec<&String> = bank.iter().chain(platform).map(|(c, _)| c).collect();
    codes.sort();
    codes.dedup();
    let find = |side: &[(String, Totals)], c: &str| {
        side.iter()
            .find(|(x, _)| x == c)
            .map(|(_, t)| *t)
            .unwrap_or_default()
    };
    codes
        .into_iter()
        .map(|c| StatementLine {
            project: c.clone(),
            bank: find(bank, c),
            platform: find(platform, c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ykt_kernel::Fen;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn t(count: u64, fen: i64) -> Totals {
        Totals {
            count,
            amount: Fen(fen),
        }
    }

    #[test]
    fn handover_comparison() {
        let p = HandoverTotals {
            credited: t(10, 4200),
            failed: t(2, 840),
        };
        assert!(compare_handover(p, p).is_empty());
        let b = HandoverTotals {
            credited: t(9, 3780),
            ..p
        };
        let d = compare_handover(b, p);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].describe(), "已入账：银行9笔37.80元，系统10笔42.00元");
    }

    #[test]
    fn deadlines_in_working_days() {
        let cal = WorkCalendar::builtin().unwrap();
        // Received Saturday 2023-05-20: check by Friday 5/26, notify by Wednesday 5/24.
        let open = HandoverFacts {
            received_on: d("2023-05-20"),
            discrepancy: true,
            state: HandoverState::Open,
        };
        let dl = handover_deadlines(&cal, &open, d("2023-05-24")).unwrap();
        assert_eq!(dl.check.due, d("2023-05-26"));
        assert_eq!(dl.notify.unwrap().due, d("2023-05-24"));
        assert!(!dl.any_overdue());
        let dl = handover_deadlines(&cal, &open, d("2023-05-25")).unwrap();
        assert!(dl.notify.unwrap().overdue && !dl.check.overdue);
        let dl = handover_deadlines(&cal, &open, d("2023-05-29")).unwrap();
        assert!(dl.check.overdue);
        assert_eq!(dl.check.label_zh(), "2023-05-26前，已逾期未办");

        let late = HandoverFacts {
            state: HandoverState::Confirmed {
                on: d("2023-05-29"),
            },
            discrepancy: false,
            ..open
        };
        let dl = handover_deadlines(&cal, &late, d("2023-06-30")).unwrap();
        assert!(dl.check.overdue && dl.notify.is_none());
        let on_time = HandoverFacts {
            state: HandoverState::Disputed {
                on: d("2023-05-22"),
            },
            ..open
        };
        let dl = handover_deadlines(&cal, &on_time, d("2023-06-30")).unwrap();
        assert!(!dl.any_overdue());
    }

    #[test]
    fn annual_reconciliation_in_january() {
        assert_eq!(annual_due(2025), d("2026-01-31"));
        assert!(!annual_open(2026, d("2026-11-22")));
        assert!(annual_open(2025, d("2026-01-05")));
    }

    #[test]
    fn statements_compare_per_project() {
        let lines = compare_statement(
            &[("HN03".into(), t(3, 300)), ("HN07".into(), t(1, 50))],
            &[("HN03".into(), t(3, 300)), ("HN02".into(), t(2, 20))],
        );
        let codes: Vec<_> = lines
            .iter()
            .map(|l| (l.project.as_str(), l.matches()))
            .collect();
        assert_eq!(codes, [("HN02", false), ("HN03", true), ("HN07", false)]);
    }
}
