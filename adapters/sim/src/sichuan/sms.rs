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

/// The gateway's log: each message a JSON line in an unlinked spool file (a province-scale
/// run sends a million texts; in memory they took about 200 MB of the benchmark's process),
/// the last megabyte in memory until it is written.
#[derive(Debug, Default)]
struct Log {
    file: Option<std::fs::File>,
    /// Bytes in the file.
    end: u64,
    pending: Vec<u8>,
    len: usize,
    first: Option<Sms>,
}

/// Bytes of the log kept in memory before they go to the spool file.
const PENDING: usize = 1 << 20;

impl Log {
    fn push(&mut self, m: Sms) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.pending, &m)?;
        self.pending.push(b'\n');
        self.len += 1;
        if self.first.is_none() {
            self.first = Some(m);
        }
        if self.pending.len() >= PENDING {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.file = Some(tempfile::tempfile()?);
        }
        if let Some(f) = self.file.as_mut() {
            f.seek(SeekFrom::Start(self.end))?;
            f.write_all(&self.pending)?;
        }
        self.end += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Each message in order.
    fn each(&mut self, f: &mut dyn FnMut(&Sms)) -> std::io::Result<()> {
        use std::io::{BufRead, Read, Seek, SeekFrom};
        self.flush()?;
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(0))?;
        let reader = std::io::BufReader::with_capacity(1 << 16, file.take(self.end));
        for line in reader.lines() {
            let m: Sms = serde_json::from_str(&line?)?;
            f(&m);
        }
        Ok(())
    }
}

/// The simulated gateway.
#[derive(Debug, Clone, Default)]
pub struct SmsGateway {
    log: Arc<Mutex<Log>>,
}

impl SmsGateway {
    pub fn new() -> SmsGateway {
        SmsGateway::default()
    }

    /// Every message received, in order.
    pub fn messages(&self) -> Vec<Sms> {
        let mut out = Vec::new();
        self.each(|m| out.push(m.clone()));
        out
    }

    /// How many messages were received (without reading them: a province-scale run sends a
    /// million).
    pub fn count(&self) -> usize {
        self.log.lock().map(|l| l.len).unwrap_or_default()
    }

    /// The first message received.
    pub fn first(&self) -> Option<Sms> {
        self.log.lock().ok().and_then(|l| l.first.clone())
    }

    /// Each message received, in order, read back from the log a block at a time.
    pub fn each(&self, mut f: impl FnMut(&Sms)) {
        if let Ok(mut l) = self.log.lock()
            && let Err(e) = l.each(&mut f)
        {
            tracing::warn!(error = %e, "simulated SMS gateway: log unreadable");
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
    let id = log.len as u64 + 1;
    log.push(Sms {
        id,
        to: m.to,
        text: m.text,
        sender: m.sender,
    })
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn list(State(g): State<SmsGateway>) -> Json<Vec<Sms>> {
    Json(g.messages())
}
