//! Errors as a user reads them: one line that says what failed, where, and
//! what to do. The full chain (DataFusion's nested wrappers, Ballista's job
//! messages) stays available with `-v` or `RUST_LOG`.

/// Wrappers DataFusion, Arrow and Ballista put around a message; they say
/// nothing to a user.
const NOISE_PREFIXES: [&str; 12] = [
    "External error: ",
    "Execution error: ",
    "Arrow error: ",
    "Object Store error: ",
    "IO error: ",
    "Internal error: ",
    "DataFusion error: ",
    "ExternalError(",
    "DataFusionError(",
    "Shared(",
    "External(",
    "Execution(",
];

/// What to do, for the failures a user meets most (matched on the lower-cased text).
const HINTS: [(&[&str], &str); 5] = [
    (
        &["no space left on device"],
        "the disk is full: free space where the lake (or the temp/spill folder) lives and run again; no table was replaced",
    ),
    (
        &["address already in use", "addrinuse"],
        "a port is taken: stop the process holding it (e.g. an earlier cluster: deploy/down.sh) or choose another port",
    ),
    (
        &[
            "metadata.google.internal",
            "169.254.169.254",
            "application default credentials",
            "error performing token request",
        ],
        "no Google credentials for gs://: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run `gcloud auth application-default login`, or run on a VM with a service account",
    ),
    (
        &["permission denied (os error 13)"],
        "permission denied: check that this user may write the lake folder (or the file named above)",
    ),
    (
        &["/tables/", "not found"],
        "a file of a lake table disappeared while this run read it: another run replaced the table, or `lake vacuum --force` removed it; run again",
    ),
];

/// Longest line printed before the rest is left to `-v`.
const MAX_LINE: usize = 600;

/// The error as one line: its contexts and root cause without repetitions
/// or wrappers, then a hint when the cause is a known one.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let causes = std::iter::successors(Some(error), |cause| cause.source());
    for cause in causes {
        let text = clean(&cause.to_string());
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue; // a cause repeated by the message above it
        }
        parts.push(text);
    }
    let mut line = parts.join(": ");
    if line.chars().count() > MAX_LINE {
        line = line.chars().take(MAX_LINE).collect::<String>() + " … (run with -v for the whole error)";
    }
    match hint(&line) {
        Some(hint) => format!("{line}\n  → {hint}"),
        None => line,
    }
}

/// The hint for a message, if it shows a known cause.
pub fn hint(message: &str) -> Option<&'static str> {
    let lower = message.to_lowercase();
    HINTS.iter().find(|(needles, _)| matches_all(&lower, needles)).map(|(_, hint)| *hint)
}

/// A hint's needles: all of them for the table-file case (two facts), any one otherwise.
fn matches_all(lower: &str, needles: &[&str]) -> bool {
    if needles == ["/tables/", "not found"] {
        needles.iter().all(|n| lower.contains(n))
    } else {
        needles.iter().any(|n| lower.contains(n))
    }
}

/// One message without DataFusion's wrappers, Debug quoting or line breaks.
fn clean(message: &str) -> String {
    let mut text = message.replace("\ncaused by\n", ": ").replace('\n', " ");
    let mut opened = 0; // Debug wrappers removed, e.g. `Shared(`: as many `)` close them
    for prefix in NOISE_PREFIXES {
        while let Some(at) = text.find(prefix) {
            text.replace_range(at..at + prefix.len(), "");
            opened += usize::from(prefix.ends_with('('));
        }
    }
    let mut text = text.trim();
    for _ in 0..opened {
        text = text.strip_suffix(')').unwrap_or(text).trim_end();
    }
    collapse_repeats(text.trim_matches('"').trim())
}

/// `a: b: b` → `a: b` (Ballista repeats a task's error in the job's).
fn collapse_repeats(text: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::error::DataFusionError;

    #[test]
    fn nested_wrappers_and_repeats_become_one_line() {
        let inner = DataFusionError::Execution("file:///raw/x.csv: the header lacks column(s) price".into());
        let shared = DataFusionError::Shared(std::sync::Arc::new(DataFusionError::External(Box::new(inner))));
        let error = anyhow::Error::new(shared).context("writing bronze_events").context("stage 01");
        let line = one_line(error.as_ref());
        assert_eq!(line, "stage 01: writing bronze_events: file:///raw/x.csv: the header lacks column(s) price");
    }

    #[test]
    fn known_causes_get_what_to_do() {
        let full = anyhow::Error::new(std::io::Error::other("No space left on device (os error 28)"))
            .context("writing silver_events");
        let line = one_line(full.as_ref());
        assert!(line.starts_with("writing silver_events: No space left on device"), "{line}");
        assert!(line.contains("→ the disk is full"), "{line}");
        assert_eq!(line.lines().count(), 2);
        let gone = anyhow::anyhow!("Object at location /lake/tables/silver_events/run-1/x.parquet not found");
        assert!(one_line(gone.as_ref()).contains("another run replaced the table"));
        assert_eq!(hint("a plain failure"), None);
    }

    #[test]
    fn a_huge_message_is_cut() {
        let error = anyhow::anyhow!("{}", "x".repeat(5000));
        assert!(one_line(error.as_ref()).len() < MAX_LINE + 100);
    }
}
