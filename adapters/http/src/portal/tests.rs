//! The portal in-process (`tower::ServiceExt::oneshot`), on SQLite and PostgreSQL.

use super::*;
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;
use ykt_kernel::mask::MaskPolicy;
use ykt_kernel::ports::{DisclosureChannel, LookupRecord, Notice};
use ykt_kernel::{Fen, Period, RegionCode};
use ykt_store::testing::each_backend;

/// A valid resident ID (GB 11643 check digit) from 17 digits.
fn valid_id(first17: &str) -> String {
    let b: &[u8; 17] = first17.as_bytes().try_into().expect("17 digits");
    format!("{first17}{}", ResidentId::check_digit(b))
}

struct Person {
    id: String,
    name: &'static str,
}

fn zhang() -> Person {
    Person {
        id: valid_id("23010219800101123"),
        name: "张三丰",
    }
}
fn li() -> Person {
    Person {
        id: valid_id("23272119751231456"),
        name: "欧阳娜娜",
    }
}
/// Valid, but never paid.
fn stranger() -> Person {
    Person {
        id: valid_id("41092819900202789"),
        name: "王五",
    }
}

async fn seed(store: &Store) {
    let mask = MaskPolicy::default();
    let mut records = Vec::new();
    for (p, project, period, fen, date) in [
        (
            zhang(),
            "农村最低生活保障金",
            "2023-05",
            52_000,
            "2023-05-20",
        ),
        (zhang(), "耕地地力保护补贴", "2023", 123_450, "2023-06-02"),
        (li(), "农村最低生活保障金", "2023-05", 48_000, "2023-05-20"),
    ] {
        records.push(LookupRecord {
            person_key: store.lookup_key(&p.id, p.name),
            name_masked: mask.name(p.name),
            project_name: project.into(),
            period: Period::parse(period).expect("period"),
            amount: Fen(fen),
            date: date.into(),
            status: "已入账".into(),
        });
    }
    store.publish_records(&records).await.expect("records");
    let body = format!(
        "农村最低生活保障金 2023-05 230102\n{} {} 520.00元\n{} {} 480.00元\n",
        mask.name(zhang().name),
        mask.id(&zhang().id),
        mask.name(li().name),
        mask.id(&li().id)
    );
    for (id, kind, region, project, title, on) in [
        (
            "HLJ-1-result",
            "result",
            "230102",
            "农村最低生活保障金",
            "农村最低生活保障金2023-05发放结果公示",
            "2023-05-25",
        ),
        (
            "HLJ-2-result",
            "result",
            "232721",
            "耕地地力保护补贴",
            "耕地地力保护补贴2023发放结果公示",
            "2023-06-05",
        ),
        (
            "HA-1-result",
            "result",
            "410928",
            "农村最低生活保障金",
            "濮阳县农村最低生活保障金公示",
            "2023-06-06",
        ),
        (
            "HLJ-3-bulletin",
            "bulletin",
            "230102",
            "农村最低生活保障金",
            "已撤回的公示",
            "2023-06-07",
        ),
    ] {
        store
            .publish(&Notice {
                id: id.into(),
                kind: kind.into(),
                region: RegionCode::parse(region).expect("region"),
                project_name: project.into(),
                title: title.into(),
                body: body.clone(),
                published_on: on.into(),
                until: None,
            })
            .await
            .expect("notice");
    }
    store.withdraw("HLJ-3-bulletin").await.expect("withdraw");
}

fn policies() -> Vec<PolicyList> {
    vec![PolicyList {
        province: "heilongjiang".into(),
        province_name: "黑龙江省".into(),
        policies: vec![Policy {
            code: "HLJ01".into(),
            name: "耕地地力保护补贴".into(),
            basis: "财农〔2016〕26号".into(),
            target: "拥有耕地承包权的种地农民".into(),
            standard: "按省定标准".into(),
            conditions: "用于耕地地力保护".into(),
            department: "省农业农村厅".into(),
            frequency: "1次/年".into(),
        }],
    }]
}

fn app(store: &Store, config: PortalConfig) -> Router {
    router(PortalState::new(store.clone(), policies(), config))
}

fn generous() -> PortalConfig {
    PortalConfig {
        lookup_burst: 1000,
        lookup_per_minute: 1000,
        trust_forwarded_for: false,
        ..PortalConfig::default()
    }
}

fn from(ip: &str, mut req: Request<Body>) -> Request<Body> {
    let addr: SocketAddr = format!("{ip}:40000").parse().expect("addr");
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

fn json_lookup(id: &str, name: &str) -> Request<Body> {
    Request::post("/api/v1/public/lookup")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::json!({"id": id, "name": name}).to_string(),
        ))
        .expect("request")
}

fn form_lookup(id: &str, name: &str) -> Request<Body> {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    Request::post("/portal/lookup")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("id={}&name={}", enc(id), enc(name))))
        .expect("request")
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let r = app.clone().oneshot(req).await.expect("response");
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        headers,
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
    )
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let (s, _, b) = send(app, Request::get(uri).body(Body::empty()).expect("request")).await;
    (s, b)
}

/// Any run of 15 or more digits (or 17 digits and X): a full resident ID, account or phone.
fn long_digit_runs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (c == 'X' && run.len() == 17) {
            run.push(c);
        } else {
            if run.len() >= 15 {
                out.push(run.clone());
            }
            run.clear();
        }
    }
    out
}

#[tokio::test]
async fn lookup_finds_own_payments_masked() {
    each_backend("portal_lookup_found", |db| async move {
        seed(&db.store).await;
        let app = app(&db.store, generous());
        let z = zhang();
        let (status, headers, body) = send(&app, json_lookup(&z.id, z.name)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let recs = v["records"].as_array().expect("records");
        assert_eq!(recs.len(), 2, "{body}");
        // newest first, amounts in 元 with two decimals, name masked
        assert_eq!(recs[0]["project_name"], "耕地地力保护补贴");
        assert_eq!(recs[0]["amount"], "1234.50");
        assert_eq!(recs[0]["period"], "2023");
        assert_eq!(recs[1]["amount"], "520.00");
        assert_eq!(recs[1]["date"], "2023-05-20");
        assert_eq!(recs[1]["status"], "已入账");
        assert_eq!(recs[0]["name_masked"], "张**");
        assert!(!body.contains(z.name) && !body.contains(&z.id));

        // The same through the page; a lower-case x, spaces and a middle-dot variant are
        // normalised as intake does.
        let (status, _, page) = send(&app, form_lookup(&format!(" {} ", z.id), "张 三丰")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("耕地地力保护补贴") && page.contains("1234.50"),
            "{page}"
        );
        assert!(page.contains("张*") && !page.contains(&z.id));
        assert!(!page.contains("未查询到"));

        // Another person sees only their own
        let l = li();
        let (_, _, body) = send(&app, json_lookup(&l.id, l.name)).await;
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["records"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["records"][0]["name_masked"], "欧**");
        assert_eq!(v["records"][0]["amount"], "480.00");
    })
    .await;
}

#[tokio::test]
async fn wrong_name_wrong_id_and_never_paid_get_the_same_answer() {
    each_backend("portal_lookup_same_answer", |db| async move {
        seed(&db.store).await;
        let app = app(&db.store, generous());
        let (z, s) = (zhang(), stranger());
        let cases = [
            (z.id.clone(), "张三"), // right ID, wrong name
            (z.id.clone(), "李四"), // right ID, another wrong name
            (li().id, z.name),      // someone else's ID with this name
            (s.id.clone(), s.name), // valid ID never paid
        ];
        let mut json_bodies = Vec::new();
        let mut page_bodies = Vec::new();
        for (id, name) in &cases {
            let (status, headers, body) = send(&app, json_lookup(id, name)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers[header::CACHE_CONTROL], "no-store");
            json_bodies.push(body);
            let (status, _, page) = send(&app, form_lookup(id, "")).await;
            // an empty name is an input error, the same whoever the ID belongs to
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            page_bodies.push(page);
        }
        assert_eq!(json_bodies[0], r#"{"records":[]}"#);
        assert!(
            json_bodies.iter().all(|b| b == &json_bodies[0]),
            "{json_bodies:?}"
        );
        assert!(page_bodies.iter().all(|b| b == &page_bodies[0]));
        // The page echoes the name typed (the visitor's own input), so compare pages for a
        // fixed name: right ID + wrong name vs never-paid ID + same name.
        let (_, _, a) = send(&app, form_lookup(&z.id, "赵六")).await;
        let (_, _, b) = send(&app, form_lookup(&s.id, "赵六")).await;
        assert_eq!(a, b);
        assert!(a.contains("未查询到发放记录"));
        assert!(!a.contains(&z.id) && !a.contains(&s.id));
    })
    .await;
}

#[tokio::test]
async fn malformed_input_is_a_format_error_that_names_no_one() {
    each_backend("portal_lookup_format", |db| async move {
        seed(&db.store).await;
        let app = app(&db.store, generous());
        let z = zhang();
        // last character changed: the check digit no longer matches
        let mut bad = z.id.clone();
        let last = if bad.ends_with('1') { "2" } else { "1" };
        bad.replace_range(17.., last);
        for id in [bad.as_str(), "12345", "", "2301021980010112X3"] {
            let (status, _, body) = send(&app, json_lookup(id, z.name)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(v["error"], "id.format");
            assert!(
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("身份证号码不正确"))
            );
            assert!(!body.contains(&bad) && !body.contains(z.name));
        }
        for name in ["", "张3", "<script>", &"张".repeat(31)] {
            let (status, _, body) = send(&app, json_lookup(&z.id, name)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
            assert!(body.contains("name.invalid"));
        }
        // The page escapes what was typed back into the form.
        let (_, _, page) = send(&app, form_lookup(&z.id, "<b>x</b>")).await;
        assert!(!page.contains("<b>x</b>") && page.contains("&lt;b&gt;"));
    })
    .await;
}

#[tokio::test]
async fn lookups_beyond_the_limit_get_429_with_retry_after() {
    each_backend("portal_lookup_limit", |db| async move {
        seed(&db.store).await;
        let app = app(
            &db.store,
            PortalConfig {
                lookup_burst: 3,
                lookup_per_minute: 6,
                trust_forwarded_for: false,
                ..PortalConfig::default()
            },
        );
        let z = zhang();
        for _ in 0..3 {
            let (status, _, _) = send(&app, from("203.0.113.5", json_lookup(&z.id, z.name))).await;
            assert_eq!(status, StatusCode::OK);
        }
        // the limit counts attempts, whatever their outcome, across the page and the API
        let (status, headers, body) =
            send(&app, from("203.0.113.5", form_lookup(&z.id, z.name))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = headers[header::RETRY_AFTER]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=10).contains(&wait), "{wait}");
        assert!(body.contains("查询过于频繁") && !body.contains("耕地地力保护补贴"));
        let (status, _, body) = send(&app, from("203.0.113.5", json_lookup(&z.id, z.name))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["error"], "rate_limited");
        // another client is served
        let (status, _, _) = send(&app, from("198.51.100.9", json_lookup(&z.id, z.name))).await;
        assert_eq!(status, StatusCode::OK);
        // X-Forwarded-For is ignored unless configured: it cannot buy a fresh bucket
        let mut req = from("203.0.113.5", json_lookup(&z.id, z.name));
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
        assert_eq!(send(&app, req).await.0, StatusCode::TOO_MANY_REQUESTS);
    })
    .await;
}

#[tokio::test]
async fn behind_a_proxy_the_forwarded_client_is_limited() {
    each_backend("portal_lookup_forwarded", |db| async move {
        let app = app(
            &db.store,
            PortalConfig {
                lookup_burst: 1,
                lookup_per_minute: 1,
                trust_forwarded_for: true,
                ..PortalConfig::default()
            },
        );
        let s = stranger();
        let with = |xff: &'static str| {
            let mut r = from("127.0.0.1", json_lookup(&s.id, s.name));
            r.headers_mut()
                .insert("x-forwarded-for", HeaderValue::from_static(xff));
            r
        };
        assert_eq!(
            send(&app, with("10.0.0.1, 192.0.2.1")).await.0,
            StatusCode::OK
        );
        // the proxy appends the real client last; what the client wrote before is ignored
        assert_eq!(
            send(&app, with("10.0.0.2, 192.0.2.1")).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(send(&app, with("192.0.2.2")).await.0, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn notices_by_region_and_project_without_withdrawn() {
    each_backend("portal_notices", |db| async move {
        seed(&db.store).await;
        let app = app(&db.store, generous());
        let (status, body) = get(&app, "/api/v1/public/notices").await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let ids: Vec<&str> = v["notices"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|n| n["id"].as_str())
            .collect();
        assert_eq!(ids, ["HA-1-result", "HLJ-2-result", "HLJ-1-result"]);
        let (_, body) = get(&app, "/api/v1/public/notices?region=23").await;
        assert!(
            body.contains("HLJ-1-result")
                && body.contains("HLJ-2-result")
                && !body.contains("HA-1")
        );
        let (_, body) = get(&app, "/api/v1/public/notices?region=2327").await;
        assert!(body.contains("HLJ-2-result") && !body.contains("HLJ-1-result"));
        let project =
            "%E5%86%9C%E6%9D%91%E6%9C%80%E4%BD%8E%E7%94%9F%E6%B4%BB%E4%BF%9D%E9%9A%9C%E9%87%91"; // 农村最低生活保障金
        let (_, body) = get(
            &app,
            &format!("/portal/notices?region=23&project={project}"),
        )
        .await;
        assert!(body.contains("农村最低生活保障金2023-05发放结果公示"));
        assert!(!body.contains("耕地地力保护补贴2023发放结果公示") && !body.contains("濮阳县"));
        assert!(!body.contains("已撤回的公示"));
        let (status, body) = get(&app, "/portal/notices/HLJ-1-result").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("张*") && body.contains("230102********"),
            "{body}"
        );
        let (status, _) = get(&app, "/portal/notices/HLJ-3-bulletin").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = get(&app, "/api/v1/public/notices/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("not_found"));
        let (status, _) = get(&app, "/api/v1/public/notices?region=23abc").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    })
    .await;
}

#[tokio::test]
async fn no_page_shows_a_full_identifier_or_name() {
    each_backend("portal_no_leak", |db| async move {
        seed(&db.store).await;
        let app = app(&db.store, generous());
        let (z, l) = (zhang(), li());
        let mut pages = Vec::new();
        for uri in [
            "/portal",
            "/portal/policies",
            "/portal/lookup",
            "/portal/notices",
            "/portal/notices/HLJ-1-result",
            "/portal/notices/HA-1-result",
            "/api/v1/public/policies",
            "/api/v1/public/notices",
            "/api/v1/public/notices/HLJ-1-result",
        ] {
            let (status, body) = get(&app, uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            pages.push((uri.to_owned(), body));
        }
        for (id, name) in [(&z.id, z.name), (&l.id, l.name)] {
            pages.push(("lookup".into(), send(&app, json_lookup(id, name)).await.2));
            pages.push((
                "lookup page".into(),
                send(&app, form_lookup(id, "某某")).await.2,
            ));
        }
        assert!(pages.iter().any(|(_, b)| b.contains("1234.50")));
        for (uri, body) in &pages {
            assert_eq!(long_digit_runs(body), Vec::<String>::new(), "{uri}");
            for p in [&z, &l] {
                assert!(
                    !body.contains(&p.id) && !body.contains(p.name),
                    "{uri} shows {}",
                    p.name
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn pages_are_chinese_styled_and_hardened() {
    each_backend("portal_pages", |db| async move {
        let app = app(&db.store, generous());
        let (status, body) = get(&app, "/portal/policies").await;
        assert_eq!(status, StatusCode::OK);
        for text in [
            "补贴政策清单",
            "黑龙江省",
            "耕地地力保护补贴",
            "财农〔2016〕26号",
            "拥有耕地承包权的种地农民",
            "按省定标准",
            "用于耕地地力保护",
            "省农业农村厅",
        ] {
            assert!(body.contains(text), "{text}");
        }
        assert!(body.contains(r#"lang="zh-CN""#) && body.contains("/portal/style.css"));
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "nothing from elsewhere"
        );
        let r = app
            .clone()
            .oneshot(
                Request::get("/portal/style.css")
                    .body(Body::empty())
                    .expect("req"),
            )
            .await
            .expect("css");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert!(
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .is_ok_and(|c| c.contains("script-src 'none'"))
        );
        let (_, body) = get(&app, "/api/v1/public/policies").await;
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            v["provinces"][0]["policies"][0]["department"],
            "省农业农村厅"
        );
    })
    .await;
}
