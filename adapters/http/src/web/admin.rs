//! Catalogue, notices and deadlines, the audit log with its chain verification, and the
//! administrator's user management.

use super::auth::{Operator, audit, hash_password};
use super::batches::enc;
use super::layout::{self, action_form};
use super::{AUDIT_READERS, PageError, WebState};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::collections::HashMap;
use ykt_kernel::{RegionCode, Role};
use ykt_store::UserRow;

pub async fn catalog_page(State(st): State<WebState>, op: Operator) -> Result<Markup, PageError> {
    let body = html! {
        @for p in st.provinces.iter() {
            section.card {
                h2 { (p.name()) "（" (p.catalog().projects().len()) " 个项目）" }
                table.data {
                    thead { tr { th { "代码" } th { "项目名称" } th { "简称" } th { "牵头单位" } th { "发放频次" } th { "资金渠道" } th { "标准" } } }
                    tbody { @for pr in p.catalog().projects() {
                        tr {
                            td.mono { (pr.code) } td { (pr.name) } td { (pr.short_name) } td { (pr.lead_unit) }
                            td { (pr.frequency.label_zh()) } td { (pr.funding.label_zh()) }
                            td { @if let Some(s) = &pr.standard { (s) " 元" @if let Some(u) = &pr.unit { "/" (u) } } }
                        }
                    } }
                }
            }
        }
        p.muted { "河南省项目库及其变更申请见 " a href="/library" { "项目库" } "（变更申请在项目库页面审核；填报仍使用 ykt henan library request add 命令）。" }
    };
    Ok(layout::page("补贴项目", &op, &body))
}

pub async fn notices_page(State(st): State<WebState>, op: Operator) -> Result<Markup, PageError> {
    let notices = st.store.notices(Some(op.user.region.prefix())).await?;
    let today = st.ops.today().format("%Y-%m-%d").to_string();
    let body = html! {
        section.card {
            p.muted { "今天 " (today) "；公示内容均已脱敏。" }
            table.data id="notices" {
                thead { tr { th { "标题" } th { "类别" } th { "区划" } th { "项目" } th { "发布日期" } th { "公示截止" } th { "状态" } } }
                tbody { @for n in &notices {
                    @let overdue = n.until.as_deref().is_some_and(|u| u < today.as_str());
                    tr class=(if overdue { "err" } else { "" }) {
                        td { (n.title) } td { (n.kind) } td { (n.region) } td { (n.project_name) }
                        td { (n.published_on) } td { (n.until.as_deref().unwrap_or("—")) }
                        td { @if n.withdrawn { "已撤回" } @else if overdue { "已到期" } @else { "有效" } }
                    }
                } }
            }
        }
    };
    Ok(layout::page("公示与期限", &op, &body))
}

pub async fn audit_page(State(st): State<WebState>, op: Operator) -> Result<Markup, PageError> {
    op.require(AUDIT_READERS)?;
    let verified = st.store.verify_audit().await;
    let (status, entries) = match &verified {
        Ok(r) => (
            html! { p.flash.ok id="chain" { "审计链校验通过：共 " (r.entries) " 条，链头 " span.mono { (r.head.map(|h| h.to_hex()).unwrap_or_else(|| "-".into())) } } },
            r.entries,
        ),
        Err(e) => (
            html! { p.flash.error id="chain" { "审计链校验失败：" (e.to_string()) } },
            0,
        ),
    };
    let from = (entries - 199).max(1);
    let mut rows = st.store.audit_entries(from, 200).await?;
    rows.reverse();
    audit(
        &st,
        &op.user.login,
        op.audit_role(),
        "web.audit_view",
        "audit".into(),
        serde_json::json!({}),
    )
    .await;
    let body = html! {
        (status)
        section.card {
            h2 { "最近 " (rows.len()) " 条" }
            table.data id="audit" {
                thead { tr { th { "#" } th { "时间" } th { "操作人" } th { "角色" } th { "操作" } th { "对象" } th { "状态" } } }
                tbody { @for e in &rows {
                    tr {
                        td { (e.seq) } td { (e.record.at) } td { (e.record.actor) } td { (e.record.role) }
                        td.mono { (e.record.action) } td { (e.record.subject) }
                        td { (e.record.from_state.as_deref().unwrap_or("")) @if e.record.to_state.is_some() { " → " (e.record.to_state.as_deref().unwrap_or("")) } }
                    }
                } }
            }
        }
    };
    Ok(layout::page("审计日志", &op, &body))
}

pub async fn users_page(
    State(st): State<WebState>,
    op: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, PageError> {
    op.require(&[Role::Admin])?;
    // An administrator manages the accounts of their own region.
    let users: Vec<UserRow> = st
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| op.covers(&u.region).is_ok())
        .collect();
    let body = html! {
        (layout::flash(q.get("ok").map(String::as_str), q.get("err").map(String::as_str)))
        section.card {
            table.data id="users" {
                thead { tr { th { "登录名" } th { "姓名" } th { "角色" } th { "区划" } th { "状态" } th { "操作" } } }
                tbody { @for u in &users {
                    tr {
                        td { (u.login) } td { (u.display_name) }
                        td { (u.roles.iter().map(|r| Role::parse(r).map(|r| r.label_zh()).unwrap_or(r.as_str())).collect::<Vec<_>>().join("、")) }
                        td { (u.region) }
                        td { @if u.disabled { "已停用" } @else if u.password_hash.is_none() { "未设密码" } @else { "正常" } }
                        td {
                            @if !u.disabled && u.login != op.user.login {
                                (action_form(&op, &format!("/users/{}/disable", enc(&u.login)), "停用", &format!("确认停用用户{}？其登录会话将立即失效。", u.login), html! {}))
                            }
                            (action_form(&op, &format!("/users/{}/password", enc(&u.login)), "重设密码", &format!("确认重设用户{}的密码？", u.login),
                                html! { input type="password" name="password" placeholder="新密码（至少10位）" required minlength="10" autocomplete="new-password"; }))
                        }
                    }
                } }
            }
        }
        section.card {
            h2 { "新增或修改用户" }
            form.action method="post" action="/users" {
                (layout::csrf(&op))
                label { "登录名 " input type="text" name="login" required; }
                label { "姓名 " input type="text" name="name" required; }
                label { "区划代码 " input type="text" name="region" required placeholder="如 230102"; }
                fieldset { legend { "角色" }
                    @for r in Role::ALL.iter().filter(|r| **r != Role::System) {
                        label.check { input type="checkbox" name="roles" value=(r.as_str()); (r.label_zh()) }
                    }
                }
                label { "初始密码 " input type="password" name="password" required minlength="10" autocomplete="new-password"; }
                button type="submit" { "保存" }
            }
        }
    };
    Ok(layout::page("用户管理", &op, &body))
}

/// The account `login` must exist in the administrator's region: an account outside it gets
/// the same 404 as none ([`Operator::in_scope`]).
async fn managed(st: &WebState, op: &Operator, login: &str) -> Result<UserRow, PageError> {
    op.in_scope(st.store.get_user(login).await?, |u| &u.region, "用户")
}

fn users_back(r: Result<String, String>) -> Response {
    match r {
        Ok(m) => Redirect::to(&format!("/users?ok={}", enc(&m))).into_response(),
        Err(m) => Redirect::to(&format!("/users?err={}", enc(&m))).into_response(),
    }
}

/// Parse an urlencoded body allowing repeated keys (`roles=a&roles=b`).
fn pairs(body: &[u8]) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) =
                    u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    std::str::from_utf8(body)
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

pub async fn user_save(
    State(st): State<WebState>,
    op: Operator,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    op.require(&[Role::Admin])?;
    let p = pairs(&body);
    let get = |k: &str| {
        p.iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let roles: Vec<String> = p
        .iter()
        .filter(|(k, _)| k == "roles")
        .map(|(_, v)| v.clone())
        .collect();
    let login = get("login");
    if roles.is_empty()
        || roles
            .iter()
            .any(|r| Role::parse(r).is_none_or(|r| r == Role::System))
    {
        return Ok(users_back(Err("请至少选择一个有效角色".into())));
    }
    let region = match RegionCode::parse(&get("region")) {
        Ok(r) => r,
        Err(e) => return Ok(users_back(Err(format!("区划代码：{e}")))),
    };
    let hash = match hash_password(
        &p.iter()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
    ) {
        Ok(h) => h,
        Err(e) => return Ok(users_back(Err(e.to_string()))),
    };
    op.covers(&region.full())?;
    let existing = st.store.get_user(&login).await?;
    if let Some(e) = &existing {
        op.covers(&e.region)?;
    }
    let row = UserRow {
        login: login.clone(),
        display_name: get("name"),
        roles: roles.clone(),
        region: region.full(),
        password_hash: Some(hash),
        disabled: false,
    };
    if let Err(e) = st.store.upsert_user(&row).await {
        return Ok(users_back(Err(e.to_string())));
    }
    if existing.is_some() {
        st.store.delete_sessions_of(&login).await?;
    }
    audit(
        &st,
        &op.user.login,
        op.audit_role(),
        if existing.is_some() {
            "user.update"
        } else {
            "user.add"
        },
        format!("user:{login}"),
        serde_json::json!({"roles": roles, "region": region.full()}),
    )
    .await;
    Ok(users_back(Ok(format!("用户{login}已保存"))))
}

pub async fn user_disable(
    State(st): State<WebState>,
    op: Operator,
    Path(login): Path<String>,
) -> Result<Response, PageError> {
    op.require(&[Role::Admin])?;
    if login == op.user.login {
        return Ok(users_back(Err("不能停用自己的账户".into())));
    }
    managed(&st, &op, &login).await?;
    if let Err(e) = st.store.set_user_disabled(&login, true).await {
        return Ok(users_back(Err(e.to_string())));
    }
    st.store.delete_sessions_of(&login).await?;
    audit(
        &st,
        &op.user.login,
        op.audit_role(),
        "user.disable",
        format!("user:{login}"),
        serde_json::json!({}),
    )
    .await;
    Ok(users_back(Ok(format!("用户{login}已停用"))))
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    pub password: String,
}

pub async fn user_password(
    State(st): State<WebState>,
    op: Operator,
    Path(login): Path<String>,
    axum::Form(f): axum::Form<PasswordForm>,
) -> Result<Response, PageError> {
    op.require(&[Role::Admin])?;
    managed(&st, &op, &login).await?;
    let hash = match hash_password(&f.password) {
        Ok(h) => h,
        Err(e) => return Ok(users_back(Err(e.to_string()))),
    };
    if let Err(e) = st.store.set_password_hash(&login, &hash).await {
        return Ok(users_back(Err(e.to_string())));
    }
    st.store.delete_sessions_of(&login).await?;
    audit(
        &st,
        &op.user.login,
        op.audit_role(),
        "user.reset_password",
        format!("user:{login}"),
        serde_json::json!({}),
    )
    .await;
    Ok(users_back(Ok(format!("用户{login}的密码已重设"))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn repeated_form_keys_are_kept() {
        let p = super::pairs(b"login=a&roles=dept_maker&roles=auditor&name=%E5%BC%A0+%E4%B8%89");
        assert_eq!(p.iter().filter(|(k, _)| k == "roles").count(), 2);
        assert_eq!(p.last().unwrap().1, "张 三");
    }
}
