//! The reference registers a roster is checked against: the HR&SS card registry
//! (社保卡管理信息系统), the death register and the region table.
//!
//! 黑财监〔2021〕30号 二(二): the platform matches "补贴资金发放信息与补贴资金受益人社会保障卡信息";
//! 川财办〔2018〕61号 三(二): HR&SS "对未办理社会保障卡人员进行标注".

use crate::ident::{BankAccount, RegionCode, ResidentId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// State of a social security card as the registry reports it (卡状态).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    /// 正常
    Normal,
    /// 挂失 (temporarily or formally reported lost)
    Lost,
    /// 注销
    Cancelled,
    /// 冻结
    Frozen,
}

impl CardStatus {
    pub fn label(self) -> &'static str {
        match self {
            CardStatus::Normal => "正常",
            CardStatus::Lost => "挂失",
            CardStatus::Cancelled => "注销",
            CardStatus::Frozen => "冻结",
        }
    }
    /// Parse the registry's Chinese (or English) status text.
    pub fn parse(s: &str) -> Option<CardStatus> {
        match s.trim() {
            "正常" | "normal" | "有效" | "启用" => Some(CardStatus::Normal),
            "挂失" | "正式挂失" | "临时挂失" | "口头挂失" | "lost" => {
                Some(CardStatus::Lost)
            }
            "注销" | "cancelled" | "已注销" => Some(CardStatus::Cancelled),
            "冻结" | "frozen" | "止付" => Some(CardStatus::Frozen),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Normal => "normal",
            CardStatus::Lost => "lost",
            CardStatus::Cancelled => "cancelled",
            CardStatus::Frozen => "frozen",
        }
    }
}

/// One card of the registry snapshot (身份证号码, 姓名, 社会保障卡号, 发卡银行, 银行账号, 卡状态,
/// 金融账户是否激活).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRecord {
    pub resident_id: ResidentId,
    pub name: String,
    /// 社会保障卡号 (the card number printed on the card, not the bank account).
    pub card_no: String,
    /// 发卡银行: the bank whose financial account the card carries.
    pub bank: String,
    /// 银行账号: the financial account subsidies are credited to.
    pub account: BankAccount,
    pub status: CardStatus,
    /// 金融账户是否激活
    pub activated: bool,
}

/// One entry of the death register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeathRecord {
    pub resident_id: ResidentId,
    pub name: String,
    pub date_of_death: NaiveDate,
}

/// One entry of the region table (统计用区划代码).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionEntry {
    pub code: RegionCode,
    pub name: String,
}
