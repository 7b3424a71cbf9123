//! Query-string parameters, parsed into typed values before any query is
//! built: an unknown key, a malformed date, a huge range or an unknown brand
//! is a 400 with a message, never text spliced into a plan.

use chrono::NaiveDate;

use crate::error::Failure;

/// Longest date range any page accepts (a year and a day: a leap year fits).
pub const MAX_DAYS: i64 = 366;
/// Longest range of an hourly series (one point per hour: ~1,500 points).
pub const MAX_HOURLY_DAYS: i64 = 62;
/// Most brands one filter may name.
pub const MAX_BRANDS: usize = 20;
/// Longest query string accepted.
const MAX_QUERY_BYTES: usize = 4096;

// Semantics: docs/semantics.md#price-bands
pub const PRICE_BANDS: [&str; 4] = ["<10", "10-30", "30-60", "60_plus"];

/// The decoded `key=value` pairs of a query string, every key one the
/// endpoint knows.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Self, Failure> {
        let query = query.unwrap_or("");
        if query.len() > MAX_QUERY_BYTES {
            return Err(Failure::bad(format!("the query string is over {MAX_QUERY_BYTES} bytes")));
        }
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        if let Some((key, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(Failure::bad(format!("unknown parameter {key:?} (this page takes: {})", allowed.join(", "))));
        }
        Ok(Self(pairs))
    }

    /// The value of a key given at most once; an empty value counts as absent.
    pub fn one(&self, key: &str) -> Result<Option<&str>, Failure> {
        let mut values = self.all(key);
        match (values.next(), values.next()) {
            (_, Some(_)) => Err(Failure::bad(format!("parameter {key:?} is given more than once"))),
            (value, None) => Ok(value.filter(|v| !v.is_empty())),
        }
    }

    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// An inclusive range of UTC dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Range {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Range {
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The period of equal length just before this one (for deltas).
    pub fn previous(&self) -> Range {
        let days = chrono::Duration::days(self.days());
        Range { from: self.from - days, to: self.to - days }
    }

    /// Every date of the range as `YYYY-MM-DD` (the tables' partition values).
    pub fn dates(&self) -> Vec<String> {
        self.from.iter_days().take_while(|d| *d <= self.to).map(|d| d.to_string()).collect()
    }

    /// The range with each end moved out by `days`.
    pub fn widened(&self, days: i64) -> Range {
        let by = chrono::Duration::days(days);
        Range { from: self.from - by, to: self.to + by }
    }
}

fn date(key: &str, text: &str) -> Result<NaiveDate, Failure> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| (1970..=2200).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| Failure::bad(format!("{key}={text:?} is not a date like 2019-10-15 (UTC, years 1970–2200)")))
}

/// `from`/`to` (inclusive), by default the last `default_days` days up to
/// `last` (the newest date of the data).
pub fn range(p: &Params, last: NaiveDate, default_days: i64, max_days: i64) -> Result<Range, Failure> {
    let to = p.one("to")?.map(|t| date("to", t)).transpose()?;
    let from = p.one("from")?.map(|t| date("from", t)).transpose()?;
    let to = to.unwrap_or(last);
    let from = from.unwrap_or(to - chrono::Duration::days(default_days - 1));
    let range = Range { from, to };
    if from > to {
        return Err(Failure::bad(format!("from={from} is after to={to}")));
    }
    if range.days() > max_days {
        return Err(Failure::bad(format!("{from} to {to} is {} days; at most {max_days} here", range.days())));
    }
    Ok(range)
}

/// Hourly or daily points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    pub fn parse(p: &Params) -> Result<Grain, Failure> {
        match p.one("grain")? {
            None | Some("day") => Ok(Grain::Day),
            Some("hour") => Ok(Grain::Hour),
            Some(other) => Err(Failure::bad(format!("grain={other:?}: use hour or day"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }
}

/// The funnel explorer's filters, each checked against the tables' values.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Filters {
    pub brands: Vec<String>,
    pub category: Option<String>,
    pub band: Option<&'static str>,
}

impl Filters {
    /// `brand` (repeatable), `category`, `band`; `known` says which brand and
    /// category names exist.
    pub fn parse(p: &Params, known: &crate::data::Known) -> Result<Filters, Failure> {
        let mut brands: Vec<String> = Vec::new();
        for brand in p.all("brand").filter(|b| !b.is_empty()) {
            if !known.brands.contains(brand) {
                return Err(Failure::bad(format!("unknown brand {brand:?} (brands are lower case, as in the tables)")));
            }
            if !brands.iter().any(|b| b == brand) {
                brands.push(brand.to_string());
            }
        }
        if brands.len() > MAX_BRANDS {
            return Err(Failure::bad(format!("{} brands given; at most {MAX_BRANDS}", brands.len())));
        }
        let category = p.one("category")?.map(str::to_string);
        if let Some(c) = &category
            && !known.categories.contains(c)
        {
            return Err(Failure::bad(format!("unknown category root {c:?}")));
        }
        let band = match p.one("band")? {
            None => None,
            Some(b) => Some(
                *PRICE_BANDS
                    .iter()
                    .find(|x| **x == b)
                    .ok_or_else(|| Failure::bad(format!("band={b:?}: use one of {}", PRICE_BANDS.join(", "))))?,
            ),
        };
        Ok(Filters { brands, category, band })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(Some(q), &["from", "to", "grain"]).unwrap()
    }

    #[test]
    fn ranges() {
        let last = NaiveDate::from_ymd_opt(2019, 10, 31).unwrap();
        let r = range(&params(""), last, 7, MAX_DAYS).unwrap();
        assert_eq!((r.from.to_string(), r.days()), ("2019-10-25".to_string(), 7));
        assert_eq!(r.previous().to.to_string(), "2019-10-24");
        assert!(range(&params("from=2019-13-01"), last, 7, MAX_DAYS).is_err());
        assert!(range(&params("from=2019-11-01&to=2019-10-01"), last, 7, MAX_DAYS).is_err());
        assert!(range(&params("from=1990-01-01"), last, 7, MAX_DAYS).is_err());
        assert!(Params::parse(Some("x=1"), &["from"]).is_err());
        assert!(params("to=2019-10-01&to=2019-10-02").one("to").is_err());
    }
}
