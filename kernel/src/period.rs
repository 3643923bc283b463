//! Subsidy periods (属期): the month, quarter, half-year or year a payment line is for, and
//! the cross-period rule (跨属期发放规则) that bounds how far a batch may reach back or forward.
//!
//! Rosters spell periods in many ways (`2023-05`, `2023年5月`, `202305`, a date that a
//! spreadsheet made of `2023-05`, `2023年第二季度`, `2023H1` …); [`Period::parse`] accepts
//! them all and [`Period`]'s `Display` gives the canonical form (`2023-05`, `2023-Q2`,
//! `2023-H1`, `2023`), which is also its serde form.

use crate::reason::ReasonCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// Earliest year [`Period::parse`] accepts (the 一卡通 reform postdates it).
pub const MIN_YEAR: i32 = 1990;
/// Latest year [`Period::parse`] accepts.
pub const MAX_YEAR: i32 = 2100;

/// Why a text is not a period (reason code `period.format`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// Not one of the accepted spellings, not a real month/quarter/half/date, or a year
    /// outside 1990..=2100.
    #[error(
        "属期格式错误：应为年月（如2023-05、2023年5月）、季度（如2023-Q2、2023年第2季度）、\
         半年（如2023-H1、2023年上半年）或年度（如2023），年份在1990至2100之间 \
         (period must be a month, quarter, half-year or year between 1990 and 2100)"
    )]
    Format,
}

impl PeriodError {
    /// The reason code: `period.format`.
    pub fn reason(&self) -> ReasonCode {
        match self {
            PeriodError::Format => ReasonCode::PeriodFormat,
        }
    }
}

/// The granularity of a period. Ordered from the shortest to the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// 月
    Month,
    /// 季度
    Quarter,
    /// 半年
    Half,
    /// 年度
    Year,
}

impl PeriodKind {
    /// Chinese label: 月, 季度, 半年, 年度.
    pub fn label_zh(self) -> &'static str {
        match self {
            PeriodKind::Month => "月",
            PeriodKind::Quarter => "季度",
            PeriodKind::Half => "半年",
            PeriodKind::Year => "年度",
        }
    }

    /// Number of months in a period of this kind: 1, 3, 6, 12.
    pub fn months(self) -> u8 {
        match self {
            PeriodKind::Month => 1,
            PeriodKind::Quarter => 3,
            PeriodKind::Half => 6,
            PeriodKind::Year => 12,
        }
    }

    /// Periods of this kind per year: 12, 4, 2, 1.
    fn per_year(self) -> i64 {
        12 / i64::from(self.months())
    }
}

/// A subsidy period (属期).
///
/// The fields are public for matching. Values built by [`Period::parse`] and the
/// constructors are always in range (month 1-12, quarter 1-4, half 1-2); a hand-built
/// out-of-range value is treated arithmetically (month 13 of 2023 behaves as 2024-01).
///
/// Ordering is by first month, then by kind (shortest first): `2023-01 < 2023-Q1 < 2023-H1
/// < 2023 < 2023-02`. Serde uses the canonical string of `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// A calendar month.
    Month {
        /// Calendar year.
        year: i32,
        /// 1..=12.
        month: u8,
    },
    /// A calendar quarter (Q1 = January to March).
    Quarter {
        /// Calendar year.
        year: i32,
        /// 1..=4.
        quarter: u8,
    },
    /// A half year (H1 = January to June).
    Half {
        /// Calendar year.
        year: i32,
        /// 1..=2.
        half: u8,
    },
    /// A calendar year.
    Year(i32),
}

/// Clamp an i64 year into i32 (only reachable with absurd offsets).
fn clamp_year(y: i64) -> i32 {
    i32::try_from(y).unwrap_or(if y < 0 { i32::MIN } else { i32::MAX })
}

/// The first day of the month with absolute index `idx` (`year * 12 + month - 1`),
/// saturating to chrono's range.
fn month_start(idx: i64) -> NaiveDate {
    let year = idx.div_euclid(12);
    let month = idx.rem_euclid(12) as u32 + 1;
    i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, 1))
        .unwrap_or(if idx < 0 {
            NaiveDate::MIN
        } else {
            NaiveDate::MAX
        })
}

impl Period {
    /// The month `year-month`, `None` unless `month` is 1..=12.
    pub fn new_month(year: i32, month: u8) -> Option<Period> {
        (1..=12)
            .contains(&month)
            .then_some(Period::Month { year, month })
    }

    /// The quarter, `None` unless `quarter` is 1..=4.
    pub fn new_quarter(year: i32, quarter: u8) -> Option<Period> {
        (1..=4)
            .contains(&quarter)
            .then_some(Period::Quarter { year, quarter })
    }

    /// The half year, `None` unless `half` is 1 or 2.
    pub fn new_half(year: i32, half: u8) -> Option<Period> {
        (1..=2)
            .contains(&half)
            .then_some(Period::Half { year, half })
    }

    /// The period of `kind` that contains `date` (e.g. the current period of a batch, with
    /// `date` passed in by the caller: the kernel reads no clock).
    pub fn containing(date: NaiveDate, kind: PeriodKind) -> Period {
        use chrono::Datelike;
        let idx = i64::from(date.year()) * 12 + i64::from(date.month0());
        Period::from_index(PeriodKind::Month, idx).with_kind(kind)
    }

    /// The period of `kind` that contains this period's first month.
    fn with_kind(self, kind: PeriodKind) -> Period {
        let per = i64::from(kind.months());
        Period::from_index(kind, self.start_month_index().div_euclid(per))
    }

    /// Parse a roster cell. Accepted (surrounding and inner whitespace ignored, full-width
    /// characters folded to ASCII, `Q`/`H` in either case):
    ///
    /// * months: `2023-05`, `2023-5`, `202305`, `2023/05`, `2023.05`, `2023年5月`,
    ///   `2023年05月`, `2023年五月`, `2023年5月份`;
    /// * a full date, meaning its month (spreadsheets turn `2023-05` into a date):
    ///   `2023-05-17`, `2023/5/17`, `20230517`, `2023年5月17日`, optionally followed by a time
    ///   (`2023-05-01 00:00:00`);
    /// * quarters: `2023Q2`, `2023-Q2`, `2023年第2季度`, `2023年二季度`, `2023年第二季`;
    /// * halves: `2023H1`, `2023-H2`, `2023年上半年`, `2023下半年`;
    /// * years: `2023`, `2023年`, `2023年度`.
    ///
    /// The year must be within 1990..=2100.
    pub fn parse(s: &str) -> Result<Period, PeriodError> {
        let folded: String = s.trim().chars().map(fold_fullwidth).collect();
        let (date_part, has_time) = split_time(&folded);
        let compact: String = date_part.chars().filter(|c| !c.is_whitespace()).collect();
        match parse_compact(&compact) {
            Some((p, had_day))
                if (had_day || !has_time) && (MIN_YEAR..=MAX_YEAR).contains(&p.year()) =>
            {
                Ok(p)
            }
            _ => Err(PeriodError::Format),
        }
    }

    /// The kind of period.
    pub fn kind(&self) -> PeriodKind {
        match self {
            Period::Month { .. } => PeriodKind::Month,
            Period::Quarter { .. } => PeriodKind::Quarter,
            Period::Half { .. } => PeriodKind::Half,
            Period::Year(_) => PeriodKind::Year,
        }
    }

    /// The calendar year.
    pub fn year(&self) -> i32 {
        match *self {
            Period::Month { year, .. }
            | Period::Quarter { year, .. }
            | Period::Half { year, .. } => year,
            Period::Year(year) => year,
        }
    }

    /// Ordinal within its kind, so that consecutive periods differ by 1: months
    /// `year*12 + month - 1`, quarters `year*4 + quarter - 1`, halves `year*2 + half - 1`,
    /// years `year`.
    pub fn index(&self) -> i64 {
        match *self {
            Period::Month { year, month } => i64::from(year) * 12 + i64::from(month) - 1,
            Period::Quarter { year, quarter } => i64::from(year) * 4 + i64::from(quarter) - 1,
            Period::Half { year, half } => i64::from(year) * 2 + i64::from(half) - 1,
            Period::Year(year) => i64::from(year),
        }
    }

    /// The period of `kind` with ordinal `idx` (inverse of [`Period::index`]).
    pub fn from_index(kind: PeriodKind, idx: i64) -> Period {
        let per = kind.per_year();
        let year = clamp_year(idx.div_euclid(per));
        let n = idx.rem_euclid(per) as u8 + 1;
        match kind {
            PeriodKind::Month => Period::Month { year, month: n },
            PeriodKind::Quarter => Period::Quarter { year, quarter: n },
            PeriodKind::Half => Period::Half { year, half: n },
            PeriodKind::Year => Period::Year(clamp_year(idx)),
        }
    }

    /// The period `n` steps later (earlier for negative `n`) of the same kind:
    /// `2023-05`.offset(-5) = `2022-12`. Saturates at the ends of the i32 year range.
    pub fn offset(&self, n: i64) -> Period {
        Period::from_index(self.kind(), self.index().saturating_add(n))
    }

    /// Absolute index (`year*12 + month - 1`) of the first month.
    fn start_month_index(&self) -> i64 {
        let y = i64::from(self.year()) * 12;
        match *self {
            Period::Month { month, .. } => y + i64::from(month) - 1,
            Period::Quarter { quarter, .. } => y + (i64::from(quarter) - 1) * 3,
            Period::Half { half, .. } => y + (i64::from(half) - 1) * 6,
            Period::Year(_) => y,
        }
    }

    /// Ordering key: first month, kind, then the raw fields (which only matter for
    /// hand-built out-of-range values, keeping `Ord` consistent with `Eq`).
    fn sort_key(&self) -> (i64, PeriodKind, i32, u8) {
        let sub = match *self {
            Period::Month { month: n, .. }
            | Period::Quarter { quarter: n, .. }
            | Period::Half { half: n, .. } => n,
            Period::Year(_) => 0,
        };
        (self.start_month_index(), self.kind(), self.year(), sub)
    }

    /// Absolute index of the last month.
    fn end_month_index(&self) -> i64 {
        self.start_month_index() + i64::from(self.kind().months()) - 1
    }

    /// The first month (a `Month` period; itself for a month).
    pub fn first_month(&self) -> Period {
        Period::from_index(PeriodKind::Month, self.start_month_index())
    }

    /// The last month (a `Month` period; itself for a month).
    pub fn last_month(&self) -> Period {
        Period::from_index(PeriodKind::Month, self.end_month_index())
    }

    /// The months of the period, in order.
    pub fn months(&self) -> impl Iterator<Item = Period> + use<> {
        (self.start_month_index()..=self.end_month_index())
            .map(|i| Period::from_index(PeriodKind::Month, i))
    }

    /// The first day.
    pub fn start_date(&self) -> NaiveDate {
        month_start(self.start_month_index())
    }

    /// The last day.
    pub fn end_date(&self) -> NaiveDate {
        let next = month_start(self.end_month_index().saturating_add(1));
        next.pred_opt().unwrap_or(next)
    }

    /// Whether `other` lies entirely inside `self` (every period contains itself; a year
    /// contains its halves, quarters and months; a quarter never contains a half).
    pub fn contains(&self, other: &Period) -> bool {
        self.start_month_index() <= other.start_month_index()
            && other.end_month_index() <= self.end_month_index()
    }

    /// Whether `date` falls within the period.
    pub fn contains_date(&self, date: NaiveDate) -> bool {
        self.start_date() <= date && date <= self.end_date()
    }

    /// Chinese label: `2023年5月`, `2023年第2季度`, `2023年上半年`, `2023年`.
    pub fn label_zh(&self) -> String {
        match *self {
            Period::Month { year, month } => format!("{year}年{month}月"),
            Period::Quarter { year, quarter } => format!("{year}年第{quarter}季度"),
            Period::Half { year, half: 1 } => format!("{year}年上半年"),
            Period::Half { year, .. } => format!("{year}年下半年"),
            Period::Year(year) => format!("{year}年"),
        }
    }
}

impl PartialOrd for Period {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Period {
    /// By first month, then by kind (shortest first).
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl fmt::Display for Period {
    /// Canonical form: `2023-05`, `2023-Q2`, `2023-H1`, `2023`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::Month { year, month } => write!(f, "{year:04}-{month:02}"),
            Period::Quarter { year, quarter } => write!(f, "{year:04}-Q{quarter}"),
            Period::Half { year, half } => write!(f, "{year:04}-H{half}"),
            Period::Year(year) => write!(f, "{year:04}"),
        }
    }
}

impl std::str::FromStr for Period {
    type Err = PeriodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Period::parse(s)
    }
}

impl Serialize for Period {
    /// The canonical string.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    /// Anything [`Period::parse`] accepts.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Period::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Fold a full-width ASCII variant (U+FF01..U+FF5E) to ASCII and the ideographic space to a
/// space.
fn fold_fullwidth(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Split off a trailing time of day (`2023-05-01 00:00:00`, `2023-05-01T08:30`): returns the
/// date part and whether a time was removed.
fn split_time(s: &str) -> (&str, bool) {
    if let Some((date, time)) = s.split_once([' ', 'T']) {
        let time = time.trim();
        if time.contains(':')
            && time
                .chars()
                .all(|c| c.is_ascii_digit() || c == ':' || c == '.')
        {
            return (date.trim_end(), true);
        }
    }
    (s, false)
}

/// Value of a Chinese numeral 一..十二 (also 两 for 2) at the start of `s`, with the rest.
fn take_cn_number(s: &str) -> Option<(u32, &str)> {
    let digit = |c: char| {
        "零一二三四五六七八九"
            .chars()
            .position(|d| d == c)
            .map(|p| p as u32)
    };
    let mut chars = s.char_indices();
    let (_, c0) = chars.next()?;
    let after = |n: usize| &s[n..];
    if c0 == '十' {
        // 十, 十一 .. 十九
        let rest = after(c0.len_utf8());
        let unit = rest
            .chars()
            .next()
            .and_then(|c1| Some((digit(c1).filter(|d| *d > 0)?, c1)));
        return Some(match unit {
            Some((d, c1)) => (10 + d, &rest[c1.len_utf8()..]),
            None => (10, rest),
        });
    }
    let d = if c0 == '两' { 2 } else { digit(c0)? };
    Some((d, after(c0.len_utf8())))
}

/// A number of one or two ASCII digits, or a Chinese numeral, at the start of `s`.
fn take_number(s: &str) -> Option<(u32, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    match n {
        0 => take_cn_number(s),
        1 | 2 => Some((s[..n].parse().ok()?, &s[n..])),
        _ => None,
    }
}

/// Exactly one or two ASCII digits at the start of `s`.
fn take_digits(s: &str) -> Option<(u32, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=2).contains(&n) {
        Some((s[..n].parse().ok()?, &s[n..]))
    } else {
        None
    }
}

/// The month of a real date, marked as having had a day.
fn month_of_date(year: i32, month: u32, day: u32) -> Option<(Period, bool)> {
    NaiveDate::from_ymd_opt(year, month, day)?;
    Some((Period::new_month(year, u8::try_from(month).ok()?)?, true))
}

/// `Q2`/`H1` (either case) with nothing after.
fn parse_qh(year: i32, r: &str) -> Option<Period> {
    let mut chars = r.chars();
    let letter = chars.next()?;
    let digit = chars.as_str();
    if digit.len() != 1 {
        return None;
    }
    let n: u8 = digit.parse().ok()?;
    match letter {
        'Q' | 'q' => Period::new_quarter(year, n),
        'H' | 'h' => Period::new_half(year, n),
        _ => None,
    }
}

/// Parse a whitespace-free, ASCII-folded period text. The flag tells whether a day was
/// present.
fn parse_compact(t: &str) -> Option<(Period, bool)> {
    if t.len() < 4 || !t.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year: i32 = t[..4].parse().ok()?;
    let rest = &t[4..];
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        return match rest.len() {
            0 => Some((Period::Year(year), false)),
            2 => Some((Period::new_month(year, rest.parse().ok()?)?, false)),
            4 => month_of_date(year, rest[..2].parse().ok()?, rest[2..].parse().ok()?),
            _ => None,
        };
    }
    match rest {
        "年度" => return Some((Period::Year(year), false)),
        "上半年" | "年上半年" => return Some((Period::Half { year, half: 1 }, false)),
        "下半年" | "年下半年" => return Some((Period::Half { year, half: 2 }, false)),
        _ => {}
    }
    if let Some(r) = rest.strip_prefix('年') {
        return parse_after_nian(year, r);
    }
    let (sep, r) = match rest.chars().next()? {
        c @ ('-' | '/' | '.') => (Some(c), &rest[1..]),
        _ => (None, rest),
    };
    if let Some(p) = parse_qh(year, r) {
        return Some((p, false));
    }
    let sep = sep?;
    let (month, r) = take_digits(r)?;
    if r.is_empty() {
        return Some((Period::new_month(year, u8::try_from(month).ok()?)?, false));
    }
    let r = r.strip_prefix(sep)?;
    let (day, r) = take_digits(r)?;
    if !r.is_empty() {
        return None;
    }
    month_of_date(year, month, day)
}

/// Parse what follows `YYYY年`.
fn parse_after_nian(year: i32, r: &str) -> Option<(Period, bool)> {
    match r {
        "" | "度" | "全年" => return Some((Period::Year(year), false)),
        "上半年" => return Some((Period::Half { year, half: 1 }, false)),
        "下半年" => return Some((Period::Half { year, half: 2 }, false)),
        _ => {}
    }
    if let Some(p) = parse_qh(year, r) {
        return Some((p, false));
    }
    let (n, after) = take_number(r.strip_prefix('第').unwrap_or(r))?;
    let n8 = u8::try_from(n).ok()?;
    if matches!(after, "季度" | "季") {
        return Some((Period::new_quarter(year, n8)?, false));
    }
    if r.starts_with('第') {
        return None;
    }
    if matches!(after, "月" | "月份") {
        return Some((Period::new_month(year, n8)?, false));
    }
    let after = after.strip_prefix('月')?;
    let (day, after) = take_digits(after)?;
    if !matches!(after, "日" | "号") {
        return None;
    }
    month_of_date(year, n, day)
}

/// The cross-period rule of a subsidy project (跨属期发放规则, 黑财监〔2023〕1号 附件): how far
/// the period of a line may lie from the batch's current period.
///
/// The texts of the annex are "无", "可按照当前月向前/后追溯2个月" and
/// "可按照当前季向前/后追溯1个季度" (see [`CrossPeriodRule::parse_zh`]).
///
/// Serde form: `"none"`, `{"months": 2}`, `{"quarters": 1}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossPeriodRule {
    /// 无: only the current period.
    #[default]
    None,
    /// 可按照当前月向前/后追溯n个月: monthly lines within n months of the current month.
    Months(u8),
    /// 可按照当前季向前/后追溯n个季度: quarterly lines within n quarters of the current quarter.
    Quarters(u8),
}

impl CrossPeriodRule {
    /// Whether a line for period `line` may be paid in a batch whose current period is
    /// `current`. `None`: `line == current`. `Months(n)`: both are months and at most `n`
    /// months apart (either direction). `Quarters(n)`: both are quarters and at most `n`
    /// quarters apart. Any other combination of kinds is refused.
    pub fn allows(&self, current: &Period, line: &Period) -> bool {
        let within = |kind: PeriodKind, n: u8| {
            current.kind() == kind
                && line.kind() == kind
                && (line.index() - current.index()).unsigned_abs() <= u64::from(n)
        };
        match *self {
            CrossPeriodRule::None => line == current,
            CrossPeriodRule::Months(n) => within(PeriodKind::Month, n),
            CrossPeriodRule::Quarters(n) => within(PeriodKind::Quarter, n),
        }
    }

    /// The text of the annex: `无`, `可按照当前月向前/后追溯2个月`, `可按照当前季向前/后追溯1个季度`.
    pub fn label_zh(&self) -> String {
        match self {
            CrossPeriodRule::None => "无".to_owned(),
            CrossPeriodRule::Months(n) => format!("可按照当前月向前/后追溯{n}个月"),
            CrossPeriodRule::Quarters(n) => format!("可按照当前季向前/后追溯{n}个季度"),
        }
    }

    /// Parse the annex text (whitespace and full-width forms tolerated): `无` (also `none`);
    /// otherwise the text must contain `追溯` followed by a number (digits or 一/两/二 …) and
    /// `个月` or `个季度`, e.g. `可按照当前月向前/后追溯2个月`, `可按照当前季向前/后追溯一个季度`.
    /// `None` when the text is not a rule (callers report it in their own words).
    pub fn parse_zh(s: &str) -> Option<CrossPeriodRule> {
        let t: String = s
            .chars()
            .map(fold_fullwidth)
            .filter(|c| !c.is_whitespace())
            .collect();
        if t == "无" || t.eq_ignore_ascii_case("none") {
            return Some(CrossPeriodRule::None);
        }
        let (_, after) = t.split_once("追溯")?;
        let n = after.bytes().take_while(u8::is_ascii_digit).count();
        let (value, unit) = if n > 0 {
            (after[..n].parse::<u32>().ok()?, &after[n..])
        } else {
            take_cn_number(after)?
        };
        let value = u8::try_from(value).ok()?;
        let months = t.contains("当前月");
        let quarters = t.contains("当前季");
        match unit {
            "个月" if !quarters => Some(CrossPeriodRule::Months(value)),
            "个季度" | "个季" if !months => Some(CrossPeriodRule::Quarters(value)),
            _ => None,
        }
    }
}

impl fmt::Display for CrossPeriodRule {
    /// The Chinese label of [`CrossPeriodRule::label_zh`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label_zh())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }
    fn m(year: i32, month: u8) -> Period {
        Period::Month { year, month }
    }
    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn parse_months() {
        for s in [
            "2023-05",
            "2023-5",
            "202305",
            "2023/05",
            "2023.05",
            "2023年5月",
            "2023年05月",
            "2023年五月",
            "2023年5月份",
            " 2023 年 5 月 ",
            "２０２３－０５",
            "2023-05-17",
            "2023/5/17",
            "2023.5.17",
            "20230517",
            "2023年5月17日",
            "2023-05-01 00:00:00",
            "2023-05-31T08:30",
            "2023/5/1 0:00",
        ] {
            assert_eq!(p(s), m(2023, 5), "{s:?}");
        }
        assert_eq!(p("2023年十二月"), m(2023, 12));
        assert_eq!(p("2023年十月"), m(2023, 10));
        assert_eq!(p("2023-12"), m(2023, 12));
    }

    #[test]
    fn parse_quarters_halves_years() {
        for s in [
            "2023Q2",
            "2023-Q2",
            "2023q2",
            "2023年第2季度",
            "2023年二季度",
            "2023年第二季度",
            "2023年2季度",
            "2023年第二季",
            "2023/Q2",
        ] {
            assert_eq!(
                p(s),
                Period::Quarter {
                    year: 2023,
                    quarter: 2
                },
                "{s:?}"
            );
        }
        for s in ["2023H1", "2023-H1", "2023h1", "2023年上半年", "2023上半年"] {
            assert_eq!(
                p(s),
                Period::Half {
                    year: 2023,
                    half: 1
                },
                "{s:?}"
            );
        }
        for s in ["2023-H2", "2023年下半年"] {
            assert_eq!(
                p(s),
                Period::Half {
                    year: 2023,
                    half: 2
                },
                "{s:?}"
            );
        }
        for s in ["2023", "2023年", "2023年度", " 2023 "] {
            assert_eq!(p(s), Period::Year(2023), "{s:?}");
        }
    }

    #[test]
    fn parse_rejects() {
        for s in [
            "",
            "2023-13",
            "2023-00",
            "202313",
            "2023-5-32",
            "2023-02-29",
            "2023/05-17",
            "2023-Q5",
            "2023-Q0",
            "2023H3",
            "2023年第五季度",
            "2023年13月",
            "2023年第5月",
            "1989",
            "2101-01",
            "1989-12",
            "23-05",
            "May 2023",
            "2023-05 foo",
            "2023-05 00:00",
            "2023-Q12",
            "20235",
            "2023051",
            "2023-005",
            "2023年5",
            "2023年5月32日",
            "2023--05",
            "abcd",
            "2023年上半",
            "45047",
        ] {
            assert_eq!(Period::parse(s), Err(PeriodError::Format), "{s:?}");
        }
        assert_eq!(PeriodError::Format.reason().as_str(), "period.format");
        assert!(Period::parse("1990").is_ok() && Period::parse("2100-12").is_ok());
    }

    #[test]
    fn display_and_labels() {
        assert_eq!(m(2023, 5).to_string(), "2023-05");
        assert_eq!(p("2023年二季度").to_string(), "2023-Q2");
        assert_eq!(p("2023年上半年").to_string(), "2023-H1");
        assert_eq!(Period::Year(2023).to_string(), "2023");
        assert_eq!(m(2023, 5).label_zh(), "2023年5月");
        assert_eq!(p("2023Q2").label_zh(), "2023年第2季度");
        assert_eq!(p("2023H1").label_zh(), "2023年上半年");
        assert_eq!(p("2023H2").label_zh(), "2023年下半年");
        assert_eq!(Period::Year(2023).label_zh(), "2023年");
        assert_eq!(serde_json::to_string(&p("2023Q2")).unwrap(), "\"2023-Q2\"");
        assert_eq!(
            serde_json::from_str::<Period>("\"2023年5月\"").unwrap(),
            m(2023, 5)
        );
    }

    #[test]
    fn arithmetic() {
        assert_eq!(m(2023, 5).index(), 2023 * 12 + 4);
        assert_eq!(p("2023Q2").index(), 2023 * 4 + 1);
        assert_eq!(p("2023H2").index(), 2023 * 2 + 1);
        assert_eq!(Period::Year(2023).index(), 2023);
        assert_eq!(m(2023, 5).offset(-5), m(2022, 12));
        assert_eq!(m(2023, 12).offset(1), m(2024, 1));
        assert_eq!(p("2023Q1").offset(-1), p("2022Q4"));
        assert_eq!(p("2023H2").offset(1), p("2024H1"));
        assert_eq!(Period::Year(2023).offset(2), Period::Year(2025));
        assert_eq!(p("2023Q2").first_month(), m(2023, 4));
        assert_eq!(p("2023Q2").last_month(), m(2023, 6));
        assert_eq!(p("2023H2").first_month(), m(2023, 7));
        assert_eq!(Period::Year(2023).last_month(), m(2023, 12));
        assert_eq!(m(2023, 5).first_month(), m(2023, 5));
        assert_eq!(
            p("2023Q4").months().collect::<Vec<_>>(),
            [m(2023, 10), m(2023, 11), m(2023, 12)]
        );
        assert_eq!(m(2024, 2).start_date(), d(2024, 2, 1));
        assert_eq!(m(2024, 2).end_date(), d(2024, 2, 29));
        assert_eq!(m(2023, 2).end_date(), d(2023, 2, 28));
        assert_eq!(p("2023Q4").end_date(), d(2023, 12, 31));
        assert_eq!(p("2023H1").end_date(), d(2023, 6, 30));
        assert_eq!(Period::Year(2023).start_date(), d(2023, 1, 1));
        assert!(m(2023, 5).contains_date(d(2023, 5, 31)));
        assert!(!m(2023, 5).contains_date(d(2023, 6, 1)));
        assert_eq!(
            Period::containing(d(2023, 5, 17), PeriodKind::Quarter),
            p("2023Q2")
        );
        assert_eq!(
            Period::containing(d(2023, 7, 1), PeriodKind::Half),
            p("2023H2")
        );
        assert_eq!(
            Period::containing(d(2023, 12, 31), PeriodKind::Month),
            m(2023, 12)
        );
        assert_eq!(
            Period::containing(d(2023, 12, 31), PeriodKind::Year),
            Period::Year(2023)
        );
        assert_eq!(Period::new_month(2023, 13), None);
        assert_eq!(Period::new_quarter(2023, 0), None);
        assert_eq!(Period::new_half(2023, 2), Some(p("2023H2")));
    }

    #[test]
    fn containment() {
        let y = Period::Year(2023);
        assert!(y.contains(&m(2023, 1)) && y.contains(&p("2023Q4")) && y.contains(&p("2023H2")));
        assert!(y.contains(&y));
        assert!(!y.contains(&m(2024, 1)));
        assert!(p("2023H1").contains(&p("2023Q2")));
        assert!(!p("2023H1").contains(&p("2023Q3")));
        assert!(!p("2023Q2").contains(&p("2023H1")));
        assert!(!m(2023, 5).contains(&p("2023Q2")));
        assert!(p("2023Q2").contains(&m(2023, 5)));
    }

    #[test]
    fn ordering() {
        let mut v = [
            m(2023, 2),
            Period::Year(2023),
            p("2023H1"),
            p("2023Q1"),
            m(2023, 1),
            m(2022, 12),
        ];
        v.sort();
        let s: Vec<_> = v.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            s,
            [
                "2022-12", "2023-01", "2023-Q1", "2023-H1", "2023", "2023-02"
            ]
        );
    }

    #[test]
    fn cross_period_rules() {
        let cur = m(2023, 5);
        assert!(CrossPeriodRule::None.allows(&cur, &cur));
        assert!(!CrossPeriodRule::None.allows(&cur, &m(2023, 4)));
        let r = CrossPeriodRule::Months(2);
        assert!(r.allows(&cur, &m(2023, 3)) && r.allows(&cur, &m(2023, 7)));
        assert!(!r.allows(&cur, &m(2023, 2)) && !r.allows(&cur, &m(2023, 8)));
        assert!(!r.allows(&cur, &p("2023Q2")));
        assert!(!r.allows(&p("2023Q2"), &p("2023Q2")));
        let q = CrossPeriodRule::Quarters(1);
        assert!(q.allows(&p("2023Q1"), &p("2022Q4")));
        assert!(!q.allows(&p("2023Q1"), &p("2022Q3")));
        assert!(!q.allows(&p("2023Q1"), &m(2023, 1)));
        assert!(CrossPeriodRule::None.allows(&Period::Year(2023), &Period::Year(2023)));
    }

    #[test]
    fn cross_period_texts_and_serde() {
        for r in [
            CrossPeriodRule::None,
            CrossPeriodRule::Months(2),
            CrossPeriodRule::Quarters(1),
        ] {
            assert_eq!(CrossPeriodRule::parse_zh(&r.label_zh()), Some(r));
        }
        assert_eq!(
            CrossPeriodRule::Months(2).label_zh(),
            "可按照当前月向前/后追溯2个月"
        );
        assert_eq!(
            CrossPeriodRule::Quarters(1).label_zh(),
            "可按照当前季向前/后追溯1个季度"
        );
        assert_eq!(
            CrossPeriodRule::parse_zh(" 无 "),
            Some(CrossPeriodRule::None)
        );
        assert_eq!(
            CrossPeriodRule::parse_zh("可按照当前月向前／后追溯两个月"),
            Some(CrossPeriodRule::Months(2))
        );
        assert_eq!(
            CrossPeriodRule::parse_zh("可按照当前季向前/后追溯一个季度"),
            Some(CrossPeriodRule::Quarters(1))
        );
        for bad in [
            "",
            "有",
            "可按照当前月向前/后追溯2个季度",
            "可按照当前季向前/后追溯1个月",
            "追溯个月",
            "可追溯300个月",
        ] {
            assert_eq!(CrossPeriodRule::parse_zh(bad), None, "{bad:?}");
        }
        assert_eq!(
            serde_json::to_string(&CrossPeriodRule::None).unwrap(),
            "\"none\""
        );
        assert_eq!(
            serde_json::to_string(&CrossPeriodRule::Months(2)).unwrap(),
            r#"{"months":2}"#
        );
        assert_eq!(
            serde_json::to_string(&CrossPeriodRule::Quarters(1)).unwrap(),
            r#"{"quarters":1}"#
        );
        assert_eq!(
            serde_json::from_str::<CrossPeriodRule>(r#"{"months":2}"#).unwrap(),
            CrossPeriodRule::Months(2)
        );
        assert_eq!(CrossPeriodRule::default(), CrossPeriodRule::None);
    }

    fn period() -> impl Strategy<Value = Period> {
        (MIN_YEAR..=MAX_YEAR, 0usize..4, 1u8..=12).prop_map(|(year, kind, n)| match kind {
            0 => Period::Month { year, month: n },
            1 => Period::Quarter {
                year,
                quarter: (n - 1) % 4 + 1,
            },
            2 => Period::Half {
                year,
                half: (n - 1) % 2 + 1,
            },
            _ => Period::Year(year),
        })
    }

    proptest! {
        #[test]
        fn offset_round_trips(per in period(), n in -100_000i64..100_000) {
            prop_assert_eq!(per.offset(n).offset(-n), per);
            prop_assert_eq!(per.offset(n).index() - per.index(), n);
            prop_assert_eq!(per.offset(n).kind(), per.kind());
        }

        #[test]
        fn display_parses_back(per in period()) {
            prop_assert_eq!(Period::parse(&per.to_string()), Ok(per));
            prop_assert_eq!(Period::parse(&per.label_zh()), Ok(per));
            prop_assert_eq!(Period::from_index(per.kind(), per.index()), per);
            prop_assert!(per.contains(&per.first_month()) && per.contains(&per.last_month()));
            prop_assert!(per.start_date() <= per.end_date());
            prop_assert_eq!(per.offset(1).start_date(), per.end_date().succ_opt().unwrap());
        }

        #[test]
        fn months_rule_window(year in MIN_YEAR..=MAX_YEAR, month in 1u8..=12, n in 0u8..=24, k in -60i64..=60) {
            let c = Period::Month { year, month };
            prop_assert_eq!(CrossPeriodRule::Months(n).allows(&c, &c.offset(k)), k.unsigned_abs() <= u64::from(n));
            prop_assert_eq!(CrossPeriodRule::None.allows(&c, &c.offset(k)), k == 0);
        }

        #[test]
        fn ordering_is_by_first_month(a in period(), b in period()) {
            if a.first_month().index() < b.first_month().index() {
                prop_assert!(a < b);
            }
            prop_assert_eq!(a.cmp(&b) == Ordering::Equal, a == b);
        }
    }
}
