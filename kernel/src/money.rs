//! Money. Amounts are stored as integer 分 ([`Fen`]) and read from rosters as decimal 元
//! ([`Yuan`], exactly two decimal places). No floating point anywhere: a roster amount is
//! either exact to the 分 or rejected (DOMAIN.md §3, `amount.format` / `amount.nonpositive` /
//! `amount.scale`).

use crate::reason::ReasonCode;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

/// Why a roster cell is not a valid amount (or standard, or quantity).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a plain decimal number (`amount.format`): empty, letters, exponent notation,
    /// misplaced thousands separators, or too large to hold in 分.
    #[error(
        "金额格式错误：应为十进制数字，可带千分位逗号、¥前缀或“元”后缀 \
         (amount must be a decimal number, optionally with thousands separators, ¥ or 元)"
    )]
    Format,
    /// Zero or negative (`amount.nonpositive`).
    #[error("金额必须大于零 (amount must be greater than zero)")]
    NonPositive,
    /// A non-zero digit beyond the allowed decimal places (`amount.scale`): two for amounts
    /// (分), six for standards and quantities.
    #[error(
        "金额小数位数过多：金额最多两位小数（分），标准和数量最多六位 \
         (too many decimal places: at most 2 for amounts, 6 for standards and quantities)"
    )]
    Scale,
}

impl AmountError {
    /// The reason code: `amount.format`, `amount.nonpositive` or `amount.scale`.
    pub fn reason(&self) -> ReasonCode {
        match self {
            AmountError::Format => ReasonCode::AmountFormat,
            AmountError::NonPositive => ReasonCode::AmountNonpositive,
            AmountError::Scale => ReasonCode::AmountScale,
        }
    }
}

/// An amount in integer 分 (1 元 = 100 分): the storage and ledger unit.
///
/// Serialises as a JSON integer. `Display` shows 元 with two decimals (`1234.50`, `-0.01`).
/// The operators `+ - +=  -=` and unary `-` panic on overflow (beyond ±9.2 × 10¹⁶ 元, which
/// no real sum reaches); use [`Fen::checked_add`] / [`Fen::checked_sub`] on untrusted values.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl Fen {
    /// Zero.
    pub const ZERO: Fen = Fen(0);

    /// Sum, `None` on overflow.
    pub fn checked_add(self, rhs: Fen) -> Option<Fen> {
        self.0.checked_add(rhs.0).map(Fen)
    }

    /// Difference, `None` on overflow.
    pub fn checked_sub(self, rhs: Fen) -> Option<Fen> {
        self.0.checked_sub(rhs.0).map(Fen)
    }

    /// The same amount in 元 (always exact).
    pub fn to_yuan(self) -> Yuan {
        Yuan::from_fen(self)
    }

    /// Strictly greater than zero.
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Strictly less than zero.
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Exactly zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Fen {
    /// 元 with two decimals: `1234.50`, `-0.01`, `0.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

impl Add for Fen {
    type Output = Fen;
    /// # Panics
    /// On overflow.
    fn add(self, rhs: Fen) -> Fen {
        self.checked_add(rhs)
            .unwrap_or_else(|| panic!("Fen overflow: {self} + {rhs}"))
    }
}

impl Sub for Fen {
    type Output = Fen;
    /// # Panics
    /// On overflow.
    fn sub(self, rhs: Fen) -> Fen {
        self.checked_sub(rhs)
            .unwrap_or_else(|| panic!("Fen overflow: {self} - {rhs}"))
    }
}

impl Neg for Fen {
    type Output = Fen;
    /// # Panics
    /// For `Fen(i64::MIN)`.
    fn neg(self) -> Fen {
        Fen(self
            .0
            .checked_neg()
            .unwrap_or_else(|| panic!("Fen overflow: -{self}")))
    }
}

impl AddAssign for Fen {
    /// # Panics
    /// On overflow.
    fn add_assign(&mut self, rhs: Fen) {
        *self = *self + rhs;
    }
}

impl SubAssign for Fen {
    /// # Panics
    /// On overflow.
    fn sub_assign(&mut self, rhs: Fen) {
        *self = *self - rhs;
    }
}

impl Sum for Fen {
    /// # Panics
    /// On overflow.
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        iter.fold(Fen::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Fen> for Fen {
    /// # Panics
    /// On overflow.
    fn sum<I: Iterator<Item = &'a Fen>>(iter: I) -> Fen {
        iter.copied().sum()
    }
}

/// An amount in 元 with exactly two decimal places, always representable as [`Fen`].
///
/// [`Yuan::parse`] reads roster cells and accepts only positive amounts; [`Yuan::from_fen`]
/// may give zero or negative values (sums, refunds). `Display` and serde use the plain
/// two-decimal string `1234.50`; deserialising accepts any sign but at most two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Yuan(Decimal);

/// The pieces of a decimal text after removing decoration.
struct Lexed<'a> {
    negative: bool,
    /// Integer digits, separators removed, leading zeros stripped (may be empty for 0);
    /// borrowed from the text unless it had separators.
    int: std::borrow::Cow<'a, str>,
    /// Fraction digits, trailing zeros stripped (may be empty).
    frac: &'a str,
}

impl Lexed<'_> {
    fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.is_empty()
    }

    /// The value as `mantissa × 10^-frac.len()`; `None` if it has more than `max_digits`
    /// significant integer digits.
    fn mantissa(&self, max_int_digits: usize) -> Option<i128> {
        if self.int.len() > max_int_digits {
            return None;
        }
        let m = self
            .int
            .bytes()
            .chain(self.frac.bytes())
            .try_fold(0i128, |acc, b| {
                acc.checked_mul(10)?.checked_add(i128::from(b - b'0'))
            })?;
        Some(if self.negative { -m } else { m })
    }
}

/// Take an optional leading `+` or `-`.
fn take_sign(t: &str) -> (Option<bool>, &str) {
    if let Some(r) = t.strip_prefix('+') {
        (Some(false), r)
    } else if let Some(r) = t.strip_prefix('-') {
        (Some(true), r)
    } else {
        (None, t)
    }
}

/// Split a decimal text: surrounding whitespace, a trailing `元`, a leading `¥`/`￥` and one
/// sign (`+`/`-`, before or after the currency sign) are removed; the rest must be digits
/// with optional thousands separators (`1,234,567`: first group 1-3 digits, then groups of
/// exactly 3) and an optional `.` followed by at least one digit.
fn lex(s: &str) -> Result<Lexed<'_>, AmountError> {
    let mut t = s.trim();
    if let Some(r) = t.strip_suffix('元') {
        t = r.trim_end();
    }
    let (sign, mut t) = take_sign(t);
    if let Some(r) = t.strip_prefix('¥').or_else(|| t.strip_prefix('￥')) {
        t = r.trim_start();
    }
    let (sign, t) = match sign {
        Some(neg) => (neg, t),
        None => {
            let (s2, r) = take_sign(t);
            (s2.unwrap_or(false), r)
        }
    };
    let (int_part, frac) = match t.split_once('.') {
        Some((i, f)) => {
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(AmountError::Format);
            }
            (i, f)
        }
        None => (t, ""),
    };
    if int_part.is_empty() {
        return Err(AmountError::Format);
    }
    let mut groups = int_part.split(',');
    let first = groups.next().unwrap_or("");
    let has_commas = int_part.contains(',');
    let first_ok = !first.is_empty()
        && first.bytes().all(|b| b.is_ascii_digit())
        && (!has_commas || first.len() <= 3);
    if !first_ok || !groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit())) {
        return Err(AmountError::Format);
    }
    let int: std::borrow::Cow<'_, str> = if has_commas {
        int_part
            .chars()
            .filter(|c| *c != ',')
            .skip_while(|c| *c == '0')
            .collect::<String>()
            .into()
    } else {
        int_part.trim_start_matches('0').into()
    };
    Ok(Lexed {
        negative: sign,
        int,
        frac: frac.trim_end_matches('0'),
    })
}

/// Most integer digits of a [`Yuan`]: `i64::MAX` 分 is about 9.2 × 10¹⁶ 元.
const YUAN_MAX_INT_DIGITS: usize = 17;
/// Most integer digits of a standard or quantity ([`parse_decimal`]).
const DECIMAL_MAX_INT_DIGITS: usize = 18;
/// Most decimal places of a standard or quantity ([`parse_decimal`]).
pub const DECIMAL_MAX_SCALE: usize = 6;

/// Parse a positive decimal with at most 6 decimal places, for 补贴标准 (standards) and
/// quantities (亩, 头, 人·月 …). Same syntax as [`Yuan::parse`]; at most 18 integer digits.
/// Trailing zeros beyond the sixth place are allowed (`1.5000000`); the result keeps only the
/// significant decimals (`1.5`).
pub fn parse_decimal(s: &str) -> Result<Decimal, AmountError> {
    let l = lex(s)?;
    if l.negative || l.is_zero() {
        return Err(AmountError::NonPositive);
    }
    if l.frac.len() > DECIMAL_MAX_SCALE {
        return Err(AmountError::Scale);
    }
    let m = l
        .mantissa(DECIMAL_MAX_INT_DIGITS)
        .ok_or(AmountError::Format)?;
    Decimal::try_from_i128_with_scale(m, l.frac.len() as u32).map_err(|_| AmountError::Format)
}

/// Parse a two-decimal amount of any sign into 分 (no positivity check).
fn parse_fen_any_sign(s: &str) -> Result<Fen, AmountError> {
    let l = lex(s)?;
    if l.frac.len() > 2 {
        return Err(AmountError::Scale);
    }
    fen_of(&l)
}

/// The 分 value of a lexed amount with at most two decimals.
fn fen_of(l: &Lexed<'_>) -> Result<Fen, AmountError> {
    let m = l.mantissa(YUAN_MAX_INT_DIGITS).ok_or(AmountError::Format)?;
    let fen = m
        .checked_mul(10i128.pow(2 - l.frac.len() as u32))
        .ok_or(AmountError::Format)?;
    i64::try_from(fen).map(Fen).map_err(|_| AmountError::Format)
}

/// Greatest common divisor.
fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Yuan {
    /// Parse a roster amount cell (DOMAIN.md §3). Accepted: surrounding whitespace, an
    /// optional `+`, a `¥`/`￥` prefix and a `元` suffix, thousands separators `,` in correct
    /// positions only, and decimals with any number of trailing zeros (`12.300`).
    ///
    /// Errors are checked in this order: [`AmountError::Format`] (empty, letters, exponent,
    /// `NaN`, misplaced commas, `.5` or `5.`, more than i64 分), [`AmountError::NonPositive`]
    /// (zero or negative), [`AmountError::Scale`] (a non-zero digit after the second
    /// decimal, e.g. `12.345`).
    pub fn parse(s: &str) -> Result<Yuan, AmountError> {
        match Yuan::parse_plain(s) {
            Some(y) => Ok(y),
            None => Yuan::parse_lexed(s),
        }
    }

    /// [`Yuan::parse`] through the general lexer.
    fn parse_lexed(s: &str) -> Result<Yuan, AmountError> {
        let l = lex(s)?;
        if l.negative || l.is_zero() {
            // Still reject absurd sizes as Format first.
            l.mantissa(YUAN_MAX_INT_DIGITS).ok_or(AmountError::Format)?;
            return Err(AmountError::NonPositive);
        }
        if l.frac.len() > 2 {
            return Err(AmountError::Scale);
        }
        fen_of(&l).map(Yuan::from_fen)
    }

    /// The common cell `123`, `123.4` or `123.45` (ASCII digits, at most 15 before the point,
    /// one or two after it, not zero) without the general lexer: `None` for anything else,
    /// which [`Yuan::parse`] then reads the long way (with the same result for these texts).
    fn parse_plain(s: &str) -> Option<Yuan> {
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || int.len() > 15
            || frac.len() > 2
            || (s.len() > int.len() && frac.is_empty())
            || !digits(int)
            || !digits(frac)
        {
            return None;
        }
        let value = |t: &str| {
            t.bytes()
                .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'))
        };
        let fen = value(int) * 100
            + match frac.len() {
                0 => 0,
                1 => value(frac) * 10,
                _ => value(frac),
            };
        (fen > 0).then(|| Yuan::from_fen(Fen(fen)))
    }

    /// The amount of `fen` 分 (exact, any sign).
    pub fn from_fen(fen: Fen) -> Yuan {
        Yuan(Decimal::new(fen.0, 2))
    }

    /// The amount in 分 (exact: every `Yuan` fits in i64 分).
    pub fn to_fen(&self) -> Fen {
        // Invariant: scale 2 and the mantissa fits i64 (all constructors go through Fen).
        let m = self.0.mantissa();
        Fen(i64::try_from(m).unwrap_or(if m < 0 { i64::MIN } else { i64::MAX }))
    }

    /// The value as a decimal with scale 2.
    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// `self × q` if the exact product has at most two decimal places and fits in i64 分,
    /// else `None` (no rounding ever). `q` may be any decimal; a zero or negative `q` gives a
    /// zero or negative result. Used for `amount.standard_mismatch`: amount = standard ×
    /// quantity.
    pub fn checked_mul_quantity(&self, q: Decimal) -> Option<Yuan> {
        // self = a / 100, q = b / 10^s; the product in 分 is a·b / 10^s, exact iff 10^s
        // divides a·b. Integer arithmetic avoids any rounding inside Decimal.
        let a = i128::from(self.to_fen().0);
        let b = q.mantissa();
        let p = 10i128.checked_pow(q.scale())?;
        let g = gcd(b.unsigned_abs(), p.unsigned_abs());
        let g = i128::try_from(g).ok()?;
        let (b, p) = (b / g, p / g);
        if a % p != 0 {
            return None;
        }
        let fen = (a / p).checked_mul(b)?;
        Some(Yuan::from_fen(Fen(i64::try_from(fen).ok()?)))
    }
}

impl fmt::Display for Yuan {
    /// Two decimals: `1234.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_fen(), f)
    }
}

impl Serialize for Yuan {
    /// The two-decimal string, `"1234.50"`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Yuan {
    /// A decimal string of any sign with at most two significant decimals (roster syntax
    /// accepted). Numbers are refused: JSON numbers are floats.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_fen_any_sign(&s)
            .map(Yuan::from_fen)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn y(s: &str) -> Yuan {
        Yuan::parse(s).expect(s)
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn fen_display_and_ops() {
        assert_eq!(Fen(123450).to_string(), "1234.50");
        assert_eq!(Fen(-1).to_string(), "-0.01");
        assert_eq!(Fen(0).to_string(), "0.00");
        assert_eq!(Fen(-250).to_string(), "-2.50");
        assert_eq!(Fen(i64::MIN).to_string(), "-92233720368547758.08");
        assert_eq!(Fen(1) + Fen(2), Fen(3));
        assert_eq!(Fen(1) - Fen(2), Fen(-1));
        assert_eq!(-Fen(5), Fen(-5));
        let mut f = Fen(10);
        f += Fen(5);
        f -= Fen(3);
        assert_eq!(f, Fen(12));
        assert_eq!([Fen(1), Fen(2), Fen(3)].iter().sum::<Fen>(), Fen(6));
        assert_eq!(vec![Fen(1), Fen(-2)].into_iter().sum::<Fen>(), Fen(-1));
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), None);
        assert_eq!(Fen(i64::MIN).checked_sub(Fen(1)), None);
        assert!(Fen(1).is_positive() && !Fen(0).is_positive() && !Fen(-1).is_positive());
        assert_eq!(Fen::default(), Fen::ZERO);
        assert_eq!(serde_json::to_string(&Fen(123)).unwrap(), "123");
        assert_eq!(serde_json::from_str::<Fen>("-7").unwrap(), Fen(-7));
    }

    #[test]
    #[should_panic(expected = "Fen overflow")]
    fn fen_add_overflow_panics() {
        let _ = Fen(i64::MAX) + Fen(1);
    }

    #[test]
    fn parse_accepts_roster_spellings() {
        assert_eq!(y("1234.5").to_fen(), Fen(123450));
        assert_eq!(y("1234.5").to_string(), "1234.50");
        assert_eq!(y(" 1,234.50 ").to_fen(), Fen(123450));
        assert_eq!(y("1,234,567.89").to_fen(), Fen(123456789));
        assert_eq!(y("+12").to_fen(), Fen(1200));
        assert_eq!(y("¥12.3").to_fen(), Fen(1230));
        assert_eq!(y("￥ 12.3").to_fen(), Fen(1230));
        assert_eq!(y("12.30元").to_fen(), Fen(1230));
        assert_eq!(y("¥1,000 元").to_fen(), Fen(100000));
        assert_eq!(y("+¥5").to_fen(), Fen(500));
        assert_eq!(y("¥+5").to_fen(), Fen(500));
        assert_eq!(y("12.300").to_fen(), Fen(1230));
        assert_eq!(y("0.01").to_fen(), Fen(1));
        assert_eq!(y("007").to_fen(), Fen(700));
        assert_eq!(y("12.000000000000000000000000000000").to_fen(), Fen(1200));
        assert_eq!(y("92233720368547758.07").to_fen(), Fen(i64::MAX));
        assert_eq!(y("12").as_decimal(), dec("12.00"));
        assert_eq!(y("12").as_decimal().scale(), 2);
    }

    #[test]
    fn parse_format_errors() {
        for s in [
            "",
            " ",
            "元",
            "¥",
            "abc",
            "NaN",
            "nan",
            "inf",
            "1e5",
            "1E5",
            "1.2e3",
            "12,34",
            "1,2345",
            "1234,567",
            ",123",
            "123,",
            "1,,234",
            "12.3.4",
            ".5",
            "5.",
            "1.2,3",
            "12 34",
            "１２",
            "12。5",
            "--5",
            "+-5",
            "-+5",
            "+¥-5",
            "12元元",
            "1_000",
            "92233720368547758.08",
            "1000000000000000000",
        ] {
            assert_eq!(Yuan::parse(s), Err(AmountError::Format), "{s:?}");
        }
    }

    #[test]
    fn parse_nonpositive_and_scale() {
        for s in ["0", "0.00", "-0", "-5", "-1,234.50", "¥-5", "-¥5", "0.000"] {
            assert_eq!(Yuan::parse(s), Err(AmountError::NonPositive), "{s:?}");
        }
        for s in ["12.345", "0.001", "1.0001", "12.3450"] {
            assert_eq!(Yuan::parse(s), Err(AmountError::Scale), "{s:?}");
        }
        assert_eq!(AmountError::Format.reason().as_str(), "amount.format");
        assert_eq!(
            AmountError::NonPositive.reason().as_str(),
            "amount.nonpositive"
        );
        assert_eq!(AmountError::Scale.reason().as_str(), "amount.scale");
    }

    #[test]
    fn yuan_display_and_serde() {
        assert_eq!(Yuan::from_fen(Fen(-1)).to_string(), "-0.01");
        assert_eq!(Yuan::from_fen(Fen(0)).to_string(), "0.00");
        assert_eq!(Yuan::from_fen(Fen(5)).as_decimal().to_string(), "0.05");
        let v = y("1234.5");
        let j = serde_json::to_string(&v).unwrap();
        assert_eq!(j, "\"1234.50\"");
        assert_eq!(serde_json::from_str::<Yuan>(&j).unwrap(), v);
        let neg = Yuan::from_fen(Fen(-250));
        assert_eq!(
            serde_json::from_str::<Yuan>(&serde_json::to_string(&neg).unwrap()).unwrap(),
            neg
        );
        assert!(serde_json::from_str::<Yuan>("1234.5").is_err());
        assert!(serde_json::from_str::<Yuan>("\"1.234\"").is_err());
    }

    #[test]
    fn multiplication_is_exact_or_none() {
        let std = y("12.50");
        assert_eq!(std.checked_mul_quantity(dec("3")), Some(y("37.50")));
        assert_eq!(std.checked_mul_quantity(dec("2.5")), Some(y("31.25")));
        assert_eq!(std.checked_mul_quantity(dec("0.5")), Some(y("6.25")));
        assert_eq!(std.checked_mul_quantity(dec("0.3")), Some(y("3.75")));
        assert_eq!(std.checked_mul_quantity(dec("0.01")), None); // 0.125
        assert_eq!(y("0.01").checked_mul_quantity(dec("0.5")), None);
        assert_eq!(
            y("100").checked_mul_quantity(dec("0.333")),
            Some(y("33.30"))
        );
        assert_eq!(y("1").checked_mul_quantity(dec("0.333")), None);
        assert_eq!(y("100").checked_mul_quantity(dec("0.3300")), Some(y("33")));
        assert_eq!(y("1000").checked_mul_quantity(dec("0.000001")), None);
        assert_eq!(
            y("1000000").checked_mul_quantity(dec("0.000001")),
            Some(y("1"))
        );
        assert_eq!(
            y("1").checked_mul_quantity(Decimal::ZERO),
            Some(Yuan::from_fen(Fen(0)))
        );
        assert_eq!(
            y("2").checked_mul_quantity(dec("-1.5")),
            Some(Yuan::from_fen(Fen(-300)))
        );
        assert_eq!(
            y("92233720368547758.07").checked_mul_quantity(dec("2")),
            None
        );
        // Tiny quantities whose product exceeds Decimal's 28 places are handled exactly.
        assert_eq!(
            y("1").checked_mul_quantity(dec("0.0000000000000000000000000001")),
            None
        );
    }

    #[test]
    fn decimals_for_standards_and_quantities() {
        assert_eq!(parse_decimal("12.5").unwrap(), dec("12.5"));
        assert_eq!(parse_decimal("0.123456").unwrap(), dec("0.123456"));
        assert_eq!(parse_decimal("1.5000000").unwrap(), dec("1.5"));
        assert_eq!(parse_decimal("1,000元").unwrap(), dec("1000"));
        assert_eq!(parse_decimal("0.1234567"), Err(AmountError::Scale));
        assert_eq!(parse_decimal("0"), Err(AmountError::NonPositive));
        assert_eq!(parse_decimal("-1"), Err(AmountError::NonPositive));
        assert_eq!(parse_decimal("1e3"), Err(AmountError::Format));
        assert_eq!(
            parse_decimal("1234567890123456789"),
            Err(AmountError::Format)
        );
        assert!(parse_decimal("123456789012345678.123456").is_ok());
    }

    proptest! {
        #[test]
        fn plain_amounts_parse_as_the_lexer_reads_them(s in "[0-9]{0,17}(\\.[0-9]{0,3})?") {
            if let Some(y) = Yuan::parse_plain(&s) {
                prop_assert_eq!(Ok(y), Yuan::parse_lexed(&s));
            }
            prop_assert_eq!(Yuan::parse(&s), Yuan::parse_lexed(&s));
        }

        #[test]
        fn fen_yuan_round_trip(x in any::<i64>()) {
            prop_assert_eq!(Fen(x).to_yuan().to_fen(), Fen(x));
            prop_assert_eq!(Fen(x).to_yuan().to_string(), Fen(x).to_string());
        }

        #[test]
        fn display_parses_back(x in 1i64..=i64::MAX) {
            let s = Fen(x).to_yuan().to_string();
            prop_assert_eq!(Yuan::parse(&s).unwrap().to_fen(), Fen(x));
            let j = serde_json::to_string(&Fen(x).to_yuan()).unwrap();
            prop_assert_eq!(serde_json::from_str::<Yuan>(&j).unwrap().to_fen(), Fen(x));
        }

        #[test]
        fn thousands_separated_parses(x in 1i64..1_000_000_000_000) {
            let plain = Fen(x).to_string();
            let (int, frac) = plain.split_once('.').unwrap();
            let mut grouped = String::new();
            for (i, c) in int.chars().enumerate() {
                if i > 0 && (int.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            let s = format!("¥{grouped}.{frac}元");
            prop_assert_eq!(Yuan::parse(&s).unwrap().to_fen(), Fen(x));
        }

        #[test]
        fn mul_matches_decimal_when_exact(fen in 1i64..10_000_000, q in 0i64..1_000_000, s in 0u32..7) {
            let qd = Decimal::new(q, s);
            let exact = Decimal::new(fen, 2) * qd;
            let got = Yuan::from_fen(Fen(fen)).checked_mul_quantity(qd);
            if exact.normalize().scale() <= 2 {
                prop_assert_eq!(got.map(|g| g.as_decimal()), Some(exact));
            } else {
                prop_assert_eq!(got, None);
            }
        }
    }
}
