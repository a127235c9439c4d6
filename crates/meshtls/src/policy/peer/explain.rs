//! `PolicySet::explain`: the same decision as `resolve`, reached by walking the candidates
//! the way istiod does, with one line per policy considered.

use super::model::{MtlsMode, format_timestamp};
use super::set::{Decision, Level, PolicySet, Stored};
use crate::policy::common::Labels;

impl PolicySet {
    /// The effective mode, like [`PolicySet::resolve`], with an explanation: which policies
    /// were considered and why each was used, overridden or ignored. This is the offline
    /// answer to "why is my pod STRICT?".
    ///
    /// It walks the candidates in the workload's namespace and the root namespace one by one
    /// (istiod's `getConfigsForWorkload` and `ComposePeerAuthentication`) instead of using the
    /// index, so it also cross-checks [`PolicySet::resolve`].
    pub fn explain<L: Labels + ?Sized>(
        &self,
        namespace: &str,
        labels: &L,
        port: Option<u16>,
    ) -> Decision {
        let root = self.root_namespace();
        let in_root = namespace == root;
        let mut lines = Vec::new();
        let show = |i: u32| self.policies.get(i as usize);

        // Mesh level: the root namespace's oldest namespace-wide policy; selectors there are
        // ignored even when they match.
        let mut mesh: Option<u32> = None;
        let mut ignored = Vec::new();
        for &i in self.members_of(root) {
            let Some(p) = show(i) else { continue };
            if p.is_namespace_wide() {
                match mesh.and_then(show) {
                    None => mesh = Some(i),
                    Some(w) => ignored.push(format!(
                        "{} ignored: {} is the mesh-wide policy ({}); only the oldest namespace-wide policy of the root namespace counts",
                        p.name,
                        w.name,
                        older(w, p)
                    )),
                }
            } else if p.selects(labels) {
                ignored.push(format!(
                    "{} ignored: selector in the root namespace ({}) — istiod ignores workload selectors in {root}",
                    p.name,
                    selector_text(p)
                ));
            }
        }
        let mut current = MtlsMode::Permissive;
        let mut from = String::from("Istio's default");
        match mesh.and_then(show) {
            Some(m) => {
                lines.push(format!(
                    "{} used as the mesh-wide policy (namespace-wide in root namespace {root}{}): {}",
                    m.name,
                    empty_selector_note(m),
                    step(m, &mut current, &mut from)
                ));
            }
            None => lines.push(format!(
                "no mesh-wide policy (none without a selector in root namespace {root}): start from PERMISSIVE"
            )),
        }
        lines.append(&mut ignored);

        // Namespace and workload levels.
        let mut namespace_wide: Option<u32> = None;
        let mut workload: Option<u32> = None;
        if in_root {
            lines.push(format!(
                "workload is in the root namespace {root}: the mesh-wide policy is its namespace policy, and workload selectors there are ignored"
            ));
        } else {
            let mut losers = Vec::new();
            let mut unmatched = 0usize;
            for &i in self.members_of(namespace) {
                let Some(p) = show(i) else { continue };
                if p.is_namespace_wide() {
                    match namespace_wide.and_then(show) {
                        None => namespace_wide = Some(i),
                        Some(w) => losers.push(format!(
                            "{} ignored: {} is the namespace-wide policy ({}); only the oldest namespace-wide policy of a namespace counts",
                            p.name,
                            w.name,
                            older(w, p)
                        )),
                    }
                } else if p.selects(labels) {
                    match workload.and_then(show) {
                        None => workload = Some(i),
                        Some(w) => losers.push(format!(
                            "{} wins over {}: older ({}); the older selector wins whatever its specificity",
                            w.name,
                            p.name,
                            older(w, p)
                        )),
                    }
                } else {
                    unmatched += 1;
                }
            }
            match namespace_wide.and_then(show) {
                Some(n) => lines.push(format!(
                    "{} used as the namespace-wide policy of {namespace}{}: {}",
                    n.name,
                    empty_selector_note(n),
                    step(n, &mut current, &mut from)
                )),
                None => lines.push(format!(
                    "no namespace-wide policy in {namespace}: {current} carries over"
                )),
            }
            match workload.and_then(show) {
                Some(w) => lines.push(format!(
                    "{} used as the workload policy (selector {} matches): {}",
                    w.name,
                    selector_text(w),
                    step(w, &mut current, &mut from)
                )),
                None => lines.push(format!(
                    "no workload policy in {namespace} selects these labels: {current} carries over"
                )),
            }
            lines.append(&mut losers);
            if unmatched > 0 {
                lines.push(format!(
                    "{unmatched} other workload {} in {namespace} {} not select these labels",
                    if unmatched == 1 { "policy" } else { "policies" },
                    if unmatched == 1 { "does" } else { "do" },
                ));
            }
        }

        // Port level: only the winning workload policy's entries apply.
        let mut level = Level::Default;
        let mut by = None;
        for (idx, lvl) in [
            (mesh, Level::Mesh),
            (namespace_wide, Level::Namespace),
            (workload, Level::Workload),
        ] {
            if let Some(p) = idx.and_then(show) {
                if p.mode != MtlsMode::Unset {
                    level = lvl;
                    by = idx;
                }
            }
        }
        for idx in [mesh, namespace_wide].into_iter().flatten() {
            if let Some(p) = show(idx).filter(|p| !p.ports.is_empty()) {
                lines.push(format!(
                    "{} portLevelMtls ignored: port-level settings apply only on a workload policy (one with a selector); validation rejects this policy",
                    p.name
                ));
            }
        }
        if let Some(port) = port {
            match workload.and_then(show) {
                Some(w) => match w.port_entry(port) {
                    Some(Some(m)) if m != MtlsMode::Unset => {
                        lines.push(format!(
                            "port {port}: {} portLevelMtls[{port}] sets {m}, overriding the workload mode {current}",
                            w.name
                        ));
                        current = m;
                        level = Level::Port;
                        by = workload;
                    }
                    Some(entry) => lines.push(format!(
                        "port {port}: {} portLevelMtls[{port}] is {}: it takes the workload mode {current}",
                        w.name,
                        if entry.is_some() { "UNSET" } else { "{} (no mode)" }
                    )),
                    None if w.ports.is_empty() => lines.push(format!(
                        "port {port}: {} has no portLevelMtls: the workload mode {current} applies",
                        w.name
                    )),
                    None => lines.push(format!(
                        "port {port}: {} has no portLevelMtls entry for {port}: the workload mode {current} applies",
                        w.name
                    )),
                },
                None => lines.push(format!(
                    "port {port}: no workload policy, so no port-level settings: {current} applies"
                )),
            }
        }
        if !in_root && port.is_some() {
            for &i in self.members_of(namespace) {
                if Some(i) == workload {
                    continue;
                }
                if let Some(p) = show(i) {
                    if !p.is_namespace_wide() && !p.ports.is_empty() && p.selects(labels) {
                        lines.push(format!(
                            "{} portLevelMtls ignored: only the winning workload policy's port-level settings apply",
                            p.name
                        ));
                    }
                }
            }
        }
        let policy = by.and_then(show).map(|p| p.name.clone());
        lines.push(match &policy {
            Some(p) => format!("result: {current} from {p} ({level} level)"),
            None => format!("result: {current}: no policy sets a mode, Istio's default applies"),
        });
        Decision {
            mode: current,
            level,
            policy,
            explanation: lines,
        }
    }
}

/// Applies a policy's mode to the running mode and says what happened.
fn step(p: &Stored, current: &mut MtlsMode, from: &mut String) -> String {
    if p.mode == MtlsMode::Unset {
        let what = if p.mtls_present {
            "mode UNSET"
        } else {
            "no mtls (same as UNSET)"
        };
        format!("{what}, inherits {current} from {from}")
    } else {
        let text = if *current == p.mode {
            format!("mode {} (same as {from})", p.mode)
        } else {
            format!("mode {} overrides {current} from {from}", p.mode)
        };
        *current = p.mode;
        *from = p.name.to_string();
        text
    }
}

/// Why `winner` sorts before `loser` (step 2's order).
fn older(winner: &Stored, loser: &Stored) -> String {
    match (winner.created, loser.created) {
        (Some(a), Some(b)) if a < b => format!(
            "older: created {} before {}",
            format_timestamp(a.nanos()),
            format_timestamp(b.nanos())
        ),
        (Some(a), Some(_)) => format!(
            "same creationTimestamp {}, ties go to the smaller name",
            format_timestamp(a.nanos())
        ),
        (Some(_), None) => format!(
            "{} has no creationTimestamp and counts as newer than every applied policy",
            loser.name
        ),
        (None, _) => "neither has a creationTimestamp, ties go to the smaller name".to_owned(),
    }
}

fn empty_selector_note(p: &Stored) -> &'static str {
    if p.selector_present {
        "; its selector has no labels, which makes it namespace-wide"
    } else {
        ""
    }
}

fn selector_text(p: &Stored) -> String {
    p.selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
