//! Mainland mobile phone numbers (手机号码), a roster column of 黑财监〔2021〕30号 二(三)二.
//! A malformed number is the warning `phone.format` (DOMAIN.md §3): the line is still paid.

use crate::reason::ReasonCode;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a text is not a mainland mobile number (reason code `phone.format`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Not `1[3-9]` followed by nine digits after removing separators and the country code.
    #[error(
        "手机号码格式错误：应为以13至19开头的11位数字 \
         (mobile number must be 11 digits starting with 13 to 19)"
    )]
    Format,
}

impl PhoneError {
    /// The reason code: `phone.format`.
    pub fn reason(&self) -> ReasonCode {
        match self {
            PhoneError::Format => ReasonCode::PhoneFormat,
        }
    }
}

/// A mainland mobile number matching `^1[3-9]\d{9}$` (DOMAIN.md §3).
///
/// `Debug` and `Display` are masked (`138****8000`); [`Phone::as_str`] gives the full
/// number. Serde uses the plain 11 digits (deserialising validates like [`Phone::parse`]).
///
/// Held inline as its 11 ASCII digits (no heap allocation per roster line).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone([u8; 11]);

impl Phone {
    /// Parse a phone cell: whitespace (ASCII and full-width) and `-` are removed anywhere,
    /// then a leading `+86`, `0086` or `86` country code (the last only when 13 digits remain)
    /// is dropped; the rest must match `^1[3-9]\d{9}$`.
    pub fn parse(s: &str) -> Result<Phone, PhoneError> {
        // Most cells are the bare 11 digits: checked without decoding a character.
        if let Ok(b) = <[u8; 11]>::try_from(s.as_bytes())
            && b.iter().fold(true, |ok, d| ok & d.is_ascii_digit())
        {
            return if b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) {
                Ok(Phone(b))
            } else {
                Err(PhoneError::Format)
            };
        }
        // Otherwise copy only when there is something to remove.
        let compact: std::borrow::Cow<'_, str> = if s.chars().any(|c| c.is_whitespace() || c == '-')
        {
            s.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect::<String>()
                .into()
        } else {
            s.into()
        };
        let digits = if let Some(rest) = compact.strip_prefix("+86") {
            rest
        } else if let Some(rest) = compact.strip_prefix("0086") {
            rest
        } else if compact.len() == 13 {
            compact.strip_prefix("86").unwrap_or(&compact)
        } else {
            &compact
        };
        match <[u8; 11]>::try_from(digits.as_bytes()) {
            Ok(b)
                if b[0] == b'1'
                    && (b'3'..=b'9').contains(&b[1])
                    && b.iter().all(u8::is_ascii_digit) =>
            {
                Ok(Phone(b))
            }
            _ => Err(PhoneError::Format),
        }
    }

    /// The full 11 digits. For storage and for contacting the beneficiary; never log it.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored, so this is always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The masked form of DOMAIN.md §3 with the default policy: first 3, `****`, last 4
    /// (`138****8000`).
    pub fn masked(&self) -> String {
        crate::mask::MaskPolicy::default().phone(self.as_str())
    }
}

impl fmt::Debug for Phone {
    /// Masked: `Phone(138****8000)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl fmt::Display for Phone {
    /// Masked: `138****8000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for Phone {
    /// The plain 11 digits.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Phone {
    /// Validates like [`Phone::parse`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Phone::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises() {
        for s in [
            "13800138000",
            " 138 0013 8000 ",
            "138-0013-8000",
            "+86 138 0013 8000",
            "+8613800138000",
            "8613800138000",
            "008613800138000",
            "86-138-0013-8000",
        ] {
            assert_eq!(Phone::parse(s).unwrap().as_str(), "13800138000", "{s:?}");
        }
        for p in ["13012345678", "19912345678", "16612345678"] {
            assert!(Phone::parse(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "1380013800",
            "138001380001",
            "12800138000",
            "10800138000",
            "23800138000",
            "0451-82345678",
            "1380013800a",
            "+85213800138000",
            "８６13800138000",
            "(+86)13800138000",
        ] {
            assert_eq!(Phone::parse(s), Err(PhoneError::Format), "{s:?}");
        }
        assert_eq!(PhoneError::Format.reason().as_str(), "phone.format");
    }

    #[test]
    fn masked_everywhere() {
        let p = Phone::parse("13800138000").unwrap();
        assert_eq!(p.masked(), "138****8000");
        assert_eq!(p.to_string(), "138****8000");
        assert_eq!(format!("{p:?}"), "Phone(138****8000)");
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(j, "\"13800138000\"");
        assert_eq!(serde_json::from_str::<Phone>(&j).unwrap(), p);
    }

    proptest! {
        #[test]
        fn masking_preserves_shape(s in "1[3-9][0-9]{9}") {
            let p = Phone::parse(&s).unwrap();
            let m = p.masked();
            prop_assert_eq!(m.chars().count(), 11);
            prop_assert_eq!(&m[..3], &s[..3]);
            prop_assert_eq!(&m[3..7], "****");
            prop_assert_eq!(&m[7..], &s[7..]);
        }
    }
}
