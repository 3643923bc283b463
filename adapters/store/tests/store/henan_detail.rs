//! Henan's released detail (migration `0302`) on both backends: written with the release in
//! chunks that never split a line, read back chunk by chunk from any line (also from the
//! middle of a chunk), its state following results and dispatches, rewritten for the next
//! round (the earlier round's chunks dropped), no account in clear in the database, and a
//! chunk altered or moved refused instead of served.

use crate::common::{account, resident_id, roster_meta};
use ykt_kernel::batch::Totals;
use ykt_kernel::catalog::{Frequency, FundingChannel, PaymentBasis, Project};
use ykt_kernel::intake::{AcceptedLine, IntakeSummary, LineOutcome};
use ykt_kernel::ledger::{Account, AccountKind};
use ykt_kernel::period::CrossPeriodRule;
use ykt_kernel::ports::{BankOutcome, BankResult, FailureReason};
use ykt_kernel::{Fen, Period, RegionCode, Yuan};
use ykt_store::cycle::LineFix;
use ykt_store::henan::{DetailRow, DetailSpec, DetailState, PullLine};
use ykt_store::payments::RosterStart;
use ykt_store::testing::{count, each_backend, exec};
use ykt_store::{Backend, Store, StoreError};

fn project() -> Project {
    Project {
        code: "HN03".into(),
        name: "农村最低生活保障金".into(),
        short_name: "农村低保".into(),
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

const N: u64 = 40;
/// Small chunks, so 40 lines make several.
const CHUNK: usize = 160;

fn line(n: u64) -> LineOutcome {
    LineOutcome::Accepted(AcceptedLine {
        row: n as u32 + 2,
        // A name the encoder must quote (a comma), every few lines.
        name: if n % 7 == 3 {
            format!("张,{n}")
        } else {
            format!("张{n}")
        },
        id: resident_id(n),
        phone: None,
        region: RegionCode::parse("410902001201").unwrap(),
        period: Period::Month {
            year: 2023,
            month: 5,
        },
        amount: Yuan::from_fen(Fen(42_000)),
        account: Some(account(n)),
        bank: Some("中国农业银行".into()),
        proxy: None,
        warnings: vec![],
    })
}

/// The test's own line format (the store does not know the bank's).
fn encode(l: &PullLine, out: &mut Vec<u8>) {
    let name = if l.name.contains(',') {
        format!("\"{}\"", l.name)
    } else {
        l.name.clone()
    };
    out.extend_from_slice(
        format!(
            "{},{},{},{},{}\r\n",
            l.line_id,
            l.attempt,
            name,
            l.account.as_str(),
            l.amount.0
        )
        .as_bytes(),
    );
}

async fn all_chunks(s: &Store, d: &DetailRow, after: i64) -> Vec<(i64, i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cursor = after;
    while let Some(c) = s.henan_detail_chunk(d, cursor).await.unwrap() {
        assert!(c.last_line > cursor);
        cursor = c.last_line;
        out.push((c.first_line, c.last_line, c.lines, c.text));
    }
    out
}

fn result(order: &str, line_id: i64, attempt: u32, ok: bool) -> BankResult {
    BankResult {
        order_no: order.into(),
        line_id,
        attempt,
        amount: Fen(42_000),
        outcome: if ok {
            BankOutcome::Credited
        } else {
            BankOutcome::Failed {
                reason: FailureReason::WrongAccount,
            }
        },
        date: "2023-05-21".into(),
    }
}

#[tokio::test]
async fn released_detail_in_sealed_chunks() {
    each_backend("henan_detail", |db| async move {
        let s = &db.store;
        let meta = roster_meta("henan", "HA", project(), "410902", "detail");
        let RosterStart::Started(mut imp) = s.begin_roster(meta).await.unwrap() else {
            panic!()
        };
        let lines: Vec<LineOutcome> = (0..N).map(line).collect();
        imp.add(&lines).await.unwrap();
        let summary = IntakeSummary {
            lines: N,
            accepted: N,
            accepted_amount: Fen(42_000 * N as i64),
            ..Default::default()
        };
        let b = imp.finish(&summary, s).await.unwrap().batches[0].clone();
        let order = b.order_no.clone();
        let sent = s.dispatch_pending(b.id, "system", "system").await.unwrap();
        assert_eq!(sent.len(), N as usize);
        let spec = DetailSpec {
            batch_id: b.id,
            encode: &encode,
            chunk_bytes: CHUNK,
        };
        let all = Totals {
            count: N,
            amount: Fen(42_000 * N as i64),
        };
        assert_eq!(
            s.henan_record_release(&order, all, "通知", "2023-05-20", Some(&spec))
                .await
                .unwrap(),
            1
        );
        s.mark_sent(&sent).await.unwrap();

        // The detail lists every line in flight, in id order, exactly as encoded.
        let d = s.henan_detail(&order).await.unwrap().expect("materialised");
        assert_eq!((d.round, d.lines), (1, all));
        assert_eq!(s.henan_detail_state(b.id, &d).await.unwrap(), DetailState::Exact);
        let open = s.henan_open_page(b.id, 0, 1000).await.unwrap();
        let mut expected = Vec::new();
        for l in &open {
            encode(l, &mut expected);
        }
        let chunks = all_chunks(s, &d, 0).await;
        assert!(chunks.len() >= 5, "{} chunks", chunks.len());
        assert_eq!(chunks.concat_bytes(), expected);
        for (first, last, n, text) in &chunks {
            // Whole lines only, within the size (a chunk of one line may be longer).
            assert!(text.ends_with(b"\r\n"));
            assert!(text.len() <= CHUNK || *n == 1);
            let ids: Vec<i64> = text
                .split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    std::str::from_utf8(l.split(|&c| c == b',').next().unwrap())
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            assert_eq!((ids[0], *ids.last().unwrap(), ids.len() as i64), (*first, *last, *n));
        }
        // From the middle of a chunk: the chunk holding the next line.
        let (first, last, _, _) = &chunks[2];
        assert!(last > first);
        let mid = s.henan_detail_chunk(&d, *first).await.unwrap().unwrap();
        assert_eq!((mid.first_line, mid.last_line), (*first, *last));
        assert!(s.henan_detail_chunk(&d, open.last().unwrap().line_id).await.unwrap().is_none());

        // Never an account in clear in the database.
        let raw = db.raw_bytes().await.unwrap();
        for l in &open {
            let a = l.account.as_str().as_bytes();
            assert!(!raw.windows(a.len()).any(|w| w == a), "an account in clear");
        }

        // Results take lines out of flight: the detail says so, and which are still open.
        let bank = Account::new(AccountKind::AgentBank, "农业银行");
        let cards = Account::new(AccountKind::Beneficiaries, "社保卡账户");
        let done: Vec<BankResult> = open[..10]
            .iter()
            .map(|l| result(&order, l.line_id, 1, l.line_id != open[4].line_id))
            .collect();
        s.apply_results(b.id, &order, &done, "bank", &bank, &cards)
            .await
            .unwrap();
        assert_eq!(s.henan_detail_state(b.id, &d).await.unwrap(), DetailState::Reported);
        let ids = s
            .henan_in_flight_ids(b.id, open[0].line_id, open[15].line_id)
            .await
            .unwrap();
        assert_eq!(ids, open[10..16].iter().map(|l| l.line_id).collect::<Vec<_>>());

        // The failed line corrected and dispatched again: the detail is stale until the
        // next round is written, which lists the lines in flight then (the corrected one
        // as its second attempt, and those not reported yet), and drops round 1's chunks.
        let failed = open[4].line_id;
        let fix = LineFix {
            account: Some(account(900)),
            reason: "账户已更正".into(),
            ..Default::default()
        };
        s.correct_line(b.id, failed, &fix, "clerk", "dept_maker").await.unwrap();
        assert_eq!(s.henan_detail_state(b.id, &d).await.unwrap(), DetailState::Reported);
        let again = s.dispatch_pending(b.id, "system", "system").await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(s.henan_detail_state(b.id, &d).await.unwrap(), DetailState::Stale);
        let one = Totals {
            count: 1,
            amount: Fen(42_000),
        };
        let round = s
            .henan_record_release(&order, one, "通知", "2023-05-22", Some(&spec))
            .await
            .unwrap();
        assert_eq!(round, 2);
        let d2 = s.henan_detail(&order).await.unwrap().unwrap();
        assert_eq!(d2.round, 2);
        assert_eq!(d2.lines.count, N - 10 + 1);
        assert_eq!(s.henan_detail_state(b.id, &d2).await.unwrap(), DetailState::Exact);
        let text = all_chunks(s, &d2, 0).await.concat_bytes();
        let mut want = Vec::new();
        for l in s.henan_open_page(b.id, 0, 1000).await.unwrap() {
            encode(&l, &mut want);
        }
        assert_eq!(text, want);
        assert!(String::from_utf8_lossy(&text).contains(&format!("{failed},2,")));
        assert!(s.henan_detail_chunk(&d, 0).await.unwrap().is_none(), "round 1 dropped");
        let rows = count(s, "henan_release_chunks").await.unwrap();
        assert_eq!(rows as usize, all_chunks(s, &d2, 0).await.len());

        // A chunk altered, or moved to another place, is refused, not served.
        let flip = match db.backend() {
            Backend::Sqlite => "UPDATE henan_release_chunks SET body = CAST(substr(body, 1, 5) || CASE WHEN substr(body, 6, 1) = X'00' THEN X'01' ELSE X'00' END || substr(body, 7) AS BLOB) WHERE seq = 1",
            Backend::Postgres => "UPDATE henan_release_chunks SET body = set_byte(body, 5, get_byte(body, 5) # 1) WHERE seq = 1",
        };
        let second = all_chunks(s, &d2, 0).await[1].0;
        exec(s, flip).await.unwrap();
        assert!(s.henan_detail_chunk(&d2, 0).await.unwrap().is_some(), "chunk 0 intact");
        let e = s.henan_detail_chunk(&d2, second - 1).await.err().expect("refused");
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("校验失败"), "{e}");
        exec(
            s,
            "UPDATE henan_release_chunks SET body = (SELECT c.body FROM henan_release_chunks c WHERE c.seq = 2) WHERE seq = 0",
        )
        .await
        .unwrap();
        let e = s.henan_detail_chunk(&d2, 0).await.err().expect("refused");
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    })
    .await;
}

trait Concat {
    fn concat_bytes(&self) -> Vec<u8>;
}

impl Concat for Vec<(i64, i64, i64, Vec<u8>)> {
    fn concat_bytes(&self) -> Vec<u8> {
        self.iter().flat_map(|c| c.3.iter().copied()).collect()
    }
}
