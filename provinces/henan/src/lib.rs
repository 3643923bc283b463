//! # 河南省: the bank pulls the detail by order number (发放单号)
//!
//! Source: 濮阳市惠民惠农财政补贴资金“一卡通”发放管理操作规程（试行）under 豫财监〔2021〕38号
//! (seed `004`). DOMAIN.md §8 summarises it; `README.md` in this crate maps each article to the
//! code and documents the bank interface and the budget-system messages.
//!
//! The model (第二十条至第二十四条): the department imports the reviewed roster and applies for
//! funds; finance makes the procedural review, picks the agent bank and generates the
//! disbursement application, pushing the order number, total and budget unit to the budget
//! system; the treasury pays the agent bank; the bank pulls the detail by order number,
//! credits the cards, sends an SMS with the project's 4-character short name, amount and
//! time, and feeds the results back online.
//!
//! This crate is pure data and rules; it depends on the kernel only:
//! - [`library`]: the project library and its change requests (第十至十二条);
//! - [`banks`]: candidate agent banks and the county's choice of one or two (第十五、十六条);
//! - [`calendar`]: the working-day calendar, kept as data (`data/calendar.toml`);
//! - [`reconcile`]: hand-over checks, deadlines, statements (第二十六条);
//! - the workflow steps below, the SMS template and the money route.

pub mod banks;
pub mod calendar;
pub mod library;
pub mod reconcile;

use ykt_kernel::catalog::{Catalog, CatalogFile, FundingChannel, Project};
use ykt_kernel::ledger::AccountKind as A;
use ykt_kernel::money::Fen;
use ykt_kernel::province::{
    FundingModel, Province, ProvinceConfig, ProvinceDescriptor, ProvinceError, StandardProvince,
    load_catalog,
};
use ykt_kernel::workflow::{DeadlineRule, Effect, LedgerMove, MAKER, StepDef, WorkflowDef};
use ykt_kernel::{BatchState as S, Role};

/// The project library a deployment starts with (第十条).
pub const LIBRARY: &str = include_str!("../data/library.toml");

pub const CODE: &str = "henan";
pub const NAME: &str = "河南省";
pub const SOURCES: &[&str] = &[
    "豫财监〔2021〕38号 河南省惠民惠农财政补贴资金“一卡通”发放管理操作规范（试行）",
    "濮阳市惠民惠农财政补贴资金“一卡通”发放管理操作规程（试行）",
];

fn parse(text: &str) -> Result<CatalogFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// The seeded project library.
pub fn catalog() -> Result<Catalog, ProvinceError> {
    load_catalog(LIBRARY, parse, &ProvinceConfig::default())
}

/// 第八条(五): "告知补贴资金到账情况，包括“补贴项目”四字简称、发放金额、到账时间等内容".
pub fn sms_text(project: &Project, amount: Fen, time: &str) -> String {
    format!(
        "【{}】{}元已于{}到账，请查收。",
        project.short_name, amount, time
    )
}

/// What an SMS the bank sent lacks of 第八条(五) ("“补贴项目”四字简称、发放金额、到账时间"): empty
/// when it complies.
pub fn sms_problems(text: &str, short_name: &str, amount: Fen) -> Vec<&'static str> {
    let mut out = Vec::new();
    if short_name.chars().count() != 4 || !text.contains(short_name) {
        out.push("缺少补贴项目四字简称");
    }
    if !text.contains(&format!("{amount}元")) {
        out.push("缺少发放金额");
    }
    let b = text.as_bytes();
    let has_time = b.windows(5).any(|w| {
        w[0].is_ascii_digit()
            && w[1].is_ascii_digit()
            && w[2] == b':'
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit()
    });
    if !has_time {
        out.push("缺少到账时间");
    }
    out
}

/// The budget unit (预算单位) pushed with an order (第二十一条): the county's department of the
/// project's lead unit, e.g. `华龙区` + `省民政厅` → `华龙区民政局`.
pub fn budget_unit(county_name: &str, lead_unit: &str) -> String {
    let unit = lead_unit.trim_start_matches('省');
    let unit = match unit.strip_suffix('厅') {
        Some(u) => format!("{u}局"),
        None => unit.to_owned(),
    };
    if unit.is_empty() {
        format!("{county_name}补贴项目主管部门")
    } else {
        format!("{county_name}{unit}")
    }
}

const STEPS: &[StepDef] = &[
    StepDef {
        code: "apply_funds",
        label: "导入清册并提交拨付申请",
        role: Role::DeptMaker,
        from: &[S::Draft, S::Returned],
        to: S::Submitted,
        effect: Effect::None,
        separate_from: &[],
        deadline: None,
        artifacts: &["validation_report"],
        ledger: &[],
        basis: "濮阳规程 第二十条：将审核确定的补贴发放清册……导入一卡通系统后，向同级财政部门提交补贴资金拨付申请",
    },
    StepDef {
        code: "finance_review",
        label: "财政程序性审核并选择代发银行",
        role: Role::FinanceReviewer,
        from: &[S::Submitted],
        to: S::Approved,
        effect: Effect::None,
        separate_from: &[MAKER, "apply_funds"],
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "濮阳规程 第二十一条：财政部门对补贴资金拨付申请等资料以及一卡通系统中的补贴数据进行程序性审核后，选择协议约定代发补贴项目的金融机构",
    },
    StepDef {
        code: "finance_return",
        label: "财政退回",
        role: Role::FinanceReviewer,
        from: &[S::Submitted],
        to: S::Returned,
        effect: Effect::Return,
        separate_from: &[MAKER, "apply_funds"],
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "濮阳规程 第二十一条：财政部门对……补贴数据进行程序性审核",
    },
    // Before the order number goes to the budget system (第二十一条 push): a draft, or a
    // batch finance returned.
    StepDef::cancel(
        &[S::Draft, S::Returned],
        "濮阳规程 第十三条：各级补贴项目主管部门……进行采集数据的准确性审核。平台规则：发放单号推送前发现有误的批次由主管部门作废、重新采集",
    ),
    StepDef {
        code: "push_order",
        label: "生成发放申请，推送发放单号、资金总额、预算单位至预算管理一体化系统",
        role: Role::FinanceReviewer,
        from: &[S::Approved],
        to: S::PlanPushed,
        effect: Effect::PushPlan,
        separate_from: &[],
        deadline: None,
        artifacts: &["order_push"],
        ledger: &[],
        basis: "濮阳规程 第二十一条：在一卡通系统中生成补贴资金发放申请，并将“发放单号”“资金总额”“预算单位”等信息推送到预算管理一体化系统",
    },
    StepDef {
        code: "treasury_pay",
        label: "挂接预算指标，国库拨付代发银行",
        role: Role::System,
        from: &[S::PlanPushed],
        to: S::Funded,
        effect: Effect::ConfirmFunding,
        separate_from: &[],
        deadline: None,
        artifacts: &[],
        ledger: &[LedgerMove {
            channel: None,
            from: A::Treasury,
            to: A::AgentBank,
            subject: None,
            memo: "国库拨付至代发金融机构",
        }],
        basis: "濮阳规程 第二十一条：根据“发放单号”及补贴项目信息，挂接预算指标或用款计划，生成资金支付申请，由财政国库支付机构按规定将补贴资金拨付至代发金融机构",
    },
    StepDef {
        code: "release_for_pull",
        label: "代发银行按发放单号获取明细",
        role: Role::System,
        from: &[S::Funded],
        to: S::Dispatched,
        effect: Effect::Dispatch,
        separate_from: &[],
        deadline: None,
        artifacts: &["pulled_detail"],
        ledger: &[],
        basis: "濮阳规程 第二十二条：补贴资金代发金融机构收到补贴资金后，根据“发放单号”通过一卡通系统获取补贴发放明细信息",
    },
    StepDef {
        code: "collect_results",
        label: "银行反馈发放结果",
        role: Role::System,
        from: &[S::Dispatched],
        to: S::Settled,
        effect: Effect::CollectResults,
        separate_from: &[],
        deadline: None,
        artifacts: &["bank_results", "sms"],
        ledger: &[],
        basis: "濮阳规程 第二十三条：代发金融机构应及时将发放结果反馈至一卡通系统……直至发放成功",
    },
    StepDef {
        code: "confirm_reconciliation",
        label: "核对银行交易结果并盖章备案",
        role: Role::DeptMaker,
        from: &[S::Settled],
        to: S::Reconciled,
        effect: Effect::Reconcile,
        separate_from: &[],
        deadline: Some(DeadlineRule {
            after: "collect_results",
            days: 5,
            working_days: true,
            basis: "濮阳规程 第二十六条：在收到乙方交易结果5个工作日内，完成核对工作",
        }),
        artifacts: &["reconciliation"],
        ledger: &[],
        basis: "濮阳规程 第二十六条：在收到乙方交易结果5个工作日内，完成核对工作……如确认无误，应在交易结果上加盖印章……同时报送财政部门备案",
    },
    StepDef {
        code: "publish_results",
        label: "确认并自动推送至惠民惠农补贴查询",
        role: Role::DeptMaker,
        from: &[S::Reconciled],
        to: S::Closed,
        effect: Effect::Publish,
        separate_from: &[],
        deadline: None,
        artifacts: &["lookup_records"],
        ledger: &[],
        basis: "濮阳规程 第二十四条：经……确认，由“一卡通”系统自动推送至河南政务服务网“惠民惠农补贴查询”专栏",
    },
];

/// Henan's workflow.
pub static WORKFLOW: WorkflowDef = WorkflowDef {
    initial: S::Draft,
    steps: STEPS,
};

/// 濮阳规程 第二十一条: the treasury pays the agent bank; 第二十三条: refunds return through the
/// original channel.
pub fn route(_: FundingChannel) -> &'static [A] {
    &[A::Treasury, A::AgentBank]
}

fn build(cfg: &ProvinceConfig) -> Result<Box<dyn Province>, ProvinceError> {
    Ok(Box::new(StandardProvince {
        code: CODE,
        name: NAME,
        model: FundingModel::BankPull,
        catalog: load_catalog(LIBRARY, parse, cfg)?,
        workflow: &WORKFLOW,
        sources: SOURCES,
        mask: Default::default(),
        sms: Some(sms_text),
        route,
    }))
}

inventory::submit! {
    ProvinceDescriptor { code: CODE, name: NAME, model: FundingModel::BankPull, sources: SOURCES, build }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 作废: the department's maker may cancel a draft or a batch finance returned, never one
    /// that is with finance or past it; nobody else may.
    #[test]
    fn cancel_only_before_the_order_leaves() {
        use ykt_kernel::workflow::{BatchFacts, authorize};
        use ykt_kernel::{RegionCode, User};
        let region = RegionCode::parse("410902").unwrap();
        let user = |roles: Vec<Role>| User {
            login: "u".into(),
            name: "u".into(),
            roles,
            region: region.clone(),
            bank: None,
        };
        let facts = |state| BatchFacts {
            id: 1,
            state,
            region: &region,
            maker: "maker",
            history: &[],
        };
        let maker = user(vec![Role::DeptMaker]);
        for state in [S::Draft, S::Returned] {
            let t = authorize(&WORKFLOW, "cancel", &facts(state), &maker).unwrap();
            assert_eq!((t.to, t.step.effect), (S::Cancelled, Effect::Cancel));
            assert!(
                authorize(
                    &WORKFLOW,
                    "cancel",
                    &facts(state),
                    &user(vec![Role::FinanceReviewer])
                )
                .is_err()
            );
        }
        for state in [
            S::Submitted,
            S::Approved,
            S::PlanPushed,
            S::Funded,
            S::Dispatched,
            S::Closed,
            S::Cancelled,
        ] {
            assert!(
                authorize(&WORKFLOW, "cancel", &facts(state), &maker).is_err(),
                "{state}"
            );
        }
    }

    #[test]
    fn library_loads_with_four_character_short_names() {
        let c = catalog().unwrap();
        assert!(c.len() >= 8);
        assert!(
            c.projects()
                .iter()
                .all(|p| p.short_name.chars().count() == 4)
        );
        let p = c.find("农村最低生活保障金").unwrap();
        assert_eq!(
            sms_text(p, Fen(32050), "2023-05-20 10:00"),
            "【农村低保】320.50元已于2023-05-20 10:00到账，请查收。"
        );
    }

    #[test]
    fn sms_compliance() {
        let c = catalog().unwrap();
        let p = c.find("农村最低生活保障金").unwrap();
        let text = sms_text(p, Fen(42000), "2023-05-20 10:00");
        assert!(sms_problems(&text, &p.short_name, Fen(42000)).is_empty());
        assert_eq!(
            sms_problems("您的补贴已到账", &p.short_name, Fen(42000)),
            ["缺少补贴项目四字简称", "缺少发放金额", "缺少到账时间"]
        );
        assert_eq!(
            sms_problems(&text, &p.short_name, Fen(42001)),
            ["缺少发放金额"]
        );
    }

    #[test]
    fn budget_units() {
        assert_eq!(budget_unit("华龙区", "省民政厅"), "华龙区民政局");
        assert_eq!(
            budget_unit("清丰县", "省卫生健康委员会"),
            "清丰县卫生健康委员会"
        );
        assert_eq!(budget_unit("清丰县", ""), "清丰县补贴项目主管部门");
    }

    #[test]
    fn workflow_is_valid_and_registered() {
        WORKFLOW.validate().unwrap();
        assert!(ykt_kernel::provinces().iter().any(|d| d.code == CODE));
    }
}
