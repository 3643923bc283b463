//! Arbitrary bytes given to the readers never panic (and never hang).

use proptest::prelude::*;
use ykt_files::RosterReader;
use ykt_files::registry::{read_card_registry, read_region_table};

const HEADERS: &[&[u8]] = &[
    "姓名,身份证号码,补贴金额\n".as_bytes(),
    "姓名\t身份证号码\t补贴金额\r\n".as_bytes(),
    "身份证号码,姓名,银行账号,卡状态,金融账户是否激活\n".as_bytes(),
    b"",
];

fn exercise(bytes: &[u8], ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(format!("f.{ext}"));
    std::fs::write(&p, bytes).unwrap();
    if let Ok(r) = RosterReader::open(&p) {
        // Row-level errors let reading go on; the iterator is fused after a fatal one.
        for (i, l) in r.enumerate() {
            let _ = l;
            assert!(i < 100_000);
        }
    }
    let today = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let _ = read_card_registry(&p, today);
    let _ = read_region_table(&p);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), ext in prop::sample::select(vec!["csv", "xlsx", "txt", "xls", "bin"])) {
        exercise(&bytes, ext);
    }

    #[test]
    fn arbitrary_rows_after_a_valid_header_never_panic(h in 0usize..4, body in proptest::collection::vec(prop_oneof![
        Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b'\t'), Just(0xFFu8), Just(0x81u8), Just(0x30u8),
        any::<u8>(),
    ], 0..2048)) {
        let mut bytes = HEADERS[h].to_vec();
        bytes.extend_from_slice(&body);
        exercise(&bytes, "csv");
    }

    #[test]
    fn corrupted_xlsx_never_panics(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = valid_xlsx();
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        exercise(&bytes, "xlsx");
    }
}

fn valid_xlsx() -> Vec<u8> {
    use std::sync::OnceLock;
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let mut wb = rust_xlsxwriter::Workbook::new();
            let ws = wb.add_worksheet();
            for (c, h) in ["姓名", "身份证号码", "补贴金额"].iter().enumerate() {
                ws.write_string(0, c as u16, *h).unwrap();
            }
            for r in 1..20u32 {
                ws.write_string(r, 0, "张三").unwrap();
                ws.write_number(r, 1, 1.1e17).unwrap();
                ws.write_number(r, 2, 300.5).unwrap();
            }
            wb.save_to_buffer().unwrap()
        })
        .clone()
}
