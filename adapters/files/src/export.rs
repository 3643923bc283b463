//! Exports: the per-line validation report (校验结果) in xlsx, GB18030 CSV and JSON, and the
//! generic table writers later report and bank-file writers reuse.
//!
//! Safety rules every writer follows:
//! - text cells go through [`neutralise`] (formula injection, DOMAIN.md §3);
//! - xlsx text is written with `write_string`, never as a formula;
//! - CSV is GB18030 (every Unicode character, including rare name characters such as 𬌗,
//!   is representable) and a character the encoder cannot map is an error, never a `?`;
//! - xlsx sheets are written in rust_xlsxwriter's constant-memory mode, so memory does not
//!   grow with the number of rows (a sheet that reaches Excel's 1,048,576-row limit continues
//!   on a new sheet with the same header).

use crate::error::{FileError, display_name};
use encoding_rs::GB18030;
use rust_xlsxwriter::{DocProperties, Format, FormatAlign, Workbook, Worksheet, XlsxError};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use ykt_kernel::ResidentId;
use ykt_kernel::mask::{MaskPolicy, mask_middle};
use ykt_kernel::money::Fen;
use ykt_kernel::roster::Issue;

/// Sheet name of the validation report.
pub const REPORT_SHEET: &str = "校验结果";
/// Column headers of the validation report, in order.
pub const REPORT_HEADERS: [&str; 8] = [
    "行号",
    "姓名",
    "身份证号码",
    "列",
    "原因代码",
    "级别",
    "需办理",
    "说明",
];

/// One line of the validation report: where, who (masked), what, how bad, who must act, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLine {
    pub row: u32,
    /// The name masked with the default policy (`张*`), `""` when absent.
    #[serde(rename = "name")]
    pub name_masked: String,
    /// The resident ID masked (`230102********3745`), `""` when absent.
    #[serde(rename = "id")]
    pub id_masked: String,
    /// Canonical header of the column concerned, `""` for a whole-line problem.
    pub column: String,
    /// Stable reason code, e.g. `card.inactive`.
    pub code: String,
    /// Chinese severity label: `错误` or `提示`.
    pub severity: String,
    /// Chinese label of who must act: `办卡`, `激活`, `更正数据`...
    pub follow_up: String,
    pub message: String,
}

impl ReportLine {
    /// Build a report line from a kernel [`Issue`] and the line's raw name and ID, masking
    /// both with [`MaskPolicy::default`]. An ID that is not a valid resident ID (the usual
    /// reason it is being reported) is masked character by character with
    /// [`mask_middle`], keeping the same head and tail as a valid one.
    pub fn from_issue(issue: &Issue, name: Option<&str>, id: Option<&str>) -> ReportLine {
        let policy = MaskPolicy::default();
        let name_masked = name.map(|n| policy.name(n)).unwrap_or_default();
        let id_masked = ReportLine::mask_id(id);
        ReportLine {
            row: issue.row,
            name_masked,
            id_masked,
            column: issue
                .column
                .map(|c| c.label().to_owned())
                .unwrap_or_default(),
            code: issue.code.as_str().to_owned(),
            severity: issue.severity.label().to_owned(),
            follow_up: issue.code.follow_up().label().to_owned(),
            message: issue.message.clone(),
        }
    }

    /// The `id_masked` of [`ReportLine::from_issue`] for a line's ID text (`""` for none).
    pub fn mask_id(id: Option<&str>) -> String {
        let policy = MaskPolicy::default();
        match id.map(str::trim).filter(|s| !s.is_empty()) {
            None => String::new(),
            Some(text) => match ResidentId::from_trusted(text) {
                Ok(valid) => policy.id(valid.as_str()),
                Err(_) => mask_middle(text, policy.id_head, policy.id_tail),
            },
        }
    }

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::Int(i64::from(self.row)),
            Cell::Text(self.name_masked.clone()),
            Cell::Text(self.id_masked.clone()),
            Cell::Text(self.column.clone()),
            Cell::Text(self.code.clone()),
            Cell::Text(self.severity.clone()),
            Cell::Text(self.follow_up.clone()),
            Cell::Text(self.message.clone()),
        ]
    }
}

/// A cell of an exported table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Text, neutralised against formula injection and written as text.
    Text(String),
    /// An integer (row numbers, counts), written as a number.
    Int(i64),
    /// Money, written as a number of yuan with the format `0.00` (xlsx) or as `1234.50` (CSV).
    Money(Fen),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}
impl From<i64> for Cell {
    fn from(i: i64) -> Cell {
        Cell::Int(i)
    }
}
impl From<Fen> for Cell {
    fn from(f: Fen) -> Cell {
        Cell::Money(f)
    }
}

/// Neutralise formula injection (CWE-1236): text starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading `'`, so no spreadsheet evaluates it as a formula.
///
/// Both CSV writers need it (a CSV cell `=HYPERLINK(...)` *is* a formula to Excel and WPS).
/// The xlsx writers apply it too although `write_string` already stores plain text, because
/// an exported sheet is routinely re-saved as CSV or pasted into another workbook, where
/// the text would be evaluated; and so that every format of the same report shows the
/// same characters.
pub fn neutralise(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

/// Excel's row limit: a sheet holds at most this many rows.
const XLSX_MAX_ROWS: u32 = 1_048_576;
/// Widest column width set by the auto-width estimate.
const MAX_COLUMN_WIDTH: f64 = 60.0;

fn xlsx_error(file: &str, e: XlsxError) -> FileError {
    match e {
        XlsxError::IoError(source) => FileError::Write {
            file: file.to_owned(),
            source,
        },
        other => FileError::Export {
            file: file.to_owned(),
            detail: crate::table::redact_digits(&other.to_string()),
        },
    }
}

/// Display width of text in Excel's character units: CJK and other wide characters count 2.
fn display_width(s: &str) -> f64 {
    s.chars()
        .map(|c| {
            let u = c as u32;
            let wide = (0x1100..=0x115F).contains(&u)
                || (0x2E80..=0xA4CF).contains(&u)
                || (0xAC00..=0xD7A3).contains(&u)
                || (0xF900..=0xFAFF).contains(&u)
                || (0xFE30..=0xFE4F).contains(&u)
                || (0xFF00..=0xFF60).contains(&u)
                || (0xFFE0..=0xFFE6).contains(&u)
                || (0x20000..=0x3FFFD).contains(&u);
            if wide { 2.0 } else { 1.0 }
        })
        .sum()
}

struct SheetWriter<'a> {
    file: &'a str,
    base_name: &'a str,
    title: Option<&'a str>,
    headers: &'a [&'a str],
    bold: Format,
    title_format: Format,
    money: Format,
    widths: Vec<f64>,
    /// Index of the current worksheet in the workbook.
    sheet_index: usize,
    sheets: usize,
    next_row: u32,
}

impl SheetWriter<'_> {
    fn new_sheet(&mut self, wb: &mut Workbook) -> Result<(), FileError> {
        self.sheets += 1;
        let name = if self.sheets == 1 {
            self.base_name.to_owned()
        } else {
            // Excel sheet names are at most 31 characters.
            let suffix = format!("({})", self.sheets);
            let keep = 31usize.saturating_sub(suffix.chars().count());
            format!(
                "{}{suffix}",
                self.base_name.chars().take(keep).collect::<String>()
            )
        };
        let ws = wb.add_worksheet_with_constant_memory();
        ws.set_name(&name).map_err(|e| xlsx_error(self.file, e))?;
        self.sheet_index = wb.worksheets().len() - 1;
        let ws = wb
            .worksheet_from_index(self.sheet_index)
            .map_err(|e| xlsx_error(self.file, e))?;
        let mut row = 0u32;
        if let Some(title) = self.title.filter(|t| !t.is_empty()) {
            let title = neutralise(title);
            let last = u16::try_from(self.headers.len().saturating_sub(1)).unwrap_or(u16::MAX);
            if last > 0 {
                ws.merge_range(0, 0, 0, last, &title, &self.title_format)
                    .map_err(|e| xlsx_error(self.file, e))?;
            } else {
                ws.write_string_with_format(0, 0, title.as_ref(), &self.title_format)
                    .map_err(|e| xlsx_error(self.file, e))?;
            }
            row = 1;
        }
        for (c, h) in self.headers.iter().enumerate() {
            let col = u16::try_from(c).map_err(|_| FileError::Export {
                file: self.file.to_owned(),
                detail: "列数超过 Excel 上限 (more columns than Excel allows)".to_owned(),
            })?;
            ws.write_string_with_format(row, col, neutralise(h).as_ref(), &self.bold)
                .map_err(|e| xlsx_error(self.file, e))?;
        }
        ws.set_freeze_panes(row + 1, 0)
            .map_err(|e| xlsx_error(self.file, e))?;
        self.next_row = row + 1;
        Ok(())
    }

    fn write_row(&mut self, wb: &mut Workbook, cells: Vec<Cell>) -> Result<(), FileError> {
        if self.next_row >= XLSX_MAX_ROWS {
            self.finish_sheet(wb)?;
            self.new_sheet(wb)?;
        }
        let row = self.next_row;
        let file = self.file;
        let ws: &mut Worksheet = wb
            .worksheet_from_index(self.sheet_index)
            .map_err(|e| xlsx_error(file, e))?;
        for (c, cell) in cells.into_iter().enumerate() {
            let Ok(col) = u16::try_from(c) else {
                return Err(FileError::Export {
                    file: file.to_owned(),
                    detail: "列数超过 Excel 上限 (more columns than Excel allows)".to_owned(),
                });
            };
            let width = match &cell {
                Cell::Text(s) => {
                    let s = neutralise(s);
                    ws.write_string(row, col, s.as_ref()).map_err(|e| match e {
                        XlsxError::MaxStringLengthExceeded => FileError::Export {
                            file: file.to_owned(),
                            detail: format!(
                                "第{}行第{}列文本超过 Excel 单元格上限 32767 字符 (row {}, column {}: text longer than Excel's 32,767-character cell limit)",
                                row + 1,
                                c + 1,
                                row + 1,
                                c + 1
                            ),
                        },
                        e => xlsx_error(file, e),
                    })?;
                    display_width(&s)
                }
                Cell::Int(i) => {
                    // i64 beyond 2^53 would lose digits as an Excel number: write as text.
                    if i.unsigned_abs() < (1u64 << 53) {
                        ws.write_number(row, col, *i as f64)
                            .map_err(|e| xlsx_error(file, e))?;
                    } else {
                        ws.write_string(row, col, i.to_string())
                            .map_err(|e| xlsx_error(file, e))?;
                    }
                    i.to_string().len() as f64
                }
                Cell::Money(f) => {
                    let text = f.to_string();
                    if f.0.unsigned_abs() < (1u64 << 53) {
                        ws.write_number_with_format(row, col, f.0 as f64 / 100.0, &self.money)
                            .map_err(|e| xlsx_error(file, e))?;
                    } else {
                        ws.write_string(row, col, &text)
                            .map_err(|e| xlsx_error(file, e))?;
                    }
                    text.len() as f64
                }
            };
            if let Some(w) = self.widths.get_mut(c) {
                *w = w.max(width);
            }
        }
        self.next_row += 1;
        Ok(())
    }

    fn finish_sheet(&mut self, wb: &mut Workbook) -> Result<(), FileError> {
        let ws = wb
            .worksheet_from_index(self.sheet_index)
            .map_err(|e| xlsx_error(self.file, e))?;
        for (c, w) in self.widths.iter().enumerate() {
            let Ok(col) = u16::try_from(c) else { break };
            ws.set_column_width(col, (w + 2.0).min(MAX_COLUMN_WIDTH))
                .map_err(|e| xlsx_error(self.file, e))?;
        }
        Ok(())
    }
}

/// Write a table to an xlsx file: one sheet named `sheet`, a bold frozen header row, one row
/// per item of `rows`, column widths estimated from the content. Returns the number of data
/// rows written.
pub fn write_xlsx_table(
    path: &Path,
    sheet: &str,
    headers: &[&str],
    rows: impl Iterator<Item = Vec<Cell>>,
) -> Result<u64, FileError> {
    write_xlsx_table_titled(path, sheet, None, headers, rows)
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds convention), else 2000-01-01.
fn fixed_creation_time() -> rust_xlsxwriter::ExcelDateTime {
    let fallback = || rust_xlsxwriter::ExcelDateTime::from_ymd(2000, 1, 1);
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|secs| rust_xlsxwriter::ExcelDateTime::from_timestamp(secs).ok())
        .or_else(|| fallback().ok())
        .unwrap_or_default()
}

/// [`write_xlsx_table`] with an optional title row above the header (merged across the
/// columns, bold, larger). The title is also the workbook's document title.
pub fn write_xlsx_table_titled(
    path: &Path,
    sheet: &str,
    title: Option<&str>,
    headers: &[&str],
    rows: impl Iterator<Item = Vec<Cell>>,
) -> Result<u64, FileError> {
    let file = display_name(path);
    let mut wb = Workbook::new();
    // A fixed creation time keeps the output a function of its content alone: the same
    // report or roster written twice is byte-identical (imports are identified by content).
    let mut props = DocProperties::new().set_creation_datetime(&fixed_creation_time());
    if let Some(t) = title.filter(|t| !t.is_empty()) {
        props = props.set_title(t);
    }
    wb.set_properties(&props);
    let mut w = SheetWriter {
        file: &file,
        base_name: sheet,
        title,
        headers,
        bold: Format::new().set_bold(),
        title_format: Format::new()
            .set_bold()
            .set_font_size(14)
            .set_align(FormatAlign::Center),
        money: Format::new().set_num_format("0.00"),
        widths: headers.iter().map(|h| display_width(h)).collect(),
        sheet_index: 0,
        sheets: 0,
        next_row: 0,
    };
    w.new_sheet(&mut wb)?;
    let mut count = 0u64;
    for cells in rows {
        w.write_row(&mut wb, cells)?;
        count += 1;
    }
    w.finish_sheet(&mut wb)?;
    wb.save(path).map_err(|e| xlsx_error(&file, e))?;
    Ok(count)
}

/// Text of a cell for CSV.
fn csv_text(cell: &Cell) -> Cow<'_, str> {
    match cell {
        Cell::Text(s) => neutralise(s),
        Cell::Int(i) => Cow::Owned(i.to_string()),
        Cell::Money(f) => Cow::Owned(f.to_string()),
    }
}

/// Encode one CSV record's UTF-8 bytes as GB18030; on an unmappable character, find which
/// field holds it.
fn encode_gb18030<'l>(
    file: &str,
    row: u32,
    line: &'l str,
    fields: &[Cow<'_, str>],
    headers: &[String],
) -> Result<Cow<'l, [u8]>, FileError> {
    let (bytes, _, had_errors) = GB18030.encode(line);
    if !had_errors {
        return Ok(bytes);
    }
    for (i, field) in fields.iter().enumerate() {
        for ch in field.chars() {
            let mut buf = [0u8; 4];
            if GB18030.encode(ch.encode_utf8(&mut buf)).2 {
                return Err(FileError::Unencodable {
                    file: file.to_owned(),
                    row,
                    column: headers
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("第{}列", i + 1)),
                    code_point: format!("U+{:04X}", ch as u32),
                });
            }
        }
    }
    Err(FileError::Unencodable {
        file: file.to_owned(),
        row,
        column: String::new(),
        code_point: "?".to_owned(),
    })
}

/// RFC 4180 quoting: a field containing a comma, a double quote, CR or LF is enclosed in
/// double quotes, with inner double quotes doubled.
fn csv_quote(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// A GB18030 CSV file being written, one record at a time: the push-style form of
/// [`write_csv_gb18030_table`] (same quoting, neutralisation and encoding), for callers that
/// produce several files at once from one stream of data. Memory does not grow with the
/// number of rows.
pub struct CsvGb18030Writer {
    file: String,
    headers: Vec<String>,
    out: BufWriter<File>,
    line: String,
    rows: u64,
}

impl CsvGb18030Writer {
    /// Create `path` and write the header line.
    pub fn create(path: &Path, headers: &[&str]) -> Result<CsvGb18030Writer, FileError> {
        let file = display_name(path);
        let out = BufWriter::with_capacity(
            256 * 1024,
            File::create(path).map_err(|source| FileError::Write {
                file: file.clone(),
                source,
            })?,
        );
        let mut w = CsvGb18030Writer {
            file,
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            out,
            line: String::new(),
            rows: 0,
        };
        let header_fields: Vec<Cow<'_, str>> = headers.iter().map(|h| neutralise(h)).collect();
        w.emit(1, &header_fields)?;
        Ok(w)
    }

    /// Append one data row.
    pub fn write_row(&mut self, cells: &[Cell]) -> Result<(), FileError> {
        self.rows += 1;
        let row = u32::try_from(self.rows + 1).unwrap_or(u32::MAX);
        let fields: Vec<Cow<'_, str>> = cells.iter().map(csv_text).collect();
        self.emit(row, &fields)
    }

    /// Data rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flush and close; returns the number of data rows written.
    pub fn finish(mut self) -> Result<u64, FileError> {
        self.out.flush().map_err(|source| FileError::Write {
            file: self.file.clone(),
            source,
        })?;
        Ok(self.rows)
    }

    fn emit(&mut self, row: u32, fields: &[Cow<'_, str>]) -> Result<(), FileError> {
        self.line.clear();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            self.line.push_str(&csv_quote(f));
        }
        self.line.push_str("\r\n");
        let bytes = encode_gb18030(&self.file, row, &self.line, fields, &self.headers)?;
        self.out
            .write_all(&bytes)
            .map_err(|source| FileError::Write {
                file: self.file.clone(),
                source,
            })
    }
}

/// Write a table as CSV in GB18030: header line then one line per row, CRLF line ends,
/// RFC 4180 quoting where needed, text neutralised ([`neutralise`]), money as `1234.50`.
/// Returns the number of data rows written.
pub fn write_csv_gb18030_table(
    path: &Path,
    headers: &[&str],
    rows: impl Iterator<Item = Vec<Cell>>,
) -> Result<u64, FileError> {
    let mut w = CsvGb18030Writer::create(path, headers)?;
    for cells in rows {
        w.write_row(&cells)?;
    }
    w.finish()
}

/// Write the validation report as xlsx: sheet `校验结果`, the `title` (if not empty) in a
/// merged first row, then the bold frozen header row ([`REPORT_HEADERS`]) and one row per
/// line.
pub fn write_report_xlsx(path: &Path, title: &str, lines: &[ReportLine]) -> Result<(), FileError> {
    write_xlsx_table_titled(
        path,
        REPORT_SHEET,
        Some(title),
        &REPORT_HEADERS,
        lines.iter().map(ReportLine::cells),
    )
    .map(|_| ())
}

/// Write the validation report as GB18030 CSV with the [`REPORT_HEADERS`] columns.
pub fn write_report_csv_gb18030(path: &Path, lines: &[ReportLine]) -> Result<(), FileError> {
    write_csv_gb18030_table(path, &REPORT_HEADERS, lines.iter().map(ReportLine::cells)).map(|_| ())
}

/// Key order of the JSON report.
#[derive(Serialize)]
struct JsonLine<'a> {
    row: u32,
    column: &'a str,
    code: &'a str,
    severity: &'a str,
    follow_up: &'a str,
    message: &'a str,
    name: &'a str,
    id: &'a str,
}

/// Write the validation report as a UTF-8 JSON array of objects with the keys `row`,
/// `column`, `code`, `severity`, `follow_up`, `message`, `name`, `id` (name and id masked;
/// severity and follow_up are the Chinese labels, `code` is the stable reason code).
pub fn write_report_json(path: &Path, lines: &[ReportLine]) -> Result<(), FileError> {
    let file = display_name(path);
    let werr = |source: std::io::Error| FileError::Write {
        file: file.clone(),
        source,
    };
    let mut out = BufWriter::new(File::create(path).map_err(werr)?);
    out.write_all(b"[").map_err(werr)?;
    for (i, l) in lines.iter().enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })
            .map_err(werr)?;
        let j = JsonLine {
            row: l.row,
            column: &l.column,
            code: &l.code,
            severity: &l.severity,
            follow_up: &l.follow_up,
            message: &l.message,
            name: &l.name_masked,
            id: &l.id_masked,
        };
        serde_json::to_writer(&mut out, &j).map_err(|e| FileError::Export {
            file: file.clone(),
            detail: e.to_string(),
        })?;
    }
    out.write_all(b"\n]\n").map_err(werr)?;
    out.flush().map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralises_formula_starts_only() {
        for s in ["=1+1", "+86", "-5", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(s), format!("'{s}"));
        }
        for s in ["张三", "1=1", "", "'already"] {
            assert!(matches!(neutralise(s), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_quote("a"), "a");
        assert_eq!(csv_quote("a,b"), "\"a,b\"");
        assert_eq!(csv_quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_quote("two\r\nlines"), "\"two\r\nlines\"");
    }

    #[test]
    fn unencodable_characters_are_an_error_not_a_substitution() {
        // The WHATWG GB18030 encoder (encoding_rs) refuses U+E5E5.
        if GB18030.encode("\u{E5E5}").2 {
            let dir = std::env::temp_dir().join(format!("ykt-files-unenc-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join("u.csv");
            let e = write_csv_gb18030_table(
                &p,
                &["姓名", "说明"],
                std::iter::once(vec![Cell::from("张三"), Cell::from("x\u{E5E5}")]),
            )
            .unwrap_err();
            assert!(
                matches!(&e, FileError::Unencodable { row: 2, column, code_point, .. } if column == "说明" && code_point == "U+E5E5"),
                "{e}"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
        assert!(!GB18030.encode("张𬌗䶮·").2);
    }

    #[test]
    fn widths_count_cjk_double() {
        assert_eq!(display_width("ab"), 2.0);
        assert_eq!(display_width("张三"), 4.0);
        assert_eq!(display_width("𬌗"), 2.0);
    }
}
