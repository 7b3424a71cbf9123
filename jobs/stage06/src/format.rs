//! Number formatting shared by the terminal and HTML reports.

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Money with two decimals and thousands separators.
pub fn money(x: f64) -> String {
    let cents = (x * 100.0).round() as i64;
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", thousands((cents.abs() / 100) as u64), cents.abs() % 100)
}

/// A percentage (already ×100) or `–`.
pub fn pct(x: Option<f64>) -> String {
    x.map_or("–".to_string(), |v| format!("{v:.2}%"))
}

/// A rate (0..) shown as a percentage, or `–`.
pub fn rate_pct(x: Option<f64>) -> String {
    pct(x.map(|v| 100.0 * v))
}

/// A group name, `(none)` for the null group.
pub fn name(x: &Option<String>) -> String {
    x.clone().unwrap_or_else(|| "(none)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(8_738_120), "8,738,120");
        assert_eq!(money(1234.5), "1,234.50");
        assert_eq!(money(-0.25), "-0.25");
        assert_eq!(pct(None), "–");
        assert_eq!(rate_pct(Some(0.1234)), "12.34%");
    }
}
