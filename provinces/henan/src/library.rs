//! 补贴项目库 (濮阳规程 第三章): only projects in the library can be paid, and the library changes
//! only through an approved change request.
//!
//! - 第十条: "在一卡通系统中建立补贴项目库。所有入库补贴项目均实行社会保障卡“一卡通”发放。"
//! - 第十一条: "新增补贴项目或政策到期补贴项目不再执行的，应及时在补贴项目库中调整相应项目信息。"
//! - 第十二条: "中央和省级补贴项目有调整的，由补贴项目省级主管部门填写《惠民惠农财政补贴项目调整变更申请表》
//!   报省财政厅调整补贴项目库；市县补贴项目有调整的，由市县补贴项目主管部门填报……，经同级财政部门审核后，
//!   由各市财政局复核，报省财政厅统一调整补贴项目库。"
//!
//! This module is the rule: what a change request may contain, the route it takes by the
//! filing unit's level, and who may take each step. Persisting it is the store's job.

use serde::{Deserialize, Serialize};
use ykt_kernel::catalog::{FundingChannel, PaymentBasis, Project, ProjectSpec};
use ykt_kernel::{RegionCode, RegionLevel, Role, User};

/// A project as kept in the library and as written on a change request form (the fields of
/// the 调整变更申请表). The texts use the seed tables' wording (frequency `1次/月`, cross-period
/// rule `可按照当前月向前/后追溯2个月`), like the province catalogues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryEntry {
    /// Stable code, e.g. `HN09`.
    pub code: String,
    /// 补贴项目名称
    pub name: String,
    /// "补贴项目"四字简称 for the SMS (第八条(五)).
    pub short_name: String,
    /// 主管部门
    #[serde(default)]
    pub lead_unit: String,
    /// 发放频次, e.g. `1次/月`.
    pub frequency: String,
    /// 发放属期, e.g. `2023年1-12月`; empty = no restriction.
    #[serde(default)]
    pub period: String,
    /// 跨属期发放规则; empty = none.
    #[serde(default)]
    pub cross_period: String,
    #[serde(default)]
    pub basis: PaymentBasis,
    #[serde(default)]
    pub funding: FundingChannel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_group: Option<String>,
    /// Fixed standard in yuan, e.g. `"120.00"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// 政策依据
    #[serde(default)]
    pub policy_basis: String,
    /// 补贴对象
    #[serde(default)]
    pub target: String,
    /// 补贴条件
    #[serde(default)]
    pub conditions: String,
    /// 补贴标准 (text)
    #[serde(default)]
    pub standard_text: String,
}

/// The library file shipped with the crate (`data/library.toml`): `[[project]]` tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryFile {
    #[serde(rename = "project", default)]
    pub projects: Vec<LibraryEntry>,
}

/// A change request form as a file: one `[project]` table (the project after the change).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeForm {
    pub project: LibraryEntry,
}

/// Why a library entry or change request is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LibraryError {
    #[error("申请表无法解析：{0} (the form cannot be parsed: {0})")]
    Parse(String),
    #[error("补贴项目 {code}：{reason} (project {code}: {reason})")]
    Invalid { code: String, reason: String },
    #[error("补贴项目库中已有项目 {0}，新增应改为调整 (project {0} is already in the library)")]
    Exists(String),
    #[error("补贴项目库中没有项目 {0} (project {0} is not in the library)")]
    Missing(String),
    #[error("补贴项目 {0} 已停止执行 (project {0} is withdrawn)")]
    Withdrawn(String),
    #[error("补贴项目名称「{0}」已被库中其他项目使用 (name {0} is already used)")]
    NameTaken(String),
}

impl LibraryEntry {
    /// The kernel's project spec for this entry.
    pub fn to_spec(&self) -> ProjectSpec {
        ProjectSpec {
            seq: None,
            code: self.code.clone(),
            name: self.name.clone(),
            short_name: self.short_name.clone(),
            parent: None,
            lead_unit: self.lead_unit.clone(),
            frequency: self.frequency.clone(),
            period: self.period.clone(),
            cross_period: self.cross_period.clone(),
            test_date: String::new(),
            go_live: String::new(),
            basis: self.basis,
            funding: self.funding,
            exclusive_group: self.exclusive_group.clone(),
            proxy_allowed: false,
            standard: self.standard.clone(),
            unit: self.unit.clone(),
            policy_basis: self.policy_basis.clone(),
            target: self.target.clone(),
            conditions: self.conditions.clone(),
            standard_text: self.standard_text.clone(),
        }
    }

    /// Check the entry and build the project: a code of letters, digits and `-`, a name, a
    /// short name of exactly four characters (第八条(五) "“补贴项目”四字简称"), and frequency,
    /// period, cross-period rule and standard the kernel understands.
    pub fn validate(&self) -> Result<Project, LibraryError> {
        let invalid = |reason: &str| LibraryError::Invalid {
            code: self.code.clone(),
            reason: reason.to_owned(),
        };
        if self.code.is_empty()
            || self.code.len() > 32
            || !self
                .code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid("项目代码应为1至32位字母、数字或连字符"));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 60 {
            return Err(invalid("项目名称不能为空，且不超过60个字"));
        }
        if self.short_name.chars().count() != 4 {
            return Err(invalid("短信简称须为4个字（第八条第五项“四字简称”）"));
        }
        self.to_spec()
            .into_project()
            .map_err(|e| invalid(&e.to_string()))
    }

    /// Render as a change request form (`[project]` table).
    pub fn to_form(&self) -> String {
        #[derive(Serialize)]
        struct Form<'a> {
            project: &'a LibraryEntry,
        }
        toml::to_string(&Form { project: self }).unwrap_or_default()
    }
}

/// Parse the crate's library file.
pub fn parse_library(text: &str) -> Result<Vec<LibraryEntry>, LibraryError> {
    let f: LibraryFile = toml::from_str(text).map_err(|e| LibraryError::Parse(e.to_string()))?;
    for e in &f.projects {
        e.validate()?;
    }
    Ok(f.projects)
}

/// Parse a change request form (`[project]` table).
pub fn parse_form(text: &str) -> Result<LibraryEntry, LibraryError> {
    let f: ChangeForm = toml::from_str(text).map_err(|e| LibraryError::Parse(e.to_string()))?;
    Ok(f.project)
}

/// What a change request does (第十一条).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// 新增补贴项目
    Add,
    /// 调整项目信息
    Modify,
    /// 政策到期，不再执行
    Withdraw,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Add => "add",
            ChangeKind::Modify => "modify",
            ChangeKind::Withdraw => "withdraw",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            ChangeKind::Add => "新增",
            ChangeKind::Modify => "调整",
            ChangeKind::Withdraw => "停止执行",
        }
    }
    pub fn parse(s: &str) -> Option<ChangeKind> {
        [ChangeKind::Add, ChangeKind::Modify, ChangeKind::Withdraw]
            .into_iter()
            .find(|k| k.as_str() == s || k.label_zh() == s)
    }
}

/// Where a change request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    /// 已填报，待同级财政审核 (or, for a provincial unit, 待省财政厅调整).
    Filed,
    /// 同级财政已审核，待市财政局复核.
    Reviewed,
    /// 市财政局已复核，待省财政厅调整.
    Rechecked,
    /// 省财政厅已调整补贴项目库.
    Applied,
    /// 未通过.
    Rejected,
}

impl ChangeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeState::Filed => "filed",
            ChangeState::Reviewed => "reviewed",
            ChangeState::Rechecked => "rechecked",
            ChangeState::Applied => "applied",
            ChangeState::Rejected => "rejected",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            ChangeState::Filed => "已填报",
            ChangeState::Reviewed => "同级财政已审核",
            ChangeState::Rechecked => "市财政局已复核",
            ChangeState::Applied => "省财政厅已调整入库",
            ChangeState::Rejected => "未通过",
        }
    }
    pub fn parse(s: &str) -> Option<ChangeState> {
        [
            ChangeState::Filed,
            ChangeState::Reviewed,
            ChangeState::Rechecked,
            ChangeState::Applied,
            ChangeState::Rejected,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
    pub fn is_final(self) -> bool {
        matches!(self, ChangeState::Applied | ChangeState::Rejected)
    }
}

/// A step on a change request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStep {
    /// 主管部门填报
    File,
    /// 同级财政部门审核
    Review,
    /// 市财政局复核
    Recheck,
    /// 省财政厅调整补贴项目库
    Apply,
    /// 审核不通过，退回
    Reject,
}

impl ChangeStep {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStep::File => "file",
            ChangeStep::Review => "review",
            ChangeStep::Recheck => "recheck",
            ChangeStep::Apply => "apply",
            ChangeStep::Reject => "reject",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            ChangeStep::File => "主管部门填报申请表",
            ChangeStep::Review => "同级财政部门审核",
            ChangeStep::Recheck => "市财政局复核",
            ChangeStep::Apply => "省财政厅调整补贴项目库",
            ChangeStep::Reject => "审核不通过",
        }
    }
}

/// Which finance office acts on a request at `state`, for a request filed in `region`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub step: ChangeStep,
    /// The finance office's region: the filer's own (同级), the city, or the province.
    pub office: RegionCode,
    pub to: ChangeState,
}

/// The route of a request (第十二条): a provincial unit files straight to provincial finance;
/// a county unit goes through county finance (审核), city finance (复核) and provincial
/// finance (调整); a city unit's own finance office is the city finance that rechecks.
pub fn next_stage(filed_in: &RegionCode, state: ChangeState) -> Option<Stage> {
    let province = filed_in.province();
    let city = filed_in.ancestor(RegionLevel::City);
    let apply = Stage {
        step: ChangeStep::Apply,
        office: province.clone(),
        to: ChangeState::Applied,
    };
    match (filed_in.level(), state) {
        (_, ChangeState::Applied | ChangeState::Rejected) => None,
        (RegionLevel::Province, _) => Some(apply),
        (RegionLevel::City, ChangeState::Filed) => Some(Stage {
            step: ChangeStep::Recheck,
            office: filed_in.clone(),
            to: ChangeState::Rechecked,
        }),
        (_, ChangeState::Filed) => Some(Stage {
            step: ChangeStep::Review,
            office: filed_in
                .ancestor(RegionLevel::County)
                .unwrap_or_else(|| filed_in.clone()),
            to: ChangeState::Reviewed,
        }),
        (_, ChangeState::Reviewed) => Some(Stage {
            step: ChangeStep::Recheck,
            office: city.unwrap_or_else(|| province.clone()),
            to: ChangeState::Rechecked,
        }),
        (_, ChangeState::Rechecked) => Some(apply),
    }
}

/// Why a change request step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("用户{user}不具备「{}」角色，不能{step} (user {user} lacks role {role})", role.label_zh())]
    Role {
        user: String,
        role: Role,
        step: &'static str,
    },
    #[error(
        "「{step}」应由{office}的财政部门办理，用户{user}的管辖范围是{scope} ({step} belongs to the finance office of {office})"
    )]
    Office {
        user: String,
        step: &'static str,
        office: String,
        scope: String,
    },
    #[error("申请状态为「{}」，不能{step} (request is {state:?})", state.label_zh())]
    State {
        state: ChangeState,
        step: &'static str,
    },
    #[error(
        "每一级审核须由不同的人办理：{user}已在本申请中「{earlier}」 (every approval by a different user: {user} did {earlier})"
    )]
    SamePerson { user: String, earlier: &'static str },
    #[error(
        "填报单位须是县级及以上主管部门 (the filing unit must be a county, city or provincial department)"
    )]
    FilerLevel,
    #[error("{0}")]
    Reason(String),
}

/// Check that `user` may file a change request: a department maker (主管部门经办) of a county,
/// city or provincial unit.
pub fn authorize_filing(user: &User) -> Result<(), ChangeError> {
    if !user.has(Role::DeptMaker) {
        return Err(ChangeError::Role {
            user: user.login.clone(),
            role: Role::DeptMaker,
            step: ChangeStep::File.label_zh(),
        });
    }
    if user.region.level() > RegionLevel::County {
        return Err(ChangeError::FilerLevel);
    }
    Ok(())
}

/// Decide whether `user` may take the next step (`reject == false`) or reject the request
/// (`reject == true`) now. `earlier` lists `(step, login)` of every step already taken,
/// filing included: each approval must be made by a different user.
pub fn authorize_change(
    filed_in: &RegionCode,
    state: ChangeState,
    earlier: &[(ChangeStep, String)],
    user: &User,
    reject: bool,
) -> Result<Stage, ChangeError> {
    let Some(stage) = next_stage(filed_in, state) else {
        return Err(ChangeError::State {
            state,
            step: if reject {
                ChangeStep::Reject.label_zh()
            } else {
                "继续办理"
            },
        });
    };
    if !user.has(Role::FinanceReviewer) {
        return Err(ChangeError::Role {
            user: user.login.clone(),
            role: Role::FinanceReviewer,
            step: stage.step.label_zh(),
        });
    }
    if user.region != stage.office {
        return Err(ChangeError::Office {
            user: user.login.clone(),
            step: stage.step.label_zh(),
            office: stage.office.full(),
            scope: user.region.full(),
        });
    }
    if let Some((step, _)) = earlier.iter().find(|(_, who)| *who == user.login) {
        return Err(ChangeError::SamePerson {
            user: user.login.clone(),
            earlier: step.label_zh(),
        });
    }
    Ok(if reject {
        Stage {
            step: ChangeStep::Reject,
            office: stage.office,
            to: ChangeState::Rejected,
        }
    } else {
        stage
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(login: &str, role: Role, region: &str) -> User {
        User {
            login: login.into(),
            name: login.into(),
            roles: vec![role],
            region: RegionCode::parse(region).unwrap(),
            bank: None,
        }
    }

    #[test]
    fn shipped_library_is_valid() {
        let entries = parse_library(crate::LIBRARY).unwrap();
        assert!(entries.len() >= 8);
        assert!(entries.iter().all(|e| e.short_name.chars().count() == 4));
    }

    #[test]
    fn forms_validate() {
        let form = "[project]\ncode = \"HN09\"\nname = \"临时救助金\"\nshort_name = \"临时救助\"\nlead_unit = \"华龙区民政局\"\nfrequency = \"多次/年\"\n";
        let e = parse_form(form).unwrap();
        assert_eq!(e.validate().unwrap().name, "临时救助金");
        assert_eq!(parse_form(&e.to_form()).unwrap(), e);
        let three = LibraryEntry {
            short_name: "临时救".into(),
            ..e.clone()
        };
        assert!(matches!(
            three.validate(),
            Err(LibraryError::Invalid { .. })
        ));
        let bad_freq = LibraryEntry {
            frequency: "每周".into(),
            ..e.clone()
        };
        assert!(bad_freq.validate().is_err());
        assert!(matches!(
            parse_form("[project]\ncode = 1\n"),
            Err(LibraryError::Parse(_))
        ));
    }

    #[test]
    fn a_county_request_goes_through_county_city_and_province() {
        let county = RegionCode::parse("410902").unwrap();
        let filer = user("hl-mz", Role::DeptMaker, "410902");
        authorize_filing(&filer).unwrap();
        let mut earlier = vec![(ChangeStep::File, filer.login.clone())];
        let county_fin = user("hl-cz", Role::FinanceReviewer, "410902");
        let city_fin = user("py-cz", Role::FinanceReviewer, "4109");
        let prov_fin = user("hn-czt", Role::FinanceReviewer, "41");

        // City finance cannot act first; county finance can.
        assert!(matches!(
            authorize_change(&county, ChangeState::Filed, &earlier, &city_fin, false),
            Err(ChangeError::Office { .. })
        ));
        let s =
            authorize_change(&county, ChangeState::Filed, &earlier, &county_fin, false).unwrap();
        assert_eq!((s.step, s.to), (ChangeStep::Review, ChangeState::Reviewed));
        earlier.push((s.step, county_fin.login.clone()));

        // The county reviewer cannot also recheck, even with a city scope.
        let both = user("hl-cz", Role::FinanceReviewer, "4109");
        assert!(matches!(
            authorize_change(&county, ChangeState::Reviewed, &earlier, &both, false),
            Err(ChangeError::SamePerson { .. })
        ));
        let s =
            authorize_change(&county, ChangeState::Reviewed, &earlier, &city_fin, false).unwrap();
        assert_eq!(s.to, ChangeState::Rechecked);
        earlier.push((s.step, city_fin.login.clone()));
        let s =
            authorize_change(&county, ChangeState::Rechecked, &earlier, &prov_fin, false).unwrap();
        assert_eq!((s.step, s.to), (ChangeStep::Apply, ChangeState::Applied));
        assert!(
            authorize_change(&county, ChangeState::Applied, &earlier, &prov_fin, false).is_err()
        );
    }

    #[test]
    fn a_provincial_unit_files_straight_to_provincial_finance() {
        let prov = RegionCode::parse("41").unwrap();
        let earlier = vec![(ChangeStep::File, "hn-mzt".to_owned())];
        let prov_fin = user("hn-czt", Role::FinanceReviewer, "41");
        let s = authorize_change(&prov, ChangeState::Filed, &earlier, &prov_fin, false).unwrap();
        assert_eq!(s.step, ChangeStep::Apply);
        let rej = authorize_change(&prov, ChangeState::Filed, &earlier, &prov_fin, true).unwrap();
        assert_eq!(rej.to, ChangeState::Rejected);
        // A department maker cannot approve; a township unit cannot file.
        let maker = user("x", Role::DeptMaker, "41");
        assert!(matches!(
            authorize_change(&prov, ChangeState::Filed, &earlier, &maker, false),
            Err(ChangeError::Role { .. })
        ));
        assert_eq!(
            authorize_filing(&user("t", Role::DeptMaker, "410902001")),
            Err(ChangeError::FilerLevel)
        );
    }

    #[test]
    fn a_city_unit_is_rechecked_by_its_own_city_finance() {
        let city = RegionCode::parse("4109").unwrap();
        let s = next_stage(&city, ChangeState::Filed).unwrap();
        assert_eq!((s.step, s.office.prefix()), (ChangeStep::Recheck, "4109"));
        let s = next_stage(&city, ChangeState::Rechecked).unwrap();
        assert_eq!((s.step, s.office.prefix()), (ChangeStep::Apply, "41"));
    }
}
