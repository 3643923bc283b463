//! Reason codes: the stable, machine-readable names of every problem a roster line can have
//! (DOMAIN.md §3). Operators see the Chinese message; programs and reports use the code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How serious a problem is. An `Error` keeps the line out of every batch; a `Warning` is
/// reported to the department but the line is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
    /// Chinese label for operators.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Warning => "提示",
            Severity::Error => "错误",
        }
    }
}

/// Who has to act on a rejected line (the per-line result returned to the department,
/// 黑财监〔2023〕1号 二(二): "针对有卡、无卡或无效卡等不同情况，告知补贴对象办好社会保障卡并启用社保账户和激活金融账户").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    /// The beneficiary must apply for a social security card (办卡).
    ApplyForCard,
    /// The beneficiary must activate the card's financial account (激活).
    ActivateCard,
    /// The card is lost, cancelled or frozen: replace it (补换卡).
    ReplaceCard,
    /// The department must correct the data.
    CorrectData,
    /// The department must review eligibility (deceased, excluded, paid already).
    ReviewEligibility,
    /// Informational: nothing blocks the payment.
    Confirm,
}

impl FollowUp {
    pub fn label(self) -> &'static str {
        match self {
            FollowUp::ApplyForCard => "办卡",
            FollowUp::ActivateCard => "激活",
            FollowUp::ReplaceCard => "补换卡",
            FollowUp::CorrectData => "更正数据",
            FollowUp::ReviewEligibility => "复核资格",
            FollowUp::Confirm => "人工确认",
        }
    }
}

macro_rules! reason_codes {
    ($( $variant:ident => $code:literal, $sev:ident, $follow:ident, $zh:literal; )*) => {
        /// Every reason code of DOMAIN.md §3.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum ReasonCode { $( $variant, )* }

        impl ReasonCode {
            /// All codes, in declaration order.
            pub const ALL: &'static [ReasonCode] = &[ $( ReasonCode::$variant, )* ];

            /// The stable code, e.g. `id.checksum`.
            pub fn as_str(self) -> &'static str {
                match self { $( ReasonCode::$variant => $code, )* }
            }
            /// Default severity of the code.
            pub fn severity(self) -> Severity {
                match self { $( ReasonCode::$variant => Severity::$sev, )* }
            }
            /// Who must act.
            pub fn follow_up(self) -> FollowUp {
                match self { $( ReasonCode::$variant => FollowUp::$follow, )* }
            }
            /// Short Chinese description of the rule.
            pub fn title(self) -> &'static str {
                match self { $( ReasonCode::$variant => $zh, )* }
            }
            /// Parse a stable code.
            pub fn from_code(s: &str) -> Option<ReasonCode> {
                match s { $( $code => Some(ReasonCode::$variant), )* _ => None }
            }
        }
    };
}

reason_codes! {
    IdFormat => "id.format", Error, CorrectData, "身份证号码格式错误";
    IdChecksum => "id.checksum", Error, CorrectData, "身份证号码校验位错误";
    IdBirthdate => "id.birthdate", Error, CorrectData, "身份证号码出生日期无效";
    IdRegion => "id.region", Error, CorrectData, "身份证号码省份代码无效";
    IdLegacy15 => "id.legacy15", Warning, Confirm, "15位身份证号码已升位，请确认";
    IdNumericCell => "id.numeric_cell", Error, CorrectData, "身份证号码存为数字单元格，已失真";
    NameMissing => "name.missing", Error, CorrectData, "姓名缺失";
    NameInvalid => "name.invalid", Error, CorrectData, "姓名无效";
    PhoneFormat => "phone.format", Warning, CorrectData, "手机号码格式错误";
    RegionFormat => "region.format", Error, CorrectData, "行政区划代码格式错误";
    RegionUnknown => "region.unknown", Error, CorrectData, "行政区划代码不存在";
    RegionOutsideScope => "region.outside_scope", Error, CorrectData, "行政区划超出本单位管辖范围";
    ProjectUnknown => "project.unknown", Error, CorrectData, "补贴项目不在目录中";
    ProjectInactive => "project.inactive", Error, CorrectData, "属期不在项目发放期内";
    PeriodFormat => "period.format", Error, CorrectData, "属期格式错误";
    PeriodOutOfWindow => "period.out_of_window", Error, CorrectData, "属期超出跨属期发放规则";
    AmountFormat => "amount.format", Error, CorrectData, "补贴金额格式错误";
    AmountNonpositive => "amount.nonpositive", Error, CorrectData, "补贴金额必须大于零";
    AmountScale => "amount.scale", Error, CorrectData, "补贴金额最多两位小数";
    AmountStandardMismatch => "amount.standard_mismatch", Error, CorrectData, "补贴金额不等于补贴标准×数量";
    DupInFile => "dup.in_file", Error, CorrectData, "同一人同一项目同一属期在文件中重复";
    DupAlreadyPaid => "dup.already_paid", Error, ReviewEligibility, "同一人同一项目同一属期已发放或在途";
    CardNone => "card.none", Error, ApplyForCard, "未办理社会保障卡";
    CardInactive => "card.inactive", Error, ActivateCard, "社会保障卡金融账户未激活";
    CardInvalid => "card.invalid", Error, ReplaceCard, "社会保障卡挂失、注销或冻结";
    CardNameMismatch => "card.name_mismatch", Error, CorrectData, "姓名与社保卡登记姓名不一致";
    AccountLuhn => "account.luhn", Warning, Confirm, "银行账号未通过Luhn校验";
    PersonDeceased => "person.deceased", Error, ReviewEligibility, "补贴对象已死亡";
    PersonExclusive => "person.exclusive", Error, ReviewEligibility, "同一属期享受互斥项目";
    HouseholdNotHead => "household.not_head", Error, CorrectData, "按户发放项目须发放至户主";
    ProxyAgreementMissing => "proxy.agreement_missing", Error, CorrectData, "代领/代管缺少备案协议";
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ReasonCode::from_code(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reason code `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ReasonCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert_eq!(ReasonCode::from_code(c.as_str()), Some(*c));
        }
        assert_eq!(ReasonCode::ALL.len(), 31);
    }

    #[test]
    fn warnings_are_the_documented_ones() {
        let warnings: Vec<_> = ReasonCode::ALL
            .iter()
            .filter(|c| c.severity() == Severity::Warning)
            .map(|c| c.as_str())
            .collect();
        assert_eq!(warnings, ["id.legacy15", "phone.format", "account.luhn"]);
    }
}
