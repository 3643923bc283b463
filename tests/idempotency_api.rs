//! Idempotency of the JSON API (issue #9, "Faults"): a mutating request sent twice, or sixteen
//! times at once, with the same `Idempotency-Key` has exactly one effect and every sender
//! gets the same response; the same key with another request is refused; a roster file is
//! imported once whatever the key; two makers submitting at once, and two finance reviewers
//! approving at once (on SQLite and PostgreSQL), make one transition.

#![cfg(feature = "province-heilongjiang")]

mod web_common;

use reqwest::StatusCode;
use serde_json::{Value, json};
use web_common::{PASSWORD, client, login, prepared, prepared_on, scenario, serve};

async fn post_keyed(base: &str, token: &str, path: &str, key: Option<&str>, body: Value) -> Answer {
    let mut r = client()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    let r = r.send().await.unwrap();
    let st = r.status();
    let replayed = r
        .headers()
        .get("idempotency-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (st, replayed, r.text().await.unwrap())
}

/// One answer: status, the `Idempotency-Replayed` header, body.
type Answer = (StatusCode, Option<String>, String);

/// `path` posted by sixteen senders at once with one `key`: one of them does the work, the
/// other fifteen get its answer replayed, all sixteen the same status and body. That answer.
async fn sixteen_at_once(base: &str, token: &str, path: &str, key: &str, body: Value) -> Answer {
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (b, t, p, k, body) = (
            base.to_owned(),
            token.to_owned(),
            path.to_owned(),
            key.to_owned(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            post_keyed(&b, &t, &p, Some(&k), body).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let first = answers
        .iter()
        .find(|a| a.1.is_none())
        .expect("one request did the work")
        .clone();
    for a in &answers {
        assert_eq!(
            (a.0, &a.2),
            (first.0, &first.2),
            "{path}: the same response to all"
        );
    }
    let replays = answers
        .iter()
        .filter(|a| a.1.as_deref() == Some("true"))
        .count();
    assert_eq!(replays, 15, "{path}: fifteen replays");
    first
}

/// Steps recorded and audit entries of batch 1 for `step`.
async fn effects(store: &ykt_store::Store, step: &str) -> (usize, usize) {
    let steps = store
        .batch_steps(1)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.step == step)
        .count();
    let audit = store
        .audit_entries(1, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.record.subject == "batch:1" && e.record.action == format!("batch.{step}"))
        .count();
    (steps, audit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_has_one_effect_and_one_response() {
    let env = prepared(&[
        ("maker", "dept_maker", "230102"),
        ("maker2", "dept_maker", "230102"),
    ]);
    let srv = serve(&env.config(), |_| {}).await;
    let base = srv.base.clone();
    let (maker, _) = login(&base, "maker", PASSWORD).await.unwrap();
    let path = "/api/v1/batches/1/steps/submit_plan";

    // Sixteen at once with one key: one transition, sixteen identical responses.
    let first = sixteen_at_once(&base, &maker, path, "k-submit-1", json!({})).await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.2);
    assert_eq!(effects(&srv.store, "submit_plan").await, (1, 1));

    // Sent again later: the stored response, nothing new.
    let again = post_keyed(&base, &maker, path, Some("k-submit-1"), json!({})).await;
    assert_eq!((again.0, &again.2), (first.0, &first.2));
    assert_eq!(again.1.as_deref(), Some("true"));
    assert_eq!(effects(&srv.store, "submit_plan").await, (1, 1));

    // The same key with a different payload, or on another path: refused, nothing done.
    for (p, body) in [
        (path, json!({"reason": "另一请求"})),
        ("/api/v1/batches/1/steps/dept_return", json!({})),
    ] {
        let (st, _, text) = post_keyed(&base, &maker, p, Some("k-submit-1"), body).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["code"], "idempotency_key_reused", "{v}");
        assert!(v["message"].as_str().unwrap().contains("Idempotency-Key"));
    }
    // Another user's key space is their own: the same key string is a new request for them,
    // which the workflow refuses (the plan is already submitted), not a replay.
    let (maker2, _) = login(&base, "maker2", PASSWORD).await.unwrap();
    let (st, replayed, _) = post_keyed(&base, &maker2, path, Some("k-submit-1"), json!({})).await;
    assert_ne!(st, StatusCode::OK);
    assert_eq!(replayed, None);
    assert_eq!(effects(&srv.store, "submit_plan").await, (1, 1));

    // A malformed key is refused before anything runs.
    let (st, _, text) = post_keyed(&base, &maker, path, Some("含中文"), json!({})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("bad_idempotency_key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_roster_upload_is_one_import_with_or_without_the_key() {
    let env = web_common::Env::new();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    env.ok(&["import", "registry", &s(&scenario().join("registry.csv"))]);
    env.ok(&["import", "deaths", &s(&scenario().join("deaths.csv"))]);
    env.add_user("maker", "dept_maker", "230102");
    let srv = serve(&env.config(), |_| {}).await;
    let base = srv.base.clone();
    let (maker, _) = login(&base, "maker", PASSWORD).await.unwrap();
    let bytes = std::fs::read(scenario().join("roster.csv")).unwrap();
    let upload = |key: Option<&'static str>| {
        let (base, maker, bytes) = (base.clone(), maker.clone(), bytes.clone());
        async move {
            // A fixed boundary, so that the same upload is the same bytes.
            let boundary = "ykt-test-boundary";
            let mut body = Vec::new();
            for (name, value) in [
                ("province", "heilongjiang"),
                ("project", "农村最低生活保障金"),
                ("period", "2023-05"),
            ] {
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
                );
            }
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"roster.csv\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(&bytes);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let mut r = client()
                .post(format!("{base}/api/v1/rosters"))
                .bearer_auth(&maker)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body);
            if let Some(k) = key {
                r = r.header("Idempotency-Key", k);
            }
            let r = r.send().await.unwrap();
            let st = r.status();
            let replayed = r.headers().contains_key("idempotency-replayed");
            (st, replayed, r.text().await.unwrap())
        }
    };
    let mut tasks = Vec::new();
    for _ in 0..16 {
        tasks.push(tokio::spawn(upload(Some("roster-1"))));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let first = answers.iter().find(|a| !a.1).unwrap().clone();
    assert!(first.0.is_success(), "{}", first.2);
    assert!(
        answers.iter().all(|a| (a.0, &a.2) == (first.0, &first.2)),
        "the same response to all sixteen"
    );
    assert_eq!(answers.iter().filter(|a| a.1).count(), 15);
    // Without a key, the same file again: the content hash says it was imported already.
    let (st, replayed, text) = upload(None).await;
    assert!(!replayed);
    assert_ne!(text, first.2, "not a replay: the file's own at-most-once");
    assert!(
        st == StatusCode::CONFLICT || text.contains("已") || text.contains("already"),
        "{st} {text}"
    );
    let batches = srv.store.batches(None, None).await.unwrap();
    assert_eq!(batches.len(), 1, "one import, one batch");
    let lines = srv.store.lines(batches[0].id, 0, i64::MAX).await.unwrap();
    assert_eq!(lines.len() as u64, batches[0].control.count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_roster_sixteen_times_at_once_without_a_key_is_one_import() {
    ykt_store::testing::each_database_url("idempotency_roster_race", roster_race_on).await;
}

/// Sixteen uploads of the same file at the same moment, each without a key (sixteen browser
/// tabs), then twice more one after the other: the file's content hash lets exactly one
/// import through; every other upload is answered `already_imported` with the same roster
/// (or refused saying so), never a server error.
async fn roster_race_on(database_url: Option<String>) {
    let env = web_common::Env::on(database_url);
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    env.ok(&["import", "registry", &s(&scenario().join("registry.csv"))]);
    env.ok(&["import", "deaths", &s(&scenario().join("deaths.csv"))]);
    env.add_user("maker", "dept_maker", "230102");
    let srv = serve(&env.config(), |_| {}).await;
    let base = srv.base.clone();
    let (maker, _) = login(&base, "maker", PASSWORD).await.unwrap();
    let bytes = std::fs::read(scenario().join("roster.csv")).unwrap();
    let upload = || {
        let (base, maker, bytes) = (base.clone(), maker.clone(), bytes.clone());
        async move {
            let form = reqwest::multipart::Form::new()
                .text("province", "heilongjiang")
                .text("project", "农村最低生活保障金")
                .text("period", "2023-05")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(bytes)
                        .file_name("roster.csv")
                        .mime_str("text/csv")
                        .unwrap(),
                );
            let r = client()
                .post(format!("{base}/api/v1/rosters"))
                .bearer_auth(&maker)
                .multipart(form)
                .send()
                .await
                .unwrap();
            let st = r.status();
            (st, r.text().await.unwrap())
        }
    };
    let mut tasks = Vec::new();
    for _ in 0..16 {
        tasks.push(tokio::spawn(upload()));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers.push(upload().await);
    answers.push(upload().await);
    // Each answer: imported, or already imported (the same roster named), or a refusal
    // saying so; never a server error.
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut rosters = std::collections::BTreeSet::new();
    for (st, text) in &answers {
        assert!(!st.is_server_error(), "{st} {text}");
        let v: Value = serde_json::from_str(text).unwrap();
        let outcome = if st.is_success() {
            rosters.insert(v["result"]["roster_id"].as_i64().unwrap());
            v["result"]["outcome"].as_str().unwrap().to_owned()
        } else {
            assert!(
                v["message"].as_str().unwrap_or_default().contains("已导入"),
                "{st} {v}"
            );
            format!("refused {}", st.as_u16())
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("roster race ({}): {outcomes:?}", env.backend());
    assert_eq!(
        outcomes.get("imported"),
        Some(&1),
        "one import: {outcomes:?}"
    );
    assert_eq!(rosters.len(), 1, "every answer names the same roster");
    let batches = srv.store.batches(None, None).await.unwrap();
    assert_eq!(batches.len(), 1, "one batch");
    let lines = srv.store.lines(batches[0].id, 0, i64::MAX).await.unwrap();
    assert_eq!(lines.len() as u64, batches[0].control.count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_reviewers_approving_at_once_make_one_transition() {
    let env = prepared(&[
        ("maker", "dept_maker", "230102"),
        ("maker2", "dept_maker", "230102"),
    ]);
    let srv = serve(&env.config(), |_| {}).await;
    let base = srv.base.clone();
    let (m1, _) = login(&base, "maker", PASSWORD).await.unwrap();
    let (m2, _) = login(&base, "maker2", PASSWORD).await.unwrap();
    // Two people of the role allowed to take the step, at the same moment, without keys
    // (different people cannot share one): the batch's optimistic lock lets one through.
    let path = "/api/v1/batches/1/steps/submit_plan";
    let (a, b) = tokio::join!(
        post_keyed(&base, &m1, path, None, json!({})),
        post_keyed(&base, &m2, path, None, json!({}))
    );
    let ok = [&a, &b].iter().filter(|r| r.0 == StatusCode::OK).count();
    assert_eq!(ok, 1, "exactly one went through: {a:?} {b:?}");
    let loser = if a.0 == StatusCode::OK { &b } else { &a };
    let v: Value = serde_json::from_str(&loser.2).unwrap();
    assert!(v["code"].is_string() && v["message"].is_string(), "{v}");
    assert_eq!(
        effects(&srv.store, "submit_plan").await,
        (1, 1),
        "one step, one audit entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_finance_reviewers_approving_at_once_make_one_transition() {
    ykt_store::testing::each_database_url("idempotency_reviewers", two_finance_reviewers_on).await;
}

/// Two different people holding the finance reviewer's role approve batch 1's payment request
/// at the same moment (no keys: different people cannot share one), with the budget system
/// simulated (the approval is relayed to it): exactly one transition and one audit entry, the
/// other told in Chinese why not, never a 5xx.
async fn two_finance_reviewers_on(database_url: Option<String>) {
    let env = prepared_on(
        database_url,
        &[
            ("maker", "dept_maker", "230102"),
            ("fin1", "finance_reviewer", "230102"),
            ("fin2", "finance_reviewer", "230102"),
        ],
    );
    let sims = ykt_sim::heilongjiang::HljSims::start(
        ykt_sim::heilongjiang::BankConfig {
            name: "中国工商银行".into(),
            seed: 2,
            fail_share: 0.0,
            duplicate: false,
            reorder: false,
            partial: false,
            cross_bank_fee_fen: 150,
        },
        chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap(),
    )
    .await
    .unwrap();
    let mut cfg = env.config();
    cfg.province_settings = json!({ "budget_url": sims.budget.url() });
    let srv = serve(&cfg, |_| {}).await;
    let base = srv.base.clone();
    let (maker, _) = login(&base, "maker", PASSWORD).await.unwrap();
    for step in ["submit_plan", "request_payment"] {
        let path = format!("/api/v1/batches/1/steps/{step}");
        let (st, _, text) = post_keyed(&base, &maker, &path, None, json!({})).await;
        assert_eq!(st, StatusCode::OK, "{step}: {text}");
    }
    let (f1, _) = login(&base, "fin1", PASSWORD).await.unwrap();
    let (f2, _) = login(&base, "fin2", PASSWORD).await.unwrap();
    let path = "/api/v1/batches/1/steps/finance_approve";
    for round in 0..2 {
        let (a, b) = tokio::join!(
            post_keyed(&base, &f1, path, None, json!({})),
            post_keyed(&base, &f2, path, None, json!({}))
        );
        let ok = [&a, &b].iter().filter(|r| r.0 == StatusCode::OK).count();
        assert_eq!(
            ok,
            usize::from(round == 0),
            "round {round}: one approval at most: {a:?} {b:?}"
        );
        for r in [&a, &b].into_iter().filter(|r| r.0 != StatusCode::OK) {
            // Overtaken while taking the step: the other's transition committed first (409
            // conflict); arriving after it: the batch no longer waits for approval (403
            // workflow.wrong_state). Never the peer's answer to a second approval (422), never
            // a server error.
            let allowed: &[StatusCode] = if round == 0 {
                &[StatusCode::CONFLICT, StatusCode::FORBIDDEN]
            } else {
                &[StatusCode::FORBIDDEN]
            };
            assert!(allowed.contains(&r.0), "a clear refusal: {r:?}");
            let v: Value = serde_json::from_str(&r.2).unwrap();
            let message = v["message"].as_str().unwrap_or_default();
            let code = v["code"].as_str().unwrap_or_default();
            assert!(code == "conflict" || code == "workflow.wrong_state", "{v}");
            eprintln!("round {round}: refused {} {}: {message}", r.0, v["code"]);
            assert!(
                message
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "the refusal says why in Chinese: {v}"
            );
        }
        assert_eq!(
            effects(&srv.store, "finance_approve").await,
            (1, 1),
            "round {round}: one step, one audit entry"
        );
    }
    let state = srv.store.batch(1).await.unwrap().unwrap().state;
    assert_ne!(
        state.as_str(),
        "funding_requested",
        "the approval went through"
    );
}

/// Every mutating route of the API (the router's own list), sent by sixteen senders at once with
/// one key: sixteen identical answers, fifteen of them replays, at most one effect; the same key
/// with another body refused. The step route cancels the draft batch (one transition, one audit
/// entry); the others, sent with what this user may not or cannot do, answer the same refusal to
/// all sixteen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_mutating_route_has_one_effect_and_one_response() {
    let env = prepared(&[("maker", "dept_maker", "230102")]);
    let srv = serve(&env.config(), |_| {}).await;
    let base = srv.base.clone();
    let (maker, _) = login(&base, "maker", PASSWORD).await.unwrap();
    let audit_len = async || srv.store.verify_audit().await.unwrap().entries;
    let mut routes: Vec<&str> = ykt_http::web::api::routes()
        .into_iter()
        .filter(|(m, p)| *m == "POST" && !p.ends_with("/login") && !p.ends_with("/logout"))
        .filter(|(_, p)| *p != "/api/v1/rosters") // multipart: its own tests above
        .map(|(_, p)| p)
        .collect();
    // The one that changes something last.
    routes.sort_by_key(|p| p.contains("{step}"));
    assert!(routes.len() >= 10, "{routes:?}");
    for (n, route) in routes.iter().enumerate() {
        let path = route
            .replace("{step}", "cancel")
            .replace("{line}", "1")
            .replace("{id}", "1");
        let body = json!({"reason": "名单有误，重新造册"});
        let key = format!("k-every-{n}");
        let before = audit_len().await;
        let first = sixteen_at_once(&base, &maker, &path, &key, body).await;
        let entries = audit_len().await - before;
        assert!(entries <= 1, "{path}: {entries} audit entries");
        let (st, _, text) = post_keyed(
            &base,
            &maker,
            &path,
            Some(&key),
            json!({"reason": "另一请求"}),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {text}");
        assert!(text.contains("idempotency_key_reused"), "{text}");
        eprintln!(
            "{path}: 16 senders, answer {} (15 replays), {entries} audit entries",
            first.0
        );
        if route.contains("{step}") {
            assert_eq!(first.0, StatusCode::OK, "{}", first.2);
            assert_eq!(entries, 1);
            assert_eq!(
                srv.store.batch(1).await.unwrap().unwrap().state,
                ykt_kernel::BatchState::Cancelled
            );
            assert_eq!(effects(&srv.store, "cancel").await, (1, 1));
        }
    }
}
