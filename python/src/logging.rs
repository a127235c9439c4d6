//! The log lines of the CA protocol (`meshtls::ca_protocol`: the server's one line per
//! request, with the reason of every refusal) go to Python's `logging`, logger
//! `meshtls.ca_protocol`, with the same text as `meshtls ca serve` prints.

use pyo3::prelude::*;

struct PyLogger;

const TARGET: &str = "meshtls::ca_protocol";
const LOGGER: &str = "meshtls.ca_protocol";

impl log::Log for PyLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info && m.target().starts_with(TARGET)
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level: u8 = match r.level() {
            log::Level::Error => 40,
            log::Level::Warn => 30,
            log::Level::Info => 20,
            log::Level::Debug | log::Level::Trace => 10,
        };
        let text = r.args().to_string();
        // Not while the interpreter shuts down; a failing handler is Python's to report.
        let _ = Python::try_attach(|py| -> PyResult<()> {
            let logger = py.import("logging")?.call_method1("getLogger", (LOGGER,))?;
            logger.call_method1("log", (level, "%s", text))?;
            Ok(())
        });
    }

    fn flush(&self) {}
}

static PY_LOGGER: PyLogger = PyLogger;

/// Installs the bridge (once per process; a logger installed before wins).
pub(crate) fn install() {
    if log::set_logger(&PY_LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
