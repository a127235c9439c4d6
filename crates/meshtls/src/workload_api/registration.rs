//! Registration entries: which callers get which SPIFFE IDs.
//!
//! An entry maps a set of selectors to a SPIFFE ID (with an optional hint). A caller gets every
//! entry whose selectors are all among its attested selectors (SPIRE's rule), in the order of
//! the file; the first is its default identity. Read from YAML or JSON (through
//! [`crate::manifest`]):
//!
//! ```yaml
//! entries:
//!   - spiffe_id: spiffe://example.org/web
//!     selectors: ["unix:uid:1000"]
//!     hint: web
//!   - spiffe_id: spiffe://example.org/admin
//!     selectors: ["unix:uid:1000", "unix:path:/usr/local/bin/admin"]
//! ```
//!
//! Selectors: `unix:uid:<n>`, `unix:gid:<n>`, `unix:supplementary_gid:<n>`,
//! `unix:path:<absolute path>`.

use std::collections::HashSet;

use serde::Deserialize;

use crate::error::{Error, WorkloadApiError, quote};
use crate::identity::{SpiffeId, TrustDomain};

/// The longest hint accepted (the standard: servers SHOULD NOT support longer ones).
pub const MAX_HINT_BYTES: usize = 1024;
/// The most entries one registration holds.
pub const MAX_ENTRIES: usize = 10_000;

/// One registration entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    spiffe_id: SpiffeId,
    selectors: Vec<String>,
    hint: String,
}

impl Entry {
    /// An entry giving `spiffe_id` to callers that have every one of `selectors`.
    pub fn new<I, S>(spiffe_id: SpiffeId, selectors: I) -> Result<Entry, WorkloadApiError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let selectors: Vec<String> = selectors.into_iter().map(Into::into).collect();
        let name = spiffe_id.as_str().to_owned();
        if selectors.is_empty() {
            return Err(reg_err(
                &name,
                "selectors",
                "[]",
                "an entry needs at least one selector",
            ));
        }
        for s in &selectors {
            check_selector(s).map_err(|rule| reg_err(&name, "selectors", s, rule))?;
        }
        Ok(Entry {
            spiffe_id,
            selectors,
            hint: String::new(),
        })
    }

    /// The entry with a hint (at most [`MAX_HINT_BYTES`] bytes).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Result<Entry, WorkloadApiError> {
        let hint = hint.into();
        if hint.len() > MAX_HINT_BYTES {
            return Err(reg_err(
                self.spiffe_id.as_str(),
                "hint",
                &hint,
                &format!("longer than {MAX_HINT_BYTES} bytes"),
            ));
        }
        self.hint = hint;
        Ok(self)
    }

    /// The SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The selectors, all of which a caller must have.
    pub fn selectors(&self) -> &[String] {
        &self.selectors
    }

    /// The hint (empty when none).
    pub fn hint(&self) -> &str {
        &self.hint
    }

    fn matches(&self, caller: &HashSet<&str>) -> bool {
        self.selectors.iter().all(|s| caller.contains(s.as_str()))
    }
}

/// An ordered set of registration entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registration {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    entries: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    spiffe_id: String,
    selectors: Vec<String>,
    #[serde(default)]
    hint: String,
}

impl Registration {
    /// A registration from entries (at most [`MAX_ENTRIES`]).
    pub fn new(entries: Vec<Entry>) -> Result<Registration, WorkloadApiError> {
        if entries.len() > MAX_ENTRIES {
            return Err(reg_err(
                "(all)",
                "entries",
                &entries.len().to_string(),
                &format!("more than {MAX_ENTRIES} entries"),
            ));
        }
        Ok(Registration { entries })
    }

    /// Reads a registration from YAML or JSON text (`entries:` list; see the module docs).
    pub fn from_text(text: &str) -> Result<Registration, Error> {
        let doc: FileDoc = crate::manifest::parse(text, "workload api registration")?;
        let mut entries = Vec::with_capacity(doc.entries.len());
        for (i, e) in doc.entries.into_iter().enumerate() {
            let id = SpiffeId::new(&e.spiffe_id).map_err(|err| {
                reg_err(
                    &format!("#{i}"),
                    "spiffe_id",
                    &e.spiffe_id,
                    &err.to_string(),
                )
            })?;
            let entry = Entry::new(id, e.selectors)
                .and_then(|en| en.with_hint(e.hint))
                .map_err(|err| match err {
                    WorkloadApiError::Registration {
                        field, value, rule, ..
                    } => reg_err(&format!("#{i}"), field, &value, &rule),
                    other => other,
                })?;
            entries.push(entry);
        }
        Ok(Registration::new(entries)?)
    }

    /// Reads a registration file.
    pub fn load(path: &std::path::Path) -> Result<Registration, Error> {
        let text = crate::x509::fs::read_text(path)?;
        Registration::from_text(&text)
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Refuses entries outside `trust_domains` (the CA can only issue in its own).
    pub(crate) fn check_trust_domains(
        &self,
        allowed: &[&TrustDomain],
    ) -> Result<(), WorkloadApiError> {
        for (i, e) in self.entries.iter().enumerate() {
            let td = e.spiffe_id.trust_domain_name();
            if !allowed.iter().any(|a| a.as_str() == td) {
                return Err(reg_err(
                    &format!("#{i}"),
                    "spiffe_id",
                    e.spiffe_id.as_str(),
                    &format!(
                        "not in the trust domain of the server's ca ({})",
                        allowed
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The entries a caller with `selectors` gets, in order; of entries with the same hint
    /// only the first is kept (hints are unique per response).
    pub fn entries_for(&self, selectors: &[String]) -> Vec<&Entry> {
        let have: HashSet<&str> = selectors.iter().map(String::as_str).collect();
        let mut hints = HashSet::new();
        let mut ids = HashSet::new();
        self.entries
            .iter()
            .filter(|e| e.matches(&have))
            .filter(|e| ids.insert(e.spiffe_id.as_str()))
            .filter(|e| e.hint.is_empty() || hints.insert(e.hint.as_str()))
            .collect()
    }
}

fn check_selector(s: &str) -> Result<(), &'static str> {
    let Some(rest) = s.strip_prefix("unix:") else {
        return Err(
            "only unix selectors are supported (unix:uid:, unix:gid:, unix:supplementary_gid:, unix:path:)",
        );
    };
    let (kind, value) = rest
        .split_once(':')
        .ok_or("a selector is <type>:<kind>:<value>")?;
    match kind {
        "uid" | "gid" | "supplementary_gid" => value
            .parse::<u32>()
            .map(|_| ())
            .map_err(|_| "the value must be a decimal number"),
        "path" if value.starts_with('/') => Ok(()),
        "path" => Err("the path must be absolute"),
        _ => {
            Err("unknown unix selector (unix:uid:, unix:gid:, unix:supplementary_gid:, unix:path:)")
        }
    }
}

fn reg_err(entry: &str, field: &'static str, value: &str, rule: &str) -> WorkloadApiError {
    WorkloadApiError::Registration {
        entry: entry.to_owned(),
        field,
        value: quote(value),
        rule: rule.to_owned(),
    }
}
