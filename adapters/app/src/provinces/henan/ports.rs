//! Henan's ports, real and simulated.
//!
//! - [`HenanTreasury`]: the budget system client, guarded by the platform's own rules: only a
//!   project active in the library is pushed (第十条), with the bank and budget unit finance
//!   chose (第二十一条); the pushed message and the budget system's answers are recorded.
//! - the bank port is `ykt_http::henan::agent::PullAgent`;
//! - disclosure is the platform's own lookup tables (the 惠民惠农补贴查询 column reads them).
//!
//! [`start_sims`] starts the whole outside world on localhost: the platform's bank interface
//! (what `ykt serve` runs), the budget system, and one agent bank per candidate bank, each a
//! real HTTP peer.

use super::Settings;
use crate::cycle::Ports;
use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use ykt_http::henan::agent::PullAgent;
use ykt_http::henan::bank_api::{BankApi, PaymentAccounts};
use ykt_http::henan::budget::{BudgetClient, OrderMessage, order_of};
use ykt_kernel::Fen;
use ykt_kernel::ledger::AccountKind;
use ykt_kernel::ports::{FundingRequest, FundingStatus, PortError, RefundRequest, TreasuryPayment};
use ykt_kernel::province::Province;
use ykt_province_henan::calendar::WorkCalendar;
use ykt_sim::henan::bank::{BankFaults, BankSim, BankSimConfig};
use ykt_sim::henan::budget::{BudgetSim, BudgetSimConfig, indicators};
use ykt_sim::server::SimServer;
use ykt_store::Store;

const SYSTEM: &str = "预算管理一体化系统";

/// The platform's business date, as a shareable function.
pub type Today = Arc<dyn Fn() -> NaiveDate + Send + Sync>;

/// A fixed date, or the local date when `None`.
pub fn today_fn(fixed: Option<NaiveDate>) -> Today {
    Arc::new(move || fixed.unwrap_or_else(|| chrono::Local::now().date_naive()))
}

/// The accounts a credited line moves money between, named as the cycle names them.
pub const PAYMENT_ACCOUNTS: PaymentAccounts = |b, bank| {
    (
        crate::cycle::account(AccountKind::AgentBank, b, Some(bank)),
        crate::cycle::account(AccountKind::Beneficiaries, b, None),
    )
};

/// The budget system as the treasury port, with the platform's checks and records.
pub struct HenanTreasury {
    pub client: BudgetClient,
    pub store: Store,
    pub today: Today,
}

fn store_err(e: ykt_store::StoreError) -> PortError {
    PortError::new(SYSTEM, e.to_string(), true)
}

#[async_trait]
impl TreasuryPayment for HenanTreasury {
    async fn request_funding(&self, req: &FundingRequest) -> Result<FundingStatus, PortError> {
        let Some(order) = self
            .store
            .henan_order(&req.reference)
            .await
            .map_err(store_err)?
        else {
            return Ok(FundingStatus::Refused {
                reason: format!(
                    "发放单{}尚未选择代发银行和预算单位（第二十一条） (no agent bank chosen)",
                    req.reference
                ),
            });
        };
        let active = self
            .store
            .henan_library_entry(&req.project_code)
            .await
            .map_err(store_err)?
            .is_some_and(|e| e.status == "active");
        if !active {
            return Ok(FundingStatus::Refused {
                reason: format!(
                    "补贴项目{}不在补贴项目库中或已停止执行，不能发放（第十条） (project not in the library)",
                    req.project_code
                ),
            });
        }
        let message = OrderMessage {
            budget_unit: order.budget_unit.clone(),
            payee_bank: order.bank.clone(),
            ..order_of(req)
        };
        let receipt = self.client.push_order(&message).await?;
        ykt_store::failpoints::hit("henan.push.after_port_call");
        match receipt.request_no {
            Some(request_no) if receipt.accepted => {
                self.store
                    .henan_record_push(
                        &req.reference,
                        &receipt.sent,
                        &request_no,
                        receipt.indicator.as_deref(),
                        &(self.today)().to_string(),
                    )
                    .await
                    .map_err(store_err)?;
                Ok(FundingStatus::Pending {
                    voucher_no: request_no,
                })
            }
            _ => Ok(FundingStatus::Refused {
                reason: receipt.message,
            }),
        }
    }

    async fn funding_status(&self, reference: &str) -> Result<FundingStatus, PortError> {
        let p = self.client.payment(reference).await?;
        match p.status.as_str() {
            "paid" => {
                self.store
                    .henan_record_funded(&p.order_no, &p.indicator, &(self.today)().to_string())
                    .await
                    .map_err(store_err)?;
                Ok(FundingStatus::Funded {
                    voucher_no: p.voucher_no,
                    amount: p.amount.ok_or_else(|| {
                        PortError::new(SYSTEM, "已支付的应答缺少金额 (paid without amount)", false)
                    })?,
                    date: p.date,
                })
            }
            "pending" => Ok(FundingStatus::Pending {
                voucher_no: p.request_no,
            }),
            _ => Ok(FundingStatus::Refused { reason: p.message }),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<String, PortError> {
        self.client.refund_request(req).await
    }
}

/// The ports of a deployment, from `[province_settings.henan]`.
pub fn configured(store: &Store, settings: &Settings, today: Today) -> anyhow::Result<Ports> {
    let treasury: Option<Arc<dyn TreasuryPayment>> = match &settings.budget_url {
        Some(url) => Some(Arc::new(HenanTreasury {
            client: BudgetClient::new(url)?,
            store: store.clone(),
            today: today.clone(),
        })),
        None => None,
    };
    let notify: HashMap<String, String> = settings
        .bank_notify
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Ports {
        treasury,
        bank: Some(Arc::new(PullAgent::new(store.clone(), notify, today)?)),
        disclosure: Some(crate::provinces::own_disclosure(store)),
    })
}

/// The bank interface router of `ykt serve`.
pub fn bank_api(
    store: &Store,
    province: Arc<dyn Province>,
    calendar: Arc<WorkCalendar>,
    today: Today,
) -> ykt_http::server::Router {
    ykt_http::henan::bank_api::router(BankApi {
        store: store.clone(),
        province,
        calendar,
        today,
        payment_accounts: PAYMENT_ACCOUNTS,
    })
}

/// How the simulated world behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub seed: u64,
    pub today: NaiveDate,
    /// Faults per bank code; banks not listed use `default_faults`.
    pub faults: BTreeMap<String, BankFaults>,
    pub default_faults: BankFaults,
    /// `None`: banks pull the streamed CSV; `Some(n)`: JSON pages of `n`.
    pub page: Option<usize>,
    /// Status queries the budget system answers `pending` before paying.
    pub pending_polls: u32,
    /// Tell the banks to pull when an order is released (otherwise they pull only when run).
    pub notify_banks: bool,
}

/// The running simulated world. Dropping it stops every server.
pub struct SimEnv {
    pub ports: Ports,
    /// The platform's bank interface (`ykt serve`'s router on an ephemeral port).
    pub platform_url: String,
    pub budget_url: String,
    pub budget: BudgetSim,
    /// The agent banks, by code.
    pub banks: BTreeMap<String, BankSim>,
    _servers: Vec<SimServer>,
}

impl SimEnv {
    /// Wait until every bank has processed what it was notified of.
    pub async fn settle(&self) -> anyhow::Result<()> {
        for b in self.banks.values() {
            if !b.wait_idle(std::time::Duration::from_secs(600)).await {
                anyhow::bail!("模拟银行{}未在时限内处理完毕", b.code());
            }
            if let Some(e) = b.errors().into_iter().next() {
                anyhow::bail!("{e}");
            }
        }
        Ok(())
    }
}

fn seed_of(seed: u64, bank: &str) -> u64 {
    bank.bytes().fold(seed ^ 0x9e37_79b9_7f4a_7c15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Start the platform's bank interface, the budget system and one agent bank per candidate
/// bank (issuing each a fresh credential), and return ports talking to them.
pub async fn start_sims(
    store: &Store,
    province: Arc<dyn Province>,
    calendar: Arc<WorkCalendar>,
    opts: SimOptions,
) -> anyhow::Result<SimEnv> {
    let today = today_fn(Some(opts.today));
    let platform = SimServer::start(ykt_http::server::app([bank_api(
        store,
        province.clone(),
        calendar,
        today.clone(),
    )]))
    .await?;
    let mut projects: Vec<String> = province
        .catalog()
        .projects()
        .iter()
        .map(|p| p.code.clone())
        .collect();
    for row in store.henan_library().await? {
        if !projects.contains(&row.code) {
            projects.push(row.code);
        }
    }
    let codes: Vec<&str> = projects.iter().map(String::as_str).collect();
    let (budget, budget_server) = BudgetSim::start(BudgetSimConfig {
        today: opts.today,
        indicators: indicators(
            &codes,
            "",
            chrono::Datelike::year(&opts.today),
            Fen(100_000_000_000),
        ),
        pending_polls: opts.pending_polls,
    })
    .await?;
    let mut servers = vec![platform, budget_server];
    let platform_url = servers[0].url();
    let budget_url = servers[1].url();
    let mut banks = BTreeMap::new();
    let mut notify = HashMap::new();
    let admin = ykt_kernel::User {
        login: "system".into(),
        name: "模拟环境".into(),
        roles: vec![ykt_kernel::Role::Admin],
        region: ykt_kernel::RegionCode::parse("41").map_err(|e| anyhow::anyhow!("{e}"))?,
        bank: None,
    };
    let ports0 = Ports::default();
    let ops = super::ops::Henan {
        store,
        province: province.as_ref(),
        ports: &ports0,
        today: opts.today,
        calendar: &WorkCalendar::default(),
    };
    for c in store.henan_candidates().await? {
        let token = ops.issue_credential(&admin, &c.code).await?;
        let sim = BankSim::new(BankSimConfig {
            platform: platform_url.clone(),
            bank: c.code.clone(),
            token,
            handler: format!("{}代发经办员", c.name),
            today: opts.today,
            seed: seed_of(opts.seed, &c.code),
            faults: opts
                .faults
                .get(&c.code)
                .cloned()
                .unwrap_or_else(|| opts.default_faults.clone()),
            page: opts.page,
        })?;
        if opts.notify_banks {
            let s = sim.serve_notices().await?;
            notify.insert(c.code.clone(), format!("{}/notify", s.url()));
            servers.push(s);
        }
        banks.insert(c.code.clone(), sim);
    }
    let ports = Ports {
        treasury: Some(Arc::new(HenanTreasury {
            client: BudgetClient::new(&budget_url)?,
            store: store.clone(),
            today: today.clone(),
        })),
        bank: Some(Arc::new(PullAgent::new(store.clone(), notify, today)?)),
        disclosure: Some(crate::provinces::own_disclosure(store)),
    };
    Ok(SimEnv {
        ports,
        platform_url,
        budget_url,
        budget,
        banks,
        _servers: servers,
    })
}
