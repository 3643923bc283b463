//! The platform's Sichuan adapters against the simulators (`ykt_sim::sichuan`): the two sides
//! implement the documented layouts independently, so these round trips check both.

use super::bank::{FileDropBank, InstructionHeader, InstructionRecord, ResultFile};
use super::treasury::HttpTreasury;
use super::voucher::{ReceiptStatus, Voucher, VoucherDetail};
use chrono::NaiveDate;
use ykt_kernel::Fen;
use ykt_kernel::ports::FailureReason;
use ykt_sim::server::SimServer;
use ykt_sim::sichuan::bank::{BankSim, BankSimConfig, FailRule, FileFault};
use ykt_sim::sichuan::sms::SmsGateway;
use ykt_sim::sichuan::treasury::{TreasuryConfig, TreasurySim};

fn voucher(no: &str, amount: i64) -> Voucher {
    Voucher {
        voucher_no: no.into(),
        ori_voucher_no: None,
        adm_div_code: "511102".into(),
        st_year: 2023,
        vou_date: NaiveDate::from_ymd_opt(2023, 5, 15).unwrap(),
        agency_code: "511102-SC09".into(),
        agency_name: "乐山市市中区民政局".into(),
        payee_acct_no: "22150101040012345".into(),
        payee_acct_name: "乐山市市中区民政局".into(),
        payee_acct_bank: "中国农业银行乐山分行".into(),
        exp_func_name: "农村最低生活保障金".into(),
        purpose: "O1 2023年5月".into(),
        bill_count: 2,
        pay_amt: Fen(amount),
        details: vec![
            VoucherDetail {
                code: "511102001201".into(),
                name: "幸福村".into(),
                count: 1,
                amount: Fen(42_000),
            },
            VoucherDetail {
                code: "511102001202".into(),
                name: "光明村".into(),
                count: 1,
                amount: Fen(42_000),
            },
        ],
    }
}

#[tokio::test]
async fn treasury_checks_funds_and_takes_money_back() {
    let sim = TreasurySim::new(TreasuryConfig { pending_polls: 1 });
    let server = SimServer::start(sim.router()).await.unwrap();
    let t = HttpTreasury::new(&server.url()).unwrap();

    let v = voucher("V1", 84_000);
    let r = t.submit(&v).await.unwrap();
    assert_eq!(r.status, ReceiptStatus::Accepted);
    assert_eq!(
        t.status("V1").await.unwrap().status,
        ReceiptStatus::Accepted
    );
    let paid = t.status("V1").await.unwrap();
    assert_eq!(paid.status, ReceiptStatus::Paid);
    assert_eq!(paid.pay_amt, Some(Fen(84_000)));
    assert_eq!(paid.pay_date, NaiveDate::from_ymd_opt(2023, 5, 15));
    // The same voucher again: its current receipt, nothing funded twice.
    assert_eq!(t.submit(&v).await.unwrap().status, ReceiptStatus::Paid);
    assert_eq!(sim.vouchers().len(), 1);

    // Header and details disagree: the treasury's own check refuses it.
    let bad = t.submit(&voucher("V2", 84_100)).await.unwrap();
    assert_eq!(bad.status, ReceiptStatus::Rejected);
    assert!(bad.desc.contains("不一致"), "{}", bad.desc);
    // Another voucher under a used number.
    let mut other = voucher("V1", 84_000);
    other.purpose = "另一批次".into();
    assert_eq!(
        t.submit(&other).await.unwrap().status,
        ReceiptStatus::Rejected
    );

    // A red-letter voucher returns 420.00 of V1; returning more than was paid is refused.
    let mut red = voucher("R1", -42_000);
    red.ori_voucher_no = Some("V1".into());
    red.bill_count = 1;
    red.details.truncate(1);
    red.details[0].amount = Fen(-42_000);
    let back = t.submit(&red).await.unwrap();
    assert_eq!(back.status, ReceiptStatus::Paid);
    assert_eq!(back.return_no.as_deref(), Some("TKR1"));
    let mut too_much = red.clone();
    too_much.voucher_no = "R2".into();
    too_much.bill_count = 2;
    too_much.pay_amt = Fen(-84_000);
    too_much.details = vec![VoucherDetail {
        count: 2,
        amount: Fen(-84_000),
        ..red.details[0].clone()
    }];
    let refused = t.submit(&too_much).await.unwrap();
    assert_eq!(refused.status, ReceiptStatus::Rejected);
    assert!(refused.desc.contains("超过"), "{}", refused.desc);
    // An unknown voucher.
    assert_eq!(
        t.status("NOPE").await.unwrap().status,
        ReceiptStatus::Rejected
    );
}

fn record(line_id: i64, account: &str, phone: &str) -> InstructionRecord {
    InstructionRecord {
        line_id,
        attempt: 1,
        holder: "王秀英".into(),
        id_no: "230102194702041018".into(),
        account: account.into(),
        card_bank: "中国农业银行".into(),
        amount: Fen(42_000),
        phone: phone.into(),
        beneficiary: String::new(),
        proxy_kind: String::new(),
        sms: format!(
            "【惠民惠农一卡通】您的农村最低生活保障金420.00元已于2023-05-16发放（{line_id}）"
        ),
    }
}

#[tokio::test]
async fn bank_round_trip_with_failures_repeats_and_a_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let sms = SmsGateway::new();
    let sms_server = SimServer::start(sms.router()).await.unwrap();
    let platform = FileDropBank::new(dir.path()).unwrap();
    let bank = BankSim::new(
        dir.path(),
        BankSimConfig {
            seed: 7,
            fail_permille: 0,
            fail_accounts: vec![FailRule {
                account: "6228480000020000063".into(),
                reason: FailureReason::AccountClosed,
                attempts: 0,
            }],
            repeat: FileFault::Orders(vec!["O1".into()]),
            truncate: FileFault::Orders(vec!["O1".into()]),
            sms_url: Some(sms_server.url()),
            content: Default::default(),
        },
    )
    .unwrap();
    let h = InstructionHeader {
        order_no: "O1".into(),
        pay_date: NaiveDate::from_ymd_opt(2023, 5, 16).unwrap(),
        department: "乐山市市中区民政局".into(),
        zb_account_no: "22150101040012345".into(),
        zb_account_name: "乐山市市中区民政局".into(),
        agreement_no: "LS-2023-001".into(),
        bank: "中国农业银行".into(),
        project_code: "SC09-1-1".into(),
        project_name: "农村最低生活保障金".into(),
    };
    platform
        .write_instruction(
            &h,
            &[
                record(1, "6228480000010000032", "13945007919"),
                record(2, "6228480000020000063", "13945015838"),
                record(3, "6228480000030000095", ""),
            ],
        )
        .unwrap();
    let round = bank.process_once().await.unwrap();
    assert_eq!(round.instructions, ["ZF_O1_01.txt"]);
    assert_eq!((round.credited, round.failed, round.sms_sent), (2, 1, 1));
    assert_eq!(round.truncated, ["HP_O1_01.txt"]);
    assert_eq!(round.repeated, ["HP_O1_01_DUP.txt"]);
    assert_eq!(sms.messages().len(), 1);
    assert!(
        sms.messages()[0]
            .text
            .contains("农村最低生活保障金420.00元")
    );

    let files = platform.scan_results("O1").unwrap();
    assert_eq!(files.len(), 2);
    let ResultFile::Rejected { reason, .. } = &files[0] else {
        panic!("the truncated file is rejected whole: {files:?}");
    };
    assert!(!reason.is_empty());
    let ResultFile::Accepted {
        file_name,
        sha256,
        count,
        total,
        ..
    } = &files[1]
    else {
        panic!("the repeat is a complete file");
    };
    assert_eq!((*count, *total), (3, Fen(126_000)));
    let records: Vec<_> = platform
        .read_result(file_name, "O1", sha256)
        .unwrap()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1].failure, Some(FailureReason::AccountClosed));
    // Read against another content's hash (the file changed since it was checked): refused
    // after the last record, never taken as the other content.
    let changed: Result<Vec<_>, _> = platform
        .read_result(file_name, "O1", &"0".repeat(64))
        .unwrap()
        .unwrap()
        .collect();
    assert!(changed.unwrap_err().to_string().contains("被改变"));
    platform.reject(files[0].file_name(), reason).unwrap();
    platform.archive(files[1].file_name()).unwrap();
    // A second poll that read the same file and archives it after the first: nothing left
    // to move, not an error; the file is in `done/` once.
    platform.archive(files[1].file_name()).unwrap();
    let done = std::fs::read_dir(dir.path().join("from_bank/done"))
        .unwrap()
        .count();
    assert_eq!(done, 1);
    assert!(dir.path().join("to_bank/HP_O1_01.txt.rej").exists());

    // The bank sees the rejection receipt and sends the complete file again.
    let round = bank.process_once().await.unwrap();
    assert_eq!(round.resent, ["HP_O1_01_RESEND.txt"]);
    let again = platform.scan_results("O1").unwrap();
    assert_eq!(again.len(), 1);
    assert!(
        matches!(&again[0], ResultFile::Accepted { sha256, .. } if sha256 == files[1].sha256())
    );
    // Nothing more to do.
    platform.archive(again[0].file_name()).unwrap();
    let idle = bank.process_once().await.unwrap();
    assert!(idle.instructions.is_empty() && idle.resent.is_empty());
    assert!(platform.scan_results("O1").unwrap().is_empty());
}
