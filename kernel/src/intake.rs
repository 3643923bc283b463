//! Roster intake: validate every line (DOMAIN.md §3), match it against the card registry,
//! cross-check it against the reference registers (§9), and say for each line whether it is
//! accepted or why not.
//!
//! The steps follow 黑财监〔2021〕30号 二(三)二 ("通过与社会保障卡信息的匹配、比对、校验，生成补贴资金
//! 发放计划") and the phase-2 cross-checks of 二(二) ("与公安、民政、住建等部门相关信息比对校验，
//! 避免补贴资金多发、漏发、重发和迟发").
//!
//! The pipeline is sans-I/O: [`check_line`] and [`finish_line`] are pure; [`run_intake`] drives
//! them over a stream of lines in chunks, asking the [`CardRegistry`] and [`ReferenceData`]
//! ports for what it needs, so memory stays flat whatever the roster's size.

use crate::card::{CardRecord, CardStatus, DeathRecord};
use crate::catalog::{PaymentBasis, Project};
use crate::ident::{BankAccount, Phone, RegionCode, ResidentId};
use crate::mask::MaskPolicy;
use crate::money::{Fen, Yuan};
use crate::period::{Period, PeriodError};
use crate::ports::{CardRegistry, PortError, ReferenceData};
use crate::reason::ReasonCode;
use crate::roster::{Column, Issue, RawLine, RawLineRef};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The region table as the validator needs it.
pub trait RegionTable: Sync {
    fn contains(&self, code: &RegionCode) -> bool;
}

impl RegionTable for HashSet<RegionCode> {
    fn contains(&self, code: &RegionCode) -> bool {
        HashSet::contains(self, code)
    }
}

/// Everything a line is checked against that does not depend on the line.
pub struct IntakeContext<'a> {
    /// The project the roster is for.
    pub project: &'a Project,
    /// Other projects of the catalogue the `补贴项目` column may name (to tell "another
    /// project" from "unknown project").
    pub catalog: &'a crate::catalog::Catalog,
    /// The batch's current period (当前属期).
    pub current: Period,
    /// Today's date, for birth-date plausibility.
    pub today: NaiveDate,
    /// The submitting user's region; lines outside it are refused.
    pub scope: Option<&'a RegionCode>,
    /// The region table; `None` skips `region.unknown` (no table loaded).
    pub regions: Option<&'a dyn RegionTable>,
    pub mask: &'a MaskPolicy,
    /// Match lines against the card registry. `false` only for a dry-run check without a
    /// registry: the card rules are then skipped and accepted lines carry no account.
    pub check_cards: bool,
}

/// How a proxy relates to the beneficiary (乐山办法 五 特殊人群管理).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyKind {
    /// 代管: a custodian keeps the beneficiary's own card (custody agreement).
    Custody,
    /// 代领: a person without an ID is paid through the proxy's card (receipt agreement).
    Receipt,
}

impl ProxyKind {
    pub fn label_zh(self) -> &'static str {
        match self {
            ProxyKind::Custody => "代管",
            ProxyKind::Receipt => "代领",
        }
    }
}

/// A proxy named on a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proxy {
    pub kind: ProxyKind,
    pub name: String,
    pub id: Option<ResidentId>,
}

/// A line after its own fields were checked: what could be parsed, and the problems so far.
#[derive(Debug, Clone)]
pub struct LineDraft {
    pub row: u32,
    pub name: Option<String>,
    pub id: Option<ResidentId>,
    pub phone: Option<Phone>,
    pub region: Option<RegionCode>,
    pub period: Option<Period>,
    pub amount: Option<Yuan>,
    pub household_head: Option<bool>,
    pub proxy: Option<Proxy>,
    pub roster_account: Option<BankAccount>,
    pub issues: Vec<Issue>,
}

impl LineDraft {
    /// The ID whose card is paid: the proxy's for a receipt proxy, the beneficiary's otherwise.
    pub fn card_holder(&self) -> Option<&ResidentId> {
        match &self.proxy {
            Some(Proxy {
                kind: ProxyKind::Receipt,
                id: Some(pid),
                ..
            }) => Some(pid),
            _ => self.id.as_ref(),
        }
    }
    /// The ID the person is known by for duplicate and cross-checks.
    pub fn person(&self) -> Option<&ResidentId> {
        self.id.as_ref().or_else(|| self.card_holder())
    }
    fn has_errors(&self) -> bool {
        self.issues.iter().any(Issue::is_error)
    }
}

/// What the reference registers say about one line.
#[derive(Debug, Clone, Default)]
pub struct Lookups<'a> {
    /// The card of the card holder, if the registry has one.
    pub card: Option<&'a CardRecord>,
    /// The person's death-register entry, if any.
    pub death: Option<&'a DeathRecord>,
    /// That person, project and period is paid or in flight in another batch.
    pub already_paid: bool,
    /// Name of a mutually exclusive project the person is in for the same period.
    pub exclusive_with: Option<String>,
    /// A custody or receipt agreement is on record for this line's proxy.
    pub agreement_on_record: bool,
}

/// An accepted line, ready to enter a batch.
#[derive(Debug, Clone, Serialize)]
pub struct AcceptedLine {
    pub row: u32,
    pub name: String,
    pub id: ResidentId,
    pub phone: Option<Phone>,
    pub region: RegionCode,
    pub period: Period,
    pub amount: Yuan,
    /// The financial account credited (the card holder's card account from the registry);
    /// `Some` whenever cards were checked.
    pub account: Option<BankAccount>,
    /// The card's issuing bank; `Some` whenever cards were checked.
    pub bank: Option<String>,
    pub proxy: Option<Proxy>,
    /// Warnings kept for the department (e.g. `id.legacy15`).
    pub warnings: Vec<Issue>,
}

/// The outcome of one line.
#[derive(Debug, Clone)]
pub enum LineOutcome {
    Accepted(AcceptedLine),
    Rejected {
        row: u32,
        name: Option<String>,
        id: Option<ResidentId>,
        /// Raw ID text when it did not parse (for the masked report).
        raw_id: Option<String>,
        issues: Vec<Issue>,
    },
}

impl LineOutcome {
    pub fn issues(&self) -> &[Issue] {
        match self {
            LineOutcome::Accepted(a) => &a.warnings,
            LineOutcome::Rejected { issues, .. } => issues,
        }
    }
    pub fn row(&self) -> u32 {
        match self {
            LineOutcome::Accepted(a) => a.row,
            LineOutcome::Rejected { row, .. } => *row,
        }
    }
}

fn yes_no(s: &str) -> Option<bool> {
    match s.trim() {
        "是" | "Y" | "y" | "1" | "yes" | "true" | "户主" | "√" => Some(true),
        "否" | "N" | "n" | "0" | "no" | "false" | "非户主" | "×" => Some(false),
        _ => None,
    }
}

/// The dots written for the middle dot `·` of minority names.
fn is_name_dot(c: char) -> bool {
    matches!(c, '•' | '・' | '．' | '.' | '‧' | '∙')
}

/// Spaces dropped from names (ASCII, Unicode and the ideographic space).
fn is_name_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{3000}'
}

/// Whether `s` is a name with nothing to normalise or reject, told from its bytes alone: no
/// byte of ASCII whitespace, controls, digits or `.`, and no character whose UTF-8 begins
/// with `0xC2` (U+0080-U+00BF: C1 controls, U+0085, U+00A0, `·`), `0xE1` (U+1680), `0xE2`
/// (U+2000-U+2FFF: the general punctuation spaces and `•` `‧` `∙`), `0xE3` (U+3000, `・`)
/// or `0xEF` (`．`, U+FEFF, full-width digits). Every character [`is_name_dot`],
/// [`is_name_space`], `char::is_whitespace` or [`check_name`]'s digit and control tests
/// match has one of those bytes, so for such a name `normalise_name(s) == s` and
/// [`check_name`] only has its length to check. Most names (Chinese characters, 3-byte
/// sequences led by `0xE4`-`0xE9`) pass, in one look at each byte.
fn plain_name(s: &str) -> bool {
    s.bytes().fold(true, |ok, b| {
        ok & match b {
            0..=0x20 | b'0'..=b'9' | b'.' | 0x7F => false,
            0xC2 | 0xE1 | 0xE2 | 0xE3 | 0xEF => false,
            _ => true,
        }
    })
}

/// Normalise the middle dots used in minority names so `阿依·买买提` matches `阿依•买买提`.
pub fn normalise_name(s: &str) -> String {
    if plain_name(s) {
        return s.to_owned();
    }
    let t = s.trim();
    // Most names have nothing to replace or drop: copy them at once.
    if !t.chars().any(|c| is_name_dot(c) || is_name_space(c)) {
        return t.to_owned();
    }
    normalised_chars(t).collect()
}

/// The characters of [`normalise_name`]`(s)`, without building the string.
fn normalised_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    s.trim()
        .chars()
        .map(|c| if is_name_dot(c) { '·' } else { c })
        .filter(|c| !is_name_space(*c))
}

/// `normalise_name(a) == b`, without allocating.
fn normalised_eq(a: &str, b: &str) -> bool {
    if plain_name(a) {
        return a == b;
    }
    normalised_chars(a).eq(b.chars())
}

/// `name.missing` / `name.invalid`: empty; digits or control characters; longer than 30.
fn check_name(raw: Option<&str>) -> Result<String, (ReasonCode, String)> {
    let Some(n) = raw else {
        return Err((ReasonCode::NameMissing, "姓名为空".into()));
    };
    if plain_name(n) && !n.is_empty() {
        // Nothing to normalise, no digit, control or dot at either end: only the length.
        if n.len() > 30 && n.chars().count() > 30 {
            return Err((
                ReasonCode::NameInvalid,
                format!("姓名超过30个字（{}个字）", n.chars().count()),
            ));
        }
        return Ok(n.to_owned());
    }
    let n = normalise_name(n);
    if n.is_empty() {
        return Err((ReasonCode::NameMissing, "姓名为空".into()));
    }
    // Byte length bounds the character count: at most 30 bytes is at most 30 characters.
    if n.len() > 30 && n.chars().count() > 30 {
        return Err((
            ReasonCode::NameInvalid,
            format!("姓名超过30个字（{}个字）", n.chars().count()),
        ));
    }
    if n.chars()
        .any(|c| c.is_control() || c.is_ascii_digit() || ('０'..='９').contains(&c))
    {
        return Err((ReasonCode::NameInvalid, "姓名含数字或控制字符".into()));
    }
    if n.starts_with('·') || n.ends_with('·') {
        return Err((ReasonCode::NameInvalid, "姓名首尾不能是间隔号".into()));
    }
    Ok(n)
}

fn push(d: &mut LineDraft, col: Column, code: ReasonCode, msg: impl Into<String>) {
    d.issues.push(Issue::new(d.row, Some(col), code, msg));
}

/// Parse a resident ID field, reporting its problems as the given column.
fn parse_id(d: &mut LineDraft, col: Column, text: &str, today: NaiveDate) -> Option<ResidentId> {
    match ResidentId::parse(text, today) {
        Ok(p) => {
            if p.upgraded_from_15 {
                push(
                    d,
                    col,
                    ReasonCode::IdLegacy15,
                    format!("15位身份证号码已升为18位（{}），请核对", p.id.masked()),
                );
            }
            Some(p.id)
        }
        Err(e) => {
            push(d, col, e.reason(), e.to_string());
            None
        }
    }
}

/// Check a line's own fields (stage 1: no registers needed).
pub fn check_line(ctx: &IntakeContext<'_>, raw: &RawLine) -> LineDraft {
    check_line_cached(ctx, &raw.view(), &mut LineCache::default())
}

/// Most distinct texts a [`LineCache`] map keeps before starting afresh.
const CACHE_MAX: usize = 65_536;

/// What [`check_line`] remembers between the lines of one run: what a period or region text
/// gave before (a roster repeats a handful of periods and villages on a million lines). It
/// only ever answers with what the same text gave under the same context, so a line's result
/// never depends on the lines before it.
#[derive(Debug, Default)]
struct LineCache {
    periods: HashMap<String, Result<Period, PeriodError>>,
    regions: HashMap<String, RegionVerdict>,
    /// In front of `periods` and `regions`: the last text seen in each of a few slots, so
    /// most lines find their answer without SipHash (the maps stay SipHash: their texts come
    /// from the file).
    recent_periods: Recent<Result<Period, PeriodError>>,
    recent_regions: Recent<RegionVerdict>,
    /// The last period checked against the project's window and cross-period rule.
    fit: Option<(Period, PeriodFit)>,
}

/// A direct-mapped cache of [`RECENT_SLOTS`] slots: a text goes to the slot of its cheap
/// hash, replacing whatever was there. A collision only costs a miss (the caller then asks
/// its map), so crafted texts cannot make it slow.
#[derive(Debug)]
struct Recent<V> {
    slots: Vec<Option<(String, V)>>,
}

const RECENT_SLOTS: usize = 64;

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Recent { slots: Vec::new() }
    }
}

impl<V: Clone> Recent<V> {
    fn slot(t: &str) -> usize {
        // FNV-1a: a handful of instructions for a short cell.
        let h = t.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        (h ^ (h >> 32)) as usize % RECENT_SLOTS
    }

    fn get(&self, t: &str) -> Option<V> {
        match self.slots.get(Self::slot(t)) {
            Some(Some((k, v))) if k == t => Some(v.clone()),
            _ => None,
        }
    }

    fn put(&mut self, t: &str, v: &V) {
        if self.slots.is_empty() {
            self.slots.resize_with(RECENT_SLOTS, || None);
        }
        if let Some(slot) = self.slots.get_mut(Self::slot(t)) {
            match slot {
                Some((k, old)) => {
                    k.clear();
                    k.push_str(t);
                    *old = v.clone();
                }
                None => *slot = Some((t.to_owned(), v.clone())),
            }
        }
    }
}

/// Where a line's period stands against the project's window ([`ActiveWindow`]) and its
/// cross-period rule around the current period (the window is checked first).
///
/// [`ActiveWindow`]: crate::catalog::ActiveWindow
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeriodFit {
    Inside,
    OutsideWindow,
    OutsideCrossPeriod,
}

impl PeriodFit {
    fn of(ctx: &IntakeContext<'_>, p: &Period) -> PeriodFit {
        if ctx.project.active.as_ref().is_some_and(|w| !w.contains(p)) {
            PeriodFit::OutsideWindow
        } else if !ctx.project.cross_period.allows(&ctx.current, p) {
            PeriodFit::OutsideCrossPeriod
        } else {
            PeriodFit::Inside
        }
    }
}

/// What a region text is under the run's region table and scope.
#[derive(Debug, Clone)]
enum RegionVerdict {
    Format,
    Code {
        code: RegionCode,
        known: bool,
        inside: bool,
    },
}

impl LineCache {
    /// [`PeriodFit::of`], remembered for the last period (a roster's lines mostly share one).
    fn fit(&mut self, ctx: &IntakeContext<'_>, p: Period) -> PeriodFit {
        match self.fit {
            Some((q, f)) if q == p => f,
            _ => {
                let f = PeriodFit::of(ctx, &p);
                self.fit = Some((p, f));
                f
            }
        }
    }

    fn period(&mut self, t: &str) -> Result<Period, PeriodError> {
        if let Some(r) = self.recent_periods.get(t) {
            return r;
        }
        let r = self.period_mapped(t);
        self.recent_periods.put(t, &r);
        r
    }

    fn period_mapped(&mut self, t: &str) -> Result<Period, PeriodError> {
        if let Some(r) = self.periods.get(t) {
            return r.clone();
        }
        let r = Period::parse(t);
        if self.periods.len() >= CACHE_MAX {
            self.periods.clear();
        }
        self.periods.insert(t.to_owned(), r.clone());
        r
    }

    fn region(&mut self, ctx: &IntakeContext<'_>, t: &str) -> RegionVerdict {
        if let Some(v) = self.recent_regions.get(t) {
            return v;
        }
        let v = self.region_mapped(ctx, t);
        self.recent_regions.put(t, &v);
        v
    }

    fn region_mapped(&mut self, ctx: &IntakeContext<'_>, t: &str) -> RegionVerdict {
        if let Some(v) = self.regions.get(t) {
            return v.clone();
        }
        let v = match RegionCode::parse(t) {
            Err(_) => RegionVerdict::Format,
            Ok(code) => RegionVerdict::Code {
                known: ctx.regions.is_none_or(|table| table.contains(&code)),
                inside: ctx.scope.is_none_or(|scope| scope.contains(&code)),
                code,
            },
        };
        if self.regions.len() >= CACHE_MAX {
            self.regions.clear();
        }
        self.regions.insert(t.to_owned(), v.clone());
        v
    }
}

fn check_line_cached(
    ctx: &IntakeContext<'_>,
    raw: &RawLineRef<'_>,
    cache: &mut LineCache,
) -> LineDraft {
    let mut d = LineDraft {
        row: raw.row,
        name: None,
        id: None,
        phone: None,
        region: None,
        period: None,
        amount: None,
        household_head: None,
        proxy: None,
        roster_account: None,
        issues: Vec::new(),
    };

    // 姓名
    match check_name(raw.name) {
        Ok(n) => d.name = Some(n),
        Err((code, msg)) => push(&mut d, Column::Name, code, msg),
    }

    // Proxy (代领人 / 代管人): parsed first because a receipt proxy stands in for a missing ID.
    if raw.proxy_name.is_some() || raw.proxy_id.is_some() {
        let kind = match raw.proxy_kind.map(str::trim) {
            Some("代管" | "custody" | "代管代持") => ProxyKind::Custody,
            Some("代领" | "receipt" | "代为领取") => ProxyKind::Receipt,
            _ if raw.resident_id.is_none() => ProxyKind::Receipt,
            _ => ProxyKind::Custody,
        };
        let pid = raw
            .proxy_id
            .and_then(|t| parse_id(&mut d, Column::ProxyId, t, ctx.today));
        let pname = match check_name(raw.proxy_name) {
            Ok(n) => n,
            Err((code, msg)) => {
                push(&mut d, Column::ProxyName, code, format!("代领人{msg}"));
                String::new()
            }
        };
        if kind == ProxyKind::Receipt && pid.is_none() && raw.proxy_id.is_none() {
            push(
                &mut d,
                Column::ProxyId,
                ReasonCode::IdFormat,
                "代领人身份证号码为空",
            );
        }
        d.proxy = Some(Proxy {
            kind,
            name: pname,
            id: pid,
        });
    }

    // 身份证号码
    if raw.resident_id_numeric {
        push(
            &mut d,
            Column::ResidentId,
            ReasonCode::IdNumericCell,
            "身份证号码在表格中存为数字，Excel只保留15位有效数字，号码已失真；请将该列设为文本后重新填写",
        );
    } else {
        match raw.resident_id {
            Some(t) => d.id = parse_id(&mut d, Column::ResidentId, t, ctx.today),
            None if matches!(
                d.proxy,
                Some(Proxy {
                    kind: ProxyKind::Receipt,
                    ..
                })
            ) => {}
            None => push(
                &mut d,
                Column::ResidentId,
                ReasonCode::IdFormat,
                "身份证号码为空",
            ),
        }
    }

    // 手机号码 (warning only)
    if let Some(p) = raw.phone {
        match Phone::parse(p) {
            Ok(p) => d.phone = Some(p),
            Err(_) => push(
                &mut d,
                Column::Phone,
                ReasonCode::PhoneFormat,
                "手机号码不是有效的大陆手机号（1[3-9]开头的11位数字）",
            ),
        }
    }

    // 行政区划代码
    match raw.region {
        None => push(
            &mut d,
            Column::Region,
            ReasonCode::RegionFormat,
            "行政区划代码为空",
        ),
        Some(t) => match cache.region(ctx, t) {
            RegionVerdict::Format => push(
                &mut d,
                Column::Region,
                ReasonCode::RegionFormat,
                format!("行政区划代码「{t}」应为12位统计用区划代码或其2/4/6/9位前缀"),
            ),
            RegionVerdict::Code {
                code,
                known,
                inside,
            } => {
                if !known {
                    push(
                        &mut d,
                        Column::Region,
                        ReasonCode::RegionUnknown,
                        format!("行政区划代码{}不在区划表中", code.full()),
                    );
                }
                if let Some(scope) = ctx.scope.filter(|_| !inside) {
                    push(
                        &mut d,
                        Column::Region,
                        ReasonCode::RegionOutsideScope,
                        format!(
                            "行政区划{}不在本单位管辖范围{}内",
                            code.full(),
                            scope.full()
                        ),
                    );
                }
                d.region = Some(code);
            }
        },
    }

    // 补贴项目 (optional column: the roster is for ctx.project)
    if let Some(p) = raw.project {
        let same = p == ctx.project.code || p == ctx.project.name;
        if !same {
            match ctx.catalog.find(p) {
                None => push(
                    &mut d,
                    Column::Project,
                    ReasonCode::ProjectUnknown,
                    format!("补贴项目「{p}」不在补贴项目目录中"),
                ),
                Some(other) => push(
                    &mut d,
                    Column::Project,
                    ReasonCode::ProjectUnknown,
                    format!(
                        "本清册为「{}」，该行为「{}」，请分项目报送",
                        ctx.project.name, other.name
                    ),
                ),
            }
        }
    }

    // 属期
    let period = match raw.period {
        None => Some(ctx.current),
        Some(t) => match cache.period(t) {
            Ok(p) if p.kind() == ctx.project.period_kind() => Some(p),
            Ok(p) => {
                push(
                    &mut d,
                    Column::Period,
                    ReasonCode::PeriodFormat,
                    format!(
                        "属期「{}」与项目发放频次「{}」不符",
                        p.label_zh(),
                        ctx.project.frequency.label_zh()
                    ),
                );
                None
            }
            Err(_) => {
                push(
                    &mut d,
                    Column::Period,
                    ReasonCode::PeriodFormat,
                    format!("属期「{t}」无法识别，应如 2023-05、2023Q2、2023H1 或 2023"),
                );
                None
            }
        },
    };
    if let Some(p) = period {
        // A line's period must lie inside the project's window (the plan's 发放周期, e.g.
        // 黑财监〔2023〕1号 附表「2023年1-12月」) and inside its cross-period rule around the
        // batch's current period; either failure is `period.out_of_window` (one per line).
        let fit = cache.fit(ctx, p);
        if let (PeriodFit::OutsideWindow, Some(w)) = (fit, &ctx.project.active) {
            push(
                &mut d,
                Column::Period,
                ReasonCode::PeriodOutOfWindow,
                format!("属期{}不在项目发放属期{}内", p.label_zh(), w.label_zh()),
            );
        } else if fit == PeriodFit::OutsideCrossPeriod {
            push(
                &mut d,
                Column::Period,
                ReasonCode::PeriodOutOfWindow,
                format!(
                    "属期{}超出跨属期发放规则（当前属期{}，{}）",
                    p.label_zh(),
                    ctx.current.label_zh(),
                    ctx.project.cross_period.label_zh()
                ),
            );
        }
        d.period = Some(p);
    }

    // 补贴金额, 补贴标准 × 数量
    match raw.amount {
        None => push(
            &mut d,
            Column::Amount,
            ReasonCode::AmountFormat,
            "补贴金额为空",
        ),
        Some(t) => match Yuan::parse(t) {
            Err(e) => push(
                &mut d,
                Column::Amount,
                e.reason(),
                format!("补贴金额「{t}」：{e}"),
            ),
            Ok(a) => d.amount = Some(a),
        },
    }
    if let (Some(amount), Some(q)) = (d.amount, raw.quantity) {
        let standard = match raw.standard {
            Some(s) => crate::money::parse_decimal(s).ok(),
            None => ctx.project.standard.map(|y| y.as_decimal()),
        };
        match (standard, crate::money::parse_decimal(q)) {
            (Some(std), Ok(q)) => {
                let expected = (std * q).round_dp_with_strategy(
                    2,
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                );
                if expected != amount.as_decimal() {
                    push(
                        &mut d,
                        Column::Amount,
                        ReasonCode::AmountStandardMismatch,
                        format!(
                            "补贴金额{}不等于补贴标准{}×数量{}={}",
                            amount,
                            std.normalize(),
                            q.normalize(),
                            expected
                        ),
                    );
                }
            }
            (_, Err(_)) => push(
                &mut d,
                Column::Quantity,
                ReasonCode::AmountFormat,
                format!("数量「{q}」不是有效数字"),
            ),
            (None, _) => {}
        }
    }

    // 户主 (household-based projects pay the household head's card)
    if let Some(h) = raw.household_head {
        d.household_head = yes_no(h).or_else(|| d.name.as_ref().map(|n| normalise_name(h) == *n));
    }
    if ctx.project.basis == PaymentBasis::Household && d.household_head == Some(false) {
        push(
            &mut d,
            Column::HouseholdHead,
            ReasonCode::HouseholdNotHead,
            format!(
                "「{}」按户发放，应发放至户主的社会保障卡账户",
                ctx.project.name
            ),
        );
    }

    // 银行账号 (optional: the registry's account is authoritative)
    if let Some(a) = raw.bank_account {
        match BankAccount::parse(a) {
            Ok(acc) => {
                if !acc.luhn_ok() {
                    push(
                        &mut d,
                        Column::BankAccount,
                        ReasonCode::AccountLuhn,
                        format!(
                            "银行账号{}未通过Luhn校验（存折账号可能属正常），请核对",
                            acc.masked()
                        ),
                    );
                }
                d.roster_account = Some(acc);
            }
            Err(_) => push(
                &mut d,
                Column::BankAccount,
                ReasonCode::AccountLuhn,
                "银行账号不是12至30位数字，请核对",
            ),
        }
    }
    d
}

/// The key that makes a line a duplicate: person, project and period (and, for 多次/年
/// projects, the batch, which within one roster is always the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DupKey {
    /// The first 17 digits of the ID as a number (the 18th is their check digit).
    pub person: u64,
    pub period: Period,
}

impl DupKey {
    pub fn new(id: &ResidentId, period: Period) -> DupKey {
        let person = id.as_bytes()[..17]
            .iter()
            .fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0'));
        DupKey { person, period }
    }
}

/// Remembers which (person, period) pairs a roster already had (`dup.in_file`).
///
/// Holds every line of the roster, so its entry size is the run's memory: a [`DupKey`] is
/// packed into 12 bytes ([`DupTracker::pack`]) and the row beside it, 16 bytes a slot instead
/// of 24 (a million-line roster: 34 MB instead of 50), hashed with one multiply-xor pass.
#[derive(Debug, Default)]
pub struct DupTracker {
    seen: HashMap<[u32; 3], u32, std::hash::BuildHasherDefault<PackedKeyHasher>>,
}

/// Hashes a packed [`DupKey`]: the splitmix64 finaliser over its bytes. Keys are people of the
/// department's own roster, not input an attacker picks to flood the table.
#[derive(Default)]
pub struct PackedKeyHasher(u64);

impl std::hash::Hasher for PackedKeyHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(32) ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u32(n as u32);
    }
}

impl DupTracker {
    /// `key` in 12 bytes, one-to-one for the keys [`DupKey::new`] makes from valid IDs and
    /// periods: the person's 17 digits (under 2^57) in 57 bits, the
    /// period's kind (2 bits) and month/quarter/half (4 bits) above them, and the year's
    /// 32 bits.
    fn pack(key: DupKey) -> [u32; 3] {
        let (kind, sub, year) = match key.period {
            Period::Month { year, month } => (0u32, u32::from(month), year),
            Period::Quarter { year, quarter } => (1, u32::from(quarter), year),
            Period::Half { year, half } => (2, u32::from(half), year),
            Period::Year(year) => (3, 0, year),
        };
        let hi = (key.person >> 32) as u32 & 0x01ff_ffff;
        [
            hi | (kind << 25) | ((sub & 0xf) << 27),
            key.person as u32,
            year as u32,
        ]
    }

    /// Record a key; returns the row that had it first, if any.
    pub fn first_row(&mut self, key: DupKey, row: u32) -> Option<u32> {
        match self.seen.entry(Self::pack(key)) {
            std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(row);
                None
            }
        }
    }
}

/// Stage 2 and 3: card matching and cross-checks, then the verdict.
pub fn finish_line(
    ctx: &IntakeContext<'_>,
    d: LineDraft,
    l: &Lookups<'_>,
    dups: &mut DupTracker,
) -> LineOutcome {
    finish(ctx, d, l.card.cloned(), l, dups)
}

/// [`finish_line`] with the card owned (`l.card` is not used): an accepted line takes the
/// card's account and bank instead of copying them.
fn finish(
    ctx: &IntakeContext<'_>,
    mut d: LineDraft,
    card: Option<CardRecord>,
    l: &Lookups<'_>,
    dups: &mut DupTracker,
) -> LineOutcome {
    // Duplicates in the file
    if let (Some(id), Some(period)) = (d.person().cloned(), d.period) {
        if let Some(first) = dups.first_row(DupKey::new(&id, period), d.row) {
            push(
                &mut d,
                Column::ResidentId,
                ReasonCode::DupInFile,
                format!(
                    "与第{first}行为同一人、同一项目、同一属期{}",
                    period.label_zh()
                ),
            );
        } else if l.already_paid && ctx.project.frequency.once_per_period() {
            push(
                &mut d,
                Column::ResidentId,
                ReasonCode::DupAlreadyPaid,
                format!(
                    "{}属期{}已发放或正在发放",
                    ctx.project.name,
                    period.label_zh()
                ),
            );
        }
    }

    // Card registry
    if ctx.check_cards && d.card_holder().is_some() {
        let col = if matches!(
            d.proxy,
            Some(Proxy {
                kind: ProxyKind::Receipt,
                ..
            })
        ) {
            Column::ProxyId
        } else {
            Column::ResidentId
        };
        match &card {
            None => push(
                &mut d,
                col,
                ReasonCode::CardNone,
                "社保卡管理信息系统中无此人社会保障卡，请通知补贴对象办卡",
            ),
            Some(card) => {
                if card.status != CardStatus::Normal {
                    push(
                        &mut d,
                        col,
                        ReasonCode::CardInvalid,
                        format!(
                            "社会保障卡状态为「{}」，请通知补贴对象补换卡",
                            card.status.label()
                        ),
                    );
                } else if !card.activated {
                    push(
                        &mut d,
                        col,
                        ReasonCode::CardInactive,
                        "社会保障卡金融账户未激活，请通知补贴对象激活",
                    );
                }
                let expected_name = match &d.proxy {
                    Some(Proxy {
                        kind: ProxyKind::Receipt,
                        name,
                        ..
                    }) => Some(name.as_str()),
                    _ => d.name.as_deref(),
                };
                if let Some(n) =
                    expected_name.filter(|n| !n.is_empty() && !normalised_eq(&card.name, n))
                {
                    let message = format!(
                        "清册姓名「{}」与社保卡登记姓名「{}」不一致",
                        ctx.mask.name(n),
                        ctx.mask.name(&card.name)
                    );
                    let col = if col == Column::ProxyId {
                        Column::ProxyName
                    } else {
                        Column::Name
                    };
                    push(&mut d, col, ReasonCode::CardNameMismatch, message);
                }
                if !card.account.luhn_ok() {
                    push(
                        &mut d,
                        Column::BankAccount,
                        ReasonCode::AccountLuhn,
                        format!(
                            "社保卡银行账号{}未通过Luhn校验，请核对",
                            card.account.masked()
                        ),
                    );
                }
            }
        }
    }

    // Death register: deceased before the period began.
    if let (Some(death), Some(period)) = (l.death, d.period)
        && death.date_of_death < period.start_date()
    {
        push(
            &mut d,
            Column::ResidentId,
            ReasonCode::PersonDeceased,
            format!(
                "死亡登记日期{}早于属期{}",
                death.date_of_death,
                period.label_zh()
            ),
        );
    }

    // Mutually exclusive projects
    if let Some(other) = &l.exclusive_with {
        push(
            &mut d,
            Column::Project,
            ReasonCode::PersonExclusive,
            format!("同一属期已享受互斥项目「{other}」"),
        );
    }

    // Proxy agreement
    if d.proxy.is_some() && !l.agreement_on_record {
        let kind = d
            .proxy
            .as_ref()
            .map(|p| p.kind.label_zh())
            .unwrap_or("代领");
        push(
            &mut d,
            Column::ProxyName,
            ReasonCode::ProxyAgreementMissing,
            format!("{kind}须有经村（居）委会备案的{kind}协议"),
        );
    }

    d.issues.sort_by_key(|i| (i.column, i.code));
    let accepted = !d.has_errors();
    let person = d.person().cloned();
    let card_ok = !ctx.check_cards || card.is_some();
    let (account, bank) = card.map(|c| (c.account, c.bank)).unzip();
    match (
        accepted && card_ok,
        d.name,
        person,
        d.region,
        d.period,
        d.amount,
    ) {
        (true, Some(name), Some(id), Some(region), Some(period), Some(amount)) => {
            LineOutcome::Accepted(AcceptedLine {
                row: d.row,
                name,
                id,
                phone: d.phone,
                region,
                period,
                amount,
                account,
                bank,
                proxy: d.proxy,
                warnings: d.issues,
            })
        }
        (_, name, id, ..) => LineOutcome::Rejected {
            row: d.row,
            name,
            id,
            raw_id: None,
            issues: d.issues,
        },
    }
}

/// Totals of an intake run.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IntakeSummary {
    pub lines: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Lines accepted with at least one warning.
    pub with_warnings: u64,
    pub accepted_amount: Fen,
    /// Number of lines carrying each code (a line with two codes counts for both).
    pub by_code: BTreeMap<String, u64>,
}

impl IntakeSummary {
    pub fn record(&mut self, o: &LineOutcome) {
        self.lines += 1;
        let issues = o.issues();
        for (k, i) in issues.iter().enumerate() {
            // Each code once per line (a line has a handful of issues at most).
            if issues[..k].iter().any(|j| j.code == i.code) {
                continue;
            }
            match self.by_code.get_mut(i.code.as_str()) {
                Some(n) => *n += 1,
                None => {
                    self.by_code.insert(i.code.as_str().to_owned(), 1);
                }
            }
        }
        match o {
            LineOutcome::Accepted(a) => {
                self.accepted += 1;
                self.accepted_amount += a.amount.to_fen();
                if !a.warnings.is_empty() {
                    self.with_warnings += 1;
                }
            }
            LineOutcome::Rejected { .. } => self.rejected += 1,
        }
    }
}

/// Why an intake run stopped (the roster is then unusable as a whole: nothing is stored).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Source(E),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Lines processed per round-trip to the registers.
pub const CHUNK: usize = 4096;

/// A source of roster lines that lends each line until the next is asked for (a reader
/// keeping its current row in one buffer), so validating a line copies none of its cells.
pub trait LineSource {
    type Error: std::error::Error + 'static;
    /// The next line, `None` at the end; an `Err` stops the intake (as for
    /// [`IntakeRun::next_chunk`]'s iterator).
    fn next_line_ref(&mut self) -> Option<Result<RawLineRef<'_>, Self::Error>>;
}

/// An iterator of owned lines as a [`LineSource`]: holds the line lent last.
struct OwnedLines<'i, I> {
    lines: &'i mut I,
    current: Option<RawLine>,
}

impl<I, E> LineSource for OwnedLines<'_, I>
where
    E: std::error::Error + 'static,
    I: Iterator<Item = Result<RawLine, E>>,
{
    type Error = E;
    fn next_line_ref(&mut self) -> Option<Result<RawLineRef<'_>, E>> {
        match self.lines.next()? {
            Err(e) => Some(Err(e)),
            Ok(line) => Some(Ok(self.current.insert(line).view())),
        }
    }
}

/// An intake in progress: pull outcomes chunk by chunk with [`IntakeRun::next_chunk`], so the
/// caller can store each chunk (inside its own transaction) before reading on. Memory holds
/// one chunk plus the duplicate tracker, whatever the roster's size.
pub struct IntakeRun<'c> {
    ctx: &'c IntakeContext<'c>,
    dups: DupTracker,
    summary: IntakeSummary,
    peers: Vec<&'c Project>,
    cache: LineCache,
}

impl<'c> IntakeRun<'c> {
    pub fn new(ctx: &'c IntakeContext<'c>) -> IntakeRun<'c> {
        IntakeRun {
            ctx,
            dups: DupTracker::default(),
            summary: IntakeSummary::default(),
            peers: ctx.catalog.exclusive_peers(&ctx.project.code).collect(),
            cache: LineCache::default(),
        }
    }

    /// The totals so far.
    pub fn summary(&self) -> &IntakeSummary {
        &self.summary
    }

    /// Check the next [`CHUNK`] lines; an empty vector means the roster is done.
    pub async fn next_chunk<E, I>(
        &mut self,
        lines: &mut I,
        registry: &dyn CardRegistry,
        refs: &dyn ReferenceData,
    ) -> Result<Vec<LineOutcome>, IntakeError<E>>
    where
        E: std::error::Error + 'static,
        I: Iterator<Item = Result<RawLine, E>>,
    {
        self.next_chunk_from(
            &mut OwnedLines {
                lines,
                current: None,
            },
            registry,
            refs,
        )
        .await
    }

    /// [`IntakeRun::next_chunk`] over a source that lends its lines
    /// ([`LineSource`]): no allocation per cell.
    pub async fn next_chunk_from<S: LineSource>(
        &mut self,
        lines: &mut S,
        registry: &dyn CardRegistry,
        refs: &dyn ReferenceData,
    ) -> Result<Vec<LineOutcome>, IntakeError<S::Error>> {
        let ctx = self.ctx;
        // The raw ID text is kept only for a line without a parsed person: the report shows
        // it (masked) in place of the ID (`LineOutcome::Rejected::raw_id`).
        let mut chunk: Vec<(LineDraft, Option<String>)> = Vec::with_capacity(CHUNK);
        while let Some(item) = lines.next_line_ref() {
            let raw = item.map_err(IntakeError::Source)?;
            let draft = check_line_cached(ctx, &raw, &mut self.cache);
            let raw_id = if draft.person().is_none() {
                raw.resident_id.map(str::to_owned)
            } else {
                None
            };
            chunk.push((draft, raw_id));
            if chunk.len() == CHUNK {
                break;
            }
        }
        if chunk.is_empty() {
            return Ok(Vec::new());
        }
        // One round-trip per register for the whole chunk.
        let holders: Vec<ResidentId> = if ctx.check_cards {
            chunk
                .iter()
                .filter_map(|(d, _)| d.card_holder().cloned())
                .collect()
        } else {
            Vec::new()
        };
        // The person is the card holder except on receipt-proxy lines: most chunks ask the
        // death register for the very IDs the card registry was asked for.
        let persons_are_holders =
            ctx.check_cards && chunk.iter().all(|(d, _)| d.person() == d.card_holder());
        let persons: Vec<ResidentId> = if persons_are_holders {
            Vec::new()
        } else {
            chunk
                .iter()
                .filter_map(|(d, _)| d.person().cloned())
                .collect()
        };
        let keyed: Vec<(ResidentId, Period)> = chunk
            .iter()
            .filter_map(|(d, _)| Some((d.person()?.clone(), d.period?)))
            .collect();
        let mut cards = if ctx.check_cards {
            registry.lookup(&holders).await?
        } else {
            Vec::new()
        };
        let deaths = refs
            .deaths(if persons_are_holders {
                &holders
            } else {
                &persons
            })
            .await?;
        let paid = refs.paid_or_in_flight(ctx.project, &keyed).await?;
        let mut excl = if self.peers.is_empty() {
            vec![None; keyed.len()]
        } else {
            refs.exclusive(&self.peers, &keyed).await?
        };
        let proxies: Vec<ResidentId> = chunk
            .iter()
            .filter(|(d, _)| d.proxy.is_some())
            .filter_map(|(d, _)| d.person().cloned())
            .collect();
        let agreements = if proxies.is_empty() {
            Vec::new()
        } else {
            refs.agreements(&proxies).await?
        };

        let (mut hi, mut pi, mut ki, mut ai) = (0, 0, 0, 0);
        let mut out = Vec::with_capacity(chunk.len());
        for (draft, raw_id) in chunk {
            let mut l = Lookups::default();
            let mut card = None;
            if draft.card_holder().is_some() {
                card = cards.get_mut(hi).and_then(Option::take);
                hi += 1;
            }
            if draft.person().is_some() {
                l.death = deaths.get(pi).and_then(Option::as_ref);
                pi += 1;
                if draft.period.is_some() {
                    l.already_paid = paid.get(ki).copied().unwrap_or(false);
                    l.exclusive_with = excl.get_mut(ki).and_then(Option::take);
                    ki += 1;
                }
                if draft.proxy.is_some() {
                    l.agreement_on_record = agreements.get(ai).copied().unwrap_or(false);
                    ai += 1;
                }
            }
            let mut outcome = finish(ctx, draft, card, &l, &mut self.dups);
            if let LineOutcome::Rejected {
                raw_id: r,
                id: None,
                ..
            } = &mut outcome
            {
                *r = raw_id;
            }
            self.summary.record(&outcome);
            out.push(outcome);
        }
        Ok(out)
    }
}

/// Run a whole intake, handing each outcome to `sink` in file order.
pub async fn run_intake<E, I, S>(
    ctx: &IntakeContext<'_>,
    lines: I,
    registry: &dyn CardRegistry,
    refs: &dyn ReferenceData,
    mut sink: S,
) -> Result<IntakeSummary, IntakeError<E>>
where
    E: std::error::Error + 'static,
    I: IntoIterator<Item = Result<RawLine, E>>,
    S: FnMut(LineOutcome) -> Result<(), E>,
{
    let mut run = IntakeRun::new(ctx);
    let mut iter = lines.into_iter();
    loop {
        let chunk = run.next_chunk(&mut iter, registry, refs).await?;
        if chunk.is_empty() {
            return Ok(run.summary.clone());
        }
        for o in chunk {
            sink(o).map_err(IntakeError::Source)?;
        }
    }
}

/// Whether `issues` carry `code`.
pub fn has_code(issues: &[Issue], code: ReasonCode) -> bool {
    issues.iter().any(|i| i.code == code)
}

/// The sum of accepted amounts in 分.
pub fn total(lines: &[AcceptedLine]) -> Fen {
    lines.iter().map(|l| l.amount.to_fen()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `check_name` as it was before the byte-level fast path (`plain_name`).
    fn check_name_by_chars(raw: Option<&str>) -> Result<String, (ReasonCode, String)> {
        let Some(n) = raw else {
            return Err((ReasonCode::NameMissing, "姓名为空".into()));
        };
        let n: String = n
            .trim()
            .chars()
            .map(|c| if is_name_dot(c) { '·' } else { c })
            .filter(|c| !is_name_space(*c))
            .collect();
        if n.is_empty() {
            return Err((ReasonCode::NameMissing, "姓名为空".into()));
        }
        if n.chars().count() > 30 {
            return Err((
                ReasonCode::NameInvalid,
                format!("姓名超过30个字（{}个字）", n.chars().count()),
            ));
        }
        if n.chars()
            .any(|c| c.is_control() || c.is_ascii_digit() || ('０'..='９').contains(&c))
        {
            return Err((ReasonCode::NameInvalid, "姓名含数字或控制字符".into()));
        }
        if n.starts_with('·') || n.ends_with('·') {
            return Err((ReasonCode::NameInvalid, "姓名首尾不能是间隔号".into()));
        }
        Ok(n)
    }

    /// Characters names are made of, and every character the name rules treat specially.
    fn name_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => proptest::sample::select(vec!['张', '阿', '买', '提', '王', 'a', 'Z', '-', '(']),
            2 => proptest::sample::select(vec![
                '·', '•', '・', '．', '.', '‧', '∙', ' ', '\t', '\u{3000}', '\u{a0}',
                '\u{85}', '\u{1680}', '\u{2003}', '\u{200b}', '\u{202f}', '\u{205f}',
                '\u{feff}', '\u{7f}', '\u{9f}', '\u{1}', '7', '０', '９', '\u{ff65}',
                '\u{180e}', 'é', '\u{2028}',
            ]),
            1 => any::<char>(),
        ]
    }

    proptest! {
        #[test]
        fn check_name_is_the_char_by_char_rule(chars in proptest::collection::vec(name_char(), 0..40)) {
            let name: String = chars.into_iter().collect();
            prop_assert_eq!(check_name(Some(&name)), check_name_by_chars(Some(&name)));
            // The card's name against the roster's: the char-by-char comparison.
            for card in [name.chars().rev().collect::<String>(), name.clone(), normalise_name(&name)] {
                let by_chars = normalised_chars(&name).collect::<String>() == card;
                prop_assert_eq!(normalised_eq(&name, &card), by_chars);
            }
            prop_assert!(normalised_eq(&name, &normalise_name(&name)));
        }
    }

    #[test]
    fn dup_tracker_tells_people_and_periods_apart() {
        let id = |s: &str| ResidentId::from_trusted(s).expect("valid test ID");
        let (a, b) = (id("11010519491231002X"), id("110105194912310038"));
        let periods = [
            Period::Month {
                year: 2023,
                month: 5,
            },
            Period::Month {
                year: 2023,
                month: 12,
            },
            Period::Quarter {
                year: 2023,
                quarter: 2,
            },
            Period::Half {
                year: 2023,
                half: 2,
            },
            Period::Year(2023),
            Period::Year(2024),
        ];
        let mut t = DupTracker::default();
        let mut row = 1;
        for p in periods {
            for who in [&a, &b] {
                row += 1;
                assert_eq!(t.first_row(DupKey::new(who, p), row), None);
            }
        }
        // The same person and period again: the first row is named.
        assert_eq!(t.first_row(DupKey::new(&b, periods[2]), 99), Some(7));
        assert_eq!(t.first_row(DupKey::new(&a, periods[0]), 99), Some(2));
    }
}
