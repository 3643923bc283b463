//! Sichuan's lookups that replaced whole-batch reads (issue #8), on both backends: a refund's
//! earlier red-letter voucher found by its request number (or, recorded without one, by its
//! text), a voucher by its number, the batch's refunded lines counted, the per-region sums of
//! a batch and its lines' regions in line order.

use crate::common::{account, resident_id, roster_meta};
use ykt_kernel::batch::Totals;
use ykt_kernel::catalog::{Frequency, FundingChannel, PaymentBasis, Project};
use ykt_kernel::intake::{AcceptedLine, IntakeSummary, LineOutcome};
use ykt_kernel::period::CrossPeriodRule;
use ykt_kernel::{Fen, Period, RegionCode, Yuan};
use ykt_store::payments::RosterStart;
use ykt_store::sichuan::{BankFile, BankLine, Voucher};
use ykt_store::testing::each_backend;

fn project() -> Project {
    Project {
        code: "SC09".into(),
        name: "分散特困人员救助供养金".into(),
        short_name: "特困供养".into(),
        parent: None,
        lead_unit: "民政厅".into(),
        frequency: Frequency::Monthly,
        active: None,
        cross_period: CrossPeriodRule::Months(2),
        standard: None,
        unit: None,
        basis: PaymentBasis::Person,
        funding: FundingChannel::Treasury,
        exclusive_group: None,
        proxy_allowed: false,
        policy_basis: String::new(),
        target: String::new(),
        conditions: String::new(),
        standard_text: String::new(),
        test_date: String::new(),
        go_live: String::new(),
    }
}

fn line(n: u64, region: &str, fen: i64) -> LineOutcome {
    LineOutcome::Accepted(AcceptedLine {
        row: n as u32 + 2,
        name: format!("李{n}"),
        id: resident_id(n),
        phone: None,
        region: RegionCode::parse(region).unwrap(),
        period: Period::Month {
            year: 2023,
            month: 5,
        },
        amount: Yuan::from_fen(Fen(fen)),
        account: Some(account(n)),
        bank: Some("农业银行".into()),
        proxy: None,
        warnings: vec![],
    })
}

fn voucher(no: &str, batch_id: i64, kind: &str, xml: &str) -> Voucher {
    Voucher {
        voucher_no: no.into(),
        batch_id,
        kind: kind.into(),
        amount: Fen(-100),
        vou_date: "2023-05-21".into(),
        sha256: "0".into(),
        xml: xml.as_bytes().to_vec(),
        status: "paid".into(),
        status_note: String::new(),
        paid_on: None,
    }
}

/// A Sichuan batch of four lines in three villages (regions [`REGIONS`], amounts 100.00,
/// 100.01, 100.02, 100.03).
async fn batch_of_four(s: &ykt_store::Store) -> ykt_store::payments::BatchRow {
    let meta = roster_meta("sichuan", "S", project(), "511102", "abc");
    let RosterStart::Started(mut imp) = s.begin_roster(meta).await.unwrap() else {
        panic!()
    };
    let lines: Vec<LineOutcome> = REGIONS
        .iter()
        .enumerate()
        .map(|(n, r)| line(n as u64, r, 10_000 + n as i64))
        .collect();
    imp.add(&lines).await.unwrap();
    let summary = IntakeSummary {
        lines: 4,
        accepted: 4,
        accepted_amount: Fen(40_006),
        ..Default::default()
    };
    imp.finish(&summary, s).await.unwrap().batches[0].clone()
}

const REGIONS: [&str; 4] = [
    "511102001002",
    "511102001001",
    "511102001002",
    "511102002001",
];

#[tokio::test]
async fn refund_vouchers_are_found_by_request_and_batches_summed_by_region() {
    each_backend("sichuan_lookups", |db| async move {
        let s = &db.store;
        let b = batch_of_four(s).await;

        // Per-region sums, and the lines' regions in line order.
        let totals = s.region_totals(b.id).await.unwrap();
        assert_eq!(
            totals,
            vec![
                (
                    "511102001001".to_owned(),
                    Totals {
                        count: 1,
                        amount: Fen(10_001)
                    }
                ),
                (
                    "511102001002".to_owned(),
                    Totals {
                        count: 2,
                        amount: Fen(20_002)
                    }
                ),
                (
                    "511102002001".to_owned(),
                    Totals {
                        count: 1,
                        amount: Fen(10_003)
                    }
                ),
            ]
        );
        let by_line: Vec<String> = s
            .line_regions(b.id)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(by_line, REGIONS);
        assert_eq!(s.sichuan_refunded_count(b.id).await.unwrap(), 0);

        // A plan voucher, a refund's voucher recorded with its request, one recorded without
        // a request (as before migration 0201) that carries another request in its text.
        s.sichuan_record_voucher(&voucher("P1", b.id, "plan", "<plan/>"))
            .await
            .unwrap();
        s.sichuan_record_voucher_for(
            &voucher("R1", b.id, "return", "<x>TK-S-1-1</x>"),
            Some("TK-S-1-1"),
        )
        .await
        .unwrap();
        s.sichuan_record_voucher(&voucher(
            "R2",
            b.id,
            "return",
            "<x>（退款申请号TK-S-2-1）</x>",
        ))
        .await
        .unwrap();
        let found = |no: &'static str| async move {
            s.sichuan_refund_voucher(b.id, no)
                .await
                .unwrap()
                .map(|v| v.voucher_no)
        };
        assert_eq!(found("TK-S-1-1").await.as_deref(), Some("R1"));
        assert_eq!(found("TK-S-2-1").await.as_deref(), Some("R2"));
        assert_eq!(found("TK-S-3-1").await, None);
        assert_eq!(found("").await, None);
        assert_eq!(
            s.sichuan_refund_voucher(b.id + 1, "TK-S-1-1")
                .await
                .unwrap(),
            None
        );
        // Recorded again without the request: the request stays.
        s.sichuan_record_voucher(&voucher("R1", b.id, "return", "<x>TK-S-1-1</x>"))
            .await
            .unwrap();
        assert_eq!(found("TK-S-1-1").await.as_deref(), Some("R1"));
        let v = s.sichuan_voucher("R2").await.unwrap().unwrap();
        assert_eq!((v.batch_id, v.kind.as_str()), (b.id, "return"));
        assert!(s.sichuan_voucher("R9").await.unwrap().is_none());
    })
    .await;
}

fn bank_file(batch_id: i64, name: &str, status: &str, lines: i64) -> BankFile {
    BankFile {
        id: 0,
        batch_id,
        direction: "result".into(),
        file_name: name.into(),
        sha256: format!("sha-{name}"),
        line_count: lines,
        amount: Fen(100 * lines),
        status: status.into(),
        note: String::new(),
        on_date: "2023-05-16".into(),
    }
}

fn bank_line(line_id: i64, attempt: i64) -> BankLine {
    BankLine {
        line_id,
        attempt,
        amount: Fen(100),
        credited: line_id % 2 == 0,
        reason: (line_id % 2 != 0).then(|| "account_closed".to_owned()),
        value_date: "2023-05-16".into(),
        sms_sent: true,
    }
}

/// The record a Sichuan collection applies from, page by page (issue #8: a result file of a
/// province-scale batch is never held whole): a file recorded from lines read as they come
/// (one transaction: a read failing midway records nothing), then the accepted and repeated
/// files' lines paged by position, a page resuming exactly after the last one, a refused
/// file's absence, the same pages however small.
#[tokio::test]
async fn bank_result_files_are_recorded_as_read_and_applied_a_page_at_a_time() {
    each_backend("sichuan_result_pages", |db| async move {
        let s = &db.store;
        let b = batch_of_four(s).await;
        let a = s
            .sichuan_record_bank_file_read(
                &bank_file(b.id, "HP_1_01.txt", "accepted", 3),
                [(1, 1), (2, 1), (3, 1)].map(|(l, n)| Ok::<_, String>(bank_line(l, n))),
                "system",
            )
            .await
            .unwrap();
        // A file whose reading fails at its third line: no file, no line recorded.
        let broken = [
            Ok(bank_line(4, 1)),
            Ok(bank_line(5, 1)),
            Err("回盘文件在读取期间被改变".to_owned()),
        ];
        let e = s
            .sichuan_record_bank_file_read(
                &bank_file(b.id, "HP_1_02.txt", "accepted", 3),
                broken,
                "system",
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("被改变"), "{e}");
        assert_eq!(s.sichuan_bank_files(b.id).await.unwrap().len(), 1);
        s.sichuan_record_bank_file(
            &bank_file(b.id, "HP_1_03.txt", "rejected", 0),
            &[],
            "system",
        )
        .await
        .unwrap();
        // The second attempt of line 3, and a repeat of the first file.
        let c = s
            .sichuan_record_bank_file(
                &bank_file(b.id, "HP_1_04.txt", "accepted", 1),
                &[bank_line(3, 2)],
                "system",
            )
            .await
            .unwrap();
        let r = s
            .sichuan_record_bank_file(
                &bank_file(b.id, "HP_1_01_DUP.txt", "repeat", 2),
                &[bank_line(1, 1), bank_line(2, 1)],
                "system",
            )
            .await
            .unwrap();
        let all = vec![
            (a, 1, 1),
            (a, 2, 1),
            (a, 3, 1),
            (c, 3, 2),
            (r, 1, 1),
            (r, 2, 1),
        ];
        for limit in [1, 2, 4, 100] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = s.sichuan_result_page(b.id, after, limit).await.unwrap();
                assert!(page.len() <= limit);
                seen.extend(page.iter().map(|(f, l)| (*f, l.line_id, l.attempt)));
                match page.last() {
                    Some((f, l)) if page.len() == limit => after = Some((*f, l.line_id, l.attempt)),
                    _ => break,
                }
            }
            assert_eq!(seen, all, "pages of {limit}");
        }
        let page = s
            .sichuan_result_page(b.id, Some((a, 2, 1)), 2)
            .await
            .unwrap();
        assert_eq!(page[0], (a, bank_line(3, 1)));
        assert_eq!(page[1], (c, bank_line(3, 2)));
        // The totals read only the accepted files: the repeat is not counted twice.
        assert_eq!(s.sichuan_bank_lines(b.id).await.unwrap().len(), 4);
        // Another batch's position finds nothing of this one.
        assert!(
            s.sichuan_result_page(b.id + 1, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}
