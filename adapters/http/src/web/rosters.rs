//! Roster upload (multipart, with a progress bar driven by app.js), the per-line result and
//! its xlsx download, and the 办卡/激活 follow-up lists (黑财监〔2023〕1号 二(二): "针对有卡、
//! 无卡或无效卡等不同情况，告知补贴对象办好社会保障卡并启用社保账户和激活金融账户").

use super::auth::{Operator, audit};
use super::layout;
use super::{PageError, RosterDone, RosterUpload, UPLOADERS, WebState};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use rand::RngCore;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;
use ykt_files::ReportLine;
use ykt_kernel::ReasonCode;
use ykt_kernel::reason::FollowUp;
use ykt_store::payments::RosterRow;

pub async fn upload_page(State(st): State<WebState>, op: Operator) -> Result<Markup, PageError> {
    op.require(UPLOADERS)?;
    let today = st.ops.today();
    let period = today.format("%Y-%m").to_string();
    let body = html! {
        section.card {
            form #upload method="post" action="/rosters" enctype="multipart/form-data" {
                (layout::csrf(&op))
                label { "省份 " select name="province" {
                    @for p in st.provinces.iter() { option value=(p.code()) { (p.name()) } }
                } }
                label { "补贴项目 " input type="text" name="project" list="projects" required placeholder="项目代码或名称"; }
                datalist id="projects" {
                    @for p in st.provinces.iter() { @for pr in p.catalog().projects() {
                        option value=(pr.code) { (pr.name) "（" (p.name()) "）" }
                    } }
                }
                label { "属期 " input type="text" name="period" value=(period) required pattern="[0-9]{4}(-[0-9]{2}|Q[1-4]|H[12])?"; }
                label { "清册文件（xlsx 或 CSV）" input type="file" name="file" accept=".xlsx,.csv,.txt" required; }
                progress #progress max="100" value="0" hidden {}
                span #progress-text.muted {}
                button type="submit" { "上传并校验" }
            }
            p.muted { "上传后系统逐行校验、比对社保卡信息并交叉核查，合格明细按区县生成发放批次；同一文件不会重复导入。" }
        }
    };
    Ok(layout::page("上传发放清册", &op, &body))
}

const CSRF_MESSAGE: &str =
    "安全校验失败：页面已过期或来源不明，请刷新页面后重试 (CSRF token missing or wrong)";

fn temp_path() -> PathBuf {
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    std::env::temp_dir().join(format!("ykt-upload-{}", hex::encode(b)))
}

/// Removes the uploaded file however the request ends.
struct TempFile(PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent().filter(|d| {
            d.starts_with(std::env::temp_dir())
                && d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("ykt-upload-"))
        }) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The uploaded file's name without any directory part or control characters (the roster
/// keeps it as its file name; the extension tells xlsx from CSV).
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '/' | '\\' | ':'))
        .take(120)
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_owned();
    if clean.is_empty() {
        "清册.xlsx".to_owned()
    } else {
        clean
    }
}

/// A received upload: fields and the file, streamed to a temporary file.
pub struct Received {
    pub province: String,
    pub project: String,
    pub period: String,
    pub file_name: String,
    file: TempFile,
}

/// Read the multipart form (the file is written to disk chunk by chunk). With `csrf`, the
/// form must carry that token in a `_csrf` field before the file.
pub async fn receive(
    mut mp: Multipart,
    csrf: Option<&super::auth::CsrfInForm>,
) -> Result<Received, String> {
    let mut csrf_ok = csrf.is_none();
    let mut province = String::new();
    let mut project = String::new();
    let mut period = String::new();
    let mut file_name = String::new();
    let mut file: Option<TempFile> = None;
    while let Some(mut field) = mp
        .next_field()
        .await
        .map_err(|e| format!("上传数据不完整 (bad multipart body): {e}"))?
    {
        let field_name = field.name().unwrap_or("").to_owned();
        if field_name == super::auth::CSRF_FIELD {
            // Checked only when the header did not carry the token.
            if let Some(c) = csrf {
                csrf_ok = field.text().await.is_ok_and(|v| v == c.0);
            }
            continue;
        }
        if !csrf_ok {
            return Err(CSRF_MESSAGE.into());
        }
        match field_name.as_str() {
            "file" => {
                file_name = safe_name(field.file_name().unwrap_or(""));
                let dir = temp_path();
                tokio::fs::create_dir(&dir)
                    .await
                    .map_err(|e| format!("无法保存上传文件 (cannot store the upload): {e}"))?;
                let tmp = TempFile(dir.join(&file_name));
                let mut f = tokio::fs::File::create(&tmp.0)
                    .await
                    .map_err(|e| format!("无法保存上传文件 (cannot store the upload): {e}"))?;
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| format!("上传中断 (upload interrupted): {e}"))?
                {
                    f.write_all(&chunk)
                        .await
                        .map_err(|e| format!("无法保存上传文件: {e}"))?;
                }
                f.flush()
                    .await
                    .map_err(|e| format!("无法保存上传文件: {e}"))?;
                file = Some(tmp);
            }
            name => {
                let v = field
                    .text()
                    .await
                    .map_err(|e| format!("表单字段{name}无效: {e}"))?;
                match name {
                    "province" => province = v.trim().to_owned(),
                    "project" => project = v.trim().to_owned(),
                    "period" => period = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
    }
    if !csrf_ok {
        return Err(CSRF_MESSAGE.into());
    }
    let file = file.ok_or("请选择清册文件 (no file in the upload)")?;
    if project.is_empty() || period.is_empty() {
        return Err("请填写补贴项目和属期 (project and period are required)".into());
    }
    Ok(Received {
        province,
        project,
        period,
        file_name,
        file,
    })
}

/// Import a received upload as `op`.
pub async fn import(
    st: &WebState,
    op: &Operator,
    r: &Received,
) -> Result<RosterDone, super::OpError> {
    let province = if r.province.is_empty() {
        st.provinces
            .first()
            .map(|p| p.code().to_owned())
            .unwrap_or_default()
    } else {
        r.province.clone()
    };
    let done = st
        .ops
        .import_roster(
            RosterUpload {
                path: &r.file.0,
                file_name: &r.file_name,
                province: &province,
                project: &r.project,
                period: &r.period,
            },
            &op.user,
        )
        .await?;
    audit(
        st,
        &op.user.login,
        op.audit_role(),
        "web.roster_upload",
        match &done {
            RosterDone::Imported { roster_id, .. }
            | RosterDone::AlreadyImported { roster_id, .. } => {
                format!("roster:{roster_id}")
            }
        },
        serde_json::json!({"file": r.file_name, "project": r.project, "period": r.period}),
    )
    .await;
    Ok(done)
}

fn wants_json(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

pub async fn upload_submit(
    State(st): State<WebState>,
    op: Operator,
    headers: HeaderMap,
    csrf: Option<axum::Extension<super::auth::CsrfInForm>>,
    mp: Multipart,
) -> Result<Response, PageError> {
    op.require(UPLOADERS)?;
    let json = wants_json(&headers);
    let r = match receive(mp, csrf.as_deref()).await {
        Ok(r) => r,
        Err(m) if m == CSRF_MESSAGE => return Err(PageError::forbidden(m)),
        Err(m) => {
            return Ok(if json {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(serde_json::json!({"code": "unprocessable", "message": m})),
                )
                    .into_response()
            } else {
                PageError::new(StatusCode::UNPROCESSABLE_ENTITY, m).into_response()
            });
        }
    };
    match import(&st, &op, &r).await {
        Ok(done) => {
            let id = match &done {
                RosterDone::Imported { roster_id, .. }
                | RosterDone::AlreadyImported { roster_id, .. } => *roster_id,
            };
            let to = format!("/rosters/{id}");
            Ok(if json {
                axum::Json(serde_json::json!({"redirect": to, "result": done})).into_response()
            } else {
                Redirect::to(&to).into_response()
            })
        }
        Err(e) if json => {
            let (status, code) = match &e {
                super::OpError::Refused(_) | super::OpError::Workflow(_) => {
                    (StatusCode::FORBIDDEN, "forbidden")
                }
                super::OpError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
                super::OpError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                super::OpError::Internal(_) => {
                    return Err(PageError::internal(&e));
                }
            };
            Ok((
                status,
                axum::Json(serde_json::json!({"code": code, "message": e.to_string()})),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// A roster the user may see: their own, or one imported by someone in their region.
/// A roster the user may see (its uploader's region lies in the user's scope), or 404, the
/// same as for no roster ([`Operator::in_scope`]).
pub async fn load_roster(st: &WebState, op: &Operator, id: i64) -> Result<RosterRow, PageError> {
    let Some(r) = st.store.roster(id).await? else {
        return op.in_scope(None::<RosterRow>, |_| "", "清册");
    };
    let region = if r.actor == op.user.login {
        op.user.region.full()
    } else {
        st.store
            .get_user(&r.actor)
            .await?
            .map(|u| u.region)
            .unwrap_or_default()
    };
    op.in_scope(Some((r, region)), |(_, reg)| reg.as_str(), "清册")
        .map(|(r, _)| r)
}

type Issue = (i64, Option<String>, String, String, String, String, String);

fn follow_up(code: &str) -> Option<FollowUp> {
    ReasonCode::from_code(code).map(|c| c.follow_up())
}

fn report_lines(issues: &[Issue]) -> Vec<ReportLine> {
    issues
        .iter()
        .map(|i| ReportLine {
            row: u32::try_from(i.0).unwrap_or(0),
            name_masked: i.5.clone(),
            id_masked: i.6.clone(),
            column: i.1.clone().unwrap_or_default(),
            code: i.2.clone(),
            severity: ReasonCode::from_code(&i.2)
                .map(|c| c.severity().label().to_owned())
                .unwrap_or_else(|| i.3.clone()),
            follow_up: follow_up(&i.2)
                .map(|f| f.label().to_owned())
                .unwrap_or_default(),
            message: i.4.clone(),
        })
        .collect()
}

pub async fn result_page(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
) -> Result<Markup, PageError> {
    let r = load_roster(&st, &op, id).await?;
    let issues = st.store.roster_issues(id).await?;
    let lines = report_lines(&issues);
    let batches: Vec<_> = st
        .store
        .batches(None, None)
        .await?
        .into_iter()
        .filter(|b| b.roster_id == Some(id))
        .collect();
    let list = |f: FollowUp| -> Vec<&ReportLine> {
        lines
            .iter()
            .filter(|l| follow_up(&l.code) == Some(f))
            .collect()
    };
    let card = list(FollowUp::ApplyForCard);
    let activate = list(FollowUp::ActivateCard);
    let body = html! {
        section.card {
            dl.facts {
                dt { "文件" } dd { (r.file_name) }
                dt { "补贴项目" } dd { (r.project) }
                dt { "属期" } dd { (r.period) }
                dt { "导入人" } dd { (r.actor) "，" (r.at) }
                dt { "结果" } dd id="summary" { "共 " (r.lines) " 行：合格 " (r.accepted) " 行（" (r.accepted_amount) " 元），不合格 " (r.rejected) " 行" }
            }
            p { a.button href={"/rosters/" (id) "/result.xlsx"} download { "下载校验结果（xlsx）" } }
            @if !batches.is_empty() {
                h2 { "生成的发放批次" }
                ul id="roster-batches" { @for b in &batches {
                    li { a href={"/batches/" (b.id)} { "批次 " (b.id) "：" (b.region) " " (b.project_name) " " (b.control.count) " 笔 " (b.control.amount) " 元" } }
                } }
            }
        }
        section.card {
            h2 { "逐行校验结果（" (lines.len()) " 条问题）" }
            table.data id="problems" {
                thead { tr { th { "行号" } th { "姓名" } th { "身份证号码" } th { "列" } th { "原因代码" } th { "级别" } th { "需办理" } th { "说明" } } }
                tbody { @for l in &lines {
                    tr class=(if l.severity == "错误" { "err" } else { "warn" }) {
                        td { (l.row) } td { (l.name_masked) } td.mono { (l.id_masked) } td { (l.column) }
                        td.mono { (l.code) } td { (l.severity) } td { (l.follow_up) } td.wrap { (l.message) }
                    }
                } }
            }
        }
        section.card {
            h2 { "需办卡人员（" (card.len()) "）" }
            (follow_table("need-card", &card))
            h2 { "需激活金融账户人员（" (activate.len()) "）" }
            (follow_table("need-activation", &activate))
        }
    };
    Ok(layout::page(&format!("清册 {id} 校验结果"), &op, &body))
}

fn follow_table(id: &str, rows: &[&ReportLine]) -> Markup {
    html! {
        table.data id=(id) {
            thead { tr { th { "行号" } th { "姓名" } th { "身份证号码" } th { "说明" } } }
            tbody { @for l in rows { tr { td { (l.row) } td { (l.name_masked) } td.mono { (l.id_masked) } td.wrap { (l.message) } } } }
        }
    }
}

pub async fn result_xlsx(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let r = load_roster(&st, &op, id).await?;
    let issues = st.store.roster_issues(id).await?;
    let lines = report_lines(&issues);
    let tmp = TempFile(temp_path().with_extension("xlsx"));
    let title = format!("{} {} 清册校验结果", r.project, r.period);
    ykt_files::export::write_report_xlsx(&tmp.0, &title, &lines)
        .map_err(|e| PageError::internal(&e))?;
    let bytes = tokio::fs::read(&tmp.0)
        .await
        .map_err(|e| PageError::internal(&e))?;
    audit(
        &st,
        &op.user.login,
        op.audit_role(),
        "web.roster_result_download",
        format!("roster:{id}"),
        serde_json::json!({}),
    )
    .await;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"roster-{id}-result.xlsx\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn upload_names_lose_their_directories() {
        assert_eq!(super::safe_name("../../etc/passwd"), "passwd");
        assert_eq!(super::safe_name("C:\\tmp\\低保清册.xlsx"), "低保清册.xlsx");
        assert_eq!(super::safe_name(".."), "清册.xlsx");
        assert_eq!(super::safe_name(""), "清册.xlsx");
    }
}
