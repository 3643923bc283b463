//! Henan's bank interface as a bank sees it, over real HTTP, on SQLite and PostgreSQL: the
//! credential is required; a bank sees only its own orders (another bank's order answers like
//! one that does not exist); nothing can be pulled before the treasury paid the bank; pages and
//! the streamed GB18030 CSV serve every open line; a post with an unknown line, a wrong amount
//! or a malformed field is refused whole and changes nothing; repeated and partial posts apply
//! each line once; a contradiction is refused; a corrected line is re-pulled once and credited
//! once; the ledger balances after every step.
#![cfg(feature = "province-henan")]

mod henan_common;

use henan_common::*;
use serde_json::{Value, json};
use yikatong::provinces::henan::ops::Henan;
use ykt_kernel::Fen;
use ykt_kernel::batch::{BatchState, LineState, check_balance};
use ykt_province_henan::calendar::WorkCalendar;
use ykt_sim::henan::bank::BankFaults;
use ykt_store::Store;
use ykt_store::testing::each_backend;

struct Bank {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Bank {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/henan/bank/v1{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    async fn csv(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}/henan/bank/v1{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap();
        let text = ykt_http::henan::budget::decode(&bytes).expect("the stream is GB18030");
        (status, text)
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/henan/bank/v1{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn result(line: &Value, outcome: &str) -> Value {
    let mut r = json!({
        "line_id": line["line_id"],
        "attempt": line["attempt"],
        "amount": line["amount"],
        "outcome": outcome,
        "date": "2023-05-20",
    });
    if outcome == "failed" {
        r["reason"] = "wrong_account".into();
    } else {
        r["sms"] = json!({"text": format!("【农村低保】{}元已于2023-05-20 10:00到账，请查收。", line["amount"].as_str().unwrap()), "sent_at": "2023-05-20 10:00"});
    }
    r
}

async fn check(store: &Store, batch: i64) {
    let b = store.batch(batch).await.unwrap().unwrap();
    check_balance(batch, b.control, &store.tally(batch).await.unwrap()).unwrap();
    assert_ledger(store).await;
}

async fn cards(store: &Store) -> Fen {
    store
        .ledger_balances()
        .await
        .unwrap()
        .into_iter()
        .filter(|(a, _)| a.kind == ykt_kernel::ledger::AccountKind::Beneficiaries)
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn bank_interface_rules() {
    each_backend("henan_bank_api", |db| async move {
        let store = &db.store;
        let batch = scenario(store, &["ABC-HN"]).await;
        let id = batch.id;
        let order = batch.order_no.clone();
        let (province, env) = world_with(store, BankFaults::default(), None, false).await;
        let cal = WorkCalendar::builtin().unwrap();
        let ops = Henan {
            store,
            province: province.as_ref(),
            ports: &env.ports,
            today: today(),
            calendar: &cal,
        };
        let admin = user(store, "admin").await;
        let abc = Bank {
            http: reqwest::Client::new(),
            base: env.platform_url.clone(),
            token: ops.issue_credential(&admin, "ABC-HN").await.unwrap(),
        };
        let psbc = Bank {
            http: reqwest::Client::new(),
            base: env.platform_url.clone(),
            token: ops.issue_credential(&admin, "PSBC-HN").await.unwrap(),
        };

        // Credentials: none, or wrong, is 401; only the hash is stored.
        let anon = Bank {
            http: reqwest::Client::new(),
            base: env.platform_url.clone(),
            token: String::new(),
        };
        assert_eq!(anon.get("/orders").await.0, 401);
        let wrong = Bank {
            token: "hnbank_0000".into(),
            http: reqwest::Client::new(),
            base: env.platform_url.clone(),
        };
        let (s, v) = wrong.get("/orders").await;
        assert_eq!((s, v["error"].as_str()), (401, Some("unauthorized")));
        let raw = db.raw_bytes().await.unwrap();
        assert!(!raw.windows(abc.token.len()).any(|w| w == abc.token.as_bytes()));

        // Before the order is pushed, the bank does not see it.
        assert_eq!(abc.get(&format!("/orders/{order}")).await.0, 404);
        let clerk = user(store, "daoli-clerk").await;
        let finance = user(store, "daoli-cz").await;
        ops.step(id, "apply_funds", &clerk, None).await.unwrap();
        ops.review(id, &finance, None, None).await.unwrap();
        ops.step(id, "push_order", &finance, None).await.unwrap();
        check(store, id).await;
        // Pushed, not yet paid: visible, but nothing to pull (第二十二条 "收到补贴资金后").
        let (s, v) = abc.get(&format!("/orders/{order}")).await;
        assert_eq!((s, v["funded"].as_bool()), (200, Some(false)));
        assert_eq!(abc.get(&format!("/orders/{order}/lines")).await.0, 409);

        // Another bank sees nothing of it: the same answer as for an order that does not exist.
        let (_, listed) = psbc.get("/orders").await;
        assert_eq!(listed["orders"].as_array().unwrap().len(), 0);
        let (s1, missing) = psbc.get("/orders/HA000000000000-000000-00").await;
        for path in [
            format!("/orders/{order}"),
            format!("/orders/{order}/lines"),
            format!("/orders/{order}/lines.csv"),
        ] {
            let (s, v) = psbc.get(&path).await;
            assert_eq!(s, 404, "{path}");
            assert_eq!(v["error"], missing["error"]);
            assert!(!v.to_string().contains("420.00"));
        }
        assert_eq!(s1, 404);
        assert_eq!(
            psbc.post(&format!("/orders/{order}/results"), json!({"results": []})).await.0,
            404
        );

        // The treasury pays; the detail is released.
        for _ in 0..3 {
            ops.sync().await.unwrap();
        }
        assert_eq!(store.batch(id).await.unwrap().unwrap().state, BatchState::Dispatched);
        check(store, id).await;

        // Pages of 5 and the stream serve the same 13 lines.
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let (s, v) = abc.get(&format!("/orders/{order}/lines?after={after}&limit=5")).await;
            assert_eq!(s, 200);
            paged.extend(v["lines"].as_array().unwrap().clone());
            match v["next_after"].as_i64() {
                Some(n) => after = n,
                None => break,
            }
        }
        assert_eq!(paged.len(), 13);
        assert_eq!(abc.get(&format!("/orders/{order}/lines?limit=0")).await.0, 400);
        // The release wrote the detail the bank pulls (sealed chunks).
        let detail = store.henan_detail(&order).await.unwrap().expect("materialised at release");
        assert_eq!((detail.round, detail.lines.count), (1, 13));
        // What it serves is what the lines say.
        let db_lines = store.henan_open_page(id, 0, 100).await.unwrap();
        assert_eq!(db_lines.len(), 13);
        for (l, w) in db_lines.iter().zip(&paged) {
            assert_eq!(
                w,
                &json!({"line_id": l.line_id, "attempt": l.attempt, "name": l.name, "account": l.account.as_str(), "bank": l.bank, "amount": l.amount.to_string(), "period": l.period, "region": l.region})
            );
        }
        let mid = paged[5]["line_id"].as_i64().unwrap();
        let (_, v) = abc.get(&format!("/orders/{order}/lines?after={mid}&limit=100")).await;
        assert_eq!(v["lines"].as_array().unwrap()[..], paged[6..]);
        assert_eq!(v["next_after"], Value::Null);
        let (s, csv) = abc.csv(&format!("/orders/{order}/lines.csv")).await;
        assert_eq!(s, 200);
        let rows: Vec<&str> = csv.lines().collect();
        assert!(rows[0].starts_with(&format!("发放单号,{order},项目简称,农村低保,笔数,13,金额,5460.00")));
        assert_eq!(rows.len(), 2 + 13 + 1);
        assert_eq!(*rows.last().unwrap(), "结束,13");
        for (row, line) in rows[2..15].iter().zip(&paged) {
            assert!(row.starts_with(&format!("{},1,", line["line_id"])));
            assert!(row.contains(line["account"].as_str().unwrap()));
        }

        // Refused whole, nothing changes: an unknown line, a wrong amount, malformed fields,
        // an attempt never pulled.
        let good = result(&paged[0], "credited");
        let before = store.tally(id).await.unwrap();
        let mut unknown = good.clone();
        unknown["line_id"] = 999_999.into();
        let mut amount = result(&paged[1], "credited");
        amount["amount"] = "419.99".into();
        let (s, v) = abc
            .post(&format!("/orders/{order}/results"), json!({"results": [good, unknown, amount]}))
            .await;
        assert_eq!(s, 422, "{v}");
        let details = v["details"].as_array().unwrap();
        assert_eq!(details.len(), 2);
        assert!(details[0]["problem"].as_str().unwrap().contains("不属于发放单"));
        assert!(details[1]["problem"].as_str().unwrap().contains("与明细金额420.00元不符"));
        for bad in [
            json!({"amount": "420"}),
            json!({"outcome": "failed"}),
            json!({"attempt": 2}),
            json!({"date": "2023/05/20"}),
            json!({"outcome": "paid"}),
        ] {
            let mut r = result(&paged[0], "credited");
            for (k, v) in bad.as_object().unwrap() {
                r[k] = v.clone();
            }
            if r["outcome"] == "failed" {
                r.as_object_mut().unwrap().remove("sms");
            }
            let (s, v) = abc.post(&format!("/orders/{order}/results"), json!({"results": [r]})).await;
            assert_eq!(s, 422, "{bad}: {v}");
        }
        assert_eq!(abc.post(&format!("/orders/{order}/results"), json!({"x": 1})).await.0, 400);
        assert_eq!(store.tally(id).await.unwrap(), before, "refused posts change nothing");
        assert!(store.henan_results(&order).await.unwrap().is_empty());
        check(store, id).await;

        // Partial, repeated and overlapping posts apply each line once.
        let first: Vec<Value> = paged[..5].iter().map(|l| result(l, "credited")).collect();
        let (s, v) = abc.post(&format!("/orders/{order}/results"), json!({"results": first})).await;
        assert_eq!((s, v["applied"].as_u64()), (200, Some(5)), "{v}");
        let (s, v) = abc.post(&format!("/orders/{order}/results"), json!({"results": first})).await;
        assert_eq!((s, v["applied"].as_u64(), v["duplicates"].as_u64()), (200, Some(0), Some(5)));
        check(store, id).await;
        // Pulled again now, the order lists only its lines still open, in both forms, and a
        // pull resumed from a line in the middle of the (materialised) detail continues after it.
        let (s, csv) = abc.csv(&format!("/orders/{order}/lines.csv")).await;
        assert_eq!(s, 200);
        let rows: Vec<&str> = csv.lines().collect();
        assert!(rows[0].contains(",笔数,8,金额,3360.00"), "{}", rows[0]);
        assert_eq!(rows.len(), 2 + 8 + 1);
        assert_eq!(*rows.last().unwrap(), "结束,8");
        for (row, line) in rows[2..10].iter().zip(&paged[5..]) {
            assert!(row.starts_with(&format!("{},1,", line["line_id"])), "{row}");
        }
        let mid = paged[8]["line_id"].as_i64().unwrap();
        let (s, csv) = abc.csv(&format!("/orders/{order}/lines.csv?after={mid}")).await;
        assert_eq!(s, 200);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows.len(), 2 + 4 + 1, "{csv}");
        assert!(rows[2].starts_with(&format!("{},1,", paged[9]["line_id"])), "{csv}");
        assert_eq!(*rows.last().unwrap(), "结束,4");
        let (s, v) = abc.get(&format!("/orders/{order}/lines?after={mid}&limit=3")).await;
        assert_eq!(s, 200);
        assert_eq!(v["open"]["count"], 8);
        let ids: Vec<i64> = v["lines"].as_array().unwrap().iter().map(|l| l["line_id"].as_i64().unwrap()).collect();
        let want: Vec<i64> = paged[9..12].iter().map(|l| l["line_id"].as_i64().unwrap()).collect();
        assert_eq!(ids, want);
        assert_eq!(v["lines"][0], paged[9]);
        assert_eq!(v["next_after"], paged[11]["line_id"]);
        // A hand-over while lines are still in flight is refused.
        let hand = json!({"handler": "张经办", "handover_no": 7, "credited": {"count": 12, "amount": "5040.00"}, "failed": {"count": 1, "amount": "420.00"}});
        assert_eq!(abc.post(&format!("/orders/{order}/handover"), hand.clone()).await.0, 409);
        let mut all: Vec<Value> = paged.iter().map(|l| result(l, "credited")).collect();
        all[12] = result(&paged[12], "failed");
        all.reverse();
        let (s, v) = abc.post(&format!("/orders/{order}/results"), json!({"results": all})).await;
        assert_eq!((s, v["applied"].as_u64(), v["duplicates"].as_u64()), (200, Some(8), Some(5)), "{v}");
        check(store, id).await;
        assert_eq!(cards(store).await, Fen(12 * 42000));
        // A contradiction of a recorded outcome is refused.
        let flip = result(&paged[0], "failed");
        let (s, v) = abc.post(&format!("/orders/{order}/results"), json!({"results": [flip]})).await;
        assert_eq!(s, 409, "{v}");
        assert_eq!(cards(store).await, Fen(12 * 42000));

        // The hand-over, checked against the platform, with its working-day deadline.
        let (s, v) = abc.post(&format!("/orders/{order}/handover"), hand.clone()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["check_by"], "2023-05-26");
        assert_eq!(v["discrepancies"].as_array().unwrap().len(), 0);
        assert_eq!((v["handover_no"].as_i64(), v["replayed"].as_bool()), (Some(7), Some(false)));
        // Re-sent with the same number (its answer was lost): the recorded hand-over's
        // answer, nothing recorded again.
        let (s, again) = abc.post(&format!("/orders/{order}/handover"), hand.clone()).await;
        assert_eq!((s, again["seq"].clone(), again["replayed"].as_bool()), (200, v["seq"].clone(), Some(true)), "{again}");
        assert_eq!(again["check_by"], v["check_by"]);
        assert_eq!(store.henan_handovers(Some(&order)).await.unwrap().len(), 1);
        // The same number with other totals is refused.
        let mut other = hand.clone();
        other["credited"] = json!({"count": 11, "amount": "4620.00"});
        let (s, v) = abc.post(&format!("/orders/{order}/handover"), other).await;
        assert_eq!(s, 409, "{v}");
        assert!(v["message"].as_str().unwrap().contains("交接编号7"), "{v}");
        assert_eq!(store.henan_handovers(Some(&order)).await.unwrap().len(), 1);

        // The failed line, corrected with signatures, is pulled again once and credited once.
        let failed_id = paged[12]["line_id"].as_i64().unwrap();
        assert_eq!(
            store.lines(id, 0, i64::MAX).await.unwrap().iter().find(|l| l.id == failed_id).unwrap().state,
            LineState::Failed
        );
        ops.correct(id, failed_id, &clerk, "daoli-head", "本人 签字人", None, None, "账户已激活，核实无误")
            .await
            .unwrap();
        assert_eq!(abc.get(&format!("/orders/{order}/lines")).await.1["lines"].as_array().unwrap().len(), 0, "a corrected line waits for the department's notice");
        assert_eq!(ops.repull(id, &clerk).await.unwrap(), 1);
        check(store, id).await;
        let (_, v) = abc.get(&format!("/orders/{order}/lines")).await;
        let again = v["lines"].as_array().unwrap();
        assert_eq!(again.len(), 1, "only the corrected line");
        assert_eq!((again[0]["line_id"].as_i64(), again[0]["attempt"].as_i64()), (Some(failed_id), Some(2)));
        assert_eq!(store.henan_detail(&order).await.unwrap().unwrap().round, 2, "a new round");
        let (s, csv) = abc.csv(&format!("/orders/{order}/lines.csv")).await;
        assert_eq!(s, 200);
        let rows: Vec<&str> = csv.lines().collect();
        assert!(rows[0].contains(",笔数,1,金额,420.00"), "{}", rows[0]);
        assert_eq!(rows.len(), 2 + 1 + 1);
        assert!(rows[2].starts_with(&format!("{failed_id},2,")), "{csv}");
        assert!(rows[2].contains(again[0]["account"].as_str().unwrap()));
        let credit = result(&again[0], "credited");
        let (s, v) = abc.post(&format!("/orders/{order}/results"), json!({"results": [credit.clone(), credit]})).await;
        assert_eq!((s, v["applied"].as_u64(), v["duplicates"].as_u64()), (200, Some(1), Some(1)), "{v}");
        assert_eq!(abc.get(&format!("/orders/{order}/lines")).await.1["lines"].as_array().unwrap().len(), 0);
        let attempts = store.line_attempts(failed_id).await.unwrap();
        assert_eq!(attempts.len(), 2);
        assert_eq!(cards(store).await, Fen(13 * 42000), "every line credited once");
        ops.sync().await.unwrap();
        assert_eq!(store.batch(id).await.unwrap().unwrap().state, BatchState::Settled);
        check(store, id).await;

        // Statements: the annual one waits for January; a wrong monthly one does not match.
        let (s, _) = abc.post("/statements", json!({"period": "2023", "projects": []})).await;
        assert_eq!(s, 409);
        let (s, v) = abc
            .post("/statements", json!({"period": "2023-05", "projects": [{"code": "HN03", "count": 13, "amount": "5460.00"}]}))
            .await;
        assert_eq!((s, v["matches"].as_bool()), (200, Some(true)), "{v}");
        let (_, v) = abc
            .post("/statements", json!({"period": "2023-05", "projects": [{"code": "HN03", "count": 12, "amount": "5040.00"}]}))
            .await;
        assert_eq!(v["matches"], false);
        assert_eq!(abc.post("/statements", json!({"period": "2023-5", "projects": []})).await.0, 400);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_result_post_sixteen_times_at_once_is_applied_once() {
    each_backend("henan_result_race", |db| async move {
        let store = &db.store;
        let batch = scenario(store, &["ABC-HN"]).await;
        let (id, order) = (batch.id, batch.order_no.clone());
        let (province, env) = world_with(store, BankFaults::default(), None, false).await;
        let cal = WorkCalendar::builtin().unwrap();
        let ops = Henan {
            store,
            province: province.as_ref(),
            ports: &env.ports,
            today: today(),
            calendar: &cal,
        };
        let admin = user(store, "admin").await;
        let abc = Bank {
            http: reqwest::Client::new(),
            base: env.platform_url.clone(),
            token: ops.issue_credential(&admin, "ABC-HN").await.unwrap(),
        };
        let clerk = user(store, "daoli-clerk").await;
        let finance = user(store, "daoli-cz").await;
        ops.step(id, "apply_funds", &clerk, None).await.unwrap();
        ops.review(id, &finance, None, None).await.unwrap();
        ops.step(id, "push_order", &finance, None).await.unwrap();
        for _ in 0..3 {
            ops.sync().await.unwrap();
        }
        let (_, v) = abc.get(&format!("/orders/{order}/lines?limit=100")).await;
        let lines = v["lines"].as_array().unwrap().clone();
        assert_eq!(lines.len(), 13);
        let mut all: Vec<Value> = lines.iter().map(|l| result(l, "credited")).collect();
        all[12] = result(&lines[12], "failed");
        let body = json!({ "results": all });

        // Sixteen at once, then twice more: every line applied once; the others are
        // duplicates, or told to post again (409) while the same lines are being applied.
        let path = format!("/orders/{order}/results");
        let abc = std::sync::Arc::new(abc);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (abc, path, body) = (abc.clone(), path.clone(), body.clone());
            tasks.push(tokio::spawn(async move { abc.post(&path, body).await }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers.push(abc.post(&path, body.clone()).await);
        answers.push(abc.post(&path, body.clone()).await);
        let mut applied = 0;
        let mut codes = std::collections::BTreeMap::<u16, usize>::new();
        for (s, v) in &answers {
            *codes.entry(*s).or_default() += 1;
            match s {
                200 => {
                    let a = v["applied"].as_u64().unwrap();
                    assert_eq!(a + v["duplicates"].as_u64().unwrap(), 13, "{v}");
                    applied += a;
                }
                409 => assert!(
                    v["message"].as_str().unwrap().contains("请稍后重新反馈"),
                    "{v}"
                ),
                _ => panic!("{s} {v}"),
            }
        }
        eprintln!("henan result race: answers {codes:?}, {applied} results applied");
        assert_eq!(applied, 13, "each result applied once");
        assert_eq!(
            answers.last().unwrap().0,
            200,
            "the last, alone, is all duplicates"
        );
        assert_eq!(store.henan_results(&order).await.unwrap().len(), 13);
        let tally = store.tally(id).await.unwrap();
        assert_eq!(
            (
                tally.credited.count,
                tally.failed.count,
                tally.in_flight.count
            ),
            (12, 1, 0)
        );
        assert_eq!(cards(store).await, Fen(12 * 42000), "never credited twice");
        check(store, id).await;
    })
    .await;
}

#[tokio::test]
async fn a_tampered_detail_is_refused_not_served() {
    each_backend("henan_detail_tamper", |db| async move {
        let store = &db.store;
        let batch = scenario(store, &["ABC-HN"]).await;
        let (id, order) = (batch.id, batch.order_no.clone());
        let (province, env) = world_with(store, BankFaults::default(), None, false).await;
        let cal = WorkCalendar::builtin().unwrap();
        let ops = Henan {
            store,
            province: province.as_ref(),
            ports: &env.ports,
            today: today(),
            calendar: &cal,
        };
        let admin = user(store, "admin").await;
        let abc = Bank {
            http: reqwest::Client::new(),
            base: env.platform_url.clone(),
            token: ops.issue_credential(&admin, "ABC-HN").await.unwrap(),
        };
        let clerk = user(store, "daoli-clerk").await;
        let finance = user(store, "daoli-cz").await;
        ops.step(id, "apply_funds", &clerk, None).await.unwrap();
        ops.review(id, &finance, None, None).await.unwrap();
        ops.step(id, "push_order", &finance, None).await.unwrap();
        for _ in 0..3 {
            ops.sync().await.unwrap();
        }
        let (s, before) = abc.csv(&format!("/orders/{order}/lines.csv")).await;
        assert_eq!(s, 200);
        assert!(before.ends_with("结束,13\r\n"));

        // One byte of the sealed detail altered in the database.
        let flip = match db.backend() {
            ykt_store::Backend::Sqlite => "UPDATE henan_release_chunks SET body = CAST(substr(body, 1, 40) || CASE WHEN substr(body, 41, 1) = X'00' THEN X'01' ELSE X'00' END || substr(body, 42) AS BLOB)",
            ykt_store::Backend::Postgres => "UPDATE henan_release_chunks SET body = set_byte(body, 40, get_byte(body, 40) # 1)",
        };
        assert_eq!(ykt_store::testing::exec(store, flip).await.unwrap(), 1);
        for path in [
            format!("/orders/{order}/lines.csv"),
            format!("/orders/{order}/lines"),
            format!("/orders/{order}/lines?after=3&limit=2"),
        ] {
            let (s, v) = abc.get(&path).await;
            assert_eq!((s, v["code"].as_str()), (500, Some("detail_corrupt")), "{path}: {v}");
            assert!(v["message"].as_str().unwrap().contains("校验失败"), "{v}");
            assert!(!v.to_string().contains("420.00"), "nothing of the detail: {v}");
        }
        // The pull is on record as not completed.
        let pulls = store.henan_pulls(&order).await.unwrap();
        assert!(!pulls.last().unwrap().complete);
    })
    .await;
}
