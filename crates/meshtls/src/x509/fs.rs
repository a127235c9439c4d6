//! Writing files the way key material must be written: to a temporary file in the same
//! directory, flushed to disk, then renamed over the target, so that a reader sees the old
//! file or the new one and never half of either.

use std::io::Write as _;
use std::path::Path;

use crate::error::Error;

/// Mode of private-key files.
pub(crate) const KEY_MODE: u32 = 0o600;
/// Mode of certificate files.
pub(crate) const CERT_MODE: u32 = 0o644;

/// Writes `contents` to `path` atomically with permission bits `mode` (on Unix; elsewhere the
/// platform default).
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut nonce = [0u8; 8];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::Io {
        action: "create a temporary file for",
        path: path.to_path_buf(),
        kind: std::io::ErrorKind::Other,
        reason: "no randomness for a temporary name".to_owned(),
    })?;
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    let result = write_new(&tmp, contents, mode).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename a temporary file onto", path, &e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    sync_dir(dir);
    Ok(())
}

fn write_new(tmp: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(tmp)
        .map_err(|e| Error::io("create", tmp, &e))?;
    // The umask may have narrowed the mode at creation; set it exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("set permissions on", tmp, &e))?;
    }
    file.write_all(contents)
        .map_err(|e| Error::io("write", tmp, &e))?;
    file.sync_all().map_err(|e| Error::io("flush", tmp, &e))?;
    Ok(())
}

/// Makes the rename durable where the platform allows opening a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Creates `dir` (and parents) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, &e))
}

/// Reads a text file (PEM) into zeroizing memory. A file that is not UTF-8 is a
/// [`CaError::Material`] naming the file and the first bad byte's offset (its content is not
/// quoted: it may be key material).
pub(crate) fn read_text(path: &Path) -> Result<zeroize::Zeroizing<String>, Error> {
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| Error::io("read", path, &e))?);
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(zeroize::Zeroizing::new(text.to_owned())),
        Err(e) => Err(crate::error::CaError::Material {
            what: path.display().to_string(),
            reason: format!(
                "not a text (PEM) file: byte {} is not valid UTF-8",
                e.valid_up_to()
            ),
        }
        .into()),
    }
}
