//! Rosters (发放清册): the raw lines a department submits, the columns they come in, and the
//! problems found in them.
//!
//! The fields follow 黑财监〔2021〕30号 二(三)二: "补贴人员姓名、身份证号码、手机号码、行政区划、
//! 补贴资金项目名称、补贴标准、计量单位、补贴金额、发放时间", plus the Sichuan household head and
//! proxy columns (乐山办法 五) and the bank account collected under 濮阳规程 第十七条.

use crate::reason::{ReasonCode, Severity};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! columns {
    ($( $variant:ident => $key:literal, $zh:literal, [$($alias:literal),*]; )*) => {
        /// A roster column. `label()` is the canonical Chinese header; `from_header` also
        /// accepts the documented aliases (see `adapters/files/README.md`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Column { $( $variant, )* }

        impl Column {
            pub const ALL: &'static [Column] = &[ $( Column::$variant, )* ];
            /// Canonical Chinese header, e.g. `身份证号码`.
            pub fn label(self) -> &'static str {
                match self { $( Column::$variant => $zh, )* }
            }
            /// Stable English key, e.g. `resident_id` (JSON output).
            pub fn key(self) -> &'static str {
                match self { $( Column::$variant => $key, )* }
            }
            /// The header names accepted for this column, canonical first.
            pub fn aliases(self) -> &'static [&'static str] {
                match self { $( Column::$variant => &[$zh, $($alias),*], )* }
            }
        }
    };
}

columns! {
    Name => "name", "姓名", ["补贴对象姓名", "受益人姓名", "补贴人员姓名", "享受人姓名"];
    ResidentId => "resident_id", "身份证号码", ["身份证号", "公民身份号码", "证件号码", "身份证"];
    Phone => "phone", "手机号码", ["手机号", "联系电话", "电话"];
    Region => "region", "行政区划代码", ["行政区划", "区划代码", "行政区划编码"];
    Project => "project", "补贴项目", ["补贴项目代码", "补贴资金项目名称", "项目名称", "项目代码"];
    Standard => "standard", "补贴标准", ["标准"];
    Quantity => "quantity", "数量", ["补贴数量", "面积"];
    Unit => "unit", "计量单位", ["单位"];
    Amount => "amount", "补贴金额", ["金额", "发放金额"];
    Period => "period", "属期", ["发放属期", "所属期"];
    PayDate => "pay_date", "发放时间", ["发放日期"];
    HouseholdHead => "household_head", "户主", ["是否户主", "户主姓名"];
    BankAccount => "bank_account", "银行账号", ["社会保障卡银行账号", "社保卡银行账号", "账号"];
    ProxyName => "proxy_name", "代领人", ["代领人姓名", "代管人", "代管人姓名"];
    ProxyId => "proxy_id", "代领人身份证号码", ["代领人身份证号", "代管人身份证号码"];
    ProxyKind => "proxy_kind", "代领类型", ["代理类型"];
    Remark => "remark", "备注", [];
}

impl Column {
    /// Find the column a header names (trimmed, full-width spaces and `*` required-markers
    /// ignored). `None` for headers the roster does not use; callers keep those as extra
    /// columns and ignore them.
    pub fn from_header(header: &str) -> Option<Column> {
        let h: String = header
            .trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}' || c == '*' || c == '＊')
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '\u{3000}')
            .collect();
        Column::ALL
            .iter()
            .copied()
            .find(|c| c.aliases().iter().any(|a| *a == h) || c.key() == h)
    }

    /// Columns a roster must have; a file without one of them is unusable as a whole.
    pub const REQUIRED: &'static [Column] = &[Column::Name, Column::ResidentId, Column::Amount];
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for Column {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl<'de> Deserialize<'de> for Column {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Column::from_header(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown column `{s}`")))
    }
}

/// One line as read from a file, before validation: every field is the cell's text, trimmed,
/// `None` when the column is absent or the cell empty. Readers never interpret values; the
/// kernel's validation does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawLine {
    /// 1-based row number in the source as a spreadsheet user sees it (the header is row 1,
    /// the first data line row 2).
    pub row: u32,
    pub name: Option<String>,
    pub resident_id: Option<String>,
    /// The resident ID cell was a *number* in the spreadsheet (Excel keeps 15 significant
    /// digits, so the value is corrupt): reported as `id.numeric_cell`, never repaired.
    pub resident_id_numeric: bool,
    pub phone: Option<String>,
    pub region: Option<String>,
    pub project: Option<String>,
    pub standard: Option<String>,
    pub quantity: Option<String>,
    pub unit: Option<String>,
    pub amount: Option<String>,
    pub period: Option<String>,
    pub pay_date: Option<String>,
    pub household_head: Option<String>,
    pub bank_account: Option<String>,
    pub proxy_name: Option<String>,
    pub proxy_id: Option<String>,
    pub proxy_kind: Option<String>,
    pub remark: Option<String>,
}

/// The field of a roster line (`RawLine` or `RawLineRef`: the same field names) that holds
/// column `$col`, as `&mut` (`column_field!(self, mut; col)`) or `&` (`column_field!(self; col)`).
macro_rules! column_field {
    ($line:ident $(, $m:ident)?; $col:expr) => {
        match $col {
            Column::Name => &$($m)? $line.name,
            Column::ResidentId => &$($m)? $line.resident_id,
            Column::Phone => &$($m)? $line.phone,
            Column::Region => &$($m)? $line.region,
            Column::Project => &$($m)? $line.project,
            Column::Standard => &$($m)? $line.standard,
            Column::Quantity => &$($m)? $line.quantity,
            Column::Unit => &$($m)? $line.unit,
            Column::Amount => &$($m)? $line.amount,
            Column::Period => &$($m)? $line.period,
            Column::PayDate => &$($m)? $line.pay_date,
            Column::HouseholdHead => &$($m)? $line.household_head,
            Column::BankAccount => &$($m)? $line.bank_account,
            Column::ProxyName => &$($m)? $line.proxy_name,
            Column::ProxyId => &$($m)? $line.proxy_id,
            Column::ProxyKind => &$($m)? $line.proxy_kind,
            Column::Remark => &$($m)? $line.remark,
        }
    };
}

impl RawLine {
    /// Set the field for `col` (used by readers after header mapping). Empty text is `None`.
    pub fn set(&mut self, col: Column, value: &str) {
        let v = field_text(value).map(str::to_owned);
        *column_field!(self, mut; col) = v;
    }

    /// The field for `col`.
    pub fn get(&self, col: Column) -> Option<&str> {
        let v = column_field!(self; col);
        v.as_deref()
    }
}

/// The text a cell keeps as a field: trimmed (ASCII and ideographic spaces), `None` when
/// empty. Shared by [`RawLine::set`] and [`RawLineRef::set`].
fn field_text(value: &str) -> Option<&str> {
    // `trim` removes every White_Space character at both ends, the ideographic space U+3000
    // among them (checked in the tests), so no second pass for it.
    let v = value.trim();
    (!v.is_empty()).then_some(v)
}

/// A [`RawLine`] borrowed from where it was read (a reader's row buffer): the same fields,
/// nothing allocated. The validation reads lines through this view, so a reader that keeps
/// its row in one reusable buffer hands a million lines over without a heap allocation per
/// cell ([`crate::intake::LineSource`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawLineRef<'a> {
    /// See [`RawLine::row`].
    pub row: u32,
    pub name: Option<&'a str>,
    pub resident_id: Option<&'a str>,
    /// See [`RawLine::resident_id_numeric`].
    pub resident_id_numeric: bool,
    pub phone: Option<&'a str>,
    pub region: Option<&'a str>,
    pub project: Option<&'a str>,
    pub standard: Option<&'a str>,
    pub quantity: Option<&'a str>,
    pub unit: Option<&'a str>,
    pub amount: Option<&'a str>,
    pub period: Option<&'a str>,
    pub pay_date: Option<&'a str>,
    pub household_head: Option<&'a str>,
    pub bank_account: Option<&'a str>,
    pub proxy_name: Option<&'a str>,
    pub proxy_id: Option<&'a str>,
    pub proxy_kind: Option<&'a str>,
    pub remark: Option<&'a str>,
}

impl<'a> RawLineRef<'a> {
    /// An empty line at `row`.
    pub fn new(row: u32) -> RawLineRef<'a> {
        RawLineRef {
            row,
            ..RawLineRef::default()
        }
    }

    /// Set the field for `col`, trimmed exactly as [`RawLine::set`] does; empty text is `None`.
    pub fn set(&mut self, col: Column, value: &'a str) {
        self.assign(col, field_text(value));
    }

    /// [`RawLineRef::set`] for a text that has no whitespace at either end already (a
    /// reader's cleaned cell): the same field, without trimming it a second time.
    pub fn set_trimmed(&mut self, col: Column, value: &'a str) {
        debug_assert_eq!(value, value.trim(), "set_trimmed needs trimmed text");
        self.assign(col, (!value.is_empty()).then_some(value));
    }

    fn assign(&mut self, col: Column, v: Option<&'a str>) {
        *column_field!(self, mut; col) = v;
    }

    /// The owned line.
    pub fn to_line(&self) -> RawLine {
        let o = |v: Option<&str>| v.map(str::to_owned);
        RawLine {
            row: self.row,
            name: o(self.name),
            resident_id: o(self.resident_id),
            resident_id_numeric: self.resident_id_numeric,
            phone: o(self.phone),
            region: o(self.region),
            project: o(self.project),
            standard: o(self.standard),
            quantity: o(self.quantity),
            unit: o(self.unit),
            amount: o(self.amount),
            period: o(self.period),
            pay_date: o(self.pay_date),
            household_head: o(self.household_head),
            bank_account: o(self.bank_account),
            proxy_name: o(self.proxy_name),
            proxy_id: o(self.proxy_id),
            proxy_kind: o(self.proxy_kind),
            remark: o(self.remark),
        }
    }
}

impl RawLine {
    /// The line as a borrowed view (what the validation reads).
    pub fn view(&self) -> RawLineRef<'_> {
        fn r(v: &Option<String>) -> Option<&str> {
            v.as_deref()
        }
        RawLineRef {
            row: self.row,
            name: r(&self.name),
            resident_id: r(&self.resident_id),
            resident_id_numeric: self.resident_id_numeric,
            phone: r(&self.phone),
            region: r(&self.region),
            project: r(&self.project),
            standard: r(&self.standard),
            quantity: r(&self.quantity),
            unit: r(&self.unit),
            amount: r(&self.amount),
            period: r(&self.period),
            pay_date: r(&self.pay_date),
            household_head: r(&self.household_head),
            bank_account: r(&self.bank_account),
            proxy_name: r(&self.proxy_name),
            proxy_id: r(&self.proxy_id),
            proxy_kind: r(&self.proxy_kind),
            remark: r(&self.remark),
        }
    }
}

/// One problem found in one line: what (code), where (row, column), how bad, and why in
/// Chinese. The message never contains a full personal identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub row: u32,
    pub column: Option<Column>,
    pub code: ReasonCode,
    pub severity: Severity,
    pub message: String,
}

impl Issue {
    pub fn new(
        row: u32,
        column: Option<Column>,
        code: ReasonCode,
        message: impl Into<String>,
    ) -> Issue {
        Issue {
            row,
            column,
            code,
            severity: code.severity(),
            message: message.into(),
        }
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "第{}行", self.row)?;
        if let Some(c) = self.column {
            write!(f, "「{}」", c.label())?;
        }
        write!(f, " [{}] {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_map_with_aliases_and_markers() {
        assert_eq!(Column::from_header("身份证号码"), Some(Column::ResidentId));
        assert_eq!(Column::from_header(" *身份证号 "), Some(Column::ResidentId));
        assert_eq!(
            Column::from_header("补贴资金项目名称"),
            Some(Column::Project)
        );
        assert_eq!(Column::from_header("resident_id"), Some(Column::ResidentId));
        assert_eq!(Column::from_header("籍贯"), None);
    }

    #[test]
    fn aliases_are_unambiguous() {
        let mut seen = std::collections::HashMap::new();
        for c in Column::ALL {
            for a in c.aliases() {
                if let Some(prev) = seen.insert(*a, *c) {
                    panic!("alias {a} used by {prev:?} and {c:?}");
                }
            }
        }
    }

    #[test]
    fn set_and_get_round_trip_every_column() {
        let mut l = RawLine::default();
        for (i, c) in Column::ALL.iter().enumerate() {
            l.set(*c, &format!(" v{i} "));
        }
        for (i, c) in Column::ALL.iter().enumerate() {
            assert_eq!(l.get(*c), Some(format!("v{i}").as_str()));
        }
        l.set(Column::Name, "  ");
        assert_eq!(l.get(Column::Name), None);
    }

    #[test]
    fn trim_removes_ideographic_spaces() {
        assert!('\u{3000}'.is_whitespace());
        assert_eq!(
            field_text("\u{3000} \u{3000}张三\u{3000} \u{3000}"),
            Some("张三")
        );
        assert_eq!(field_text("\u{3000}"), None);
    }

    #[test]
    fn borrowed_line_sets_like_the_owned_one() {
        let texts = [
            " a ",
            "\u{3000}b\u{3000}",
            "  ",
            "",
            " \u{3000} c d \u{3000}",
            "e",
        ];
        for (i, t) in texts.iter().enumerate() {
            let mut owned = RawLine {
                row: 7,
                ..RawLine::default()
            };
            let mut borrowed = RawLineRef::new(7);
            for c in Column::ALL.iter().skip(i % 3) {
                owned.set(*c, t);
                borrowed.set(*c, t);
            }
            assert_eq!(borrowed, owned.view());
            assert_eq!(borrowed.to_line(), owned);
        }
    }
}
