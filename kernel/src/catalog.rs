//! The catalogue (补贴项目库 / 补贴政策清单): the subsidy projects a province pays, with the
//! rules that govern each line (DOMAIN.md §4).
//!
//! The columns follow 黑财监〔2023〕1号 附件 ("补贴项目名称、省级牵头组织实施单位、发放频次、发放属期、
//! 跨属期发放规则、模拟测试时间、正式发放时间") and the policy-list contents of the 塔河县 plan
//! (四)("财政补贴资金名称、相关政策依据、补贴对象、补贴标准、补贴条件、主管部门").

use crate::money::Yuan;
use crate::period::{CrossPeriodRule, Period, PeriodKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// 发放频次, as written in the seeds: 1次/年, 2次/年, 4次/年, 1次/月, 多次/年.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// 1次/年: one payment per person and year; the period is the year.
    Yearly,
    /// 2次/年: one payment per half year; the period is the half.
    HalfYearly,
    /// 4次/年: one payment per quarter.
    Quarterly,
    /// 1次/月: one payment per month.
    Monthly,
    /// 多次/年: as often as needed; a person may be paid several times in one period, so the
    /// duplicate key includes the batch (DOMAIN.md §4).
    Several,
}

impl Frequency {
    /// Parse the table's wording.
    pub fn parse_zh(s: &str) -> Option<Frequency> {
        match s.trim() {
            "1次/年" | "每年1次" | "yearly" => Some(Frequency::Yearly),
            "2次/年" | "每年2次" | "half_yearly" => Some(Frequency::HalfYearly),
            "4次/年" | "每年4次" | "quarterly" => Some(Frequency::Quarterly),
            "1次/月" | "每月1次" | "monthly" => Some(Frequency::Monthly),
            "多次/年" | "several" => Some(Frequency::Several),
            _ => None,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Frequency::Yearly => "1次/年",
            Frequency::HalfYearly => "2次/年",
            Frequency::Quarterly => "4次/年",
            Frequency::Monthly => "1次/月",
            Frequency::Several => "多次/年",
        }
    }
    /// The granularity of the 属期 a line of this project carries.
    pub fn period_kind(self) -> PeriodKind {
        match self {
            Frequency::Yearly | Frequency::Several => PeriodKind::Year,
            Frequency::HalfYearly => PeriodKind::Half,
            Frequency::Quarterly => PeriodKind::Quarter,
            Frequency::Monthly => PeriodKind::Month,
        }
    }
    /// Whether one person may be paid only once per project and period.
    pub fn once_per_period(self) -> bool {
        self != Frequency::Several
    }
}

/// Where the money comes from (黑财监〔2021〕30号 二(三)四).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FundingChannel {
    /// Ordinary treasury centralised payment (国库集中支付).
    #[default]
    Treasury,
    /// ADBC-managed grain risk fund, through the PBoC treasury special account
    /// (粮食风险基金专户).
    GrainRiskFund,
}

impl FundingChannel {
    pub fn label_zh(self) -> &'static str {
        match self {
            FundingChannel::Treasury => "国库集中支付",
            FundingChannel::GrainRiskFund => "粮食风险基金专户",
        }
    }
}

/// Who a line pays: the person, or the household through its head
/// (川财办〔2018〕61号 五(四): "以家庭为单位的惠民惠农财政补贴资金，原则上发放到户主的社会保障卡账户中").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaymentBasis {
    #[default]
    Person,
    Household,
}

/// The months in which a project may be paid (发放属期), inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveWindow {
    pub from: Period,
    pub to: Period,
}

impl ActiveWindow {
    /// Whether a line's period lies inside the window.
    pub fn contains(&self, p: &Period) -> bool {
        p.start_date() >= self.from.start_date() && p.end_date() <= self.to.end_date()
    }
    pub fn label_zh(&self) -> String {
        if self.from == self.to {
            self.from.label_zh()
        } else {
            format!("{}至{}", self.from.label_zh(), self.to.label_zh())
        }
    }
}

/// A subsidy project (补贴项目).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Stable code, unique in the catalogue (e.g. `HLJ03`).
    pub code: String,
    /// 补贴项目名称
    pub name: String,
    /// 4-character short name used in SMS texts (濮阳规程 第八条(五): "补贴项目"四字简称).
    pub short_name: String,
    /// Parent project for sub-items (Sichuan: 困难群众救助资金 → 最低生活保障金).
    #[serde(default)]
    pub parent: Option<String>,
    /// 省级牵头组织实施单位
    pub lead_unit: String,
    pub frequency: Frequency,
    /// 发放属期; `None` = no restriction.
    #[serde(default)]
    pub active: Option<ActiveWindow>,
    /// 跨属期发放规则
    #[serde(default = "default_rule")]
    pub cross_period: CrossPeriodRule,
    /// Fixed standard per unit, where the project has one (补贴标准).
    #[serde(default)]
    pub standard: Option<Yuan>,
    /// 计量单位 of the standard (人/户/亩/月...).
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub basis: PaymentBasis,
    #[serde(default)]
    pub funding: FundingChannel,
    /// Projects in the same group are mutually exclusive for one person and period
    /// (e.g. urban and rural 低保).
    #[serde(default)]
    pub exclusive_group: Option<String>,
    /// Whether payments may go to a proxy's card under a recorded agreement (Sichuan).
    #[serde(default)]
    pub proxy_allowed: bool,
    /// 相关政策依据
    #[serde(default)]
    pub policy_basis: String,
    /// 补贴对象
    #[serde(default)]
    pub target: String,
    /// 补贴条件
    #[serde(default)]
    pub conditions: String,
    /// 补贴标准 as published text (when not a single fixed amount).
    #[serde(default)]
    pub standard_text: String,
    /// 模拟测试时间
    #[serde(default)]
    pub test_date: String,
    /// 正式发放时间
    #[serde(default)]
    pub go_live: String,
}

fn default_rule() -> CrossPeriodRule {
    CrossPeriodRule::None
}

impl Project {
    /// The period granularity of this project's lines.
    pub fn period_kind(&self) -> PeriodKind {
        self.frequency.period_kind()
    }

    /// Whether a batch whose current period is `current` can pay any line of this project:
    /// some period the cross-period rule allows around `current` lies inside the project's
    /// 发放属期 (黑财监〔2023〕1号 附表「发放周期」「跨属期发放规则」). When not, the project is not
    /// in force for that batch (`project.inactive`, DOMAIN.md §3) and no line could pass.
    pub fn in_force_for(&self, current: &Period) -> bool {
        let Some(w) = &self.active else {
            return true;
        };
        let (lo, hi) = match self.cross_period {
            CrossPeriodRule::None => (current.start_date(), current.end_date()),
            CrossPeriodRule::Months(n) => shifted(current, u32::from(n)),
            CrossPeriodRule::Quarters(n) => shifted(current, 3 * u32::from(n)),
        };
        w.from.start_date() <= hi && w.to.end_date() >= lo
    }
}

/// The dates `months` months before the start and after the end of `p`.
fn shifted(p: &Period, months: u32) -> (chrono::NaiveDate, chrono::NaiveDate) {
    let m = chrono::Months::new(months);
    (
        p.start_date()
            .checked_sub_months(m)
            .unwrap_or(p.start_date()),
        p.end_date().checked_add_months(m).unwrap_or(p.end_date()),
    )
}

/// Why a catalogue is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("补贴项目代码重复：{0} (duplicate project code {0})")]
    DuplicateCode(String),
    #[error("补贴项目名称重复：{0} (duplicate project name {0})")]
    DuplicateName(String),
    #[error(
        "补贴项目 {code} 的上级项目 {parent} 不存在 (parent project {parent} of {code} not found)"
    )]
    UnknownParent { code: String, parent: String },
    #[error("补贴项目 {code}：{reason} (project {code}: invalid definition)")]
    Invalid { code: String, reason: String },
}

/// The catalogue: projects in a fixed order, found by code or by name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Catalog {
    projects: Vec<Project>,
    #[serde(skip)]
    by_key: HashMap<String, usize>,
}

impl Catalog {
    /// Build a catalogue, checking codes and names are unique, parents exist, and the
    /// cross-period rule fits the frequency.
    pub fn new(projects: Vec<Project>) -> Result<Catalog, CatalogError> {
        let mut by_key = HashMap::new();
        for (i, p) in projects.iter().enumerate() {
            if by_key.insert(p.code.clone(), i).is_some() {
                return Err(CatalogError::DuplicateCode(p.code.clone()));
            }
        }
        for (i, p) in projects.iter().enumerate() {
            if p.name != p.code && by_key.insert(p.name.clone(), i).is_some() {
                return Err(CatalogError::DuplicateName(p.name.clone()));
            }
            if let Some(parent) = &p.parent {
                if !projects.iter().any(|q| &q.code == parent) {
                    return Err(CatalogError::UnknownParent {
                        code: p.code.clone(),
                        parent: parent.clone(),
                    });
                }
            }
            let fits = match p.cross_period {
                CrossPeriodRule::None => true,
                CrossPeriodRule::Months(_) => p.period_kind() == PeriodKind::Month,
                CrossPeriodRule::Quarters(_) => p.period_kind() == PeriodKind::Quarter,
            };
            if !fits {
                return Err(CatalogError::Invalid {
                    code: p.code.clone(),
                    reason: format!(
                        "跨属期规则「{}」与发放频次「{}」不符",
                        p.cross_period.label_zh(),
                        p.frequency.label_zh()
                    ),
                });
            }
            if p.short_name.chars().count() > 4 {
                return Err(CatalogError::Invalid {
                    code: p.code.clone(),
                    reason: "短信简称最多4个字".into(),
                });
            }
        }
        Ok(Catalog { projects, by_key })
    }

    /// All projects in catalogue order.
    pub fn projects(&self) -> &[Project] {
        &self.projects
    }

    /// Find a project by code or by exact name.
    pub fn find(&self, code_or_name: &str) -> Option<&Project> {
        self.by_key
            .get(code_or_name.trim())
            .map(|&i| &self.projects[i])
    }

    /// Sub-items of a project.
    pub fn children<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a Project> + 'a {
        self.projects
            .iter()
            .filter(move |p| p.parent.as_deref() == Some(code))
    }

    /// Other projects mutually exclusive with `code`.
    pub fn exclusive_peers<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a Project> + 'a {
        let group = self.find(code).and_then(|p| p.exclusive_group.clone());
        self.projects
            .iter()
            .filter(move |p| p.code != code && group.is_some() && p.exclusive_group == group)
    }

    /// Add or replace projects (a city's own projects, an integrator's override).
    pub fn merged(self, extra: Vec<Project>) -> Result<Catalog, CatalogError> {
        let mut projects = self.projects;
        for p in extra {
            match projects.iter_mut().find(|q| q.code == p.code) {
                Some(q) => *q = p,
                None => projects.push(p),
            }
        }
        Catalog::new(projects)
    }

    pub fn len(&self) -> usize {
        self.projects.len()
    }
    pub fn is_empty(&self) -> bool {
        self.projects.is_empty()
    }
}

/// A project as written in a province's catalogue file: the seed table's own wording for
/// frequency, period and cross-period rule, converted by [`ProjectSpec::into_project`].
/// Province crates ship their catalogues as TOML arrays of these.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSpec {
    /// 序号 in the source table, if any.
    #[serde(default)]
    pub seq: Option<u32>,
    pub code: String,
    pub name: String,
    pub short_name: String,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub lead_unit: String,
    /// e.g. `1次/月`
    pub frequency: String,
    /// 发放属期, e.g. `2023年1-12月`, `2023年`; empty = no restriction.
    #[serde(default)]
    pub period: String,
    /// 跨属期发放规则, e.g. `可按照当前月向前/后追溯2个月`, `无`.
    #[serde(default)]
    pub cross_period: String,
    #[serde(default)]
    pub test_date: String,
    #[serde(default)]
    pub go_live: String,
    #[serde(default)]
    pub basis: PaymentBasis,
    #[serde(default)]
    pub funding: FundingChannel,
    #[serde(default)]
    pub exclusive_group: Option<String>,
    #[serde(default)]
    pub proxy_allowed: bool,
    /// Fixed standard in yuan, e.g. `"120.00"`.
    #[serde(default)]
    pub standard: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub policy_basis: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub conditions: String,
    #[serde(default)]
    pub standard_text: String,
}

/// A catalogue file: `[[project]]` tables.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogFile {
    #[serde(rename = "project", default)]
    pub projects: Vec<ProjectSpec>,
}

impl CatalogFile {
    /// Convert every spec and build the catalogue.
    pub fn into_catalog(self) -> Result<Catalog, CatalogError> {
        let projects = self
            .projects
            .into_iter()
            .map(ProjectSpec::into_project)
            .collect::<Result<Vec<_>, _>>()?;
        Catalog::new(projects)
    }
}

/// Parse a 发放属期 text: `2023年1-12月` (months), `2023年6月`, `2023年` (the year), or empty.
pub fn parse_active_window(text: &str) -> Result<Option<ActiveWindow>, String> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if t.is_empty() || t == "无" {
        return Ok(None);
    }
    let bad = || format!("无法识别的发放属期「{text}」");
    let (year, rest) = t.split_once('年').ok_or_else(bad)?;
    let year: i32 = year.parse().map_err(|_| bad())?;
    let rest = rest.trim_end_matches('度');
    if rest.is_empty() {
        return Ok(Some(ActiveWindow {
            from: Period::Year(year),
            to: Period::Year(year),
        }));
    }
    let months = rest.strip_suffix('月').ok_or_else(bad)?;
    let (a, b) = months
        .split_once(['-', '—', '~', '至'])
        .unwrap_or((months, months));
    let (a, b): (u8, u8) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if !(1..=12).contains(&a) || !(a..=12).contains(&b) {
        return Err(bad());
    }
    Ok(Some(ActiveWindow {
        from: Period::Month { year, month: a },
        to: Period::Month { year, month: b },
    }))
}

impl ProjectSpec {
    pub fn into_project(self) -> Result<Project, CatalogError> {
        let invalid = |reason: String| CatalogError::Invalid {
            code: self.code.clone(),
            reason,
        };
        let frequency = Frequency::parse_zh(&self.frequency)
            .ok_or_else(|| invalid(format!("无法识别的发放频次「{}」", self.frequency)))?;
        let active = parse_active_window(&self.period).map_err(invalid)?;
        let cross_period = if self.cross_period.trim().is_empty() {
            CrossPeriodRule::None
        } else {
            CrossPeriodRule::parse_zh(&self.cross_period).ok_or_else(|| {
                invalid(format!("无法识别的跨属期发放规则「{}」", self.cross_period))
            })?
        };
        let standard = match &self.standard {
            None => None,
            Some(s) => Some(Yuan::parse(s).map_err(|e| invalid(format!("补贴标准「{s}」：{e}")))?),
        };
        Ok(Project {
            code: self.code,
            name: self.name,
            short_name: self.short_name,
            parent: self.parent,
            lead_unit: self.lead_unit,
            frequency,
            active,
            cross_period,
            standard,
            unit: self.unit,
            basis: self.basis,
            funding: self.funding,
            exclusive_group: self.exclusive_group,
            proxy_allowed: self.proxy_allowed,
            policy_basis: self.policy_basis,
            target: self.target,
            conditions: self.conditions,
            standard_text: self.standard_text,
            test_date: self.test_date,
            go_live: self.go_live,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn dibao() -> Project {
        Project {
            code: "P03".into(),
            name: "农村最低生活保障金".into(),
            short_name: "农村低保".into(),
            parent: None,
            lead_unit: "省民政厅".into(),
            frequency: Frequency::Monthly,
            active: Some(ActiveWindow {
                from: Period::Month {
                    year: 2023,
                    month: 1,
                },
                to: Period::Month {
                    year: 2023,
                    month: 12,
                },
            }),
            cross_period: CrossPeriodRule::Months(2),
            standard: None,
            unit: None,
            basis: PaymentBasis::Household,
            funding: FundingChannel::Treasury,
            exclusive_group: Some("dibao".into()),
            proxy_allowed: true,
            policy_basis: String::new(),
            target: String::new(),
            conditions: String::new(),
            standard_text: String::new(),
            test_date: String::new(),
            go_live: String::new(),
        }
    }

    #[test]
    fn frequencies_parse_and_map_to_period_kinds() {
        assert_eq!(Frequency::parse_zh("1次/月"), Some(Frequency::Monthly));
        assert_eq!(Frequency::parse_zh("多次/年"), Some(Frequency::Several));
        assert_eq!(Frequency::Quarterly.period_kind(), PeriodKind::Quarter);
        assert_eq!(Frequency::HalfYearly.period_kind(), PeriodKind::Half);
        assert!(!Frequency::Several.once_per_period());
    }

    #[test]
    fn catalog_finds_by_code_and_name_and_rejects_duplicates() {
        let mut urban = dibao();
        urban.code = "P02".into();
        urban.name = "城市最低生活保障金".into();
        let c = Catalog::new(vec![urban.clone(), dibao()]).unwrap();
        assert_eq!(c.find("P03").unwrap().name, "农村最低生活保障金");
        assert_eq!(c.find("城市最低生活保障金").unwrap().code, "P02");
        assert_eq!(
            c.exclusive_peers("P03")
                .map(|p| p.code.as_str())
                .collect::<Vec<_>>(),
            ["P02"]
        );
        assert!(matches!(
            Catalog::new(vec![dibao(), dibao()]),
            Err(CatalogError::DuplicateCode(_))
        ));
    }

    #[test]
    fn rule_must_fit_frequency() {
        let mut p = dibao();
        p.frequency = Frequency::Yearly;
        assert!(matches!(
            Catalog::new(vec![p]),
            Err(CatalogError::Invalid { .. })
        ));
    }

    #[test]
    fn active_window_texts_parse() {
        assert_eq!(
            parse_active_window("2023年1-12月").unwrap().unwrap().from,
            Period::Month {
                year: 2023,
                month: 1
            }
        );
        assert_eq!(
            parse_active_window("2023年6-12月").unwrap().unwrap().to,
            Period::Month {
                year: 2023,
                month: 12
            }
        );
        assert_eq!(
            parse_active_window("2023年").unwrap().unwrap().from,
            Period::Year(2023)
        );
        assert_eq!(parse_active_window("").unwrap(), None);
        assert!(parse_active_window("2023年13月").is_err());
    }

    #[test]
    fn in_force_for_the_window_and_the_cross_period_rule() {
        let w = parse_active_window("2023年6-12月").unwrap();
        let project = |rule| Project {
            code: "T".into(),
            name: "T".into(),
            short_name: "T".into(),
            parent: None,
            lead_unit: String::new(),
            frequency: Frequency::Monthly,
            active: w.clone(),
            cross_period: rule,
            standard: None,
            unit: None,
            basis: PaymentBasis::default(),
            funding: FundingChannel::default(),
            exclusive_group: None,
            proxy_allowed: false,
            policy_basis: String::new(),
            target: String::new(),
            conditions: String::new(),
            standard_text: String::new(),
            test_date: String::new(),
            go_live: String::new(),
        };
        let per = |t: &str| Period::parse(t).unwrap();
        assert!(project(CrossPeriodRule::None).in_force_for(&per("2023-06")));
        assert!(!project(CrossPeriodRule::None).in_force_for(&per("2023-05")));
        assert!(!project(CrossPeriodRule::None).in_force_for(&per("2024-01")));
        // Two months' leeway reaches back into December and forward into June.
        assert!(project(CrossPeriodRule::Months(2)).in_force_for(&per("2024-02")));
        assert!(project(CrossPeriodRule::Months(2)).in_force_for(&per("2023-04")));
        assert!(!project(CrossPeriodRule::Months(2)).in_force_for(&per("2024-03")));
    }

    #[test]
    fn active_window_contains() {
        let w = ActiveWindow {
            from: Period::Month {
                year: 2023,
                month: 6,
            },
            to: Period::Month {
                year: 2023,
                month: 12,
            },
        };
        assert!(w.contains(&Period::Month {
            year: 2023,
            month: 6
        }));
        assert!(!w.contains(&Period::Month {
            year: 2023,
            month: 5
        }));
        assert!(!w.contains(&Period::Year(2023)));
    }
}
