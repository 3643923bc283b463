//! The treasury (预算管理一体化系统 + 国库集中支付) for Sichuan's authorised payments, over HTTP.
//!
//! - `POST /vouchers` with a voucher (8202 layout, XML in GB18030): checked (type, numbers,
//!   the header's count and amount equal to the sum of its details — the treasury's own
//!   procedural check —, a red-letter voucher returning no more than its original paid) and
//!   answered with a receipt: `accepted` (funds follow), `paid`, or `rejected` with the reason
//!   (HTTP 422). Posting the same voucher again gets the same receipt; another voucher under a
//!   used number is rejected.
//! - `GET /vouchers/{no}`: the receipt now. A blue voucher answers `accepted` to its first
//!   `pending_polls` queries, then `paid` (funds in the zero-balance account, on the voucher's
//!   date).
//! - `GET /ledger`: JSON of every voucher and its status, for demos and tests.

use super::xml::{self, Node};
use super::{from_gb18030, gb18030, parse_fen};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use ykt_kernel::Fen;

/// Behaviour switches.
#[derive(Debug, Clone, Default)]
pub struct TreasuryConfig {
    /// Status queries a blue voucher answers `accepted` before it is `paid` (0: paid when
    /// submitted).
    pub pending_polls: u32,
}

/// A voucher as the treasury keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    pub voucher_no: String,
    pub ori_voucher_no: String,
    pub agency_name: String,
    pub payee_acct_no: String,
    pub amount: Fen,
    pub vou_date: String,
    pub status: String,
    pub desc: String,
    pub return_no: String,
    #[serde(skip)]
    bytes: Vec<u8>,
    #[serde(skip)]
    polls_left: u32,
}

#[derive(Debug, Default)]
struct Books {
    vouchers: BTreeMap<String, Kept>,
    /// Per original voucher number, the sum of `-amount` of the vouchers paid against it
    /// (what red-letter vouchers have returned of it): kept as vouchers are paid, so a
    /// return is checked without summing every voucher kept (thousands in a province-scale
    /// run, one red-letter voucher per refunded line).
    returned: HashMap<String, Fen>,
}

impl Books {
    /// A voucher kept with status `paid` (on arrival, or when a status query finds it paid).
    fn paid(returned: &mut HashMap<String, Fen>, k: &Kept) {
        *returned.entry(k.ori_voucher_no.clone()).or_default() += -k.amount;
    }
}

/// The simulated treasury.
#[derive(Debug, Clone)]
pub struct TreasurySim {
    cfg: TreasuryConfig,
    books: Arc<Mutex<Books>>,
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=GB18030")],
        gb18030(&body),
    )
        .into_response()
}

fn receipt_of(k: &Kept) -> String {
    let date = NaiveDate::parse_from_str(&k.vou_date, "%Y%m%d")
        .map(|d| d.format("%Y%m%d").to_string())
        .unwrap_or_default();
    let paid = k.status == "paid";
    xml::receipt(&[
        ("VtCode", "8202"),
        ("VoucherNo", &k.voucher_no),
        ("Status", &k.status),
        ("StatusDesc", &k.desc),
        (
            "PayAmt",
            &if paid {
                k.amount.to_string()
            } else {
                String::new()
            },
        ),
        ("PayDate", if paid { &date } else { "" }),
        ("ReturnNo", &k.return_no),
    ])
}

fn rejection(no: &str, desc: &str) -> Response {
    xml_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        xml::receipt(&[
            ("VtCode", "8202"),
            ("VoucherNo", no),
            ("Status", "rejected"),
            ("StatusDesc", desc),
        ]),
    )
}

/// What the checks read from a voucher.
pub struct Parsed {
    no: String,
    ori: String,
    agency_name: String,
    payee: String,
    amount: Fen,
    vou_date: String,
}

/// Check one `<Voucher>` of an 8202 message (public for the fuzz targets, `tests/fuzz`).
pub fn check(v: &Node) -> Result<Parsed, String> {
    if v.text_of("VtCode") != "8202" {
        return Err(format!("凭证类型「{}」不是8202", v.text_of("VtCode")));
    }
    if v.text_of("PayTypeCode") != "12" {
        return Err("支付方式应为授权支付（12）".into());
    }
    let adm = v.text_of("AdmDivCode");
    if adm.len() != 6 || !adm.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("区划代码「{adm}」无效"));
    }
    let vou_date = v.text_of("VouDate");
    NaiveDate::parse_from_str(vou_date, "%Y%m%d")
        .map_err(|_| format!("凭证日期「{vou_date}」无效"))?;
    let amount = parse_fen(v.text_of("PayAmt"))
        .filter(|a| !a.is_zero())
        .ok_or_else(|| format!("支付金额「{}」无效", v.text_of("PayAmt")))?;
    let bills: u64 = v
        .text_of("BillCount")
        .parse()
        .map_err(|_| "笔数无效".to_owned())?;
    let details: Vec<&Node> = v
        .child("Details")
        .map(|d| d.children.iter().filter(|c| c.name == "Detail").collect())
        .unwrap_or_default();
    if v.text_of("DetailNum") != details.len().to_string() {
        return Err(format!(
            "明细条数{}与DetailNum「{}」不符",
            details.len(),
            v.text_of("DetailNum")
        ));
    }
    let mut sum = Fen(0);
    let mut count = 0u64;
    for d in &details {
        sum += parse_fen(d.text_of("PayAmt")).ok_or("明细金额无效")?;
        count += d
            .text_of("Count")
            .parse::<u64>()
            .map_err(|_| "明细笔数无效")?;
    }
    if sum != amount || count != bills {
        return Err(format!(
            "汇总{bills}笔{amount}元与明细合计{count}笔{sum}元不一致"
        ));
    }
    let payee = v.text_of("PayeeAcctNo").to_owned();
    if amount.is_positive() && payee.is_empty() {
        return Err("缺少收款账号（单位零余额账户）".into());
    }
    Ok(Parsed {
        no: v.text_of("VoucherNo").to_owned(),
        ori: v.text_of("OriVoucherNo").to_owned(),
        agency_name: v.text_of("AgencyName").to_owned(),
        payee,
        amount,
        vou_date: vou_date.to_owned(),
    })
}

impl TreasurySim {
    pub fn new(cfg: TreasuryConfig) -> TreasurySim {
        TreasurySim {
            cfg,
            books: Arc::new(Mutex::new(Books::default())),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/vouchers", post(submit))
            .route("/vouchers/{no}", get(status))
            .route("/ledger", get(ledger))
            .with_state(self.clone())
    }

    /// Every voucher kept, by number.
    pub fn vouchers(&self) -> Vec<Kept> {
        self.books
            .lock()
            .map(|b| b.vouchers.values().cloned().collect())
            .unwrap_or_default()
    }

    fn take(&self, bytes: &[u8]) -> Response {
        let Some(text) = from_gb18030(bytes) else {
            return rejection("", "报文不是有效的GB18030编码");
        };
        let root = match xml::parse(&text) {
            Ok(r) => r,
            Err(e) => return rejection("", &format!("报文格式错误：{e}")),
        };
        if root.name != "MOF" || root.text_of("VouchCount") != "1" {
            return rejection("", "报文应为MOF且VouchCount为1");
        }
        let Some(v) = root.child("Voucher") else {
            return rejection("", "缺少Voucher");
        };
        let no = v.text_of("VoucherNo").to_owned();
        if no.is_empty() {
            return rejection("", "缺少凭证号");
        }
        let Ok(mut books) = self.books.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        if let Some(k) = books.vouchers.get(&no) {
            return if k.bytes == bytes {
                let code = if k.status == "rejected" {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::OK
                };
                xml_response(code, receipt_of(k))
            } else {
                rejection(&no, "凭证号已使用 (voucher number already used)")
            };
        }
        let p = match check(v) {
            Ok(p) => p,
            Err(desc) => {
                books.vouchers.insert(
                    no.clone(),
                    Kept {
                        voucher_no: no.clone(),
                        ori_voucher_no: v.text_of("OriVoucherNo").to_owned(),
                        agency_name: v.text_of("AgencyName").to_owned(),
                        payee_acct_no: v.text_of("PayeeAcctNo").to_owned(),
                        amount: parse_fen(v.text_of("PayAmt")).unwrap_or_default(),
                        vou_date: v.text_of("VouDate").to_owned(),
                        status: "rejected".into(),
                        desc: desc.clone(),
                        return_no: String::new(),
                        bytes: bytes.to_vec(),
                        polls_left: 0,
                    },
                );
                return rejection(&no, &desc);
            }
        };
        let mut kept = Kept {
            voucher_no: p.no.clone(),
            ori_voucher_no: p.ori.clone(),
            agency_name: p.agency_name,
            payee_acct_no: p.payee,
            amount: p.amount,
            vou_date: p.vou_date,
            status: "accepted".into(),
            desc: "已受理，待拨付".into(),
            return_no: String::new(),
            bytes: bytes.to_vec(),
            polls_left: self.cfg.pending_polls,
        };
        if p.amount.is_negative() {
            // A red-letter voucher: money back from the zero-balance account.
            let Some(orig) = books.vouchers.get(&p.ori) else {
                return rejection(&no, &format!("原凭证{}不存在", p.ori));
            };
            if orig.status != "paid" || orig.amount.is_negative() {
                return rejection(&no, &format!("原凭证{}未拨付，不能退回", p.ori));
            }
            let returned: Fen = books.returned.get(&p.ori).copied().unwrap_or_default();
            if returned + (-p.amount) > orig.amount {
                return rejection(
                    &no,
                    &format!(
                        "退回金额合计{}元超过原凭证金额{}元",
                        returned + (-p.amount),
                        orig.amount
                    ),
                );
            }
            kept.status = "paid".into();
            kept.desc = "已退回国库".into();
            kept.return_no = format!("TK{}", p.no);
        } else if kept.polls_left == 0 {
            kept.status = "paid".into();
            kept.desc = "已拨付至单位零余额账户".into();
        }
        let body = receipt_of(&kept);
        if kept.status == "paid" {
            Books::paid(&mut books.returned, &kept);
        }
        books.vouchers.insert(no, kept);
        xml_response(StatusCode::OK, body)
    }
}

async fn submit(State(t): State<TreasurySim>, body: Bytes) -> Response {
    t.take(&body)
}

async fn status(State(t): State<TreasurySim>, Path(no): Path<String>) -> Response {
    let Ok(mut books) = t.books.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let books = &mut *books;
    let Some(k) = books.vouchers.get_mut(&no) else {
        return xml_response(
            StatusCode::NOT_FOUND,
            xml::receipt(&[
                ("VtCode", "8202"),
                ("VoucherNo", &no),
                ("Status", "rejected"),
                ("StatusDesc", "凭证不存在 (no such voucher)"),
            ]),
        );
    };
    if k.status == "accepted" {
        if k.polls_left > 0 {
            k.polls_left -= 1;
        } else {
            k.status = "paid".into();
            k.desc = "已拨付至单位零余额账户".into();
            Books::paid(&mut books.returned, k);
        }
    }
    xml_response(StatusCode::OK, receipt_of(k))
}

async fn ledger(State(t): State<TreasurySim>) -> Json<Vec<Kept>> {
    Json(t.vouchers())
}
