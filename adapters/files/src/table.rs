//! The generic streaming table reader shared by rosters and registers: CSV (UTF-8, UTF-8 with
//! BOM, GBK, GB18030; comma or tab separated) and xlsx (first visible worksheet), yielding a
//! header and then one [`TableRow`] per non-empty row, in memory that does not grow with the
//! file.
//!
//! - CSV is decoded through a streaming decoder (`decode::DecodingReader`) and parsed by the
//!   `csv` crate; a record larger than [`MAX_RECORD_BYTES`] (an unbalanced quote swallowing
//!   the file) is an error rather than an unbounded buffer.
//! - xlsx is read with calamine's cell reader (`Xlsx::worksheet_cells_reader`), which streams
//!   the worksheet XML. That reader borrows the workbook, so it runs on a helper thread that
//!   owns the workbook and hands rows over a bounded channel; dropping the reader stops the
//!   thread at its next row. The archive's central directory is checked first against zip
//!   bombs (see the crate README). calamine keeps the shared-strings table in memory: that
//!   part of an xlsx is not streamed.

use crate::decode::{self, BudgetExceeded, DecodingReader, Detected, Malformed};
use crate::error::{FileError, display_name};
use crate::zipcheck::{self, ZipProblem};
use calamine::{DataRef, Reader, SheetType, SheetVisible, Xlsx, XlsxError};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Most columns a header may have.
pub const MAX_COLUMNS: usize = 256;
/// Most characters a cell may have.
pub const MAX_CELL_CHARS: usize = 4096;
/// Most decoded bytes one CSV record may take (8 MiB).
pub const MAX_RECORD_BYTES: u64 = 8 << 20;
/// Leading single-cell "title" rows (e.g. `2024年3月城乡低保发放清册`) skipped before the
/// header when a header recogniser is given.
pub const MAX_TITLE_ROWS: usize = 5;
/// Rows in flight between the xlsx helper thread and the reader.
const XLSX_CHANNEL_ROWS: usize = 256;
/// Most cells one xlsx row may have (Excel's column limit).
const XLSX_MAX_ROW_CELLS: usize = 16_384;

/// Text encoding of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextEncoding {
    Utf8,
    /// UTF-8 starting with a byte-order mark (Excel's "CSV UTF-8").
    Utf8Bom,
    /// GBK: detected as GB18030 without four-byte sequences in the sample; decoded as GB18030.
    Gbk,
    Gb18030,
}

impl TextEncoding {
    pub fn label(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf8Bom => "UTF-8 (BOM)",
            TextEncoding::Gbk => "GBK",
            TextEncoding::Gb18030 => "GB18030",
        }
    }
}

impl std::fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// What kind of file a table was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Xlsx,
    Csv(TextEncoding),
}

impl SourceFormat {
    pub fn label(self) -> String {
        match self {
            SourceFormat::Xlsx => "xlsx".to_owned(),
            SourceFormat::Csv(e) => format!("CSV ({})", e.label()),
        }
    }
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// One data row: its spreadsheet row number and one trimmed cell per header column
/// (`""` when empty or absent). `numeric[i]` is true when cell `i` was a number cell in an
/// xlsx (always false for CSV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    /// 1-based row number as a spreadsheet user sees it (blank lines count).
    pub row: u32,
    pub cells: Vec<String>,
    pub numeric: Vec<bool>,
}

/// A cell as a source produced it, before trimming and checks.
#[derive(Debug)]
struct RawCell {
    text: String,
    numeric: bool,
    /// An Excel error value (`#DIV/0!`...).
    error: Option<String>,
}

/// A row as a source produced it: (0-based column, cell) pairs.
#[derive(Debug)]
struct SparseRow {
    row: u32,
    cells: Vec<(u32, RawCell)>,
}

/// Trim what people and exports leave around cell text: whitespace (including the
/// ideographic space U+3000 and NBSP), byte-order marks and zero-width spaces.
pub(crate) fn clean(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}')
}

/// The generic streaming table reader. See the module documentation.
pub struct TableReader {
    file: String,
    format: SourceFormat,
    headers: Vec<String>,
    header_row: u32,
    source: Source,
    done: bool,
}

enum Source {
    Csv(Box<CsvSource>),
    Xlsx(XlsxSource),
}

impl Source {
    fn next_raw(&mut self, file: &str) -> Option<Result<SparseRow, FileError>> {
        match self {
            Source::Csv(c) => c.next_raw(file),
            Source::Xlsx(x) => x.rx.recv().ok(),
        }
    }
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader")
            .field("file", &self.file)
            .field("format", &self.format)
            .field("headers", &self.headers)
            .field("header_row", &self.header_row)
            .finish_non_exhaustive()
    }
}

impl TableReader {
    /// Open a table whose header is the first non-empty row.
    pub fn open(path: &Path) -> Result<TableReader, FileError> {
        TableReader::open_with(path, |_| true)
    }

    /// Open a table, skipping up to [`MAX_TITLE_ROWS`] leading *title rows* before the
    /// header: rows with exactly one non-empty cell whose text `recognise` does not accept as a
    /// header. Departments often put a title such as `2024年3月城乡低保发放清册` above the
    /// header; with `|_| true` the first non-empty row is always the header.
    pub fn open_with(
        path: &Path,
        recognise: impl Fn(&str) -> bool,
    ) -> Result<TableReader, FileError> {
        let file = display_name(path);
        let (format, mut source) = open_source(path, &file)?;
        let mut titles = 0usize;
        let mut first_title: Option<SparseRow> = None;
        let header = loop {
            match source.next_raw(&file) {
                None => match first_title.take() {
                    Some(t) => break t,
                    None => return Err(FileError::NoHeader { file }),
                },
                Some(Err(e)) => return Err(e),
                Some(Ok(raw)) => {
                    let texts: Vec<&str> = raw
                        .cells
                        .iter()
                        .map(|(_, c)| c.error.as_deref().unwrap_or_else(|| clean(&c.text)))
                        .filter(|t| !t.is_empty())
                        .collect();
                    if texts.is_empty() {
                        continue;
                    }
                    if texts.len() == 1 && !recognise(texts[0]) && titles < MAX_TITLE_ROWS {
                        titles += 1;
                        if first_title.is_none() {
                            first_title = Some(raw);
                        }
                        continue;
                    }
                    break raw;
                }
            }
        };
        let width = header
            .cells
            .iter()
            .filter(|(_, c)| c.error.is_some() || !clean(&c.text).is_empty())
            .map(|(i, _)| *i as usize + 1)
            .max()
            .unwrap_or(0);
        if width > MAX_COLUMNS {
            return Err(FileError::TooManyColumns {
                file,
                count: width,
                max: MAX_COLUMNS,
            });
        }
        let mut headers = vec![String::new(); width];
        for (i, c) in &header.cells {
            let i = *i as usize;
            if i < width {
                let t = c.error.as_deref().unwrap_or_else(|| clean(&c.text));
                let chars = t.chars().count();
                if chars > MAX_CELL_CHARS {
                    return Err(FileError::CellTooLarge {
                        file,
                        row: header.row,
                        column: format!("第{}列", i + 1),
                        chars,
                        max: MAX_CELL_CHARS,
                    });
                }
                headers[i] = t.to_owned();
            }
        }
        Ok(TableReader {
            file,
            format,
            headers,
            header_row: header.row,
            source,
            done: false,
        })
    }

    /// The header texts, trimmed, one per column up to the last non-empty one (`""` for a
    /// blank header cell in between).
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Row number of the header row.
    pub fn header_row(&self) -> u32 {
        self.header_row
    }

    pub fn format(&self) -> SourceFormat {
        self.format
    }

    /// The file name used in messages.
    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// The name of column `col` (0-based) in messages: its header, or `第N列`.
    pub fn column_name(&self, col: usize) -> String {
        match self.headers.get(col) {
            Some(h) if !h.is_empty() => h.clone(),
            _ => format!("第{}列", col + 1),
        }
    }

    /// The next non-empty data row. Row-level errors ([`FileError::is_row_level`]) are
    /// yielded in place of their row and reading goes on; after any other error the reader
    /// is finished.
    pub fn next_row(&mut self) -> Option<Result<TableRow, FileError>> {
        while !self.done {
            match self.source.next_raw(&self.file) {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(raw)) => match self.normalise(raw) {
                    Ok(None) => continue,
                    Ok(Some(row)) => return Some(Ok(row)),
                    Err(e) => return Some(Err(e)),
                },
            }
        }
        None
    }

    fn normalise(&self, raw: SparseRow) -> Result<Option<TableRow>, FileError> {
        let width = self.headers.len();
        let mut cells = vec![String::new(); width];
        let mut numeric = vec![false; width];
        let mut beyond = 0usize;
        let mut any = false;
        for (col, cell) in raw.cells {
            let col = col as usize;
            if let Some(detail) = cell.error {
                return Err(FileError::CellError {
                    file: self.file.clone(),
                    row: raw.row,
                    column: self.column_name(col),
                    detail,
                });
            }
            let text = clean(&cell.text);
            if text.is_empty() {
                continue;
            }
            if text.len() > MAX_CELL_CHARS {
                let chars = text.chars().count();
                if chars > MAX_CELL_CHARS {
                    return Err(FileError::CellTooLarge {
                        file: self.file.clone(),
                        row: raw.row,
                        column: self.column_name(col),
                        chars,
                        max: MAX_CELL_CHARS,
                    });
                }
            }
            any = true;
            if col >= width {
                beyond = beyond.max(col + 1);
            } else {
                cells[col] = if text.len() == cell.text.len() {
                    cell.text
                } else {
                    text.to_owned()
                };
                numeric[col] = cell.numeric;
            }
        }
        if beyond > 0 {
            return Err(FileError::RaggedRow {
                file: self.file.clone(),
                row: raw.row,
                cells: beyond,
                headers: width,
            });
        }
        Ok(any.then_some(TableRow {
            row: raw.row,
            cells,
            numeric,
        }))
    }

    /// Bytes held by the CSV decoder's buffers (for tests: must not grow with the file).
    #[doc(hidden)]
    pub fn decoder_buffer_bytes(&self) -> usize {
        match &self.source {
            Source::Csv(c) => c.rdr.get_ref().buffer_capacity(),
            Source::Xlsx(_) => 0,
        }
    }
}

impl Iterator for TableReader {
    type Item = Result<TableRow, FileError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_row()
    }
}

impl std::iter::FusedIterator for TableReader {}

const OLE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
const ZIP_MAGIC: [u8; 4] = [0x50, 0x4B, 0x03, 0x04];

fn open_source(path: &Path, file: &str) -> Result<(SourceFormat, Source), FileError> {
    let io_err = |source: io::Error| FileError::Io {
        file: file.to_owned(),
        source,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let mut sample = Vec::with_capacity(decode::SAMPLE_LEN.min(64 * 1024));
    (&mut f)
        .take(decode::SAMPLE_LEN as u64)
        .read_to_end(&mut sample)
        .map_err(io_err)?;
    let at_eof = sample.len() < decode::SAMPLE_LEN;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if sample.starts_with(&OLE_MAGIC) {
        if ext == "xlsx" || ext == "xlsm" {
            return Err(FileError::Xlsx {
                file: file.to_owned(),
                detail: "工作簿设置了打开密码（已加密），请取消密码后重新保存 (the workbook is password-protected; remove the password and save again)".to_owned(),
            });
        }
        return Err(FileError::UnsupportedXls {
            file: file.to_owned(),
        });
    }
    if ext == "xls" || ext == "et" {
        return Err(FileError::UnsupportedXls {
            file: file.to_owned(),
        });
    }
    if sample.starts_with(&ZIP_MAGIC) {
        drop(sample);
        return open_xlsx(f, file).map(|x| (SourceFormat::Xlsx, Source::Xlsx(x)));
    }
    if ext == "xlsx" || ext == "xlsm" {
        return Err(FileError::Xlsx {
            file: file.to_owned(),
            detail: "文件内容不是 zip 格式 (the content is not a zip archive)".to_owned(),
        });
    }
    let encoding = match decode::detect(&sample, at_eof) {
        Detected::Text(e) => e,
        Detected::Utf16 => {
            return Err(FileError::UnsupportedEncoding {
                file: file.to_owned(),
                encoding: "UTF-16",
            });
        }
    };
    let delimiter = detect_delimiter(&sample);
    drop(sample);
    f.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let budget = Arc::new(AtomicU64::new(0));
    let decoder = DecodingReader::new(f, encoding, budget.clone(), MAX_RECORD_BYTES);
    let rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(decoder);
    Ok((
        SourceFormat::Csv(encoding),
        Source::Csv(Box::new(CsvSource {
            rdr,
            record: csv::ByteRecord::new(),
            budget,
            prev_row: 0,
            encoding,
        })),
    ))
}

/// Comma, or tab if the header line (the first line with content) has tabs and no commas.
/// Works on raw bytes: in UTF-8, GBK and GB18030 the bytes `\t`, `,`, `\r`, `\n` only ever
/// stand for themselves.
fn detect_delimiter(sample: &[u8]) -> u8 {
    let header = sample.split(|&b| b == b'\n' || b == b'\r').find(|line| {
        line.iter()
            .any(|&b| !matches!(b, b',' | b'\t' | b' ' | 0xEF | 0xBB | 0xBF))
    });
    match header {
        Some(line) if line.contains(&b'\t') && !line.contains(&b',') => b'\t',
        _ => b',',
    }
}

struct CsvSource {
    rdr: csv::Reader<DecodingReader<File>>,
    record: csv::ByteRecord,
    budget: Arc<AtomicU64>,
    prev_row: u32,
    encoding: TextEncoding,
}

impl CsvSource {
    fn next_raw(&mut self, file: &str) -> Option<Result<SparseRow, FileError>> {
        let before = self.rdr.position().line();
        match self.rdr.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                self.budget.store(0, Ordering::Relaxed);
                // Spreadsheet row number. csv skips blank lines, which a spreadsheet shows as
                // rows, and a quoted multi-line cell is one row. The decoder turned every line
                // end into `\n`, so the parse of this record consumed, in `\n`s: the blank
                // lines before it, the line breaks inside its cells, and its own terminator
                // (absent only on an unterminated last line, hence the `max(1)`).
                let after = self.rdr.position().line();
                let inner: u64 = self
                    .record
                    .iter()
                    .map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64)
                    .sum();
                let gap = after.saturating_sub(before).saturating_sub(inner).max(1);
                let row = self
                    .prev_row
                    .saturating_add(u32::try_from(gap).unwrap_or(u32::MAX));
                self.prev_row = row;
                let mut cells = Vec::new();
                for (i, field) in self.record.iter().enumerate() {
                    if field.is_empty() {
                        continue;
                    }
                    let Ok(text) = std::str::from_utf8(field) else {
                        return Some(Err(FileError::Encoding {
                            file: file.to_owned(),
                            row: Some(row),
                            encoding: self.encoding,
                        }));
                    };
                    let col = u32::try_from(i).unwrap_or(u32::MAX);
                    cells.push((
                        col,
                        RawCell {
                            text: text.to_owned(),
                            numeric: false,
                            error: None,
                        },
                    ));
                }
                Some(Ok(SparseRow { row, cells }))
            }
            Err(e) => Some(Err(self.map_error(e, file))),
        }
    }

    fn map_error(&self, e: csv::Error, file: &str) -> FileError {
        let next_row = self.prev_row.saturating_add(1);
        match e.into_kind() {
            csv::ErrorKind::Io(io) => {
                if let Some(m) = io.get_ref().and_then(|i| i.downcast_ref::<Malformed>()) {
                    FileError::Encoding {
                        file: file.to_owned(),
                        row: Some(u32::try_from(m.line).unwrap_or(u32::MAX)),
                        encoding: self.encoding,
                    }
                } else if io
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<BudgetExceeded>())
                    .is_some()
                {
                    FileError::RowTooLarge {
                        file: file.to_owned(),
                        row: next_row,
                        max_mib: MAX_RECORD_BYTES >> 20,
                    }
                } else {
                    FileError::Io {
                        file: file.to_owned(),
                        source: io,
                    }
                }
            }
            csv::ErrorKind::Utf8 { .. } => FileError::Encoding {
                file: file.to_owned(),
                row: Some(next_row),
                encoding: self.encoding,
            },
            other => FileError::Io {
                file: file.to_owned(),
                source: io::Error::other(format!("CSV: {other:?}")),
            },
        }
    }
}

struct XlsxSource {
    rx: Receiver<Result<SparseRow, FileError>>,
}

fn open_xlsx(mut f: File, file: &str) -> Result<XlsxSource, FileError> {
    match zipcheck::check(&mut f) {
        Ok(()) => {}
        Err(ZipProblem::Corrupt(what)) => {
            return Err(FileError::Xlsx {
                file: file.to_owned(),
                detail: format!("zip 结构损坏 (corrupt zip: {what})"),
            });
        }
        Err(ZipProblem::TooLarge {
            entry,
            uncompressed,
            compressed,
        }) => {
            return Err(FileError::XlsxTooLarge {
                file: file.to_owned(),
                entry,
                detail: format!("{uncompressed} / {compressed} bytes"),
            });
        }
    }
    f.seek(SeekFrom::Start(0)).map_err(|source| FileError::Io {
        file: file.to_owned(),
        source,
    })?;
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Xlsx::new(BufReader::new(f))
    }));
    let mut workbook = match opened {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => {
            return Err(FileError::Xlsx {
                file: file.to_owned(),
                detail: xlsx_detail(&e),
            });
        }
        Err(_) => return Err(internal_xlsx_error(file)),
    };
    let sheets = workbook.sheets_metadata();
    let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
    let sheet = worksheets()
        .find(|s| s.visible == SheetVisible::Visible)
        .or_else(|| worksheets().next())
        .map(|s| s.name.clone())
        .ok_or_else(|| FileError::NoWorksheet {
            file: file.to_owned(),
        })?;
    let (tx, rx) = sync_channel(XLSX_CHANNEL_ROWS);
    let file_owned = file.to_owned();
    std::thread::Builder::new()
        .name("ykt-xlsx-reader".to_owned())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                stream_sheet(&mut workbook, &sheet, &file_owned, &tx)
            }));
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e));
                }
                Err(_) => {
                    let _ = tx.send(Err(internal_xlsx_error(&file_owned)));
                }
            }
        })
        .map_err(|source| FileError::Io {
            file: file.to_owned(),
            source,
        })?;
    Ok(XlsxSource { rx })
}

fn internal_xlsx_error(file: &str) -> FileError {
    FileError::Xlsx {
        file: file.to_owned(),
        detail: "工作簿内容损坏，读取失败 (corrupt workbook content: the reader failed)".to_owned(),
    }
}

/// calamine's message, with long digit runs masked: a few of its messages quote cell text,
/// which may be a resident ID, account or phone number.
fn xlsx_detail(e: &XlsxError) -> String {
    if matches!(e, XlsxError::Password) {
        return "工作簿设置了密码保护 (the workbook is password-protected)".to_owned();
    }
    redact_digits(&e.to_string())
}

/// Replace every run of 6 or more digits by `*`s of the same length.
pub(crate) fn redact_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 6 {
            out.extend(run.chars().map(|_| '*'));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Runs on the helper thread: read cells in document order, group them into rows, send.
/// Returns early and quietly when the reader has been dropped.
fn stream_sheet(
    workbook: &mut Xlsx<BufReader<File>>,
    sheet: &str,
    file: &str,
    tx: &SyncSender<Result<SparseRow, FileError>>,
) -> Result<(), FileError> {
    let xerr = |e: XlsxError| FileError::Xlsx {
        file: file.to_owned(),
        detail: xlsx_detail(&e),
    };
    let mut cells = workbook.worksheet_cells_reader(sheet).map_err(xerr)?;
    let mut current: Option<SparseRow> = None;
    loop {
        match cells.next_cell() {
            Ok(Some(cell)) => {
                let (r, c) = cell.get_position();
                let row = r.saturating_add(1);
                if current.as_ref().is_some_and(|cur| cur.row != row)
                    && let Some(done) = current.take()
                    && tx.send(Ok(done)).is_err()
                {
                    return Ok(());
                }
                let cur = current.get_or_insert_with(|| SparseRow {
                    row,
                    cells: Vec::new(),
                });
                if let Some(v) = convert_cell(cell.get_value()) {
                    if cur.cells.len() >= XLSX_MAX_ROW_CELLS {
                        return Err(FileError::Xlsx {
                            file: file.to_owned(),
                            detail: format!(
                                "第{row}行单元格超过 {XLSX_MAX_ROW_CELLS} 个 (row {row} has more than {XLSX_MAX_ROW_CELLS} cells)"
                            ),
                        });
                    }
                    cur.cells.push((c, v));
                }
            }
            Ok(None) => {
                if let Some(done) = current.take() {
                    let _ = tx.send(Ok(done));
                }
                return Ok(());
            }
            Err(e) => {
                if let Some(done) = current.take()
                    && tx.send(Ok(done)).is_err()
                {
                    return Ok(());
                }
                return Err(xerr(e));
            }
        }
    }
}

/// Text of an xlsx cell (see the crate README for the rules).
fn convert_cell(v: &DataRef<'_>) -> Option<RawCell> {
    let text = |t: String| {
        Some(RawCell {
            text: t,
            numeric: false,
            error: None,
        })
    };
    match v {
        DataRef::Empty => None,
        DataRef::String(s) => text(s.clone()),
        DataRef::SharedString(s) => text((*s).to_owned()),
        DataRef::Float(f) => Some(RawCell {
            text: format_float(*f),
            numeric: true,
            error: None,
        }),
        DataRef::Int(i) => Some(RawCell {
            text: i.to_string(),
            numeric: true,
            error: None,
        }),
        DataRef::Bool(b) => text(if *b { "是" } else { "否" }.to_owned()),
        DataRef::DateTime(dt) => {
            let serial = dt.as_f64();
            // calamine's conversion casts to u64 and adds an epoch offset: keep it to Excel's
            // own range (0 up to 9999-12-31; +1462 covers the 1904 date system).
            if dt.is_datetime()
                && serial.is_finite()
                && (0.0..2_958_466.0 + 1462.0).contains(&serial)
            {
                let (y, m, d, ..) = dt.to_ymd_hms_milli();
                text(format!("{y:04}-{m:02}-{d:02}"))
            } else {
                text(format_float(serial))
            }
        }
        DataRef::DateTimeIso(s) => {
            let date = s
                .get(..10)
                .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
            text(date.unwrap_or(s).to_owned())
        }
        DataRef::DurationIso(s) => text(s.clone()),
        DataRef::Error(e) => Some(RawCell {
            text: String::new(),
            numeric: false,
            error: Some(e.to_string()),
        }),
    }
}

/// A number as Excel displays it in the General format: Rust's shortest round-trip form
/// (`300.01`, `300`, never an exponent), but rounded to Excel's 15 significant digits when it
/// has more, so a formula result stored as `0.30000000000000004` reads as `0.3`.
pub(crate) fn format_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_owned();
    }
    if !f.is_finite() {
        return f.to_string();
    }
    let s = format!("{f}");
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    if significant <= 15 {
        return s;
    }
    match format!("{f:.14e}").parse::<f64>() {
        Ok(r) => format!("{r}"),
        Err(_) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_excel_general() {
        assert_eq!(format_float(300.01), "300.01");
        assert_eq!(format_float(300.0), "300");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(1.10101199001011e17), "110101199001011000");
        assert_eq!(format_float(123456789012.0), "123456789012");
        assert_eq!(format_float(1e-7), "0.0000001");
    }

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter(b"\n\na\tb\tc\n1\t2,3"), b'\t');
        assert_eq!(detect_delimiter(b"a,b\tc\n"), b',');
        assert_eq!(detect_delimiter(b",,,\r\na\tb\r\n"), b'\t');
        assert_eq!(detect_delimiter(b""), b',');
    }

    #[test]
    fn redacts_long_digit_runs() {
        assert_eq!(
            redact_digits("cell 110101199003077777 at A2"),
            "cell ****************** at A2"
        );
        assert_eq!(redact_digits("row 12345"), "row 12345");
    }

    #[test]
    fn clean_trims_full_width_and_bom() {
        assert_eq!(clean("\u{feff}\u{3000} 张三\u{3000}\u{200b}"), "张三");
    }
}
