//! The double-entry ledger: every movement of money is an entry whose postings sum to zero,
//! between named accounts (DOMAIN.md §5). A positive posting is a debit (money arrives in
//! the account), a negative one a credit (money leaves it). So the ledger as a whole always
//! sums to zero, and an account's balance is what it holds (sources run negative).
//!
//! Province models differ in which accounts money passes through:
//! - Heilongjiang (黑财监〔2021〕30号 二(三)三): treasury → treasury agent bank → cards; "补贴资金
//!   不再拨入业务主管部门、乡镇、街道、社区等单位账户". Grain-risk-fund projects (二(三)四): ADBC →
//!   PBoC treasury special account → agent bank → cards, cleared against the special account,
//!   with subjects 1700502 (income) and 2220115 (expenditure).
//! - Sichuan (川财办〔2018〕61号 三(四)): treasury → department zero-balance account → bank → cards;
//!   unpaid money goes back from the zero-balance account to the treasury (乐山办法 四(五)).
//! - Henan (濮阳规程 第二十一、二十二条): treasury → agent bank → cards.

use crate::money::Fen;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Kinds of account money can sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// 国库 (the treasury single account at the PBoC).
    Treasury,
    /// 农业发展银行 (ADBC) grain risk fund source account.
    Adbc,
    /// 人民银行国库粮食风险基金专户.
    GrainRiskFund,
    /// 单位零余额账户 (Sichuan).
    ZeroBalance,
    /// 代理银行/代发银行 settlement (待结算财政款项).
    AgentBank,
    /// The beneficiaries' social security card accounts, together.
    Beneficiaries,
}

impl AccountKind {
    pub fn label_zh(self) -> &'static str {
        match self {
            AccountKind::Treasury => "国库",
            AccountKind::Adbc => "农发行粮食风险基金",
            AccountKind::GrainRiskFund => "粮食风险基金专户",
            AccountKind::ZeroBalance => "单位零余额账户",
            AccountKind::AgentBank => "代理银行待结算",
            AccountKind::Beneficiaries => "受益人社保卡账户",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Treasury => "treasury",
            AccountKind::Adbc => "adbc",
            AccountKind::GrainRiskFund => "grain_risk_fund",
            AccountKind::ZeroBalance => "zero_balance",
            AccountKind::AgentBank => "agent_bank",
            AccountKind::Beneficiaries => "beneficiaries",
        }
    }
    pub fn parse(s: &str) -> Option<AccountKind> {
        [
            AccountKind::Treasury,
            AccountKind::Adbc,
            AccountKind::GrainRiskFund,
            AccountKind::ZeroBalance,
            AccountKind::AgentBank,
            AccountKind::Beneficiaries,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An account: its kind and whose it is (a region code, a department, a bank).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Account {
    pub kind: AccountKind,
    pub owner: String,
}

impl Account {
    pub fn new(kind: AccountKind, owner: impl Into<String>) -> Account {
        Account {
            kind,
            owner: owner.into(),
        }
    }
    /// `XX县粮食风险基金专户` naming (黑财监〔2021〕30号 二(三)四).
    pub fn label_zh(&self) -> String {
        format!("{}[{}]", self.kind.label_zh(), self.owner)
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.owner)
    }
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Money moves towards the bank (funding, transfer to a special or zero-balance account).
    Funding,
    /// Cards credited.
    Payment,
    /// Money that could not be paid goes back (原渠道退回).
    Refund,
    /// Settlement between the agent bank and the treasury or special account.
    Clearing,
    /// Recovered money (duplicate or deceased-person payments) returned.
    Recovery,
}

impl EntryKind {
    pub fn label_zh(self) -> &'static str {
        match self {
            EntryKind::Funding => "拨付",
            EntryKind::Payment => "打卡发放",
            EntryKind::Refund => "原渠道退回",
            EntryKind::Clearing => "清算",
            EntryKind::Recovery => "追回退库",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Funding => "funding",
            EntryKind::Payment => "payment",
            EntryKind::Refund => "refund",
            EntryKind::Clearing => "clearing",
            EntryKind::Recovery => "recovery",
        }
    }
}

/// One leg of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: Account,
    pub amount: Fen,
}

/// A balanced entry. Construct it with [`Entry::new`] or [`Entry::transfer`]; an unbalanced
/// entry cannot exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: EntryKind,
    pub batch: Option<i64>,
    pub memo: String,
    /// Accounting subject code, where one applies (1700502, 2220115).
    pub subject: Option<String>,
    postings: Vec<Posting>,
}

/// An entry that cannot be posted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("分录借贷不平：合计{0} (entry does not balance: sum {0})")]
    Unbalanced(Fen),
    #[error("分录至少需要两个账户 (an entry needs at least two postings)")]
    TooFewPostings,
    #[error("分录金额为零 (zero posting)")]
    ZeroPosting,
    #[error("分录金额溢出 (amount overflow)")]
    Overflow,
}

impl Entry {
    pub fn new(
        kind: EntryKind,
        batch: Option<i64>,
        memo: impl Into<String>,
        postings: Vec<Posting>,
    ) -> Result<Entry, LedgerError> {
        if postings.len() < 2 {
            return Err(LedgerError::TooFewPostings);
        }
        if postings.iter().any(|p| p.amount == Fen(0)) {
            return Err(LedgerError::ZeroPosting);
        }
        let mut sum = Fen(0);
        for p in &postings {
            sum = sum.checked_add(p.amount).ok_or(LedgerError::Overflow)?;
        }
        if sum != Fen(0) {
            return Err(LedgerError::Unbalanced(sum));
        }
        Ok(Entry {
            kind,
            batch,
            memo: memo.into(),
            subject: None,
            postings,
        })
    }

    /// Move `amount` from `from` to `to`.
    pub fn transfer(
        kind: EntryKind,
        batch: Option<i64>,
        memo: impl Into<String>,
        from: Account,
        to: Account,
        amount: Fen,
    ) -> Result<Entry, LedgerError> {
        let neg = Fen(0).checked_sub(amount).ok_or(LedgerError::Overflow)?;
        Entry::new(
            kind,
            batch,
            memo,
            vec![
                Posting {
                    account: from,
                    amount: neg,
                },
                Posting {
                    account: to,
                    amount,
                },
            ],
        )
    }

    pub fn with_subject(mut self, subject: impl Into<String>) -> Entry {
        self.subject = Some(subject.into());
        self
    }

    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }

    /// Whether any posting touches an account of `kind`.
    pub fn touches(&self, kind: AccountKind) -> bool {
        self.postings.iter().any(|p| p.account.kind == kind)
    }
}

/// Balances by account, built from entries. Used in memory by tests and reports; the store
/// keeps the entries themselves.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    balances: BTreeMap<Account, Fen>,
    entries: Vec<Entry>,
}

impl Ledger {
    pub fn post(&mut self, e: Entry) {
        for p in &e.postings {
            *self.balances.entry(p.account.clone()).or_default() += p.amount;
        }
        self.entries.push(e);
    }
    pub fn balance(&self, a: &Account) -> Fen {
        self.balances.get(a).copied().unwrap_or_default()
    }
    /// Sum over all accounts of a kind.
    pub fn balance_of_kind(&self, k: AccountKind) -> Fen {
        self.balances
            .iter()
            .filter(|(a, _)| a.kind == k)
            .map(|(_, v)| *v)
            .sum()
    }
    pub fn balances(&self) -> impl Iterator<Item = (&Account, Fen)> {
        self.balances.iter().map(|(a, v)| (a, *v))
    }
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    /// The sum of all balances: always zero.
    pub fn sum(&self) -> Fen {
        self.balances.values().copied().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn acct(k: AccountKind) -> Account {
        Account::new(k, "230102")
    }

    #[test]
    fn unbalanced_entries_cannot_be_built() {
        let p = |k, a| Posting {
            account: acct(k),
            amount: Fen(a),
        };
        assert_eq!(
            Entry::new(
                EntryKind::Payment,
                None,
                "x",
                vec![
                    p(AccountKind::Treasury, -100),
                    p(AccountKind::Beneficiaries, 99)
                ]
            ),
            Err(LedgerError::Unbalanced(Fen(-1)))
        );
        assert_eq!(
            Entry::new(
                EntryKind::Payment,
                None,
                "x",
                vec![
                    p(AccountKind::Treasury, 0),
                    p(AccountKind::Beneficiaries, 0)
                ]
            ),
            Err(LedgerError::ZeroPosting)
        );
        assert!(
            Entry::new(
                EntryKind::Payment,
                None,
                "x",
                vec![p(AccountKind::Treasury, 5)]
            )
            .is_err()
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Fund(i64),
        Pay(i64),
        Fail(i64),
        Refund(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1i64..1_000_000).prop_map(Op::Fund),
            (1i64..1_000_000).prop_map(Op::Pay),
            (1i64..1_000_000).prop_map(Op::Fail),
            (1i64..1_000_000).prop_map(Op::Refund),
        ]
    }

    proptest! {
        /// Under any sequence of funding, payments, failures and refunds, the ledger sums to
        /// zero, the bank never pays out more than it was funded, and what left the treasury
        /// equals what the beneficiaries received plus what the bank still holds.
        #[test]
        fn ledger_balances_under_random_operations(ops in proptest::collection::vec(op(), 0..200)) {
            let mut l = Ledger::default();
            let t = acct(AccountKind::Treasury);
            let bank = acct(AccountKind::AgentBank);
            let ben = acct(AccountKind::Beneficiaries);
            let mut failed_open = Fen(0);
            for o in ops {
                let held = l.balance(&bank);
                match o {
                    Op::Fund(a) => l.post(Entry::transfer(EntryKind::Funding, Some(1), "fund", t.clone(), bank.clone(), Fen(a)).unwrap()),
                    Op::Pay(a) if Fen(a) <= held - failed_open => l.post(Entry::transfer(EntryKind::Payment, Some(1), "pay", bank.clone(), ben.clone(), Fen(a)).unwrap()),
                    Op::Fail(a) if Fen(a) <= held - failed_open => failed_open += Fen(a),
                    Op::Refund(a) if Fen(a) <= failed_open => {
                        failed_open -= Fen(a);
                        l.post(Entry::transfer(EntryKind::Refund, Some(1), "refund", bank.clone(), t.clone(), Fen(a)).unwrap());
                    }
                    _ => {}
                }
                prop_assert_eq!(l.sum(), Fen(0));
                prop_assert!(l.balance(&bank) >= Fen(0));
                prop_assert!(l.balance(&ben) >= Fen(0));
                prop_assert_eq!(-l.balance(&t), l.balance(&ben) + l.balance(&bank));
            }
        }
    }
}
