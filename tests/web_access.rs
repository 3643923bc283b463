//! Route × role × region: every route of the console and the JSON API, called over real HTTP
//! by a user of each of the eight roles inside the batch's region (230102 道里区) and outside
//! it (232722 塔河县), and without a session. A route refuses (403) exactly the roles and
//! regions it must; without a session pages redirect to the login and the API answers 401.
//! The table must name every route the router serves, so a new route cannot go unchecked.
//! A record outside the user's region is answered exactly as a record that does not exist
//! (404, same body), so ids outside the scope cannot be probed.

// The scenario uses the Heilongjiang catalogue and workflow.
#![cfg(feature = "province-heilongjiang")]

mod web_common;

use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;
use web_common::{client, login, prepared_on, serve};
use ykt_kernel::Role;

const IN: &str = "230102";
const OUT: &str = "232722";

const ROLES: &[Role] = &[
    Role::TownshipClerk,
    Role::DeptMaker,
    Role::DeptHead,
    Role::FinanceReviewer,
    Role::Hrss,
    Role::BankOperator,
    Role::Auditor,
    Role::Admin,
];

#[derive(Clone)]
enum Body {
    None,
    Form(&'static str),
    Json(serde_json::Value),
    Multipart,
}

#[derive(Clone)]
struct Row {
    method: &'static str,
    /// The route as the router names it.
    route: &'static str,
    /// The concrete path requested.
    path: String,
    body: Body,
    /// Roles allowed (`None`: every role).
    allowed: Option<&'static [Role]>,
    /// The route concerns data of the batch's region: out-of-region users are refused.
    scoped: bool,
}

fn row(
    method: &'static str,
    route: &'static str,
    path: impl Into<String>,
    body: Body,
    allowed: Option<&'static [Role]>,
    scoped: bool,
) -> Row {
    Row {
        method,
        route,
        path: path.into(),
        body,
        allowed,
        scoped,
    }
}

const MAKER: &[Role] = &[Role::DeptMaker];
const FINANCE: &[Role] = &[Role::FinanceReviewer];
const UPLOADERS: &[Role] = &[Role::TownshipClerk, Role::DeptMaker];
const AUDIT: &[Role] = &[Role::Auditor, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];
const POSTERS: &[Role] = &[Role::TownshipClerk, Role::DeptMaker];

/// Routes anyone may call (login pages, static files, the OpenAPI document).
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/api/v1/login"),
    ("GET", "/static/app.css"),
    ("GET", "/static/app.js"),
    ("GET", "/api/v1/openapi.json"),
];
/// Session routes (tested in web_session.rs).
const SESSION: &[(&str, &str)] = &[("POST", "/logout"), ("POST", "/api/v1/logout")];

fn table(line: i64, objection: i64, requests: [i64; 2]) -> Vec<Row> {
    use Body::*;
    vec![
        row("GET", "/", "/", None, Option::None, false),
        row("GET", "/batches", "/batches", None, Option::None, false),
        row(
            "GET",
            "/batches/{id}",
            "/batches/1",
            None,
            Option::None,
            true,
        ),
        // The workflow decides: only a department maker of the region submits the plan.
        row(
            "POST",
            "/batches/{id}/step",
            "/batches/1/step",
            Form("step=submit_plan"),
            Some(MAKER),
            true,
        ),
        row(
            "POST",
            "/batches/{id}/lines/{line}/correct",
            format!("/batches/1/lines/{line}/correct"),
            Form("reason=%E6%B5%8B%E8%AF%95"),
            Some(MAKER),
            true,
        ),
        row(
            "POST",
            "/batches/{id}/redispatch",
            "/batches/1/redispatch",
            None,
            Some(MAKER),
            true,
        ),
        row(
            "POST",
            "/batches/{id}/lines/{line}/refund",
            format!("/batches/1/lines/{line}/refund"),
            Form("reason=%E6%B5%8B%E8%AF%95"),
            Some(FINANCE),
            true,
        ),
        // Province-specific actions. After the step above batch 1 is reviewed enough for
        // Heilongjiang's bulletin notice: the posters post it (again: nothing changes).
        row(
            "POST",
            "/batches/{id}/bulletin",
            "/batches/1/bulletin",
            None,
            Some(POSTERS),
            true,
        ),
        row(
            "POST",
            "/batches/{id}/objections",
            "/batches/1/objections",
            Form("text="),
            Some(POSTERS),
            true,
        ),
        row(
            "POST",
            "/objections/{id}/resolve",
            format!("/objections/{objection}/resolve"),
            Form("outcome=bogus"),
            Some(POSTERS),
            true,
        ),
        // Henan's change requests filed in 230102: county finance approves (request A from the
        // page, B from the API); a rejection without a reason is refused before anything.
        row(
            "POST",
            "/library/requests/{id}/approve",
            format!("/library/requests/{}/approve", requests[0]),
            Form("note="),
            Some(FINANCE),
            true,
        ),
        row(
            "POST",
            "/library/requests/{id}/reject",
            format!("/library/requests/{}/reject", requests[0]),
            Form("note="),
            Some(FINANCE),
            true,
        ),
        row(
            "POST",
            "/api/v1/library/requests/{id}/approve",
            format!("/api/v1/library/requests/{}/approve", requests[1]),
            Json(json!({})),
            Some(FINANCE),
            true,
        ),
        row(
            "POST",
            "/api/v1/library/requests/{id}/reject",
            format!("/api/v1/library/requests/{}/reject", requests[1]),
            Json(json!({"note": ""})),
            Some(FINANCE),
            true,
        ),
        row(
            "POST",
            "/banks/candidates",
            "/banks/candidates",
            Form("code="),
            Some(FINANCE),
            false,
        ),
        row(
            "POST",
            "/banks/select",
            "/banks/select",
            Form("county="),
            Some(FINANCE),
            false,
        ),
        row(
            "POST",
            "/api/v1/batches/{id}/bulletin",
            "/api/v1/batches/1/bulletin",
            None,
            Some(POSTERS),
            true,
        ),
        row(
            "POST",
            "/api/v1/batches/{id}/objections",
            "/api/v1/batches/1/objections",
            Json(json!({"text": ""})),
            Some(POSTERS),
            true,
        ),
        row(
            "POST",
            "/api/v1/objections/{id}/resolve",
            format!("/api/v1/objections/{objection}/resolve"),
            Json(json!({"upheld": true, "note": ""})),
            Some(POSTERS),
            true,
        ),
        row(
            "POST",
            "/api/v1/banks/candidates",
            "/api/v1/banks/candidates",
            Json(json!({"code": "", "name": "", "agreement_no": ""})),
            Some(FINANCE),
            false,
        ),
        row(
            "POST",
            "/api/v1/banks/select",
            "/api/v1/banks/select",
            Json(json!({"county": "", "bank": "", "agreement_no": ""})),
            Some(FINANCE),
            false,
        ),
        row(
            "GET",
            "/rosters/new",
            "/rosters/new",
            None,
            Some(UPLOADERS),
            false,
        ),
        row(
            "POST",
            "/rosters",
            "/rosters",
            Multipart,
            Some(UPLOADERS),
            false,
        ),
        row(
            "GET",
            "/rosters/{id}",
            "/rosters/1",
            None,
            Option::None,
            true,
        ),
        row(
            "GET",
            "/rosters/{id}/result.xlsx",
            "/rosters/1/result.xlsx",
            None,
            Option::None,
            true,
        ),
        row("GET", "/catalog", "/catalog", None, Option::None, false),
        row("GET", "/library", "/library", None, Option::None, false),
        row("GET", "/banks", "/banks", None, Option::None, false),
        row("GET", "/reports", "/reports", None, Option::None, false),
        row(
            "GET",
            "/batches/{id}/lines.xlsx",
            "/batches/1/lines.xlsx",
            None,
            Option::None,
            true,
        ),
        row("GET", "/notices", "/notices", None, Option::None, false),
        row("GET", "/audit", "/audit", None, Some(AUDIT), false),
        row("GET", "/users", "/users", None, Some(ADMIN), false),
        row(
            "POST",
            "/users",
            "/users",
            Form("login=&name="),
            Some(ADMIN),
            false,
        ),
        row(
            "POST",
            "/users/{login}/disable",
            "/users/nobody/disable",
            None,
            Some(ADMIN),
            false,
        ),
        row(
            "POST",
            "/users/{login}/password",
            "/users/nobody/password",
            Form("password=short"),
            Some(ADMIN),
            false,
        ),
        row("GET", "/api/v1/me", "/api/v1/me", None, Option::None, false),
        row(
            "GET",
            "/api/v1/batches",
            "/api/v1/batches",
            None,
            Option::None,
            false,
        ),
        row(
            "GET",
            "/api/v1/batches/{id}",
            "/api/v1/batches/1",
            None,
            Option::None,
            true,
        ),
        row(
            "GET",
            "/api/v1/batches/{id}/lines",
            "/api/v1/batches/1/lines",
            None,
            Option::None,
            true,
        ),
        row(
            "POST",
            "/api/v1/batches/{id}/steps/{step}",
            // Batch 2 through the API: again only the region's department maker may submit.
            "/api/v1/batches/2/steps/submit_plan",
            Json(json!({})),
            Some(MAKER),
            true,
        ),
        row(
            "POST",
            "/api/v1/batches/{id}/lines/{line}/correct",
            format!("/api/v1/batches/1/lines/{line}/correct"),
            Json(json!({"reason": "测试"})),
            Some(MAKER),
            true,
        ),
        row(
            "POST",
            "/api/v1/batches/{id}/redispatch",
            "/api/v1/batches/1/redispatch",
            None,
            Some(MAKER),
            true,
        ),
        row(
            "POST",
            "/api/v1/batches/{id}/lines/{line}/refund",
            format!("/api/v1/batches/1/lines/{line}/refund"),
            Json(json!({"reason": "测试"})),
            Some(FINANCE),
            true,
        ),
        row(
            "POST",
            "/api/v1/rosters",
            "/api/v1/rosters",
            Multipart,
            Some(UPLOADERS),
            false,
        ),
        row(
            "GET",
            "/api/v1/rosters/{id}",
            "/api/v1/rosters/1",
            None,
            Option::None,
            true,
        ),
        row(
            "GET",
            "/api/v1/catalog",
            "/api/v1/catalog",
            None,
            Option::None,
            false,
        ),
        row(
            "GET",
            "/api/v1/audit/verify",
            "/api/v1/audit/verify",
            None,
            Some(AUDIT),
            false,
        ),
    ]
}

/// The same request for an id that does not exist (the first numeric path segment, i.e. the
/// batch or roster, replaced).
fn absent_row(r: &Row) -> Row {
    let mut replaced = false;
    let path: Vec<String> = r
        .path
        .split('/')
        .map(|seg| {
            if !replaced && !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                replaced = true;
                "987654".to_owned()
            } else {
                seg.to_owned()
            }
        })
        .collect();
    assert!(replaced, "{} takes an id", r.path);
    Row {
        method: r.method,
        route: r.route,
        path: path.join("/"),
        body: r.body.clone(),
        allowed: r.allowed,
        scoped: r.scoped,
    }
}

fn login_of(role: Role, region: &str) -> String {
    if role == Role::DeptMaker && region == IN {
        // The batch's maker.
        return "maker".into();
    }
    format!(
        "{}-{}",
        role.as_str(),
        if region == IN { "in" } else { "out" }
    )
}

#[derive(Clone)]
struct Session {
    token: String,
    csrf: String,
}

async fn call(base: &str, r: &Row, who: Option<&Session>) -> reqwest::Response {
    call_with(&client(), base, r, who).await
}

async fn call_with(
    c: &reqwest::Client,
    base: &str,
    r: &Row,
    who: Option<&Session>,
) -> reqwest::Response {
    let url = format!("{base}{}", r.path);
    let mut req = match r.method {
        "GET" => c.get(&url),
        _ => c.post(&url),
    };
    if let Some(s) = who {
        // Pages use the cookie (with the CSRF header on writes); the API the bearer token.
        if r.path.starts_with("/api/") {
            req = req.bearer_auth(&s.token);
        } else {
            req = req
                .header("cookie", format!("ykt_session={}", s.token))
                .header("x-csrf-token", &s.csrf);
        }
    }
    req = match &r.body {
        Body::None => req,
        Body::Form(f) => req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(*f),
        Body::Json(v) => req.json(v),
        Body::Multipart => req
            .header("content-type", "multipart/form-data; boundary=X")
            .body("--X--\r\n"),
    };
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_the_roles_and_regions_it_must() {
    ykt_store::testing::each_database_url(
        "web_access",
        every_route_refuses_the_roles_and_regions_it_must_on,
    )
    .await;
}

async fn every_route_refuses_the_roles_and_regions_it_must_on(database_url: Option<String>) {
    let mut users: Vec<(String, String, String)> = Vec::new();
    for role in ROLES {
        for region in [IN, OUT] {
            users.push((login_of(*role, region), role.as_str().into(), region.into()));
        }
    }
    let refs: Vec<(&str, &str, &str)> = users
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let env = prepared_on(database_url, &refs);
    web_common::second_batch(&env);
    let srv = serve(&env.config(), |_| {}).await;
    let line = srv.store.lines(1, 0, 1).await.unwrap()[0].id;
    // An objection on batch 1 (as Sichuan's publicity records them), for the resolve route.
    ykt_store::testing::exec(
        &srv.store,
        "INSERT INTO sichuan_objections (batch_id, raised_by, content, raised_on, recorded_by, status, at) \
         VALUES (1, '某*', '测试异议', '2023-05-20', 'maker', 'open', '2023-05-20T00:00:00Z')",
    )
    .await
    .unwrap();
    let objection = 1;
    // Two change requests to withdraw a project of Henan's shipped library (seeded by the
    // first `ykt henan` command), filed in 230102.
    env.ok(&["henan", "library", "list"]);
    let project = srv.store.henan_library().await.unwrap().remove(0);
    let mut requests = [0; 2];
    for slot in &mut requests {
        *slot = srv
            .store
            .henan_file_change(&ykt_store::henan::NewChange {
                kind: "withdraw",
                code: &project.code,
                entry: &project.entry,
                reason: "测试",
                region: "230102000000",
                actor: "maker",
                role: "dept_maker",
                on: "2023-05-20",
            })
            .await
            .unwrap();
    }
    let rows = table(line, objection, requests);

    // The table covers exactly the routes the router serves.
    let served: BTreeSet<(&str, &str)> = ykt_http::web::console_routes()
        .into_iter()
        .chain(ykt_http::web::api::routes())
        .collect();
    let listed: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.method, r.route))
        .chain(PUBLIC.iter().copied())
        .chain(SESSION.iter().copied())
        .collect();
    assert_eq!(served, listed, "the access table must list every route");

    let mut sessions = std::collections::HashMap::new();
    let logins: Vec<_> = users
        .iter()
        .map(|(login_name, _, _)| {
            let (base, login_name) = (srv.base.clone(), login_name.clone());
            tokio::spawn(async move {
                let r = login(&base, &login_name, web_common::PASSWORD).await;
                (login_name, r)
            })
        })
        .collect();
    for l in logins {
        let (login_name, r) = l.await.unwrap();
        let (token, csrf) = r.unwrap_or_else(|s| panic!("{login_name} cannot log in: {s}"));
        sessions.insert(login_name, Session { token, csrf });
    }

    let http = client();
    let mut checked = 0;
    let mut failures = Vec::new();
    for r in &rows {
        // Without a session.
        let resp = call(&srv.base, r, None).await;
        let st = resp.status();
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let anon_ok = if r.path.starts_with("/api/") {
            st == StatusCode::UNAUTHORIZED
        } else {
            st == StatusCode::SEE_OTHER && loc.as_deref() == Some("/login")
        };
        if !anon_ok {
            failures.push(format!(
                "{} {} without a session: {st} {loc:?}",
                r.method, r.path
            ));
        }
        // The sixteen users' requests of one route at once (their outcomes do not depend on
        // each other: only the region's maker may take the step).
        let mut tasks = Vec::new();
        for role in ROLES {
            for region in [IN, OUT] {
                let who = login_of(*role, region);
                let (c, base, r, session) = (
                    http.clone(),
                    srv.base.clone(),
                    r.clone(),
                    sessions[&who].clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let resp = call_with(&c, &base, &r, Some(&session)).await;
                    let st = resp.status();
                    let loc = resp
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let body = resp.text().await.unwrap_or_default();
                    let absent = if r.scoped && region == OUT {
                        let a = call_with(&c, &base, &absent_row(&r), Some(&session)).await;
                        Some((a.status(), a.text().await.unwrap_or_default()))
                    } else {
                        None
                    };
                    (st, loc, body, absent)
                }));
            }
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let mut answers = answers.into_iter();
        for role in ROLES {
            for region in [IN, OUT] {
                let who = login_of(*role, region);
                let (st, loc, body, absent) = answers.next().unwrap();
                let allowed =
                    r.allowed.is_none_or(|a| a.contains(role)) && (region == IN || !r.scoped);
                if r.scoped && region == OUT {
                    // Outside the region: the same answer as for an id that does not exist.
                    let (absent_status, absent_body) = absent.unwrap();
                    checked += 1;
                    if st != StatusCode::NOT_FOUND
                        || absent_status != StatusCode::NOT_FOUND
                        || body != absent_body
                    {
                        failures.push(format!(
                            "{} {} as {who}: {st} (expected 404, the same as for {}: {absent_status}) {}\n  vs {}",
                            r.method,
                            r.path,
                            absent_row(r).path,
                            body.chars().take(200).collect::<String>(),
                            absent_body.chars().take(200).collect::<String>()
                        ));
                    }
                    continue;
                }
                let good = if allowed {
                    st != StatusCode::FORBIDDEN
                        && st != StatusCode::UNAUTHORIZED
                        && !st.is_server_error()
                        && loc.as_deref() != Some("/login")
                } else {
                    st == StatusCode::FORBIDDEN
                };
                checked += 1;
                if !good {
                    failures.push(format!(
                        "{} {} as {who}: {st} (expected {}) {}",
                        r.method,
                        r.path,
                        if allowed { "allowed" } else { "403" },
                        body.chars().take(200).collect::<String>()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let scoped = rows.iter().filter(|r| r.scoped).count();
    assert!(scoped > 0);
    for r in &rows {
        assert_eq!(
            r.scoped,
            r.route.contains("{id}"),
            "{} {}: a route taking a record's id is region-scoped",
            r.method,
            r.route
        );
    }
    assert_eq!(checked, rows.len() * ROLES.len() * 2);

    // The two workflow steps above happened, once each, by the maker, and were audited.
    for id in [1, 2] {
        let steps = srv.store.batch_steps(id).await.unwrap();
        let taken: Vec<(&str, &str)> = steps
            .iter()
            .map(|s| (s.step.as_str(), s.actor.as_str()))
            .collect();
        assert_eq!(taken, vec![("submit_plan", "maker")], "batch {id}");
    }
    assert!(srv.store.verify_audit().await.is_ok());

    // An administrator manages the accounts of their own region only; an account outside it
    // is answered as one that does not exist.
    let out_admin = &sessions["admin-out"];
    for action in ["disable", "password"] {
        let mut answers = Vec::new();
        for login in ["maker", "nobody"] {
            let r = client()
                .post(format!("{}/users/{login}/{action}", srv.base))
                .header("cookie", format!("ykt_session={}", out_admin.token))
                .header("x-csrf-token", &out_admin.csrf)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("password=another-password-1")
                .send()
                .await
                .unwrap();
            answers.push((r.status(), r.text().await.unwrap()));
        }
        assert_eq!(answers[0].0, StatusCode::NOT_FOUND, "{action}");
        assert_eq!(answers[0], answers[1], "{action}: maker vs nobody");
    }
    let listed = client()
        .get(format!("{}/users", srv.base))
        .header("cookie", format!("ykt_session={}", out_admin.token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains("auditor-out") && !listed.contains(">maker<"),
        "{listed}"
    );
    assert!(!srv.store.get_user("maker").await.unwrap().unwrap().disabled);

    // County finance selects banks for its own region only (the form names the county).
    let out_finance = &sessions["finance_reviewer-out"];
    let r = client()
        .post(format!("{}/banks/select", srv.base))
        .header("cookie", format!("ykt_session={}", out_finance.token))
        .header("x-csrf-token", &out_finance.csrf)
        .form(&[("county", IN), ("bank", "ABC-HN"), ("agreement_no", "X-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(srv.store.henan_county_banks(None).await.unwrap().is_empty());
    // The bulletin notice was posted once, by a poster of the region, and is public.
    let bulletins: Vec<_> = srv
        .store
        .audit_entries(1, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.record.action == "notice.bulletin")
        .collect();
    // (The two posters' requests ran at once: each may have recorded its posting.)
    assert!(
        !bulletins.is_empty() && bulletins.len() <= 4,
        "{}",
        bulletins.len()
    );
    for b in &bulletins {
        assert!(
            ["maker", "township_clerk-in"].contains(&b.record.actor.as_str()),
            "{}",
            b.record.actor
        );
    }

    // Both requests were approved once, by the region's county finance.
    for id in requests {
        let c = srv.store.henan_change(id).await.unwrap().unwrap();
        assert_eq!(c.state, "reviewed", "request {id}");
    }

    // Public routes answer without a session.
    for (m, p) in [
        ("GET", "/login"),
        ("GET", "/static/app.css"),
        ("GET", "/static/app.js"),
        ("GET", "/api/v1/openapi.json"),
    ] {
        assert_eq!(m, "GET");
        let s = client()
            .get(format!("{}{p}", srv.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, StatusCode::OK, "{p}");
    }
}

#[test]
fn the_openapi_document_describes_every_api_route() {
    let doc: serde_json::Value = serde_json::from_str(ykt_http::web::api::OPENAPI).unwrap();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in ykt_http::web::api::routes() {
        let op = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in openapi.json"))[method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is not in openapi.json");
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()));
    }
    // Nothing documented that is not served.
    let served: BTreeSet<&str> = ykt_http::web::api::routes()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    for p in paths.keys() {
        assert!(
            served.contains(p.as_str()),
            "{p} is documented but not served"
        );
    }
    // Errors are {code, message}.
    let err = &doc["components"]["schemas"]["Error"]["required"];
    assert_eq!(err, &json!(["code", "message"]));
}
