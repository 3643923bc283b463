mod common;

use chrono::NaiveDate;
use common::{gb18030, valid_id, write};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use ykt_files::FileError;
use ykt_files::registry::{
    for_each_card, read_card_registry, read_death_register, read_region_table,
};
use ykt_kernel::card::CardStatus;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

#[test]
fn card_registry_good_and_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let id1 = valid_id("23010219800101123");
    let id2 = valid_id("51110219900512002");
    let id3 = valid_id("41090119751230451");
    // A checksum error: change the last character.
    let mut bad = valid_id("23010219800101555");
    let last = if bad.ends_with('0') { '1' } else { '0' };
    bad.pop();
    bad.push(last);
    let text = format!(
        "身份证号码,姓名,社会保障卡号,发卡银行,银行账号,卡状态,金融账户是否激活\r\n\
         {id1},张三,A1234567X,中国农业银行,6228480012345678901,正常,是\r\n\
         {id2},李𬌗,B7654321Y,中国建设银行,6217 0000 1234 5678,挂失,0\r\n\
         {bad},王五,C1,农行,6228480012345678901,正常,是\r\n\
         {id3},赵六,D1,农行,62284800123456789012345678901234,作废,也许\r\n\
         ,钱七,E1,农行,6228480012345678901,正常,Y\r\n"
    );
    let p = write(dir.path(), "cards.csv", &gb18030(&text));
    let loaded = read_card_registry(&p, today()).unwrap();
    assert_eq!(loaded.records.len(), 2);
    let a = &loaded.records[0];
    assert_eq!(a.resident_id.as_str(), id1);
    assert_eq!(
        (a.name.as_str(), a.card_no.as_str(), a.bank.as_str()),
        ("张三", "A1234567X", "中国农业银行")
    );
    assert_eq!(a.account.as_str(), "6228480012345678901");
    assert_eq!(a.status, CardStatus::Normal);
    assert!(a.activated);
    let b = &loaded.records[1];
    assert_eq!(b.name, "李𬌗");
    assert_eq!(b.status, CardStatus::Lost);
    assert!(!b.activated);
    assert_eq!(b.account.as_str(), "6217000012345678");

    let problems: Vec<(u32, Option<&str>)> = loaded
        .problems
        .iter()
        .map(|p| (p.row, p.column.as_deref()))
        .collect();
    assert_eq!(
        problems,
        vec![
            (4, Some("身份证号码")),
            (5, Some("银行账号")),
            (5, Some("卡状态")),
            (5, Some("金融账户是否激活")),
            (6, Some("身份证号码")),
        ]
    );
    for p in &loaded.problems {
        for secret in [
            &id1,
            &id2,
            &id3,
            &bad,
            &"62284800123456789012345678901234".to_owned(),
        ] {
            assert!(
                !p.message.contains(secret.as_str()),
                "full identifier in {p}"
            );
        }
    }
    assert!(
        loaded.problems[0].message.contains("校验位"),
        "{}",
        loaded.problems[0]
    );
    assert!(
        loaded.problems[0].message.contains(&bad[..6]),
        "the masked ID keeps its first 6 digits"
    );
}

#[test]
fn card_registry_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("身份证号码,姓名,银行账号,卡状态,金融账户是否激活\n");
    let id = valid_id("11010519491231002");
    for i in 0..20_000 {
        text.push_str(&format!(
            "{id},人{i},6228480012345678901,正常,{}\n",
            if i % 2 == 0 { "是" } else { "否" }
        ));
    }
    text.push_str("1,坏,1,正常,是\n");
    let p = write(dir.path(), "stream.csv", text.as_bytes());
    let (mut good, mut bad, mut activated) = (0, 0, 0);
    for_each_card(&p, today(), |r| match r {
        Ok(c) => {
            good += 1;
            activated += usize::from(c.activated);
        }
        Err(_) => bad += 1,
    })
    .unwrap();
    assert_eq!((good, activated), (20_000, 10_000));
    assert_eq!(bad, 2, "one problem for the ID, one for the account");
}

#[test]
fn card_registry_missing_column_and_ragged_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "nocol.csv",
        "身份证号码,姓名,银行账号,卡状态\n".as_bytes(),
    );
    assert!(
        matches!(read_card_registry(&p, today()), Err(FileError::MissingColumn { column, .. }) if column == "金融账户是否激活")
    );

    let id = valid_id("11010519491231002");
    let text = format!(
        "身份证号码,姓名,银行账号,卡状态,金融账户是否激活\n{id},张三,6228480012345678901,正常,是,多出来\n"
    );
    let p = write(dir.path(), "ragged.csv", text.as_bytes());
    let loaded = read_card_registry(&p, today()).unwrap();
    assert!(loaded.records.is_empty());
    assert_eq!(
        loaded.problems.len(),
        1,
        "a ragged row becomes a problem, it does not disappear"
    );
    assert_eq!(loaded.problems[0].row, 2);
}

#[test]
fn death_register_date_forms_csv_and_xlsx() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..6)
        .map(|i| valid_id(&format!("230102194001{:02}12{i}", i + 1)))
        .collect();
    let text = format!(
        "身份证号码,姓名,死亡日期\n{},甲,2024-03-01\n{},乙,2024/3/1\n{},丙,20240301\n{},丁,2024年3月1日\n{},戊,2099-01-01\n{},己,三月\n",
        ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]
    );
    let p = write(dir.path(), "death.csv", text.as_bytes());
    let loaded = read_death_register(&p, today()).unwrap();
    let d = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
    assert_eq!(loaded.records.len(), 4);
    assert!(loaded.records.iter().all(|r| r.date_of_death == d));
    assert_eq!(
        loaded.problems.iter().map(|p| p.row).collect::<Vec<_>>(),
        vec![6, 7]
    );

    let p = dir.path().join("death.xlsx");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "身份证号").unwrap();
    ws.write_string(0, 1, "死亡日期").unwrap();
    ws.write_string(1, 0, &ids[0]).unwrap();
    let date = ExcelDateTime::from_ymd(2024, 3, 1).unwrap();
    ws.write_datetime_with_format(1, 1, &date, &Format::new().set_num_format("yyyy年m月d日"))
        .unwrap();
    ws.write_number(2, 0, 230102194001011200.0).unwrap();
    ws.write_string(2, 1, "2024-03-01").unwrap();
    wb.save(&p).unwrap();
    let loaded = read_death_register(&p, today()).unwrap();
    assert_eq!(loaded.records.len(), 1);
    assert_eq!(loaded.records[0].date_of_death, d);
    assert_eq!(loaded.records[0].name, "", "the name column is optional");
    assert_eq!(loaded.problems.len(), 1);
    assert!(
        loaded.problems[0].message.contains("数字单元格"),
        "{}",
        loaded.problems[0]
    );
}

#[test]
fn region_table() {
    let dir = tempfile::tempdir().unwrap();
    let text = "区划代码\t区划名称\n230000000000\t黑龙江省\n230102\t道里区\n23010\t错\n230103\t\n";
    let p = write(dir.path(), "regions.txt", &gb18030(text));
    let loaded = read_region_table(&p).unwrap();
    let got: Vec<(String, &str)> = loaded
        .records
        .iter()
        .map(|r| (r.code.to_string(), r.name.as_str()))
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1, "道里区");
    assert_eq!(
        loaded
            .problems
            .iter()
            .map(|p| (p.row, p.column.as_deref()))
            .collect::<Vec<_>>(),
        vec![(4, Some("区划代码")), (5, Some("区划名称"))]
    );
}
