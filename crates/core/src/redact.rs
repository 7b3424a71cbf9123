//! Secrets kept out of every printed line: a webhook's path (Slack puts its
//! token there), `user:password@` and query values (`?token=`) of any URL,
//! Kafka passwords.
//!
//! Other crates' errors and log lines embed URLs we do not format ourselves
//! (reqwest: "error sending request for url (…)"), so redacting where we print
//! a URL is not enough: secrets are registered once, process-wide, and
//! [`scrub`] removes them from any text before it is printed (the final
//! error, retry notes, every log record).

use std::sync::RwLock;

/// Registered secrets: (text to find, replacement), longest first.
static SECRETS: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Shorter parts are not searched for: they would blank ordinary words.
const MIN_SECRET_LEN: usize = 4;

/// A URL for printing: `scheme://host[:port]`, plus `/…` when a path, query or
/// fragment was left out; credentials never. Also for text that is not a URL.
pub fn redact_url(text: &str) -> String {
    let (scheme, rest) = split_scheme(text);
    let (authority, tail) = split_authority(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let hidden = if matches!(tail, "" | "/") { "" } else { "/…" };
    format!("{scheme}{host}{hidden}")
}

/// Registers the credentials of a URL (`user:password@`, query values,
/// fragment) for [`scrub`]; its path stays printable (a lake's folder).
pub fn register_url(text: &str) {
    register_url_parts(text, false);
}

/// Registers a URL whose whole path is secret too (a webhook): the URL is
/// then printed as [`redact_url`] shows it, its parts as `…`.
pub fn register_secret_url(text: &str) {
    register_url_parts(text, true);
}

/// Registers a secret value (a password setting) for [`scrub`].
pub fn register_secret(value: &str) {
    add([(value.to_string(), "…".to_string())]);
}

/// `text` without any registered secret.
pub fn scrub(text: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut text = text.to_string();
    for (secret, replacement) in secrets.iter() {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), replacement);
        }
    }
    text
}

fn register_url_parts(text: &str, secret_path: bool) {
    // reqwest prints the URL as the url crate normalises it (e.g. percent-encoded).
    let normalised = url::Url::parse(text).map(|u| u.to_string()).ok();
    let mut found = Vec::new();
    for form in std::iter::once(text).chain(normalised.as_deref()) {
        let parts = url_secrets(form, secret_path);
        // A whole webhook reads better as its endpoint than as blanks.
        if secret_path && !parts.is_empty() {
            found.push((form.to_string(), redact_url(form)));
        }
        found.extend(parts.into_iter().map(|p| {
            let replacement = if p.starts_with('/') { "/…" } else { "…" };
            (p, replacement.to_string())
        }));
    }
    add(found);
}

/// The secret parts of a URL, as they appear in its text.
fn url_secrets(text: &str, secret_path: bool) -> Vec<String> {
    let (_, rest) = split_scheme(text);
    let (authority, tail) = split_authority(rest);
    let mut parts = Vec::new();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        parts.push(userinfo.to_string());
        parts.extend(userinfo.split(':').map(str::to_string));
    }
    let (path, rest) = tail.split_at(tail.find(['?', '#']).unwrap_or(tail.len()));
    let (query, fragment) = rest.split_at(rest.find('#').unwrap_or(rest.len()));
    if secret_path && !matches!(path, "" | "/") {
        parts.push(tail.to_string());
        parts.push(path.to_string());
        // Token-like segments (Slack's T…/B…/token, ids, GUIDs) also when printed alone.
        parts.extend(
            path.split('/').filter(|s| s.len() >= 16 || s.contains(|c: char| c.is_ascii_digit())).map(str::to_string),
        );
    }
    if let Some(query) = query.strip_prefix('?') {
        parts.push(query.to_string());
        parts.extend(query.split('&').filter_map(|pair| pair.split_once('=')).map(|(_, value)| value.to_string()));
    }
    if let Some(fragment) = fragment.strip_prefix('#') {
        parts.push(fragment.to_string());
    }
    parts.retain(|p| p.len() >= MIN_SECRET_LEN);
    parts
}

fn add(found: impl IntoIterator<Item = (String, String)>) {
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for (secret, replacement) in found {
        if secret.len() >= MIN_SECRET_LEN && !secrets.iter().any(|(s, _)| *s == secret) {
            secrets.push((secret, replacement));
        }
    }
    // Longest first: a whole URL before its parts, so it is shown redacted, not blanked.
    secrets.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
}

/// (`scheme://` or "", the rest); a scheme is letters, digits, `+-.`.
fn split_scheme(text: &str) -> (&str, &str) {
    match text.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (&text[..scheme.len() + 3], rest)
        }
        _ => ("", text),
    }
}

/// (authority, the path and everything after it).
fn split_authority(rest: &str) -> (&str, &str) {
    rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLACK: &str = "https://hooks.slack.com/services/T0AAA1111/B0BBB2222/xoxTokenValue123?x=1";

    #[test]
    fn a_url_is_printed_as_its_endpoint() {
        assert_eq!(redact_url(SLACK), "https://hooks.slack.com/…");
        assert_eq!(redact_url("http://me:pw@127.0.0.1:8080/a?token=t"), "http://127.0.0.1:8080/…");
        assert_eq!(redact_url("df://10.0.0.2:50050"), "df://10.0.0.2:50050");
        assert_eq!(redact_url("https://host/"), "https://host");
        assert_eq!(redact_url("me:pw@host/services/T1/B1/tok"), "host/…");
        assert_eq!(redact_url("host/path?u=http://x"), "host/…");
    }

    #[test]
    fn registered_secrets_are_scrubbed_from_any_text() {
        register_secret_url("http://hookuser:hunter2pass@127.0.0.1:9/services/T0AAA1111/B0BBB2222/xoxTok?token=qTok1");
        register_url("gs://bucket/lake2024/?sig=Signature99");
        register_secret("kafkaPassw0rd");
        let text = "error sending request for url (http://127.0.0.1:9/services/T0AAA1111/B0BBB2222/xoxTok?token=qTok1): \
                    no hook at /services/T0AAA1111/B0BBB2222/xoxTok?token=qTok1, user hookuser:hunter2pass, \
                    token qTok1, id B0BBB2222, reading gs://bucket/lake2024/?sig=Signature99 with kafkaPassw0rd";
        let scrubbed = scrub(text);
        for secret in
            ["hookuser", "hunter2pass", "T0AAA1111", "B0BBB2222", "xoxTok", "qTok1", "Signature99", "kafkaPassw0rd"]
        {
            assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
        }
        assert!(scrubbed.contains("(http://127.0.0.1:9/…)"), "{scrubbed}");
        assert!(scrubbed.contains("no hook at /…,") && scrubbed.contains("gs://bucket/lake2024/"), "{scrubbed}");
    }
}
