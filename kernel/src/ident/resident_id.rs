//! The resident identity number (公民身份号码) of GB 11643-1999.
//!
//! Eighteen characters: a six-digit address code (GB/T 2260), an eight-digit birth date
//! `YYYYMMDD`, a three-digit sequence number (odd for men, even for women) and a check
//! character computed with ISO 7064 MOD 11-2. First-generation cards carried fifteen digits
//! (two-digit year, no check character); they are upgraded by inserting `19` before the
//! birth date and computing the check character, and flagged (`id.legacy15`) so a person
//! confirms them (DOMAIN.md §3).
//!
//! A [`ResidentId`] never prints in full: `Debug` and `Display` show the masked form
//! `230102********3745` (DOMAIN.md §3, "Full identifiers never appear in logs").

use super::region::is_province_code;
use crate::reason::ReasonCode;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// ISO 7064 MOD 11-2 weights of positions 1-17 (GB 11643-1999 §6.2: `Wi = 2^(18-i) mod 11`).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for `S mod 11` = 0..=10 (GB 11643-1999 §6.2).
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character of GB 11643-1999 (ISO 7064 MOD 11-2) for the first seventeen
/// characters of an ID.
///
/// `first17` holds **ASCII digits** (`b'0'..=b'9'`), as in `id.as_bytes()[..17]`. A byte that
/// is not an ASCII digit gives a meaningless (but non-panicking) result; callers check the
/// format first.
pub fn check_digit(first17: &[u8; 17]) -> char {
    let s: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b.wrapping_sub(b'0') % 10) * w)
        .sum();
    CHECK_CHARS[(s % 11) as usize]
}

/// Why a text is not a valid resident ID. Each variant maps to a reason code of DOMAIN.md §3.
/// Messages never contain the ID itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not 18 characters `\d{17}[\dX]` nor 15 digits (`id.format`).
    #[error(
        "身份证号码格式错误：应为18位（前17位为数字，末位为数字或X）或15位数字 \
         (resident ID must be 17 digits and a digit or X, or 15 digits)"
    )]
    Format,
    /// The check character is wrong (`id.checksum`, GB 11643-1999 ISO 7064 MOD 11-2).
    #[error(
        "身份证号码校验位错误：应为{expected}，实为{found} \
         (check digit should be {expected}, is {found})"
    )]
    Checksum {
        /// The check character the first seventeen digits require.
        expected: char,
        /// The check character the text has.
        found: char,
    },
    /// Digits 7-14 are not a real date, or the date is in the future or before 1880
    /// (`id.birthdate`).
    #[error(
        "身份证号码出生日期无效：须为真实日期，不晚于当天且不早于1880年 \
         (birth date must be a real date, not in the future and not before 1880)"
    )]
    Birthdate,
    /// The first two digits are not a province code of GB/T 2260 (`id.region`).
    #[error("身份证号码省份代码无效 (the first two digits are not a province code)")]
    Region,
}

impl IdError {
    /// The reason code: `id.format`, `id.checksum`, `id.birthdate` or `id.region`.
    pub fn reason(&self) -> ReasonCode {
        match self {
            IdError::Format => ReasonCode::IdFormat,
            IdError::Checksum { .. } => ReasonCode::IdChecksum,
            IdError::Birthdate => ReasonCode::IdBirthdate,
            IdError::Region => ReasonCode::IdRegion,
        }
    }
}

/// The result of parsing a roster cell: the ID and whether it was upgraded from a 15-digit
/// first-generation number (then the caller reports `id.legacy15` so a person confirms it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedId {
    /// The 18-character ID.
    pub id: ResidentId,
    /// The input had 15 digits and was upgraded.
    pub upgraded_from_15: bool,
}

/// A valid 18-character resident ID (GB 11643-1999): `\d{17}[\dX]` with an upper-case `X`,
/// a correct check character and a real birth date.
///
/// `Debug` and `Display` are masked; [`ResidentId::as_str`] gives the full value for storage
/// and encryption only. Serde uses the plain 18-character string; deserialising validates
/// like [`ResidentId::from_trusted`] (format, real birth date, checksum, but no comparison
/// with today and no province check).
///
/// Held inline as its 18 ASCII bytes (no heap allocation: a roster of a million lines
/// creates and copies millions of IDs); ordering is that of the string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResidentId([u8; 18]);

/// The earliest birth date accepted (DOMAIN.md §3: "not before 1880").
fn earliest_birth() -> NaiveDate {
    // Computed once, at compile time (this runs for every ID of a roster).
    const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1880, 1, 1) {
        Some(d) => d,
        None => NaiveDate::MIN,
    };
    EARLIEST
}

/// Value of the ASCII digits `b` (caller guarantees digits).
fn digits_value(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
}

/// The calendar date of `YYYYMMDD` ASCII digits, `None` when it is not a real date.
fn date_of(b: &[u8]) -> Option<NaiveDate> {
    let y = i32::try_from(digits_value(&b[0..4])).ok()?;
    NaiveDate::from_ymd_opt(y, digits_value(&b[4..6]), digits_value(&b[6..8]))
}

/// `Some(normalised)` when `s` has the 18-character shape `\d{17}[\dXx]`.
fn shape18(s: &str) -> Option<[u8; 18]> {
    let b: [u8; 18] = s.as_bytes().try_into().ok()?;
    if !b[..17].iter().fold(true, |ok, d| ok & d.is_ascii_digit()) {
        return None;
    }
    let mut out = b;
    out[17] = match b[17] {
        d @ b'0'..=b'9' => d,
        b'X' | b'x' => b'X',
        _ => return None,
    };
    Some(out)
}

impl ResidentId {
    /// Parse a roster cell, checking every rule of DOMAIN.md §3 in this order: format
    /// (`id.format`), province (`id.region`), birth date (`id.birthdate`, a real date between
    /// 1880-01-01 and `today`), check character (`id.checksum`, GB 11643-1999).
    ///
    /// Surrounding whitespace is trimmed and a lower-case `x` normalised. Fifteen digits are
    /// upgraded to eighteen (insert `19` before `YYMMDD`, compute the check character) with
    /// `upgraded_from_15` set. County codes are not checked: codes change, numbers don't.
    pub fn parse(s: &str, today: NaiveDate) -> Result<ParsedId, IdError> {
        // A cell that begins and ends with a digit or letter has nothing to trim (the usual
        // case: the reader trimmed it already).
        let s = match s.as_bytes() {
            [first, .., last] if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() => s,
            _ => s.trim(),
        };
        let (b, upgraded) = if let Some(b) = shape18(s) {
            (b, false)
        } else if s.len() == 15 && s.bytes().all(|c| c.is_ascii_digit()) {
            let old = s.as_bytes();
            let mut b = [0u8; 18];
            b[..6].copy_from_slice(&old[..6]);
            b[6..8].copy_from_slice(b"19");
            b[8..17].copy_from_slice(&old[6..15]);
            (b, true)
        } else {
            return Err(IdError::Format);
        };
        if !is_province_code(digits_value(&b[0..2]) as u8) {
            return Err(IdError::Region);
        }
        match date_of(&b[6..14]) {
            Some(d) if d <= today && d >= earliest_birth() => {}
            _ => return Err(IdError::Birthdate),
        }
        let mut b = b;
        let first17: &[u8; 17] = b[..17].try_into().map_err(|_| IdError::Format)?;
        let expected = check_digit(first17);
        if upgraded {
            b[17] = expected as u8;
        } else if b[17] != expected as u8 {
            return Err(IdError::Checksum {
                expected,
                found: char::from(b[17]),
            });
        }
        Ok(ParsedId {
            id: ResidentId(b),
            upgraded_from_15: upgraded,
        })
    }

    /// Rebuild an ID that our own system validated before (e.g. decrypted from the store or
    /// received from the card registry): checks the 18-character format, that digits 7-14
    /// are a real calendar date, and the check character — but neither the province nor the
    /// date against today. No trimming, no 15-digit upgrade; a lower-case `x` is normalised.
    pub fn from_trusted(s: &str) -> Result<ResidentId, IdError> {
        let b = shape18(s).ok_or(IdError::Format)?;
        if date_of(&b[6..14]).is_none() {
            return Err(IdError::Birthdate);
        }
        let first17: &[u8; 17] = b[..17].try_into().map_err(|_| IdError::Format)?;
        let expected = check_digit(first17);
        if b[17] != expected as u8 {
            return Err(IdError::Checksum {
                expected,
                found: char::from(b[17]),
            });
        }
        Ok(ResidentId(b))
    }

    /// The check character for seventeen ASCII digits; same as the free function
    /// [`check_digit`].
    pub fn check_digit(first17: &[u8; 17]) -> char {
        check_digit(first17)
    }

    /// The full 18 characters. **For storage and encryption only**: never log or display it
    /// (use `Display` or [`ResidentId::masked`]).
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and `X` are ever stored, so this is always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 18 ASCII characters as bytes. **For storage, keys and encryption only**, like
    /// [`ResidentId::as_str`] (without its UTF-8 check).
    pub fn as_bytes(&self) -> &[u8; 18] {
        &self.0
    }

    /// The birth date of digits 7-14.
    pub fn birth_date(&self) -> NaiveDate {
        // Every constructor checks that the date is real.
        date_of(&self.0[6..14]).unwrap_or(NaiveDate::MIN)
    }

    /// Age in completed years on `date` (0 if `date` is before the birth date).
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        let b = self.birth_date();
        let mut years = date.year() - b.year();
        if (date.month(), date.day()) < (b.month(), b.day()) {
            years -= 1;
        }
        u32::try_from(years).unwrap_or(0)
    }

    /// Whether the sequence number (digit 17) is odd, i.e. the holder is registered male
    /// (GB 11643-1999 §5.3).
    pub fn is_male(&self) -> bool {
        (self.0[16] - b'0') % 2 == 1
    }

    /// The two-digit province number, e.g. `23` for 黑龙江.
    pub fn province_code(&self) -> u8 {
        digits_value(&self.0[0..2]) as u8
    }

    /// The six-digit address code (GB/T 2260 county of first registration), e.g. `230102`.
    /// Not necessarily a code that still exists.
    pub fn address_code(&self) -> &str {
        &self.as_str()[..6]
    }

    /// The masked form of DOMAIN.md §3 with the default policy: first 6, eight `*`, last 4
    /// (`230102********3745`).
    pub fn masked(&self) -> String {
        crate::mask::MaskPolicy::default().id(self.as_str())
    }
}

impl fmt::Debug for ResidentId {
    /// Masked: `ResidentId(230102********3745)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl fmt::Display for ResidentId {
    /// Masked: `230102********3745`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for ResidentId {
    /// The plain 18-character string.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResidentId {
    /// Validates like [`ResidentId::from_trusted`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ResidentId::from_trusted(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()
    }

    fn ok(s: &str) -> ResidentId {
        let p = ResidentId::parse(s, today()).expect(s);
        assert!(!p.upgraded_from_15);
        p.id
    }

    fn first17(s: &str) -> [u8; 17] {
        s.as_bytes()[..17].try_into().unwrap()
    }

    #[test]
    fn known_valid_ids() {
        // Check digits verified independently (sum of weighted digits mod 11).
        for s in [
            "11010519491231002X",
            "440524188001010014",
            "230102199003103745",
            "110101199003074477",
            "310101198001010018",
            "510104199512120025",
            "410101200001010011",
        ] {
            assert_eq!(ok(s).as_str(), s);
            assert_eq!(
                check_digit(&first17(s)),
                char::from(s.as_bytes()[17]),
                "{s}"
            );
            assert_eq!(ResidentId::from_trusted(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn check_digit_all_residues() {
        // Each residue 0..=10 maps to `1 0 X 9 8 7 6 5 4 3 2`.
        let mut seen = std::collections::HashSet::new();
        for seq in 0..200u32 {
            let body = format!("23010219900310{seq:03}");
            seen.insert(check_digit(&first17(&body)));
        }
        assert_eq!(seen.len(), 11);
    }

    #[test]
    fn lower_case_x_and_whitespace() {
        let p = ResidentId::parse(" 11010519491231002x\t", today()).unwrap();
        assert_eq!(p.id.as_str(), "11010519491231002X");
        assert_eq!(
            ResidentId::from_trusted("11010519491231002x")
                .unwrap()
                .as_str(),
            "11010519491231002X"
        );
    }

    #[test]
    fn format_errors() {
        for s in [
            "",
            "2301021990031037",
            "2301021990031037455",
            "23010219900310374A",
            "X30102199003103745",
            "２３０１０２１９９００３１０３７４５",
            "23010219900310 3745",
            "13050367040100X",
            "1305036704010",
        ] {
            assert_eq!(ResidentId::parse(s, today()), Err(IdError::Format), "{s:?}");
        }
        assert_eq!(
            ResidentId::from_trusted(" 11010519491231002X"),
            Err(IdError::Format)
        );
        assert_eq!(
            ResidentId::from_trusted("130503670401001"),
            Err(IdError::Format)
        );
    }

    #[test]
    fn checksum_error_names_both_digits() {
        let e = ResidentId::parse("230102199003103746", today()).unwrap_err();
        assert_eq!(
            e,
            IdError::Checksum {
                expected: '5',
                found: '6'
            }
        );
        assert_eq!(e.reason().as_str(), "id.checksum");
        assert_eq!(
            e.to_string(),
            "身份证号码校验位错误：应为5，实为6 (check digit should be 5, is 6)"
        );
        assert_eq!(
            ResidentId::from_trusted("11010519491231002"),
            Err(IdError::Format)
        );
        assert!(matches!(
            ResidentId::from_trusted("110105194912310021"),
            Err(IdError::Checksum {
                expected: 'X',
                found: '1'
            })
        ));
    }

    #[test]
    fn region_errors() {
        // Province 00, 10, 99 and 83 do not exist; checked before the checksum.
        for p in ["00", "10", "16", "39", "99", "83", "72"] {
            let mut body = format!("{p}010219900310374");
            body.push(check_digit(&first17(&body)));
            assert_eq!(
                ResidentId::parse(&body, today()),
                Err(IdError::Region),
                "{body}"
            );
            assert_eq!(IdError::Region.reason().as_str(), "id.region");
        }
        // Unknown county codes are fine.
        let mut body = String::from("23999919900310374");
        body.push(check_digit(&first17(&body)));
        assert!(ResidentId::parse(&body, today()).is_ok());
        // Region is checked before the checksum.
        assert_eq!(
            ResidentId::parse("990102199003103745", today()),
            Err(IdError::Region)
        );
    }

    #[test]
    fn birthdate_errors() {
        let with_check = |body: &str| {
            let mut s = body.to_owned();
            s.push(check_digit(&first17(body)));
            s
        };
        for body in [
            "23010219900230374", // 30 February
            "23010219901301374", // month 13
            "23010219900000374", // month 0
            "23010218791231374", // before 1880
            "23010220240602374", // after today
            "23010230000101374", // far future
        ] {
            let s = with_check(body);
            assert_eq!(
                ResidentId::parse(&s, today()),
                Err(IdError::Birthdate),
                "{s}"
            );
        }
        assert_eq!(IdError::Birthdate.reason().as_str(), "id.birthdate");
        // Birth on `today` and on 1880-01-01 are accepted.
        assert!(ResidentId::parse(&with_check("23010220240601374"), today()).is_ok());
        assert!(ResidentId::parse(&with_check("23010218800101374"), today()).is_ok());
        // 29 February only in leap years.
        assert!(ResidentId::parse(&with_check("23010220000229374"), today()).is_ok());
        assert_eq!(
            ResidentId::parse(&with_check("23010219000229374"), today()),
            Err(IdError::Birthdate)
        );
        // Birth date is checked before the checksum.
        assert_eq!(
            ResidentId::parse("230102199002303740", today()),
            Err(IdError::Birthdate)
        );
        // from_trusted does not compare with today but rejects unreal dates.
        assert!(ResidentId::from_trusted(&with_check("23010230000101374")).is_ok());
        assert_eq!(
            ResidentId::from_trusted(&with_check("23010219900230374")),
            Err(IdError::Birthdate)
        );
    }

    #[test]
    fn upgrade_15_digits() {
        let p = ResidentId::parse("130503670401001", today()).unwrap();
        assert!(p.upgraded_from_15);
        assert_eq!(p.id.as_str(), "130503196704010016");
        assert_eq!(
            p.id.birth_date(),
            NaiveDate::from_ymd_opt(1967, 4, 1).unwrap()
        );
        assert_eq!(
            ResidentId::parse("130503671301001", today()),
            Err(IdError::Birthdate)
        );
        assert_eq!(
            ResidentId::parse("990503670401001", today()),
            Err(IdError::Region)
        );
    }

    #[test]
    fn accessors() {
        let id = ok("230102199003103745");
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1990, 3, 10).unwrap()
        );
        assert_eq!(id.province_code(), 23);
        assert_eq!(id.address_code(), "230102");
        assert_eq!(id.age_on(NaiveDate::from_ymd_opt(2024, 3, 9).unwrap()), 33);
        assert_eq!(id.age_on(NaiveDate::from_ymd_opt(2024, 3, 10).unwrap()), 34);
        assert_eq!(id.age_on(NaiveDate::from_ymd_opt(1980, 1, 1).unwrap()), 0);
        assert!(!id.is_male()); // digit 17 is '4'
        assert!(ok("440524188001010014").is_male()); // digit 17 is '1'
    }

    #[test]
    fn masked_everywhere() {
        let id = ok("230102199003103745");
        assert_eq!(id.masked(), "230102********3745");
        assert_eq!(id.to_string(), "230102********3745");
        assert_eq!(format!("{id:?}"), "ResidentId(230102********3745)");
        let p = ResidentId::parse("230102199003103745", today()).unwrap();
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("230102199003103745"), "{dbg}");
        assert!(!dbg.contains("19900310"), "{dbg}");
    }

    #[test]
    fn serde_plain_string() {
        let id = ok("11010519491231002X");
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(j, "\"11010519491231002X\"");
        assert_eq!(serde_json::from_str::<ResidentId>(&j).unwrap(), id);
        assert!(serde_json::from_str::<ResidentId>("\"110105194912310021\"").is_err());
        // Future birth dates deserialize (no clock in the kernel).
        let mut future = String::from("23010230000101374");
        future.push(check_digit(&first17(&future)));
        assert!(serde_json::from_str::<ResidentId>(&format!("\"{future}\"")).is_ok());
    }

    /// A valid province code.
    fn province() -> impl Strategy<Value = u8> {
        prop::sample::select(vec![
            11u8, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
            50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
        ])
    }

    /// A valid 17-digit body: province, random county, date 1880..=2024-06-01, sequence.
    fn body() -> impl Strategy<Value = String> {
        (province(), 0u32..10_000, 0i64..52_000, 0u32..1000).prop_map(|(p, c, d, seq)| {
            let date = NaiveDate::from_ymd_opt(1880, 1, 1).unwrap() + chrono::Duration::days(d);
            let date = date.min(today());
            format!("{p:02}{c:04}{}{seq:03}", date.format("%Y%m%d"))
        })
    }

    proptest! {
        #[test]
        fn appended_check_digit_always_parses(b in body()) {
            let s = format!("{b}{}", check_digit(&first17(&b)));
            let p = ResidentId::parse(&s, today()).unwrap();
            prop_assert_eq!(p.id.as_str(), s.as_str());
            prop_assert!(!p.upgraded_from_15);
            prop_assert_eq!(ResidentId::from_trusted(&s).unwrap(), p.id);
        }

        #[test]
        fn any_single_digit_change_fails(b in body(), pos in 0usize..18, delta in 1usize..11) {
            let s = format!("{b}{}", check_digit(&first17(&b)));
            let mut bytes = s.clone().into_bytes();
            let c = bytes[pos];
            let alphabet: &[u8] = if pos == 17 { b"0123456789X" } else { b"0123456789" };
            let idx = alphabet.iter().position(|a| *a == c).unwrap();
            bytes[pos] = alphabet[(idx + delta) % alphabet.len()];
            prop_assume!(bytes[pos] != c);
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(ResidentId::parse(&changed, today()).is_err(), "{} accepted", changed);
            prop_assert!(ResidentId::from_trusted(&changed).is_err());
        }

        #[test]
        fn upgrade_is_valid_and_nineteenth_century(
            p in province(), c in 0u32..10_000, d in 0i64..36_500, seq in 0u32..1000
        ) {
            let date = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(d);
            let s15 = format!("{p:02}{c:04}{}{seq:03}", date.format("%y%m%d"));
            let parsed = ResidentId::parse(&s15, today()).unwrap();
            prop_assert!(parsed.upgraded_from_15);
            prop_assert_eq!(parsed.id.as_str().len(), 18);
            prop_assert_eq!(parsed.id.birth_date().year() / 100, 19);
            prop_assert_eq!(parsed.id.birth_date(), date);
            let again = ResidentId::parse(parsed.id.as_str(), today()).unwrap();
            prop_assert!(!again.upgraded_from_15);
            prop_assert_eq!(again.id, parsed.id);
        }

        #[test]
        fn debug_and_display_never_show_the_middle(b in body()) {
            let s = format!("{b}{}", check_digit(&first17(&b)));
            let id = ResidentId::from_trusted(&s).unwrap();
            let middle = &s[6..14];
            let dbg = format!("{:?}", id);
            prop_assert!(!dbg.contains(middle));
            prop_assert!(!id.to_string().contains(middle));
            prop_assert_eq!(id.masked().chars().count(), 18);
        }
    }
}
