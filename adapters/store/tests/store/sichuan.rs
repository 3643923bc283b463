//! Sichuan's lookups that replaced whole-batch reads (issue #8), on both backends: a refund's
//! earlier red-letter voucher found by its request number (or, recorded without one, by its
//! text), a voucher by its number, the batch's refunded lines counted, the per-region sums of
//! a batch and its lines' regions in line order.

use crate::common::{account, resident_id};
use ykt_kernel::batch::{BatchState, Totals};
use ykt_kernel::catalog::{Frequency, FundingChannel, PaymentBasis, Project};
use ykt_kernel::intake::{AcceptedLine, IntakeSummary, LineOutcome};
use ykt_kernel::period::CrossPeriodRule;
use ykt_kernel::{Fen, Period, RegionCode, Yuan};
use ykt_store::payments::{RosterMeta, RosterStart};
use ykt_store::sichuan::Voucher;
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

#[tokio::test]
async fn refund_vouchers_are_found_by_request_and_batches_summed_by_region() {
    each_backend("sichuan_lookups", |db| async move {
        let s = &db.store;
        let meta = RosterMeta {
            province: "sichuan".into(),
            order_prefix: "S".into(),
            project: project(),
            period: Period::Month {
                year: 2023,
                month: 5,
            },
            file_name: "r.csv".into(),
            sha256: "abc".into(),
            actor: "clerk".into(),
            actor_role: "dept_maker".into(),
            scope: RegionCode::parse("511102").unwrap(),
            initial_state: BatchState::Draft,
        };
        let RosterStart::Started(mut imp) = s.begin_roster(meta).await.unwrap() else {
            panic!()
        };
        let regions = [
            "511102001002",
            "511102001001",
            "511102001002",
            "511102002001",
        ];
        let lines: Vec<LineOutcome> = regions
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
        let b = imp.finish(&summary, s).await.unwrap().batches[0].clone();

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
        assert_eq!(by_line, regions);
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
