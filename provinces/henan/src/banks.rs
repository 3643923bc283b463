//! 代发金融机构 (濮阳规程 第五章): provincial finance keeps the candidate list under framework
//! agreements, each county picks one or two of them.
//!
//! - 第十五条: "省财政厅从社会保障卡合作金融机构中，选择已对接一卡通系统、支持免费跨行发放补贴资金的，签订
//!   《河南省惠民惠农财政补贴资金发放业务委托代理协议》，作为各县（区）补贴资金代发业务备选金融机构。"
//! - 第十六条: "各级财政部门……从备选金融机构名单中原则上选定1至2家作为本地补贴资金代发金融机构，并在省级委托
//!   代理协议框架下，签订补贴资金代发协议。"

use serde::{Deserialize, Serialize};
use ykt_kernel::{RegionLevel, Role, User};

/// Most agent banks a county may select (第十六条 "原则上选定1至2家").
pub const MAX_COUNTY_BANKS: usize = 2;

/// A candidate bank as provincial finance registers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Short code used by the bank interface, e.g. `ABC-HN`.
    pub code: String,
    pub name: String,
    /// 《河南省惠民惠农财政补贴资金发放业务委托代理协议》 number.
    pub agreement_no: String,
    /// 已对接一卡通系统
    pub connected: bool,
    /// 支持免费跨行发放补贴资金
    pub free_interbank: bool,
}

/// Why a bank rule refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankRuleError {
    #[error("{0}")]
    Refused(String),
}

fn refused(m: impl Into<String>) -> BankRuleError {
    BankRuleError::Refused(m.into())
}

/// Check a candidate (第十五条): a code of letters, digits and `-`, a name, a framework agreement
/// number, connected to the system and paying across banks free of charge.
pub fn check_candidate(c: &Candidate) -> Result<(), BankRuleError> {
    if c.code.is_empty()
        || c.code.len() > 24
        || !c
            .code
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        return Err(refused(
            "银行代码应为1至24位字母、数字或连字符 (bank code: 1-24 letters, digits or -)",
        ));
    }
    if c.name.trim().is_empty() {
        return Err(refused("银行名称不能为空 (bank name is empty)"));
    }
    if c.agreement_no.trim().is_empty() {
        return Err(refused(
            "须填写省级委托代理协议编号（第十五条） (the framework agreement number is required)",
        ));
    }
    if !c.connected {
        return Err(refused(format!(
            "{}尚未对接一卡通系统，不能列为备选代发金融机构（第十五条） ({} is not connected to the system)",
            c.name, c.code
        )));
    }
    if !c.free_interbank {
        return Err(refused(format!(
            "{}不支持免费跨行发放补贴资金，不能列为备选代发金融机构（第十五条） ({} does not pay across banks free of charge)",
            c.name, c.code
        )));
    }
    Ok(())
}

/// Provincial finance keeps the candidate list (第十五条 "省财政厅").
pub fn authorize_candidates(user: &User) -> Result<(), BankRuleError> {
    if !user.has(Role::FinanceReviewer) || user.region.level() != RegionLevel::Province {
        return Err(refused(format!(
            "备选代发金融机构名单由省财政厅维护；用户{}不是省级财政 (only provincial finance keeps the candidate list)",
            user.login
        )));
    }
    Ok(())
}

/// County finance picks the county's banks (第十六条): a finance user whose scope is exactly
/// that county.
pub fn authorize_selection(
    user: &User,
    county: &ykt_kernel::RegionCode,
) -> Result<(), BankRuleError> {
    if county.level() != RegionLevel::County {
        return Err(refused(format!(
            "{}不是县级区划；代发银行按县（区）选定 (banks are selected per county)",
            county.full()
        )));
    }
    if !user.has(Role::FinanceReviewer) || user.region != *county {
        return Err(refused(format!(
            "县（区）代发银行由本级财政部门选定；用户{}不是{}的财政部门 (only the county's finance office selects its banks)",
            user.login,
            county.prefix()
        )));
    }
    Ok(())
}

/// Check a county's selection (第十六条 "原则上选定1至2家"): the bank is a candidate, not already
/// selected, and the county has fewer than two.
pub fn check_selection(
    selected: &[String],
    candidate: Option<&Candidate>,
    code: &str,
) -> Result<(), BankRuleError> {
    if candidate.is_none() {
        return Err(refused(format!(
            "{code}不在省财政厅备选代发金融机构名单中（第十五、十六条） ({code} is not a candidate bank)"
        )));
    }
    if selected.iter().any(|s| s == code) {
        return Err(refused(format!(
            "{code}已是本县代发银行 ({code} is already selected)"
        )));
    }
    if selected.len() >= MAX_COUNTY_BANKS {
        return Err(refused(format!(
            "本县已选定{}家代发银行（{}），按第十六条原则上选定1至2家，不能再增加 (a county selects one or two banks)",
            selected.len(),
            selected.join("、")
        )));
    }
    Ok(())
}

/// Pick the bank of a batch: the one named (which must be among the county's), or the county's
/// only bank.
pub fn pick_bank(selected: &[String], named: Option<&str>) -> Result<String, BankRuleError> {
    match (named, selected) {
        (Some(n), _) if selected.iter().any(|s| s == n) => Ok(n.to_owned()),
        (Some(n), _) => Err(refused(format!(
            "{n}不是本县选定的代发银行；本县代发银行：{} ({n} is not one of the county's banks)",
            if selected.is_empty() {
                "（未选定）".to_owned()
            } else {
                selected.join("、")
            }
        ))),
        (None, [only]) => Ok(only.clone()),
        (None, []) => Err(refused(
            "本县尚未选定代发银行，请县财政先从备选名单中选定（第十六条） (the county has no agent bank yet)",
        )),
        (None, many) => Err(refused(format!(
            "本县有{}家代发银行（{}），请用 --bank 指定本批次的代发银行 (name the bank with --bank)",
            many.len(),
            many.join("、")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ykt_kernel::RegionCode;

    fn cand(code: &str) -> Candidate {
        Candidate {
            code: code.into(),
            name: format!("{code}银行"),
            agreement_no: "豫财代发〔2021〕1号".into(),
            connected: true,
            free_interbank: true,
        }
    }

    #[test]
    fn candidates_must_be_connected_and_free() {
        check_candidate(&cand("ABC")).unwrap();
        assert!(
            check_candidate(&Candidate {
                connected: false,
                ..cand("X")
            })
            .is_err()
        );
        assert!(
            check_candidate(&Candidate {
                free_interbank: false,
                ..cand("X")
            })
            .is_err()
        );
        assert!(
            check_candidate(&Candidate {
                agreement_no: " ".into(),
                ..cand("X")
            })
            .is_err()
        );
        assert!(check_candidate(&cand("a b")).is_err());
    }

    #[test]
    fn a_county_selects_one_or_two() {
        let c = cand("ABC");
        check_selection(&[], Some(&c), "ABC").unwrap();
        check_selection(&["PSBC".into()], Some(&c), "ABC").unwrap();
        let e = check_selection(&["PSBC".into(), "RCB".into()], Some(&c), "ABC").unwrap_err();
        assert!(e.to_string().contains("1至2家"), "{e}");
        assert!(check_selection(&["ABC".into()], Some(&c), "ABC").is_err());
        assert!(check_selection(&[], None, "ABC").is_err());
    }

    #[test]
    fn bank_of_a_batch() {
        assert_eq!(pick_bank(&["ABC".into()], None).unwrap(), "ABC");
        assert!(pick_bank(&["ABC".into(), "PSBC".into()], None).is_err());
        assert_eq!(
            pick_bank(&["ABC".into(), "PSBC".into()], Some("PSBC")).unwrap(),
            "PSBC"
        );
        assert!(pick_bank(&["ABC".into()], Some("RCB")).is_err());
        assert!(pick_bank(&[], None).is_err());
    }

    #[test]
    fn who_may_act() {
        let user = |role, region: &str| User {
            login: "u".into(),
            name: "u".into(),
            roles: vec![role],
            region: RegionCode::parse(region).unwrap(),
            bank: None,
        };
        authorize_candidates(&user(Role::FinanceReviewer, "41")).unwrap();
        assert!(authorize_candidates(&user(Role::FinanceReviewer, "4109")).is_err());
        assert!(authorize_candidates(&user(Role::DeptMaker, "41")).is_err());
        let county = RegionCode::parse("410902").unwrap();
        authorize_selection(&user(Role::FinanceReviewer, "410902"), &county).unwrap();
        assert!(authorize_selection(&user(Role::FinanceReviewer, "41"), &county).is_err());
        assert!(
            authorize_selection(
                &user(Role::FinanceReviewer, "4109"),
                &RegionCode::parse("4109").unwrap()
            )
            .is_err()
        );
    }
}
