mod common;

use common::{gb18030, write, zip_declaring};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use ykt_files::{FileError, RosterReader, SourceFormat, TextEncoding};
use ykt_kernel::roster::{Column, RawLine};

fn read_all(r: RosterReader) -> Vec<Result<RawLine, FileError>> {
    r.collect()
}

fn lines(r: RosterReader) -> Vec<RawLine> {
    r.map(|l| l.expect("line")).collect()
}

const HEADER: &str = "姓名,身份证号码,补贴金额,属期,手机号码";

#[test]
fn utf8_csv_with_lf() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEADER}\n张三,110101199003077777,300.01,2024-03,13800138000\n李四 , 11010119900307777x ,50,2024-03,\n"
    );
    let p = write(dir.path(), "roster.csv", text.as_bytes());
    let r = RosterReader::open(&p).unwrap();
    assert_eq!(r.format(), SourceFormat::Csv(TextEncoding::Utf8));
    assert_eq!(
        r.columns(),
        &[
            Column::Name,
            Column::ResidentId,
            Column::Amount,
            Column::Period,
            Column::Phone
        ]
    );
    assert!(r.extra_headers().is_empty());
    let l = lines(r);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].row, 2);
    assert_eq!(l[0].name.as_deref(), Some("张三"));
    assert_eq!(l[0].resident_id.as_deref(), Some("110101199003077777"));
    assert!(!l[0].resident_id_numeric);
    assert_eq!(l[0].amount.as_deref(), Some("300.01"));
    assert_eq!(l[0].period.as_deref(), Some("2024-03"));
    assert_eq!(l[0].phone.as_deref(), Some("13800138000"));
    assert_eq!(l[1].row, 3);
    assert_eq!(l[1].name.as_deref(), Some("李四"), "cells are trimmed");
    assert_eq!(l[1].resident_id.as_deref(), Some("11010119900307777x"));
    assert_eq!(l[1].phone, None, "empty cell is None");
}

#[test]
fn utf8_bom_with_crlf_and_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{feff}*补贴对象姓名,身份证号,金额,籍贯\r\n王五,110101199003077777,100,黑龙江\r\n";
    let p = write(dir.path(), "bom.csv", text.as_bytes());
    let r = RosterReader::open(&p).unwrap();
    assert_eq!(r.format(), SourceFormat::Csv(TextEncoding::Utf8Bom));
    assert_eq!(
        r.columns(),
        &[Column::Name, Column::ResidentId, Column::Amount]
    );
    assert_eq!(r.extra_headers(), &["籍贯".to_owned()]);
    let l = lines(r);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].name.as_deref(), Some("王五"));
    assert_eq!(l[0].amount.as_deref(), Some("100"));
}

#[test]
fn gbk_csv_is_detected_and_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEADER}\r\n欧阳娜娜,110101199003077777,300,2024-03,\r\n买买提·艾力,110101199003077777,300,2024-03,\r\n"
    );
    let p = write(dir.path(), "gbk.csv", &gb18030(&text));
    let r = RosterReader::open(&p).unwrap();
    assert_eq!(r.format(), SourceFormat::Csv(TextEncoding::Gbk));
    let l = lines(r);
    assert_eq!(l[0].name.as_deref(), Some("欧阳娜娜"));
    assert_eq!(l[1].name.as_deref(), Some("买买提·艾力"));
}

#[test]
fn gb18030_rare_characters_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    // 𬌗 (U+2C317) only exists in GB18030 (four-byte sequence); 䶮 (U+4DAE) too, in Extension A.
    let text = format!(
        "{HEADER}\n张𬌗,110101199003077777,300,2024-03,\n刘䶮,110101199003077777,300,2024-03,\n"
    );
    let p = write(dir.path(), "gb18030.csv", &gb18030(&text));
    let r = RosterReader::open(&p).unwrap();
    assert_eq!(r.format(), SourceFormat::Csv(TextEncoding::Gb18030));
    let l = lines(r);
    assert_eq!(l[0].name.as_deref(), Some("张𬌗"));
    assert_eq!(l[1].name.as_deref(), Some("刘䶮"));
}

#[test]
fn tab_separated() {
    let dir = tempfile::tempdir().unwrap();
    let text = "姓名\t身份证号码\t补贴金额\n张三\t110101199003077777\t1,000.00\n";
    let p = write(dir.path(), "roster.txt", &gb18030(text));
    let l = lines(RosterReader::open(&p).unwrap());
    assert_eq!(l.len(), 1);
    assert_eq!(
        l[0].amount.as_deref(),
        Some("1,000.00"),
        "a comma inside a tab-separated cell is text"
    );
}

#[test]
fn mixed_line_ends_blank_rows_and_quoted_newlines_keep_spreadsheet_row_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\n姓名,身份证号码,补贴金额,备注\r\n张三,1,1,\n\n李四,2,2,\"两行\n备注\"\r\n,,,\r\n王五,3,3,\n";
    let p = write(dir.path(), "mixed.csv", text.as_bytes());
    let r = RosterReader::open(&p).unwrap();
    assert_eq!(r.header_row(), 2);
    let l = lines(r);
    let rows: Vec<(u32, &str)> = l
        .iter()
        .map(|l| (l.row, l.name.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        rows,
        vec![(3, "张三"), (5, "李四"), (7, "王五")],
        "a quoted multi-line cell is one row"
    );
    assert_eq!(l[1].remark.as_deref(), Some("两行\n备注"));
}

#[test]
fn cr_only_line_ends_and_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = "姓名,身份证号码,补贴金额\r张三,1,1\r\r李四,2,2";
    let p = write(dir.path(), "cr.csv", text.as_bytes());
    let rows: Vec<u32> = lines(RosterReader::open(&p).unwrap())
        .iter()
        .map(|l| l.row)
        .collect();
    assert_eq!(rows, vec![2, 4]);
}

#[test]
fn crlf_blank_lines_before_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\r\n\r\n姓名,身份证号码,补贴金额\r\n张三,1,1\r\n";
    let p = write(dir.path(), "crlf.csv", text.as_bytes());
    let r = RosterReader::open(&p).unwrap();
    assert_eq!(r.header_row(), 3);
    assert_eq!(lines(r)[0].row, 4);
}

#[test]
fn ragged_rows_short_rows_and_trailing_empty_cells() {
    let dir = tempfile::tempdir().unwrap();
    let text = "姓名,身份证号码,补贴金额\n张三,1\n李四,2,3,,,\n王五,3,3,多余\n赵六,4,4\n";
    let p = write(dir.path(), "ragged.csv", text.as_bytes());
    let all = read_all(RosterReader::open(&p).unwrap());
    assert_eq!(all.len(), 4);
    let first = all[0].as_ref().unwrap();
    assert_eq!(
        first.amount, None,
        "a short row is fine: missing cells are None"
    );
    assert!(all[1].is_ok(), "extra empty cells are fine");
    match &all[2] {
        Err(
            e @ FileError::RaggedRow {
                row: 4,
                cells: 4,
                headers: 3,
                ..
            },
        ) => {
            assert!(e.is_row_level());
            let msg = e.to_string();
            assert!(msg.contains("第4行") && msg.contains("row 4"), "{msg}");
        }
        other => panic!("expected a ragged row, got {other:?}"),
    }
    assert_eq!(
        all[3].as_ref().unwrap().name.as_deref(),
        Some("赵六"),
        "reading goes on after a row-level error"
    );
}

#[test]
fn huge_cell_is_refused_but_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let big = "备".repeat(5000);
    let text = format!("姓名,身份证号码,补贴金额,备注\n张三,1,1,{big}\n李四,2,2,ok\n");
    let p = write(dir.path(), "huge.csv", text.as_bytes());
    let all = read_all(RosterReader::open(&p).unwrap());
    match &all[0] {
        Err(FileError::CellTooLarge {
            row: 2,
            column,
            chars: 5000,
            max: 4096,
            ..
        }) => assert_eq!(column, "备注"),
        other => panic!("expected CellTooLarge, got {other:?}"),
    }
    assert!(all[1].is_ok());
}

#[test]
fn unbalanced_quote_does_not_buffer_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("姓名,身份证号码,补贴金额\n\"张三,1,1\n");
    for _ in 0..1_000_000 {
        text.push_str("李四,2,2\n");
    }
    let p = write(dir.path(), "quote.csv", text.as_bytes());
    let all = read_all(RosterReader::open(&p).unwrap());
    assert!(
        matches!(all.last(), Some(Err(FileError::RowTooLarge { row: 2, .. }))),
        "{:?}",
        all.last()
    );
}

#[test]
fn missing_required_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "missing.csv",
        "姓名,身份证号码,属期\n张三,1,2024-03\n".as_bytes(),
    );
    match RosterReader::open(&p) {
        Err(e @ FileError::MissingColumn { .. }) => {
            assert_eq!(e.column(), Some("补贴金额"));
            assert!(
                e.to_string()
                    .starts_with("文件 missing.csv 缺少必需列「补贴金额」"),
                "{e}"
            );
        }
        other => panic!("expected MissingColumn, got {other:?}"),
    }
}

#[test]
fn duplicate_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "dup.csv",
        "姓名,身份证号,补贴金额,公民身份号码\n".as_bytes(),
    );
    match RosterReader::open(&p) {
        Err(FileError::DuplicateHeader {
            column,
            first,
            second,
            ..
        }) => {
            assert_eq!(
                (column.as_str(), first.as_str(), second.as_str()),
                ("身份证号码", "身份证号", "公民身份号码")
            );
        }
        other => panic!("expected DuplicateHeader, got {other:?}"),
    }
}

#[test]
fn too_many_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut header = String::from("姓名,身份证号码,补贴金额");
    for i in 0..300 {
        header.push_str(&format!(",c{i}"));
    }
    let p = write(dir.path(), "wide.csv", header.as_bytes());
    assert!(matches!(
        RosterReader::open(&p),
        Err(FileError::TooManyColumns {
            count: 303,
            max: 256,
            ..
        })
    ));
}

#[test]
fn title_row_above_the_header_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "title.csv",
        "2024年3月城乡低保发放清册,,\n姓名,身份证号码,补贴金额\n张三,1,1\n".as_bytes(),
    );
    let r = RosterReader::open(&p).unwrap();
    assert_eq!(r.header_row(), 2);
    assert_eq!(lines(r)[0].row, 3);
}

#[test]
fn invalid_bytes_are_an_encoding_error_with_the_row() {
    let dir = tempfile::tempdir().unwrap();
    // Valid UTF-8 for more than the 1 MiB detection sample, then a stray byte.
    let mut bytes = "姓名,身份证号码,补贴金额\n".as_bytes().to_vec();
    let line = "张三,110101199003077777,300\n".as_bytes();
    let n = (1 << 20) / line.len() + 10;
    for _ in 0..n {
        bytes.extend_from_slice(line);
    }
    bytes.extend_from_slice(b"\xFF\xFE,1,1\n");
    let p = write(dir.path(), "bad.csv", &bytes);
    let r = RosterReader::open(&p).unwrap();
    assert_eq!(r.format(), SourceFormat::Csv(TextEncoding::Utf8));
    let all = read_all(r);
    assert_eq!(
        all.iter().filter(|l| l.is_ok()).count(),
        n,
        "every good line before the bad one is read"
    );
    let bad_row = n as u32 + 2;
    match all.last() {
        Some(Err(
            e @ FileError::Encoding {
                row: Some(r),
                encoding: TextEncoding::Utf8,
                ..
            },
        )) => {
            assert_eq!(*r, bad_row);
            assert!(!e.is_row_level());
            assert!(e.to_string().contains(&format!("第{bad_row}行")));
        }
        other => panic!("expected an encoding error, got {other:?}"),
    }
}

#[test]
fn invalid_gbk_bytes_in_the_header_fail_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gb18030("姓名,身份证号码,补贴金额");
    bytes.extend_from_slice(b"\xFF\n");
    let p = write(dir.path(), "bad-gbk.csv", &bytes);
    assert!(matches!(
        RosterReader::open(&p),
        Err(FileError::Encoding {
            row: Some(1),
            encoding: TextEncoding::Gbk,
            ..
        })
    ));
}

#[test]
fn unsupported_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let ole = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0, 0, 0];
    let p = write(dir.path(), "old.xls", &ole);
    let e = RosterReader::open(&p).unwrap_err();
    assert!(matches!(e, FileError::UnsupportedXls { .. }));
    assert!(e.to_string().contains("不支持 .xls，请另存为 .xlsx"), "{e}");

    let p = write(dir.path(), "fake.xlsx", b"name,id\n");
    assert!(matches!(
        RosterReader::open(&p),
        Err(FileError::Xlsx { .. })
    ));

    let p = write(dir.path(), "u16.csv", b"\xFF\xFEa\0,\0b\0");
    assert!(matches!(
        RosterReader::open(&p),
        Err(FileError::UnsupportedEncoding { .. })
    ));

    let p = write(dir.path(), "empty.csv", b"\r\n,,\r\n");
    assert!(matches!(
        RosterReader::open(&p),
        Err(FileError::NoHeader { .. })
    ));

    let p = write(dir.path(), "nonexistent-dir-file.csv", b"");
    std::fs::remove_file(&p).unwrap();
    assert!(matches!(RosterReader::open(&p), Err(FileError::Io { .. })));
}

#[test]
fn zip_bomb_is_refused_before_inflating() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bomb.xlsx",
        &zip_declaring("xl/worksheets/sheet1.xml", 1_000_000, 3_000_000_000),
    );
    assert!(matches!(
        RosterReader::open(&p),
        Err(FileError::XlsxTooLarge { .. })
    ));
    let p = write(
        dir.path(),
        "dense.xlsx",
        &zip_declaring("xl/sharedStrings.xml", 10_000, 10_000_000),
    );
    match RosterReader::open(&p) {
        Err(FileError::XlsxTooLarge { entry, .. }) => assert_eq!(entry, "xl/sharedStrings.xml"),
        other => panic!("expected XlsxTooLarge, got {other:?}"),
    }
}

fn xlsx_roster(path: &std::path::Path) {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["姓名", "身份证号码", "补贴金额", "属期", "是否户主", "数量"]
        .iter()
        .enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    // Row 2: the ID typed as a number (Excel keeps 15 significant digits).
    ws.write_string(1, 0, "张三").unwrap();
    ws.write_number(1, 1, 110101199003077777.0).unwrap();
    ws.write_number(1, 2, 300.01).unwrap();
    let date = ExcelDateTime::from_ymd(2024, 3, 1).unwrap();
    ws.write_datetime_with_format(1, 3, &date, &Format::new().set_num_format("yyyy-mm"))
        .unwrap();
    ws.write_boolean(1, 4, true).unwrap();
    ws.write_number(1, 5, 3.0).unwrap();
    // Row 3 is empty; row 4: the ID as text, a formula-looking amount artefact.
    ws.write_string(3, 0, "𬌗文").unwrap();
    ws.write_string(3, 1, "11010119900307777X").unwrap();
    ws.write_number(3, 2, 0.1 + 0.2).unwrap();
    ws.write_string(3, 3, "2024-03").unwrap();
    wb.save(path).unwrap();
}

#[test]
fn xlsx_numeric_id_dates_numbers_and_booleans() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("roster.xlsx");
    xlsx_roster(&p);
    let r = RosterReader::open(&p).unwrap();
    assert_eq!(r.format(), SourceFormat::Xlsx);
    assert_eq!(
        r.columns(),
        &[
            Column::Name,
            Column::ResidentId,
            Column::Amount,
            Column::Period,
            Column::HouseholdHead,
            Column::Quantity
        ]
    );
    let l = lines(r);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].row, 2);
    assert!(l[0].resident_id_numeric);
    assert_eq!(
        l[0].resident_id.as_deref(),
        Some("110101199003078000"),
        "digits as displayed, no exponent"
    );
    assert_eq!(l[0].amount.as_deref(), Some("300.01"));
    assert_eq!(l[0].period.as_deref(), Some("2024-03-01"));
    assert_eq!(l[0].household_head.as_deref(), Some("是"));
    assert_eq!(l[0].quantity.as_deref(), Some("3"), "integers without .0");
    assert_eq!(l[1].row, 4, "the empty row 3 is skipped but counted");
    assert!(!l[1].resident_id_numeric);
    assert_eq!(l[1].name.as_deref(), Some("𬌗文"));
    assert_eq!(l[1].resident_id.as_deref(), Some("11010119900307777X"));
    assert_eq!(
        l[1].amount.as_deref(),
        Some("0.3"),
        "rounded to Excel's 15 significant digits"
    );
}

#[test]
fn xlsx_first_visible_worksheet_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hidden.xlsx");
    let mut wb = Workbook::new();
    let hidden = wb.add_worksheet();
    hidden.write_string(0, 0, "说明").unwrap();
    hidden.set_hidden(true);
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "姓名").unwrap();
    ws.write_string(0, 1, "身份证号码").unwrap();
    ws.write_string(0, 2, "补贴金额").unwrap();
    ws.write_string(1, 0, "张三").unwrap();
    ws.set_active(true);
    wb.save(&p).unwrap();
    let l = lines(RosterReader::open(&p).unwrap());
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].name.as_deref(), Some("张三"));
}

#[test]
fn xlsx_reader_can_be_dropped_early() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.xlsx");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet_with_constant_memory();
    for (c, h) in ["姓名", "身份证号码", "补贴金额"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..5000u32 {
        ws.write_string(r, 0, format!("人{r}")).unwrap();
        ws.write_string(r, 1, "110101199003077777").unwrap();
        ws.write_number(r, 2, 1.5).unwrap();
    }
    wb.save(&p).unwrap();
    let mut r = RosterReader::open(&p).unwrap();
    let first = r.next().unwrap().unwrap();
    assert_eq!(first.name.as_deref(), Some("人1"));
    drop(r);
    let all = lines(RosterReader::open(&p).unwrap());
    assert_eq!(all.len(), 4999);
    assert_eq!(all[4998].row, 5000);
}

#[test]
fn two_hundred_thousand_lines_stream_in_bounded_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("large.csv");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        f.write_all(&gb18030("姓名,身份证号码,补贴金额,属期\r\n"))
            .unwrap();
        for i in 0..200_000u32 {
            f.write_all(&gb18030(&format!(
                "张{i},110101199003077777,{}.50,2024-03\r\n",
                i % 1000 + 1
            )))
            .unwrap();
        }
    }
    let mut r = RosterReader::open(&p).unwrap();
    assert_eq!(r.format(), SourceFormat::Csv(TextEncoding::Gbk));
    let initial = r.decoder_buffer_bytes();
    let mut count = 0u32;
    let mut last_row = 0;
    for l in r.by_ref() {
        let l = l.unwrap();
        count += 1;
        last_row = l.row;
    }
    assert_eq!(count, 200_000);
    assert_eq!(last_row, 200_001);
    assert_eq!(
        r.decoder_buffer_bytes(),
        initial,
        "the decoder's buffers never grow"
    );
    assert!(initial <= 256 * 1024);
}

#[test]
fn readers_and_errors_can_move_between_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync + std::error::Error + 'static>() {}
    send::<RosterReader>();
    send::<ykt_files::TableReader>();
    send_sync::<FileError>();
}
