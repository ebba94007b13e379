//! Scalar values of the schema with their own text forms: durations,
//! secrets (never printed), the failback rule.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written as `"500ms"`, `"5s"`, `"2m"` or `"1h"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn ms(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
    pub fn as_ms(self) -> u64 {
        self.0.as_millis() as u64
    }
    pub fn parse(text: &str) -> Option<Dur> {
        let text = text.trim();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().ok()?;
        let scale = match unit.trim() {
            "ms" => 1.0,
            "s" => 1000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        let ms = number * scale;
        (ms.is_finite() && ms >= 0.0).then(|| Dur::ms(ms.round() as u64))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.as_ms();
        if ms % 60_000 == 0 && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Dur::parse(&text).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid duration {text:?}: expected a number and a unit, like \"500ms\", \"5s\", \"2m\" or \"1h\""
            ))
        })
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// The HA token. It is never printed: `Debug` and serialization redact it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failback {
    Never,
    Immediately,
    After(Dur),
}

impl<'de> Deserialize<'de> for Failback {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "never" => Ok(Failback::Never),
            "immediately" => Ok(Failback::Immediately),
            other => other
                .strip_prefix("after ")
                .and_then(Dur::parse)
                .map(Failback::After)
                .ok_or_else(|| {
                    de::Error::custom(format!(
                        "invalid failback {text:?}: expected \"never\", \"immediately\" or \"after DURATION\" (e.g. \"after 5m\")"
                    ))
                }),
        }
    }
}

impl Serialize for Failback {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Failback::Never => s.serialize_str("never"),
            Failback::Immediately => s.serialize_str("immediately"),
            Failback::After(d) => s.serialize_str(&format!("after {d}")),
        }
    }
}
