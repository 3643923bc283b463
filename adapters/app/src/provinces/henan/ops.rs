//! Henan's operations as a service: the rules of `ykt_province_henan` applied to the store and
//! the cycle runner. The CLI (`ykt henan ...`), the demo and the tests all go through here, so
//! each rule is enforced in one place.
//!
//! - the project library and its change requests (濮阳规程 第十至十二条);
//! - candidate agent banks and each county's one or two (第十五、十六条), bank credentials;
//! - the batch flow around the generic cycle: finance's review picks the bank and budget unit
//!   (第二十一条), the order push, the system's steps (funding, release, results), signed
//!   corrections and re-pulls (第二十三条), refunds, reconciliation and publication;
//! - hand-over checks with their working-day deadlines (第二十六条).

use crate::cycle::{Cycle, CycleError, Ports, StepReport};
use chrono::NaiveDate;
use std::collections::BTreeMap;
use ykt_kernel::batch::{BatchState, LineState};
use ykt_kernel::catalog::Project;
use ykt_kernel::ports::PortError;
use ykt_kernel::province::{Province, ProvinceConfig};
use ykt_kernel::{BankAccount, RegionCode, RegionLevel, Role, User};
use ykt_province_henan::banks::{self, Candidate};
use ykt_province_henan::calendar::WorkCalendar;
use ykt_province_henan::library::{
    self, ChangeKind, ChangeState, ChangeStep, LibraryEntry, authorize_change, authorize_filing,
};
use ykt_province_henan::reconcile::{self, HandoverDeadlines, HandoverFacts, HandoverState};
use ykt_store::cycle::LineFix;
use ykt_store::henan::{
    CandidateRow, ChangeMove, ChangeRow, CountyBankRow, HandoverRow, LibraryChange, LibraryRow,
    LineEventRow, NewChange, token_hash,
};
use ykt_store::payments::BatchRow;
use ykt_store::{Store, StoreError};

/// Why an operation did not happen. `Refused` (and the cycle's refusals) are the user's to
/// fix: the CLI exits with 1 for them; the others are failures (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Cycle(#[from] CycleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl OpError {
    /// Whether the user can fix it (wrong role, state, data...).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            OpError::Refused(_)
                | OpError::Cycle(CycleError::Refused(_) | CycleError::Invalid(_))
                | OpError::Store(
                    StoreError::Invalid { .. }
                        | StoreError::Conflict { .. }
                        | StoreError::Concurrent { .. }
                )
        )
    }
}

macro_rules! refusal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for OpError {
            fn from(e: $t) -> OpError {
                OpError::Refused(e.to_string())
            }
        }
    )*};
}
refusal_from!(
    library::ChangeError,
    library::LibraryError,
    banks::BankRuleError,
    ykt_province_henan::calendar::CalendarError
);

pub type OpResult<T> = Result<T, OpError>;

fn refused<T>(m: impl Into<String>) -> OpResult<T> {
    Err(OpError::Refused(m.into()))
}

/// Henan's operations over one store.
pub struct Henan<'a> {
    pub store: &'a Store,
    pub province: &'a dyn Province,
    pub ports: &'a Ports,
    /// The platform's business date.
    pub today: NaiveDate,
    pub calendar: &'a WorkCalendar,
}

/// A library entry with its stored state.
#[derive(Debug, Clone)]
pub struct LibraryItem {
    pub row: LibraryRow,
    pub entry: LibraryEntry,
}

/// A hand-over with its deadlines as of a day.
#[derive(Debug, Clone)]
pub struct HandoverView {
    pub row: HandoverRow,
    pub batch_id: i64,
    pub region: String,
    pub deadlines: Result<HandoverDeadlines, String>,
}

/// What one pass of the system's steps did to a batch.
#[derive(Debug, Clone)]
pub struct SyncLine {
    pub batch: i64,
    pub order_no: String,
    pub step: &'static str,
    pub outcome: String,
}

/// Parse a library entry as stored.
pub fn entry_of(row: &LibraryRow) -> OpResult<LibraryEntry> {
    serde_json::from_str(&row.entry).map_err(|e| {
        OpError::Store(StoreError::Corrupt {
            what: format!("henan_library.entry {}: {e}", row.code),
        })
    })
}

fn json(entry: &LibraryEntry) -> String {
    serde_json::to_string(entry).unwrap_or_default()
}

/// The Henan province built with the library's active projects merged into its catalogue,
/// so projects added by change requests can be imported.
pub async fn library_province(
    store: &Store,
    settings: &serde_json::Value,
) -> anyhow::Result<Box<dyn Province>> {
    let mut extra = Vec::new();
    for row in store.henan_library().await? {
        if row.status == "active" {
            let entry = entry_of(&row)?;
            extra.push(entry.validate()?);
        }
    }
    let d = ykt_kernel::province::find_province(ykt_province_henan::CODE)?;
    Ok((d.build)(&ProvinceConfig {
        settings: settings.clone(),
        extra_projects: extra,
    })?)
}

/// Load a user by login.
pub async fn load_user(store: &Store, login: &str) -> OpResult<User> {
    let row = store.get_user(login).await?.ok_or_else(|| {
        OpError::Refused(format!(
            "用户「{login}」不存在；先用 ykt user add 创建 (no such user)"
        ))
    })?;
    if row.disabled {
        return refused(format!("用户「{login}」已停用 (user is disabled)"));
    }
    crate::cli::user_of(&row).map_err(|e| OpError::Refused(e.to_string()))
}

impl Henan<'_> {
    pub fn cycle(&self) -> Cycle<'_> {
        Cycle {
            store: self.store,
            province: self.province,
            ports: self.ports,
            today: self.today,
        }
    }

    fn on(&self) -> String {
        self.today.to_string()
    }

    // ----- the project library (第十至十二条) -----------------------------------------------

    /// Load the shipped library into an empty database (第十条 "建立补贴项目库"). Returns how
    /// many projects were loaded (0 when the library exists).
    pub async fn seed_library(&self) -> OpResult<u64> {
        let entries = library::parse_library(ykt_province_henan::LIBRARY)?;
        let rows: Vec<(String, String, String)> = entries
            .iter()
            .map(|e| (e.code.clone(), e.name.clone(), json(e)))
            .collect();
        Ok(self
            .store
            .henan_library_seed(&rows, "system", &self.on())
            .await?)
    }

    /// The library with parsed entries.
    pub async fn library(&self) -> OpResult<Vec<LibraryItem>> {
        let mut out = Vec::new();
        for row in self.store.henan_library().await? {
            let entry = entry_of(&row)?;
            out.push(LibraryItem { row, entry });
        }
        Ok(out)
    }

    /// Refuse a project that is not active in the library (第十条 "所有入库补贴项目均实行……
    /// 发放": only projects in the library are paid).
    pub async fn check_payable(&self, code_or_name: &str) -> OpResult<LibraryItem> {
        self.seed_library().await?;
        match self.store.henan_library_entry(code_or_name).await? {
            Some(row) if row.status == "active" => {
                let entry = entry_of(&row)?;
                Ok(LibraryItem { row, entry })
            }
            Some(row) => refused(format!(
                "补贴项目{} {}已停止执行（变更申请{}），不能发放（第十一条） (project withdrawn from the library)",
                row.code,
                row.name,
                row.request_id.map(|r| r.to_string()).unwrap_or_default()
            )),
            None => refused(format!(
                "补贴项目「{code_or_name}」不在补贴项目库中，须先经变更申请入库（第十、十二条） (project not in the library)"
            )),
        }
    }

    /// File a change request (第十二条). `entry` is the project after the change (for
    /// `withdraw`, `code` names the project).
    pub async fn file_change(
        &self,
        user: &User,
        kind: ChangeKind,
        entry: Option<LibraryEntry>,
        code: Option<&str>,
        reason: &str,
    ) -> OpResult<i64> {
        authorize_filing(user)?;
        if reason.trim().is_empty() {
            return refused("须填写调整变更理由 (a reason is required)");
        }
        self.seed_library().await?;
        let entry = match (kind, entry, code) {
            (ChangeKind::Withdraw, _, Some(code)) => {
                let item = self.check_payable(code).await?;
                item.entry
            }
            (ChangeKind::Withdraw, Some(e), None) => self.check_payable(&e.code).await?.entry,
            (ChangeKind::Withdraw, None, None) => {
                return refused("停止执行须指明项目代码 (name the project)");
            }
            (_, None, _) => return refused("须提交申请表（--form 文件） (the form is required)"),
            (k, Some(e), _) => {
                e.validate()?;
                let existing = self.store.henan_library_entry(&e.code).await?;
                let by_name = self.store.henan_library_entry(&e.name).await?;
                match k {
                    ChangeKind::Add => {
                        if existing.is_some() {
                            return Err(library::LibraryError::Exists(e.code.clone()).into());
                        }
                        if by_name.is_some() {
                            return Err(library::LibraryError::NameTaken(e.name.clone()).into());
                        }
                    }
                    _ => {
                        self.check_payable(&e.code).await?;
                        if by_name.is_some_and(|r| r.code != e.code) {
                            return Err(library::LibraryError::NameTaken(e.name.clone()).into());
                        }
                    }
                }
                e
            }
        };
        Ok(self
            .store
            .henan_file_change(&NewChange {
                kind: kind.as_str(),
                code: &entry.code,
                entry: &json(&entry),
                reason: reason.trim(),
                region: &user.region.full(),
                actor: &user.login,
                role: Role::DeptMaker.as_str(),
                on: &self.on(),
            })
            .await?)
    }

    /// Take the next step on a change request (or reject it). The last step (provincial
    /// finance) applies the change to the library in the same transaction.
    pub async fn change_step(
        &self,
        id: i64,
        user: &User,
        reject: bool,
        note: Option<&str>,
    ) -> OpResult<ChangeRow> {
        let req = self.store.henan_change(id).await?.ok_or_else(|| {
            OpError::Refused(format!("没有变更申请{id} (no change request {id})"))
        })?;
        let state = ChangeState::parse(&req.state).ok_or_else(|| {
            OpError::Store(StoreError::Corrupt {
                what: "henan_change_requests.state".into(),
            })
        })?;
        let filed_in =
            RegionCode::parse(&req.region).map_err(|e| OpError::Refused(e.to_string()))?;
        let earlier: Vec<(ChangeStep, String)> = self
            .store
            .henan_change_steps(id)
            .await?
            .into_iter()
            .map(|s| {
                let step = match s.step.as_str() {
                    "file" => ChangeStep::File,
                    "review" => ChangeStep::Review,
                    "recheck" => ChangeStep::Recheck,
                    "apply" => ChangeStep::Apply,
                    _ => ChangeStep::Reject,
                };
                (step, s.actor)
            })
            .collect();
        let stage = authorize_change(&filed_in, state, &earlier, user, reject)?;
        if reject && note.is_none_or(|n| n.trim().is_empty()) {
            return refused("不通过须说明理由 (a rejection needs a reason)");
        }
        let entry: LibraryEntry = serde_json::from_str(&req.entry).map_err(|e| {
            OpError::Store(StoreError::Corrupt {
                what: format!("henan_change_requests.entry: {e}"),
            })
        })?;
        let kind = ChangeKind::parse(&req.kind).unwrap_or(ChangeKind::Modify);
        let entry_json = json(&entry);
        let apply = (stage.step == ChangeStep::Apply).then(|| LibraryChange {
            kind: kind.as_str(),
            code: &entry.code,
            name: &entry.name,
            entry: &entry_json,
        });
        if apply.is_some()
            && kind == ChangeKind::Add
            && self.store.henan_library_entry(&entry.code).await?.is_some()
        {
            return Err(library::LibraryError::Exists(entry.code.clone()).into());
        }
        self.store
            .henan_change_move(&ChangeMove {
                id,
                version: req.version,
                from: state.as_str(),
                to: stage.to.as_str(),
                step: stage.step.as_str(),
                actor: &user.login,
                role: Role::FinanceReviewer.as_str(),
                office: &stage.office.full(),
                note,
                on: &self.on(),
                apply,
            })
            .await?;
        self.store
            .henan_change(id)
            .await?
            .ok_or_else(|| OpError::Refused(format!("没有变更申请{id}")))
    }

    // ----- agent banks (第十五、十六条) ----------------------------------------------------

    /// Provincial finance registers a candidate bank.
    pub async fn add_candidate(&self, user: &User, c: &Candidate) -> OpResult<()> {
        banks::authorize_candidates(user)?;
        banks::check_candidate(c)?;
        if self
            .store
            .henan_candidates()
            .await?
            .iter()
            .any(|x| x.code == c.code)
        {
            return refused(format!("{}已在备选名单中 (already a candidate)", c.code));
        }
        Ok(self
            .store
            .henan_add_candidate(&CandidateRow {
                code: c.code.clone(),
                name: c.name.clone(),
                agreement_no: c.agreement_no.clone(),
                connected: c.connected,
                free_interbank: c.free_interbank,
                added_by: user.login.clone(),
                added_on: self.on(),
            })
            .await?)
    }

    /// The banks a county selected.
    pub async fn county_banks(&self, county: &str) -> OpResult<Vec<String>> {
        Ok(self
            .store
            .henan_county_banks(Some(county))
            .await?
            .into_iter()
            .map(|b| b.bank)
            .collect())
    }

    /// County finance selects a bank among the candidates (1 or 2 per county).
    pub async fn select_bank(
        &self,
        user: &User,
        county: &str,
        bank: &str,
        agreement_no: &str,
    ) -> OpResult<()> {
        let county = RegionCode::parse(county).map_err(|e| OpError::Refused(e.to_string()))?;
        banks::authorize_selection(user, &county)?;
        if agreement_no.trim().is_empty() {
            return refused(
                "须填写县（区）补贴资金代发协议编号（第十六条） (the agreement number is required)",
            );
        }
        let candidates = self.store.henan_candidates().await?;
        let candidate = candidates
            .iter()
            .find(|c| c.code == bank)
            .map(|c| Candidate {
                code: c.code.clone(),
                name: c.name.clone(),
                agreement_no: c.agreement_no.clone(),
                connected: c.connected,
                free_interbank: c.free_interbank,
            });
        let selected = self.county_banks(&county.full()).await?;
        banks::check_selection(&selected, candidate.as_ref(), bank)?;
        Ok(self
            .store
            .henan_select_bank(
                &CountyBankRow {
                    county: county.full(),
                    bank: bank.to_owned(),
                    agreement_no: agreement_no.trim().to_owned(),
                    selected_by: user.login.clone(),
                    selected_on: self.on(),
                },
                banks::MAX_COUNTY_BANKS as i64,
            )
            .await?)
    }

    /// Issue a bank's interface credential (an administrator's task). Returns the token,
    /// shown once: only its hash is kept, and issuing again replaces it.
    pub async fn issue_credential(&self, user: &User, bank: &str) -> OpResult<String> {
        if !user.has(Role::Admin) && !user.has(Role::System) {
            return refused(format!(
                "银行接口凭据由系统管理员签发；用户{}不是管理员 (only an administrator issues credentials)",
                user.login
            ));
        }
        if !self
            .store
            .henan_candidates()
            .await?
            .iter()
            .any(|c| c.code == bank)
        {
            return refused(format!(
                "{bank}不在备选代发金融机构名单中 (not a candidate bank)"
            ));
        }
        use rand::RngCore;
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = format!("hnbank_{}", hex::encode(raw));
        self.store
            .henan_set_credential(bank, &token_hash(&token), &user.login)
            .await?;
        Ok(token)
    }

    // ----- the batch flow (第二十至二十四条) -----------------------------------------------

    async fn batch(&self, id: i64) -> OpResult<BatchRow> {
        let b = self
            .store
            .batch(id)
            .await?
            .ok_or_else(|| OpError::Refused(format!("批次{id}不存在 (no batch {id})")))?;
        if b.province != ykt_province_henan::CODE {
            return refused(format!(
                "批次{id}属于{}，不是河南省的批次 (not a Henan batch)",
                b.province
            ));
        }
        Ok(b)
    }

    /// The county a batch belongs to (its region's county, six digits).
    fn county_of(b: &BatchRow) -> OpResult<RegionCode> {
        let r = RegionCode::parse(&b.region).map_err(|e| OpError::Refused(e.to_string()))?;
        r.ancestor(RegionLevel::County)
            .ok_or_else(|| OpError::Refused(format!("批次区划{}不是县级 (not a county)", b.region)))
    }

    /// The budget unit of a batch: the county's department of the project's lead unit.
    async fn default_budget_unit(&self, b: &BatchRow) -> OpResult<String> {
        let county = Self::county_of(b)?;
        let name = self
            .store
            .region_name(&county)
            .await?
            .unwrap_or_else(|| county.prefix().to_owned());
        let lead = match self.province.catalog().find(&b.project) {
            Some(p) => p.lead_unit.clone(),
            None => self.check_payable(&b.project).await?.entry.lead_unit,
        };
        Ok(ykt_province_henan::budget_unit(&name, &lead))
    }

    /// Finance's procedural review (第二十一条): picks the county's agent bank (`bank`, or the
    /// county's only one) and the budget unit, then takes `finance_review`. Refused before
    /// anything is recorded when the user may not review, the project is not payable or the
    /// bank is not the county's.
    pub async fn review(
        &self,
        id: i64,
        user: &User,
        bank: Option<&str>,
        budget_unit: Option<&str>,
    ) -> OpResult<StepReport> {
        let b = self.batch(id).await?;
        // Reviewed through the generic `ykt batch step` (no bank chosen): finance picks the
        // bank now, before the push.
        let approved_without_bank =
            b.state == BatchState::Approved && self.store.henan_order_of_batch(id).await?.is_none();
        if approved_without_bank {
            let region =
                RegionCode::parse(&b.region).map_err(|e| OpError::Refused(e.to_string()))?;
            if !user.has(Role::FinanceReviewer) || !user.covers(&region) || user.login == b.maker {
                return refused(format!(
                    "代发银行由本批次所在地区的财政部门选择；用户{}不能办理 (only the batch's finance office picks the bank)",
                    user.login
                ));
            }
        } else {
            self.cycle().authorize(id, "finance_review", user).await?;
        }
        self.check_payable(&b.project).await?;
        let county = Self::county_of(&b)?;
        let selected = self.county_banks(&county.full()).await?;
        let bank = banks::pick_bank(&selected, bank)?;
        let unit = match budget_unit.map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => u.to_owned(),
            None => self.default_budget_unit(&b).await?,
        };
        self.store
            .henan_assign_order(id, &b.order_no, &bank, &unit, &user.login, &self.on())
            .await?;
        if approved_without_bank {
            let step = self
                .province
                .workflow()
                .step("finance_review")
                .ok_or_else(|| OpError::Refused("本省流程没有 finance_review".into()))?;
            return Ok(StepReport {
                batch: self.batch(id).await?,
                step,
                moved: None,
                results: None,
                dispatched: 0,
                note: format!("已选择代发银行{bank}，预算单位{unit}"),
            });
        }
        Ok(self.cycle().step(id, "finance_review", user, None).await?)
    }

    /// Take a workflow step as `user`, through the generic cycle (with Henan's checks for the
    /// steps that have them).
    pub async fn step(
        &self,
        id: i64,
        step: &str,
        user: &User,
        reason: Option<&str>,
    ) -> OpResult<StepReport> {
        let b = self.batch(id).await?;
        match step {
            "finance_review" => return self.review(id, user, None, None).await,
            "push_order" => {
                self.cycle().authorize(id, step, user).await?;
                self.check_payable(&b.project).await?;
                if self.store.henan_order_of_batch(id).await?.is_none() {
                    return refused(
                        "尚未选择代发银行：须先经财政程序性审核选择代发银行 (no agent bank chosen yet)",
                    );
                }
            }
            "confirm_reconciliation" => return self.reconcile(id, user).await,
            _ => {}
        }
        Ok(self.cycle().step(id, step, user, reason).await?)
    }

    /// The system's own steps on every Henan batch that waits for one: confirm the treasury's
    /// payment (`treasury_pay`), release the detail for the bank to pull (`release_for_pull`),
    /// settle when every line is final (`collect_results`). What `ykt serve` runs periodically
    /// and `ykt henan sync` runs once.
    pub async fn sync(&self) -> OpResult<Vec<SyncLine>> {
        let mut out = Vec::new();
        let mut batches = self
            .store
            .batches(Some(ykt_province_henan::CODE), None)
            .await?;
        batches.sort_by_key(|b| b.id);
        for b in batches {
            let step = match b.state {
                BatchState::PlanPushed => "treasury_pay",
                BatchState::Funded => "release_for_pull",
                BatchState::Dispatched => "collect_results",
                _ => continue,
            };
            let region =
                RegionCode::parse(&b.region).map_err(|e| OpError::Refused(e.to_string()))?;
            let system = User::system(region);
            let outcome = match self.cycle().step(b.id, step, &system, None).await {
                Ok(r) => match r.moved {
                    Some((from, to)) => {
                        format!("{} → {} {}", from.label_zh(), to.label_zh(), r.note)
                    }
                    None => format!("状态不变：{}", r.note),
                },
                Err(CycleError::Invalid(m)) => format!("暂不能办理：{m}"),
                Err(e) => return Err(e.into()),
            };
            out.push(SyncLine {
                batch: b.id,
                order_no: b.order_no.clone(),
                step,
                outcome: outcome.trim().to_owned(),
            });
        }
        Ok(out)
    }

    /// Correct a failed line (第二十三条): the department checked it, the beneficiary (or the
    /// guardian) signed the change, the department head signed it off; a new account must be
    /// the one the card registry holds (第十七条(一) "通过……社会保障卡管理信息系统……核对"). The
    /// line then waits to be pulled again as a new attempt.
    #[allow(clippy::too_many_arguments)]
    pub async fn correct(
        &self,
        id: i64,
        line_id: i64,
        clerk: &User,
        head_login: &str,
        signed_by: &str,
        account: Option<&str>,
        name: Option<&str>,
        reason: &str,
    ) -> OpResult<()> {
        let b = self.batch(id).await?;
        if signed_by.trim().is_empty() {
            return refused(
                "更正须经补贴对象或其监护人签字确认（第二十三条），请用 --signed-by 写明签字人 (the beneficiary's or guardian's signature is required)",
            );
        }
        let head = load_user(self.store, head_login).await?;
        let region = RegionCode::parse(&b.region).map_err(|e| OpError::Refused(e.to_string()))?;
        if !head.has(Role::DeptHead) || !head.covers(&region) {
            return refused(format!(
                "更正须经本部门负责人审核签字（第二十三条）；{}不是本批次所在地区的主管部门负责人 (the department head must sign off)",
                head.login
            ));
        }
        if head.login == clerk.login {
            return refused(
                "经办人不能自己审核签字更正 (the clerk cannot sign off their own correction)",
            );
        }
        let line = self
            .store
            .line(id, line_id)
            .await?
            .ok_or_else(|| OpError::Refused(format!("批次{id}没有明细{line_id}")))?;
        if line.state != LineState::Failed {
            return refused(format!(
                "明细{line_id}状态为「{}」，只有发放失败的明细可以更正",
                line.state.label_zh()
            ));
        }
        let account = match account {
            None => None,
            Some(a) => {
                let a = BankAccount::parse(a)
                    .map_err(|e| OpError::Refused(format!("更正账号：{e}")))?;
                let card = self
                    .store
                    .lookup_cards(std::slice::from_ref(&line.resident_id))
                    .await?
                    .into_iter()
                    .next()
                    .flatten();
                match card {
                    Some(c) if c.account == a => Some(a),
                    Some(_) => {
                        return refused(format!(
                            "更正后的账号{}与社保卡管理信息系统登记的账号不一致，请先由人社部门更新社保卡信息（第十七条） (the account differs from the card registry)",
                            a.masked()
                        ));
                    }
                    None => {
                        return refused(
                            "社保卡管理信息系统中没有该补贴对象的社会保障卡，请先办卡（第十七条） (no card in the registry)",
                        );
                    }
                }
            }
        };
        let fix = LineFix {
            account,
            bank: None,
            name: name.map(str::to_owned),
            reason: reason.to_owned(),
            beneficiary_signed: Some(signed_by.trim().to_owned()),
            head_signoff: Some(head.login.clone()),
        };
        // The signed record first, the correction then: a crash in between leaves the record,
        // which the retried correction reuses, never a correction without its signatures.
        let event = self
            .store
            .henan_record_line_event(&LineEventRow {
                batch_id: id,
                line_id,
                kind: "correction".into(),
                signed_by: Some(signed_by.trim().to_owned()),
                head: Some(head.login),
                amount: line.amount,
                on_date: self.on(),
            })
            .await?;
        if let Err(e) = self.cycle().correct(id, line_id, &fix, clerk).await {
            self.store.henan_drop_line_event(event).await?;
            return Err(e.into());
        }
        Ok(())
    }

    /// Tell the bank to pull the corrected lines again (第二十三条 "及时通知代发金融机构再次获取发放
    /// 明细信息"): they go in flight as new attempts and the bank is notified.
    pub async fn repull(&self, id: i64, user: &User) -> OpResult<usize> {
        self.batch(id).await?;
        Ok(self.cycle().redispatch(id, user).await?.len())
    }

    /// Refund a line that truly cannot be paid through the original channel (第二十三条 "由……
    /// 主管部门商财政部门后提出退款申请，通知代发金融机构将未发资金原渠道退回").
    pub async fn refund(
        &self,
        id: i64,
        line_id: i64,
        requester: &User,
        approver: &User,
        reason: &str,
    ) -> OpResult<ykt_kernel::Fen> {
        self.batch(id).await?;
        if reason.trim().is_empty() {
            return refused("退款须说明原因 (a refund needs a reason)");
        }
        let line = self
            .store
            .line(id, line_id)
            .await?
            .ok_or_else(|| OpError::Refused(format!("批次{id}没有明细{line_id}")))?;
        // The record first, the refund then (as for corrections): a crash in between leaves
        // the record, which the retried refund reuses.
        let event = self
            .store
            .henan_record_line_event(&LineEventRow {
                batch_id: id,
                line_id,
                kind: "refund".into(),
                signed_by: Some(requester.login.clone()),
                head: Some(approver.login.clone()),
                amount: line.amount,
                on_date: self.on(),
            })
            .await?;
        match self
            .cycle()
            .refund(id, line_id, reason, requester, approver)
            .await
        {
            Ok(amount) => Ok(amount),
            Err(e) => {
                self.store.henan_drop_line_event(event).await?;
                Err(e.into())
            }
        }
    }

    // ----- reconciliation (第二十六条) -----------------------------------------------------

    /// Every hand-over (of one order when given) with its deadlines as of `as_of`.
    pub async fn handovers(
        &self,
        order_no: Option<&str>,
        as_of: NaiveDate,
    ) -> OpResult<Vec<HandoverView>> {
        let mut out = Vec::new();
        let orders: BTreeMap<String, (i64, String)> = self
            .store
            .henan_orders(None)
            .await?
            .into_iter()
            .map(|o| (o.order_no.clone(), (o.batch_id, String::new())))
            .collect();
        for row in self.store.henan_handovers(order_no).await? {
            let batch_id = orders.get(&row.order_no).map(|o| o.0).unwrap_or(0);
            let region = match self.store.batch(batch_id).await? {
                Some(b) => b.region,
                None => String::new(),
            };
            let deadlines = handover_facts(&row)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    reconcile::handover_deadlines(self.calendar, &f, as_of)
                        .map_err(|e| e.to_string())
                });
            out.push(HandoverView {
                row,
                batch_id,
                region,
                deadlines,
            });
        }
        Ok(out)
    }

    /// The department checks a hand-over: `confirm` (no error: stamped, returned and filed
    /// with finance) or, with a note, `dispute` (an error: the bank is notified to remedy it).
    pub async fn check_handover(
        &self,
        order_no: &str,
        seq: Option<i64>,
        user: &User,
        dispute: Option<&str>,
    ) -> OpResult<HandoverRow> {
        let order =
            self.store.henan_order(order_no).await?.ok_or_else(|| {
                OpError::Refused(format!("发放单号{order_no}不存在 (no such order)"))
            })?;
        let b = self.batch(order.batch_id).await?;
        let region = RegionCode::parse(&b.region).map_err(|e| OpError::Refused(e.to_string()))?;
        if !user.has(Role::DeptMaker) || !user.covers(&region) {
            return refused(format!(
                "交易结果由本批次的主管部门核对；用户{}不是{}的主管部门经办 (only the batch's department checks hand-overs)",
                user.login, b.region
            ));
        }
        let all = self.store.henan_handovers(Some(order_no)).await?;
        let h = match seq {
            Some(s) => all.iter().find(|h| h.seq == s),
            None => all.iter().rev().find(|h| h.state == "open"),
        }
        .cloned()
        .ok_or_else(|| {
            OpError::Refused(format!(
                "发放单{order_no}没有待核对的交易结果 (no open hand-over)"
            ))
        })?;
        if h.state != "open" {
            return refused(format!("第{}次交易结果已核对 (already checked)", h.seq));
        }
        let (state, note) = match dispute.map(str::trim) {
            Some("") => return refused("发现错误须说明错误内容 (describe the error)"),
            Some(n) => ("disputed", Some(n.to_owned())),
            None if !h.discrepancy.is_empty() => {
                return refused(format!(
                    "系统发现交易结果与发放记录不符（{}），不能确认无误；请在3个工作日内通知银行补救（--dispute） (discrepancy: notify the bank)",
                    h.discrepancy
                ));
            }
            None => ("confirmed", None),
        };
        self.store
            .henan_close_handover(
                order_no,
                h.seq,
                state,
                &self.on(),
                &user.login,
                note.as_deref(),
            )
            .await?;
        let all = self.store.henan_handovers(Some(order_no)).await?;
        all.into_iter()
            .find(|x| x.seq == h.seq)
            .ok_or_else(|| OpError::Refused("交易结果不存在".into()))
    }

    /// The department confirms the batch's reconciliation (`confirm_reconciliation`): every
    /// line is final, every hand-over is checked, the last is confirmed, and no result was
    /// posted after the last confirmed hand-over (第二十六条: the bank hands over the results
    /// and the department checks them before the batch is closed).
    pub async fn reconcile(&self, id: i64, user: &User) -> OpResult<StepReport> {
        let b = self.batch(id).await?;
        self.cycle()
            .authorize(id, "confirm_reconciliation", user)
            .await?;
        let all = self.store.henan_handovers(Some(&b.order_no)).await?;
        if all.is_empty() {
            return refused(
                "银行尚未提供交易结果，不能对账（第二十六条） (no hand-over from the bank yet)",
            );
        }
        if let Some(h) = all.iter().find(|h| h.state == "open") {
            return refused(format!(
                "第{}次交易结果尚未核对：ykt henan handover check {} (hand-over {} not checked)",
                h.seq, b.order_no, h.seq
            ));
        }
        if all.last().is_some_and(|h| h.state != "confirmed") {
            return refused(
                "最后一次交易结果有误，待银行补救后重新交接 (the last hand-over is disputed)",
            );
        }
        // Every result the platform recorded must be covered by a confirmed hand-over: results
        // posted after the last one (a bank that hands over later) are not yet checked.
        let covered = all
            .iter()
            .filter(|h| h.state == "confirmed")
            .map(|h| h.upto_post)
            .max()
            .unwrap_or(0);
        let (credited, failed, _) = self
            .store
            .henan_round_totals(&b.order_no, covered, None)
            .await?;
        let unhanded = credited.count + failed.count;
        if unhanded > 0 {
            return refused(format!(
                "银行在最后一次确认的交接之后又报送了{unhanded}笔交易结果，尚未交接核对，不能对账（第二十六条） ({unhanded} results posted after the last confirmed hand-over: wait for the bank's hand-over)"
            ));
        }
        Ok(self
            .cycle()
            .step(id, "confirm_reconciliation", user, None)
            .await?)
    }

    /// Publish the batch's results to the public lookup (第二十四条): the department confirms,
    /// the system pushes.
    pub async fn publish(&self, id: i64, user: &User) -> OpResult<StepReport> {
        self.batch(id).await?;
        Ok(self.cycle().step(id, "publish_results", user, None).await?)
    }
}

/// The deadline facts of a stored hand-over.
pub fn handover_facts(h: &HandoverRow) -> Result<HandoverFacts, String> {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| e.to_string());
    let received_on = d(&h.received_on)?;
    let state = match (h.state.as_str(), &h.done_on) {
        ("confirmed", Some(on)) => HandoverState::Confirmed { on: d(on)? },
        ("disputed", Some(on)) => HandoverState::Disputed { on: d(on)? },
        _ => HandoverState::Open,
    };
    Ok(HandoverFacts {
        received_on,
        discrepancy: !h.discrepancy.is_empty(),
        state,
    })
}

/// A project of the catalogue or of the library, by code.
pub async fn project_of(store: &Store, province: &dyn Province, code: &str) -> Option<Project> {
    if let Some(p) = province.catalog().find(code) {
        return Some(p.clone());
    }
    let row = store.henan_library_entry(code).await.ok()??;
    entry_of(&row).ok()?.validate().ok()
}
