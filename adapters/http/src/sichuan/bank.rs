//! The cooperating bank's file drop, platform side.
//!
//! Directory layout under the drop root (shared with the bank):
//!
//! - `to_bank/`: the platform writes payment instructions `ZF_<order>_<seq>.txt` (and, for a
//!   result file it refused, a receipt `<result file>.rej` saying why); the bank moves what it
//!   has read into `to_bank/done/`.
//! - `from_bank/`: the bank writes result files `HP_<order>_<seq>[_<suffix>].txt`; the platform
//!   moves each one, once read, into `from_bank/done/` (accepted) or `from_bank/rejected/`.
//!
//! Every file is written to a `.tmp` name first and renamed, so a reader never sees half a
//! file. Both layouts are GB18030 text, `|`-separated, CRLF line ends:
//!
//! ```text
//! H|SCZF1.0|order|seq|pay date YYYYMMDD|department|zero-balance account|account name|agreement no|bank|project code|project name|count|total
//! D|n|line id|attempt|account holder|ID number|card account|card bank|amount|phone|actual beneficiary|proxy kind|SMS text
//! T|count|total
//!
//! H|SCHP1.0|order|seq|value date|count|total|credited count|credited total|failed count|failed total
//! D|n|line id|attempt|card account|amount|0 credited / 1 failed|reason code|reason text|value date|SMS sent 1/0
//! T|count|total
//! ```
//!
//! A result file is accepted or rejected whole: anything inconsistent (not GB18030, a wrong
//! field count, a missing trailer, totals that do not add up) rejects it and nothing of it is
//! applied.

use super::{from_gb18030, parse_fen, to_gb18030};
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use ykt_kernel::Fen;
use ykt_kernel::ports::{FailureReason, PortError};

const SYSTEM: &str = "合作银行文件交换";
pub const INSTRUCTION_VERSION: &str = "SCZF1.0";
pub const RESULT_VERSION: &str = "SCHP1.0";

fn io_err(what: &str, path: &Path, e: std::io::Error) -> PortError {
    PortError::new(SYSTEM, format!("{what} {} 失败: {e}", path.display()), true)
}

/// The header of a payment instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionHeader {
    pub order_no: String,
    pub pay_date: NaiveDate,
    pub department: String,
    pub zb_account_no: String,
    pub zb_account_name: String,
    pub agreement_no: String,
    pub bank: String,
    pub project_code: String,
    pub project_name: String,
}

/// One payment of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionRecord {
    pub line_id: i64,
    pub attempt: u32,
    /// The card account holder (the proxy's name for a receipt proxy).
    pub holder: String,
    pub id_no: String,
    pub account: String,
    pub card_bank: String,
    pub amount: Fen,
    pub phone: String,
    /// The actual beneficiary when it is not the holder (receipt proxy).
    pub beneficiary: String,
    /// `代管`, `代领` or empty.
    pub proxy_kind: String,
    pub sms: String,
}

/// An instruction file as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub file_name: String,
    pub sha256: String,
    pub count: u64,
    pub total: Fen,
    /// The same payments (lines and attempts) had already been written: nothing new.
    pub already: bool,
}

/// One line of a result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRecord {
    pub line_id: i64,
    pub attempt: u32,
    pub account: String,
    pub amount: Fen,
    /// `None` when credited.
    pub failure: Option<FailureReason>,
    pub reason_text: String,
    pub value_date: NaiveDate,
    pub sms_sent: bool,
}

/// A result file found in the drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultFile {
    Accepted {
        file_name: String,
        sha256: String,
        seq: String,
        count: u64,
        total: Fen,
    },
    Rejected {
        file_name: String,
        sha256: String,
        reason: String,
    },
}

impl ResultFile {
    pub fn file_name(&self) -> &str {
        match self {
            ResultFile::Accepted { file_name, .. } | ResultFile::Rejected { file_name, .. } => {
                file_name
            }
        }
    }
    pub fn sha256(&self) -> &str {
        match self {
            ResultFile::Accepted { sha256, .. } | ResultFile::Rejected { sha256, .. } => sha256,
        }
    }
}

/// The code a result file gives a failure reason.
pub fn reason_code(r: FailureReason) -> &'static str {
    match r {
        FailureReason::WrongAccount => "01",
        FailureReason::DormantAccount => "02",
        FailureReason::NameMismatch => "03",
        FailureReason::AccountClosed => "04",
        FailureReason::Other => "99",
    }
}

fn reason_of(code: &str) -> Option<FailureReason> {
    Some(match code {
        "01" => FailureReason::WrongAccount,
        "02" => FailureReason::DormantAccount,
        "03" => FailureReason::NameMismatch,
        "04" => FailureReason::AccountClosed,
        "99" => FailureReason::Other,
        _ => return None,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn field(s: &str, what: &str) -> Result<String, PortError> {
    if s.contains(['|', '\r', '\n']) {
        return Err(PortError::new(
            SYSTEM,
            format!("{what}含有分隔符或换行，不能写入指令文件 ({what} contains a separator)"),
            false,
        ));
    }
    Ok(s.to_owned())
}

/// The bank's file drop.
#[derive(Debug, Clone)]
pub struct FileDropBank {
    root: PathBuf,
}

impl FileDropBank {
    /// The drop at `root` (its directories are created).
    pub fn new(root: impl Into<PathBuf>) -> Result<FileDropBank, PortError> {
        let root = root.into();
        for d in ["to_bank/done", "from_bank/done", "from_bank/rejected"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(|e| io_err("创建目录", &p, e))?;
        }
        Ok(FileDropBank { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn to_bank(&self) -> PathBuf {
        self.root.join("to_bank")
    }
    fn incoming(&self) -> PathBuf {
        self.root.join("from_bank")
    }

    /// Instruction files already written for `order_no` (waiting or read by the bank).
    fn instructions_of(&self, order_no: &str) -> Result<Vec<PathBuf>, PortError> {
        let prefix = format!("ZF_{order_no}_");
        let mut out = Vec::new();
        for dir in [self.to_bank(), self.to_bank().join("done")] {
            let rd = std::fs::read_dir(&dir).map_err(|e| io_err("读取目录", &dir, e))?;
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name.ends_with(".txt") {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Write a payment instruction. Idempotent: when a file of this order already carries
    /// exactly these lines and attempts, nothing is written and `already` is set.
    pub fn write_instruction(
        &self,
        h: &InstructionHeader,
        records: &[InstructionRecord],
    ) -> Result<Written, PortError> {
        if records.is_empty() {
            return Err(empty_instruction());
        }
        let count = records.len() as u64;
        let total: Fen = records.iter().map(|r| r.amount).sum();
        let keys: Vec<(i64, u32)> = records.iter().map(|r| (r.line_id, r.attempt)).collect();
        // The header and every record are checked before anything is written or found
        // written.
        head_fields(h)?;
        for r in records {
            record_line(0, r)?;
        }
        let mut w = self.begin_instruction(h, count, total, keys)?;
        for r in records {
            w.push(r)?;
        }
        w.finish()
    }

    /// [`FileDropBank::write_instruction`] written as the records come (a province-scale
    /// instruction has hundreds of thousands of lines; none of them, nor the file's text, is
    /// held whole): the header needs the instruction's `count` and `total` and the
    /// idempotency check its (line, attempt) `keys`, known before the records; each record
    /// is then [`InstructionWriter::push`]ed in order and the file is renamed into the drop
    /// by [`InstructionWriter::finish`], which checks that the records pushed add up to
    /// `count` and `total`. The same bytes as `write_instruction`.
    pub fn begin_instruction(
        &self,
        h: &InstructionHeader,
        count: u64,
        total: Fen,
        mut keys: Vec<(i64, u32)>,
    ) -> Result<InstructionWriter, PortError> {
        if count == 0 || keys.is_empty() {
            return Err(empty_instruction());
        }
        keys.sort_unstable();
        let head_fields = head_fields(h)?;
        let existing = self.instructions_of(&h.order_no)?;
        for p in &existing {
            if let Some((mut k, sha256)) = instruction_keys_of(p)? {
                k.sort_unstable();
                if k == keys {
                    return Ok(InstructionWriter {
                        expect: (count, total),
                        pushed: (0, Fen(0)),
                        out: Out::Already(Written {
                            file_name: p
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default(),
                            sha256,
                            count,
                            total,
                            already: true,
                        }),
                    });
                }
            }
        }
        let seq = format!("{:02}", existing.len() + 1);
        let [order, date, rest @ ..] = head_fields;
        let head = format!(
            "H|{INSTRUCTION_VERSION}|{order}|{seq}|{date}|{}|{count}|{total}\r\n",
            rest.join("|")
        );
        let name = format!("ZF_{}_{seq}.txt", h.order_no);
        let dir = self.to_bank();
        let tmp = dir.join(format!("{name}.tmp"));
        let dest = dir.join(&name);
        let file = std::fs::File::create(&tmp).map_err(|e| io_err("写入", &tmp, e))?;
        let mut w = InstructionWriter {
            expect: (count, total),
            pushed: (0, Fen(0)),
            out: Out::File {
                file: std::io::BufWriter::with_capacity(1 << 16, file),
                sha: Sha256::new(),
                tmp,
                dest,
                name,
            },
        };
        w.write(&head)?;
        Ok(w)
    }

    /// Check (without moving) every result file of `order_no` waiting in the drop, in name
    /// order, each accepted or rejected whole. A file is read a line at a time and not kept:
    /// [`FileDropBank::read_result`] reads an accepted one's records.
    pub fn scan_results(&self, order_no: &str) -> Result<Vec<ResultFile>, PortError> {
        let dir = self.incoming();
        let prefix = format!("HP_{order_no}_");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| io_err("读取目录", &dir, e))?
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix) && n.ends_with(".txt"))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let checked = match open_result(&path) {
                Ok(Some(input)) => check_result(input, order_no),
                // Taken meanwhile by a concurrent reader (moved to done/ or rejected/).
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            out.push(match checked {
                Ok(Checked::Good {
                    seq,
                    count,
                    total,
                    sha256,
                }) => ResultFile::Accepted {
                    file_name: name,
                    sha256,
                    seq,
                    count,
                    total,
                },
                Ok(Checked::Bad { reason, sha256 }) => ResultFile::Rejected {
                    file_name: name,
                    sha256,
                    reason,
                },
                Err(e) => return Err(io_err("读取", &path, e)),
            });
        }
        Ok(out)
    }

    /// The records of result file `file_name` of `order_no`, accepted by
    /// [`FileDropBank::scan_results`] with content `sha256`, read again a line at a time;
    /// `None` if the file is no longer in the drop (taken meanwhile by a concurrent reader).
    pub fn read_result(
        &self,
        file_name: &str,
        order_no: &str,
        sha256: &str,
    ) -> Result<Option<ResultRecords>, PortError> {
        if file_name.contains(['/', '\\']) {
            return Err(PortError::new(SYSTEM, "文件名无效", false));
        }
        let path = self.incoming().join(file_name);
        let input = match open_result(&path) {
            Ok(Some(input)) => input,
            Ok(None) => return Ok(None),
            Err(e) => return Err(io_err("读取", &path, e)),
        };
        let lines = match ResultLines::new(input, order_no) {
            Ok(lines) => lines,
            Err(ResultError::Bad(m)) => return Err(changed(&path, &m)),
            Err(ResultError::Io(e)) => return Err(io_err("读取", &path, e)),
        };
        Ok(Some(ResultRecords {
            lines,
            path,
            sha256: sha256.to_owned(),
            ended: false,
        }))
    }

    /// Move a read result file out of the drop (accepted ones to `done/`).
    pub fn archive(&self, file_name: &str) -> Result<(), PortError> {
        self.move_to(file_name, "done")
    }

    /// Move a refused result file to `rejected/` and tell the bank why with a receipt
    /// `to_bank/<file>.rej` (GB18030), so it sends the file again.
    pub fn reject(&self, file_name: &str, reason: &str) -> Result<(), PortError> {
        let rej = self.to_bank().join(format!("{file_name}.rej"));
        let tmp = self.to_bank().join(format!("{file_name}.rej.tmp"));
        let body = to_gb18030(&format!("R|{file_name}|{reason}\r\n"));
        std::fs::write(&tmp, body).map_err(|e| io_err("写入", &tmp, e))?;
        std::fs::rename(&tmp, &rej).map_err(|e| io_err("重命名", &rej, e))?;
        self.move_to(file_name, "rejected")
    }

    fn move_to(&self, file_name: &str, sub: &str) -> Result<(), PortError> {
        if file_name.contains(['/', '\\']) {
            return Err(PortError::new(SYSTEM, "文件名无效", false));
        }
        let from = self.incoming().join(file_name);
        let mut to = self.incoming().join(sub).join(file_name);
        let mut n = 1;
        while to.exists() {
            to = self.incoming().join(sub).join(format!("{file_name}.{n}"));
            n += 1;
        }
        match std::fs::rename(&from, &to) {
            Ok(()) => Ok(()),
            // Already moved by another poll that read the same file at the same moment (each
            // file is recorded once, by its content hash, before it is moved): nothing left
            // to move.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !from.exists() => Ok(()),
            Err(e) => Err(io_err("移动", &from, e)),
        }
    }
}

type ResultInput = std::io::BufReader<Hashing<std::fs::File>>;

/// Open a result file for reading (and hashing) a line at a time: `None` if it is gone.
fn open_result(path: &Path) -> std::io::Result<Option<ResultInput>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(std::io::BufReader::with_capacity(
        1 << 16,
        Hashing {
            inner: file,
            sha: Sha256::new(),
        },
    )))
}

/// What checking a result file whole found.
enum Checked {
    Good {
        seq: String,
        count: u64,
        total: Fen,
        sha256: String,
    },
    Bad {
        reason: String,
        sha256: String,
    },
}

/// Read a result file of `order_no` to its end, checking every line and hashing all of it.
fn check_result(mut input: ResultInput, order_no: &str) -> std::io::Result<Checked> {
    let verdict = (|| {
        let mut l = ResultLines::new(&mut input, order_no)?;
        while l.next_record()?.is_some() {}
        Ok::<_, ResultError>((l.seq, l.count, l.total))
    })();
    let sha256 = hash_to_end(&mut input)?;
    Ok(match verdict {
        Ok((seq, count, total)) => Checked::Good {
            seq,
            count,
            total,
            sha256,
        },
        Err(ResultError::Bad(reason)) => Checked::Bad { reason, sha256 },
        Err(ResultError::Io(e)) => return Err(e),
    })
}

/// Read what is left of `input` and give the SHA-256 of all it read, in hex.
fn hash_to_end(input: &mut ResultInput) -> std::io::Result<String> {
    std::io::copy(input, &mut std::io::sink())?;
    Ok(hex(&input.get_ref().sha.clone().finalize()))
}

/// A result file found different when read again than when it was checked (`why`); the
/// collection is tried again later.
fn changed(path: &Path, why: &str) -> PortError {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    PortError::new(
        SYSTEM,
        format!(
            "回盘文件{name}在读取期间被改变，下次再读：{why} (the file changed while it was read)"
        ),
        true,
    )
}

fn empty_instruction() -> PortError {
    PortError::new(SYSTEM, "发放指令没有明细 (empty instruction)", false)
}

/// An instruction header's fields, each checked: order, date, then the rest in order.
fn head_fields(h: &InstructionHeader) -> Result<[String; 9], PortError> {
    Ok([
        field(&h.order_no, "发放单号")?,
        h.pay_date.format("%Y%m%d").to_string(),
        field(&h.department, "委托单位")?,
        field(&h.zb_account_no, "零余额账号")?,
        field(&h.zb_account_name, "零余额账户名称")?,
        field(&h.agreement_no, "代发协议编号")?,
        field(&h.bank, "合作银行")?,
        field(&h.project_code, "项目代码")?,
        field(&h.project_name, "项目名称")?,
    ])
}

/// An instruction's `D` line (number `n`), each field checked.
fn record_line(n: u64, r: &InstructionRecord) -> Result<String, PortError> {
    Ok(format!(
        "D|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}\r\n",
        n,
        r.line_id,
        r.attempt,
        field(&r.holder, "户名")?,
        field(&r.id_no, "证件号码")?,
        field(&r.account, "账号")?,
        field(&r.card_bank, "发卡银行")?,
        r.amount,
        field(&r.phone, "手机号码")?,
        field(&r.beneficiary, "实际享受人")?,
        field(&r.proxy_kind, "代领类型")?,
        field(&r.sms, "短信内容")?,
    ))
}

enum Out {
    /// A file of the order already carries these payments: records are only checked.
    Already(Written),
    File {
        file: std::io::BufWriter<std::fs::File>,
        sha: Sha256,
        tmp: PathBuf,
        dest: PathBuf,
        name: String,
    },
    Done,
}

/// A payment instruction being written (see [`FileDropBank::begin_instruction`]). Dropped
/// before [`InstructionWriter::finish`], it removes its temporary file: nothing reaches the
/// drop.
pub struct InstructionWriter {
    expect: (u64, Fen),
    pushed: (u64, Fen),
    out: Out,
}

impl InstructionWriter {
    /// Whether an instruction with exactly these payments was found written already.
    pub fn already(&self) -> bool {
        matches!(self.out, Out::Already(_))
    }

    fn write(&mut self, text: &str) -> Result<(), PortError> {
        use std::io::Write as _;
        if let Out::File { file, sha, tmp, .. } = &mut self.out {
            let bytes = to_gb18030(text);
            sha.update(&bytes);
            file.write_all(&bytes).map_err(|e| io_err("写入", tmp, e))?;
        }
        Ok(())
    }

    /// The next record (numbered in the order pushed), its fields checked.
    pub fn push(&mut self, r: &InstructionRecord) -> Result<(), PortError> {
        let line = record_line(self.pushed.0 + 1, r)?;
        self.pushed.0 += 1;
        self.pushed.1 += r.amount;
        self.write(&line)
    }

    /// Write the trailer and move the file into the drop (or, when it was written already,
    /// the earlier file's name and hash).
    pub fn finish(mut self) -> Result<Written, PortError> {
        let (count, total) = self.expect;
        if self.pushed != self.expect {
            return Err(PortError::new(
                SYSTEM,
                format!(
                    "发放指令写入{}笔{}元，与文件头{count}笔{total}元不符 (records do not add up to the header)",
                    self.pushed.0, self.pushed.1
                ),
                false,
            ));
        }
        self.write(&format!("T|{count}|{total}\r\n"))?;
        match std::mem::replace(&mut self.out, Out::Done) {
            Out::Already(w) => Ok(w),
            Out::File {
                file,
                sha,
                tmp,
                dest,
                name,
            } => {
                let file = file
                    .into_inner()
                    .map_err(|e| io_err("写入", &tmp, e.into_error()))?;
                file.sync_all().ok();
                drop(file);
                if let Err(e) = std::fs::rename(&tmp, &dest) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(io_err("重命名", &dest, e));
                }
                Ok(Written {
                    file_name: name,
                    sha256: hex(&sha.finalize()),
                    count,
                    total,
                    already: false,
                })
            }
            Out::Done => Err(PortError::new(SYSTEM, "发放指令已写完", false)),
        }
    }
}

impl Drop for InstructionWriter {
    fn drop(&mut self) {
        if let Out::File { tmp, .. } = &self.out {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// The (line, attempt) pairs of an instruction file this side wrote and the file's SHA-256,
/// read a block at a time (`None` when it is not such a file: not GB18030, or a `D` line
/// without a line id and attempt).
fn instruction_keys_of(path: &Path) -> Result<Option<(Vec<(i64, u32)>, String)>, PortError> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path).map_err(|e| io_err("读取", path, e))?;
    let mut decoder = encoding_rs::GB18030.new_decoder_without_bom_handling();
    let mut sha = Sha256::new();
    let mut keys = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut text = String::new();
    let mut ok = true;
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err("读取", path, e))?;
        let last = n == 0;
        sha.update(&buf[..n]);
        if ok {
            let src = &buf[..n];
            let need = decoder
                .max_utf8_buffer_length_without_replacement(src.len())
                .unwrap_or(src.len() * 4 + 16);
            text.reserve(need);
            let (res, _) = decoder.decode_to_string_without_replacement(src, &mut text, last);
            if !matches!(res, encoding_rs::DecoderResult::InputEmpty) {
                ok = false;
            }
            // Complete lines (the last one too at the end of the file).
            let upto = if last {
                text.len()
            } else {
                text.rfind('\n').map_or(0, |i| i + 1)
            };
            for l in text[..upto].lines() {
                if l.starts_with("D|") {
                    let f: Vec<&str> = l.split('|').collect();
                    match (
                        f.get(2).and_then(|x| x.parse::<i64>().ok()),
                        f.get(3).and_then(|x| x.parse::<u32>().ok()),
                    ) {
                        (Some(a), Some(b)) => keys.push((a, b)),
                        _ => ok = false,
                    }
                }
            }
            text.drain(..upto);
        }
        if last {
            break;
        }
    }
    Ok(ok.then(|| (keys, hex(&sha.finalize()))))
}

type Parsed = (String, Vec<ResultRecord>, Fen);

/// Parse a result file held in memory; any inconsistency refuses the whole file. The same
/// checks as reading it from the drop ([`ResultLines`]).
pub fn parse_result(bytes: &[u8], order_no: &str) -> Result<Parsed, String> {
    let bad = |e: ResultError| match e {
        ResultError::Bad(m) => m,
        ResultError::Io(e) => e.to_string(),
    };
    let mut r = ResultLines::new(bytes, order_no).map_err(bad)?;
    let mut records = Vec::new();
    while let Some(rec) = r.next_record().map_err(bad)? {
        records.push(rec);
    }
    Ok((r.seq().to_owned(), records, r.total()))
}

/// Why a result file could not be read: its content ([`ResultError::Bad`]: the whole file is
/// refused, with the reason the bank is told) or the disk ([`ResultError::Io`]: try again).
#[derive(Debug)]
pub enum ResultError {
    Bad(String),
    Io(std::io::Error),
}

impl From<String> for ResultError {
    fn from(m: String) -> ResultError {
        ResultError::Bad(m)
    }
}

impl From<&str> for ResultError {
    fn from(m: &str) -> ResultError {
        ResultError::Bad(m.to_owned())
    }
}

/// The totals a result file's header declares.
struct ResultHead {
    count: u64,
    total: Fen,
    ok: (u64, Fen),
    bad: (u64, Fen),
}

/// A result file read a line at a time: the header checked when opened, each record as it
/// comes, the trailer and every total at the end ([`ResultLines::next_record`] answers
/// `None` only then). Each line is decoded from GB18030 on its own (no byte of a GB18030
/// multi-byte character is a line feed), so a reader holds one line, never the file. Any
/// inconsistency is a [`ResultError::Bad`] with the reason the whole file is refused.
pub struct ResultLines<R> {
    input: R,
    seq: String,
    head: ResultHead,
    /// The number of the last line read (1: the header).
    row: usize,
    count: u64,
    total: Fen,
    ok: (u64, Fen),
    buf: Vec<u8>,
    done: bool,
}

impl<R: std::io::BufRead> ResultLines<R> {
    /// Open a result file of `order_no`: read and check its header.
    pub fn new(input: R, order_no: &str) -> Result<ResultLines<R>, ResultError> {
        let mut r = ResultLines {
            input,
            seq: String::new(),
            head: ResultHead {
                count: 0,
                total: Fen(0),
                ok: (0, Fen(0)),
                bad: (0, Fen(0)),
            },
            row: 0,
            count: 0,
            total: Fen(0),
            ok: (0, Fen(0)),
            buf: Vec::new(),
            done: false,
        };
        let line = r.read_line()?.ok_or("空文件 (empty file)")?;
        let head: Vec<&str> = line.split('|').collect();
        if head.len() != 11 || head[0] != "H" {
            return Err("文件头格式错误 (bad header)".into());
        }
        if head[1] != RESULT_VERSION {
            return Err(format!("不支持的回盘格式版本「{}」", head[1]).into());
        }
        if head[2] != order_no {
            return Err(format!("文件头发放单号{}与文件名不符", head[2]).into());
        }
        date(head[4])?;
        r.head = ResultHead {
            count: num(head[5], "总笔数")?,
            total: amt(head[6], "总金额")?,
            ok: (num(head[7], "成功笔数")?, amt(head[8], "成功金额")?),
            bad: (num(head[9], "失败笔数")?, amt(head[10], "失败金额")?),
        };
        r.seq = head[3].to_owned();
        Ok(r)
    }

    /// The file's sequence number (its header's).
    pub fn seq(&self) -> &str {
        &self.seq
    }

    /// The total of the records read so far.
    pub fn total(&self) -> Fen {
        self.total
    }

    /// The next line without its line end, `None` at the end of the file.
    fn read_line(&mut self) -> Result<Option<String>, ResultError> {
        self.buf.clear();
        let n = self
            .input
            .read_until(b'\n', &mut self.buf)
            .map_err(ResultError::Io)?;
        if n == 0 {
            return Ok(None);
        }
        self.row += 1;
        if self.buf.pop() != Some(b'\n') {
            return Err("文件未以换行结束，疑似被截断 (no final line end: truncated)".into());
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        from_gb18030(&self.buf).map(Some).ok_or_else(|| {
            "文件不是有效的GB18030编码（可能被截断） (not valid GB18030: truncated?)".into()
        })
    }

    /// The next record; `None` once the trailer is read and the file found complete and
    /// consistent (nothing after the trailer, the counts and totals of header, trailer and
    /// records all agreeing).
    pub fn next_record(&mut self) -> Result<Option<ResultRecord>, ResultError> {
        if self.done {
            return Ok(None);
        }
        let line = self
            .read_line()?
            .ok_or("缺少文件尾（T记录），文件不完整 (no trailer: truncated)")?;
        let i = self.row;
        let f: Vec<&str> = line.split('|').collect();
        match f[0] {
            "D" => {
                if f.len() != 11 {
                    return Err(
                        format!("第{i}行字段数为{}，应为11 (truncated line?)", f.len()).into(),
                    );
                }
                if num(f[1], "序号")? != self.count + 1 {
                    return Err(format!("第{i}行序号不连续").into());
                }
                let failure = match f[6] {
                    "0" if f[7] == "00" => None,
                    "1" => Some(
                        reason_of(f[7])
                            .ok_or_else(|| format!("第{i}行失败原因代码「{}」未知", f[7]))?,
                    ),
                    _ => return Err(format!("第{i}行状态「{}/{}」无效", f[6], f[7]).into()),
                };
                let rec = ResultRecord {
                    line_id: f[2].parse().map_err(|_| format!("第{i}行明细号无效"))?,
                    attempt: f[3].parse().map_err(|_| format!("第{i}行发放次数无效"))?,
                    account: f[4].to_owned(),
                    amount: amt(f[5], "金额")?,
                    failure,
                    reason_text: f[8].to_owned(),
                    value_date: date(f[9])?,
                    sms_sent: match f[10] {
                        "1" => true,
                        "0" => false,
                        s => return Err(format!("第{i}行短信标志「{s}」无效").into()),
                    },
                };
                let overflow = || format!("第{i}行累计金额超出范围");
                self.count += 1;
                self.total = self.total.checked_add(rec.amount).ok_or_else(overflow)?;
                if rec.failure.is_none() {
                    self.ok.0 += 1;
                    self.ok.1 = self.ok.1.checked_add(rec.amount).ok_or_else(overflow)?;
                }
                Ok(Some(rec))
            }
            "T" if f.len() == 3 => {
                let (t_count, t_total) = (num(f[1], "文件尾笔数")?, amt(f[2], "文件尾金额")?);
                if self.read_line()?.is_some() {
                    return Err(
                        format!("第{}行在文件尾之后 (data after the trailer)", self.row).into(),
                    );
                }
                let (count, total) = (self.count, self.total);
                let h = &self.head;
                if count != h.count || count != t_count || total != h.total || total != t_total {
                    return Err(format!(
                        "明细{count}笔{total}元与文件头{}笔{}元或文件尾{t_count}笔{t_total}元不符",
                        h.count, h.total
                    )
                    .into());
                }
                if self.ok != h.ok
                    || count - self.ok.0 != h.bad.0
                    || total.checked_sub(self.ok.1) != Some(h.bad.1)
                {
                    return Err("成功/失败笔数或金额与明细不符".into());
                }
                self.done = true;
                Ok(None)
            }
            _ => Err(format!("第{i}行记录类型无效 (bad record)").into()),
        }
    }
}

fn num(s: &str, what: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| format!("{what}「{s}」不是数字"))
}

fn amt(s: &str, what: &str) -> Result<Fen, String> {
    parse_fen(s).ok_or_else(|| format!("{what}「{s}」不是金额"))
}

fn date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y%m%d").map_err(|_| format!("日期「{s}」无效"))
}

/// A reader that hashes (SHA-256) what passes through it.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

type FileLines = ResultLines<ResultInput>;

/// The records of an accepted result file, read again from the drop a line at a time
/// ([`FileDropBank::read_result`]). After the last record it checks that the file still
/// hashes as it did when it was checked whole: a file changed in between yields an error,
/// never a record of the other content.
pub struct ResultRecords {
    lines: FileLines,
    path: PathBuf,
    sha256: String,
    ended: bool,
}

impl ResultRecords {
    fn end(&mut self) -> Result<(), PortError> {
        let sha = hash_to_end(&mut self.lines.input).map_err(|e| io_err("读取", &self.path, e))?;
        if sha != self.sha256 {
            return Err(changed(&self.path, "内容与检查时不同"));
        }
        Ok(())
    }
}

impl Iterator for ResultRecords {
    type Item = Result<ResultRecord, PortError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let r = match self.lines.next_record() {
            Ok(Some(r)) => return Some(Ok(r)),
            Ok(None) => self.end(),
            Err(ResultError::Io(e)) => Err(io_err("读取", &self.path, e)),
            Err(ResultError::Bad(m)) => Err(changed(&self.path, &m)),
        };
        self.ended = true;
        r.err().map(Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result_text(order: &str) -> String {
        format!(
            "H|SCHP1.0|{order}|01|20230516|2|840.00|1|420.00|1|420.00\r\n\
             D|1|7|1|6228480000010000032|420.00|0|00|成功|20230516|1\r\n\
             D|2|8|1|6228480000020000063|420.00|1|02|账户休眠|20230516|0\r\n\
             T|2|840.00\r\n"
        )
    }

    #[test]
    fn a_good_result_file_parses() {
        let (seq, recs, total) = parse_result(&to_gb18030(&result_text("O1")), "O1").unwrap();
        assert_eq!(seq, "01");
        assert_eq!(total, Fen(84_000));
        assert_eq!(recs[0].failure, None);
        assert_eq!(recs[1].failure, Some(FailureReason::DormantAccount));
        assert!(recs[0].sms_sent && !recs[1].sms_sent);
    }

    #[test]
    fn any_inconsistency_rejects_the_whole_file() {
        let good = to_gb18030(&result_text("O1"));
        // Truncated anywhere: never accepted.
        for cut in 1..good.len() {
            assert!(parse_result(&good[..cut], "O1").is_err(), "cut at {cut}");
        }
        assert!(parse_result(&good, "O2").is_err(), "another order");
        let bad_total = result_text("O1").replace("T|2|840.00", "T|2|840.01");
        assert!(parse_result(&to_gb18030(&bad_total), "O1").is_err());
        let bad_head = result_text("O1").replace("|1|420.00|1|420.00", "|2|840.00|0|0.00");
        assert!(parse_result(&to_gb18030(&bad_head), "O1").is_err());
        let extra = format!("{}D|3|9|1|1|1.00|0|00||20230516|0\r\n", result_text("O1"));
        assert!(parse_result(&to_gb18030(&extra), "O1").is_err());
    }

    #[test]
    fn instructions_are_written_once_per_set_of_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let bank = FileDropBank::new(dir.path()).unwrap();
        let h = InstructionHeader {
            order_no: "O1".into(),
            pay_date: NaiveDate::from_ymd_opt(2023, 5, 16).unwrap(),
            department: "民政局".into(),
            zb_account_no: "1".into(),
            zb_account_name: "零余额".into(),
            agreement_no: "A1".into(),
            bank: "农行".into(),
            project_code: "SC09-1-1".into(),
            project_name: "农村最低生活保障金".into(),
        };
        let r = InstructionRecord {
            line_id: 7,
            attempt: 1,
            holder: "王秀英".into(),
            id_no: "230102194702041018".into(),
            account: "6228480000010000032".into(),
            card_bank: "中国农业银行".into(),
            amount: Fen(42_000),
            phone: "13945007919".into(),
            beneficiary: String::new(),
            proxy_kind: String::new(),
            sms: "短信".into(),
        };
        let w = bank
            .write_instruction(&h, std::slice::from_ref(&r))
            .unwrap();
        assert_eq!(w.file_name, "ZF_O1_01.txt");
        assert!(!w.already);
        let again = bank
            .write_instruction(&h, std::slice::from_ref(&r))
            .unwrap();
        assert!(again.already);
        assert_eq!(again.sha256, w.sha256);
        let second = InstructionRecord {
            attempt: 2,
            ..r.clone()
        };
        assert_eq!(
            bank.write_instruction(&h, &[second]).unwrap().file_name,
            "ZF_O1_02.txt"
        );
        let bytes = std::fs::read(dir.path().join("to_bank/ZF_O1_01.txt")).unwrap();
        let text = from_gb18030(&bytes).unwrap();
        assert!(text.starts_with("H|SCZF1.0|O1|01|20230516|"));
        assert!(text.ends_with("T|1|420.00\r\n"));
        let bad = InstructionRecord {
            holder: "王|秀英".into(),
            ..r
        };
        assert!(bank.write_instruction(&h, &[bad]).is_err());
    }
}
