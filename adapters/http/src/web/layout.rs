//! The console's page frame: head, navigation by role, the user and logout.

use super::auth::{CSRF_FIELD, Operator};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use ykt_kernel::Role;

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · 一卡通发放平台" }
            link rel="stylesheet" href="/static/app.css";
            script src="/static/app.js" defer {}
        }
    }
}

/// A page without navigation (login, errors).
pub fn bare(title: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body.bare { main { (body) } }
        }
    }
}

/// A console page: navigation for the user's roles, then `body`.
pub fn page(title: &str, op: &Operator, body: &Markup) -> Markup {
    let u = &op.user;
    let upload = super::UPLOADERS.iter().any(|r| u.has(*r));
    let audit = super::AUDIT_READERS.iter().any(|r| u.has(*r));
    let admin = u.has(Role::Admin);
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body data-csrf=(op.csrf) {
                header.top {
                    a.brand href="/" { "一卡通发放平台" }
                    nav {
                        a href="/" { "工作台" }
                        a href="/batches" { "发放批次" }
                        @if upload { a href="/rosters/new" { "上传清册" } }
                        a href="/catalog" { "补贴项目" }
                        a href="/banks" { "代发银行" }
                        a href="/notices" { "公示与期限" }
                        a href="/reports" { "报表" }
                        @if audit { a href="/audit" { "审计日志" } }
                        @if admin { a href="/users" { "用户管理" } }
                        a href="/portal/" { "公众查询" }
                    }
                    div.who {
                        span { (u.name) "（" (u.login) "，"
                            (u.roles.iter().map(|r| r.label_zh()).collect::<Vec<_>>().join("、"))
                            "，" (u.region.full()) "）" }
                        form.inline method="post" action="/logout" {
                            (csrf(op))
                            button.link type="submit" { "退出" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(op: &Operator) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(op.csrf); }
}

/// A POST button with a confirmation dialog (`data-confirm`, handled by app.js).
pub fn action_form(
    op: &Operator,
    action: &str,
    label: &str,
    confirm: &str,
    extra: Markup,
) -> Markup {
    html! {
        form.action method="post" action=(action) data-confirm=(confirm) {
            (csrf(op))
            (extra)
            button type="submit" { (label) }
        }
    }
}

/// A flash message from the query string (`?ok=` / `?err=`), escaped.
pub fn flash(ok: Option<&str>, err: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = ok { p.flash.ok role="status" { (m) } }
        @if let Some(m) = err { p.flash.error role="alert" { (m) } }
    }
}

/// Raw trusted markup (server-built SVG).
pub fn raw(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}
