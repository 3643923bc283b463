//! # 黑龙江省: unified treasury payment (国库集中统一发放)
//!
//! Sources: 黑财监〔2021〕30号 (seed `000`), the 塔河县 implementation plan (seed `001`) and
//! 黑财监〔2023〕1号 with its 45-project plan (seed `002`). DOMAIN.md §6 summarises them.
//!
//! The model (黑财监〔2021〕30号 二(三)二、三): departments import reviewed rosters into the 一卡通
//! platform, which matches them against the card registry and pushes a disbursement plan to
//! the budget system; the budget system distributes the plan by fiscal region; each region's
//! department raises a treasury centralised payment request; finance approves it; the
//! treasury agent bank pays each card directly, and results flow back line by line through the
//! budget system. Money never rests in a department, township or community account.
//!
//! This crate is pure data and rules; it depends on the kernel only. How the messages look on
//! the wire (the 5201 direct-payment voucher in GB18030 XML) is documented in
//! `docs/messages.md` and implemented by the adapters.

use std::collections::BTreeSet;
use ykt_kernel::catalog::{Catalog, CatalogFile, FundingChannel, Project};
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
/// Prefix of the province's statistical division codes.
pub const REGION_PREFIX: &str = "23";

pub const SOURCES: &[&str] = &[
    "黑财监〔2021〕30号 关于切实做好全省惠民惠农财政补贴资金“一卡通”管理工作的通知",
    "塔河县加强惠农惠民财政补贴资金“一卡通”管理工作的实施方案",
    "黑财监〔2023〕1号 2023年全省惠民惠农财政补贴资金“一卡通”发放工作计划",
];

/// Income subject of the grain risk fund (黑财监〔2021〕30号 二(三)四: "收入科目选用：1700502，
/// 粮食风险基金").
pub const SUBJECT_GRAIN_INCOME: &str = "1700502";
/// Expenditure subject of the grain risk fund (二(三)四: "支出科目选用：2220115，粮食风险基金").
pub const SUBJECT_GRAIN_EXPENDITURE: &str = "2220115";

/// The projects paid through the grain risk fund special account by default: the four
/// farm subsidies the provincial finance department leads in the 2023 plan (序号38-41:
/// 耕地地力保护补贴资金, 玉米/大豆/稻谷生产者补贴), the "农业发展银行粮食风险基金专户管理的向受益人
/// 个人发放的惠农补贴资金" of 黑财监〔2021〕30号 二(三)四. `[province_settings]
/// grain_risk_fund_projects` replaces this list.
pub const DEFAULT_GRAIN_RISK_FUND_PROJECTS: &[&str] = &["HLJ38", "HLJ39", "HLJ40", "HLJ41"];

/// Days after review within which the reviewed list is posted on the bulletin board (塔河县方案
/// (七): "各业务主管部门或责任单位应于补贴资金审核后7日内在基层政务公示栏进行公示").
pub const BULLETIN_DAYS: u32 = 7;
/// Days after the information is produced or changed within which it is published on the
/// government portal (塔河县方案(七): "在补贴信息产生或发生变化20日内向社会公开").
pub const WEB_DAYS: u32 = 20;

fn parse(text: &str) -> Result<CatalogFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// The built-in catalogue with the default funding channels.
pub fn catalog() -> Result<Catalog, ProvinceError> {
    build_catalog(&ProvinceConfig::default())
}

/// The province's own settings (`[province_settings]`); keys of other provinces or of the
/// application (e.g. `budget_url`) are ignored here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Codes (or names) of the projects paid through the grain risk fund; `None` = the
    /// documented default [`DEFAULT_GRAIN_RISK_FUND_PROJECTS`].
    pub grain_risk_fund_projects: Option<Vec<String>>,
}

impl Settings {
    /// The province's own table: `[province_settings.heilongjiang]` when present (a
    /// configuration shared by several provinces), else `[province_settings]` itself.
    pub fn table(v: &serde_json::Value) -> &serde_json::Value {
        match v.get(CODE) {
            Some(t) if t.is_object() => t,
            _ => v,
        }
    }

    /// Read the settings; a present key of the wrong type is an error naming the key.
    pub fn from_json(v: &serde_json::Value) -> Result<Settings, ProvinceError> {
        let v = Settings::table(v);
        let mut s = Settings::default();
        if let Some(list) = v.get("grain_risk_fund_projects") {
            let items = list.as_array().ok_or_else(|| {
                ProvinceError::Config(
                    "grain_risk_fund_projects 应为项目代码或名称的数组 (must be an array of project codes or names)"
                        .into(),
                )
            })?;
            let mut codes = Vec::new();
            for i in items {
                let c = i.as_str().ok_or_else(|| {
                    ProvinceError::Config(format!(
                        "grain_risk_fund_projects 中的「{i}」不是字符串 (not a string)"
                    ))
                })?;
                codes.push(c.trim().to_owned());
            }
            s.grain_risk_fund_projects = Some(codes);
        }
        Ok(s)
    }
}

/// The catalogue with the funding channel of each project set from the settings
/// (黑财监〔2021〕30号 二(三)四: grain-risk-fund projects go through the PBoC special account).
pub fn build_catalog(cfg: &ProvinceConfig) -> Result<Catalog, ProvinceError> {
    let settings = Settings::from_json(&cfg.settings)?;
    let base = load_catalog(CATALOG_2023, parse, cfg)?;
    let Some(list) = settings.grain_risk_fund_projects else {
        return Ok(base);
    };
    let mut grain = BTreeSet::new();
    for key in &list {
        let p = base.find(key).ok_or_else(|| {
            ProvinceError::Config(format!(
                "grain_risk_fund_projects 中的「{key}」不在补贴项目目录中 (unknown project)"
            ))
        })?;
        grain.insert(p.code.clone());
    }
    let projects: Vec<Project> = base
        .projects()
        .iter()
        .cloned()
        .map(|mut p| {
            p.funding = if grain.contains(&p.code) {
                FundingChannel::GrainRiskFund
            } else {
                FundingChannel::Treasury
            };
            p
        })
        .collect();
    Ok(Catalog::new(projects)?)
}

/// The county-level department that administers a project in a county (the policy list's
/// 主管部门 column, 塔河县方案(四)): the county counterpart of the provincial lead unit of
/// 黑财监〔2023〕1号 附件, e.g. 省民政厅 → 塔河县民政局. The farm subsidies led by the provincial
/// finance department are administered with the agriculture department.
pub fn county_department(project: &Project, county: &str) -> String {
    let units: Vec<&str> = project
        .lead_unit
        .split([' ', '、', '，'])
        .filter(|u| !u.is_empty())
        .collect();
    let mut out: Vec<String> = Vec::new();
    for u in units {
        let local = match u {
            "省发展和改革委员会" => "发展和改革局",
            "省民政厅" => "民政局",
            "省人力资源和社会保障厅" => "人力资源和社会保障局",
            "省教育厅" => "教育局",
            "省财政厅" => "财政局",
            "省乡村振兴局" => "乡村振兴局",
            "省住房和城乡建设厅" => "住房和城乡建设局",
            "省林业和草原局" => "林业和草原局",
            other => other.trim_start_matches('省'),
        };
        out.push(format!("{county}{local}"));
        if u == "省财政厅" && project.funding == FundingChannel::GrainRiskFund {
            out.push(format!("{county}农业农村局"));
        }
    }
    out.join("、")
}

/// The special account's name in the format the seed prescribes (黑财监〔2021〕30号 二(三)四:
/// "账户名称格式统一为“**市（县、区）粮食风险基金专户”"), e.g. `塔河县粮食风险基金专户`.
pub fn grain_account_name(county: &str) -> String {
    format!("{county}粮食风险基金专户")
}

/// The six supervision indicators of 黑财监〔2023〕1号 三 ("补贴发放项目数量、发放人（户）次、发放
/// 金额、发放成功率、社会保障卡发放占比、社会保障卡激活率"), in the document's order:
/// (stable key, Chinese label).
pub const INDICATORS: [(&str, &str); 6] = [
    ("projects_paid", "补贴发放项目数量"),
    ("person_times", "发放人（户）次"),
    ("amount_paid", "发放金额"),
    ("success_rate", "发放成功率"),
    ("card_share", "社会保障卡发放占比"),
    ("activation_rate", "社会保障卡激活率"),
];

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
        artifacts: &["validation_report", "bulletin_notice"],
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
        artifacts: &["disbursement_plan", "region_plans"],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)二：推送至预算管理一体化系统；二(三)三：预算管理一体化系统按财政区划自动分发各地",
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
        artifacts: &["payment_request", "voucher_5201_header"],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)三：由各地补贴资金业务主管部门在预算管理一体化系统中生成国库集中支付申请",
    },
    StepDef {
        code: "finance_approve",
        label: "财政审核通过",
        role: Role::FinanceReviewer,
        // The approval is relayed to the budget system, which releases the voucher to the
        // treasury agent bank: the request that moves the money (Effect::RequestFunding).
        from: &[S::FundingRequested],
        to: S::Approved,
        effect: Effect::RequestFunding,
        separate_from: &[MAKER, "submit_plan", "request_payment"],
        deadline: None,
        artifacts: &["approval"],
        ledger: &[LedgerMove {
            channel: Some(FundingChannel::GrainRiskFund),
            from: A::Adbc,
            to: A::GrainRiskFund,
            subject: Some(SUBJECT_GRAIN_INCOME),
            memo: "农发行划转至人民银行国库粮食风险基金专户（收入科目1700502 粮食风险基金）",
        }],
        basis: "黑财监〔2021〕30号 二(三)三：经财政部门审核通过后；二(三)四：根据审核通过的补贴资金国库集中支付申请，先将资金由同级农业发展银行划转至同级人民银行国库粮食风险基金专户",
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
        basis: "黑财监〔2021〕30号 二(三)三：国库集中支付申请须经财政部门审核",
    },
    // Only before the plan goes out: once pushed, the budget system holds the plan and a
    // returned batch is corrected and submitted again (二(三)三), not cancelled here.
    StepDef::cancel(
        &[S::Draft],
        "黑财监〔2021〕30号 二(三)二：通过与社会保障卡信息的匹配、比对、校验，生成补贴资金发放计划。平台规则：发放计划推送前发现有误的批次由主管部门作废、重新造册",
    ),
    StepDef {
        code: "treasury_pay",
        label: "国库集中支付代理银行打卡发放",
        role: Role::System,
        from: &[S::Approved],
        to: S::Dispatched,
        effect: Effect::Dispatch,
        separate_from: &[],
        deadline: None,
        artifacts: &["voucher_5201"],
        ledger: &[
            LedgerMove {
                channel: Some(FundingChannel::Treasury),
                from: A::Treasury,
                to: A::AgentBank,
                subject: None,
                memo: "财政直接支付：国库单一账户与代理银行清算（代理银行待结算财政款项）",
            },
            LedgerMove {
                channel: Some(FundingChannel::GrainRiskFund),
                from: A::GrainRiskFund,
                to: A::AgentBank,
                subject: Some(SUBJECT_GRAIN_EXPENDITURE),
                memo: "粮食风险基金专户与代理银行清算（支出科目2220115 粮食风险基金）",
            },
        ],
        basis: "黑财监〔2021〕30号 二(三)三：由国库集中支付业务代理银行将资金支付到受益人社会保障卡账户；二(三)四：通过代理银行将补贴资金发放至受益人社会保障卡账户，并与同级人民银行国库粮食风险基金专户进行清算",
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
        artifacts: &["return_5201"],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)三：由预算管理一体化系统向“一卡通”平台反馈发放情况",
    },
    StepDef {
        code: "reconcile",
        label: "对账与资金清算",
        role: Role::FinanceReviewer,
        from: &[S::Settled],
        to: S::Reconciled,
        effect: Effect::Reconcile,
        separate_from: &[],
        deadline: None,
        artifacts: &["clearing_statement"],
        ledger: &[],
        basis: "黑财监〔2021〕30号 二(三)四：各级财政部门、人民银行、农业发展银行、代理银行要做好粮食风险基金专户资金的核算及对账等工作",
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
            days: WEB_DAYS,
            working_days: false,
            basis: "塔河县方案(七)：在补贴信息产生或发生变化20日内向社会公开",
        }),
        artifacts: &["web_notice", "lookup_records"],
        ledger: &[],
        basis: "塔河县方案(七)；黑财监〔2023〕1号 二：发放信息上传到专区“补贴查询”专栏向社会公开",
    },
];

/// Heilongjiang's workflow.
pub static WORKFLOW: WorkflowDef = WorkflowDef {
    initial: S::Draft,
    steps: STEPS,
};

/// The System steps that follow a step automatically (the platform acts on its own right
/// after): the reviewed plan is pushed at once, the approved voucher is paid at once.
pub fn follow_up(step: &str) -> Option<&'static str> {
    match step {
        "submit_plan" => Some("push_plan"),
        "finance_approve" => Some("treasury_pay"),
        _ => None,
    }
}

/// 黑财监〔2021〕30号 二(三)三、四: treasury → treasury agent bank; grain-risk-fund projects:
/// ADBC → PBoC treasury grain-risk-fund special account → agent bank. No department, township
/// or community account is ever on the route ("补贴资金不再拨入业务主管部门、乡镇、街道、社区等单位
/// 账户").
pub fn route(channel: FundingChannel) -> &'static [A] {
    match channel {
        FundingChannel::Treasury => &[A::Treasury, A::AgentBank],
        FundingChannel::GrainRiskFund => &[A::Adbc, A::GrainRiskFund, A::AgentBank],
    }
}

/// The SMS a beneficiary receives: project, amount and date, no personal data.
fn sms(project: &Project, amount: ykt_kernel::Fen, date: &str) -> String {
    format!(
        "【惠民惠农一卡通】您的{}{}元已于{}由国库集中支付发放至您的社会保障卡账户。",
        project.name, amount, date
    )
}

fn build(cfg: &ProvinceConfig) -> Result<Box<dyn Province>, ProvinceError> {
    Ok(Box::new(StandardProvince {
        code: CODE,
        name: NAME,
        model: FundingModel::UnifiedTreasury,
        catalog: build_catalog(cfg)?,
        workflow: &WORKFLOW,
        sources: SOURCES,
        mask: Default::default(),
        sms: Some(sms),
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
    fn all_45_projects_of_the_2023_plan_load_with_every_column() {
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
        assert_eq!(c.find("HLJ39").unwrap().test_date, "2023年6月下旬");
        assert_eq!(c.find("HLJ17").unwrap().go_live, "2023年6月");
        for p in c.projects() {
            assert_eq!(p.short_name.chars().count(), 4, "{}", p.code);
            for (col, v) in [
                ("lead_unit", &p.lead_unit),
                ("policy_basis", &p.policy_basis),
                ("target", &p.target),
                ("standard_text", &p.standard_text),
                ("conditions", &p.conditions),
                ("test_date", &p.test_date),
                ("go_live", &p.go_live),
            ] {
                assert!(!v.trim().is_empty(), "{} has no {col}", p.code);
            }
        }
        let grain: Vec<&str> = c
            .projects()
            .iter()
            .filter(|p| p.funding == FundingChannel::GrainRiskFund)
            .map(|p| p.code.as_str())
            .collect();
        assert_eq!(grain, DEFAULT_GRAIN_RISK_FUND_PROJECTS);
    }

    #[test]
    fn grain_risk_fund_projects_are_configuration() {
        let cfg = ProvinceConfig {
            settings: serde_json::json!({"grain_risk_fund_projects": ["HLJ38", "玉米生产者补贴"], "budget_url": "x"}),
            extra_projects: vec![],
        };
        let c = build_catalog(&cfg).unwrap();
        assert_eq!(
            c.find("HLJ39").unwrap().funding,
            FundingChannel::GrainRiskFund
        );
        assert_eq!(c.find("HLJ40").unwrap().funding, FundingChannel::Treasury);
        let nested = ProvinceConfig {
            settings: serde_json::json!({"heilongjiang": {"grain_risk_fund_projects": ["HLJ40"]}}),
            extra_projects: vec![],
        };
        let c = build_catalog(&nested).unwrap();
        assert_eq!(
            c.find("HLJ40").unwrap().funding,
            FundingChannel::GrainRiskFund
        );
        assert_eq!(c.find("HLJ38").unwrap().funding, FundingChannel::Treasury);
        let bad = ProvinceConfig {
            settings: serde_json::json!({"grain_risk_fund_projects": ["HLJ99"]}),
            extra_projects: vec![],
        };
        assert!(matches!(build_catalog(&bad), Err(ProvinceError::Config(_))));
        let wrong_type = ProvinceConfig {
            settings: serde_json::json!({"grain_risk_fund_projects": "HLJ38"}),
            extra_projects: vec![],
        };
        assert!(matches!(
            build_catalog(&wrong_type),
            Err(ProvinceError::Config(_))
        ));
    }

    #[test]
    fn county_departments_and_special_accounts() {
        let c = catalog().unwrap();
        assert_eq!(
            county_department(c.find("HLJ03").unwrap(), "塔河县"),
            "塔河县民政局"
        );
        assert_eq!(
            county_department(c.find("HLJ27").unwrap(), "道里区"),
            "道里区教育局、道里区人力资源和社会保障局"
        );
        assert_eq!(
            county_department(c.find("HLJ38").unwrap(), "塔河县"),
            "塔河县财政局、塔河县农业农村局"
        );
        assert_eq!(grain_account_name("塔河县"), "塔河县粮食风险基金专户");
    }

    #[test]
    fn workflow_is_valid_registered_and_never_routes_through_a_unit_account() {
        WORKFLOW.validate().unwrap();
        assert!(ykt_kernel::provinces().iter().any(|d| d.code == CODE));
        for ch in [FundingChannel::Treasury, FundingChannel::GrainRiskFund] {
            assert!(!route(ch).contains(&A::ZeroBalance));
            assert_eq!(route(ch).last(), Some(&A::AgentBank));
        }
        for s in STEPS {
            assert!(!s.basis.is_empty(), "{} has no basis", s.code);
            for m in s.ledger {
                assert!(m.from != A::ZeroBalance && m.to != A::ZeroBalance);
            }
        }
        // Finance never approves what its own user prepared or requested.
        let approve = WORKFLOW.step("finance_approve").unwrap();
        assert!(approve.separate_from.contains(&MAKER));
        assert!(approve.separate_from.contains(&"request_payment"));
    }
}
