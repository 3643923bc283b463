//! Readers for the reference registers a roster is checked against (DOMAIN.md §9): the HR&SS
//! card registry, the death register and the region table. Same formats and encodings as
//! rosters (they share [`TableReader`]).
//!
//! A bad row never silently disappears: every good row becomes a record, every bad row one or
//! more [`RowProblem`]s. Only a problem with the file as a whole (unreadable, wrong encoding,
//! missing column...) is an `Err(FileError)`. Messages never contain a full resident ID or
//! bank account (they are masked with the kernel's default [`MaskPolicy`]).

use crate::error::FileError;
use crate::table::{RowView, TableReader};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use ykt_kernel::card::{CardRecord, CardStatus, DeathRecord, RegionEntry};
use ykt_kernel::ident::{BankAccount, RegionCode, ResidentId};
use ykt_kernel::mask::MaskPolicy;

/// One problem with one row of a register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    /// 1-based spreadsheet row number.
    pub row: u32,
    /// The header of the column concerned, if one.
    pub column: Option<String>,
    /// Chinese first, English in parentheses; never a full identifier.
    pub message: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "第{}行", self.row)?;
        if let Some(c) = &self.column {
            write!(f, "「{c}」")?;
        }
        write!(f, "：{}", self.message)
    }
}

/// All good records of a register and the problems of the bad rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded<T> {
    pub records: Vec<T>,
    pub problems: Vec<RowProblem>,
}

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Loaded {
            records: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// A column of a register layout: canonical header, accepted aliases, required or not.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub header: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
}

/// Card registry layout (社保卡管理信息系统 snapshot).
pub const CARD_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        header: "身份证号码",
        aliases: &[
            "身份证号",
            "公民身份号码",
            "证件号码",
            "身份证",
            "社会保障号码",
            "社会保障号",
        ],
        required: true,
    },
    FieldSpec {
        header: "姓名",
        aliases: &["持卡人姓名", "持卡人"],
        required: true,
    },
    FieldSpec {
        header: "社会保障卡号",
        aliases: &["社保卡号", "卡号"],
        required: false,
    },
    FieldSpec {
        header: "发卡银行",
        aliases: &["开户银行", "发卡行", "银行", "银行名称", "合作银行"],
        required: false,
    },
    FieldSpec {
        header: "银行账号",
        aliases: &[
            "账号",
            "金融账号",
            "银行卡号",
            "社保卡银行账号",
            "社会保障卡银行账号",
            "金融账户",
        ],
        required: true,
    },
    FieldSpec {
        header: "卡状态",
        aliases: &["状态", "社保卡状态", "社会保障卡状态"],
        required: true,
    },
    FieldSpec {
        header: "金融账户是否激活",
        aliases: &[
            "是否激活",
            "激活状态",
            "金融账户激活状态",
            "金融功能是否激活",
            "金融账户状态",
        ],
        required: true,
    },
];

/// Death register layout.
pub const DEATH_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        header: "身份证号码",
        aliases: &["身份证号", "公民身份号码", "证件号码", "身份证"],
        required: true,
    },
    FieldSpec {
        header: "姓名",
        aliases: &["死者姓名"],
        required: false,
    },
    FieldSpec {
        header: "死亡日期",
        aliases: &["死亡时间", "死亡日期（年月日）"],
        required: true,
    },
];

/// Region table layout (统计用区划代码).
pub const REGION_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        header: "行政区划代码",
        aliases: &["区划代码", "代码", "统计用区划代码", "行政区划编码"],
        required: true,
    },
    FieldSpec {
        header: "名称",
        aliases: &["区划名称", "行政区划名称"],
        required: true,
    },
];

/// Normalise a header like [`ykt_kernel::Column::from_header`]: surrounding whitespace and
/// `*` required-markers removed, inner whitespace removed.
fn normalise_header(h: &str) -> String {
    h.trim_matches(|c: char| c.is_whitespace() || c == '*' || c == '＊')
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn field_of(specs: &[FieldSpec], header: &str) -> Option<usize> {
    let h = normalise_header(header);
    specs
        .iter()
        .position(|s| s.header == h || s.aliases.contains(&h.as_str()))
}

/// Open a register and map its header to `specs`: returns the reader and, per spec, the
/// column index holding it.
fn open_layout(
    path: &Path,
    specs: &[FieldSpec],
) -> Result<(TableReader, Vec<Option<usize>>), FileError> {
    let table = TableReader::open_with(path, |h| field_of(specs, h).is_some())?;
    let mut at: Vec<Option<usize>> = vec![None; specs.len()];
    for (col, h) in table.headers().iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        if let Some(k) = field_of(specs, h) {
            if let Some(prev) = at[k] {
                return Err(FileError::DuplicateHeader {
                    file: table.file_name().to_owned(),
                    column: specs[k].header.to_owned(),
                    first: table.headers()[prev].clone(),
                    second: h.clone(),
                });
            }
            at[k] = Some(col);
        }
    }
    if let Some(k) = (0..specs.len()).find(|&k| specs[k].required && at[k].is_none()) {
        return Err(FileError::MissingColumn {
            file: table.file_name().to_owned(),
            column: specs[k].header.to_owned(),
        });
    }
    Ok((table, at))
}

/// One row seen through a layout.
struct Fields<'a> {
    row: RowView<'a>,
    at: &'a [Option<usize>],
    table: &'a TableReader,
}

impl Fields<'_> {
    fn text(&self, k: usize) -> &str {
        self.at[k].map(|c| self.row.cell(c)).unwrap_or("")
    }
    fn numeric(&self, k: usize) -> bool {
        self.at[k].is_some_and(|c| self.row.numeric(c))
    }
    fn problem(&self, k: usize, message: impl Into<String>) -> RowProblem {
        let column = self.at[k].map(|c| self.table.column_name(c));
        RowProblem {
            row: self.row.row,
            column,
            message: message.into(),
        }
    }
}

/// Read every row through `specs`, hand each to `parse`, and pass the record or each problem
/// to `f`.
fn for_each_row<T>(
    path: &Path,
    specs: &[FieldSpec],
    mut parse: impl FnMut(&Fields<'_>) -> Result<T, Vec<RowProblem>>,
    mut f: impl FnMut(Result<T, RowProblem>),
) -> Result<(), FileError> {
    let (mut table, at) = open_layout(path, specs)?;
    while let Some(next) = table.advance() {
        match next {
            Ok(()) => {
                let fields = Fields {
                    row: table.current(),
                    at: &at,
                    table: &table,
                };
                match parse(&fields) {
                    Ok(record) => f(Ok(record)),
                    Err(problems) => problems.into_iter().for_each(|p| f(Err(p))),
                }
            }
            Err(e) if e.is_row_level() => f(Err(RowProblem {
                row: e.row().unwrap_or(0),
                column: e.column().map(str::to_owned),
                message: e.to_string(),
            })),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn collect<T>(
    run: impl FnOnce(&mut dyn FnMut(Result<T, RowProblem>)) -> Result<(), FileError>,
) -> Result<Loaded<T>, FileError> {
    let mut loaded = Loaded::default();
    run(&mut |r| match r {
        Ok(t) => loaded.records.push(t),
        Err(p) => loaded.problems.push(p),
    })?;
    Ok(loaded)
}

/// Parse the resident-ID field `k`, or describe why not (masked).
fn resident_id(fields: &Fields<'_>, k: usize, today: NaiveDate) -> Result<ResidentId, RowProblem> {
    let text = fields.text(k);
    if text.is_empty() {
        return Err(fields.problem(k, "身份证号码缺失 (resident ID missing)"));
    }
    if fields.numeric(k) {
        return Err(fields.problem(
            k,
            format!(
                "身份证号码 {} 存为数字单元格，已失真，请将该列设为文本后重新录入 \
                 (resident ID {} is a number cell: Excel keeps 15 significant digits, so it is corrupt; format the column as text and re-enter it)",
                MaskPolicy::default().id(text),
                MaskPolicy::default().id(text)
            ),
        ));
    }
    match ResidentId::parse(text, today) {
        Ok(p) => Ok(p.id),
        Err(e) => {
            let masked = MaskPolicy::default().id(text);
            Err(fields.problem(k, format!("身份证号码 {masked}：{e}")))
        }
    }
}

/// `是/否`, `1/0`, `Y/N`, `已激活/未激活`... → bool.
pub fn parse_yes_no(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "是" | "1" | "y" | "yes" | "true" | "已激活" | "激活" | "正常" => Some(true),
        "否" | "0" | "n" | "no" | "false" | "未激活" | "未开通" => Some(false),
        _ => None,
    }
}

/// A date as `YYYY-MM-DD`, `YYYY/M/D`, `YYYY.M.D`, `YYYYMMDD` or `YYYY年M月D日`, optionally
/// followed by a time (` 00:00:00` or `T00:00:00`), which is ignored. xlsx date cells arrive
/// as `YYYY-MM-DD` already.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let date_part = s.split([' ', 'T']).next().unwrap_or(s);
    if date_part.len() == 8 && date_part.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::parse_from_str(date_part, "%Y%m%d").ok();
    }
    let normalised: String = date_part
        .trim_end_matches('日')
        .chars()
        .map(|c| {
            if matches!(c, '/' | '.' | '年' | '月') {
                '-'
            } else {
                c
            }
        })
        .collect();
    let mut parts = normalised.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let digits = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    if y.len() != 4 || !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// Truncate free text quoted in a message (status words and the like). A run of 11 or more
/// digits may be an identifier typed into the wrong column (a resident ID in 死亡日期), so it
/// is masked like one: its first 4 and last 4 digits kept (found by the `registers` fuzz
/// target; DOMAIN.md §3: full identifiers never appear in messages).
fn quote(s: &str) -> String {
    let mut out: Vec<char> = s.chars().take(20).collect();
    let mut i = 0;
    while i < out.len() {
        let start = i;
        while i < out.len() && out[i].is_ascii_digit() {
            i += 1;
        }
        if i - start >= 11 {
            out[start + 4..i - 4].iter_mut().for_each(|c| *c = '*');
        }
        i = i.max(start + 1);
    }
    let mut out: String = out.into_iter().collect();
    if s.chars().count() > 20 {
        out.push('…');
    }
    out
}

fn parse_card(fields: &Fields<'_>, today: NaiveDate) -> Result<CardRecord, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let id = resident_id(fields, 0, today)
        .map_err(|p| problems.push(p))
        .ok();
    let name = fields.text(1);
    if name.is_empty() {
        problems.push(fields.problem(1, "姓名缺失 (name missing)"));
    }
    let account_text = fields.text(4);
    let account = if account_text.is_empty() {
        problems.push(fields.problem(4, "银行账号缺失 (bank account missing)"));
        None
    } else {
        match BankAccount::parse(account_text) {
            Ok(a) => Some(a),
            Err(e) => {
                let masked = MaskPolicy::default().account(account_text);
                problems.push(fields.problem(4, format!("银行账号 {masked}：{e}")));
                None
            }
        }
    };
    let status_text = fields.text(5);
    let status = CardStatus::parse(status_text);
    if status.is_none() {
        problems.push(fields.problem(
            5,
            format!(
                "卡状态「{}」无法识别，应为 正常/挂失/注销/冻结 (card status not recognised; expected 正常/挂失/注销/冻结)",
                quote(status_text)
            ),
        ));
    }
    let activated_text = fields.text(6);
    let activated = parse_yes_no(activated_text);
    if activated.is_none() {
        problems.push(fields.problem(
            6,
            format!(
                "金融账户是否激活「{}」无法识别，应为 是/否 (activation flag not recognised; expected 是/否, 1/0, Y/N, 已激活/未激活)",
                quote(activated_text)
            ),
        ));
    }
    match (id, account, status, activated) {
        (Some(resident_id), Some(account), Some(status), Some(activated))
            if problems.is_empty() =>
        {
            Ok(CardRecord {
                resident_id,
                name: name.to_owned(),
                card_no: fields.text(2).to_owned(),
                bank: fields.text(3).to_owned(),
                account,
                status,
                activated,
            })
        }
        _ => Err(problems),
    }
}

/// Stream the card registry: `f` gets each good record or each problem, in file order, so
/// millions of cards need not sit in memory. Layout: [`CARD_FIELDS`].
pub fn for_each_card(
    path: &Path,
    today: NaiveDate,
    f: impl FnMut(Result<CardRecord, RowProblem>),
) -> Result<(), FileError> {
    for_each_row(path, CARD_FIELDS, |fields| parse_card(fields, today), f)
}

/// Read the whole card registry (身份证号码, 姓名, 社会保障卡号, 发卡银行, 银行账号, 卡状态,
/// 金融账户是否激活). For very large registries prefer [`for_each_card`].
pub fn read_card_registry(path: &Path, today: NaiveDate) -> Result<Loaded<CardRecord>, FileError> {
    collect(|f| for_each_card(path, today, f))
}

fn parse_death(fields: &Fields<'_>, today: NaiveDate) -> Result<DeathRecord, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let id = resident_id(fields, 0, today)
        .map_err(|p| problems.push(p))
        .ok();
    let date_text = fields.text(2);
    let date = if date_text.is_empty() {
        problems.push(fields.problem(2, "死亡日期缺失 (date of death missing)"));
        None
    } else {
        match parse_date(date_text) {
            Some(d) if d > today => {
                problems.push(fields.problem(
                    2,
                    format!("死亡日期 {d} 晚于今天 (date of death {d} is in the future)"),
                ));
                None
            }
            Some(d) => Some(d),
            None => {
                problems.push(fields.problem(
                    2,
                    format!(
                        "死亡日期「{}」无法识别，应为 YYYY-MM-DD、YYYY/M/D 或 YYYYMMDD \
                         (date of death not recognised; expected YYYY-MM-DD, YYYY/M/D or YYYYMMDD)",
                        quote(date_text)
                    ),
                ));
                None
            }
        }
    };
    match (id, date) {
        (Some(resident_id), Some(date_of_death)) if problems.is_empty() => Ok(DeathRecord {
            resident_id,
            name: fields.text(1).to_owned(),
            date_of_death,
        }),
        _ => Err(problems),
    }
}

/// Stream the death register. Layout: [`DEATH_FIELDS`].
pub fn for_each_death(
    path: &Path,
    today: NaiveDate,
    f: impl FnMut(Result<DeathRecord, RowProblem>),
) -> Result<(), FileError> {
    for_each_row(path, DEATH_FIELDS, |fields| parse_death(fields, today), f)
}

/// Read the death register (身份证号码, 姓名, 死亡日期).
pub fn read_death_register(
    path: &Path,
    today: NaiveDate,
) -> Result<Loaded<DeathRecord>, FileError> {
    collect(|f| for_each_death(path, today, f))
}

fn parse_region(fields: &Fields<'_>) -> Result<RegionEntry, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let code_text = fields.text(0);
    let code = match RegionCode::parse(code_text) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(fields.problem(0, format!("行政区划代码「{}」：{e}", quote(code_text))));
            None
        }
    };
    let name = fields.text(1);
    if name.is_empty() {
        problems.push(fields.problem(1, "名称缺失 (name missing)"));
    }
    match code {
        Some(code) if problems.is_empty() => Ok(RegionEntry {
            code,
            name: name.to_owned(),
        }),
        _ => Err(problems),
    }
}

/// Stream the region table. Layout: [`REGION_FIELDS`].
pub fn for_each_region(
    path: &Path,
    f: impl FnMut(Result<RegionEntry, RowProblem>),
) -> Result<(), FileError> {
    for_each_row(path, REGION_FIELDS, parse_region, f)
}

/// Read the region table (行政区划代码, 名称).
pub fn read_region_table(path: &Path) -> Result<Loaded<RegionEntry>, FileError> {
    collect(|f| for_each_region(path, f))
}

#[cfg(test)]
mod tests {

    #[test]
    fn quoted_values_mask_long_digit_runs() {
        assert_eq!(quote("已注销"), "已注销");
        assert_eq!(quote("2023-13-45"), "2023-13-45");
        assert_eq!(quote("230102198001011234"), "2301**********1234");
        assert_eq!(quote("22222222222222222222222"), "2222************2222…");
        assert_eq!(quote("1234567890"), "1234567890");
    }

    use super::*;

    #[test]
    fn dates_in_the_documented_forms() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 1);
        for s in [
            "2024-03-01",
            "2024/3/1",
            "2024.3.1",
            "20240301",
            "2024年3月1日",
            "2024-03-01 00:00:00",
            "2024-03-01T00:00:00",
        ] {
            assert_eq!(parse_date(s), d, "{s}");
        }
        for s in [
            "2024-13-01",
            "240301",
            "2024-3",
            "",
            "abc",
            "2024-02-30",
            "12024-03-01",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn yes_no() {
        for s in ["是", "1", "Y", "y", "已激活"] {
            assert_eq!(parse_yes_no(s), Some(true));
        }
        for s in ["否", "0", "N", "未激活"] {
            assert_eq!(parse_yes_no(s), Some(false));
        }
        assert_eq!(parse_yes_no("不知道"), None);
    }

    #[test]
    fn headers_match_aliases() {
        assert_eq!(field_of(CARD_FIELDS, " *社保卡号 "), Some(2));
        assert_eq!(field_of(CARD_FIELDS, "社会保障号码"), Some(0));
        assert_eq!(field_of(REGION_FIELDS, "区划名称"), Some(1));
        assert_eq!(field_of(DEATH_FIELDS, "籍贯"), None);
    }
}
