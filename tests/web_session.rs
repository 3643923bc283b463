//! Accounts and sessions as an operator meets them: the login form, throttling after
//! repeated failures, a new session at every login, the cookie's attributes, CSRF on forms,
//! idle expiry, logout, and a disabled user losing their session, all audited.

// The scenario uses the Heilongjiang catalogue and workflow.
#![cfg(feature = "province-heilongjiang")]

mod web_common;

use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use web_common::{PASSWORD, client, prepared_on, serve};

fn cookie_of(r: &reqwest::Response) -> Option<(String, String)> {
    let v = r.headers().get("set-cookie")?.to_str().ok()?.to_owned();
    let token = v
        .strip_prefix("ykt_session=")?
        .split(';')
        .next()?
        .to_owned();
    Some((token, v))
}

/// The login page's CSRF token: (hidden field, `ykt_login_csrf` cookie).
async fn login_csrf(base: &str) -> (String, String) {
    let page = client().get(format!("{base}/login")).send().await.unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("ykt_login_csrf="))
        .expect("the login page sets its CSRF cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let at = html
        .find("name=\"_csrf\" value=\"")
        .expect("hidden _csrf field")
        + 20;
    let field = html[at..].split('"').next().unwrap().to_owned();
    (field, cookie)
}

/// Log in through the form as a browser does: the login page first (its CSRF cookie and
/// hidden field), then the form, with `old` as the session cookie the browser already holds.
async fn form_login(
    base: &str,
    login: &str,
    password: &str,
    old: Option<&str>,
) -> reqwest::Response {
    let (field, cookie) = login_csrf(base).await;
    let mut cookies = format!("ykt_login_csrf={cookie}");
    if let Some(t) = old {
        cookies.push_str(&format!("; ykt_session={t}"));
    }
    client()
        .post(format!("{base}/login"))
        .header("cookie", cookies)
        .form(&[("login", login), ("password", password), ("_csrf", &field)])
        .send()
        .await
        .unwrap()
}

async fn get(base: &str, path: &str, token: &str) -> reqwest::Response {
    client()
        .get(format!("{base}{path}"))
        .header("cookie", format!("ykt_session={token}"))
        .send()
        .await
        .unwrap()
}

/// The CSRF token of the page (`data-csrf` on <body>).
async fn csrf_of(base: &str, token: &str) -> String {
    let html = get(base, "/batches", token).await.text().await.unwrap();
    let at = html.find("data-csrf=\"").unwrap() + 11;
    html[at..at + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttling_sessions_csrf_expiry_and_logout() {
    ykt_store::testing::each_database_url(
        "web_session",
        login_throttling_sessions_csrf_expiry_and_logout_on,
    )
    .await;
}

async fn login_throttling_sessions_csrf_expiry_and_logout_on(database_url: Option<String>) {
    let env = prepared_on(
        database_url,
        &[
            ("maker", "dept_maker", "230102"),
            ("auditor", "auditor", "230102"),
        ],
    );
    let now = Arc::new(AtomicI64::new(1_700_000_000));
    let clock = now.clone();
    let srv = serve(&env.config(), move |st| {
        st.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    })
    .await;
    let base = srv.base.as_str();

    // Login CSRF: the right password without the login page's token (a form posted from
    // another site), with the field but not the cookie, or with another page's cookie,
    // opens no session, and does not count as a failed login.
    let (field, cookie) = login_csrf(base).await;
    let (_, other_cookie) = login_csrf(base).await;
    for (field, cookie) in [
        (None, None),
        (Some(field.as_str()), None),
        (None, Some(cookie.as_str())),
        (Some(field.as_str()), Some(other_cookie.as_str())),
    ] {
        let mut req = client().post(format!("{base}/login"));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("ykt_login_csrf={c}"));
        }
        let mut form = vec![("login", "maker"), ("password", PASSWORD)];
        if let Some(f) = field {
            form.push(("_csrf", f));
        }
        let r = req.form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{field:?} {cookie:?}");
        assert!(
            cookie_of(&r).is_none(),
            "no session without the login token"
        );
        assert!(r.text().await.unwrap().contains("登录页面已过期或来源不明"));
    }
    // The token expires (2 hours), and a used page's token still matches its own cookie.
    let (old_field, old_cookie) = login_csrf(base).await;
    now.fetch_add(2 * 3600 + 1, Ordering::SeqCst);
    let r = client()
        .post(format!("{base}/login"))
        .header("cookie", format!("ykt_login_csrf={old_cookie}"))
        .form(&[
            ("login", "maker"),
            ("password", PASSWORD),
            ("_csrf", &old_field),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "expired login form");

    // The login page, then a wrong password: the same message whether the login exists.
    let page = client().get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("工作人员登录"));
    let wrong = form_login(base, "maker", "not-the-password", None).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_of(&wrong).is_none());
    let t = wrong.text().await.unwrap();
    assert!(t.contains("用户名或密码错误"), "{t}");
    let unknown = form_login(base, "nobody", "whatever-password", None).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(unknown.text().await.unwrap().contains("用户名或密码错误"));

    // 5 failures for one login lock it for 15 minutes, even with the right password.
    for _ in 0..3 {
        form_login(base, "maker", "not-the-password", None).await;
    }
    let locked = form_login(base, "maker", "not-the-password", None).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let right_but_locked = form_login(base, "maker", PASSWORD, None).await;
    assert_eq!(right_but_locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        right_but_locked
            .text()
            .await
            .unwrap()
            .contains("登录失败次数过多")
    );
    // The client address had 6 failures too: another login from it is locked as well.
    let same_ip = form_login(base, "auditor", PASSWORD, None).await;
    assert_eq!(same_ip.status(), StatusCode::TOO_MANY_REQUESTS);
    now.fetch_add(15 * 60 + 1, Ordering::SeqCst);

    // After the lock: a session cookie with the required attributes.
    let ok = form_login(base, "maker", PASSWORD, None).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()["location"], "/");
    let (token1, cookie) = cookie_of(&ok).unwrap();
    assert_eq!(token1.len(), 64, "256-bit token");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let home = get(base, "/", &token1).await;
    assert_eq!(home.status(), StatusCode::OK);
    let h = home.headers();
    assert_eq!(
        h["cache-control"], "no-store",
        "pages with personal data are not cached"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(home.text().await.unwrap().contains("等待我处理"));
    // Only the token's hash is stored: the raw token is not a key of the sessions table.
    assert!(srv.store.session(&token1).await.unwrap().is_none());

    // Session fixation: a session cookie planted before login (by another site or a shared
    // computer) is not the session after it, and never authenticates.
    let planted = "ab".repeat(32);
    let fixed = form_login(base, "maker", PASSWORD, Some(&planted)).await;
    assert_eq!(fixed.status(), StatusCode::SEE_OTHER);
    let (fresh, _) = cookie_of(&fixed).unwrap();
    assert_ne!(fresh, planted);
    assert_eq!(
        get(base, "/", &planted).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(get(base, "/", &fresh).await.status(), StatusCode::OK);

    // Logging in again (with the old cookie) gives a new session; the old one is gone.
    let again = form_login(base, "maker", PASSWORD, Some(&token1)).await;
    let (token2, _) = cookie_of(&again).unwrap();
    assert_ne!(token1, token2);
    let old = get(base, "/", &token1).await;
    assert_eq!(old.status(), StatusCode::SEE_OTHER);
    assert_eq!(old.headers()["location"], "/login");

    // The batch's lines page by page (200 a page): batch 1 has 15, all on the first page.
    let first = get(base, "/batches/1", &token2).await.text().await.unwrap();
    assert!(
        first.contains("第 1 页，显示 15 笔（本批次共 15 笔）"),
        "{first}"
    );
    assert!(!first.contains("下一页"));
    let second = get(base, "/batches/1?state=pending&page=1", &token2)
        .await
        .text()
        .await
        .unwrap();
    assert!(second.contains("第 2 页，显示 0 笔") && second.contains("上一页"));
    assert!(
        second.contains("href=\"/batches/1?state=pending&amp;page=0\""),
        "the filter is kept"
    );

    // CSRF: a form without the token, or with another's, is refused; with it, it passes.
    let csrf = csrf_of(base, &token2).await;
    let post = |body: String| {
        let token2 = token2.clone();
        async move {
            client()
                .post(format!("{base}/batches/1/step"))
                .header("cookie", format!("ykt_session={token2}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let no_token = post("step=submit_plan".into()).await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert!(no_token.text().await.unwrap().contains("安全校验失败"));
    let wrong_token = post(format!("step=submit_plan&_csrf={}", "0".repeat(64))).await;
    assert_eq!(wrong_token.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        srv.store.batch(1).await.unwrap().unwrap().state.as_str(),
        "draft"
    );
    let good = post(format!("step=submit_plan&_csrf={csrf}")).await;
    assert_eq!(good.status(), StatusCode::SEE_OTHER);
    assert!(
        good.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/batches/1?ok=")
    );
    assert_eq!(
        srv.store.batch(1).await.unwrap().unwrap().state.as_str(),
        "submitted"
    );

    // An upload without script (multipart form): the token must be the form's field.
    let upload = |csrf: Option<String>| {
        let token2 = token2.clone();
        async move {
            let mut form = reqwest::multipart::Form::new();
            if let Some(c) = csrf {
                form = form.text("_csrf", c);
            }
            let form = form
                .text("province", "heilongjiang")
                .text("project", "农村最低生活保障金")
                .text("period", "2023-04")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(
                        std::fs::read(web_common::scenario().join("earlier.csv")).unwrap(),
                    )
                    .file_name("earlier.csv"),
                );
            client()
                .post(format!("{base}/rosters"))
                .header("cookie", format!("ykt_session={token2}"))
                .multipart(form)
                .send()
                .await
                .unwrap()
        }
    };
    let forged = upload(None).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        srv.store.roster(2).await.unwrap().is_none(),
        "nothing imported"
    );
    let forged = upload(Some("0".repeat(64))).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let plain = upload(Some(csrf.clone())).await;
    assert_eq!(plain.status(), StatusCode::SEE_OTHER);
    assert_eq!(plain.headers()["location"], "/rosters/2");

    // Idle for 29 minutes: still in; then 31 minutes idle: the session has ended.
    now.fetch_add(29 * 60, Ordering::SeqCst);
    assert_eq!(get(base, "/", &token2).await.status(), StatusCode::OK);
    now.fetch_add(31 * 60, Ordering::SeqCst);
    let idle = get(base, "/", &token2).await;
    assert_eq!(idle.status(), StatusCode::SEE_OTHER);
    assert_eq!(idle.headers()["location"], "/login");

    // Logout deletes the session.
    let (token3, _) = cookie_of(&form_login(base, "maker", PASSWORD, None).await).unwrap();
    let csrf3 = csrf_of(base, &token3).await;
    let out = client()
        .post(format!("{base}/logout"))
        .header("cookie", format!("ykt_session={token3}"))
        .form(&[("_csrf", csrf3.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(cookie_of(&out).is_some_and(|(t, c)| t.is_empty() && c.contains("Max-Age=0")));
    assert_eq!(
        get(base, "/", &token3).await.status(),
        StatusCode::SEE_OTHER
    );

    // A disabled user's open session ends and they cannot log in.
    let (token4, _) = cookie_of(&form_login(base, "auditor", PASSWORD, None).await).unwrap();
    assert_eq!(get(base, "/audit", &token4).await.status(), StatusCode::OK);
    env.ok(&["user", "disable", "auditor"]);
    assert_eq!(
        get(base, "/audit", &token4).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        form_login(base, "auditor", PASSWORD, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A reset password works and the old one does not.
    let mut child = env
        .cmd(&["user", "reset-password", "maker", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "another-password-456").unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(
        form_login(base, "maker", PASSWORD, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        form_login(base, "maker", "another-password-456", None)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    // Everything is in the audit chain, and no password is.
    let entries = srv.store.audit_entries(1, 10_000).await.unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.record.action.as_str()).collect();
    for a in [
        "auth.login_failed",
        "auth.login_locked",
        "auth.login",
        "auth.logout",
        "batch.submit_plan",
        "user.disable",
        "user.reset_password",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    let all =
        serde_json::to_string(&entries.iter().map(|e| &e.record).collect::<Vec<_>>()).unwrap();
    assert!(
        !all.contains(PASSWORD)
            && !all.contains("another-password-456")
            && !all.contains("not-the-password")
    );
    assert!(srv.store.verify_audit().await.is_ok());
}
