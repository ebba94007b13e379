//! Scalar values of the schema with their own text forms: durations,
//! secrets (never printed), the failback rule.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration as humantime writes it (`"500ms"`, `"5s"`, `"2m"`,
/// `"1h30m"`, `"1h 30m"`), or a decimal number of a unit (`"10.045s"`, as
/// scenario files stamp events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn ms(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
    pub fn as_ms(self) -> u64 {
        // `parse` refuses what does not fit.
        self.0.as_millis() as u64
    }
    /// The duration `text` names, or what is wrong with it.
    pub fn parse(text: &str) -> Result<Dur, String> {
        let text = text.trim();
        let duration = match humantime::parse_duration(text) {
            Ok(d) => d,
            Err(e) => decimal(text).ok_or_else(|| e.to_string())?,
        };
        if duration.as_millis() > u128::from(u64::MAX) {
            return Err("too long".into());
        }
        Ok(Dur(duration))
    }
}

/// `"10.045s"`: a decimal number and one unit (humantime takes whole
/// numbers only).
fn decimal(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number * scale).ok()
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
        Dur::parse(&text).map_err(|why| {
            de::Error::custom(format!(
                "invalid duration {text:?} ({why}): expected numbers with units, like \"500ms\", \"5s\", \"2m\" or \"1h30m\""
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
                .and_then(|d| Dur::parse(d).ok())
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
