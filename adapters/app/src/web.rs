//! `ykt serve` and the console's operations: [`AppConsole`] implements
//! `ykt_http::web::ConsoleOps` with the code paths of the CLI (`ykt batch step`, the
//! provinces' own step commands with their automatic follow-up steps, `ykt import roster`,
//! `ykt batch correct|redispatch|refund`), so the console never duplicates workflow logic.

use crate::cli::open_store;
use crate::config::Config;
use crate::cycle::{Cycle, CycleError, StepReport};
use crate::intake::{self, ImportResult, IntakeFailure, Problems, Request};
use crate::registers::{MemRegisters, demo_regions};
use anyhow::Context;
use async_trait::async_trait;
use chrono::NaiveDate;
use std::sync::Arc;
use ykt_http::web::{
    ConsoleOps, DeadlineView, OpError, RosterDone, RosterUpload, StepDone, StepInput, WebConfig,
    WebState,
};
use ykt_kernel::province::Province;
use ykt_kernel::{Fen, User};
use ykt_store::Store;
use ykt_store::cycle::LineFix;

/// The console's operations over one configuration and store.
pub struct AppConsole {
    pub cfg: Config,
    pub store: Store,
}

fn cycle_err(e: CycleError) -> OpError {
    match e {
        CycleError::Refused(w) => OpError::Workflow(w),
        CycleError::Invalid(m) => OpError::Invalid(m),
        CycleError::Port(p) => {
            OpError::Invalid(format!("外部系统未能办理，请稍后重试或联系系统管理员：{p}"))
        }
        CycleError::Store(s) => store_err(s),
    }
}

/// A store error the operator can act on (invalid input, a conflict, a batch that changed
/// meanwhile) is shown; anything else is internal.
fn store_err(s: ykt_store::StoreError) -> OpError {
    use ykt_store::StoreError as S;
    match s {
        S::Invalid { reason } => OpError::Invalid(reason),
        S::Conflict { .. } => OpError::Invalid(s.to_string()),
        S::Concurrent { what } => OpError::Conflict(what),
        other => OpError::Internal(other.to_string()),
    }
}

fn any_err(e: anyhow::Error) -> OpError {
    OpError::Internal(format!("{e:#}"))
}

#[cfg(feature = "province-henan")]
fn henan_err(e: crate::provinces::henan::ops::OpError) -> OpError {
    use crate::provinces::henan::ops::OpError as H;
    match e {
        H::Refused(m) => OpError::Refused(m),
        H::Cycle(c) => cycle_err(c),
        H::Store(s) => store_err(s),
        H::Port(p) => OpError::Invalid(format!("外部系统未能办理，请稍后重试：{p}")),
    }
}

#[cfg(feature = "province-sichuan")]
fn sichuan_err(e: crate::provinces::sichuan::ops::SichuanError) -> OpError {
    use crate::provinces::sichuan::ops::SichuanError as S;
    match e {
        S::Refused(m) => OpError::Refused(m),
        S::Cycle(c) => cycle_err(c),
        S::Store(s) => store_err(s),
        S::Port(p) => OpError::Invalid(format!("外部系统未能办理，请稍后重试：{p}")),
    }
}

/// An `anyhow` error of a province's operation: a store failure is internal, anything else
/// is the rule's refusal, shown as it says.
#[cfg(feature = "province-heilongjiang")]
fn refusal_or_internal(e: anyhow::Error) -> OpError {
    match e.downcast::<ykt_store::StoreError>() {
        Ok(s) => store_err(s),
        Err(e) => OpError::Refused(format!("{e:#}")),
    }
}

fn done_of(r: &StepReport) -> StepDone {
    StepDone {
        step: r.step.code.to_owned(),
        label: r.step.label.to_owned(),
        from: r.moved.map(|m| m.0),
        to: r.moved.map(|m| m.1),
        note: r.note.clone(),
    }
}

#[cfg(feature = "province-henan")]
macro_rules! henan_ops {
    ($self:ident, $ctx:ident) => {
        crate::provinces::henan::ops::Henan {
            store: &$self.store,
            province: $ctx.province.as_ref(),
            ports: &$ctx.ports,
            today: $self.cfg.today(),
            calendar: &$ctx.calendar,
        }
    };
}

/// Henan's context, as its CLI opens it (the province with its project library, the ports
/// and the working-day calendar).
#[cfg(feature = "province-henan")]
struct HenanCtx {
    province: Arc<dyn Province>,
    ports: crate::cycle::Ports,
    calendar: ykt_province_henan::calendar::WorkCalendar,
}

#[cfg(feature = "province-henan")]
impl AppConsole {
    async fn henan(&self) -> Result<HenanCtx, OpError> {
        use crate::provinces::henan::{Settings, ops, ports};
        let settings = Settings::from_config(&self.cfg).map_err(any_err)?;
        let calendar = settings.calendar().map_err(any_err)?;
        let province: Arc<dyn Province> = Arc::from(
            ops::library_province(&self.store, &self.cfg.province_settings)
                .await
                .map_err(any_err)?,
        );
        let ports = ports::configured(&self.store, &settings, ports::today_fn(self.cfg.today))
            .map_err(any_err)?;
        let ctx = HenanCtx {
            province,
            ports,
            calendar,
        };
        // As every `ykt henan` command does: the shipped project library on first use.
        henan_ops!(self, ctx)
            .seed_library()
            .await
            .map_err(henan_err)?;
        Ok(ctx)
    }
}

impl AppConsole {
    fn province(&self, code: &str) -> Result<Box<dyn Province>, OpError> {
        let d = ykt_kernel::province::find_province(code)
            .map_err(|e| OpError::Invalid(e.to_string()))?;
        crate::build_province(d, &self.cfg).map_err(|e| OpError::Invalid(e.to_string()))
    }

    async fn batch_province(&self, id: i64) -> Result<String, OpError> {
        Ok(self
            .store
            .batch(id)
            .await
            .map_err(|e| OpError::Internal(e.to_string()))?
            .ok_or_else(|| OpError::Invalid(format!("批次{id}不存在 (no batch {id})")))?
            .province)
    }

    async fn generic_cycle<T>(
        &self,
        province: &str,
        f: impl AsyncFnOnce(&Cycle<'_>) -> Result<T, CycleError>,
    ) -> Result<T, OpError> {
        let p = self.province(province)?;
        let ports = crate::ports::configured(&self.cfg, p.as_ref(), &self.store)
            .await
            .map_err(any_err)?;
        let cycle = Cycle {
            store: &self.store,
            province: p.as_ref(),
            ports: &ports,
            today: self.cfg.today(),
        };
        f(&cycle).await.map_err(cycle_err)
    }
}

#[async_trait]
impl ConsoleOps for AppConsole {
    fn provinces(&self) -> Vec<Arc<dyn Province>> {
        crate::provinces()
            .into_iter()
            .filter(|d| self.cfg.province.as_deref().is_none_or(|p| p == d.code))
            .filter_map(|d| match crate::build_province(d, &self.cfg) {
                Ok(p) => Some(Arc::from(p)),
                Err(e) => {
                    tracing::error!(province = d.code, error = %e, "province not available in the console");
                    None
                }
            })
            .collect()
    }

    fn today(&self) -> NaiveDate {
        self.cfg.today()
    }

    async fn step(
        &self,
        batch: i64,
        step: &str,
        user: &User,
        input: &StepInput,
    ) -> Result<Vec<StepDone>, OpError> {
        let reason = input.reason();
        let province = self.batch_province(batch).await?;
        match province.as_str() {
            // `ykt heilongjiang step`: the step and its automatic System follow-up (the plan
            // is pushed as soon as it is submitted, the approved voucher paid at once).
            #[cfg(feature = "province-heilongjiang")]
            "heilongjiang" => {
                let p = self.province(&province)?;
                let ports =
                    crate::provinces::heilongjiang::configured_ports(&self.cfg, &self.store)
                        .await
                        .map_err(any_err)?;
                let h = crate::provinces::heilongjiang::ops::Hlj {
                    store: &self.store,
                    province: p.as_ref(),
                    ports,
                    date: ykt_http::heilongjiang::PlatformDate::new(self.cfg.today()),
                };
                let stepped = h.step(batch, step, user, reason).await.map_err(cycle_err)?;
                let mut out: Vec<StepDone> = stepped.reports.iter().map(done_of).collect();
                if let Some((next, e)) = stepped.follow_up_failed {
                    out.push(StepDone {
                        step: next.to_owned(),
                        label: next.to_owned(),
                        from: None,
                        to: None,
                        note: format!("自动后续步骤未完成，系统将重试：{e}"),
                    });
                }
                Ok(out)
            }
            // `ykt henan step`.
            #[cfg(feature = "province-henan")]
            "henan" => {
                let ctx = self.henan().await?;
                let ops = henan_ops!(self, ctx);
                // `ykt henan review --bank .. --budget-unit ..` for the procedural review.
                let r = if step == "finance_review" {
                    ops.review(batch, user, input.bank(), input.budget_unit())
                        .await
                } else {
                    ops.step(batch, step, user, reason).await
                }
                .map_err(henan_err)?;
                Ok(vec![done_of(&r)])
            }
            // `ykt sichuan plan ID`: the plan declaration is recorded with `request_plan`;
            // `ykt sichuan review ID`: finance's procedural review compares the three figures
            // and approves or returns the batch with every mismatch (乐山办法 三(四)1).
            #[cfg(feature = "province-sichuan")]
            "sichuan" if step == "request_plan" || step == "finance_review" => {
                use crate::provinces::sichuan::ops as sc;
                let p =
                    crate::provinces::sichuan::platform(&self.cfg, &self.store).map_err(any_err)?;
                let report = if step == "request_plan" {
                    let (plan, r) = sc::declare_plan(&p, batch, None, None, user)
                        .await
                        .map_err(sichuan_err)?;
                    match r {
                        Some(r) => r,
                        None => {
                            return Ok(vec![StepDone {
                                step: step.to_owned(),
                                label: "申报用款计划".to_owned(),
                                from: None,
                                to: None,
                                note: format!(
                                    "用款计划已登记：{}笔，{}元",
                                    plan.count, plan.amount
                                ),
                            }]);
                        }
                    }
                } else {
                    sc::review(&p, batch, user)
                        .await
                        .map_err(sichuan_err)?
                        .report
                };
                Ok(vec![done_of(&report)])
            }
            // `ykt batch step`.
            other => {
                let r = self
                    .generic_cycle(other, async |c| c.step(batch, step, user, reason).await)
                    .await?;
                Ok(vec![done_of(&r)])
            }
        }
    }

    async fn import_roster(
        &self,
        upload: RosterUpload<'_>,
        user: &User,
    ) -> Result<RosterDone, OpError> {
        #[cfg(feature = "province-henan")]
        let henan_province = if upload.province == "henan" {
            let ctx = self.henan().await?;
            henan_ops!(self, ctx)
                .check_payable(upload.project)
                .await
                .map_err(henan_err)?;
            Some(ctx.province)
        } else {
            None
        };
        #[cfg(not(feature = "province-henan"))]
        let henan_province: Option<Arc<dyn Province>> = None;
        let boxed;
        let province: &dyn Province = match &henan_province {
            Some(p) => p.as_ref(),
            None => {
                boxed = self.province(upload.province)?;
                boxed.as_ref()
            }
        };
        let (project, period) = intake::resolve(province, upload.project, upload.period)
            .map_err(|e| OpError::Invalid(e.to_string()))?;
        let regions = self
            .store
            .all_regions()
            .await
            .map_err(|e| OpError::Internal(e.to_string()))?;
        let mut table = MemRegisters::default();
        table.add_regions(regions);
        if table.regions.is_empty() {
            table.add_regions(demo_regions());
        }
        let req = Request {
            province,
            project,
            period,
            today: self.cfg.today(),
            scope: Some(user.region.clone()),
            regions: Some(&table),
            check_cards: true,
        };
        // The console shows the problems from the roster's issue list: the report need not
        // hold them.
        match intake::import_with(&self.store, upload.path, &req, user, Problems::Stored).await {
            Ok(ImportResult::AlreadyImported { roster_id, at }) => {
                Ok(RosterDone::AlreadyImported { roster_id, at })
            }
            Ok(ImportResult::Imported { report, result }) => Ok(RosterDone::Imported {
                roster_id: result.roster_id,
                lines: report.summary.lines,
                accepted: report.summary.accepted,
                rejected: report.summary.rejected,
                batches: result.batches.iter().map(|b| b.id).collect(),
            }),
            Err(IntakeFailure::File(f)) => Err(OpError::Invalid(format!(
                "文件无法使用，未导入任何数据：{f}"
            ))),
            Err(IntakeFailure::Request(m)) => Err(OpError::Refused(m)),
            Err(IntakeFailure::Port(p)) => Err(OpError::Invalid(p.to_string())),
            Err(IntakeFailure::Store(s)) => Err(OpError::Internal(s.to_string())),
        }
    }

    async fn correct(
        &self,
        batch: i64,
        line: i64,
        fix: LineFix,
        user: &User,
    ) -> Result<(), OpError> {
        let province = self.batch_province(batch).await?;
        match province.as_str() {
            // `ykt henan correct`: the beneficiary's signature, the head's sign-off (a
            // department head of the batch's region, not the clerk), a registry-checked account.
            #[cfg(feature = "province-henan")]
            "henan" => {
                let ctx = self.henan().await?;
                let account = fix.account.as_ref().map(|a| a.as_str().to_owned());
                henan_ops!(self, ctx)
                    .correct(
                        batch,
                        line,
                        user,
                        fix.head_signoff.as_deref().unwrap_or(""),
                        fix.beneficiary_signed.as_deref().unwrap_or(""),
                        account.as_deref(),
                        fix.name.as_deref(),
                        &fix.reason,
                    )
                    .await
                    .map_err(henan_err)
            }
            other => {
                self.generic_cycle(other, async |c| c.correct(batch, line, &fix, user).await)
                    .await
            }
        }
    }

    async fn redispatch(&self, batch: i64, user: &User) -> Result<usize, OpError> {
        let province = self.batch_province(batch).await?;
        match province.as_str() {
            #[cfg(feature = "province-henan")]
            "henan" => {
                let ctx = self.henan().await?;
                henan_ops!(self, ctx)
                    .repull(batch, user)
                    .await
                    .map_err(henan_err)
            }
            other => {
                self.generic_cycle(other, async |c| Ok(c.redispatch(batch, user).await?.len()))
                    .await
            }
        }
    }

    async fn deadlines(&self, user: &User) -> Result<Vec<DeadlineView>, OpError> {
        let today = self.cfg.today();
        let covers =
            |region: &str| ykt_kernel::RegionCode::parse(region).is_ok_and(|r| user.covers(&r));
        #[allow(unused_mut)]
        let mut out: Vec<DeadlineView> = Vec::new();
        let compiled: Vec<&str> = self.provinces().iter().map(|p| p.code()).collect();
        // 黑龙江: the notice duties (塔河县方案(七): 审核后7日内公示; results published).
        #[cfg(feature = "province-heilongjiang")]
        if compiled.contains(&"heilongjiang") {
            use crate::provinces::heilongjiang::notices;
            for d in notices::duties(&self.store, "heilongjiang")
                .await
                .map_err(any_err)?
            {
                if !covers(&d.region) {
                    continue;
                }
                out.push(DeadlineView {
                    batch: Some(d.batch_id),
                    region: d.county.clone(),
                    title: format!("{} {}", d.project_name, d.kind.label()),
                    due: d.due_on,
                    status: d.status(today).label(),
                    overdue: d.flagged(today),
                    open: d.done_on.is_none(),
                    basis: d.trigger.clone(),
                });
            }
        }
        // 河南: the hand-over checks (濮阳规程 第二十六条: 5个工作日内核对, 通知).
        #[cfg(feature = "province-henan")]
        if compiled.contains(&"henan") {
            let ctx = self.henan().await?;
            let views = henan_ops!(self, ctx)
                .handovers(None, today)
                .await
                .map_err(henan_err)?;
            for v in views {
                if !covers(&v.region) {
                    continue;
                }
                let Ok(d) = &v.deadlines else { continue };
                let open = v.row.state == "open";
                let mut push = |what: &str, dl: &ykt_province_henan::reconcile::Deadline| {
                    out.push(DeadlineView {
                        batch: Some(v.batch_id),
                        region: v.region.clone(),
                        title: format!(
                            "{} 第{}次交易结果{}（{}）",
                            v.row.order_no, v.row.seq, what, v.row.bank
                        ),
                        due: dl.due,
                        status: match (dl.met_on, dl.overdue) {
                            (Some(m), false) => format!("已于{m}办理"),
                            (Some(m), true) => format!("【逾期】{m}办理"),
                            (None, true) => "【逾期】未办理".into(),
                            (None, false) => "待办理".into(),
                        },
                        overdue: dl.overdue,
                        open: dl.met_on.is_none() && open,
                        basis: "濮阳规程 第二十六条".into(),
                    });
                };
                push("核对", &d.check);
                if let Some(n) = &d.notify {
                    push("问题通知", n);
                }
            }
        }
        let _ = (&covers, today, &compiled);
        Ok(out)
    }

    // `ykt heilongjiang bulletin ID --user ..`: publish the masked notice (the printable copy
    // is the public portal's notice page).
    #[cfg(feature = "province-heilongjiang")]
    async fn post_bulletin(
        &self,
        batch: i64,
        user: &User,
    ) -> Result<ykt_http::web::NoticeDone, OpError> {
        let province = self.batch_province(batch).await?;
        if province != "heilongjiang" {
            return Err(OpError::Invalid(
                "公示栏公示为黑龙江省的事项 (a Heilongjiang notice)".into(),
            ));
        }
        let p = self.province(&province)?;
        let ports = crate::provinces::heilongjiang::configured_ports(&self.cfg, &self.store)
            .await
            .map_err(any_err)?;
        let h = crate::provinces::heilongjiang::ops::Hlj {
            store: &self.store,
            province: p.as_ref(),
            ports,
            date: ykt_http::heilongjiang::PlatformDate::new(self.cfg.today()),
        };
        let (n, _) = h
            .post_bulletin(batch, user, None)
            .await
            .map_err(refusal_or_internal)?;
        Ok(ykt_http::web::NoticeDone {
            id: n.id,
            title: n.title,
            published_on: n.published_on,
            until: n.until,
        })
    }

    // `ykt henan bank add`.
    #[cfg(feature = "province-henan")]
    async fn henan_add_bank(
        &self,
        user: &User,
        bank: &ykt_http::web::BankCandidate,
    ) -> Result<(), OpError> {
        let ctx = self.henan().await?;
        henan_ops!(self, ctx)
            .add_candidate(
                user,
                &ykt_province_henan::banks::Candidate {
                    code: bank.code.trim().to_owned(),
                    name: bank.name.trim().to_owned(),
                    agreement_no: bank.agreement_no.trim().to_owned(),
                    connected: bank.connected,
                    free_interbank: bank.free_interbank,
                },
            )
            .await
            .map_err(henan_err)
    }

    // `ykt henan bank select`.
    #[cfg(feature = "province-henan")]
    async fn henan_select_bank(
        &self,
        user: &User,
        county: &str,
        bank: &str,
        agreement_no: &str,
    ) -> Result<(), OpError> {
        let ctx = self.henan().await?;
        henan_ops!(self, ctx)
            .select_bank(user, county, bank, agreement_no)
            .await
            .map_err(henan_err)
    }

    // `ykt henan library approve|reject`.
    #[cfg(feature = "province-henan")]
    async fn henan_change_step(
        &self,
        id: i64,
        user: &User,
        reject: bool,
        note: Option<&str>,
    ) -> Result<String, OpError> {
        let ctx = self.henan().await?;
        let r = henan_ops!(self, ctx)
            .change_step(id, user, reject, note)
            .await
            .map_err(henan_err)?;
        Ok(ykt_province_henan::library::ChangeState::parse(&r.state)
            .map(|s| s.label_zh().to_owned())
            .unwrap_or(r.state))
    }

    // `ykt sichuan objection add`.
    #[cfg(feature = "province-sichuan")]
    async fn sichuan_raise_objection(
        &self,
        batch: i64,
        line: Option<i64>,
        raised_by: &str,
        content: &str,
        user: &User,
    ) -> Result<i64, OpError> {
        let p = crate::provinces::sichuan::platform(&self.cfg, &self.store).map_err(any_err)?;
        crate::provinces::sichuan::ops::raise_objection(&p, batch, line, raised_by, content, user)
            .await
            .map_err(sichuan_err)
    }

    // `ykt sichuan objection resolve`.
    #[cfg(feature = "province-sichuan")]
    async fn sichuan_resolve_objection(
        &self,
        id: i64,
        upheld: bool,
        note: &str,
        user: &User,
    ) -> Result<String, OpError> {
        let p = crate::provinces::sichuan::platform(&self.cfg, &self.store).map_err(any_err)?;
        let r = crate::provinces::sichuan::ops::resolve_objection(&p, id, upheld, note, user)
            .await
            .map_err(sichuan_err)?;
        Ok(match r.excluded {
            Some((line, amount)) => format!(
                "异议{id}成立：明细{line}（{amount}元）已从批次{}中剔除",
                r.objection.batch_id
            ),
            None => format!("异议{id}已处理：{}", if upheld { "成立" } else { "不成立" }),
        })
    }

    async fn refund(
        &self,
        batch: i64,
        line: i64,
        reason: &str,
        requester: &User,
        approver: &User,
    ) -> Result<Fen, OpError> {
        let province = self.batch_province(batch).await?;
        match province.as_str() {
            #[cfg(feature = "province-henan")]
            "henan" => {
                let ctx = self.henan().await?;
                henan_ops!(self, ctx)
                    .refund(batch, line, requester, approver, reason)
                    .await
                    .map_err(henan_err)
            }
            other => {
                self.generic_cycle(other, async |c| {
                    c.refund(batch, line, reason, requester, approver).await
                })
                .await
            }
        }
    }
}

/// The console's state over `store` with the configuration's settings.
pub fn web_state(cfg: &Config, store: &Store) -> WebState {
    let console = AppConsole {
        cfg: cfg.clone(),
        store: store.clone(),
    };
    WebState::new(
        store.clone(),
        Arc::new(console),
        WebConfig {
            idle_seconds: i64::from(cfg.session_idle_minutes.max(1)) * 60,
            ..WebConfig::default()
        },
    )
}

/// `ykt serve`: the console, the JSON API, `/healthz`, and Henan's bank interface when
/// Henan is compiled in. Stops on Ctrl-C or SIGTERM.
pub async fn serve(cfg: &Config, listen: Option<String>) -> anyhow::Result<u8> {
    let store = open_store(cfg, true).await?;
    #[allow(unused_mut)]
    let mut areas = vec![ykt_http::web::router(web_state(cfg, &store))];
    #[allow(unused_mut)]
    let mut also = String::new();
    #[cfg(feature = "province-henan")]
    if cfg.province.as_deref().is_none_or(|p| p == "henan") {
        areas.push(crate::provinces::henan::serve::bank_area(cfg, &store).await?);
        also.push_str("、河南银行接口 /henan/bank/v1（Bearer 凭据）");
    }
    #[cfg(feature = "province-heilongjiang")]
    if cfg.province.as_deref().is_none_or(|p| p == "heilongjiang")
        && let Some(secs) = crate::provinces::heilongjiang::spawn_collector(cfg, &store)?
    {
        outln!("黑龙江：每{secs}秒为已交银行发放的批次接收发放结果反馈（collect_seconds）");
    }
    // The public portal (补贴政策, 补贴查询, 公示公告); Henan's policies come from its library.
    #[allow(unused_mut)]
    let mut current: Vec<Box<dyn ykt_kernel::province::Province>> = Vec::new();
    #[cfg(feature = "province-henan")]
    current.push(
        crate::provinces::henan::ops::library_province(&store, &cfg.province_settings).await?,
    );
    let refs: Vec<&dyn ykt_kernel::province::Province> =
        current.iter().map(|p| p.as_ref()).collect();
    areas.push(crate::portal::router(cfg, &store, &refs)?);
    also.push_str("、公众门户 /portal（补贴政策、补贴查询、公示公告）");
    let router = ykt_http::server::app(areas);
    let addr = listen.unwrap_or_else(|| cfg.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("无法监听 {addr} (cannot listen on {addr})"))?;
    let local = listener.local_addr()?;
    outln!(
        "ykt serve：http://{local}/ —— 操作控制台 /、JSON API /api/v1（说明 /api/v1/openapi.json）{also}、健康检查 /healthz；Ctrl-C 停止"
    );
    ykt_http::server::serve(listener, router, shutdown_signal()).await?;
    Ok(0)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
