//! Streaming roster (发放清册) reader: xlsx or CSV in, one [`RawLine`] per data row out.
//!
//! The reader interprets nothing: every field is the cell's trimmed text (the kernel
//! validates). The one fact only the file knows is kept: whether the resident-ID cell was a
//! *number* cell in the spreadsheet ([`RawLine::resident_id_numeric`], `id.numeric_cell`).
//! Header mapping is [`Column::from_header`]; see `adapters/files/README.md`.

use crate::error::FileError;
use crate::table::TableReader;
use std::path::Path;
use ykt_kernel::intake::LineSource;
use ykt_kernel::roster::{Column, RawLine, RawLineRef};

pub use crate::table::{MAX_CELL_CHARS, MAX_COLUMNS, SourceFormat, TextEncoding};

/// A roster file opened and its header mapped; iterate it for the lines.
///
/// Iteration yields `Ok(RawLine)` per non-empty data row, and `Err` for a row-level problem
/// ([`FileError::is_row_level`]: ragged row, oversized cell, error cell), after which it goes
/// on; any other error ends the iteration. Memory does not grow with the file (see
/// [`crate::table`]).
#[derive(Debug)]
pub struct RosterReader {
    table: TableReader,
    /// Column of each header cell, by position.
    mapping: Vec<Option<Column>>,
    columns: Vec<Column>,
    extra: Vec<String>,
}

impl RosterReader {
    /// Open a roster: detect xlsx/CSV and the text encoding, find the header (the first
    /// non-empty row; up to five single-cell title rows above it are skipped), map it.
    ///
    /// Errors: unreadable or unsupported file ([`FileError::UnsupportedXls`],
    /// [`FileError::Encoding`]...), no header, more than [`MAX_COLUMNS`] columns, a column
    /// mapped by two headers ([`FileError::DuplicateHeader`]), a required column
    /// ([`Column::REQUIRED`]) missing ([`FileError::MissingColumn`]).
    pub fn open(path: &Path) -> Result<RosterReader, FileError> {
        let table = TableReader::open_with(path, |h| Column::from_header(h).is_some())?;
        let mut mapping = Vec::with_capacity(table.headers().len());
        let mut columns: Vec<Column> = Vec::new();
        let mut first_header: Vec<(Column, String)> = Vec::new();
        let mut extra = Vec::new();
        for h in table.headers() {
            if h.is_empty() {
                mapping.push(None);
                continue;
            }
            match Column::from_header(h) {
                Some(c) => {
                    if let Some((_, first)) = first_header.iter().find(|(k, _)| *k == c) {
                        return Err(FileError::DuplicateHeader {
                            file: table.file_name().to_owned(),
                            column: c.label().to_owned(),
                            first: first.clone(),
                            second: h.clone(),
                        });
                    }
                    first_header.push((c, h.clone()));
                    columns.push(c);
                    mapping.push(Some(c));
                }
                None => {
                    extra.push(h.clone());
                    mapping.push(None);
                }
            }
        }
        if let Some(missing) = Column::REQUIRED.iter().find(|c| !columns.contains(c)) {
            return Err(FileError::MissingColumn {
                file: table.file_name().to_owned(),
                column: missing.label().to_owned(),
            });
        }
        Ok(RosterReader {
            table,
            mapping,
            columns,
            extra,
        })
    }

    /// The mapped columns, in header order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The detected format (xlsx, or CSV and its encoding).
    pub fn format(&self) -> SourceFormat {
        self.table.format()
    }

    /// Headers that map to no roster column (kept for the operator to see; their cells are
    /// ignored).
    pub fn extra_headers(&self) -> &[String] {
        &self.extra
    }

    /// Row number of the header row (1 unless blank or title rows precede it).
    pub fn header_row(&self) -> u32 {
        self.table.header_row()
    }

    /// The file name used in messages.
    pub fn file_name(&self) -> &str {
        self.table.file_name()
    }

    /// The next line; same as [`Iterator::next`].
    pub fn next_line(&mut self) -> Option<Result<RawLine, FileError>> {
        match self.table.advance()? {
            Err(e) => Some(Err(e)),
            Ok(()) => Some(Ok(self.to_line())),
        }
    }

    /// The next line, borrowed from the reader's row buffer (valid until the next call):
    /// what [`next_line`](RosterReader::next_line) gives, without copying the cells.
    pub fn next_line_ref(&mut self) -> Option<Result<RawLineRef<'_>, FileError>> {
        match self.table.advance()? {
            Err(e) => Some(Err(e)),
            Ok(()) => Some(Ok(self.current_line())),
        }
    }

    /// The current row as an owned line: one allocation per non-empty mapped cell.
    fn to_line(&self) -> RawLine {
        self.current_line().to_line()
    }

    /// The current row as a borrowed line.
    fn current_line(&self) -> RawLineRef<'_> {
        let row = self.table.current();
        let mut line = RawLineRef::new(row.row);
        for (i, col) in self.mapping.iter().enumerate() {
            if let Some(col) = col {
                let cell = row.cell(i);
                if cell.is_empty() {
                    continue;
                }
                // Cells are cleaned by the table reader (`table::clean` strips every
                // whitespace character at both ends, and more), so trimming again in
                // `RawLineRef::set` would find nothing.
                line.set_trimmed(*col, cell);
                if *col == Column::ResidentId && row.numeric(i) {
                    line.resident_id_numeric = true;
                }
            }
        }
        line
    }

    /// Bytes held by the decoder's buffers (tests: must not grow with the file).
    #[doc(hidden)]
    pub fn decoder_buffer_bytes(&self) -> usize {
        self.table.decoder_buffer_bytes()
    }
}

impl Iterator for RosterReader {
    type Item = Result<RawLine, FileError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_line()
    }
}

impl std::iter::FusedIterator for RosterReader {}

impl LineSource for RosterReader {
    type Error = FileError;
    fn next_line_ref(&mut self) -> Option<Result<RawLineRef<'_>, FileError>> {
        RosterReader::next_line_ref(self)
    }
}
