//! The shared scenario (`tests/scenarios/standard/`) through 黑龙江省's whole unified-treasury
//! cycle, with a grain-risk-fund roster next to it, against the simulated budget system and
//! treasury agent bank over real HTTP. One human-readable snapshot holds what a supervisor
//! would read: the validation report, the workflow trace (step, role, state), every message
//! exchanged with the budget system (masked), the bank's results, the ledger, the clearing
//! statements, the notices with their deadlines and the supervision indicators. The same
//! snapshot is asserted on SQLite and PostgreSQL; the invariants are checked after every step.

#![cfg(feature = "province-heilongjiang")]

mod common;
mod heilongjiang_common;

use common::*;
use heilongjiang_common::*;
use std::collections::HashMap;
use std::fmt::Write;
use yikatong::provinces::heilongjiang::ops::Hlj;
use yikatong::provinces::heilongjiang::{notices, reports};
use ykt_kernel::card::{CardRecord, CardStatus};
use ykt_kernel::ports::FailureReason;
use ykt_kernel::{BankAccount, LineState, ResidentId};
use ykt_store::cycle::LineFix;
use ykt_store::payments::BatchRow;
use ykt_store::testing::{TestDb, each_backend};
use ykt_store::{ImportMeta, kinds, ok_rows};

/// 张桂兰's card, re-issued by HR&SS after the bank reported 账号错误.
const REISSUED: &str = "6228480000031000102";

async fn step(h: &Hlj<'_>, o: &mut String, b: i64, code: &str, who: &ykt_kernel::User) {
    for r in h.step(b, code, who, None).await.unwrap().all().unwrap() {
        writeln!(
            o,
            "  批次{b} {} [{}] {}",
            r.step.code,
            r.step.role.label_zh(),
            match r.moved {
                Some((f, t)) => format!("{} → {}", f.as_str(), t.as_str()),
                None => "（状态不变）".into(),
            }
        )
        .unwrap();
        assert_invariants(h.store, b).await;
    }
}

async fn collect(h: &Hlj<'_>, o: &mut String, b: i64) {
    for _ in 0..3 {
        let r = h.collect(b).await.unwrap();
        let res = r.results.as_ref().unwrap();
        writeln!(
            o,
            "  批次{b} collect_results [系统] {} 到账{}笔{}元 失败{}笔 重复{}条 异常{}条",
            match r.moved {
                Some((f, t)) => format!("{} → {}", f.as_str(), t.as_str()),
                None => "（状态不变）".into(),
            },
            res.credited.count,
            res.credited.amount,
            res.failed.count,
            res.duplicates,
            res.anomalies.len()
        )
        .unwrap();
        assert_invariants(h.store, b).await;
        if r.moved.is_some() || h.store.tally(b).await.unwrap().in_flight.count == 0 {
            break;
        }
    }
}

async fn run(db: &TestDb) -> String {
    let store = &db.store;
    let w = World::start(bank(false, true, true)).await;
    let h = w.hlj(store);
    let province = w.province.as_ref();
    load_registers(store).await;
    let dir = scenario();
    let tmp = tempfile::tempdir().unwrap();
    import(store, province, PROJECT, &dir.join("earlier.csv")).await;
    import(store, province, URBAN, &dir.join("urban.csv")).await;
    let (report, result) = import(store, province, PROJECT, &roster_xlsx(tmp.path())).await;
    let (grain_report, grain_result) = import_grain(store, province).await;
    let dibao: BatchRow = result.batches[0].clone();
    let grain: BatchRow = grain_result.batches[0].clone();
    let batches = [dibao.id, grain.id];
    let clerk = clerk();
    let finance = finance();

    let mut o = String::new();
    writeln!(o, "== 校验结果 validation ==").unwrap();
    for r in [&report, &grain_report] {
        let s = &r.summary;
        writeln!(
            o,
            "{} {} {}：{}行 通过{} 未通过{} 通过金额{}元",
            r.project_code,
            r.project_name,
            r.period,
            s.lines,
            s.accepted,
            s.rejected,
            s.accepted_amount
        )
        .unwrap();
        for p in &r.problems {
            writeln!(
                o,
                "  第{}行 {} {} {} {} {}",
                p.row, p.code, p.follow_up, p.name, p.id, p.message
            )
            .unwrap();
        }
    }

    let mut trace = String::new();
    w.day(0);
    let policies = h.publish_policies().await.unwrap();
    for b in batches {
        step(&h, &mut trace, b, "submit_plan", &clerk).await;
    }
    w.day(1);
    for b in batches {
        step(&h, &mut trace, b, "request_payment", &clerk).await;
        step(&h, &mut trace, b, "finance_approve", &finance).await;
    }
    w.day(2);
    for b in batches {
        collect(&h, &mut trace, b).await;
    }
    h.post_bulletin(dibao.id, &clerk, None).await.unwrap();

    w.day(4);
    // 账号错误: HR&SS re-issues the card; 账户休眠: reactivated, paid again unchanged;
    // 户名不符: refunded through the original channel.
    for b in batches {
        for l in store.lines(b, 0, i64::MAX).await.unwrap() {
            if l.state != LineState::Failed {
                continue;
            }
            match l.fail_reason.as_deref().and_then(FailureReason::parse) {
                Some(FailureReason::WrongAccount) => {
                    let card = CardRecord {
                        resident_id: ResidentId::from_trusted(l.resident_id.as_str()).unwrap(),
                        name: l.name.clone(),
                        card_no: "B10000003".into(),
                        bank: l.bank.clone(),
                        account: BankAccount::parse(REISSUED).unwrap(),
                        status: CardStatus::Normal,
                        activated: true,
                    };
                    store
                        .import_cards(
                            ok_rows(vec![card]),
                            ImportMeta::for_bytes(
                                kinds::CARDS,
                                "补换卡.csv",
                                REISSUED.as_bytes(),
                                "hrss",
                            ),
                        )
                        .await
                        .unwrap();
                    let fix = LineFix {
                        account: Some(BankAccount::parse(REISSUED).unwrap()),
                        reason: "账号错误：已补换社会保障卡".into(),
                        ..LineFix::default()
                    };
                    h.correct(b, l.id, &fix, &clerk).await.unwrap();
                    writeln!(trace, "  批次{b} 第{}行 更正账号（补换卡）", l.row_no).unwrap();
                }
                Some(FailureReason::DormantAccount) => {
                    let fix = LineFix {
                        reason: "账户休眠：受益人已激活".into(),
                        ..LineFix::default()
                    };
                    h.correct(b, l.id, &fix, &clerk).await.unwrap();
                    writeln!(trace, "  批次{b} 第{}行 激活后重新支付", l.row_no).unwrap();
                }
                other => {
                    let amount = h
                        .refund(b, l.id, "户名不符，本期无法发放", &clerk, &finance)
                        .await
                        .unwrap();
                    writeln!(
                        trace,
                        "  批次{b} 第{}行 原渠道退回{amount}元（{}）",
                        l.row_no,
                        other.map(|r| r.label_zh()).unwrap_or("-")
                    )
                    .unwrap();
                }
            }
            assert_invariants(store, b).await;
        }
        if store.tally(b).await.unwrap().pending.count > 0 {
            let n = h.redispatch(b, &clerk).await.unwrap();
            writeln!(trace, "  批次{b} 重新支付{n}笔").unwrap();
            assert_invariants(store, b).await;
        }
        collect(&h, &mut trace, b).await;
    }
    w.day(5);
    for b in batches {
        step(&h, &mut trace, b, "reconcile", &finance).await;
    }
    w.day(6);
    for b in batches {
        step(&h, &mut trace, b, "publish", &clerk).await;
    }
    let today = w.day(9);
    h.post_bulletin(grain.id, &clerk, None).await.unwrap();

    writeln!(o, "\n== 流程 workflow trace (step, role, state) ==").unwrap();
    o.push_str(&trace);
    for b in batches {
        writeln!(o, "  批次{b}:").unwrap();
        for s in store.batch_steps(b).await.unwrap() {
            writeln!(
                o,
                "    {:>2}. {} {} {} → {} {}",
                s.seq, s.step, s.role, s.from_state, s.to_state, s.actor
            )
            .unwrap();
        }
    }

    let mask = province.mask_policy();
    writeln!(o, "\n== 报文 treasury messages ==").unwrap();
    for b in [&dibao, &grain] {
        for m in store.hlj_messages(&b.order_no).await.unwrap() {
            o.push_str(&reports::render_message(&m, &mask));
        }
    }

    writeln!(o, "\n== 发放结果 bank results ==").unwrap();
    for b in [&dibao, &grain] {
        writeln!(o, "批次{} {}", b.id, b.project_name).unwrap();
        o.push_str(&reports::render_results(store, province, b).await.unwrap());
    }

    writeln!(o, "\n== 资金台账 ledger ==").unwrap();
    let county: HashMap<i64, String> = batches.iter().map(|b| (*b, "道里区".to_owned())).collect();
    o.push_str(&reports::render_ledger(
        &store.hlj_ledger(&batches).await.unwrap(),
        &county,
    ));
    for b in batches {
        let now = store.batch(b).await.unwrap().unwrap();
        let c = reports::clearing(store, &now).await.unwrap();
        assert!(c.cleared, "{}", reports::render_clearing(&c));
        o.push_str(&reports::render_clearing(&c));
    }

    writeln!(o, "\n== 公示公开 notices ==").unwrap();
    writeln!(o, "补贴政策专栏：{policies}个项目").unwrap();
    let duties = notices::duties(store, "heilongjiang").await.unwrap();
    let ours: Vec<_> = duties
        .into_iter()
        .filter(|d| batches.contains(&d.batch_id))
        .collect();
    o.push_str(&notices::render_duties(&ours, today));
    let mut ns = store.notices(Some("230102")).await.unwrap();
    ns.sort_by(|a, b| a.id.cmp(&b.id));
    for n in ns {
        if [&dibao.order_no, &grain.order_no]
            .iter()
            .any(|o| n.id.starts_with(o.as_str()))
        {
            writeln!(
                o,
                "-- {} [{}] {} --\n{}",
                n.id, n.kind, n.published_on, n.body
            )
            .unwrap();
        }
    }

    writeln!(o, "\n== 监管指标 KPIs ==").unwrap();
    let k = reports::kpis(store, province, today).await.unwrap();
    o.push_str(&reports::render_kpis(&k));
    o
}

#[tokio::test]
async fn standard_scenario_through_the_whole_unified_treasury_cycle() {
    each_backend("hlj_cycle", |db| async move {
        let text = run(&db).await;
        insta::assert_snapshot!("standard_cycle", text);
    })
    .await;
}
