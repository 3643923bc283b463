//! The province plug-in: a `Province` gives its catalogue, workflow, masking and message
//! formats; a `ProvinceDescriptor` registers it through `inventory`, so the binary lists
//! exactly the provinces compiled in (one cargo feature each).

use crate::catalog::{Catalog, CatalogError, FundingChannel, Project};
use crate::ledger::AccountKind;
use crate::mask::MaskPolicy;
use crate::money::Fen;
use crate::workflow::WorkflowDef;
use serde::Serialize;
use std::fmt;

/// How money reaches the cards (DOMAIN.md §6-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FundingModel {
    /// Heilongjiang: treasury centralised payment straight to the cards.
    UnifiedTreasury,
    /// Sichuan: funds go to the department's zero-balance account, which instructs the bank.
    ZeroBalanceAccount,
    /// Henan: an order number is pushed to the budget system and the bank pulls the detail.
    BankPull,
}

impl FundingModel {
    pub fn label_zh(self) -> &'static str {
        match self {
            FundingModel::UnifiedTreasury => "国库集中统一发放",
            FundingModel::ZeroBalanceAccount => "单位零余额账户发放",
            FundingModel::BankPull => "代发银行按发放单号获取明细",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FundingModel::UnifiedTreasury => "unified_treasury",
            FundingModel::ZeroBalanceAccount => "zero_balance_account",
            FundingModel::BankPull => "bank_pull",
        }
    }
}

/// Configuration a province is built from: its own settings as JSON (from the `[province]`
/// table of `ykt.toml`) and extra or replacement projects.
#[derive(Debug, Clone, Default)]
pub struct ProvinceConfig {
    pub settings: serde_json::Value,
    pub extra_projects: Vec<Project>,
}

/// Why a province could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvinceError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("省份配置错误：{0} (invalid province configuration: {0})")]
    Config(String),
    #[error("未编译该省份：{0}；已编译：{1} (province `{0}` is not compiled in; available: {1})")]
    Unknown(String, String),
}

/// A province's plug-in.
pub trait Province: Send + Sync {
    fn code(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn model(&self) -> FundingModel;
    /// The catalogue (built-in data merged with configuration).
    fn catalog(&self) -> &Catalog;
    /// The workflow steps.
    fn workflow(&self) -> &'static WorkflowDef;
    /// Masking for public and exported output.
    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::default()
    }
    /// The SMS a beneficiary receives when a card is credited.
    fn sms_text(&self, project: &Project, amount: Fen, date: &str) -> String {
        format!(
            "【惠民惠农一卡通】您的{}补贴{}元已于{}发放至社会保障卡账户。",
            project.name, amount, date
        )
    }
    /// The documents the province's rules come from.
    fn sources(&self) -> &'static [&'static str];
    /// The accounts money passes through, from its source to the bank that credits the
    /// cards, for a batch funded through `channel`. Refunds walk it backwards (原渠道退回).
    fn route(&self, channel: FundingChannel) -> &'static [AccountKind] {
        let _ = channel;
        DEFAULT_ROUTE
    }
}

/// Treasury → agent bank: the route when a province says nothing else.
pub const DEFAULT_ROUTE: &[AccountKind] = &[AccountKind::Treasury, AccountKind::AgentBank];

impl fmt::Debug for dyn Province {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Province({})", self.code())
    }
}

/// A compiled-in province, registered with `inventory::submit!`.
pub struct ProvinceDescriptor {
    /// e.g. `heilongjiang`
    pub code: &'static str,
    /// e.g. `黑龙江省`
    pub name: &'static str,
    pub model: FundingModel,
    /// The documents the rules come from.
    pub sources: &'static [&'static str],
    pub build: fn(&ProvinceConfig) -> Result<Box<dyn Province>, ProvinceError>,
}

inventory::collect!(ProvinceDescriptor);

/// The compiled-in provinces, sorted by code (inventory has no order).
pub fn provinces() -> Vec<&'static ProvinceDescriptor> {
    let mut v: Vec<_> = inventory::iter::<ProvinceDescriptor>.into_iter().collect();
    v.sort_by_key(|d| d.code);
    v
}

/// Find a compiled-in province by code (or Chinese name).
pub fn find_province(code: &str) -> Result<&'static ProvinceDescriptor, ProvinceError> {
    let all = provinces();
    all.iter()
        .copied()
        .find(|d| d.code == code || d.name == code || d.name.trim_end_matches('省') == code)
        .ok_or_else(|| {
            ProvinceError::Unknown(
                code.to_owned(),
                all.iter().map(|d| d.code).collect::<Vec<_>>().join(", "),
            )
        })
}

/// A province that needs nothing beyond data: code, name, model, catalogue, workflow,
/// sources and an optional SMS formatter. Province crates with no behaviour of their own
/// build one of these instead of writing the trait impl again.
pub struct StandardProvince {
    pub code: &'static str,
    pub name: &'static str,
    pub model: FundingModel,
    pub catalog: Catalog,
    pub workflow: &'static WorkflowDef,
    pub sources: &'static [&'static str],
    pub mask: MaskPolicy,
    pub sms: Option<fn(&Project, Fen, &str) -> String>,
    /// The money route per funding channel (see [`Province::route`]).
    pub route: fn(FundingChannel) -> &'static [AccountKind],
}

impl Province for StandardProvince {
    fn code(&self) -> &'static str {
        self.code
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn model(&self) -> FundingModel {
        self.model
    }
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    fn workflow(&self) -> &'static WorkflowDef {
        self.workflow
    }
    fn mask_policy(&self) -> MaskPolicy {
        self.mask.clone()
    }
    fn sms_text(&self, project: &Project, amount: Fen, date: &str) -> String {
        match self.sms {
            Some(f) => f(project, amount, date),
            None => format!(
                "【惠民惠农一卡通】您的{}补贴{}元已于{}发放至社会保障卡账户。",
                project.name, amount, date
            ),
        }
    }
    fn sources(&self) -> &'static [&'static str] {
        self.sources
    }
    fn route(&self, channel: FundingChannel) -> &'static [AccountKind] {
        (self.route)(channel)
    }
}

/// Parse a province's built-in catalogue (TOML `[[project]]` tables) and merge configured
/// projects into it.
pub fn load_catalog(
    toml_text: &str,
    parse: fn(&str) -> Result<crate::catalog::CatalogFile, String>,
    cfg: &ProvinceConfig,
) -> Result<Catalog, ProvinceError> {
    let file = parse(toml_text)
        .map_err(|e| ProvinceError::Config(format!("内置项目目录无法解析：{e}")))?;
    Ok(file.into_catalog()?.merged(cfg.extra_projects.clone())?)
}
