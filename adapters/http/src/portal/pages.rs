//! The portal's HTML pages (maud: escaped by default). Plain forms, no script; one style
//! sheet from the binary; a print style that drops the navigation.

use super::{
    ClientIp, LookupAnswer, LookupQuery, NoticeFilter, PortalState, find_notice, kind_label,
    list_notices, lookup, no_store,
};
use crate::server::ApiError;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

const CSS: &str = r#"
:root { --ink: #1d2733; --line: #c9d1da; --brand: #b8231f; --muted: #5b6875; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.6 "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif; color: var(--ink); background: #f6f7f9; }
header { background: var(--brand); color: #fff; padding: .8rem 1.5rem; }
header a { color: #fff; text-decoration: none; }
header .site { font-size: 1.3rem; font-weight: bold; }
nav { display: inline-block; margin-left: 2rem; }
nav a { margin-right: 1.2rem; }
main { max-width: 72rem; margin: 1rem auto; background: #fff; padding: 1rem 1.5rem 2rem; border: 1px solid var(--line); }
h1 { font-size: 1.4rem; border-bottom: 2px solid var(--brand); padding-bottom: .3rem; }
h2 { font-size: 1.15rem; margin-top: 1.6rem; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0; font-size: .95rem; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef1f4; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
form.box { border: 1px solid var(--line); padding: 1rem; background: #fafbfc; max-width: 34rem; }
label { display: block; margin: .5rem 0 .2rem; }
input[type=text] { width: 100%; padding: .4rem; font-size: 1rem; border: 1px solid var(--line); }
button { margin-top: .8rem; padding: .45rem 1.6rem; font-size: 1rem; background: var(--brand); color: #fff; border: 0; cursor: pointer; }
.note { color: var(--muted); font-size: .9rem; }
.error { color: var(--brand); border-left: 4px solid var(--brand); padding: .3rem .8rem; background: #fdf1f0; }
.empty { padding: 1rem; background: #f6f7f9; border: 1px dashed var(--line); }
pre.notice { white-space: pre-wrap; font: inherit; border: 1px solid var(--line); padding: 1rem; }
footer { text-align: center; color: var(--muted); font-size: .85rem; margin: 1rem 0 2rem; }
@media print {
  header nav, form, footer, .noprint { display: none; }
  body { background: #fff; }
  main { border: 0; max-width: none; margin: 0; padding: 0; }
  header { background: none; color: #000; border-bottom: 2px solid #000; }
  header a { color: #000; }
}
"#;

pub(super) async fn style() -> Response {
    let mut r = CSS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - 惠民惠农财政补贴资金「一卡通」公开查询" }
                link rel="stylesheet" href="/portal/style.css";
            }
            body {
                header {
                    a.site href="/portal" { "惠民惠农财政补贴资金「一卡通」" }
                    nav {
                        a href="/portal/policies" { "补贴政策" }
                        a href="/portal/lookup" { "补贴查询" }
                        a href="/portal/notices" { "公示公告" }
                    }
                }
                main { (body) }
                footer { "本页面信息中的个人信息已按规定脱敏处理。" }
            }
        }
    }
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        layout(
            title,
            html! { h1 { (title) } p.error { (message) } p { a href="/portal" { "返回首页" } } },
        ),
    )
        .into_response()
}

fn api_error_page(e: ApiError) -> Response {
    let title = if e.status == StatusCode::NOT_FOUND {
        "未找到"
    } else if e.status.is_server_error() {
        "服务暂时不可用"
    } else {
        "请求有误"
    };
    error_page(e.status, title, &e.message)
}

pub(super) async fn index() -> Markup {
    layout(
        "首页",
        html! {
            h1 { "惠民惠农财政补贴资金「一卡通」公开查询" }
            p { "惠民惠农财政补贴资金通过社会保障卡「一卡通」直接发放到补贴对象本人账户。本专区公开补贴政策，提供个人补贴发放记录查询，并公示各地补贴发放名单（个人信息已脱敏）。" }
            ul {
                li { a href="/portal/policies" { "补贴政策" } "：各补贴项目的名称、政策依据、补贴对象、补贴标准、补贴条件和主管部门。" }
                li { a href="/portal/lookup" { "补贴查询" } "：输入本人身份证号码和姓名，查询本人的补贴发放记录。" }
                li { a href="/portal/notices" { "公示公告" } "：按地区和补贴项目查看已发布的公示。" }
            }
        },
    )
}

pub(super) async fn policies(State(s): State<PortalState>) -> Markup {
    layout(
        "补贴政策",
        html! {
            h1 { "补贴政策清单" }
            p.note { "依据各省惠民惠农财政补贴资金「一卡通」管理办法公开。补贴标准以政策文件为准。" }
            @for list in s.policies.iter() {
                h2 { (list.province_name) "（" (list.policies.len()) "项）" }
                table {
                    thead { tr {
                        th { "序号" } th { "补贴名称" } th { "政策依据" } th { "补贴对象" }
                        th { "补贴标准" } th { "补贴条件" } th { "主管部门" } th { "发放频次" }
                    } }
                    tbody {
                        @for (i, p) in list.policies.iter().enumerate() {
                            tr {
                                td.num { (i + 1) }
                                td { (p.name) }
                                td { (p.basis) }
                                td { (p.target) }
                                td { (p.standard) }
                                td { (p.conditions) }
                                td { (p.department) }
                                td { (p.frequency) }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn lookup_form_markup(q: Option<&LookupQuery>) -> Markup {
    // The name typed is shown again (it is the visitor's own input), the ID is not: an ID
    // never goes back into a page.
    let name = q.map(|q| q.name.as_str()).unwrap_or("");
    html! {
        form.box method="post" action="/portal/lookup" autocomplete="off" {
            label for="id" { "身份证号码" }
            input #id type="text" name="id" maxlength="18" required placeholder="18位身份证号码";
            label for="name" { "姓名" }
            input #name type="text" name="name" maxlength="30" required value=(name);
            button type="submit" { "查询" }
        }
        p.note { "仅可查询本人的补贴发放记录。为保护个人信息，查询次数受到限制；结果中姓名已脱敏。" }
    }
}

pub(super) async fn lookup_form() -> Response {
    no_store(
        layout(
            "补贴查询",
            html! { h1 { "补贴查询" } (lookup_form_markup(None)) },
        )
        .into_response(),
    )
}

fn answer_markup(a: &LookupAnswer) -> Markup {
    html! {
        h2 { "查询结果" }
        @if a.records.is_empty() {
            p.empty { "未查询到发放记录。请核对身份证号码和姓名是否正确；如有疑问，请咨询当地补贴主管部门。" }
        } @else {
            table {
                thead { tr {
                    th { "姓名" } th { "补贴项目" } th { "属期" } th { "金额（元）" } th { "发放日期" } th { "状态" }
                } }
                tbody {
                    @for r in &a.records {
                        tr {
                            td { (r.name_masked) }
                            td { (r.project_name) }
                            td { (r.period) }
                            td.num { (r.amount) }
                            td { (r.date) }
                            td { (r.status) }
                        }
                    }
                }
            }
        }
    }
}

pub(super) async fn lookup_page(
    State(s): State<PortalState>,
    ClientIp(ip): ClientIp,
    Form(q): Form<LookupQuery>,
) -> Response {
    let result = lookup(&s, ip, &q).await;
    let (status, content) = match &result {
        Ok(a) => (StatusCode::OK, answer_markup(a)),
        Err(e) => (e.status(), html! { p.error { (e.message()) } }),
    };
    let page = layout(
        "补贴查询",
        html! { h1 { "补贴查询" } (lookup_form_markup(Some(&q))) (content) },
    );
    let r = no_store((status, page).into_response());
    match result {
        Err(e) => e.retry_after(r),
        Ok(_) => r,
    }
}

pub(super) async fn notices(
    State(s): State<PortalState>,
    Query(f): Query<NoticeFilter>,
) -> Response {
    let list = match list_notices(&s.store, &f).await {
        Ok(l) => l,
        Err(e) => return api_error_page(e),
    };
    let mut projects: Vec<&str> = list.iter().map(|n| n.project_name.as_str()).collect();
    projects.sort_unstable();
    projects.dedup();
    let region = f.region.as_deref().unwrap_or("");
    let project = f.project.as_deref().unwrap_or("");
    layout(
        "公示公告",
        html! {
            h1 { "公示公告" }
            form.noprint method="get" action="/portal/notices" {
                "地区代码 " input type="text" name="region" value=(region) size="12" maxlength="12" placeholder="如 2301";
                " 补贴项目 " input type="text" name="project" value=(project) size="20" list="projects";
                datalist #projects { @for p in &projects { option value=(p) {} } }
                " " button type="submit" { "筛选" }
            }
            @if list.is_empty() {
                p.empty { "暂无符合条件的公示。" }
            } @else {
                table {
                    thead { tr { th { "发布日期" } th { "类别" } th { "地区" } th { "补贴项目" } th { "标题" } th { "公示截止" } } }
                    tbody {
                        @for n in &list {
                            tr {
                                td { (n.published_on) }
                                td { (kind_label(&n.kind)) }
                                td { a href={ "/portal/notices?region=" (n.region) } { (n.region) } }
                                td { (n.project_name) }
                                td { a href={ "/portal/notices/" (n.id) } { (n.title) } }
                                td { (n.until.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

pub(super) async fn notice(State(s): State<PortalState>, Path(id): Path<String>) -> Response {
    let n = match find_notice(&s.store, &id).await {
        Ok(n) => n,
        Err(e) => return api_error_page(e),
    };
    layout(
        &n.title,
        html! {
            h1 { (n.title) }
            p.note {
                (kind_label(&n.kind)) " · 地区 " (n.region) " · 补贴项目 " (n.project_name)
                " · 发布日期 " (n.published_on)
                @if let Some(u) = &n.until { " · 公示截止 " (u) }
            }
            pre.notice { (n.body) }
            p.noprint { a href="/portal/notices" { "返回公示列表" } }
        },
    )
    .into_response()
}
