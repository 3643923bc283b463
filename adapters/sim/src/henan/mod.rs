//! Henan's outside systems, simulated as real network peers (濮阳规程):
//!
//! - [`budget`]: the budget system (预算管理一体化系统) and treasury: receives the order pushed
//!   by the platform (GB18030 XML), links a budget indicator, generates the payment request
//!   and pays the agent bank (第二十一条); takes refunds back (第二十三条).
//! - [`bank`]: an agent bank (代发金融机构): a real HTTP client of the platform's bank
//!   interface. It pulls the detail by order number (streamed CSV or pages), credits the cards
//!   (deciding failures from its seed), sends the SMS, posts the results back line by line,
//!   hands over its results and posts its per-project statements (第二十二、二十三、二十六条),
//!   with seeded faults: failed lines, repeated and out-of-order posts, a dropped connection
//!   mid-pull, a hand-over that does not add up.
//!
//! Both mirror the message layouts documented in `provinces/henan/README.md`; they share no
//! code with the platform's side, so the documentation is what they agree on.

pub mod bank;
pub mod budget;

use ykt_kernel::Fen;

/// Parse a wire amount (`420.00`).
pub(crate) fn amount(s: &str) -> Option<Fen> {
    let (i, f) = s.split_once('.')?;
    if i.is_empty() || f.len() != 2 || !i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Fen(
        i.parse::<i64>().ok()?.checked_mul(100)? + f.parse::<i64>().ok()?
    ))
}
