//! The SMS gateway (短信平台) the cooperating bank texts beneficiaries through:
//! `POST /sms` with `{"to": "<mobile>", "text": "...", "sender": "<bank>"}` answers
//! `{"id": n}`; `GET /sms` lists what was sent. The bank's SMS is free to the beneficiary
//! (乐山办法 三(五)3).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// One message as the gateway received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sms {
    pub id: u64,
    pub to: String,
    pub text: String,
    pub sender: String,
}

#[derive(Debug, Deserialize)]
struct SendSms {
    to: String,
    text: String,
    #[serde(default)]
    sender: String,
}

/// The simulated gateway.
#[derive(Debug, Clone, Default)]
pub struct SmsGateway {
    log: Arc<Mutex<Vec<Sms>>>,
}

impl SmsGateway {
    pub fn new() -> SmsGateway {
        SmsGateway::default()
    }

    /// Every message received, in order.
    pub fn messages(&self) -> Vec<Sms> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// How many messages were received (without copying them: a province-scale run sends a
    /// million).
    pub fn count(&self) -> usize {
        self.log.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// The first message received.
    pub fn first(&self) -> Option<Sms> {
        self.log.lock().ok().and_then(|l| l.first().cloned())
    }

    /// Each message received, in order, without copying the log.
    pub fn each(&self, mut f: impl FnMut(&Sms)) {
        if let Ok(l) = self.log.lock() {
            l.iter().for_each(&mut f);
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/sms", post(send).get(list))
            .with_state(self.clone())
    }
}

async fn send(
    State(g): State<SmsGateway>,
    Json(m): Json<SendSms>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let valid =
        m.to.len() == 11 && m.to.starts_with('1') && m.to.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "手机号码无效 (bad mobile number)".into(),
        ));
    }
    if m.text.trim().is_empty() || m.text.chars().count() > 500 {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "短信内容无效 (bad text)".into(),
        ));
    }
    let mut log = g
        .log
        .lock()
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "poisoned".to_owned()))?;
    let id = log.len() as u64 + 1;
    log.push(Sms {
        id,
        to: m.to,
        text: m.text,
        sender: m.sender,
    });
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn list(State(g): State<SmsGateway>) -> Json<Vec<Sms>> {
    Json(g.messages())
}
