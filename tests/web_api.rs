//! The JSON API as a program uses it: bearer login, roster upload with the per-line reason
//! codes of DOMAIN.md §3, a file imported at most once, an unusable file changing nothing,
//! workflow steps with the engine's refusals as stable codes (maker-checker included), and
//! cookie-authenticated writes needing the CSRF header.

// The scenario uses the Heilongjiang and Henan catalogues.
#![cfg(all(feature = "province-heilongjiang", feature = "province-henan"))]

mod web_common;

use reqwest::StatusCode;
use serde_json::{Value, json};
use web_common::{PASSWORD, client, login, prepared_on, scenario, serve};

async fn upload(
    base: &str,
    token: &str,
    province: &str,
    project: &str,
    period: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let form = reqwest::multipart::Form::new()
        .text("province", province.to_owned())
        .text("project", project.to_owned())
        .text("period", period.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    let r = client()
        .post(format!("{base}/api/v1/rosters"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn post(base: &str, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = client()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn get(base: &str, token: &str, path: &str) -> (StatusCode, Value) {
    let r = client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rosters_steps_and_refusals_over_the_api() {
    ykt_store::testing::each_database_url("web_api", rosters_steps_and_refusals_over_the_api_on)
        .await;
}

async fn rosters_steps_and_refusals_over_the_api_on(database_url: Option<String>) {
    let env = prepared_on(
        database_url,
        &[
            ("maker", "dept_maker", "230102"),
            ("finance", "finance_reviewer", "230102"),
            ("both", "dept_maker,finance_reviewer", "230102"),
        ],
    );
    let srv = serve(&env.config(), |_| {}).await;
    let base = srv.base.as_str();
    let (maker, _) = login(base, "maker", PASSWORD).await.unwrap();
    let (finance, _) = login(base, "finance", PASSWORD).await.unwrap();
    let (both, both_csrf) = login(base, "both", PASSWORD).await.unwrap();
    let bad = client()
        .post(format!("{base}/api/v1/login"))
        .json(&json!({"login": "maker", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let e: Value = bad.json().await.unwrap();
    assert_eq!(e["code"], "unauthorized");
    assert!(e["message"].as_str().unwrap().contains("用户名或密码错误"));

    let (st, me) = get(base, &maker, "/api/v1/me").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["roles"], json!(["dept_maker"]));
    assert_eq!(me["full_data"], true);

    // Upload last month's roster: one line accepted, one already in batch 1.
    let earlier = std::fs::read(scenario().join("earlier.csv")).unwrap();
    let (st, r) = upload(
        base,
        &maker,
        "heilongjiang",
        "农村最低生活保障金",
        "2023-04",
        "earlier.csv",
        earlier.clone(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["result"]["outcome"], "imported");
    assert_eq!(r["result"]["accepted"], 1);
    assert_eq!(r["result"]["rejected"], 1);
    let roster = r["result"]["roster_id"].as_i64().unwrap();
    let (st, res) = get(base, &maker, &format!("/api/v1/rosters/{roster}")).await;
    assert_eq!(st, StatusCode::OK);
    let codes: Vec<&str> = res["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["dup.already_paid"]);
    assert!(
        res["problems"][0]["id"]
            .as_str()
            .unwrap()
            .contains("********"),
        "masked"
    );
    // The same file again changes nothing.
    let (st, again) = upload(
        base,
        &maker,
        "heilongjiang",
        "农村最低生活保障金",
        "2023-04",
        "earlier.csv",
        earlier,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(again["result"]["outcome"], "already_imported");
    assert_eq!(again["result"]["roster_id"], roster);
    // An unusable file is refused whole; finance may not upload at all.
    let (st, e) = upload(
        base,
        &maker,
        "heilongjiang",
        "农村最低生活保障金",
        "2023-05",
        "坏文件.xlsx",
        b"not a spreadsheet".to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "unprocessable");
    assert!(
        e["message"].as_str().unwrap().contains("未导入任何数据"),
        "{e}"
    );
    assert_eq!(
        get(base, &maker, &format!("/api/v1/rosters/{}", roster + 1))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (st, e) = upload(
        base,
        &finance,
        "heilongjiang",
        "农村最低生活保障金",
        "2023-05",
        "x.csv",
        b"x".to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(e["code"], "forbidden");

    // Steps: the engine's refusals come back as stable codes.
    let (st, e) = post(
        base,
        &finance,
        "/api/v1/batches/1/steps/submit_plan",
        json!({}),
    )
    .await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("workflow.role_denied")),
        "{e}"
    );
    let (st, e) = post(
        base,
        &maker,
        "/api/v1/batches/1/steps/no_such_step",
        json!({}),
    )
    .await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("workflow.unknown_step"))
    );
    let (st, done) = post(
        base,
        &maker,
        "/api/v1/batches/1/steps/submit_plan",
        json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["done"][0]["to"], "submitted");
    assert_eq!(done["batch"]["state"], "submitted");
    let (st, e) = post(
        base,
        &maker,
        "/api/v1/batches/1/steps/submit_plan",
        json!({}),
    )
    .await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("workflow.wrong_state"))
    );

    // Henan: whoever applied for the funds cannot review them, whatever roles they hold.
    let roster_csv = std::fs::read(scenario().join("roster.csv")).unwrap();
    let (st, r) = upload(
        base,
        &both,
        "henan",
        "HN03",
        "2023-05",
        "roster.csv",
        roster_csv,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let henan_batch = r["result"]["batches"][0].as_i64().unwrap();
    let (st, b) = get(base, &both, &format!("/api/v1/batches/{henan_batch}")).await;
    assert_eq!(st, StatusCode::OK);
    let acts: Vec<&str> = b["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["step"].as_str().unwrap())
        .collect();
    assert!(acts.contains(&"apply_funds"), "{acts:?}");
    let (st, _) = post(
        base,
        &both,
        &format!("/api/v1/batches/{henan_batch}/steps/apply_funds"),
        json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = get(base, &both, &format!("/api/v1/batches/{henan_batch}")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        b["actions"].as_array().unwrap().is_empty(),
        "the maker sees no review action: {b}"
    );
    let (st, e) = post(
        base,
        &both,
        &format!("/api/v1/batches/{henan_batch}/steps/finance_review"),
        json!({}),
    )
    .await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("workflow.maker_checker")),
        "{e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("经办与审核不得为同一人")
    );

    // With the session cookie instead of the bearer token, a write needs the CSRF header.
    let path = format!("{base}/api/v1/batches/{henan_batch}/steps/finance_review");
    let r = client()
        .post(&path)
        .header("cookie", format!("ykt_session={both}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "csrf");
    let r = client()
        .post(&path)
        .header("cookie", format!("ykt_session={both}"))
        .header("x-csrf-token", &both_csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "workflow.maker_checker"
    );

    // Finance's procedural review picks one of the county's two agent banks (第二十一条).
    // The banks are registered from the console and the API (the CLI's code path): provincial
    // finance lists candidates, county finance selects, each refused the other's task.
    env.add_user("hn-province-cz", "finance_reviewer", "41");
    let (province_cz, _) = login(base, "hn-province-cz", PASSWORD).await.unwrap();
    let candidate = |code: &str, name: &str| {
        json!({"code": code, "name": name, "agreement_no": format!("{code}-协议"),
               "connected": true, "free_interbank": true})
    };
    let (st, e) = post(
        base,
        &finance,
        "/api/v1/banks/candidates",
        candidate("ABC-HN", "中国农业银行"),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "county finance lists no candidate: {e}"
    );
    for (code, name) in [("ABC-HN", "中国农业银行"), ("PSBC-HN", "中国邮政储蓄银行")]
    {
        let (st, e) = post(
            base,
            &province_cz,
            "/api/v1/banks/candidates",
            candidate(code, name),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{e}");
    }
    let (st, e) = post(
        base,
        &province_cz,
        "/api/v1/banks/candidates",
        candidate("ABC-HN", "中国农业银行"),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "already a candidate: {e}");
    // One selection through the console's form (cookie and CSRF field), one through the API.
    let (fin_cookie, fin_csrf) = login(base, "finance", PASSWORD).await.unwrap();
    let r = client()
        .post(format!("{base}/banks/select"))
        .header("cookie", format!("ykt_session={fin_cookie}"))
        .form(&[
            ("_csrf", fin_csrf.as_str()),
            ("county", "230102"),
            ("bank", "ABC-HN"),
            ("agreement_no", "ABC-HN-县协议"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/banks?ok=")
    );
    let (st, e) = post(
        base,
        &finance,
        "/api/v1/banks/select",
        json!({"county": "230102", "bank": "PSBC-HN", "agreement_no": "PSBC-HN-县协议"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let (st, e) = post(
        base,
        &finance,
        "/api/v1/banks/select",
        json!({"county": "230103", "bank": "PSBC-HN", "agreement_no": "x"}),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "another county: {e}");
    let selected: Vec<String> = srv
        .store
        .henan_county_banks(None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| format!("{} {} {}", c.county, c.bank, c.selected_by))
        .collect();
    assert_eq!(
        selected,
        vec![
            "230102000000 ABC-HN finance".to_owned(),
            "230102000000 PSBC-HN finance".to_owned()
        ]
    );
    let banks_page = client()
        .get(format!("{base}/banks"))
        .bearer_auth(&finance)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(banks_page.contains("中国邮政储蓄银行") && banks_page.contains("PSBC-HN-县协议"));

    // Heilongjiang's bulletin-board notice of the submitted batch 1, from the API: published
    // (masked) for the public portal; a draft batch is refused.
    let (st, n) = post(base, &maker, "/api/v1/batches/1/bulletin", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{n}");
    let notice_id = n["notice"]["id"].as_str().unwrap().to_owned();
    assert!(
        srv.store
            .notices(Some("230102"))
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == notice_id)
    );
    let (st, e) = post(base, &maker, "/api/v1/batches/2/bulletin", json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "draft: {e}");
    assert!(e["message"].as_str().unwrap().contains("尚未审核"), "{e}");
    let review = format!("/api/v1/batches/{henan_batch}/steps/finance_review");
    let (st, e) = post(base, &finance, &review, json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "two banks and none chosen: {e}");
    let (st, e) = post(base, &finance, &review, json!({"bank": "NO-SUCH"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    let (st, done) = post(base, &finance, &review, json!({"bank": "PSBC-HN"})).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["batch"]["state"], "approved");

    // Sichuan from the console and the API: publicity objections (recorded by the township,
    // resolved), and the plan declaration taken with `request_plan` (`ykt sichuan plan`).
    env.add_user("township", "township_clerk", "230102");
    env.add_user("head", "dept_head", "230102");
    let (township, township_csrf) = login(base, "township", PASSWORD).await.unwrap();
    let (head, _) = login(base, "head", PASSWORD).await.unwrap();
    let roster_csv = std::fs::read(scenario().join("roster.csv")).unwrap();
    let (st, r) = upload(
        base,
        &maker,
        "sichuan",
        "SC09-1-1",
        "2023-05",
        "roster.csv",
        roster_csv,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let sc = r["result"]["batches"][0].as_i64().unwrap();
    let step = |who: &str, code: &str| {
        let (who, path) = (who.to_owned(), format!("/api/v1/batches/{sc}/steps/{code}"));
        async move { post(base, &who, &path, json!({})).await }
    };
    let (st, e) = step(&township, "start_publicity").await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let r = client()
        .post(format!("{base}/batches/{sc}/objections"))
        .header("cookie", format!("ykt_session={township}"))
        .form(&[
            ("_csrf", township_csrf.as_str()),
            ("by", "张三"),
            ("text", "本组困难户是否均已纳入公示名单"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"].to_str().unwrap().contains("ok="));
    let objections = srv.store.sichuan_objections(sc).await.unwrap();
    assert_eq!(objections.len(), 1);
    assert_eq!(objections[0].raised_by, "张*", "masked");
    let oid = objections[0].id;
    let (st, e) = post(
        base,
        &finance,
        &format!("/api/v1/objections/{oid}/resolve"),
        json!({"upheld": false, "note": "经核对名单无遗漏"}),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "finance does not resolve objections: {e}"
    );
    let (st, e) = post(
        base,
        &township,
        &format!("/api/v1/objections/{oid}/resolve"),
        json!({"upheld": false, "note": "经核对名单无遗漏"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(
        srv.store
            .sichuan_objection(oid)
            .await
            .unwrap()
            .unwrap()
            .status,
        "dismissed"
    );
    // A week later (the publicity lasts 7 days): the same database, the platform's date moved.
    let mut cfg = env.config();
    cfg.today = chrono::NaiveDate::from_ymd_opt(2023, 5, 28);
    let later = serve(&cfg, |_| {}).await;
    let base = later.base.as_str();
    let step = |who: &str, code: &str| {
        let (who, path) = (who.to_owned(), format!("/api/v1/batches/{sc}/steps/{code}"));
        async move { post(base, &who, &path, json!({})).await }
    };
    let (st, e) = step(&township, "township_submit").await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let (st, e) = step(&head, "dept_review").await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert!(srv.store.sichuan_plans(sc).await.unwrap().is_empty());
    let (st, e) = step(&maker, "request_plan").await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["batch"]["state"], "funding_requested", "{e}");
    let plans = srv.store.sichuan_plans(sc).await.unwrap();
    assert_eq!(
        plans.len(),
        1,
        "the plan declaration is recorded with the step"
    );
    assert_eq!(plans[0].declared_by, "maker");
    let base = srv.base.as_str();

    // Henan's project library: a withdrawal filed by the department (`ykt henan library
    // request`), approved from the API by county, city and provincial finance in turn, each
    // level refused the others' step; the province's approval withdraws the project.
    env.add_user("city-cz", "finance_reviewer", "2301");
    env.add_user("prov-cz", "finance_reviewer", "23");
    let (city, _) = login(base, "city-cz", PASSWORD).await.unwrap();
    let (prov, _) = login(base, "prov-cz", PASSWORD).await.unwrap();
    let project = srv.store.henan_library().await.unwrap().remove(0);
    env.ok(&[
        "henan",
        "library",
        "request",
        "withdraw",
        "--code",
        &project.code,
        "--user",
        "maker",
        "--reason",
        "政策到期",
    ]);
    let req = srv.store.henan_changes().await.unwrap().last().unwrap().id;
    let approve = |who: &str| {
        let (who, path) = (
            who.to_owned(),
            format!("/api/v1/library/requests/{req}/approve"),
        );
        async move { post(base, &who, &path, json!({"note": "同意"})).await }
    };
    let (st, e) = approve(&prov).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "the county reviews first: {e}");
    for (who, state) in [
        (&finance, "同级财政已审核"),
        (&city, "市财政局已复核"),
        (&prov, "省财政厅已调整入库"),
    ] {
        let (st, e) = approve(who).await;
        assert_eq!(
            (st, e["state"].as_str()),
            (StatusCode::OK, Some(state)),
            "{e}"
        );
    }
    let after = srv
        .store
        .henan_library_entry(&project.code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, "withdrawn");

    // Lines: full data for the department, masked for finance.
    let (_, full) = get(base, &maker, "/api/v1/batches/1/lines?limit=1").await;
    let (_, masked) = get(base, &finance, "/api/v1/batches/1/lines?limit=1").await;
    assert_eq!(full["masked"], false);
    assert_eq!(masked["masked"], true);
    let id_full = full["lines"][0]["resident_id"].as_str().unwrap();
    let id_masked = masked["lines"][0]["resident_id"].as_str().unwrap();
    assert_eq!(id_full.len(), 18);
    assert_eq!(
        id_masked,
        format!("{}********{}", &id_full[..6], &id_full[14..])
    );
    assert!(srv.store.verify_audit().await.is_ok());

    // The dashboard's aggregates (a bounded number of queries) agree with batch-by-batch
    // reads, for everything and within one region.
    for within in [None, Some(ykt_kernel::RegionCode::parse("230102").unwrap())] {
        let batches = srv.store.batches(None, within.as_ref()).await.unwrap();
        assert!(batches.len() >= 3, "{}", batches.len());
        let mut by_region = std::collections::BTreeMap::new();
        let histories = srv
            .store
            .step_history_within(within.as_ref())
            .await
            .unwrap();
        for b in &batches {
            let t = srv.store.tally(b.id).await.unwrap();
            let e: &mut ykt_kernel::batch::Tally = by_region.entry(b.region.clone()).or_default();
            for s in ykt_kernel::batch::LineState::ALL {
                *e.slot(*s) = e.get(*s) + t.get(*s);
            }
            let steps: Vec<(String, String)> = srv
                .store
                .batch_steps(b.id)
                .await
                .unwrap()
                .into_iter()
                .map(|s| (s.step, s.actor))
                .collect();
            assert_eq!(histories.get(&b.id).cloned().unwrap_or_default(), steps);
        }
        assert_eq!(
            srv.store.tallies_by_region(within.as_ref()).await.unwrap(),
            by_region
        );
    }
    let dash = client()
        .get(format!("{base}/"))
        .bearer_auth(&maker)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dash.contains("230102000000 成功率") && dash.contains("等待我处理（1）"),
        "{dash}"
    );
}
