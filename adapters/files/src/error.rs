//! The one error type of this crate.
//!
//! Every message is Chinese first, English in parentheses, and names the file (file name only,
//! never the full path), the row and the column where they are known. No message ever contains
//! a cell's content: cells may hold resident IDs, bank accounts or phone numbers.

use crate::table::TextEncoding;

/// Something went wrong reading or writing a file.
///
/// Two kinds of read errors exist (see [`FileError::is_row_level`]):
/// - **stream-level** (I/O, encoding, corrupt xlsx, missing column...): the file cannot be
///   trusted as a whole; a reader yields the error once and then stops;
/// - **row-level** ([`RaggedRow`](FileError::RaggedRow), [`CellTooLarge`](FileError::CellTooLarge),
///   [`CellError`](FileError::CellError)): only that row is unusable; a reader yields the error
///   in place of the row and goes on with the next one. The caller decides whether the file is
///   still acceptable (DOMAIN.md §3: a file is never half-imported).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("无法读取文件 {file}：{source} (cannot read {file}: {source})")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("无法写入文件 {file}：{source} (cannot write {file}: {source})")]
    Write {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{}", encoding_message(.file, .row, .encoding))]
    Encoding {
        file: String,
        /// The line the first invalid byte is on, when known (1-based, physical line).
        row: Option<u32>,
        /// The encoding the file was detected as.
        encoding: TextEncoding,
    },

    #[error(
        "文件 {file} 的编码为 {encoding}，不支持；请另存为 UTF-8 或 GB18030 编码的 CSV，或 .xlsx \
         ({file} is encoded as {encoding}, which is not supported; save it as UTF-8 or GB18030 CSV, or as .xlsx)"
    )]
    UnsupportedEncoding {
        file: String,
        encoding: &'static str,
    },

    #[error(
        "文件 {file} 是旧版 Excel (.xls) 格式，不支持 .xls，请另存为 .xlsx \
         ({file} is a legacy Excel .xls workbook; .xls is not supported, save it as .xlsx)"
    )]
    UnsupportedXls { file: String },

    #[error(
        "文件 {file} 不是有效的 xlsx 文件：{detail} ({file} is not a valid xlsx workbook: {detail})"
    )]
    Xlsx { file: String, detail: String },

    #[error(
        "文件 {file} 中的 {entry} 解压后过大或压缩比异常（{detail}），为防止压缩炸弹已拒绝 \
         ({file}: entry {entry} is too large when uncompressed or too highly compressed ({detail}); refused as a possible zip bomb)"
    )]
    XlsxTooLarge {
        file: String,
        entry: String,
        detail: String,
    },

    #[error("文件 {file} 没有工作表 ({file} has no worksheet)")]
    NoWorksheet { file: String },

    #[error("文件 {file} 为空，找不到表头行 ({file} is empty: no header row found)")]
    NoHeader { file: String },

    /// A roster with its header and nothing else (issue #9's hostile inputs: an export that
    /// kept only the header must not be recorded as an imported roster).
    #[error(
        "文件 {file} 只有表头，没有数据行，请确认导出了清册内容 ({file} has a header but no data rows)"
    )]
    NoDataRows { file: String },

    #[error(
        "文件 {file} 表头「{first}」与「{second}」都对应列「{column}」，请删除其中一列 \
         ({file}: headers {first} and {second} both map to column {column}; remove one of them)"
    )]
    DuplicateHeader {
        file: String,
        /// Canonical label of the column mapped twice.
        column: String,
        first: String,
        second: String,
    },

    #[error("文件 {file} 缺少必需列「{column}」 ({file} is missing the required column {column})")]
    MissingColumn { file: String, column: String },

    #[error(
        "文件 {file} 表头有 {count} 列，超过上限 {max} 列 ({file}: the header has {count} columns, more than the limit of {max})"
    )]
    TooManyColumns {
        file: String,
        count: usize,
        max: usize,
    },

    #[error(
        "文件 {file} 第{row}行有 {cells} 个非空单元格超出表头的 {headers} 列，数据可能错位 \
         ({file} row {row}: non-empty cells beyond the {headers} header columns (row has {cells} cells); the data may be shifted)"
    )]
    RaggedRow {
        file: String,
        row: u32,
        cells: usize,
        headers: usize,
    },

    #[error(
        "文件 {file} 第{row}行「{column}」：单元格有 {chars} 个字符，超过上限 {max} \
         ({file} row {row}, column {column}: cell has {chars} characters, more than the limit of {max})"
    )]
    CellTooLarge {
        file: String,
        row: u32,
        column: String,
        chars: usize,
        max: usize,
    },

    #[error(
        "文件 {file} 第{row}行附近：一行数据超过 {max_mib} MiB（可能缺少配对的引号） \
         ({file} near row {row}: one record is larger than {max_mib} MiB (perhaps an unbalanced quote))"
    )]
    RowTooLarge {
        file: String,
        row: u32,
        max_mib: u64,
    },

    #[error(
        "文件 {file} 第{row}行「{column}」：单元格是错误值 {detail}，请更正公式或改为文本 \
         ({file} row {row}, column {column}: the cell is the error value {detail}; fix the formula or enter text)"
    )]
    CellError {
        file: String,
        row: u32,
        column: String,
        detail: String,
    },

    #[error(
        "文件 {file} 第{row}行「{column}」：字符 {code_point} 无法用 GB18030 编码 \
         ({file} row {row}, column {column}: character {code_point} cannot be encoded in GB18030)"
    )]
    Unencodable {
        file: String,
        row: u32,
        column: String,
        code_point: String,
    },

    #[error("无法生成文件 {file}：{detail} (cannot write {file}: {detail})")]
    Export { file: String, detail: String },
}

fn encoding_message(file: &str, row: &Option<u32>, encoding: &TextEncoding) -> String {
    match row {
        Some(r) => format!(
            "文件 {file} 第{r}行：含有不是 {enc} 编码的字节，请确认文件编码（UTF-8、GBK 或 GB18030）\
             ({file} row {r}: bytes that are not valid {enc}; check the file's encoding: UTF-8, GBK or GB18030)",
            enc = encoding.label()
        ),
        None => format!(
            "文件 {file}：含有不是 {enc} 编码的字节，请确认文件编码（UTF-8、GBK 或 GB18030）\
             ({file}: bytes that are not valid {enc}; check the file's encoding: UTF-8, GBK or GB18030)",
            enc = encoding.label()
        ),
    }
}

impl FileError {
    /// The error concerns one row only; a reader goes on with the next row after it.
    pub fn is_row_level(&self) -> bool {
        matches!(
            self,
            FileError::RaggedRow { .. }
                | FileError::CellTooLarge { .. }
                | FileError::CellError { .. }
        )
    }

    /// The row the error is about, if any.
    pub fn row(&self) -> Option<u32> {
        match self {
            FileError::Encoding { row, .. } => *row,
            FileError::RaggedRow { row, .. }
            | FileError::CellTooLarge { row, .. }
            | FileError::RowTooLarge { row, .. }
            | FileError::CellError { row, .. }
            | FileError::Unencodable { row, .. } => Some(*row),
            _ => None,
        }
    }

    /// The column (header text) the error is about, if any.
    pub fn column(&self) -> Option<&str> {
        match self {
            FileError::CellTooLarge { column, .. }
            | FileError::CellError { column, .. }
            | FileError::Unencodable { column, .. }
            | FileError::MissingColumn { column, .. }
            | FileError::DuplicateHeader { column, .. } => Some(column),
            _ => None,
        }
    }
}

/// The name shown for a path in messages: its file name, never the full path (paths can
/// contain user names and directory structure that do not belong in messages shown to others).
pub(crate) fn display_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string_lossy().into_owned())
}
