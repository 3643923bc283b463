//! The budget system and treasury of Henan (预算管理一体化系统, 濮阳规程 第二十一条): "根据“发放单号”及
//! 补贴项目信息，挂接预算指标或用款计划，生成资金支付申请，由财政国库支付机构按规定将补贴资金拨付至代发金融机构".
//!
//! Speaks the GB18030 XML messages of `provinces/henan/README.md`:
//! `POST /budget/v1/orders` (`<DisbursementOrder>` → `<Receipt>`),
//! `GET /budget/v1/payments/{request_no}` (→ `<PaymentStatus>`),
//! `POST /budget/v1/refunds` (`<Refund>` → `<RefundReceipt>`).
//!
//! Each order is linked to the first indicator of its project (and region) with enough balance,
//! which is reduced; without one the order is refused. The treasury pays after `pending_polls`
//! status queries answered `pending`. Pushing the same order again returns the same receipt.

use crate::server::SimServer;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use quick_xml::events::Event;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use ykt_kernel::Fen;

/// A budget indicator (预算指标) with its balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    /// e.g. `豫财社〔2023〕12号-HN03`
    pub code: String,
    /// The project it funds.
    pub project_code: String,
    /// Region prefix it covers (`41` = the whole province).
    pub region_prefix: String,
    pub balance: Fen,
}

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct BudgetSimConfig {
    /// The business date of payments.
    pub today: NaiveDate,
    pub indicators: Vec<Indicator>,
    /// Status queries answered `pending` before the treasury pays.
    pub pending_polls: u32,
}

#[derive(Debug, Clone)]
struct Request {
    order_no: String,
    request_no: String,
    voucher_no: String,
    indicator: String,
    amount: Fen,
    refunded: Fen,
    polls: u32,
}

#[derive(Debug, Default)]
struct BudgetState {
    indicators: Vec<Indicator>,
    by_order: HashMap<String, String>,
    requests: BTreeMap<String, Request>,
    refunds: Vec<(String, Fen, String)>,
    /// Refunds by the platform's refund request number: (payment request, amount, refund no).
    refund_requests: HashMap<String, (String, Fen, String)>,
    received: Vec<String>,
    seq: u32,
}

/// A running budget system.
#[derive(Clone)]
pub struct BudgetSim {
    cfg: Arc<BudgetSimConfig>,
    state: Arc<Mutex<BudgetState>>,
}

fn xml(root: &str, fields: &[(&str, String)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"GB18030\"?>\n");
    s.push_str(&format!("<{root}>\n"));
    for (k, v) in fields {
        s.push_str(&format!(
            "  <{k}>{}</{k}>\n",
            quick_xml::escape::escape(v.as_str())
        ));
    }
    s.push_str(&format!("</{root}>\n"));
    s
}

fn reply(status: StatusCode, text: String) -> Response {
    let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
    (
        status,
        [("Content-Type", "application/xml; charset=GB18030")],
        bytes.into_owned(),
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    reply(status, xml("Error", &[("Message", message.to_owned())]))
}

/// Parse a flat message (root and leaf elements; public for the fuzz targets, `tests/fuzz`).
pub fn parse(bytes: &[u8]) -> Result<(String, HashMap<String, String>), String> {
    let (text, _, bad) = encoding_rs::GB18030.decode(bytes);
    if bad {
        return Err("报文不是GB18030编码".into());
    }
    let mut reader = quick_xml::Reader::from_str(&text);
    let (mut root, mut cur, mut depth) = (None, None::<String>, 0);
    let mut f = HashMap::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                let n = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if depth == 1 {
                    root = Some(n);
                } else {
                    f.insert(n.clone(), String::new());
                    cur = Some(n);
                }
            }
            Ok(Event::End(_)) => {
                depth -= 1;
                cur = None;
            }
            Ok(Event::Text(t)) => {
                if let Some(c) = &cur {
                    let s = t.decode().map_err(|e| e.to_string())?;
                    f.entry(c.clone()).or_default().push_str(&s);
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if let Some(c) = &cur {
                    let name = r.decode().map_err(|e| e.to_string())?;
                    let v = quick_xml::escape::unescape(&format!("&{name};"))
                        .map_err(|e| e.to_string())?
                        .into_owned();
                    f.entry(c.clone()).or_default().push_str(&v);
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(format!("XML格式错误: {e}")),
            Ok(_) => {}
        }
    }
    let root = root.ok_or("空报文")?;
    Ok((root, f))
}

async fn push_order(State(sim): State<BudgetSim>, body: Bytes) -> Response {
    let (root, f) = match parse(&body) {
        Ok(x) => x,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    if root != "DisbursementOrder" {
        return error(StatusCode::BAD_REQUEST, "应为<DisbursementOrder>报文");
    }
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let order_no = get("OrderNo");
    let Some(total) = super::amount(&get("TotalAmount")) else {
        return error(StatusCode::BAD_REQUEST, "资金总额格式错误");
    };
    if order_no.is_empty() || get("BudgetUnit").is_empty() {
        return error(StatusCode::BAD_REQUEST, "缺少发放单号或预算单位");
    }
    let mut st = sim.state.lock().unwrap_or_else(|e| e.into_inner());
    st.received
        .push(encoding_rs::GB18030.decode(&body).0.into_owned());
    if let Some(req) = st.by_order.get(&order_no).cloned() {
        let r = &st.requests[&req];
        return reply(
            StatusCode::OK,
            xml(
                "Receipt",
                &[
                    ("OrderNo", order_no),
                    ("Status", "accepted".into()),
                    ("RequestNo", r.request_no.clone()),
                    ("Indicator", r.indicator.clone()),
                    ("Message", "该发放单已生成资金支付申请".into()),
                ],
            ),
        );
    }
    let project = get("ProjectCode");
    let region = get("Region");
    let Some(ind) = st.indicators.iter_mut().find(|i| {
        i.project_code == project && region.starts_with(&i.region_prefix) && i.balance >= total
    }) else {
        return reply(
            StatusCode::OK,
            xml(
                "Receipt",
                &[
                    ("OrderNo", order_no),
                    ("Status", "refused".into()),
                    (
                        "Message",
                        format!("项目{project}无可挂接的预算指标或指标余额不足"),
                    ),
                ],
            ),
        );
    };
    ind.balance -= total;
    let indicator = ind.code.clone();
    st.seq += 1;
    let day = sim.cfg.today.format("%Y%m%d");
    let request_no = format!("ZFSQ{day}{:05}", st.seq);
    let voucher_no = format!("GKZF{day}{:05}", st.seq);
    st.by_order.insert(order_no.clone(), request_no.clone());
    st.requests.insert(
        request_no.clone(),
        Request {
            order_no: order_no.clone(),
            request_no: request_no.clone(),
            voucher_no,
            indicator: indicator.clone(),
            amount: total,
            refunded: Fen(0),
            polls: 0,
        },
    );
    reply(
        StatusCode::OK,
        xml(
            "Receipt",
            &[
                ("OrderNo", order_no),
                ("Status", "accepted".into()),
                ("RequestNo", request_no),
                ("Indicator", indicator),
                ("Message", "已挂接预算指标并生成资金支付申请".into()),
            ],
        ),
    )
}

async fn payment(State(sim): State<BudgetSim>, Path(request_no): Path<String>) -> Response {
    let mut st = sim.state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = st.requests.get_mut(&request_no) else {
        return error(StatusCode::NOT_FOUND, "没有这个资金支付申请");
    };
    let paid = r.polls >= sim.cfg.pending_polls;
    r.polls += 1;
    let mut fields = vec![
        ("OrderNo", r.order_no.clone()),
        ("RequestNo", r.request_no.clone()),
        ("Indicator", r.indicator.clone()),
    ];
    if paid {
        fields.extend([
            ("Status", "paid".to_owned()),
            ("VoucherNo", r.voucher_no.clone()),
            ("PaidAmount", r.amount.to_string()),
            ("PaidDate", sim.cfg.today.to_string()),
            ("Message", "国库已将资金拨付至代发金融机构".to_owned()),
        ]);
    } else {
        fields.extend([
            ("Status", "pending".to_owned()),
            ("Message", "资金支付申请待国库支付".to_owned()),
        ]);
    }
    reply(StatusCode::OK, xml("PaymentStatus", &fields))
}

async fn refund(State(sim): State<BudgetSim>, body: Bytes) -> Response {
    let (root, f) = match parse(&body) {
        Ok(x) => x,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    if root != "Refund" {
        return error(StatusCode::BAD_REQUEST, "应为<Refund>报文");
    }
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let Some(amount) = super::amount(&get("Amount")) else {
        return error(StatusCode::BAD_REQUEST, "退款金额格式错误");
    };
    let mut st = sim.state.lock().unwrap_or_else(|e| e.into_inner());
    let request_no = get("RequestNo");
    let refuse = |m: &str| {
        reply(
            StatusCode::OK,
            xml(
                "RefundReceipt",
                &[("Status", "refused".into()), ("Message", m.to_owned())],
            ),
        )
    };
    // A retried refund (the same `RefundRequestNo`): the first receipt again, nothing
    // refunded twice; the same number for another request or amount is refused.
    let key = get("RefundRequestNo");
    if let Some((req, a, no)) = st.refund_requests.get(&key) {
        if *req == request_no && *a == amount {
            return reply(
                StatusCode::OK,
                xml(
                    "RefundReceipt",
                    &[
                        ("RequestNo", request_no),
                        ("Status", "accepted".into()),
                        ("RefundNo", no.clone()),
                        ("Message", "资金已原渠道退回国库，指标已恢复".into()),
                    ],
                ),
            );
        }
        return refuse(&format!(
            "退款申请号{key}已用于资金支付申请{req}的{a}元退款，与本次申请不符"
        ));
    }
    let Some(r) = st.requests.get_mut(&request_no) else {
        return refuse("没有这个资金支付申请");
    };
    if r.refunded + amount > r.amount {
        return refuse("退款金额超过已支付金额");
    }
    r.refunded += amount;
    let indicator = r.indicator.clone();
    if let Some(i) = st.indicators.iter_mut().find(|i| i.code == indicator) {
        i.balance += amount;
    }
    st.seq += 1;
    let refund_no = format!("TK{}{:05}", sim.cfg.today.format("%Y%m%d"), st.seq);
    st.refunds.push((request_no.clone(), amount, get("Reason")));
    if !key.is_empty() {
        st.refund_requests
            .insert(key, (request_no.clone(), amount, refund_no.clone()));
    }
    reply(
        StatusCode::OK,
        xml(
            "RefundReceipt",
            &[
                ("RequestNo", request_no),
                ("Status", "accepted".into()),
                ("RefundNo", refund_no),
                ("Message", "资金已原渠道退回国库，指标已恢复".into()),
            ],
        ),
    )
}

/// The budget system's own books of refunds (`GET /budget/v1/refunds`, JSON, for tests and
/// the operator's reconciliation): every refund it took back, once each.
async fn refunds(State(sim): State<BudgetSim>) -> Response {
    let list: Vec<serde_json::Value> = sim
        .refunds()
        .into_iter()
        .map(|(r, a, why)| serde_json::json!({"request_no": r, "amount_fen": a.0, "reason": why}))
        .collect();
    axum::Json(list).into_response()
}

impl BudgetSim {
    /// A simulator (not yet serving).
    pub fn new(cfg: BudgetSimConfig) -> BudgetSim {
        BudgetSim {
            state: Arc::new(Mutex::new(BudgetState {
                indicators: cfg.indicators.clone(),
                ..BudgetState::default()
            })),
            cfg: Arc::new(cfg),
        }
    }

    /// Its HTTP interface.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/budget/v1/orders", post(push_order))
            .route("/budget/v1/payments/{request_no}", get(payment))
            .route("/budget/v1/refunds", post(refund).get(refunds))
            .with_state(self.clone())
    }

    /// Start the simulator on an ephemeral port.
    pub async fn start(cfg: BudgetSimConfig) -> std::io::Result<(BudgetSim, SimServer)> {
        let sim = BudgetSim::new(cfg);
        let server = SimServer::start(sim.router()).await?;
        Ok((sim, server))
    }

    /// The order messages received, as text, in order.
    pub fn received(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// Indicators and their balances now.
    pub fn indicators(&self) -> Vec<Indicator> {
        self.state
            .lock()
            .map(|s| s.indicators.clone())
            .unwrap_or_default()
    }

    /// Refunds received: (request number, amount, reason).
    pub fn refunds(&self) -> Vec<(String, Fen, String)> {
        self.state
            .lock()
            .map(|s| s.refunds.clone())
            .unwrap_or_default()
    }
}

/// The indicators of a demo or test: one per project code, for the whole province `prefix`,
/// with `balance` each; codes read like a real allocation document.
pub fn indicators(projects: &[&str], prefix: &str, year: i32, balance: Fen) -> Vec<Indicator> {
    projects
        .iter()
        .enumerate()
        .map(|(i, p)| Indicator {
            code: format!("豫财社〔{year}〕{}号-{p}", 11 + i),
            project_code: (*p).to_owned(),
            region_prefix: prefix.to_owned(),
            balance,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gb(text: &str) -> Vec<u8> {
        encoding_rs::GB18030.encode(text).0.into_owned()
    }

    async fn post(url: &str, text: &str) -> HashMap<String, String> {
        let body = reqwest::Client::new()
            .post(url)
            .body(gb(text))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        parse(&body).unwrap().1
    }

    fn refund(request_no: &str, key: &str, amount: &str) -> String {
        xml(
            "Refund",
            &[
                ("RequestNo", request_no.to_owned()),
                ("RefundRequestNo", key.to_owned()),
                ("Amount", amount.to_owned()),
                ("Reason", "账户已销户，原渠道退回".to_owned()),
            ],
        )
    }

    /// A refund retried with the same request number (after a crash between the budget
    /// system's answer and the platform's commit) is answered with the first receipt and
    /// returns the money once; the number reused for another amount is refused.
    #[tokio::test]
    async fn a_repeated_refund_request_refunds_once() {
        let (sim, server) = BudgetSim::start(BudgetSimConfig {
            today: NaiveDate::from_ymd_opt(2023, 5, 20).unwrap(),
            indicators: indicators(&["HN03"], "41", 2023, Fen(1_000_000)),
            pending_polls: 0,
        })
        .await
        .unwrap();
        let base = server.url();
        let order = xml(
            "DisbursementOrder",
            &[
                ("OrderNo", "HA202305410902-000001-01".into()),
                ("Region", "410902".into()),
                ("ProjectCode", "HN03".into()),
                ("BudgetUnit", "华龙区民政局".into()),
                ("Count", "2".into()),
                ("TotalAmount", "840.00".into()),
            ],
        );
        let r = post(&format!("{base}/budget/v1/orders"), &order).await;
        assert_eq!(r["Status"], "accepted", "{r:?}");
        let request_no = r["RequestNo"].clone();
        let url = format!("{base}/budget/v1/refunds");
        let key = "TK-HA202305410902-000001-01-7-1";
        let first = post(&url, &refund(&request_no, key, "420.00")).await;
        assert_eq!(first["Status"], "accepted", "{first:?}");
        let again = post(&url, &refund(&request_no, key, "420.00")).await;
        assert_eq!(again["Status"], "accepted", "{again:?}");
        assert_eq!(
            again["RefundNo"], first["RefundNo"],
            "the first receipt again"
        );
        let other = post(&url, &refund(&request_no, key, "1.00")).await;
        assert_eq!(other["Status"], "refused", "{other:?}");
        assert!(other["Message"].contains("退款申请号"), "{other:?}");
        assert_eq!(sim.refunds().len(), 1, "one refund at the budget system");
        assert_eq!(
            sim.indicators()[0].balance,
            Fen(1_000_000) - Fen(84_000) + Fen(42_000),
            "the indicator restored once"
        );
        // Another line's refund (another number) is a refund of its own.
        let second = post(
            &url,
            &refund(&request_no, "TK-HA202305410902-000001-01-8-1", "420.00"),
        )
        .await;
        assert_eq!(second["Status"], "accepted", "{second:?}");
        assert_ne!(second["RefundNo"], first["RefundNo"]);
        assert_eq!(sim.refunds().len(), 2);
    }
}
