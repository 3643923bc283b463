//! # 黑龙江省: unified treasury payment (国库集中统一发放)
//!
//! Sources: 黑财监〔2021〕30号 (seed `000`), the 塔河县 implementation plan (seed `001`) and
//! 黑财监〔2023〕1号 with its 45-project plan (seed `002`). DOMAIN.md §6 summarises them.
//!
//! The model (黑财监〔2021〕30号 二(三)二、三): departments import reviewed rosters into the 一卡通
//! platform, which matches them against the card registry and pushes a disbursement plan to
//! the budget system; the budget system distributes the plan by fiscal region; each region's
//! department raises a treasury centralised payment request; finance approves it; the
//! treasury agent bank pays each card directly, and results flow back line by line. Money
//! never rests in a department, township or community account.
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

/// The 2023 plan of 黑财监〔2023〕1号 附件, all 45 projects, as shipped data.
pub const CATALOG_2023: &str = include_str!("../data/catalog-2023.toml");

pub const CODE: &str = "heilongjiang";
pub const NAME: &str = "黑龙江省";

pub const SOURCES: &[&str] = &[
    "黑财监〔2021〕30号 关于切实做好全省惠民惠农财政补贴资金“一卡通”管理工作的通知",
    "塔河县加强惠农惠民财政补贴资金“一卡通”管理工作的实施方案",
    "黑财监〔2023〕1号 2023年全省惠民惠农财政补贴资金“一卡通”发放工作计划",
];

fn parse(text: &str) -> Result<CatalogFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// The built-in catalogue.
pub fn catalog() -> Result<Catalog, ProvinceError> {
    load_catalog(CATALOG_2023, parse, &ProvinceConfig::default())
}

const STEPS: &[StepDef] = &[
    StepDef {
        code: "submit_plan",
        label: "生成并提交发放计划",
        role: Role::DeptMaker,
        from: &[S::Draft, S::Returned],
        to: S::Submitted,
        effect: Effect::None,
        separate_from: &[],
        deadline: None,
        artifacts: &["validation_report"],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)二：通过与社会保障卡信息的匹配、比对、校验，生成补贴资金发放计划",
    },
    StepDef {
        code: "push_plan",
        label: "推送发放计划至预算管理一体化系统",
        role: Role::System,
        from: &[S::Submitted],
        to: S::PlanPushed,
        effect: Effect::PushPlan,
        separate_from: &[],
        deadline: None,
        artifacts: &["disbursement_plan"],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)二：推送至预算管理一体化系统",
    },
    StepDef {
        code: "request_payment",
        label: "生成国库集中支付申请",
        role: Role::DeptMaker,
        from: &[S::PlanPushed],
        to: S::FundingRequested,
        effect: Effect::RequestFunding,
        separate_from: &[],
        deadline: None,
        artifacts: &["payment_voucher"],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)三：由各地补贴资金业务主管部门在预算管理一体化系统中生成国库集中支付申请",
    },
    StepDef {
        code: "finance_approve",
        label: "财政审核通过",
        role: Role::FinanceReviewer,
        from: &[S::FundingRequested],
        to: S::Approved,
        effect: Effect::None,
        separate_from: &[MAKER, "submit_plan", "request_payment"],
        deadline: None,
        artifacts: &[],
        ledger: &[LedgerMove {
            channel: Some(FundingChannel::GrainRiskFund),
            from: A::Adbc,
            to: A::GrainRiskFund,
            subject: Some("1700502"),
            memo: "农发行划转至人民银行国库粮食风险基金专户（收入科目1700502 粮食风险基金）",
        }],
        basis: "黑财监〔2021〕30号 二(三)三：经财政部门审核通过后",
    },
    StepDef {
        code: "finance_return",
        label: "财政退回",
        role: Role::FinanceReviewer,
        from: &[S::FundingRequested],
        to: S::Returned,
        effect: Effect::Return,
        separate_from: &[MAKER, "submit_plan", "request_payment"],
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)三",
    },
    StepDef {
        code: "treasury_pay",
        label: "国库集中支付代理银行打卡发放",
        role: Role::System,
        from: &[S::Approved],
        to: S::Dispatched,
        effect: Effect::Dispatch,
        separate_from: &[],
        deadline: None,
        artifacts: &["payment_voucher_5201"],
        ledger: &[
            LedgerMove {
                channel: Some(FundingChannel::Treasury),
                from: A::Treasury,
                to: A::AgentBank,
                subject: None,
                memo: "国库集中支付：国库与代理银行清算",
            },
            LedgerMove {
                channel: Some(FundingChannel::GrainRiskFund),
                from: A::GrainRiskFund,
                to: A::AgentBank,
                subject: Some("2220115"),
                memo: "粮食风险基金专户与代理银行清算（支出科目2220115 粮食风险基金）",
            },
        ],
        basis: "黑财监〔2021〕30号 二(三)三：由国库集中支付业务代理银行将资金支付到受益人社会保障卡账户",
    },
    StepDef {
        code: "collect_results",
        label: "接收发放结果反馈",
        role: Role::System,
        from: &[S::Dispatched],
        to: S::Settled,
        effect: Effect::CollectResults,
        separate_from: &[],
        deadline: None,
        artifacts: &["bank_results"],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)三：由预算管理一体化系统向“一卡通”平台反馈发放情况",
    },
    StepDef {
        code: "reconcile",
        label: "对账",
        role: Role::DeptMaker,
        from: &[S::Settled],
        to: S::Reconciled,
        effect: Effect::Reconcile,
        separate_from: &[],
        deadline: None,
        artifacts: &["reconciliation"],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)四：做好资金的核算及对账等工作",
    },
    StepDef {
        code: "publish",
        label: "公开公示并办结",
        role: Role::DeptMaker,
        from: &[S::Reconciled],
        to: S::Closed,
        effect: Effect::Publish,
        separate_from: &[],
        deadline: Some(DeadlineRule {
            after: "collect_results",
            days: 20,
            working_days: false,
            basis: "塔河县方案(七)：在补贴信息产生或发生变化20日内向社会公开",
        }),
        artifacts: &["web_notice", "lookup_records"],
        ledger: &[],
        basis: "塔河县方案(七)；黑财监〔2023〕1号 二：补贴查询专栏",
    },
];

/// Heilongjiang's workflow.
pub static WORKFLOW: WorkflowDef = WorkflowDef {
    initial: S::Draft,
    steps: STEPS,
};

/// 黑财监〔2021〕30号 二(三)三、四: treasury → treasury agent bank; grain-risk-fund projects:
/// ADBC → PBoC treasury grain-risk-fund special account → agent bank. No department, township
/// or community account is ever on the route.
pub fn route(channel: FundingChannel) -> &'static [A] {
    match channel {
        FundingChannel::Treasury => &[A::Treasury, A::AgentBank],
        FundingChannel::GrainRiskFund => &[A::Adbc, A::GrainRiskFund, A::AgentBank],
    }
}

fn build(cfg: &ProvinceConfig) -> Result<Box<dyn Province>, ProvinceError> {
    Ok(Box::new(StandardProvince {
        code: CODE,
        name: NAME,
        model: FundingModel::UnifiedTreasury,
        catalog: load_catalog(CATALOG_2023, parse, cfg)?,
        workflow: &WORKFLOW,
        sources: SOURCES,
        mask: Default::default(),
        sms: None,
        route,
    }))
}

inventory::submit! {
    ProvinceDescriptor { code: CODE, name: NAME, model: FundingModel::UnifiedTreasury, sources: SOURCES, build }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ykt_kernel::catalog::{Frequency, FundingChannel};
    use ykt_kernel::period::CrossPeriodRule;

    #[test]
    fn all_45_projects_of_the_2023_plan_load() {
        let c = catalog().unwrap();
        assert_eq!(c.len(), 45);
        let p = c.find("农村最低生活保障金").unwrap();
        assert_eq!(p.frequency, Frequency::Monthly);
        assert_eq!(p.cross_period, CrossPeriodRule::Months(2));
        assert_eq!(
            c.find("HLJ17").unwrap().cross_period,
            CrossPeriodRule::Months(3)
        );
        assert_eq!(
            c.find("HLJ43").unwrap().cross_period,
            CrossPeriodRule::Quarters(1)
        );
        assert_eq!(c.find("HLJ11").unwrap().frequency, Frequency::Several);
        assert_eq!(
            c.find("HLJ38").unwrap().funding,
            FundingChannel::GrainRiskFund
        );
        assert!(
            c.projects()
                .iter()
                .all(|p| p.short_name.chars().count() == 4)
        );
    }

    #[test]
    fn workflow_is_valid_and_registered() {
        WORKFLOW.validate().unwrap();
        assert!(ykt_kernel::provinces().iter().any(|d| d.code == CODE));
    }
}
