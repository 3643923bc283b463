mod common;

use calamine::{Data, Reader, Xlsx, open_workbook};
use common::valid_id;
use ykt_files::export::{
    Cell, REPORT_HEADERS, REPORT_SHEET, ReportLine, write_csv_gb18030_table,
    write_report_csv_gb18030, write_report_json, write_report_xlsx, write_xlsx_table,
};
use ykt_kernel::ReasonCode;
use ykt_kernel::money::Fen;
use ykt_kernel::roster::{Column, Issue};

fn sample_lines() -> (Vec<ReportLine>, String) {
    let id = valid_id("23010219800101123");
    let checksum = Issue::new(
        2,
        Some(Column::ResidentId),
        ReasonCode::IdChecksum,
        "身份证号码校验位错误 (check digit wrong)",
    );
    let inactive = Issue::new(
        3,
        None,
        ReasonCode::CardInactive,
        "=HYPERLINK(\"http://evil\",\"点我\") 未激活, 请通知",
    );
    let rare = Issue::new(
        4,
        Some(Column::Name),
        ReasonCode::CardNameMismatch,
        "登记姓名为张𬌗",
    );
    let lines = vec![
        ReportLine::from_issue(&checksum, Some("欧阳娜娜"), Some("23010219800101123X")),
        ReportLine::from_issue(&inactive, Some("张三"), Some(&id)),
        ReportLine::from_issue(&rare, None, Some("12345")),
    ];
    (lines, id)
}

#[test]
fn report_lines_are_masked() {
    let (lines, id) = sample_lines();
    assert_eq!(lines[0].name_masked, "欧**");
    assert_eq!(
        lines[0].id_masked, "230102********123X",
        "an invalid ID is masked character by character"
    );
    assert_eq!(lines[0].column, "身份证号码");
    assert_eq!(lines[0].code, "id.checksum");
    assert_eq!(lines[0].severity, "错误");
    assert_eq!(lines[0].follow_up, "更正数据");
    assert_eq!(
        lines[1].id_masked,
        format!("{}********{}", &id[..6], &id[14..])
    );
    assert_eq!(lines[1].follow_up, "激活");
    assert_eq!(lines[1].column, "");
    assert_eq!(lines[2].name_masked, "");
    assert_eq!(lines[2].id_masked, "***45");
}

#[test]
fn report_xlsx_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("report.xlsx");
    let (lines, id) = sample_lines();
    write_report_xlsx(&p, "2024年3月低保发放清册校验结果", &lines).unwrap();
    let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
    assert_eq!(wb.sheet_names(), vec![REPORT_SHEET.to_owned()]);
    let range = wb.worksheet_range(REPORT_SHEET).unwrap();
    let rows: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
    assert_eq!(
        rows[0][0],
        Data::String("2024年3月低保发放清册校验结果".into())
    );
    let header: Vec<String> = rows[1].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        REPORT_HEADERS
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(rows[2][0], Data::Float(2.0));
    assert_eq!(rows[2][1], Data::String("欧**".into()));
    assert_eq!(rows[2][4], Data::String("id.checksum".into()));
    assert!(
        matches!(&rows[3][7], Data::String(s) if s.starts_with("'=HYPERLINK")),
        "{:?}",
        rows[3][7]
    );
    assert_eq!(rows[4][7], Data::String("登记姓名为张𬌗".into()));
    // No full ID anywhere.
    for r in &rows {
        for c in r {
            assert!(!c.to_string().contains(&id));
        }
    }
}

#[test]
fn report_csv_is_gb18030_crlf_quoted_and_neutralised() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("report.csv");
    let (lines, _) = sample_lines();
    write_report_csv_gb18030(&p, &lines).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(&bytes);
    assert!(!had_errors);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "not UTF-8: it is GB18030"
    );
    let records: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(records[0], REPORT_HEADERS.join(","));
    assert_eq!(
        records.len(),
        5,
        "header, 3 lines, and the empty string after the final CRLF"
    );
    assert_eq!(records[4], "");
    assert!(!text.replace("\r\n", "").contains('\n'));
    assert!(
        records[2].ends_with(",\"'=HYPERLINK(\"\"http://evil\"\",\"\"点我\"\") 未激活, 请通知\""),
        "{}",
        records[2]
    );
    assert!(
        records[3].ends_with("登记姓名为张𬌗"),
        "rare characters survive: {}",
        records[3]
    );

    // And the csv crate reads the same cells back.
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let msgs: Vec<String> = rdr.records().map(|r| r.unwrap()[7].to_owned()).collect();
    assert_eq!(
        msgs[1],
        "'=HYPERLINK(\"http://evil\",\"点我\") 未激活, 请通知"
    );
}

#[test]
fn report_json() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("report.json");
    let (lines, _) = sample_lines();
    write_report_json(&p, &lines).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    let keys: Vec<&str> = arr[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "row",
        "column",
        "code",
        "severity",
        "follow_up",
        "message",
        "name",
        "id",
    ];
    let mut got = keys.clone();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
    assert_eq!(arr[0]["row"], 2);
    assert_eq!(arr[0]["name"], "欧**");
    assert_eq!(arr[0]["code"], "id.checksum");
    let back: Vec<ReportLine> = serde_json::from_value(v).unwrap();
    assert_eq!(back, lines);

    write_report_json(&p, &[]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn generic_tables_with_money_and_integers() {
    let dir = tempfile::tempdir().unwrap();
    let headers = ["序号", "姓名", "金额", "备注"];
    let rows = || {
        vec![
            vec![
                Cell::Int(1),
                Cell::from("张三"),
                Cell::Money(Fen(123_450)),
                Cell::from("-5"),
            ],
            vec![
                Cell::Int(2),
                Cell::from("李四"),
                Cell::Money(Fen(-1)),
                Cell::from("@me"),
            ],
        ]
        .into_iter()
    };
    let x = dir.path().join("t.xlsx");
    assert_eq!(write_xlsx_table(&x, "明细", &headers, rows()).unwrap(), 2);
    let mut wb: Xlsx<_> = open_workbook(&x).unwrap();
    let range = wb.worksheet_range("明细").unwrap();
    let r: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
    assert_eq!(r[0][2], Data::String("金额".into()));
    assert_eq!(r[1][0], Data::Float(1.0));
    assert_eq!(r[1][2], Data::Float(1234.5));
    assert_eq!(r[1][3], Data::String("'-5".into()));
    assert_eq!(r[2][2], Data::Float(-0.01));
    assert_eq!(r[2][3], Data::String("'@me".into()));

    let c = dir.path().join("t.csv");
    assert_eq!(write_csv_gb18030_table(&c, &headers, rows()).unwrap(), 2);
    let bytes = std::fs::read(&c).unwrap();
    let (text, _) = encoding_rs::GB18030.decode_without_bom_handling(&bytes);
    assert_eq!(
        text,
        "序号,姓名,金额,备注\r\n1,张三,1234.50,'-5\r\n2,李四,-0.01,'@me\r\n"
    );
}

#[test]
fn xlsx_table_reads_back_through_the_roster_reader() {
    // The export's xlsx (constant-memory, inline strings) is readable by our own reader.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("roundtrip.xlsx");
    let rows = (0..1000).map(|i| {
        vec![
            Cell::from(format!("人{i}")),
            Cell::from("110101199003077777"),
            Cell::Money(Fen(30_001)),
        ]
    });
    write_xlsx_table(&p, "Sheet1", &["姓名", "身份证号码", "补贴金额"], rows).unwrap();
    let lines: Vec<_> = ykt_files::RosterReader::open(&p)
        .unwrap()
        .map(|l| l.unwrap())
        .collect();
    assert_eq!(lines.len(), 1000);
    assert_eq!(lines[999].name.as_deref(), Some("人999"));
    assert_eq!(lines[0].amount.as_deref(), Some("300.01"));
    assert!(!lines[0].resident_id_numeric);
}

#[test]
fn bad_sheet_name_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.xlsx");
    let e = write_xlsx_table(&p, "a[b]", &["x"], std::iter::empty()).unwrap_err();
    assert!(e.to_string().contains("bad.xlsx"), "{e}");
}
