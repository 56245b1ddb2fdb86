//! `aula account`: staff accounts from the command line, in the data directory's database (the
//! running server sees the changes at once): `add` (prints a one-time setup link), `list`,
//! `disable`, `enable` and `reset` (a new setup link). The admin REST API does the same.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use aula_signaling::accounts::{
    normalise_email, setup, Account, AccountPatch, AccountRole, AccountStore, NewAccount,
};
use aula_signaling::store::{SqliteAccounts, Store};
use clap::{Args, Subcommand, ValueEnum};

use crate::ConfigArgs;

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: AccountCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Teacher,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add an account and print its one-time setup link (where its owner chooses a password).
    Add {
        #[arg(long, value_enum, default_value = "teacher")]
        role: RoleArg,
        /// The name shown to students and colleagues, e.g. "Ms Rivera".
        #[arg(long)]
        name: String,
        /// The sign-in email.
        #[arg(long)]
        email: String,
    },
    /// List every account.
    List,
    /// Stop an account signing in; its sessions end at once.
    Disable {
        /// The account's email or id.
        account: String,
    },
    /// Let a disabled account sign in again.
    Enable {
        /// The account's email or id.
        account: String,
    },
    /// Clear an account's password (ending its sessions) and print a new setup link.
    Reset {
        /// The account's email or id.
        account: String,
    },
}

pub fn run(args: AccountArgs) -> anyhow::Result<()> {
    let settings = args.config.load(Vec::new())?;
    let db = aula_signaling::server::database_path(&settings.data_dir);
    private_data_dir(&settings.data_dir, &db)?;
    let store = Store::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let accounts = SqliteAccounts::new(Arc::new(Mutex::new(store)));
    let public_url = settings.public_url();
    let lifetime = settings.accounts.setup_link_lifetime_secs;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match args.command {
        AccountCommand::Add { role, name, email } => {
            let role = match role {
                RoleArg::Teacher => AccountRole::Teacher,
                RoleArg::Admin => AccountRole::Admin,
            };
            let new = NewAccount { email, name, role };
            let (account, link) = setup::add_account(&accounts, &new, &public_url, now, lifetime)?;
            say!(
                "Added {} {} <{}> (id {}).",
                role.as_str(),
                account.name,
                account.email,
                account.id
            );
            print_link(&link, lifetime);
        }
        AccountCommand::List => {
            let all = accounts.accounts()?;
            if all.is_empty() {
                say!("No accounts yet: add one with `aula account add`.");
            }
            for a in all {
                let state = match (a.disabled, a.password_hash.is_some()) {
                    (true, _) => "disabled",
                    (false, true) => "active",
                    (false, false) => "no password yet",
                };
                say!(
                    "{}  {:<7}  {:<32}  {}  ({state})",
                    a.id,
                    a.role.as_str(),
                    a.email,
                    a.name
                );
            }
        }
        AccountCommand::Disable { account } => set_disabled(&accounts, &account, true)?,
        AccountCommand::Enable { account } => set_disabled(&accounts, &account, false)?,
        AccountCommand::Reset { account } => {
            let found = find(&accounts, &account)?;
            let (account, link) = setup::reset(&accounts, &found.id, &public_url, now, lifetime)?
                .context("the account was deleted meanwhile")?;
            say!(
                "Reset the password of {} <{}>; their sessions have ended.",
                account.name,
                account.email
            );
            print_link(&link, lifetime);
        }
    }
    Ok(())
}

fn set_disabled(accounts: &SqliteAccounts, key: &str, disabled: bool) -> anyhow::Result<()> {
    let found = find(accounts, key)?;
    let patch = AccountPatch {
        disabled: Some(disabled),
        ..Default::default()
    };
    accounts
        .update_account(&found.id, &patch)?
        .context("the account was deleted meanwhile")?;
    match disabled {
        true => say!(
            "Disabled {} <{}>; their sessions have ended.",
            found.name,
            found.email
        ),
        false => say!("Enabled {} <{}>.", found.name, found.email),
    }
    Ok(())
}

fn print_link(link: &setup::SetupLink, lifetime: u64) {
    say!(
        "One-time setup link (valid {} h, only once):",
        lifetime.div_ceil(3600)
    );
    say!("  {}", link.url);
}

/// The account with this id or email.
fn find(accounts: &SqliteAccounts, key: &str) -> anyhow::Result<Account> {
    if let Some(a) = accounts.account(key)? {
        return Ok(a);
    }
    if let Ok(email) = normalise_email(key) {
        if let Some(a) = accounts.account_by_email(&email)? {
            return Ok(a);
        }
    }
    bail!("no account {key:?} (see `aula account list`)")
}

/// Creates the data directory (owner only) and the database file (mode 0600) if missing, as
/// `aula serve` does, so an account added before the first start is never world-readable.
fn private_data_dir(dir: &std::path::Path, db: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot secure {}", dir.display()))?;
        options.mode(0o600);
    }
    options
        .open(db)
        .with_context(|| format!("cannot create {}", db.display()))?;
    Ok(())
}
