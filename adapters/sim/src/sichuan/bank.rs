//! The cooperating bank (补贴发放合作银行) behind a file drop: the other side of
//! `ykt_http::sichuan::bank` (same directory layout and file formats, implemented here
//! independently).
//!
//! [`BankSim::process_once`] does one round of the bank's work:
//! 1. every payment instruction `to_bank/ZF_*.txt`: checked (header, trailer, totals; a bad
//!    file is moved to `to_bank/rejected/`), every line credited or failed — failures come
//!    from the configured accounts (closed, dormant...) and a seeded share of first attempts —,
//!    each credited beneficiary texted through the SMS gateway (free: 乐山办法 三(五)3), and a
//!    result file `from_bank/HP_<order>_<seq>.txt` written. Seeded faults: the result file sent
//!    twice (`_DUP`), or sent truncated first. The bank keeps a full copy of every result file
//!    it produced in `bank/sent/`.
//! 2. every rejection receipt `to_bank/<file>.rej` from the platform: the complete file is sent
//!    again as `<file stem>_RESEND.txt`.
//!
//! [`BankSim::spawn`] runs rounds in the background, as a real peer would.

use super::{fnv, from_gb18030, gb18030, parse_fen};
use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ykt_kernel::Fen;
use ykt_kernel::ports::FailureReason;

/// A failure the bank's books impose on an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailRule {
    pub account: String,
    pub reason: FailureReason,
    /// Attempts that fail (1: only the first, e.g. a dormant account reactivated since;
    /// 0: every attempt, e.g. a closed account).
    pub attempts: u32,
}

/// Which result files a file fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FileFault {
    #[default]
    Never,
    /// The first result file of these orders.
    Orders(Vec<String>),
    /// A seeded share (per mille) of first result files.
    Permille(u32),
}

/// The bank's behaviour.
#[derive(Debug, Clone, Default)]
pub struct BankSimConfig {
    pub seed: u64,
    /// Share (per mille) of first attempts that fail for a seeded reason (wrong account,
    /// dormant account or name mismatch).
    pub fail_permille: u32,
    pub fail_accounts: Vec<FailRule>,
    /// Result files sent twice.
    pub repeat: FileFault,
    /// Result files sent truncated first (complete again on the platform's rejection).
    pub truncate: FileFault,
    /// Where to send SMS (`http://host:port`); none: no SMS.
    pub sms_url: Option<String>,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Instruction files read.
    pub instructions: Vec<String>,
    /// Instruction files refused (name, reason).
    pub refused: Vec<(String, String)>,
    /// Result files written (including repeats, truncated and resent ones).
    pub results: Vec<String>,
    pub repeated: Vec<String>,
    pub truncated: Vec<String>,
    pub resent: Vec<String>,
    pub credited: u64,
    pub failed: u64,
    pub sms_sent: u64,
}

/// Why the bank could not work.
#[derive(Debug, thiserror::Error)]
#[error("模拟银行文件操作失败：{path}: {source}")]
pub struct BankSimError {
    pub path: String,
    pub source: std::io::Error,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BankSimError + '_ {
    move |source| BankSimError {
        path: path.display().to_string(),
        source,
    }
}

/// The simulated bank.
#[derive(Debug, Clone)]
pub struct BankSim {
    root: PathBuf,
    cfg: BankSimConfig,
    http: reqwest::Client,
}

/// A running bank; dropping it stops the rounds.
#[derive(Debug)]
pub struct BankTask(tokio::task::JoinHandle<()>);

impl Drop for BankTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Line {
    line_id: String,
    attempt: u32,
    account: String,
    amount: Fen,
    phone: String,
    sms: String,
}

/// An instruction file as the bank reads it.
pub struct Instruction {
    order: String,
    seq: String,
    pay_date: NaiveDate,
    bank: String,
    lines: Vec<Line>,
}

/// The bank's reading of an instruction file (public for the fuzz targets, `tests/fuzz`).
pub fn read_instruction(bytes: &[u8]) -> Result<Instruction, String> {
    let text = from_gb18030(bytes).ok_or("不是GB18030编码")?;
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    let head = rows.first().ok_or("空文件")?;
    if head.len() != 14 || head[0] != "H" || head[1] != "SCZF1.0" {
        return Err("文件头无效".into());
    }
    let pay_date = NaiveDate::parse_from_str(head[4], "%Y%m%d").map_err(|_| "发放日期无效")?;
    let mut lines = Vec::new();
    let mut trailer = None;
    for r in &rows[1..] {
        match r[0] {
            "D" if r.len() == 13 && trailer.is_none() => lines.push(Line {
                line_id: r[2].to_owned(),
                attempt: r[3].parse().map_err(|_| "发放次数无效")?,
                account: r[6].to_owned(),
                amount: parse_fen(r[8]).ok_or("金额无效")?,
                phone: r[9].to_owned(),
                sms: r[12].to_owned(),
            }),
            "T" if r.len() == 3 && trailer.is_none() => {
                trailer = Some((r[1].to_owned(), parse_fen(r[2]).ok_or("文件尾金额无效")?))
            }
            _ => return Err("记录无效".into()),
        }
    }
    let (t_count, t_total) = trailer.ok_or("缺少文件尾")?;
    let total: Fen = lines.iter().map(|l| l.amount).sum();
    if t_count != lines.len().to_string()
        || head[12] != t_count
        || Some(total) != parse_fen(head[13])
        || total != t_total
    {
        return Err("笔数或金额与文件头、文件尾不符".into());
    }
    Ok(Instruction {
        order: head[2].to_owned(),
        seq: head[3].to_owned(),
        pay_date,
        bank: head[9].to_owned(),
        lines,
    })
}

fn label(r: FailureReason) -> (&'static str, &'static str) {
    match r {
        FailureReason::WrongAccount => ("01", "账号错误"),
        FailureReason::DormantAccount => ("02", "账户休眠"),
        FailureReason::NameMismatch => ("03", "户名不符"),
        FailureReason::AccountClosed => ("04", "账户冻结或已销户"),
        FailureReason::Other => ("99", "其他原因"),
    }
}

fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), BankSimError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn move_into(path: &Path, dir: &Path) -> Result<(), BankSimError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().map(|n| n.to_owned()).unwrap_or_default();
    let mut to = dir.join(&name);
    let mut n = 1;
    while to.exists() {
        let mut alt = name.clone();
        alt.push(format!(".{n}"));
        to = dir.join(alt);
        n += 1;
    }
    std::fs::rename(path, &to).map_err(io(path))
}

fn listing(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<PathBuf>, BankSimError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .map(|n| n.to_string_lossy())
                    .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .collect();
    v.sort();
    Ok(v)
}

impl BankSim {
    /// A bank working on the drop at `root` (directories created).
    pub fn new(root: impl Into<PathBuf>, cfg: BankSimConfig) -> Result<BankSim, BankSimError> {
        let root = root.into();
        for d in ["to_bank/done", "to_bank/rejected", "from_bank", "bank/sent"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Ok(BankSim { root, cfg, http })
    }

    fn hits(&self, fault: &FileFault, order: &str, what: &str) -> bool {
        match fault {
            FileFault::Never => false,
            FileFault::Orders(list) => list.iter().any(|o| o == order),
            FileFault::Permille(p) => {
                fnv(&[
                    &self.cfg.seed.to_le_bytes(),
                    what.as_bytes(),
                    order.as_bytes(),
                ]) % 1000
                    < u64::from(*p)
            }
        }
    }

    fn outcome(&self, order: &str, l: &Line) -> Option<FailureReason> {
        if let Some(rule) = self
            .cfg
            .fail_accounts
            .iter()
            .find(|r| r.account == l.account)
            .filter(|r| r.attempts == 0 || l.attempt <= r.attempts)
        {
            return Some(rule.reason);
        }
        if l.attempt == 1 && self.cfg.fail_permille > 0 {
            let h = fnv(&[
                &self.cfg.seed.to_le_bytes(),
                order.as_bytes(),
                l.line_id.as_bytes(),
            ]);
            if h % 1000 < u64::from(self.cfg.fail_permille) {
                return Some(
                    [
                        FailureReason::WrongAccount,
                        FailureReason::DormantAccount,
                        FailureReason::NameMismatch,
                    ][((h / 1000) % 3) as usize],
                );
            }
        }
        None
    }

    async fn text(&self, to: &str, text: &str, sender: &str) -> bool {
        let Some(url) = &self.cfg.sms_url else {
            return false;
        };
        if to.is_empty() {
            return false;
        }
        let r = self
            .http
            .post(format!("{}/sms", url.trim_end_matches('/')))
            .json(&serde_json::json!({"to": to, "text": text, "sender": sender}))
            .send()
            .await;
        matches!(r, Ok(resp) if resp.status().is_success())
    }

    /// One round of the bank's work (see the module docs).
    pub async fn process_once(&self) -> Result<Round, BankSimError> {
        let mut round = Round::default();
        let to_bank = self.root.join("to_bank");
        let from_bank = self.root.join("from_bank");
        let sent = self.root.join("bank/sent");
        for path in listing(&to_bank, "ZF_", ".txt")? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let ins = match read_instruction(&bytes) {
                Ok(i) => i,
                Err(reason) => {
                    move_into(&path, &to_bank.join("rejected"))?;
                    round.refused.push((name, reason));
                    continue;
                }
            };
            let date = ins.pay_date.format("%Y%m%d").to_string();
            let mut body = String::new();
            let (mut ok_n, mut ok_t, mut bad_n, mut bad_t) = (0u64, Fen(0), 0u64, Fen(0));
            for (n, l) in ins.lines.iter().enumerate() {
                let failure = self.outcome(&ins.order, l);
                let (status, code, why, sms) = match failure {
                    None => {
                        ok_n += 1;
                        ok_t += l.amount;
                        let sms = self.text(&l.phone, &l.sms, &ins.bank).await;
                        round.sms_sent += u64::from(sms);
                        ("0", "00", "成功", sms)
                    }
                    Some(r) => {
                        bad_n += 1;
                        bad_t += l.amount;
                        let (code, why) = label(r);
                        ("1", code, why, false)
                    }
                };
                body.push_str(&format!(
                    "D|{}|{}|{}|{}|{}|{status}|{code}|{why}|{date}|{}\r\n",
                    n + 1,
                    l.line_id,
                    l.attempt,
                    l.account,
                    l.amount,
                    u8::from(sms)
                ));
            }
            round.credited += ok_n;
            round.failed += bad_n;
            let count = ins.lines.len();
            let total = ok_t + bad_t;
            let text = format!(
                "H|SCHP1.0|{}|{}|{date}|{count}|{total}|{ok_n}|{ok_t}|{bad_n}|{bad_t}\r\n{body}T|{count}|{total}\r\n",
                ins.order, ins.seq
            );
            let full = gb18030(&text);
            let result_name = format!("HP_{}_{}.txt", ins.order, ins.seq);
            atomic_write(&sent.join(&result_name), &full)?;
            let first_for_order = listing(&sent, &format!("HP_{}_", ins.order), ".txt")?.len() == 1;
            if first_for_order && self.hits(&self.cfg.truncate, &ins.order, "truncate") {
                // Cut the file two thirds in: mid-line, maybe mid-character.
                let cut = full.len() * 2 / 3;
                atomic_write(&from_bank.join(&result_name), &full[..cut])?;
                round.truncated.push(result_name.clone());
            } else {
                atomic_write(&from_bank.join(&result_name), &full)?;
            }
            round.results.push(result_name.clone());
            if first_for_order && self.hits(&self.cfg.repeat, &ins.order, "repeat") {
                let dup = result_name.replace(".txt", "_DUP.txt");
                atomic_write(&from_bank.join(&dup), &full)?;
                round.results.push(dup.clone());
                round.repeated.push(dup);
            }
            move_into(&path, &to_bank.join("done"))?;
            round.instructions.push(name);
        }
        for path in listing(&to_bank, "HP_", ".rej")? {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let refused_file = from_gb18030(&bytes)
                .and_then(|t| t.split('|').nth(1).map(str::to_owned))
                .unwrap_or_default();
            let original = refused_file
                .split_once(".txt")
                .map(|(stem, _)| {
                    let stem = stem.trim_end_matches("_RESEND").trim_end_matches("_DUP");
                    format!("{stem}.txt")
                })
                .unwrap_or_default();
            let copy = sent.join(&original);
            if !original.is_empty() && copy.is_file() {
                let full = std::fs::read(&copy).map_err(io(&copy))?;
                let again = original.replace(".txt", "_RESEND.txt");
                atomic_write(&from_bank.join(&again), &full)?;
                round.results.push(again.clone());
                round.resent.push(again);
            }
            move_into(&path, &to_bank.join("done"))?;
        }
        Ok(round)
    }

    /// Work in the background, one round every `every`, until the task is dropped.
    pub fn spawn(self, every: Duration) -> BankTask {
        BankTask(tokio::spawn(async move {
            loop {
                match self.process_once().await {
                    Ok(r) if !r.instructions.is_empty() || !r.resent.is_empty() => {
                        tracing::info!(
                            instructions = r.instructions.len(),
                            results = r.results.len(),
                            credited = r.credited,
                            failed = r.failed,
                            "simulated bank processed a round"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "simulated bank round failed"),
                }
                tokio::time::sleep(every).await;
            }
        }))
    }
}
