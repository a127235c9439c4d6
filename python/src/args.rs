//! Argument conversion shared by every binding module: text, bounded integers, datetimes and
//! timedeltas. One converter per Python type, so that every entry point accepts the same
//! values and refuses the rest with the same typed error naming the argument.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDateTime, PyDelta, PyInt, PyString, PyTzInfo};
use rustls_pki_types::UnixTime;

use crate::errors::InvalidArgumentError;

/// The longest prefix of a bad value an error message quotes.
const QUOTE_MAX: usize = 64;

/// `text` quoted for an error message, cut to a bounded prefix.
pub(crate) fn quote(text: &str) -> String {
    if text.len() <= QUOTE_MAX {
        return format!("{text:?}");
    }
    let mut end = QUOTE_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &text[..end], text.len())
}

/// A `str` argument borrowed from Python without a copy. A string that cannot be UTF-8 (a lone
/// surrogate, as `surrogateescape` decoding leaves for undecodable bytes) is an
/// `InvalidArgumentError` rather than Python's `UnicodeEncodeError`.
pub(crate) struct Text<'a>(pub(crate) &'a str);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Text<'a> {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let s = ob
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("expected str, got {}", type_name(&ob))))?;
        text_of(s)
    }
}

/// The UTF-8 view of a Python `str` (no copy).
pub(crate) fn text_of<'a>(s: Borrowed<'a, '_, PyString>) -> PyResult<Text<'a>> {
    s.extract::<&'a str>().map(Text).map_err(|_| {
        InvalidArgumentError::new_err(
            "text is not valid Unicode: it holds a lone surrogate (as surrogateescape decoding \
             leaves for bytes that are not UTF-8)",
        )
    })
}

/// The type name of a Python object, for messages.
pub(crate) fn type_name(ob: &Borrowed<'_, '_, PyAny>) -> String {
    ob.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// A Python `int` (not `bool`) converted to `T`; `name` and `range` go into the error when
/// it does not fit (no bare `OverflowError`).
pub(crate) fn int_arg<T: TryFrom<i128>>(
    ob: &Bound<'_, PyAny>,
    name: &str,
    range: &str,
) -> PyResult<T> {
    if ob.cast::<PyInt>().is_err() || ob.cast::<PyBool>().is_ok() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, got {}",
            type_name(&ob.as_borrowed())
        )));
    }
    let out_of_range = || {
        // An int's decimal digits, unquoted; a huge one cut to a bounded prefix.
        let shown = ob
            .str()
            .map(|s| {
                let digits = s.to_string_lossy();
                if digits.len() <= QUOTE_MAX {
                    digits.into_owned()
                } else {
                    quote(&digits)
                }
            })
            .unwrap_or_default();
        InvalidArgumentError::new_err(format!("{name} {shown} is out of range: {range}"))
    };
    // i64 first: one C call; the 128-bit conversion goes through Python calls under abi3.
    let wide: i128 = match ob.extract::<i64>() {
        Ok(n) => i128::from(n),
        Err(_) => ob.extract().map_err(|_| out_of_range())?,
    };
    T::try_from(wide).map_err(|_| out_of_range())
}

/// A port: an `int` in 0..=65535. The one port rule of the binding: another type is a
/// `TypeError`, an int out of range an `InvalidArgumentError` naming the port.
pub(crate) fn port_arg(ob: &Bound<'_, PyAny>) -> PyResult<u16> {
    int_arg(ob, "port", "must be between 0 and 65535")
}

/// An optional port: `None` (or absent), else [`port_arg`].
pub(crate) fn opt_port_arg(ob: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u16>> {
    ob.filter(|p| !p.is_none()).map(port_arg).transpose()
}

/// An aware `datetime` as a `SystemTime`; a naive one, or another type, is refused. `what`
/// names the argument.
pub(crate) fn datetime_arg(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<SystemTime> {
    if !ob.is_instance_of::<PyDateTime>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a datetime, got {}",
            type_name(&ob.as_borrowed())
        )));
    }
    if !is_aware(ob)? {
        return Err(InvalidArgumentError::new_err(format!(
            "{what} must be a timezone-aware datetime (e.g. datetime.now(timezone.utc)), got a \
             naive one"
        )));
    }
    ob.extract::<SystemTime>()
        .map_err(|e| InvalidArgumentError::new_err(format!("{what} cannot be represented: {e}")))
}

/// Whether a `datetime` is timezone-aware (its `utcoffset()` is not `None`).
pub(crate) fn is_aware(dt: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(!dt.call_method0("utcoffset")?.is_none())
}

/// `now`: an aware datetime, or the current time when `None`.
pub(crate) fn now_arg(now: Option<&Bound<'_, PyAny>>) -> PyResult<SystemTime> {
    match now {
        None => Ok(SystemTime::now()),
        Some(t) => datetime_arg(t, "now"),
    }
}

/// `now` for X.509 verification, which counts from the Unix epoch.
pub(crate) fn unix_now_arg(now: Option<&Bound<'_, PyAny>>) -> PyResult<UnixTime> {
    let t = now_arg(now)?;
    let since = t.duration_since(UNIX_EPOCH).map_err(|_| {
        InvalidArgumentError::new_err("now must not be before 1970-01-01T00:00:00Z")
    })?;
    Ok(UnixTime::since_unix_epoch(since))
}

/// An aware UTC `datetime` for a `SystemTime`.
pub(crate) fn to_datetime(py: Python<'_>, t: SystemTime) -> PyResult<Bound<'_, PyDateTime>> {
    let utc = PyTzInfo::utc(py)?;
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    PyDateTime::from_timestamp(py, secs, Some(&utc))
}

/// An aware UTC `datetime` for a `UnixTime`.
pub(crate) fn unix_to_datetime(py: Python<'_>, t: UnixTime) -> PyResult<Bound<'_, PyDateTime>> {
    to_datetime(py, UNIX_EPOCH + Duration::from_secs(t.as_secs()))
}

/// A non-negative `timedelta` as a `Duration`; `what` names the argument.
pub(crate) fn duration_arg(td: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    let td = td.cast::<PyDelta>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a datetime.timedelta, got {}",
            type_name(&td.as_borrowed())
        ))
    })?;
    let secs: f64 = td.call_method0("total_seconds")?.extract()?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(InvalidArgumentError::new_err(format!(
            "invalid {what} of {secs} seconds: a lifetime must not be negative"
        )));
    }
    // No lifetime a certificate or a bundle can carry is longer (X.509 times end in 9999).
    const MAX_SECS: f64 = 10_000.0 * 365.25 * 86_400.0;
    if secs > MAX_SECS {
        return Err(InvalidArgumentError::new_err(format!(
            "invalid {what} of {secs} seconds: out of range (at most 10,000 years)"
        )));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| {
        InvalidArgumentError::new_err(format!("invalid {what} of {secs} seconds: out of range"))
    })
}

/// An owned `str` argument (inside lists, or optional), refusing what [`Text`] refuses.
pub(crate) struct Str(pub(crate) String);

impl<'a, 'py> FromPyObject<'a, 'py> for Str {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Text::extract(ob).map(|t| Str(t.0.to_owned()))
    }
}

/// The strings of a `Vec<Str>` argument.
pub(crate) fn strings(v: Vec<Str>) -> Vec<String> {
    v.into_iter().map(|s| s.0).collect()
}
