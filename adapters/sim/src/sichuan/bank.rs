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
//! Faults inside well-formed files ([`ContentFaults`]: a line's result left out, the lines
//! reversed, a result for a line the order does not have, every amount one fen off, no result
//! file at all) keep the header and trailer consistent with the lines, so the file parses and
//! the platform has to judge the results themselves. They hit every file the bank writes for
//! the orders they name, its full copy in `bank/sent/` staying right; [`BankSim::resend`]
//! sends the full copies of an order again (the department chasing a missing or wrong
//! result), through the faults configured then.
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

/// Faults inside otherwise well-formed result files (header and trailer agree with the
/// lines written): which orders each hits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentFaults {
    /// The first line's result left out (the line's result dropped).
    pub drop_line: FileFault,
    /// The lines written in reverse order.
    pub reorder: FileFault,
    /// One more result, for a line id the order does not have (9999999).
    pub unknown_line: FileFault,
    /// Every amount one fen more than instructed.
    pub wrong_amount: FileFault,
    /// No result file written at all (the bank does not answer); the full copy is kept.
    pub silent: FileFault,
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
    /// Faults inside well-formed result files.
    pub content: ContentFaults,
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
    /// Result files kept back (the `silent` fault): written only to `bank/sent/`.
    pub withheld: Vec<String>,
    /// Result files written with content faults (name, faults).
    pub altered: Vec<(String, Vec<&'static str>)>,
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
    head: Head,
    lines: Vec<Line>,
}

impl Instruction {
    /// The order number of the header.
    pub fn order(&self) -> &str {
        &self.head.order
    }
    /// The payment lines read.
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }
}

/// An instruction's header: what the bank keeps of it, and the totals it declares.
struct Head {
    order: String,
    seq: String,
    pay_date: NaiveDate,
    bank: String,
    count: String,
    total: Option<Fen>,
}

/// Why an instruction could not be read: the file is unusable (refused, with the reason the
/// bank gives), or the bank could not read its own disk.
enum ReadError {
    Bad(String),
    Io(std::io::Error),
}

impl From<&str> for ReadError {
    fn from(s: &str) -> ReadError {
        ReadError::Bad(s.to_owned())
    }
}

/// The lines of an instruction file read one at a time, as a bank reads a province-scale
/// file: the header first, then each `D` line as it comes, the trailer and the totals
/// checked at the end. A line is decoded on its own (a GB18030 character never holds the
/// byte `\n`, so this reads the same as decoding the whole file).
struct InstructionLines<R> {
    src: R,
    buf: Vec<u8>,
    head: Head,
    trailer: Option<(String, Fen)>,
    count: u64,
    total: Fen,
}

impl<R: std::io::BufRead> InstructionLines<R> {
    /// The next line of `src` without its line end (`str::lines`'s rule), `None` at the end.
    fn next_text(src: &mut R, buf: &mut Vec<u8>) -> Result<Option<String>, ReadError> {
        buf.clear();
        if src.read_until(b'\n', buf).map_err(ReadError::Io)? == 0 {
            return Ok(None);
        }
        let mut raw = buf.as_slice();
        if let Some(r) = raw.strip_suffix(b"\n") {
            raw = r.strip_suffix(b"\r").unwrap_or(r);
        }
        from_gb18030(raw)
            .map(Some)
            .ok_or(ReadError::Bad("不是GB18030编码".into()))
    }

    fn open(mut src: R) -> Result<Self, ReadError> {
        let mut buf = Vec::new();
        let text = Self::next_text(&mut src, &mut buf)?.ok_or("空文件")?;
        let head: Vec<&str> = text.split('|').collect();
        if head.len() != 14 || head[0] != "H" || head[1] != "SCZF1.0" {
            return Err("文件头无效".into());
        }
        let pay_date = NaiveDate::parse_from_str(head[4], "%Y%m%d").map_err(|_| "发放日期无效")?;
        Ok(InstructionLines {
            head: Head {
                order: head[2].to_owned(),
                seq: head[3].to_owned(),
                pay_date,
                bank: head[9].to_owned(),
                count: head[12].to_owned(),
                total: parse_fen(head[13]),
            },
            src,
            buf,
            trailer: None,
            count: 0,
            total: Fen(0),
        })
    }

    /// The next payment line; `None` once the trailer has been read and the counts and
    /// amounts of header, lines and trailer agree.
    fn next_line(&mut self) -> Result<Option<Line>, ReadError> {
        while let Some(text) = Self::next_text(&mut self.src, &mut self.buf)? {
            let r: Vec<&str> = text.split('|').collect();
            match r[0] {
                "D" if r.len() == 13 && self.trailer.is_none() => {
                    let l = Line {
                        line_id: r[2].to_owned(),
                        attempt: r[3].parse().map_err(|_| "发放次数无效")?,
                        account: r[6].to_owned(),
                        amount: parse_fen(r[8]).ok_or("金额无效")?,
                        phone: r[9].to_owned(),
                        sms: r[12].to_owned(),
                    };
                    self.count += 1;
                    self.total += l.amount;
                    return Ok(Some(l));
                }
                "T" if r.len() == 3 && self.trailer.is_none() => {
                    self.trailer = Some((r[1].to_owned(), parse_fen(r[2]).ok_or("文件尾金额无效")?))
                }
                _ => return Err("记录无效".into()),
            }
        }
        let (t_count, t_total) = self.trailer.as_ref().ok_or("缺少文件尾")?;
        if *t_count != self.count.to_string()
            || self.head.count != *t_count
            || Some(self.total) != self.head.total
            || self.total != *t_total
        {
            return Err("笔数或金额与文件头、文件尾不符".into());
        }
        Ok(None)
    }
}

/// The bank's reading of an instruction file (public for the fuzz targets, `tests/fuzz`).
pub fn read_instruction(bytes: &[u8]) -> Result<Instruction, String> {
    let bad = |e: ReadError| match e {
        ReadError::Bad(s) => s,
        ReadError::Io(e) => e.to_string(),
    };
    let mut r = InstructionLines::open(bytes).map_err(bad)?;
    let mut lines = Vec::new();
    while let Some(l) = r.next_line().map_err(bad)? {
        lines.push(l);
    }
    Ok(Instruction {
        head: r.head,
        lines,
    })
}

/// An instruction file opened to be read a line at a time.
fn open_instruction(
    path: &Path,
) -> Result<InstructionLines<std::io::BufReader<std::fs::File>>, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    InstructionLines::open(std::io::BufReader::with_capacity(1 << 16, file))
}

/// Check a whole instruction file, a line at a time, keeping none: `Ok(Err(reason))` when
/// the bank refuses it.
fn check_instruction(path: &Path) -> Result<Result<(), String>, BankSimError> {
    let read = || -> Result<(), ReadError> {
        let mut r = open_instruction(path)?;
        while r.next_line()?.is_some() {}
        Ok(())
    };
    match read() {
        Ok(()) => Ok(Ok(())),
        Err(ReadError::Bad(reason)) => Ok(Err(reason)),
        Err(ReadError::Io(e)) => Err(io(path)(e)),
    }
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
    let tmp = sibling(path, ".tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Write the first `limit` bytes of `src` (all of it without) to `dest`, through a
/// temporary name as [`atomic_write`], a buffer at a time.
fn copy_prefix(src: &Path, dest: &Path, limit: Option<u64>) -> Result<(), BankSimError> {
    use std::io::Read as _;
    let tmp = sibling(dest, ".tmp");
    let from = std::fs::File::open(src).map_err(io(src))?;
    let mut to = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    match limit {
        Some(n) => std::io::copy(&mut from.take(n), &mut to),
        None => std::io::copy(&mut { from }, &mut to),
    }
    .map_err(io(&tmp))?;
    std::fs::rename(&tmp, dest).map_err(io(dest))
}

/// The order number in the header of the bank's copy of a result file (its first line).
fn order_of_result(copy: &Path) -> Result<String, BankSimError> {
    use std::io::BufRead as _;
    let f = std::fs::File::open(copy).map_err(io(copy))?;
    let mut head = Vec::new();
    std::io::BufReader::new(f)
        .read_until(b'\n', &mut head)
        .map_err(io(copy))?;
    Ok(from_gb18030(&head)
        .and_then(|t| t.split('|').nth(2).map(str::to_owned))
        .unwrap_or_default())
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

/// One line of a result file as the bank writes it.
#[derive(Debug, Clone)]
struct ResultLine {
    line_id: String,
    attempt: String,
    account: String,
    amount: Fen,
    status: String,
    code: String,
    why: String,
    sms: bool,
}

/// A result file being written: its lines (numbered and totalled as they are added, so the
/// header and trailer always agree with them), already in GB18030, into `body` (memory, or
/// a file beside the result for a province-scale batch: the header, written last, carries
/// the totals).
#[derive(Default)]
struct ResultText<W = Vec<u8>> {
    body: W,
    ok: (u64, Fen),
    bad: (u64, Fen),
}

impl<W: std::io::Write> ResultText<W> {
    /// Add one line's result (`date`: the value date, `YYYYMMDD`).
    fn push(&mut self, l: &ResultLine, date: &str) -> std::io::Result<()> {
        let n = self.ok.0 + self.bad.0 + 1;
        let sum = if l.status == "0" {
            &mut self.ok
        } else {
            &mut self.bad
        };
        sum.0 += 1;
        sum.1 += l.amount;
        self.body.write_all(&gb18030(&format!(
            "D|{n}|{}|{}|{}|{}|{}|{}|{}|{date}|{}\r\n",
            l.line_id,
            l.attempt,
            l.account,
            l.amount,
            l.status,
            l.code,
            l.why,
            u8::from(l.sms)
        )))
    }

    /// The header and the trailer of the whole file.
    fn ends(&self, order: &str, seq: &str, date: &str) -> (Vec<u8>, Vec<u8>) {
        let ((ok_n, ok_t), (bad_n, bad_t)) = (self.ok, self.bad);
        let (count, total) = (ok_n + bad_n, ok_t + bad_t);
        (
            gb18030(&format!(
                "H|SCHP1.0|{order}|{seq}|{date}|{count}|{total}|{ok_n}|{ok_t}|{bad_n}|{bad_t}\r\n"
            )),
            format!("T|{count}|{total}\r\n").into_bytes(),
        )
    }
}

impl ResultText {
    /// The whole file: header, the lines, trailer.
    fn finish(self, order: &str, seq: &str, date: &str) -> Vec<u8> {
        let (head, trailer) = self.ends(order, seq, date);
        let mut out = head;
        out.reserve(self.body.len() + trailer.len());
        out.extend_from_slice(&self.body);
        out.extend_from_slice(&trailer);
        out
    }
}

/// The lines of a result file written as they come to a file of their own (`<dest>.body`).
struct BodyFile {
    out: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl std::io::Write for BodyFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

type FileText = ResultText<BodyFile>;

impl FileText {
    /// A result to be written to `dest` ([`FileText::finish_into`]).
    fn create(dest: &Path) -> Result<FileText, BankSimError> {
        let path = sibling(dest, ".body");
        let f = std::fs::File::create(&path).map_err(io(&path))?;
        Ok(ResultText {
            body: BodyFile {
                out: std::io::BufWriter::with_capacity(1 << 16, f),
                path,
            },
            ok: (0, Fen(0)),
            bad: (0, Fen(0)),
        })
    }

    /// Write the whole file to `dest` (header, the lines, trailer; under a temporary name,
    /// then renamed) and remove the lines' own file.
    fn finish_into(
        self,
        dest: &Path,
        order: &str,
        seq: &str,
        date: &str,
    ) -> Result<(), BankSimError> {
        use std::io::Write as _;
        let (head, trailer) = self.ends(order, seq, date);
        let BodyFile { out, path: body } = self.body;
        // The lines flushed and their file closed before they are read back.
        drop(out.into_inner().map_err(|e| io(&body)(e.into_error()))?);
        let tmp = sibling(dest, ".tmp");
        let mut out = std::io::BufWriter::with_capacity(
            1 << 16,
            std::fs::File::create(&tmp).map_err(io(&tmp))?,
        );
        out.write_all(&head).map_err(io(&tmp))?;
        let mut src = std::fs::File::open(&body).map_err(io(&body))?;
        std::io::copy(&mut src, &mut out).map_err(io(&tmp))?;
        out.write_all(&trailer).map_err(io(&tmp))?;
        out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        std::fs::rename(&tmp, dest).map_err(io(dest))?;
        std::fs::remove_file(&body).map_err(io(&body))
    }
}

/// `path` with `suffix` added to its name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// A result file: the header's order, sequence and value date, the lines.
fn render_result(order: &str, seq: &str, date: &str, lines: &[ResultLine]) -> Vec<u8> {
    let mut text = ResultText::default();
    for l in lines {
        // Into memory: cannot fail.
        let _ = text.push(l, date);
    }
    text.finish(order, seq, date)
}

/// The bank's own reading of a full copy it wrote: (order, seq, date, lines).
fn read_own_result(bytes: &[u8]) -> Option<(String, String, String, Vec<ResultLine>)> {
    let text = from_gb18030(bytes)?;
    let mut rows = text.lines().map(|l| l.split('|').collect::<Vec<_>>());
    let head = rows.next()?;
    if head.len() != 11 || head[0] != "H" {
        return None;
    }
    let mut lines = Vec::new();
    for r in rows {
        match r.first() {
            Some(&"D") if r.len() == 11 => lines.push(ResultLine {
                line_id: r[2].to_owned(),
                attempt: r[3].to_owned(),
                account: r[4].to_owned(),
                amount: parse_fen(r[5])?,
                status: r[6].to_owned(),
                code: r[7].to_owned(),
                why: r[8].to_owned(),
                sms: r[10] == "1",
            }),
            Some(&"T") => break,
            _ => return None,
        }
    }
    Some((
        head[2].to_owned(),
        head[3].to_owned(),
        head[4].to_owned(),
        lines,
    ))
}

/// The name of the full copy a result file was sent from (`HP_<order>_<seq>.txt`), its
/// suffixes (`_DUP`, `_RESEND`, `_RESEND<n>`) taken off.
fn original_name(file: &str) -> Option<String> {
    let (stem, _) = file.split_once(".txt")?;
    let mut stem = stem;
    loop {
        if let Some(s) = stem.strip_suffix("_DUP") {
            stem = s;
            continue;
        }
        let digits = stem.trim_end_matches(|c: char| c.is_ascii_digit());
        if let Some(s) = digits.strip_suffix("_RESEND") {
            stem = s;
            continue;
        }
        break;
    }
    Some(format!("{stem}.txt"))
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

    /// Send a result file made from its full copy `full` (kept in `bank/sent/`) under `name`,
    /// through the order's content faults and, for the first file of an order, the truncation
    /// and repeat faults.
    fn emit(
        &self,
        order: &str,
        name: &str,
        copy: &Path,
        first: bool,
        round: &mut Round,
    ) -> Result<(), BankSimError> {
        let from_bank = self.root.join("from_bank");
        let c = &self.cfg.content;
        if self.hits(&c.silent, order, "silent") {
            round.withheld.push(name.to_owned());
            return Ok(());
        }
        let hit = |f: &FileFault, what: &'static str| self.hits(f, order, what).then_some(what);
        let faults: Vec<&'static str> = [
            hit(&c.drop_line, "drop_line"),
            hit(&c.reorder, "reorder"),
            hit(&c.unknown_line, "unknown_line"),
            hit(&c.wrong_amount, "wrong_amount"),
        ]
        .into_iter()
        .flatten()
        .collect();
        // The file as sent: the bank's copy, streamed from disk, or (a content fault, the
        // fault tests' small files) the copy read, altered and written beside it.
        let altered = sibling(copy, ".altered");
        let mut source = copy;
        if !faults.is_empty()
            && let Some((o, seq, date, mut lines)) =
                read_own_result(&std::fs::read(copy).map_err(io(copy))?)
        {
            if faults.contains(&"drop_line") && !lines.is_empty() {
                lines.remove(0);
            }
            if faults.contains(&"reorder") {
                lines.reverse();
            }
            if faults.contains(&"unknown_line")
                && let Some(first_line) = lines.first()
            {
                let mut stranger = first_line.clone();
                stranger.line_id = "9999999".into();
                lines.push(stranger);
            }
            if faults.contains(&"wrong_amount") {
                for l in &mut lines {
                    l.amount += Fen(1);
                }
            }
            atomic_write(&altered, &render_result(&o, &seq, &date, &lines))?;
            source = &altered;
            round.altered.push((name.to_owned(), faults));
        }
        if first && self.hits(&self.cfg.truncate, order, "truncate") {
            // Cut the file two thirds in: mid-line, maybe mid-character.
            let len = std::fs::metadata(source).map_err(io(source))?.len();
            copy_prefix(source, &from_bank.join(name), Some(len * 2 / 3))?;
            round.truncated.push(name.to_owned());
        } else {
            copy_prefix(source, &from_bank.join(name), None)?;
        }
        round.results.push(name.to_owned());
        if first && self.hits(&self.cfg.repeat, order, "repeat") {
            let dup = name.replace(".txt", "_DUP.txt");
            copy_prefix(source, &from_bank.join(&dup), None)?;
            round.results.push(dup.clone());
            round.repeated.push(dup);
        }
        if source != copy {
            std::fs::remove_file(source).map_err(io(source))?;
        }
        Ok(())
    }

    /// Send every result file of `order` again from the bank's full copies, each under a name
    /// never used before (`<file stem>_RESEND<n>.txt`), through the faults configured now (the
    /// department chasing a result that did not arrive or was wrong).
    pub fn resend(&self, order: &str) -> Result<Round, BankSimError> {
        let mut round = Round::default();
        let sent = self.root.join("bank/sent");
        let log = self.root.join("bank/resent");
        std::fs::create_dir_all(&log).map_err(io(&log))?;
        for copy in listing(&sent, &format!("HP_{order}_"), ".txt")? {
            let name = copy
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = name.trim_end_matches(".txt");
            let n = listing(&log, &format!("{stem}_RESEND"), ".txt")?.len() + 1;
            let again = format!("{stem}_RESEND{n}.txt");
            atomic_write(&log.join(&again), b"")?;
            self.emit(order, &again, &copy, true, &mut round)?;
            round.resent.push(again);
        }
        Ok(round)
    }

    /// One round of the bank's work (see the module docs).
    pub async fn process_once(&self) -> Result<Round, BankSimError> {
        let mut round = Round::default();
        let to_bank = self.root.join("to_bank");
        let sent = self.root.join("bank/sent");
        for path in listing(&to_bank, "ZF_", ".txt")? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Checked whole first (a bad file is refused before anything is paid), then read
            // again and paid a line at a time: the bank holds one line, not the file.
            if let Err(reason) = check_instruction(&path)? {
                move_into(&path, &to_bank.join("rejected"))?;
                round.refused.push((name, reason));
                continue;
            }
            let changed = |e: ReadError| match e {
                ReadError::Io(e) => io(&path)(e),
                ReadError::Bad(why) => io(&path)(std::io::Error::other(format!(
                    "指令文件在读取中被改动：{why}"
                ))),
            };
            let mut ins = open_instruction(&path).map_err(changed)?;
            let date = ins.head.pay_date.format("%Y%m%d").to_string();
            // The result written as the lines are paid, to the bank's copy of record; a
            // province-scale result is never held in memory.
            let result_name = format!("HP_{}_{}.txt", ins.head.order, ins.head.seq);
            let copy = sent.join(&result_name);
            let mut text = FileText::create(&copy)?;
            while let Some(l) = ins.next_line().map_err(changed)? {
                let failure = self.outcome(&ins.head.order, &l);
                let (status, code, why, sms) = match failure {
                    None => {
                        round.credited += 1;
                        let sms = self.text(&l.phone, &l.sms, &ins.head.bank).await;
                        round.sms_sent += u64::from(sms);
                        ("0", "00", "成功", sms)
                    }
                    Some(r) => {
                        round.failed += 1;
                        let (code, why) = label(r);
                        ("1", code, why, false)
                    }
                };
                text.push(
                    &ResultLine {
                        line_id: l.line_id,
                        attempt: l.attempt.to_string(),
                        account: l.account,
                        amount: l.amount,
                        status: status.into(),
                        code: code.into(),
                        why: why.into(),
                        sms,
                    },
                    &date,
                )
                .map_err(io(&copy))?;
            }
            let Head { order, seq, .. } = ins.head;
            text.finish_into(&copy, &order, &seq, &date)?;
            let first_for_order = listing(&sent, &format!("HP_{order}_"), ".txt")?.len() == 1;
            self.emit(&order, &result_name, &copy, first_for_order, &mut round)?;
            move_into(&path, &to_bank.join("done"))?;
            round.instructions.push(name);
        }
        for path in listing(&to_bank, "HP_", ".rej")? {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let refused_file = from_gb18030(&bytes)
                .and_then(|t| t.split('|').nth(1).map(str::to_owned))
                .unwrap_or_default();
            let original = original_name(&refused_file).unwrap_or_default();
            let copy = sent.join(&original);
            if !original.is_empty() && copy.is_file() {
                let order = order_of_result(&copy)?;
                let again = original.replace(".txt", "_RESEND.txt");
                self.emit(&order, &again, &copy, false, &mut round)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An instruction as the platform writes it (`ykt_http::sichuan::bank`), GB18030.
    fn instruction(order: &str, lines: &[(&str, &str, &str)], trailer_total: &str) -> Vec<u8> {
        let total: Fen = lines.iter().map(|l| parse_fen(l.2).expect("amount")).sum();
        let mut t = format!(
            "H|SCZF1.0|{order}|01|20230516|乐山市民政局|5101000000000001|乐山市民政局零余额账户|DF2023001|四川农信|SC-DB|农村最低生活保障金|{}|{total}\r\n",
            lines.len()
        );
        for (n, (id, account, amount)) in lines.iter().enumerate() {
            t.push_str(&format!(
                "D|{}|{id}|1|张三|510111199001011234|{account}|四川农信|{amount}||张三||您的农村最低生活保障金{amount}元已到账\r\n",
                n + 1
            ));
        }
        t.push_str(&format!("T|{}|{trailer_total}\r\n", lines.len()));
        gb18030(&t)
    }

    fn sim(dir: &Path, fail: &str) -> BankSim {
        BankSim::new(
            dir,
            BankSimConfig {
                seed: 7,
                fail_accounts: vec![FailRule {
                    account: fail.into(),
                    reason: FailureReason::AccountClosed,
                    attempts: 0,
                }],
                ..BankSimConfig::default()
            },
        )
        .expect("sim")
    }

    /// A good instruction, read and paid a line at a time: one result file whose header,
    /// lines and trailer agree, the closed account failed, the instruction moved to `done/`.
    #[tokio::test]
    async fn an_instruction_is_paid_line_by_line_into_one_result_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let bank = sim(dir.path(), "6228480000000000029");
        let bytes = instruction(
            "O7",
            &[
                ("11", "6228480000000000011", "420.00"),
                ("12", "6228480000000000029", "380.50"),
                ("13", "6228480000000000037", "420.00"),
            ],
            "1220.50",
        );
        let read = read_instruction(&bytes).expect("the bank's reading");
        assert_eq!((read.order(), read.line_count()), ("O7", 3));
        std::fs::write(dir.path().join("to_bank/ZF_O7_01.txt"), &bytes).expect("write");
        let r = bank.process_once().await.expect("round");
        assert_eq!(r.instructions, ["ZF_O7_01.txt"]);
        assert_eq!((r.credited, r.failed, r.sms_sent), (2, 1, 0));
        let out = std::fs::read(dir.path().join("from_bank/HP_O7_01.txt")).expect("result");
        assert_eq!(
            from_gb18030(&out).expect("gb18030"),
            "H|SCHP1.0|O7|01|20230516|3|1220.50|2|840.00|1|380.50\r\n\
             D|1|11|1|6228480000000000011|420.00|0|00|成功|20230516|0\r\n\
             D|2|12|1|6228480000000000029|380.50|1|04|账户冻结或已销户|20230516|0\r\n\
             D|3|13|1|6228480000000000037|420.00|0|00|成功|20230516|0\r\n\
             T|3|1220.50\r\n"
        );
        assert_eq!(
            std::fs::read(dir.path().join("bank/sent/HP_O7_01.txt")).expect("copy"),
            out
        );
        assert!(dir.path().join("to_bank/done/ZF_O7_01.txt").is_file());
    }

    /// A file whose trailer disagrees with its lines is refused whole, nothing paid: no
    /// result, no SMS, the file moved to `rejected/`. So is a file cut mid-line.
    #[tokio::test]
    async fn a_bad_instruction_is_refused_before_any_line_is_paid() {
        let dir = tempfile::tempdir().expect("tmp");
        let bank = sim(dir.path(), "none");
        let lines = [
            ("11", "6228480000000000011", "420.00"),
            ("12", "6228480000000000029", "380.50"),
        ];
        std::fs::write(
            dir.path().join("to_bank/ZF_O8_01.txt"),
            instruction("O8", &lines, "800.00"),
        )
        .expect("write");
        let good = instruction("O9", &lines, "800.50");
        std::fs::write(
            dir.path().join("to_bank/ZF_O9_01.txt"),
            &good[..good.len() - "T|2|800.50\r\n".len()],
        )
        .expect("write");
        let r = bank.process_once().await.expect("round");
        assert!(r.instructions.is_empty(), "{r:?}");
        assert_eq!((r.credited, r.failed), (0, 0));
        assert_eq!(
            r.refused,
            [
                (
                    "ZF_O8_01.txt".to_owned(),
                    "笔数或金额与文件头、文件尾不符".to_owned()
                ),
                ("ZF_O9_01.txt".to_owned(), "缺少文件尾".to_owned()),
            ]
        );
        assert!(dir.path().join("to_bank/rejected/ZF_O8_01.txt").is_file());
        assert_eq!(
            std::fs::read_dir(dir.path().join("from_bank"))
                .expect("dir")
                .count(),
            0
        );
    }
}
