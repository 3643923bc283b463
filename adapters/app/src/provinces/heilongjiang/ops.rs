//! Heilongjiang's operations over the generic cycle runner: steps with the System steps that
//! follow them automatically, the ports talking to the budget system, the bulletin-board
//! notice, the 补贴政策 column.

use crate::cycle::{Cycle, CycleError, Ports, StepReport};
use crate::provinces::own_disclosure;
use anyhow::{Context, anyhow, bail};
use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use ykt_http::heilongjiang::{BudgetSystem, Directory, PlatformDate};
use ykt_kernel::audit::AuditRecord;
use ykt_kernel::ports::Notice;
use ykt_kernel::province::Province;
use ykt_kernel::{BatchState, RegionCode, Role, User};
use ykt_province_heilongjiang as hlj;
use ykt_store::Store;
use ykt_store::cycle::LineFix;
use ykt_store::payments::BatchRow;

/// The directory the budget-system client describes batches with.
pub fn directory(province: &dyn Province) -> Directory {
    Directory {
        catalog: province.catalog().clone(),
        department: hlj::county_department,
        grain_expenditure_subject: hlj::SUBJECT_GRAIN_EXPENDITURE,
        region_name: shipped_region_name,
    }
}

/// The name of a region in the table shipped with ykt (when none was imported).
pub fn shipped_region_name(code: &RegionCode) -> Option<String> {
    crate::registers::demo_regions()
        .into_iter()
        .find(|e| &e.code == code)
        .map(|e| e.name)
}

/// Ports talking to the budget system at `url` (treasury and bank through it), and the
/// platform's own disclosure tables.
pub fn ports_for(
    store: &Store,
    province: &dyn Province,
    url: &str,
    date: PlatformDate,
) -> anyhow::Result<Ports> {
    ports_in_parts(
        store,
        province,
        url,
        date,
        ykt_http::heilongjiang::client::PART_SIZE,
    )
}

/// [`ports_for`] sending plans and vouchers of more than `part_size` details in parts
/// (messages.md; tests of the parts on small batches).
pub fn ports_in_parts(
    store: &Store,
    province: &dyn Province,
    url: &str,
    date: PlatformDate,
    part_size: usize,
) -> anyhow::Result<Ports> {
    let client = BudgetSystem::new(url, store.clone(), directory(province), date)
        .map_err(|e| anyhow!("{e}"))?
        .with_part_size(part_size);
    Ok(Ports {
        treasury: Some(Arc::new(client.clone())),
        bank: Some(Arc::new(client)),
        disclosure: Some(own_disclosure(store)),
    })
}

/// The province, its store and ports, and the platform date the ports work with.
pub struct Hlj<'a> {
    pub store: &'a Store,
    pub province: &'a dyn Province,
    pub ports: Ports,
    pub date: PlatformDate,
}

/// What [`Hlj::step`] did: the reports of the step and its automatic follow-up, or why the
/// follow-up could not run.
#[derive(Debug)]
pub struct Stepped {
    pub reports: Vec<StepReport>,
    pub follow_up_failed: Option<(&'static str, CycleError)>,
}

impl Stepped {
    /// The reports, failing if the follow-up failed (for callers that need the whole thing).
    pub fn all(self) -> Result<Vec<StepReport>, CycleError> {
        match self.follow_up_failed {
            None => Ok(self.reports),
            Some((_, e)) => Err(e),
        }
    }
}

/// A user: a stored login, or `system` (the platform itself, scoped to the batch's region).
pub fn system_user(b: &BatchRow) -> anyhow::Result<User> {
    Ok(User::system(
        RegionCode::parse(&b.region).map_err(|e| anyhow!("{e}"))?,
    ))
}

impl<'a> Hlj<'a> {
    pub fn today(&self) -> NaiveDate {
        self.date.get()
    }

    pub fn cycle(&self) -> Cycle<'_> {
        Cycle {
            store: self.store,
            province: self.province,
            ports: &self.ports,
            today: self.date.get(),
        }
    }

    pub async fn batch(&self, id: i64) -> anyhow::Result<BatchRow> {
        self.store
            .batch(id)
            .await?
            .ok_or_else(|| anyhow!("批次 {id} 不存在 (no such batch)"))
    }

    /// Take a step; when it moved the batch and the workflow has an automatic System step
    /// after it (the plan is pushed as soon as it is submitted, the approved voucher is paid at
    /// once), take that too. The step itself either happens or is refused (`Err`); a failed
    /// follow-up leaves the step done and is reported in [`Stepped::follow_up_failed`] (take it
    /// again later as user `system`).
    pub async fn step(
        &self,
        id: i64,
        code: &str,
        user: &User,
        reason: Option<&str>,
    ) -> Result<Stepped, CycleError> {
        let cycle = self.cycle();
        let first = cycle.step(id, code, user, reason).await?;
        let mut out = Stepped {
            reports: vec![first],
            follow_up_failed: None,
        };
        if out.reports[0].moved.is_some()
            && let Some(next) = hlj::follow_up(code)
        {
            let b = out.reports[0].batch.clone();
            let sys = system_user(&b).map_err(|e| CycleError::Invalid(e.to_string()))?;
            match cycle.step(id, next, &sys, None).await {
                Ok(r) => out.reports.push(r),
                Err(e) => out.follow_up_failed = Some((next, e)),
            }
        }
        Ok(out)
    }

    /// Collect results once (the System step `collect_results`).
    pub async fn collect(&self, id: i64) -> Result<StepReport, CycleError> {
        let b = self
            .store
            .batch(id)
            .await?
            .ok_or_else(|| CycleError::Invalid(format!("批次 {id} 不存在 (no such batch)")))?;
        let sys = system_user(&b).map_err(|e| CycleError::Invalid(e.to_string()))?;
        self.cycle().step(id, "collect_results", &sys, None).await
    }

    pub async fn correct(
        &self,
        id: i64,
        line: i64,
        fix: &LineFix,
        user: &User,
    ) -> Result<(), CycleError> {
        self.cycle().correct(id, line, fix, user).await
    }

    /// Correct failed lines of one batch in one transaction.
    pub async fn correct_many(
        &self,
        id: i64,
        fixes: &[(i64, &LineFix)],
        user: &User,
    ) -> Result<(), CycleError> {
        self.cycle().correct_many(id, fixes, user).await
    }

    /// Refund failed lines of one batch (see [`Cycle::refund_many`]).
    pub async fn refund_many(
        &self,
        id: i64,
        lines: &[(i64, &str)],
        requester: &User,
        approver: &User,
    ) -> (Vec<ykt_kernel::Fen>, Option<CycleError>) {
        self.cycle()
            .refund_many(id, lines, requester, approver)
            .await
    }

    pub async fn redispatch(&self, id: i64, user: &User) -> Result<usize, CycleError> {
        Ok(self.cycle().redispatch(id, user).await?.len())
    }

    pub async fn refund(
        &self,
        id: i64,
        line: i64,
        reason: &str,
        requester: &User,
        approver: &User,
    ) -> Result<ykt_kernel::Fen, CycleError> {
        self.cycle()
            .refund(id, line, reason, requester, approver)
            .await
    }

    /// Post the bulletin-board notice of a reviewed batch (塔河县方案(七): "于补贴资金审核后7日内在
    /// 基层政务公示栏进行公示"): publish it (masked) and, with `out`, write its printable HTML.
    /// Posting again changes nothing (the first posting date stays).
    pub async fn post_bulletin(
        &self,
        id: i64,
        user: &User,
        out: Option<&Path>,
    ) -> anyhow::Result<(Notice, Option<PathBuf>)> {
        let b = self.batch(id).await?;
        if !(user.has(Role::DeptMaker) || user.has(Role::TownshipClerk)) {
            bail!(
                "用户{}不具备「主管部门经办」或「乡镇经办」角色，不能张贴公示 (only the department or township posts notices)",
                user.login
            );
        }
        let region = RegionCode::parse(&b.region).map_err(|e| anyhow!("{e}"))?;
        if !user.covers(&region) {
            bail!("批次区划{}不在用户{}的管辖范围内", b.region, user.login);
        }
        if matches!(
            b.state,
            BatchState::Draft | BatchState::Returned | BatchState::Cancelled
        ) {
            bail!(
                "批次状态为「{}」，尚未审核，不能公示 (the batch has not been reviewed)",
                b.state.label_zh()
            );
        }
        // The printable page written as it is made, to a file beside its final name, which
        // it takes once the notice is published (nothing is left under that name when the
        // posting fails).
        let page = match out {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("无法创建目录 {}", dir.display()))?;
                let p = dir.join(format!("公示栏公示_{}.html", b.order_no));
                let tmp = dir.join(format!("公示栏公示_{}.html.part", b.order_no));
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("无法写入 {}", tmp.display()))?;
                Some((p, tmp, std::io::BufWriter::new(f)))
            }
            None => None,
        };
        let (mut notice, page) = match page {
            Some((p, tmp, mut w)) => {
                let made = super::notices::bulletin(
                    self.store,
                    self.province,
                    &b,
                    self.today(),
                    Some(&mut w),
                )
                .await
                .and_then(|n| {
                    use std::io::Write as _;
                    w.flush()
                        .with_context(|| format!("无法写入 {}", tmp.display()))?;
                    Ok(n)
                });
                drop(w);
                match made {
                    Ok(n) => (n, Some((p, tmp))),
                    Err(e) => {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(e);
                    }
                }
            }
            None => (
                super::notices::bulletin(self.store, self.province, &b, self.today(), None).await?,
                None,
            ),
        };
        let discard = |page: &Option<(PathBuf, PathBuf)>| {
            if let Some((_, tmp)) = page {
                let _ = std::fs::remove_file(tmp);
            }
        };
        let audit = AuditRecord {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            actor: user.login.clone(),
            role: user
                .roles
                .first()
                .map(|r| r.as_str())
                .unwrap_or("")
                .to_owned(),
            action: "notice.bulletin".into(),
            subject: format!("batch:{id}"),
            from_state: None,
            to_state: None,
            detail: serde_json::json!({"notice": notice.id, "published_on": notice.published_on}),
        };
        // Published and audited once, in one transaction, even when two operators post at the
        // same moment; a later posting keeps the first posting's date.
        let published = match self.store.publish_notice_once(&notice, audit).await {
            Ok(p) => p,
            Err(e) => {
                discard(&page);
                return Err(e.into());
            }
        };
        if !published {
            match self.store.notice(&notice.id).await {
                Ok(Some(e)) => notice.published_on = e.published_on,
                Ok(None) => {}
                Err(e) => {
                    discard(&page);
                    return Err(e.into());
                }
            }
        }
        let path = match page {
            Some((p, tmp)) => {
                std::fs::rename(&tmp, &p).with_context(|| format!("无法写入 {}", p.display()))?;
                Some(p)
            }
            None => None,
        };
        Ok((notice, path))
    }

    /// The 补贴政策 column of the service portal (黑财监〔2023〕1号 二: "将列入《计划》的补贴项目
    /// 相关政策文件上传到专区“补贴政策”专栏向社会公开"): one notice per project with its policy
    /// basis, target, standard, conditions and lead unit. Publishing again changes nothing.
    pub async fn publish_policies(&self) -> anyhow::Result<usize> {
        let d = own_disclosure(self.store);
        let region = RegionCode::parse(hlj::REGION_PREFIX).map_err(|e| anyhow!("{e}"))?;
        let mut n = 0;
        for p in self.province.catalog().projects() {
            let body = format!(
                "补贴项目：{}\n相关政策依据：{}\n补贴对象：{}\n补贴标准：{}\n补贴条件：{}\n省级牵头组织实施单位：{}\n发放频次：{}\n发放属期：{}\n跨属期发放规则：{}\n资金渠道：{}\n",
                p.name,
                p.policy_basis,
                p.target,
                p.standard_text,
                p.conditions,
                p.lead_unit,
                p.frequency.label_zh(),
                p.active
                    .map(|w| w.label_zh())
                    .unwrap_or_else(|| "不限".into()),
                p.cross_period.label_zh(),
                p.funding.label_zh()
            );
            d.publish(&Notice {
                id: format!("policy-{}", p.code),
                kind: "policy".into(),
                region: region.clone(),
                project_name: p.name.clone(),
                title: format!("{}补贴政策", p.name),
                body,
                published_on: self.today().to_string(),
                until: None,
            })
            .await
            .map_err(|e| anyhow!("{e}"))?;
            n += 1;
        }
        Ok(n)
    }
}
