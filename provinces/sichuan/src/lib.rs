//! # 四川省: zero-balance-account payment (单位零余额账户发放)
//!
//! Sources: 川财办〔2018〕61号 with its 18-project table and the 乐山市 draft rules (seed `003`).
//! DOMAIN.md §7 summarises them.
//!
//! The model (川财办〔2018〕61号 三(四); 乐山办法 四): townships collect and publicise before
//! payment; the county department reviews and requests an authorised payment plan; finance
//! makes the procedural review ("汇总数据、明细数据与申报数据是否一致"); funds go to the
//! department's zero-balance account; the department compares the amounts again and submits
//! the disbursement; finance confirms; the department instructs its cooperating bank, which
//! credits the cards, sends a free SMS and reports every line. After payment, publicity
//! again within 5 days.
//!
//! This crate is pure data and rules; it depends on the kernel only.

use ykt_kernel::catalog::{Catalog, CatalogFile, FundingChannel};
use ykt_kernel::ledger::AccountKind as A;
use ykt_kernel::province::{
    FundingModel, Province, ProvinceConfig, ProvinceDescriptor, ProvinceError, StandardProvince,
    load_catalog,
};
use ykt_kernel::workflow::{DeadlineRule, Effect, LedgerMove, MAKER, StepDef, WorkflowDef};
use ykt_kernel::{BatchState as S, Role};

/// The 18 projects of 川财办〔2018〕61号 附件 with their sub-items.
pub const CATALOG: &str = include_str!("../data/catalog.toml");

pub const CODE: &str = "sichuan";
pub const NAME: &str = "四川省";

pub const SOURCES: &[&str] = &[
    "川财办〔2018〕61号 惠民惠农财政补贴资金社会保障卡“一卡通”试点方案",
    "乐山市惠民惠农财政补贴资金社会保障卡“一卡通”发放管理办法（征求意见稿）",
];

fn parse(text: &str) -> Result<CatalogFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// The built-in catalogue.
pub fn catalog() -> Result<Catalog, ProvinceError> {
    load_catalog(CATALOG, parse, &ProvinceConfig::default())
}

/// The department's side of every finance decision: finance must be someone else.
const DEPT_STEPS: &[&str] = &[
    MAKER,
    "dept_review",
    "request_plan",
    "submit_disbursement",
    "send_instruction",
];

const STEPS: &[StepDef] = &[
    StepDef {
        code: "start_publicity",
        label: "村级发放前公示",
        role: Role::TownshipClerk,
        from: &[S::Draft, S::Returned],
        to: S::Publicity,
        effect: Effect::Publish,
        separate_from: &[],
        deadline: None,
        artifacts: &["village_notice"],
        ledger: &[],
        basis: "乐山办法 四(二)1：在乡镇、村级公开栏张榜公示",
    },
    StepDef {
        code: "township_submit",
        label: "公示期满无异议，乡镇盖章报送",
        role: Role::TownshipClerk,
        from: &[S::Publicity],
        to: S::Submitted,
        effect: Effect::None,
        separate_from: &[],
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 四(二)1：公示期满无异议的，由乡镇人民政府将采集的补贴基础数据加盖乡镇人民政府公章……报送县级业务主管部门",
    },
    StepDef {
        code: "dept_review",
        label: "县级主管部门审核",
        role: Role::DeptMaker,
        from: &[S::Submitted],
        to: S::Reviewed,
        effect: Effect::None,
        separate_from: &[MAKER],
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 四(三)1：业务主管部门对收集的补贴数据进行审核、确认、汇总",
    },
    StepDef {
        code: "request_plan",
        label: "申报授权支付用款计划",
        role: Role::DeptMaker,
        from: &[S::Reviewed],
        to: S::FundingRequested,
        effect: Effect::RequestFunding,
        separate_from: &[],
        deadline: None,
        artifacts: &["authorised_payment_voucher_8202"],
        ledger: &[],
        basis: "川财办〔2018〕61号 三(四)：及时向同级财政部门申报授权支付用款计划",
    },
    StepDef {
        code: "finance_review",
        label: "财政程序性复核通过",
        role: Role::FinanceReviewer,
        from: &[S::FundingRequested],
        to: S::Approved,
        effect: Effect::None,
        separate_from: DEPT_STEPS,
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 三(四)1：对汇总数据、明细数据与申报数据是否一致进行程序性复核",
    },
    StepDef {
        code: "finance_return",
        label: "财政退回修改",
        role: Role::FinanceReviewer,
        from: &[S::FundingRequested, S::DisbursementSubmitted],
        to: S::Returned,
        effect: Effect::Return,
        separate_from: DEPT_STEPS,
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 四(三)2：如数据有误，退回主管部门重新修改",
    },
    StepDef {
        code: "fund_zero_balance",
        label: "资金拨付至单位零余额账户",
        role: Role::System,
        from: &[S::Approved],
        to: S::Funded,
        effect: Effect::ConfirmFunding,
        separate_from: &[],
        deadline: None,
        artifacts: &[],
        ledger: &[LedgerMove {
            channel: None,
            from: A::Treasury,
            to: A::ZeroBalance,
            subject: None,
            memo: "拨付至主管部门单位零余额账户",
        }],
        basis: "乐山办法 四(三)2：审核无误后，将补贴资金拨付至主管部门零余额账户",
    },
    StepDef {
        code: "submit_disbursement",
        label: "再次比对金额，提交发放申请",
        role: Role::DeptMaker,
        from: &[S::Funded],
        to: S::DisbursementSubmitted,
        effect: Effect::None,
        separate_from: &[],
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 四(四)1：通过惠民惠农财政补贴资金发放信息系统再次比对金额，提交发放申请",
    },
    StepDef {
        code: "confirm_disbursement",
        label: "财政确认发放",
        role: Role::FinanceReviewer,
        from: &[S::DisbursementSubmitted],
        to: S::DisbursementConfirmed,
        effect: Effect::None,
        separate_from: DEPT_STEPS,
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 四(四)2：财政部门……对补贴项目和金额进行程序性复核，审核无误后提交主管部门",
    },
    StepDef {
        code: "send_instruction",
        label: "向合作银行提交发放指令",
        role: Role::DeptMaker,
        from: &[S::DisbursementConfirmed],
        to: S::Dispatched,
        effect: Effect::Dispatch,
        separate_from: &[],
        deadline: None,
        artifacts: &["payment_instruction"],
        ledger: &[LedgerMove {
            channel: None,
            from: A::ZeroBalance,
            to: A::AgentBank,
            subject: None,
            memo: "单位零余额账户支付至合作银行",
        }],
        basis: "乐山办法 四(四)3：业务主管部门收到财政部门审核确认后，向金融机构提交发放指令",
    },
    StepDef {
        code: "collect_results",
        label: "接收银行发放结果",
        role: Role::System,
        from: &[S::Dispatched],
        to: S::Settled,
        effect: Effect::CollectResults,
        separate_from: &[],
        deadline: None,
        artifacts: &["bank_results", "sms"],
        ledger: &[],
        basis: "乐山办法 三(五)2：提供发放明细清单，如资金发放失败需及时反馈失败人员明细和发放失败原因",
    },
    StepDef {
        code: "post_publicity",
        label: "发放后再公示并双向验证",
        role: Role::DeptMaker,
        from: &[S::Settled],
        to: S::Reconciled,
        effect: Effect::Publish,
        separate_from: &[],
        deadline: Some(DeadlineRule {
            after: "collect_results",
            days: 5,
            working_days: false,
            basis: "乐山办法 四(六)：各类补贴资金发放后5日内……进行再公示",
        }),
        artifacts: &["village_notice", "township_summary", "dual_verification"],
        ledger: &[],
        basis: "乐山办法 四(六)：实现公示信息与银行到账信息的双向验证",
    },
    StepDef {
        code: "close",
        label: "办结（零余额账户清零）",
        role: Role::DeptMaker,
        from: &[S::Reconciled],
        to: S::Closed,
        effect: Effect::Close,
        separate_from: &[],
        deadline: None,
        artifacts: &["statements"],
        ledger: &[],
        basis: "乐山办法 四(五)3：通过单位零余额账户及时退回财政，按月清零",
    },
];

/// Sichuan's workflow.
pub static WORKFLOW: WorkflowDef = WorkflowDef {
    initial: S::Draft,
    steps: STEPS,
};

/// 川财办〔2018〕61号 三(四): treasury → the department's zero-balance account → the cooperating
/// bank; unpaid money goes back the same way (乐山办法 四(五)2).
pub fn route(_: FundingChannel) -> &'static [A] {
    &[A::Treasury, A::ZeroBalance, A::AgentBank]
}

fn build(cfg: &ProvinceConfig) -> Result<Box<dyn Province>, ProvinceError> {
    Ok(Box::new(StandardProvince {
        code: CODE,
        name: NAME,
        model: FundingModel::ZeroBalanceAccount,
        catalog: load_catalog(CATALOG, parse, cfg)?,
        workflow: &WORKFLOW,
        sources: SOURCES,
        mask: Default::default(),
        sms: None,
        route,
    }))
}

inventory::submit! {
    ProvinceDescriptor { code: CODE, name: NAME, model: FundingModel::ZeroBalanceAccount, sources: SOURCES, build }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighteen_projects_with_sub_items() {
        let c = catalog().unwrap();
        let top: Vec<_> = c.projects().iter().filter(|p| p.parent.is_none()).collect();
        assert_eq!(top.len(), 18);
        assert_eq!(c.children("SC09").count(), 4);
        assert_eq!(c.children("SC10").count(), 6);
        assert_eq!(c.children("SC11").count(), 5);
        assert_eq!(
            c.find("农村最低生活保障金").unwrap().parent.as_deref(),
            Some("SC09-1")
        );
    }

    #[test]
    fn workflow_is_valid_and_registered() {
        WORKFLOW.validate().unwrap();
        assert!(ykt_kernel::provinces().iter().any(|d| d.code == CODE));
    }
}
