//! # 四川省: zero-balance-account payment (单位零余额账户发放)
//!
//! Sources: 川财办〔2018〕61号 with its 18-project table and the 乐山市 draft rules (seed `003`).
//! DOMAIN.md §7 summarises them; `provinces/sichuan/README.md` documents the flow, the
//! settings and the file formats.
//!
//! The model (川财办〔2018〕61号 三(四); 乐山办法 四): townships collect and publicise before
//! payment; the county department reviews and requests an authorised payment plan; finance
//! makes the procedural review ("汇总数据、明细数据与申报数据是否一致"); funds go to the
//! department's zero-balance account; the department compares the amounts again and submits
//! the disbursement; finance confirms; the department instructs its cooperating bank, which
//! credits the cards, sends a free SMS and reports every line. After payment, publicity
//! again within 5 days, checked against the bank's credits.
//!
//! This crate is pure data and rules ([`rules`]); it depends on the kernel only.

pub mod rules;

use rules::{DEFAULT_PUBLICITY_DAYS, StatementFrequency};
use ykt_kernel::catalog::{Catalog, CatalogFile, FundingChannel, Project, ProjectSpec};
use ykt_kernel::ledger::AccountKind as A;
use ykt_kernel::province::{
    FundingModel, Province, ProvinceConfig, ProvinceDescriptor, ProvinceError, StandardProvince,
    load_catalog,
};
use ykt_kernel::workflow::{DeadlineRule, Effect, LedgerMove, MAKER, StepDef, WorkflowDef};
use ykt_kernel::{BatchState as S, Fen, Role};

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

/// The province's own settings (`[province_settings]` of `ykt.toml`). Keys of the application
/// (`treasury_url`, `bank_dir`, ...) or of other provinces are ignored here; a present key of
/// the wrong type is an error naming the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Days the pre-payment village list stays posted (default
    /// [`rules::DEFAULT_PUBLICITY_DAYS`]).
    pub publicity_days: u32,
    /// How often statements go to beneficiaries (default monthly).
    pub statement_frequency: StatementFrequency,
    /// A city's own projects and sub-items (乐市财政函〔2018〕425号 一: "属同一类型的资金可参照
    /// 省目录设定方式，在大项目下设立子项目"), in the catalogue file's layout.
    pub city_projects: Vec<Project>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            publicity_days: DEFAULT_PUBLICITY_DAYS,
            statement_frequency: StatementFrequency::Monthly,
            city_projects: Vec::new(),
        }
    }
}

fn config(msg: String) -> ProvinceError {
    ProvinceError::Config(msg)
}

impl Settings {
    /// Read the settings from the `[province_settings]` table.
    pub fn from_json(v: &serde_json::Value) -> Result<Settings, ProvinceError> {
        let mut s = Settings::default();
        if let Some(d) = v.get("publicity_days") {
            let n = d
                .as_u64()
                .filter(|n| (1..=60).contains(n))
                .ok_or_else(|| {
                    config(format!(
                        "publicity_days 应为1至60之间的天数，实为「{d}」 (publicity_days must be 1 to 60 days)"
                    ))
                })?;
            s.publicity_days = u32::try_from(n).unwrap_or(DEFAULT_PUBLICITY_DAYS);
        }
        if let Some(f) = v.get("statement_frequency") {
            s.statement_frequency = f
                .as_str()
                .and_then(StatementFrequency::parse)
                .ok_or_else(|| {
                    config(format!(
                        "statement_frequency 应为 monthly、quarterly 或 yearly，实为「{f}」 (statement_frequency must be monthly, quarterly or yearly)"
                    ))
                })?;
        }
        if let Some(list) = v.get("city_projects") {
            let specs: Vec<ProjectSpec> = serde_json::from_value(list.clone()).map_err(|e| {
                config(format!(
                    "city_projects 无法解析：{e} (city_projects must be [[province_settings.city_projects]] tables like data/catalog.toml)"
                ))
            })?;
            for spec in specs {
                s.city_projects.push(spec.into_project()?);
            }
        }
        Ok(s)
    }
}

/// The catalogue: the built-in table merged with the configured city projects.
pub fn build_catalog(cfg: &ProvinceConfig) -> Result<Catalog, ProvinceError> {
    let settings = Settings::from_json(&cfg.settings)?;
    Ok(load_catalog(CATALOG, parse, cfg)?.merged(settings.city_projects)?)
}

/// The SMS the cooperating bank sends when a card is credited, free of charge, naming the
/// project and the amount (乐山办法 三(五)3: "免费对每笔补贴资金发放业务提供短信通知，并注明发放
/// 项目名称"; 四(四)4: "发送包含发放金额和项目名称的手机短信").
pub fn sms_text(project: &Project, amount: Fen, date: &str) -> String {
    format!(
        "【惠民惠农一卡通】您的{}{}元已于{}发放至社会保障卡账户，请注意查收。本短信免费。",
        project.name, amount, date
    )
}

/// Steps taken by the township and the department: finance must be someone else (乐山办法
/// 二(二): "形成分工明确、相互配合、相互监督的……发放管理格局").
const DEPT_STEPS: &[&str] = &[
    MAKER,
    "start_publicity",
    "township_submit",
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
        from: &[S::Draft],
        to: S::Publicity,
        effect: Effect::Publish,
        separate_from: &[],
        deadline: None,
        artifacts: &["village_notice", "township_summary"],
        ledger: &[],
        basis: "乐山办法 四(二)1：按照相关补贴项目资金管理办法或要求在乡镇、村级公开栏张榜公示；三(二)2：村级需公开明细，乡镇公开分村的汇总数",
    },
    StepDef {
        code: "township_submit",
        label: "公示期满、异议处理完毕，乡镇盖章报送",
        role: Role::TownshipClerk,
        from: &[S::Publicity],
        to: S::Submitted,
        effect: Effect::Publish,
        separate_from: &[],
        deadline: None,
        artifacts: &["publicity_statement"],
        ledger: &[],
        basis: "乐山办法 四(二)1：公示期满无异议的，由乡镇人民政府将采集的补贴基础数据加盖乡镇人民政府公章，连同公开公示佐证材料报送县级业务主管部门",
    },
    StepDef {
        code: "dept_review",
        label: "县级主管部门审核",
        role: Role::DeptHead,
        from: &[S::Submitted],
        to: S::Reviewed,
        effect: Effect::None,
        separate_from: &[MAKER, "start_publicity", "township_submit"],
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 四(二)1：县级业务主管部门审核无误后……；四(三)1：业务主管部门对收集的补贴数据进行审核、确认、汇总",
    },
    StepDef {
        code: "request_plan",
        label: "申报授权支付用款计划",
        role: Role::DeptMaker,
        from: &[S::Reviewed, S::Returned],
        to: S::FundingRequested,
        effect: Effect::None,
        separate_from: &[],
        deadline: None,
        artifacts: &["plan_declaration"],
        ledger: &[],
        basis: "川财办〔2018〕61号 三(四)：及时向同级财政部门申报授权支付用款计划；乐山办法 四(三)1：按现行财政资金申报程序及时向财政部门申报授权支付用款计划",
    },
    StepDef {
        code: "finance_review",
        label: "财政程序性复核通过",
        role: Role::FinanceReviewer,
        from: &[S::FundingRequested],
        to: S::Approved,
        effect: Effect::RequestFunding,
        separate_from: DEPT_STEPS,
        deadline: None,
        artifacts: &["procedural_review", "authorised_payment_voucher_8202"],
        ledger: &[],
        basis: "乐山办法 三(四)1：对业务主管部门录入报送的补贴资金发放汇总数据、明细数据与申报数据是否一致进行程序性复核；四(三)2：对补贴资金标准、金额等进行程序性复核",
    },
    StepDef {
        code: "finance_return",
        label: "财政退回主管部门修改",
        role: Role::FinanceReviewer,
        from: &[S::FundingRequested],
        to: S::Returned,
        effect: Effect::Return,
        separate_from: DEPT_STEPS,
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 三(四)1：将审核存在错误的数据及时返回到业务主管部门进行修改；四(三)2：如数据有误，退回主管部门重新修改",
    },
    // Only a draft: from the village publicity on (四(二)1) the list is public, and a
    // wrong list is corrected through objections and the finance review's return.
    StepDef::cancel(
        &[S::Draft],
        "乐山办法 三(三)3：确保补贴对象和发放数据的真实性和准确性。平台规则：公示前发现有误的草稿批次由主管部门作废、重新造册",
    ),
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
            memo: "财政拨付至主管部门单位零余额账户",
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
        basis: "乐山办法 四(四)1：业务主管部门收到财政部门拨付的资金后，通过惠民惠农财政补贴资金发放信息系统再次比对金额，提交发放申请",
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
        basis: "乐山办法 四(四)2：财政部门及时在惠民惠农财政补贴资金发放信息系统对补贴项目和金额进行程序性复核，审核无误后提交主管部门",
    },
    StepDef {
        code: "return_disbursement",
        label: "财政退回发放申请",
        role: Role::FinanceReviewer,
        from: &[S::DisbursementSubmitted],
        to: S::Funded,
        effect: Effect::Return,
        separate_from: DEPT_STEPS,
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 四(四)2：财政部门……对补贴项目和金额进行程序性复核（复核有误的发放申请退回主管部门，资金留在单位零余额账户）",
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
            memo: "单位零余额账户支付至补贴发放合作银行",
        }],
        basis: "乐山办法 四(四)3：业务主管部门收到财政部门审核确认后，向金融机构提交发放指令；川财办〔2018〕61号 三(四)：通过单位零余额账户将资金支付至补贴发放合作银行",
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
        basis: "乐山办法 三(五)2：负责将补贴发放情况反馈给业务主管部门，并提供发放明细清单，如资金发放失败需及时反馈失败人员明细和发放失败原因",
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
        basis: "乐山办法 四(六)：对相应项目实际发放情况、实际发放时间进行再公示，实现公示信息与银行到账信息的双向验证",
    },
    StepDef {
        code: "close",
        label: "办结",
        role: Role::DeptHead,
        from: &[S::Reconciled],
        to: S::Closed,
        effect: Effect::Close,
        separate_from: &[],
        deadline: None,
        artifacts: &[],
        ledger: &[],
        basis: "乐山办法 三(三)4：建立健全补贴资金的发放管理台账",
    },
];

/// Sichuan's workflow.
pub static WORKFLOW: WorkflowDef = WorkflowDef {
    initial: S::Draft,
    steps: STEPS,
};

/// 川财办〔2018〕61号 三(四): "通过单位零余额账户将资金支付至补贴发放合作银行" — treasury → the
/// department's zero-balance account → the cooperating bank. A refund walks it backwards: the
/// bank returns what it could not pay to the zero-balance account, which returns it to the
/// treasury (乐山办法 四(五)2: "将涉及资金从单位零余额账户退回财政金库").
pub fn route(_: FundingChannel) -> &'static [A] {
    &[A::Treasury, A::ZeroBalance, A::AgentBank]
}

fn build(cfg: &ProvinceConfig) -> Result<Box<dyn Province>, ProvinceError> {
    Ok(Box::new(StandardProvince {
        code: CODE,
        name: NAME,
        model: FundingModel::ZeroBalanceAccount,
        catalog: build_catalog(cfg)?,
        workflow: &WORKFLOW,
        sources: SOURCES,
        mask: Default::default(),
        sms: Some(sms_text),
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
        for s in STEPS {
            assert!(!s.basis.is_empty(), "{} cites its clause", s.code);
        }
    }

    /// The happy path from a fresh batch to closing, each step starting where the previous
    /// one ended; the zero-balance account goes up by the batch and back to zero.
    #[test]
    fn happy_path_reaches_closed_and_zero_balance_returns_to_zero() {
        let path = [
            "start_publicity",
            "township_submit",
            "dept_review",
            "request_plan",
            "finance_review",
            "fund_zero_balance",
            "submit_disbursement",
            "confirm_disbursement",
            "send_instruction",
            "collect_results",
            "post_publicity",
            "close",
        ];
        let mut state = WORKFLOW.initial;
        let mut zero_balance = 0i64;
        for code in path {
            let s = WORKFLOW.step(code).unwrap();
            assert!(s.from.contains(&state), "{code} from {state}");
            state = s.to;
            for m in s.ledger {
                if m.to == A::ZeroBalance {
                    zero_balance += 1;
                }
                if m.from == A::ZeroBalance {
                    zero_balance -= 1;
                }
            }
        }
        assert_eq!(state, S::Closed);
        assert_eq!(zero_balance, 0);
    }

    #[test]
    fn finance_is_never_the_department() {
        use ykt_kernel::RegionCode;
        use ykt_kernel::workflow::{BatchFacts, WorkflowError, authorize};
        let region = RegionCode::parse("511102").unwrap();
        let history = vec![("request_plan".to_owned(), "both".to_owned())];
        let facts = BatchFacts {
            id: 1,
            state: S::FundingRequested,
            region: &region,
            maker: "clerk",
            history: &history,
        };
        let both = ykt_kernel::User {
            login: "both".into(),
            name: "both".into(),
            roles: vec![Role::DeptMaker, Role::FinanceReviewer],
            region: RegionCode::parse("51").unwrap(),
            bank: None,
        };
        assert!(matches!(
            authorize(&WORKFLOW, "finance_review", &facts, &both),
            Err(WorkflowError::MakerChecker { .. })
        ));
        let finance = ykt_kernel::User {
            login: "finance".into(),
            roles: vec![Role::FinanceReviewer],
            ..both.clone()
        };
        assert!(authorize(&WORKFLOW, "finance_review", &facts, &finance).is_ok());
        let maker = ykt_kernel::User {
            login: "clerk".into(),
            roles: vec![Role::DeptHead],
            ..both
        };
        let submitted = BatchFacts {
            state: S::Submitted,
            history: &[],
            ..facts
        };
        assert!(matches!(
            authorize(&WORKFLOW, "dept_review", &submitted, &maker),
            Err(WorkflowError::MakerChecker { .. })
        ));
    }

    #[test]
    fn settings_and_city_projects() {
        let s = Settings::from_json(&serde_json::json!({
            "publicity_days": 10, "statement_frequency": "quarterly", "treasury_url": "http://x",
            "city_projects": [{"code": "LS09-9", "name": "乐山市困难群众价格临时补贴", "short_name": "价格补贴",
                                "parent": "SC09", "frequency": "多次/年"}]
        }))
        .unwrap();
        assert_eq!(s.publicity_days, 10);
        assert_eq!(s.statement_frequency, StatementFrequency::Quarterly);
        let cfg = ProvinceConfig {
            settings: serde_json::json!({"city_projects": [{"code": "LS09-9", "name": "乐山市困难群众价格临时补贴",
                "short_name": "价格补贴", "parent": "SC09", "frequency": "多次/年"}]}),
            extra_projects: vec![],
        };
        let c = build_catalog(&cfg).unwrap();
        assert_eq!(c.children("SC09").count(), 5);
        assert_eq!(c.find("LS09-9").unwrap().name, "乐山市困难群众价格临时补贴");
        for bad in [
            serde_json::json!({"publicity_days": 0}),
            serde_json::json!({"publicity_days": "seven"}),
            serde_json::json!({"statement_frequency": "weekly"}),
            serde_json::json!({"city_projects": [{"code": "X", "name": "x", "short_name": "x", "parent": "NOPE", "frequency": "1次/年"}]}),
            serde_json::json!({"city_projects": [{"code": "X", "name": "x", "short_name": "x", "frequency": "sometimes"}]}),
        ] {
            let cfg = ProvinceConfig {
                settings: bad.clone(),
                extra_projects: vec![],
            };
            assert!(
                build_catalog(&cfg).is_err() || Settings::from_json(&bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn sms_names_project_and_amount() {
        let c = catalog().unwrap();
        let p = c.find("SC09-1-1").unwrap();
        let t = sms_text(p, Fen(42_000), "2023年5月16日");
        assert!(t.contains("农村最低生活保障金") && t.contains("420.00元") && t.contains("免费"));
    }
}
