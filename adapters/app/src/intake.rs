//! Roster intake as a service: open a file, run the kernel's intake over it against the
//! registers, and either report (`check`) or store it into batches (`import roster`).

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use ykt_files::FileError;
use ykt_files::roster::RosterReader;
use ykt_kernel::intake::{
    IntakeContext, IntakeError, IntakeRun, IntakeSummary, LineOutcome, RegionTable,
};
use ykt_kernel::mask::MaskPolicy;
use ykt_kernel::ports::{CardRegistry, PortError, ReferenceData};
use ykt_kernel::province::Province;
use ykt_kernel::{Period, Project, RegionCode, Role, User};
use ykt_store::payments::{RosterMeta, RosterResult, RosterStart};
use ykt_store::{Store, StoreError};

/// Why intake could not run. `File` means the file itself is unusable (exit code 2):
/// nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum IntakeFailure {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Request(String),
}

impl From<IntakeError<FileError>> for IntakeFailure {
    fn from(e: IntakeError<FileError>) -> IntakeFailure {
        match e {
            IntakeError::Source(f) => IntakeFailure::File(f),
            IntakeError::Port(p) => IntakeFailure::Port(p),
        }
    }
}

/// One problem as reported to the department.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub row: u32,
    pub column: Option<String>,
    pub code: String,
    pub severity: String,
    pub follow_up: String,
    pub message: String,
    pub name: String,
    pub id: String,
}

/// The result of checking a roster.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub file: String,
    pub format: String,
    pub province: String,
    pub project_code: String,
    pub project_name: String,
    pub period: String,
    pub cards_checked: bool,
    /// Checked against what is already paid or in flight and against exclusive projects (a
    /// database was available).
    pub history_checked: bool,
    pub summary: IntakeSummary,
    /// Every problem, in file order; empty when an import was asked not to keep them
    /// ([`Problems::Stored`]: they are in the roster's issue list in the database).
    pub problems: Vec<Problem>,
    /// How many problems were found (kept or not).
    pub problem_count: u64,
}

impl CheckReport {
    /// Exit code of `ykt check`: 0 every line accepted, 1 some rejected.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.summary.rejected > 0)
    }
}

/// What intake is checked against.
pub struct Request<'a> {
    pub province: &'a dyn Province,
    pub project: &'a Project,
    pub period: Period,
    pub today: NaiveDate,
    pub scope: Option<RegionCode>,
    pub regions: Option<&'a dyn RegionTable>,
    pub check_cards: bool,
}

impl Request<'_> {
    fn context<'a>(&'a self, mask: &'a MaskPolicy) -> IntakeContext<'a> {
        IntakeContext {
            project: self.project,
            catalog: self.province.catalog(),
            current: self.period,
            today: self.today,
            scope: self.scope.as_ref(),
            regions: self.regions,
            mask,
            check_cards: self.check_cards,
        }
    }
}

/// Resolve `--project` (code or name) and `--period` for a province.
pub fn resolve<'p>(
    province: &'p dyn Province,
    project: &str,
    period: &str,
) -> Result<(&'p Project, Period), IntakeFailure> {
    let p = province.catalog().find(project).ok_or_else(|| {
        IntakeFailure::Request(format!(
            "{}的补贴项目目录中没有「{project}」；用 ykt catalog --province {} 查看 (project `{project}` not in the catalogue)",
            province.name(),
            province.code()
        ))
    })?;
    let per = Period::parse(period)
        .map_err(|e| IntakeFailure::Request(format!("属期「{period}」：{e}")))?;
    if per.kind() != p.period_kind() {
        return Err(IntakeFailure::Request(format!(
            "「{}」按{}发放，当前属期应为{}，而不是「{period}」 (period granularity does not match the project's frequency)",
            p.name,
            p.frequency.label_zh(),
            p.period_kind().label_zh()
        )));
    }
    if !p.in_force_for(&per) {
        return Err(IntakeFailure::Request(format!(
            "「{}」的发放属期为{}（跨属期发放规则：{}），当前属期{}不在其内，本项目不能发放 (project.inactive: the project is not in force for period {period})",
            p.name,
            p.active.as_ref().map(|w| w.label_zh()).unwrap_or_default(),
            p.cross_period.label_zh(),
            per.label_zh()
        )));
    }
    Ok((p, per))
}

/// Turn outcomes into reported problems (masked).
pub fn problems_of(outcomes: &[LineOutcome], mask: &MaskPolicy, out: &mut Vec<Problem>) {
    // Most lines have no problem: nothing to copy for them.
    for o in outcomes.iter().filter(|o| !o.issues().is_empty()) {
        let (name, id): (Option<&str>, Option<&str>) = match o {
            LineOutcome::Accepted(a) => (Some(&a.name), Some(a.id.as_str())),
            LineOutcome::Rejected {
                name, id, raw_id, ..
            } => (
                name.as_deref(),
                id.as_ref().map(|i| i.as_str()).or(raw_id.as_deref()),
            ),
        };
        // Masked once per line, not per problem (`ReportLine::from_issue`'s ID masking).
        let id_masked = ykt_files::export::ReportLine::mask_id(id);
        let name_masked = name.map(|n| mask.name(n)).unwrap_or_default();
        for i in o.issues() {
            out.push(Problem {
                row: i.row,
                column: i.column.map(|c| c.label().to_owned()),
                code: i.code.as_str().to_owned(),
                severity: i.severity.as_str().to_owned(),
                follow_up: i.code.follow_up().label().to_owned(),
                message: i.message.clone(),
                name: name_masked.clone(),
                id: id_masked.clone(),
            });
        }
    }
}

/// Validate a roster file without storing anything.
pub async fn check(
    file: &Path,
    req: &Request<'_>,
    registry: &dyn CardRegistry,
    refs: &dyn ReferenceData,
) -> Result<CheckReport, IntakeFailure> {
    let mut reader = RosterReader::open(file)?;
    let format = reader.format().label();
    let mask = req.province.mask_policy();
    let ctx = req.context(&mask);
    let mut run = IntakeRun::new(&ctx);
    let mut problems = Vec::new();
    loop {
        // The reader lends each line from its row buffer: no allocation per cell.
        let chunk = run.next_chunk_from(&mut reader, registry, refs).await?;
        if chunk.is_empty() {
            break;
        }
        problems_of(&chunk, &mask, &mut problems);
    }
    if run.summary().lines == 0 {
        return Err(FileError::NoDataRows {
            file: reader.file_name().to_owned(),
        }
        .into());
    }
    Ok(CheckReport {
        file: file.display().to_string(),
        format,
        province: req.province.code().to_owned(),
        project_code: req.project.code.clone(),
        project_name: req.project.name.clone(),
        period: req.period.to_string(),
        cards_checked: req.check_cards,
        history_checked: false,
        summary: run.summary().clone(),
        problem_count: problems.len() as u64,
        problems,
    })
}

/// Whether an import's [`CheckReport`] lists the problems it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problems {
    /// In [`CheckReport::problems`]: for a caller that prints them or writes the report
    /// files (`ykt import roster --report`), and the tests.
    Keep,
    /// Not in the report, only their count: the import stores them in the roster's issue
    /// list (`roster_issues`), where the console reads them. A million-line roster has about
    /// a hundred thousand; held in memory they were a quarter of the import's peak.
    Stored,
}

/// What importing a roster did.
#[derive(Debug)]
pub enum ImportResult {
    Imported {
        report: CheckReport,
        result: RosterResult,
    },
    AlreadyImported {
        roster_id: i64,
        at: String,
    },
}

/// Short order-number prefix per province.
pub fn order_prefix(province: &str) -> String {
    match province {
        "heilongjiang" => "HLJ".into(),
        "sichuan" => "SC".into(),
        "henan" => "HA".into(),
        other => other.chars().take(3).collect::<String>().to_uppercase(),
    }
}

/// Import a roster into the database: validate, match, cross-check and form batches, all in
/// one transaction. The file is read once (its hash identifies it) and streamed. The report
/// lists every problem ([`Problems::Keep`]); see [`import_with`].
pub async fn import(
    store: &Store,
    file: &Path,
    req: &Request<'_>,
    user: &User,
) -> Result<ImportResult, IntakeFailure> {
    import_with(store, file, req, user, Problems::Keep).await
}

/// [`import`], keeping the problems in the report or not (`problems`).
pub async fn import_with(
    store: &Store,
    file: &Path,
    req: &Request<'_>,
    user: &User,
    problems: Problems,
) -> Result<ImportResult, IntakeFailure> {
    let keep = problems == Problems::Keep;
    if !user.has(Role::DeptMaker) && !user.has(Role::TownshipClerk) {
        return Err(IntakeFailure::Request(format!(
            "用户{}不具备「主管部门经办」或「乡镇经办」角色，不能导入清册 (user lacks the role to import rosters)",
            user.login
        )));
    }
    let sha256 = hash_file(file)?;
    let meta = RosterMeta {
        province: req.province.code().to_owned(),
        order_prefix: order_prefix(req.province.code()),
        project: req.project.clone(),
        period: req.period,
        file_name: file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256,
        actor: user.login.clone(),
        actor_role: if user.has(Role::DeptMaker) {
            Role::DeptMaker
        } else {
            Role::TownshipClerk
        }
        .as_str()
        .to_owned(),
        scope: user.region.clone(),
        initial_state: req.province.workflow().initial,
    };
    // Open the file before starting the transaction: an unusable file changes nothing.
    let mut reader = RosterReader::open(file)?;
    let format = reader.format().label();
    let mut imp = match store.begin_roster(meta).await? {
        RosterStart::AlreadyImported { roster_id, at } => {
            return Ok(ImportResult::AlreadyImported { roster_id, at });
        }
        RosterStart::Started(imp) => imp,
    };
    let mask = req.province.mask_policy();
    let ctx = req.context(&mask);
    let mut run = IntakeRun::new(&ctx);
    let mut problems = Vec::new();
    let mut problem_count = 0u64;
    // Pipelined: a writer task owns the transaction and stores chunk k (encryption, INSERT or
    // COPY) while this task reads, validates and looks up chunk k + 1. The lookups read
    // committed data only, on other connections, so the overlap changes no result: lines of
    // this import are invisible to them either way (in-file duplicates are the kernel's
    // `DupTracker`'s). One chunk waits in the channel at most, so memory stays flat.
    let (to_writer, mut chunks) = tokio::sync::mpsc::channel::<Vec<LineOutcome>>(1);
    let writer = tokio::spawn(async move {
        let mut busy = std::time::Duration::ZERO;
        while let Some(chunk) = chunks.recv().await {
            let t = std::time::Instant::now();
            imp.add(&chunk).await?;
            busy += t.elapsed();
        }
        Ok::<_, StoreError>((imp, busy))
    });
    let mut checking = std::time::Duration::ZERO;
    let fed: Result<(), IntakeFailure> = async {
        loop {
            let t = std::time::Instant::now();
            let chunk = run.next_chunk_from(&mut reader, store, store).await?;
            checking += t.elapsed();
            if chunk.is_empty() {
                return Ok(());
            }
            if keep {
                problems_of(&chunk, &mask, &mut problems);
            } else {
                problem_count += chunk.iter().map(|o| o.issues().len() as u64).sum::<u64>();
            }
            if to_writer.send(chunk).await.is_err() {
                // The writer stopped on an error: it is reported below.
                return Ok(());
            }
        }
    }
    .await;
    drop(to_writer);
    // Any error drops the import (in the writer task), rolling the whole import back.
    let written = writer.await.map_err(|e| {
        IntakeFailure::Request(format!(
            "清册写入任务异常终止，未导入任何数据 (the roster writer task failed: {e})"
        ))
    })?;
    fed?;
    let (imp, storing) = written?;
    // Where the time went (the two overlap): for tuning, `YKT_LOG=info`.
    tracing::info!(
        check_and_lookup_s = checking.as_secs_f64(),
        store_s = storing.as_secs_f64(),
        "roster intake timing"
    );
    let summary = run.summary().clone();
    if summary.lines == 0 {
        // Dropping the import rolls it back: nothing is recorded.
        return Err(FileError::NoDataRows {
            file: reader.file_name().to_owned(),
        }
        .into());
    }
    let result = imp.finish(&summary, store).await?;
    let report = CheckReport {
        file: file.display().to_string(),
        format,
        province: req.province.code().to_owned(),
        project_code: req.project.code.clone(),
        project_name: req.project.name.clone(),
        period: req.period.to_string(),
        cards_checked: true,
        history_checked: true,
        summary,
        problem_count: if keep {
            problems.len() as u64
        } else {
            problem_count
        },
        problems,
    };
    Ok(ImportResult::Imported { report, result })
}

/// SHA-256 of a file, streamed.
pub fn hash_file(file: &Path) -> Result<String, FileError> {
    use std::io::Read;
    let io = |e: std::io::Error| FileError::Io {
        file: file.display().to_string(),
        source: e,
    };
    let mut f = std::fs::File::open(file).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
