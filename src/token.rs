//! `aula token`: mints a class token from the command line, signed with the same secret the
//! server uses, for scripts and for operators handing out personal links.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use aula_signaling::protocol::Role;
use aula_signaling::store::Store;
use aula_signaling::token::{Claims, TokenKey};
use clap::{Args, ValueEnum};

use crate::ConfigArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Teacher,
    Student,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The class id (see `GET /api/v1/classes`).
    #[arg(long)]
    pub class: String,
    #[arg(long, value_enum, default_value = "student")]
    pub role: RoleArg,
    /// Fix the display name of whoever joins with this token.
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime in seconds (default: the configured token_ttl_secs).
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<u64>,
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let settings = args.config.load(Vec::new())?;
    let db = aula_signaling::server::database_path(&settings.data_dir);
    let store = Store::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
    if store.get(&args.class)?.is_none() {
        bail!(
            "no class {:?} in {} (list them with GET /api/v1/classes)",
            args.class,
            db.display()
        );
    }
    let secret = match &settings.token_secret {
        Some(s) => s.clone(),
        None => aula_config::secrets::load_or_create(&settings.data_dir, "token_secret")?.0,
    };
    let ttl = args.ttl.unwrap_or(settings.token_ttl_secs);
    if ttl == 0 {
        bail!("--ttl must be at least 1 second");
    }
    // The rules a name typed in `join` follows, so the token never fixes a name the join refuses.
    let name = args
        .name
        .map(|n| aula_signaling::text::display_name(&n, settings.limits.max_name_len))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        class: args.class.clone(),
        role: match args.role {
            RoleArg::Teacher => Role::Teacher,
            RoleArg::Student => Role::Student,
        },
        name,
        student: None,
        iat: now,
        exp: now + ttl,
    };
    let token = TokenKey::new(secret.as_bytes()).mint(&claims);
    let base = settings.public_url();
    println!("{token}");
    eprintln!("link: {base}/join#token={token}");
    Ok(())
}
