//! The process's open-file limit (`RLIMIT_NOFILE`): every connection holds a descriptor, so the
//! connection caps are kept below it, and the binary raises the soft limit to the hard one at
//! start (systemd's default soft limit of 1024 is far below what a school needs).
//!
//! One of the two `unsafe` islands of the workspace (`getrlimit`/`setrlimit` through libc); the
//! crate denies `unsafe_code` everywhere else.
#![allow(unsafe_code)]

/// The soft open-file limit, or `None` where it cannot be read (or is unlimited).
pub fn soft_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let (soft, _) = get()?;
        (soft != libc::RLIM_INFINITY).then_some(soft)
    }
    #[cfg(not(unix))]
    None
}

/// Raises the soft open-file limit to the hard one. Returns (before, after) when it was raised.
pub fn raise_to_hard() -> std::io::Result<Option<(u64, u64)>> {
    #[cfg(unix)]
    {
        let Some((soft, hard)) = get() else {
            return Err(std::io::Error::last_os_error());
        };
        if soft >= hard {
            return Ok(None);
        }
        let raised = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads a valid, initialized struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Some((soft, hard)))
    }
    #[cfg(not(unix))]
    Ok(None)
}

#[cfg(unix)]
fn get() -> Option<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid struct we own.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0)
        .then_some((limit.rlim_cur, limit.rlim_max))
}
