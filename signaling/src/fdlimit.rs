//! The process's open-file limit (`RLIMIT_NOFILE`): every connection holds a descriptor, so the
//! connection caps are kept below it, and the binary raises the soft limit to the hard one at
//! start (systemd's default soft limit of 1024 is far below what a school needs).
//!
//! The system calls go through the `rlimit` crate, so this crate has no `unsafe` of its own.

/// The soft open-file limit, or `None` where it cannot be read (or is unlimited).
pub fn soft_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
        (soft != rlimit::INFINITY).then_some(soft)
    }
    #[cfg(not(unix))]
    None
}

/// Raises the soft open-file limit to the hard one. Returns (before, after) when it was raised.
pub fn raise_to_hard() -> std::io::Result<Option<(u64, u64)>> {
    #[cfg(unix)]
    {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        if soft >= hard {
            return Ok(None);
        }
        rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard)?;
        Ok(Some((soft, hard)))
    }
    #[cfg(not(unix))]
    Ok(None)
}
