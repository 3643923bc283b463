//! Who acts: roles and users with a region scope.
//!
//! The roles are the parties of the seeds: 乡镇 (township), 业务主管部门 (department: a maker and
//! a head who signs), 财政部门 (finance), 人社部门 (HR&SS), 代发银行 (bank), 审计 (auditors,
//! read-only) and the platform's administrator.

use crate::ident::RegionCode;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// 乡镇经办: collects and enters data, runs pre-payment publicity (Sichuan).
    TownshipClerk,
    /// 业务主管部门经办: imports rosters, prepares batches (the maker).
    DeptMaker,
    /// 业务主管部门负责人: reviews and signs off (corrections, change requests).
    DeptHead,
    /// 财政部门审核: procedural review and approval.
    FinanceReviewer,
    /// 人社部门: card registry.
    Hrss,
    /// 代发银行经办: pulls detail, posts results.
    BankOperator,
    /// 审计/纪检: reads everything, changes nothing.
    Auditor,
    /// 系统管理员: users and configuration.
    Admin,
    /// The platform itself (scheduled and port-driven steps).
    System,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::TownshipClerk,
        Role::DeptMaker,
        Role::DeptHead,
        Role::FinanceReviewer,
        Role::Hrss,
        Role::BankOperator,
        Role::Auditor,
        Role::Admin,
        Role::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::TownshipClerk => "township_clerk",
            Role::DeptMaker => "dept_maker",
            Role::DeptHead => "dept_head",
            Role::FinanceReviewer => "finance_reviewer",
            Role::Hrss => "hrss",
            Role::BankOperator => "bank_operator",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::System => "system",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::TownshipClerk => "乡镇经办",
            Role::DeptMaker => "主管部门经办",
            Role::DeptHead => "主管部门负责人",
            Role::FinanceReviewer => "财政审核",
            Role::Hrss => "人社部门",
            Role::BankOperator => "代发银行",
            Role::Auditor => "审计监督",
            Role::Admin => "系统管理员",
            Role::System => "系统",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s.trim() || r.label_zh() == s.trim())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user: login, roles, and the region they may see and act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub login: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub region: RegionCode,
    /// The agent bank a bank operator works for.
    #[serde(default)]
    pub bank: Option<String>,
}

impl User {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
    /// Whether `region` lies within this user's scope.
    pub fn covers(&self, region: &RegionCode) -> bool {
        self.region.contains(region)
    }
    /// The platform acting on its own (port results, scheduled checks).
    pub fn system(region: RegionCode) -> User {
        User {
            login: "system".into(),
            name: "系统".into(),
            roles: vec![Role::System],
            region,
            bank: None,
        }
    }
}
