//! The catalogue of hostile roster files (issue #9, "Bad input"), through the binary as an
//! operator runs it: each unusable file gets a clear Chinese error naming the file (and the
//! row or column where there is one) from both `ykt check` and `ykt import roster`, and the
//! import changes nothing: the row count of every table of the database and the audit chain
//! are the same before and after. Files that are merely unusual (BOM variants, mixed line
//! endings) are read exactly as the plain file is. Formula injection is neutralised in every
//! format of the error report. Zip bombs are refused before calamine inflates them, also when
//! the archive lies about the sizes (peak memory of the process measured).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

fn ykt_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ykt"));
    c.args(args)
        .current_dir(dir)
        .env_remove("YKT_CONFIG")
        .env_remove("YKT_DATABASE_URL")
        .env_remove("YKT_MASTER_KEY")
        .env_remove("YKT_PROVINCE")
        .env("YKT_TODAY", "2023-05-20")
        .env("RUST_BACKTRACE", "0");
    c
}

fn ykt(dir: &Path, args: &[&str]) -> Output {
    ykt_cmd(dir, args).output().expect("run ykt")
}

/// Run and sample the child's peak resident memory (VmHWM, KiB) until it exits.
fn ykt_peak(dir: &Path, args: &[&str]) -> (Output, u64) {
    let child = ykt_cmd(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ykt");
    let status = format!("/proc/{}/status", child.id());
    let sampler = std::thread::spawn(move || {
        let mut peak = 0u64;
        while let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            if s.contains("State:\tZ") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        peak
    });
    let out = child.wait_with_output().expect("wait ykt");
    (out, sampler.join().expect("sampler"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const CHECK: &[&str] = &[
    "--province",
    "henan",
    "--project",
    "HN03",
    "--period",
    "2023-05",
];

/// The scenario's roster as text (UTF-8, LF).
fn roster_text() -> String {
    std::fs::read_to_string(scenario().join("roster.csv")).expect("roster")
}

/// A small xlsx whose one worksheet inflates to `inflated` bytes of XML (a zip bomb when
/// large). `declared` overrides the uncompressed size the archive declares for the sheet.
fn bomb_xlsx(inflated: usize, declared: Option<u32>) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opt = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(9));
        let parts: &[(&str, &str)] = &[
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            (
                "xl/workbook.xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
            ),
        ];
        for (name, body) in parts {
            z.start_file(*name, opt).expect("zip part");
            z.write_all(body.as_bytes()).expect("zip write");
        }
        z.start_file("xl/worksheets/sheet1.xml", opt)
            .expect("sheet");
        let head = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c><c r="B1" t="inlineStr"><is><t>身份证号码</t></is></c><c r="C1" t="inlineStr"><is><t>补贴金额</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>"#;
        let tail = "</t></is></c></row></sheetData></worksheet>";
        z.write_all(head.as_bytes()).expect("sheet head");
        let chunk = vec![b'A'; 1 << 20];
        let mut left = inflated.saturating_sub(head.len() + tail.len());
        while left > 0 {
            let n = left.min(chunk.len());
            z.write_all(&chunk[..n]).expect("sheet body");
            left -= n;
        }
        z.write_all(tail.as_bytes()).expect("sheet tail");
        z.finish().expect("zip finish");
    }
    let mut bytes = buf.into_inner();
    if let Some(size) = declared {
        // Forge the sheet's declared uncompressed size in its local header and in the
        // central directory (the archive then lies about how much it inflates to).
        let name = b"xl/worksheets/sheet1.xml";
        let mut at = 0;
        while let Some(i) = find(&bytes[at..], name) {
            let pos = at + i;
            let (sig_off, size_off) = if bytes[pos - 46..pos - 42] == [0x50, 0x4b, 0x01, 0x02] {
                (pos - 46, 24)
            } else if bytes[pos - 30..pos - 26] == [0x50, 0x4b, 0x03, 0x04] {
                (pos - 30, 22)
            } else {
                at = pos + 1;
                continue;
            };
            bytes[sig_off + size_off..sig_off + size_off + 4].copy_from_slice(&size.to_le_bytes());
            at = pos + 1;
        }
    }
    bytes
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Row counts of every table of the embedded database.
async fn snapshot(db: &Path) -> BTreeMap<String, i64> {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut c = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("open db");
    let tables: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut c)
            .await
            .expect("tables");
    let mut out = BTreeMap::new();
    for (t,) in tables {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM \"{t}\""))
            .fetch_one(&mut c)
            .await
            .expect("count");
        out.insert(t, n);
    }
    c.close().await.expect("close");
    out
}

struct Hostile {
    name: &'static str,
    file: &'static str,
    bytes: Vec<u8>,
    /// Every fragment must be in the error.
    says: &'static [&'static str],
}

fn catalogue() -> Vec<Hostile> {
    let text = roster_text();
    let header = text.lines().next().expect("header").to_owned();
    let first = text.lines().nth(1).expect("line").to_owned();
    let mut v = vec![
        Hostile {
            name: "empty file",
            file: "empty.csv",
            bytes: Vec::new(),
            says: &["empty.csv", "为空"],
        },
        Hostile {
            name: "header only",
            file: "header-only.csv",
            bytes: format!("{header}\n").into_bytes(),
            says: &["header-only.csv", "没有数据行"],
        },
        Hostile {
            name: "UTF-16 (Excel's Unicode text)",
            file: "utf16.csv",
            bytes: {
                let mut b = vec![0xFF, 0xFE];
                for u in text.encode_utf16() {
                    b.extend_from_slice(&u.to_le_bytes());
                }
                b
            },
            says: &["utf16.csv", "UTF-16", "UTF-8 或 GB18030"],
        },
        Hostile {
            name: "UTF-16 big-endian",
            file: "utf16be.csv",
            bytes: {
                let mut b = vec![0xFE, 0xFF];
                for u in text.encode_utf16() {
                    b.extend_from_slice(&u.to_be_bytes());
                }
                b
            },
            says: &["utf16be.csv", "UTF-16"],
        },
        Hostile {
            name: "wrong encoding in the middle (GB18030 file with a UTF-8 line)",
            file: "mixed-encoding.csv",
            bytes: {
                let mut b = gb18030(&text.lines().take(3).collect::<Vec<_>>().join("\n"));
                b.extend_from_slice(b"\n");
                b.extend_from_slice(first.as_bytes());
                b.extend_from_slice(b"\n");
                b
            },
            says: &["mixed-encoding.csv", "第4行", "编码"],
        },
        Hostile {
            name: "binary garbage",
            file: "garbage.csv",
            bytes: (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect(),
            says: &["garbage.csv"],
        },
        Hostile {
            name: "a renamed PDF",
            file: "scan.xlsx",
            bytes: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n".to_vec(),
            says: &["scan.xlsx", "zip"],
        },
        Hostile {
            name: "duplicate headers (two columns for the ID)",
            file: "duplicate-header.csv",
            bytes: format!("{header},身份证号\n{first},230102194702041018\n").into_bytes(),
            says: &[
                "duplicate-header.csv",
                "身份证号码",
                "身份证号",
                "删除其中一列",
            ],
        },
        Hostile {
            name: "10^6 columns",
            file: "million-columns.csv",
            bytes: format!("{header}{}\n{first}\n", ",列".repeat(1_000_000)).into_bytes(),
            says: &["million-columns.csv", "列", "上限"],
        },
        Hostile {
            name: "a 10 MB cell",
            file: "huge-cell.csv",
            bytes: {
                let mut s = format!("{header}\n{first}\n");
                s.push_str(&"张".repeat(10 * 1024 * 1024 / 3));
                s.push_str(&first[first.find(',').expect("comma")..]);
                s.push('\n');
                s.into_bytes()
            },
            says: &["huge-cell.csv", "第3行", "MiB"],
        },
        Hostile {
            name: "an unbalanced quote swallowing the file",
            file: "open-quote.csv",
            bytes: format!("{header}\n\"{first}\n{}", "王五,2301\n".repeat(1_000_000)).into_bytes(),
            says: &["open-quote.csv", "引号"],
        },
        Hostile {
            name: "old .xls renamed",
            file: "old.xlsx",
            bytes: {
                let mut b = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
                b.resize(4096, 0);
                b
            },
            says: &["old.xlsx", "旧版 .xls", "另存为 .xlsx"],
        },
        Hostile {
            name: "zip bomb (a 60 KB xlsx whose sheet inflates to 64 MiB)",
            file: "bomb.xlsx",
            bytes: bomb_xlsx(64 << 20, None),
            says: &["bomb.xlsx", "压缩"],
        },
        Hostile {
            name: "zip bomb lying about its size (declares 100 KB, inflates to 64 MiB)",
            file: "bomb-forged.xlsx",
            bytes: bomb_xlsx(64 << 20, Some(100_000)),
            says: &[
                "bomb-forged.xlsx",
                "sheet1.xml",
                "实际解压已超过",
                "压缩炸弹",
            ],
        },
    ];
    v.retain(|h| !h.bytes.is_empty() || h.name == "empty file");
    v
}

fn gb18030(s: &str) -> Vec<u8> {
    let (b, _, bad) = encoding_rs::GB18030.encode(s);
    assert!(!bad);
    b.into_owned()
}

fn prepared(dir: &Path) {
    let o = ykt(
        dir,
        &[
            "user",
            "add",
            "clerk",
            "--name",
            "clerk",
            "--roles",
            "dept_maker",
            "--region",
            "23",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for (kind, f) in [("registry", "registry.csv"), ("deaths", "deaths.csv")] {
        let o = ykt(dir, &["import", kind, scenario().join(f).to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
}

#[tokio::test]
async fn each_hostile_file_gets_a_clear_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    prepared(dir);
    let db = dir.join("data/ykt.db");
    let before = snapshot(&db).await;
    assert!(
        before.get("audit_log").copied().unwrap_or(0) > 0,
        "{before:?}"
    );
    let mut rows = Vec::new();
    for h in catalogue() {
        let path = dir.join(h.file);
        std::fs::write(&path, &h.bytes).expect("write");
        let p = path.to_str().unwrap();
        let started = std::time::Instant::now();
        let mut args = vec!["check", p];
        args.extend(CHECK);
        let (check, peak) = ykt_peak(dir, &args);
        let mut args = vec!["import", "roster", p];
        args.extend(CHECK);
        args.extend(["--user", "clerk"]);
        let import = ykt(dir, &args);
        for (what, o) in [("check", &check), ("import roster", &import)] {
            let t = text(o);
            assert_eq!(o.status.code(), Some(2), "{}: {what}: {t}", h.name);
            assert!(t.contains("文件不可用"), "{}: {what}: {t}", h.name);
            for s in h.says {
                assert!(t.contains(s), "{}: {what} does not say {s}: {t}", h.name);
            }
            assert!(!t.contains("panicked"), "{}: {what}: {t}", h.name);
        }
        assert_eq!(
            snapshot(&db).await,
            before,
            "{}: the failed import changed the database",
            h.name
        );
        assert!(
            peak < 400 * 1024,
            "{}: ykt check peaked at {} MiB",
            h.name,
            peak / 1024
        );
        if h.file.starts_with("bomb") {
            // Refused before calamine inflates it: no more than the other small files take
            // (it used to reach 243 MiB when the sheet's declared size lied).
            assert!(
                peak < 64 * 1024,
                "{}: ykt check peaked at {} MiB",
                h.name,
                peak / 1024
            );
        }
        rows.push(format!(
            "{:<60} {:>9} B  peak {:>4} MiB  {:>5} ms",
            h.name,
            h.bytes.len(),
            peak / 1024,
            started.elapsed().as_millis()
        ));
    }
    let o = ykt(dir, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    eprintln!("{}", rows.join("\n"));
}

/// The same lines whatever the BOM, the encoding or the line endings.
#[test]
fn bom_variants_encodings_and_mixed_line_endings_read_as_the_plain_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let text = roster_text();
    let lines: Vec<&str> = text.lines().collect();
    let mixed: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{l}{}", ["\r\n", "\n", "\r"][i % 3]))
        .collect();
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("plain.csv", text.clone().into_bytes()),
        (
            "bom.csv",
            [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
        ),
        ("gb18030.csv", gb18030(&text)),
        ("crlf.csv", text.replace('\n', "\r\n").into_bytes()),
        ("mixed-endings.csv", mixed.into_bytes()),
        ("no-final-newline.csv", text.trim_end().as_bytes().to_vec()),
    ];
    let mut reference: Option<serde_json::Value> = None;
    for (name, bytes) in variants {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        let mut args = vec!["check", p.to_str().unwrap(), "--json"];
        args.extend(CHECK);
        let o = ykt(dir, &args);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text_of(&o));
        let v: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert!(v.len() > 5, "{name}: {v:?}");
        let v = serde_json::Value::Array(v);
        match &reference {
            None => reference = Some(v),
            Some(r) => assert_eq!(&v, r, "{name} reads differently from plain.csv"),
        }
    }
}

fn text_of(o: &Output) -> String {
    text(o)
}

/// Formula injection: cells starting with = + - @ are neutralised in every format of the
/// error report (a masked name keeps its first character, so `=HYPERLINK(..)` would start
/// the masked name with `=`).
#[test]
fn formula_injection_is_neutralised_in_the_error_report() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let text = roster_text();
    let header = text.lines().next().expect("header");
    // Names that start like a formula but are otherwise valid names (so they reach the
    // report, masked to their first character), and formulas in the amount and remark.
    let names = ["=王秀英", "+李建国", "-张伟", "@刘洋"];
    let payloads = [
        "=HYPERLINK(\"http://evil.invalid\",\"点此\")",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
    ];
    let mut csv = format!("{header}\n");
    for (i, (n, p)) in names.iter().zip(payloads).enumerate() {
        let line = text.lines().nth(i + 1).expect("line");
        let f: Vec<&str> = line.split(',').collect();
        let q = format!("\"{}\"", p.replace('"', "\"\""));
        csv.push_str(&format!(
            "{n},{},{},{},{},,,{q},2023-05,是,,,,{q}\n",
            f[1], f[2], f[3], f[4]
        ));
    }
    let p = dir.join("formula.csv");
    std::fs::write(&p, csv).expect("write");
    let report = dir.join("report");
    let mut args = vec![
        "check",
        p.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend(CHECK);
    let o = ykt(dir, &args);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    let mut cells = 0;
    let mut seen_name = false;
    for f in ["校验结果.csv", "校验结果.xlsx"] {
        // The xlsx has a title row above the header.
        let mut t = ykt_files::TableReader::open_with(&report.join(f), |h| h == "行号").expect(f);
        while let Some(row) = t.next_row() {
            let row = row.unwrap_or_else(|e| panic!("{f}: {e}"));
            for cell in &row.cells {
                cells += 1;
                seen_name |= cell.starts_with("'=") || cell.starts_with("'@");
                assert!(
                    !cell.starts_with(['=', '+', '-', '@']),
                    "{f}: cell {cell:?} would be evaluated as a formula"
                );
            }
        }
    }
    assert!(cells > 20, "the report was read ({cells} cells)");
    assert!(seen_name, "a masked formula-like name reached the report");
    // Every sheet of the workbook, as stored: no text cell starts with a formula character.
    let bytes = std::fs::read(report.join("校验结果.xlsx")).expect("xlsx");
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    for i in 0..z.len() {
        let mut part = z.by_index(i).expect("part");
        let mut xml = String::new();
        use std::io::Read;
        part.read_to_string(&mut xml).expect("xml");
        for piece in xml.split("<t").skip(1) {
            let Some((_, rest)) = piece.split_once('>') else {
                continue;
            };
            assert!(
                !rest.starts_with(['=', '+', '-', '@']),
                "{}: text starts a formula: {}",
                part.name(),
                &rest[..rest.len().min(40)]
            );
        }
    }
}
