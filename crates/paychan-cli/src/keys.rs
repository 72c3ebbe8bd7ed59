//! Solana CLI JSON keypair files (`[n0, …, n63]`), written owner-only (0600).
use std::{
    io::Write,
    path::{Path, PathBuf},
};

use solana_keypair::Keypair;

use crate::error::CliError;

/// Largest keypair file read (a 64-number JSON array is under 300 bytes;
/// room for whitespace).
pub const MAX_KEYPAIR_FILE_BYTES: u64 = 4096;

fn keypair_error(path: &Path, reason: impl Into<String>) -> CliError {
    CliError::Keypair {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a keypair file.
pub fn read_keypair(path: &Path) -> Result<Keypair, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| keypair_error(path, e.to_string()))?;
    if meta.len() > MAX_KEYPAIR_FILE_BYTES {
        return Err(keypair_error(
            path,
            format!("larger than {MAX_KEYPAIR_FILE_BYTES} bytes"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| keypair_error(path, e.to_string()))?;
    let bytes: Vec<u8> = serde_json::from_str(&text).map_err(|e| {
        keypair_error(
            path,
            format!("not a JSON array of 64 numbers 0..=255 ({e})"),
        )
    })?;
    if bytes.len() != 64 {
        return Err(keypair_error(
            path,
            format!("expected 64 bytes, found {}", bytes.len()),
        ));
    }
    Keypair::try_from(bytes.as_slice()).map_err(|e| keypair_error(path, e.to_string()))
}

/// The file's JSON text for `keypair`.
pub fn keypair_json(keypair: &Keypair) -> String {
    serde_json::Value::from(keypair.to_bytes().to_vec()).to_string()
}

/// Writes `keypair` to `path` with mode 0600. Without `force`, an existing
/// file is never touched; with it, the file is replaced atomically (written
/// next to it, then renamed over it). Missing parent directories are created.
pub fn write_keypair(keypair: &Keypair, path: &Path, force: bool) -> Result<(), CliError> {
    let io = |what: &str, source: std::io::Error| CliError::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    }
    let json = keypair_json(keypair);
    if !force {
        let mut file = match open_owner_only(path, true) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(keypair_error(
                    path,
                    "already exists; pass --force to overwrite it",
                ));
            }
            Err(e) => return Err(io("creating", e)),
        };
        return file
            .write_all(json.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io("writing", e));
    }
    let tmp = temp_path(path);
    let result = open_owner_only(&tmp, true)
        .and_then(|mut file| {
            file.write_all(json.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("writing", e));
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn open_owner_only(path: &Path, create_new: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(create_new);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use solana_signer::Signer;

    use super::*;

    #[test]
    fn write_read_round_trip_and_no_silent_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/id.json");
        let first = Keypair::new();
        write_keypair(&first, &path, false).unwrap();
        assert_eq!(read_keypair(&path).unwrap().pubkey(), first.pubkey());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = Keypair::new();
        let err = write_keypair(&second, &path, false).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(read_keypair(&path).unwrap().pubkey(), first.pubkey());
        write_keypair(&second, &path, true).unwrap();
        assert_eq!(read_keypair(&path).unwrap().pubkey(), second.pubkey());
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn malformed_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        for bad in ["", "[1,2,3]", "{\"a\":1}", "[256]", "not json"] {
            std::fs::write(&path, bad).unwrap();
            assert!(read_keypair(&path).is_err(), "{bad:?}");
        }
        std::fs::write(&path, vec![b' '; 5000]).unwrap();
        assert!(read_keypair(&path).is_err());
        assert!(read_keypair(&dir.path().join("missing.json")).is_err());
    }
}
