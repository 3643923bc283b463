//! The generic streaming table reader shared by rosters and registers: CSV (UTF-8, UTF-8 with
//! BOM, GBK, GB18030; comma or tab separated) and xlsx (first visible worksheet), yielding a
//! header and then one [`TableRow`] per non-empty row, in memory that does not grow with the
//! file.
//!
//! - CSV is decoded through a streaming decoder (`decode::DecodingReader`) and split into
//!   records and fields in place, by the `csv` crate's rules (`CsvSource`); a record larger
//!   than [`MAX_RECORD_BYTES`] (an unbalanced quote swallowing the file) is an error rather
//!   than an unbounded buffer.
//! - xlsx is read with calamine's cell reader (`Xlsx::worksheet_cells_reader`), which streams
//!   the worksheet XML. That reader borrows the workbook, so it runs on a helper thread that
//!   owns the workbook and hands rows over a bounded channel; dropping the reader stops the
//!   thread at its next row. The archive's central directory is checked first against zip
//!   bombs (see the crate README). calamine keeps the shared-strings table in memory: that
//!   part of an xlsx is not streamed.

use crate::decode::{self, DecodingReader, Detected, Malformed};
use crate::error::{FileError, display_name};
use crate::zipcheck::{self, ZipProblem};
use calamine::{DataRef, Reader, SheetType, SheetVisible, Xlsx, XlsxError};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
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

/// A data row held in the reader's reusable buffer, so reading a row allocates nothing once
/// the buffer has grown: per header column the byte range of its trimmed text, in `text`
/// (xlsx) or in the CSV source's current record. [`TableReader::current`] lends it as a
/// [`RowView`].
#[derive(Debug, Default)]
struct RowBuf {
    /// 1-based row number as a spreadsheet user sees it.
    row: u32,
    text: String,
    /// Per header column: the byte range of its text (empty when blank).
    spans: Vec<(u32, u32)>,
    numeric: Vec<bool>,
}

/// The current data row of a [`TableReader`], borrowed: [`TableReader::next_row`] copies it
/// into an owned [`TableRow`]; the roster and register readers read it in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowView<'a> {
    /// 1-based row number as a spreadsheet user sees it.
    pub row: u32,
    text: &'a str,
    spans: &'a [(u32, u32)],
    numeric: &'a [bool],
}

impl RowBuf {
    fn reset(&mut self, row: u32, width: usize) {
        self.row = row;
        self.text.clear();
        self.spans.clear();
        self.spans.resize(width, (0, 0));
        self.numeric.clear();
        self.numeric.resize(width, false);
    }

    fn set(&mut self, col: usize, text: &str, numeric: bool) {
        let start = self.text.len();
        self.text.push_str(text);
        // A row is at most MAX_RECORD_BYTES (CSV) or XLSX_MAX_ROW_CELLS × MAX_CELL_CHARS
        // characters: well within u32.
        let span = (
            u32::try_from(start).unwrap_or(u32::MAX),
            u32::try_from(self.text.len()).unwrap_or(u32::MAX),
        );
        self.spans[col] = span;
        self.numeric[col] = numeric;
    }

    /// Cell `col` is `start..end` of the CSV record's text (not a number cell).
    fn set_range(&mut self, col: usize, start: usize, end: usize) {
        // A record is at most MAX_RECORD_BYTES: well within u32.
        self.spans[col] = (
            u32::try_from(start).unwrap_or(u32::MAX),
            u32::try_from(end).unwrap_or(u32::MAX),
        );
    }

    fn view<'a>(&'a self, text: &'a str) -> RowView<'a> {
        RowView {
            row: self.row,
            text,
            spans: &self.spans,
            numeric: &self.numeric,
        }
    }
}

impl<'a> RowView<'a> {
    /// Number of cells (the header's width).
    pub fn width(&self) -> usize {
        self.spans.len()
    }

    /// The trimmed text of cell `col` (`""` when blank or beyond the header).
    pub fn cell(&self, col: usize) -> &'a str {
        self.spans
            .get(col)
            .and_then(|&(a, b)| self.text.get(a as usize..b as usize))
            .unwrap_or("")
    }

    /// Whether cell `col` was a number cell in an xlsx.
    pub fn numeric(&self, col: usize) -> bool {
        self.numeric.get(col).copied().unwrap_or(false)
    }

    fn to_row(&self) -> TableRow {
        TableRow {
            row: self.row,
            cells: (0..self.width()).map(|i| self.cell(i).to_owned()).collect(),
            numeric: self.numeric.to_vec(),
        }
    }
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
    let (a, b) = clean_range(s);
    s.get(a..b).unwrap_or("")
}

/// Whether [`clean`] trims `c`.
fn trimmed_char(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}'
}

/// The byte range of `s` that [`clean`] keeps.
fn clean_range(s: &str) -> (usize, usize) {
    // Most cells begin and end with a visible ASCII character (digits, codes): nothing to
    // trim, no characters to decode. ASCII whitespace is exactly `\t \n \x0b \x0c \r` and the
    // space, so any other ASCII byte at both ends leaves `trim_matches` below nothing to do.
    let visible = |b: u8| b.is_ascii() && !matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ');
    match s.as_bytes() {
        [first, .., last] if visible(*first) && visible(*last) => return (0, s.len()),
        [only] if visible(*only) => return (0, s.len()),
        _ => {}
    }
    // Otherwise (a name or other text in Chinese, mostly): the first byte of a character
    // `clean` trims is ASCII whitespace, or 0xC2 (U+0085, U+00A0), 0xE1 (U+1680), 0xE2
    // (U+2000-U+205F, U+200B), 0xE3 (U+3000) or 0xEF (U+FEFF).
    let may_trim =
        |b: u8| !visible(b) && (b.is_ascii() || matches!(b, 0xC2 | 0xE1 | 0xE2 | 0xE3 | 0xEF));
    let bytes = s.as_bytes();
    let last_start = (0..bytes.len())
        .rev()
        .find(|&i| (bytes[i] & 0xC0) != 0x80)
        .unwrap_or(0);
    match (bytes.first(), bytes.get(last_start)) {
        (Some(&first), Some(&last)) if !may_trim(first) && !may_trim(last) => return (0, s.len()),
        _ => {}
    }
    let mut start = 0;
    for c in s.chars() {
        if !trimmed_char(c) {
            break;
        }
        start += c.len_utf8();
    }
    let mut end = s.len();
    for c in s[start..].chars().rev() {
        if !trimmed_char(c) {
            break;
        }
        end -= c.len_utf8();
    }
    (start, end)
}

/// How many times `byte` occurs in `bytes` (vectorised by the compiler).
pub(crate) fn count_byte(bytes: &[u8], byte: u8) -> u64 {
    bytes.iter().map(|&b| u64::from(b == byte)).sum()
}

/// The generic streaming table reader. See the module documentation.
pub struct TableReader {
    file: String,
    format: SourceFormat,
    headers: Vec<String>,
    header_row: u32,
    source: Source,
    done: bool,
    buf: RowBuf,
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
            buf: RowBuf::default(),
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
        column_name(&self.headers, col)
    }

    /// The next non-empty data row. Row-level errors ([`FileError::is_row_level`]) are
    /// yielded in place of their row and reading goes on; after any other error the reader
    /// is finished.
    pub fn next_row(&mut self) -> Option<Result<TableRow, FileError>> {
        self.advance().map(|r| r.map(|()| self.current().to_row()))
    }

    /// Read the next non-empty data row into the reader's buffer ([`TableReader::current`]),
    /// with the same errors as [`TableReader::next_row`] but no allocation per cell.
    pub(crate) fn advance(&mut self) -> Option<Result<(), FileError>> {
        while !self.done {
            let filled = match &mut self.source {
                Source::Csv(c) => match c.next_record(&self.file) {
                    None => None,
                    Some(Err(e)) => Some(Err(e)),
                    Some(Ok(row)) => {
                        Some(Ok(c.fill(row, &self.file, &self.headers, &mut self.buf)))
                    }
                },
                Source::Xlsx(x) => match x.rx.recv().ok() {
                    None => None,
                    Some(Err(e)) => Some(Err(e)),
                    Some(Ok(raw)) => Some(Ok(fill_sparse(
                        raw,
                        &self.file,
                        &self.headers,
                        &mut self.buf,
                    ))),
                },
            };
            match filled {
                None => self.done = true,
                // The source failed: the reader is finished.
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                // A row-level problem: reported in place of the row.
                Some(Ok(Err(e))) => return Some(Err(e)),
                Some(Ok(Ok(false))) => continue,
                Some(Ok(Ok(true))) => return Some(Ok(())),
            }
        }
        None
    }

    /// The row [`TableReader::advance`] read last.
    pub(crate) fn current(&self) -> RowView<'_> {
        match &self.source {
            Source::Csv(c) => self.buf.view(c.record_str()),
            Source::Xlsx(_) => self.buf.view(&self.buf.text),
        }
    }

    /// Bytes held by the CSV decoder's buffers (for tests: must not grow with the file).
    #[doc(hidden)]
    pub fn decoder_buffer_bytes(&self) -> usize {
        match &self.source {
            Source::Csv(c) => c.decoder.buffer_capacity(),
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

/// The name of column `col` (0-based) in messages: its header, or `第N列`.
fn column_name(headers: &[String], col: usize) -> String {
    match headers.get(col) {
        Some(h) if !h.is_empty() => h.clone(),
        _ => format!("第{}列", col + 1),
    }
}

/// Checks shared by every source for one non-error cell: its trimmed text, or the row-level
/// error of an oversized cell.
fn checked_cell<'t>(
    text: &'t str,
    row: u32,
    col: usize,
    file: &str,
    headers: &[String],
) -> Result<&'t str, FileError> {
    let (a, b) = checked_cell_range(text, row, col, file, headers)?;
    Ok(text.get(a..b).unwrap_or(""))
}

/// [`checked_cell`] as the byte range of `text` it keeps.
fn checked_cell_range(
    text: &str,
    row: u32,
    col: usize,
    file: &str,
    headers: &[String],
) -> Result<(usize, usize), FileError> {
    let (a, b) = clean_range(text);
    let text = text.get(a..b).unwrap_or("");
    if text.len() > MAX_CELL_CHARS {
        let chars = text.chars().count();
        if chars > MAX_CELL_CHARS {
            return Err(FileError::CellTooLarge {
                file: file.to_owned(),
                row,
                column: column_name(headers, col),
                chars,
                max: MAX_CELL_CHARS,
            });
        }
    }
    Ok((a, b))
}

fn ragged(file: &str, row: u32, beyond: usize, headers: &[String]) -> FileError {
    FileError::RaggedRow {
        file: file.to_owned(),
        row,
        cells: beyond,
        headers: headers.len(),
    }
}

/// Put an xlsx row into `buf`: `Ok(false)` for a row with no content. Errors are row-level.
fn fill_sparse(
    raw: SparseRow,
    file: &str,
    headers: &[String],
    buf: &mut RowBuf,
) -> Result<bool, FileError> {
    let width = headers.len();
    buf.reset(raw.row, width);
    let mut beyond = 0usize;
    let mut any = false;
    for (col, cell) in raw.cells {
        let col = col as usize;
        if let Some(detail) = cell.error {
            return Err(FileError::CellError {
                file: file.to_owned(),
                row: raw.row,
                column: column_name(headers, col),
                detail,
            });
        }
        let text = checked_cell(&cell.text, raw.row, col, file, headers)?;
        if text.is_empty() {
            continue;
        }
        any = true;
        if col >= width {
            beyond = beyond.max(col + 1);
        } else {
            buf.set(col, text, cell.numeric);
        }
    }
    if beyond > 0 {
        return Err(ragged(file, raw.row, beyond, headers));
    }
    Ok(any)
}

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
                detail: "文件是 OLE 复合文档：工作簿设置了打开密码（已加密），或是改了扩展名的旧版 .xls；请取消密码、另存为 .xlsx 后重新上传 (an OLE compound file: a password-protected workbook, or an old .xls renamed; remove the password or save as .xlsx and upload again)".to_owned(),
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
    let decoder = DecodingReader::new(f, encoding);
    Ok((
        SourceFormat::Csv(encoding),
        Source::Csv(Box::new(CsvSource::new(decoder, delimiter, encoding))),
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

/// The CSV reader: splits the decoder's text into records and fields in place, with the
/// `csv` crate's rules (RFC 4180 quoting, `""` inside quotes, blank lines skipped, ragged
/// records allowed) but no copy of the record: a record without quotes (nearly all) is read
/// as its line of the decoded text, its fields as byte ranges of it.
struct CsvSource {
    decoder: DecodingReader<File>,
    delimiter: u8,
    /// Decoded text, line ends normalised to `\n`; `pos..` not parsed yet.
    text: String,
    pos: usize,
    /// The decoder has no more text.
    eof: bool,
    /// The current record: `text[rec.0..rec.1]` when `quoted` is false, else `unquoted`.
    rec: (usize, usize),
    quoted: bool,
    /// The current record's fields with quotes removed (records with quotes only).
    unquoted: String,
    /// Byte ranges of the current record's fields in [`CsvSource::record_str`].
    fields: Vec<(usize, usize)>,
    prev_row: u32,
    encoding: TextEncoding,
}

/// The state of the CSV grammar inside a record (the `csv_core` states a record goes
/// through with `\n` as terminator and `"` as quote, doubled to escape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    StartField,
    InField,
    InQuoted,
    /// A `"` inside a quoted field: the end of the quotes, or the first of `""`.
    QuoteInQuoted,
}

/// What a byte does in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LexStep {
    /// Part of the field's text.
    Copy,
    /// A quote that is not text.
    Skip,
    EndField,
    EndRecord,
}

impl Lex {
    fn step(self, b: u8, delimiter: u8) -> (Lex, LexStep) {
        match self {
            Lex::StartField if b == b'"' => (Lex::InQuoted, LexStep::Skip),
            Lex::StartField | Lex::InField | Lex::QuoteInQuoted if b == delimiter => {
                (Lex::StartField, LexStep::EndField)
            }
            Lex::StartField | Lex::InField | Lex::QuoteInQuoted if b == b'\n' => {
                (Lex::StartField, LexStep::EndRecord)
            }
            Lex::InQuoted if b == b'"' => (Lex::QuoteInQuoted, LexStep::Skip),
            Lex::QuoteInQuoted if b == b'"' => (Lex::InQuoted, LexStep::Copy),
            Lex::InQuoted => (Lex::InQuoted, LexStep::Copy),
            Lex::StartField | Lex::InField | Lex::QuoteInQuoted => (Lex::InField, LexStep::Copy),
        }
    }
}

/// The bytes of `word` equal to `b`: the high bit of each such byte (exact, no borrow
/// between bytes).
fn bytes_equal(word: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let x = word ^ (u64::from(b) * 0x0101_0101_0101_0101);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Split the line starting at `bytes[start]` at `delimiter` into `fields` (ranges relative
/// to `start`), eight bytes at a time: the position of its `\n`, or `None` when a quote
/// comes first or the text ends before a line end (`fields` is then incomplete).
fn split_line(
    bytes: &[u8],
    start: usize,
    delimiter: u8,
    fields: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    fields.clear();
    let mut field_start = 0;
    let mut i = start;
    let mut push = |at: usize, fields: &mut Vec<(usize, usize)>| {
        fields.push((field_start, at - start));
        field_start = at - start + 1;
    };
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let word = u64::from_le_bytes(w);
        let stop = bytes_equal(word, b'\n') | bytes_equal(word, b'"');
        let mut delims = bytes_equal(word, delimiter);
        if stop != 0 {
            let first = stop.trailing_zeros() / 8;
            delims &= (1u64 << (first * 8)) - 1;
        }
        while delims != 0 {
            push(i + (delims.trailing_zeros() / 8) as usize, fields);
            delims &= delims - 1;
        }
        if stop != 0 {
            let at = i + (stop.trailing_zeros() / 8) as usize;
            if bytes[at] == b'"' {
                return None;
            }
            push(at, fields);
            return Some(at);
        }
        i += 8;
    }
    for (at, &b) in bytes.iter().enumerate().skip(i) {
        if b == b'"' {
            return None;
        }
        if b == b'\n' {
            push(at, fields);
            return Some(at);
        }
        if b == delimiter {
            push(at, fields);
        }
    }
    None
}

impl CsvSource {
    fn new(decoder: DecodingReader<File>, delimiter: u8, encoding: TextEncoding) -> CsvSource {
        CsvSource {
            decoder,
            delimiter,
            text: String::with_capacity(128 * 1024),
            pos: 0,
            eof: false,
            rec: (0, 0),
            quoted: false,
            unquoted: String::new(),
            fields: Vec::new(),
            prev_row: 0,
            encoding,
        }
    }

    /// Append the decoder's next block to `text`, first dropping what was parsed. Positions
    /// before `self.pos` are invalid afterwards; returns how far the text moved.
    fn more(&mut self, file: &str) -> Result<usize, FileError> {
        let moved = self.pos;
        if moved > 0 {
            self.text.drain(..moved);
            self.pos = 0;
        }
        match self.decoder.fill(&mut self.text) {
            Ok(more) => self.eof = !more,
            Err(e) => return Err(self.io_error(e, file)),
        }
        Ok(moved)
    }

    /// Read the next record: its spreadsheet row number. `None` at the end of the file.
    fn next_record(&mut self, file: &str) -> Option<Result<u32, FileError>> {
        let mut blank = 0u64;
        // Where the search for the record's end resumes, and the grammar's state there
        // (`None`: no quote met yet, the end is the next `\n`).
        let mut scan: Option<(usize, Lex)> = None;
        let (end, terminated) = loop {
            let bytes = self.text.as_bytes();
            if scan.is_none() {
                // Blank lines: `csv` skips them; a spreadsheet shows them as rows.
                while bytes.get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                    blank += 1;
                }
            }
            if self.pos < bytes.len() {
                let found = match scan {
                    None => match split_line(bytes, self.pos, self.delimiter, &mut self.fields) {
                        Some(line_end) => Some((line_end + 1, true)),
                        // A quote, or the end of the text before a line end: the record is
                        // read by the grammar, from its start.
                        None => {
                            scan = Some((self.pos, Lex::StartField));
                            None
                        }
                    },
                    Some(_) => None,
                };
                if let Some(f) = found {
                    self.quoted = false;
                    break f;
                }
                if let Some((at, lex)) = scan.as_mut() {
                    let mut i = *at;
                    let mut state = *lex;
                    let mut done = None;
                    while i < bytes.len() {
                        let (next, step) = state.step(bytes[i], self.delimiter);
                        state = next;
                        i += 1;
                        if step == LexStep::EndRecord {
                            done = Some(i);
                            break;
                        }
                    }
                    *at = i;
                    *lex = state;
                    if let Some(end) = done {
                        self.quoted = true;
                        break (end, true);
                    }
                }
            } else if scan.is_none() && self.eof {
                return None;
            }
            // The record goes on past the text decoded so far.
            if self.eof {
                // Only a quoted field can be open at the end (the decoder ends the text
                // with a line end): the record ends with the file, as for `csv`.
                self.quoted = true;
                break (self.text.len(), false);
            }
            if (self.text.len() - self.pos) as u64 > MAX_RECORD_BYTES {
                return Some(Err(FileError::RowTooLarge {
                    file: file.to_owned(),
                    row: self.prev_row.saturating_add(1),
                    max_mib: MAX_RECORD_BYTES >> 20,
                }));
            }
            match self.more(file) {
                Ok(moved) => {
                    if let Some((at, _)) = scan.as_mut() {
                        *at -= moved;
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        };
        let start = self.pos;
        self.pos = end;
        // Spreadsheet row number: the blank lines before the record and the record itself (a
        // quoted multi-line cell is one row); a record cut by the end of the file is no row
        // of its own, as `csv`'s line count gave.
        let gap = (blank + u64::from(terminated)).max(1);
        let row = self
            .prev_row
            .saturating_add(u32::try_from(gap).unwrap_or(u32::MAX));
        self.prev_row = row;
        if self.quoted {
            if let Err(e) = self.unquote(start, end, file, row) {
                return Some(Err(e));
            }
        } else {
            // The line without its `\n`; `split_line` gave its fields.
            self.rec = (start, end - 1);
        }
        Some(Ok(row))
    }

    /// Split the record `text[start..end]`, which has quotes, into `unquoted` and `fields`.
    fn unquote(&mut self, start: usize, end: usize, file: &str, row: u32) -> Result<(), FileError> {
        self.unquoted.clear();
        self.fields.clear();
        let bytes = &self.text.as_bytes()[start..end];
        let rec = self
            .text
            .get(start..end)
            .ok_or_else(|| self.encoding_error(file, row))?;
        let mut state = Lex::StartField;
        // The run of text bytes being copied, and where the field begins in `unquoted`.
        let mut run: Option<usize> = None;
        let mut field_start = 0;
        let mut ended = false;
        for (i, &b) in bytes.iter().enumerate() {
            let (next, step) = state.step(b, self.delimiter);
            state = next;
            if step == LexStep::Copy {
                run.get_or_insert(i);
                continue;
            }
            // Runs end at ASCII bytes: always character boundaries.
            if let Some(r) = run.take() {
                self.unquoted.push_str(
                    rec.get(r..i)
                        .ok_or_else(|| self.encoding_error(file, row))?,
                );
            }
            match step {
                LexStep::EndField | LexStep::EndRecord => {
                    self.fields.push((field_start, self.unquoted.len()));
                    field_start = self.unquoted.len();
                    if step == LexStep::EndRecord {
                        ended = true;
                        break;
                    }
                }
                LexStep::Copy | LexStep::Skip => {}
            }
        }
        if !ended {
            if let Some(r) = run.take() {
                self.unquoted
                    .push_str(rec.get(r..).ok_or_else(|| self.encoding_error(file, row))?);
            }
            self.fields.push((field_start, self.unquoted.len()));
        }
        Ok(())
    }

    /// The text the current record's field ranges point into.
    fn record_str(&self) -> &str {
        if self.quoted {
            &self.unquoted
        } else {
            self.text.get(self.rec.0..self.rec.1).unwrap_or("")
        }
    }

    fn encoding_error(&self, file: &str, row: u32) -> FileError {
        FileError::Encoding {
            file: file.to_owned(),
            row: Some(row),
            encoding: self.encoding,
        }
    }

    /// Field `i` of the current record. Fields are split at ASCII bytes, so a field split
    /// inside a character cannot happen (and would be `None`).
    fn field(&self, i: usize) -> Option<&str> {
        let (a, b) = *self.fields.get(i)?;
        self.record_str().get(a..b)
    }

    /// The current record as a sparse row (for the header search).
    fn next_raw(&mut self, file: &str) -> Option<Result<SparseRow, FileError>> {
        let row = match self.next_record(file)? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        let mut cells = Vec::new();
        let n = self.fields.len();
        for i in 0..n {
            let Some(text) = self.field(i) else {
                return Some(Err(self.encoding_error(file, row)));
            };
            if text.is_empty() {
                continue;
            }
            if cells.len() > MAX_COLUMNS {
                // Too wide to be a header (issue #9: a header of 10^6 columns took 200 MB
                // as one String per cell). Keep only the last non-empty cell, which gives
                // the width the error reports.
                let last = (i..n)
                    .rev()
                    .find(|&j| self.field(j).is_some_and(|t| !clean(t).is_empty()))
                    .unwrap_or(i);
                cells.truncate(MAX_COLUMNS);
                cells.push((
                    u32::try_from(last).unwrap_or(u32::MAX),
                    RawCell {
                        text: self.field(last).unwrap_or_default().to_owned(),
                        numeric: false,
                        error: None,
                    },
                ));
                break;
            }
            cells.push((
                u32::try_from(i).unwrap_or(u32::MAX),
                RawCell {
                    text: text.to_owned(),
                    numeric: false,
                    error: None,
                },
            ));
        }
        Some(Ok(SparseRow { row, cells }))
    }

    /// Put the current record's cell ranges into `buf` (its text stays in the source:
    /// [`CsvSource::record_str`]): `Ok(false)` for a record with no content. Errors are
    /// row-level.
    fn fill(
        &self,
        row: u32,
        file: &str,
        headers: &[String],
        buf: &mut RowBuf,
    ) -> Result<bool, FileError> {
        let width = headers.len();
        buf.reset(row, width);
        let record = self.record_str();
        let mut beyond = 0usize;
        let mut any = false;
        for (i, &(a, b)) in self.fields.iter().enumerate() {
            if a == b {
                continue;
            }
            let Some(field) = record.get(a..b) else {
                return Err(self.encoding_error(file, row));
            };
            let (ta, tb) = checked_cell_range(field, row, i, file, headers)?;
            if ta == tb {
                continue;
            }
            any = true;
            if i >= width {
                beyond = beyond.max(i + 1);
            } else {
                buf.set_range(i, a + ta, a + tb);
            }
        }
        if beyond > 0 {
            return Err(ragged(file, row, beyond, headers));
        }
        Ok(any)
    }

    /// The error of a failed decoder read: a malformed byte is [`FileError::Encoding`] on
    /// its line.
    fn io_error(&self, io: io::Error, file: &str) -> FileError {
        if let Some(m) = io.get_ref().and_then(|i| i.downcast_ref::<Malformed>()) {
            FileError::Encoding {
                file: file.to_owned(),
                row: Some(u32::try_from(m.line).unwrap_or(u32::MAX)),
                encoding: self.encoding,
            }
        } else {
            FileError::Io {
                file: file.to_owned(),
                source: io,
            }
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
        Err(ZipProblem::Lies {
            entry,
            declared,
            inflated,
        }) => {
            return Err(FileError::XlsxTooLarge {
                file: file.to_owned(),
                entry,
                detail: format!(
                    "声明解压后{declared}字节，实际解压已超过{inflated}字节，文件的压缩目录与内容不符 (declares {declared} bytes, inflates to more than {inflated})"
                ),
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
    use proptest::prelude::*;

    /// Records as the `csv` crate reads `text` (what the reader used before its own
    /// splitter), with the row numbers the reader derived from `csv`'s line count.
    fn csv_crate_records(text: &str) -> Vec<(u32, Vec<String>)> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        let mut prev_row = 0u32;
        loop {
            let before = rdr.position().line();
            if !rdr.read_byte_record(&mut record).unwrap() {
                return out;
            }
            let after = rdr.position().line();
            let inner = count_byte(record.as_slice(), b'\n');
            let gap = after.saturating_sub(before).saturating_sub(inner).max(1);
            prev_row += gap as u32;
            let fields = record
                .iter()
                .map(|f| String::from_utf8(f.to_vec()).unwrap())
                .collect();
            out.push((prev_row, fields));
        }
    }

    fn splitter_records(text: &str) -> Vec<(u32, Vec<String>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        let f = File::open(&path).unwrap();
        let mut c = CsvSource::new(
            DecodingReader::new(f, TextEncoding::Utf8),
            b',',
            TextEncoding::Utf8,
        );
        let mut out = Vec::new();
        while let Some(row) = c.next_record("t.csv") {
            let row = row.unwrap();
            let fields = (0..c.fields.len())
                .map(|i| c.field(i).unwrap().to_owned())
                .collect();
            out.push((row, fields));
        }
        out
    }

    proptest! {
        /// The splitter reads every text as the `csv` crate did: the same records, fields
        /// and row numbers (quotes, doubled quotes, blank lines, a quote left open).
        #[test]
        fn splitter_reads_like_the_csv_crate(parts in proptest::collection::vec(
            prop_oneof![Just("a"), Just("张三"), Just(","), Just("\""), Just("\n"), Just(" "), Just("\"\""), Just("\n\n")],
            0..40,
        )) {
            let mut text: String = parts.concat();
            // The decoder ends the text with a line end.
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            prop_assert_eq!(splitter_records(&text), csv_crate_records(&text));
        }
    }

    #[test]
    fn splitter_reads_records_across_blocks() {
        let mut text = String::new();
        for i in 0..30_000 {
            match i % 7 {
                0 => text.push_str("\"张,三\",\"a\"\"b\"c,1\n"),
                1 => text.push_str("\n"),
                2 => text.push_str("\"多\n行\",x\n"),
                _ => text.push_str(&format!("李四{i},23010219,{i}.00\n")),
            }
        }
        assert_eq!(splitter_records(&text), csv_crate_records(&text));
    }

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
    fn clean_fast_path_agrees_with_trimming() {
        fn slow(s: &str) -> &str {
            s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}')
        }
        for b in 0u8..=127 {
            for s in [
                format!("{}", b as char),
                format!("{}x", b as char),
                format!("x{}", b as char),
                format!("{}张三{}", b as char, b as char),
                format!("{}1{}", b as char, b as char),
            ] {
                assert_eq!(clean(&s), slow(&s), "{s:?}");
            }
        }
        for s in [
            "",
            "\u{3000}",
            "a\u{3000}",
            "\u{feff}1",
            "1\u{200b}",
            "\u{85}a",
            "a\u{a0}",
        ] {
            assert_eq!(clean(s), slow(s), "{s:?}");
        }
    }

    #[test]
    fn clean_trims_full_width_and_bom() {
        assert_eq!(clean("\u{feff}\u{3000} 张三\u{3000}\u{200b}"), "张三");
    }
}
