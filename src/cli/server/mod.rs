//! `mender-server`: runs the Mender server, and manages its users.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::exit::{CliError, CliResult, USAGE};
use crate::server::{ServerConfig, Store};

/// Command-line definition of `mender-server`.
#[derive(Debug, Parser)]
#[command(
    name = "mender-server",
    version,
    about = "A Mender server: device and management APIs with embedded storage",
    max_term_width = 100
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the device and management APIs until SIGTERM or SIGINT
    Serve(ServeArgs),
    /// Create a user for the management API, or set an existing user's password
    CreateUser(CreateUserArgs),
}

/// Where the data lives.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Data directory (database and artifacts by default)
    #[arg(long, default_value = "/var/lib/mender-server")]
    pub data: PathBuf,
    /// Metadata database: sqlite:PATH, or postgres://USER:PASSWORD@HOST[:PORT]/DBNAME for a
    /// PostgreSQL database that several servers can share (the schema is created and migrated
    /// on start; TLS as libpq's ?sslmode=disable|prefer|require|verify-ca|verify-full and
    /// &sslrootcert=CA.pem, default prefer, webpki roots without sslrootcert); also read from
    /// MENDER_SERVER_DATABASE, which keeps a password off the command line
    /// [default: sqlite:DATA/server.db]
    #[arg(
        long,
        value_name = "URL",
        env = "MENDER_SERVER_DATABASE",
        hide_env_values = true
    )]
    pub database: Option<String>,
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Artifact storage: file:DIR, or s3://BUCKET?endpoint=URL&region=REGION with credentials
    /// in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY [default: file:DATA/artifacts]
    #[arg(long, value_name = "URL")]
    storage: Option<String>,
    /// Base URL devices reach this server at, for download links [default: http://LISTEN]
    #[arg(long, value_name = "URL")]
    external_url: Option<String>,
    /// TLS certificate chain (PEM); serve HTTPS with --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Lifetime of artifact download links, seconds (at most 7 days, what S3's pre-signed
    /// URLs allow)
    #[arg(long, default_value_t = 86400, value_name = "SECS",
          value_parser = clap::value_parser!(i64).range(1..=604_800))]
    link_lifetime: i64,
    /// Lifetime of device and user tokens, seconds
    #[arg(long, default_value_t = 604800, value_name = "SECS")]
    token_lifetime: i64,
    /// Requests each device, user or (for authentication requests) source address may make
    /// per rate interval (0: unlimited)
    #[arg(long, default_value_t = 600, value_name = "N")]
    rate_quota: u32,
    /// Length of the rate-limit window, seconds
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    rate_interval: u64,
    /// Largest JSON request body, bytes
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    max_body: usize,
    /// Largest artifact upload, bytes
    #[arg(long, default_value_t = 10 << 30, value_name = "BYTES")]
    max_artifact_size: u64,
}

/// `create-user` options.
#[derive(Debug, Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Login name (an email address upstream)
    #[arg(long)]
    username: String,
    /// Password (at least 8 characters)
    #[arg(long)]
    password: String,
}

fn config(d: &DataArgs) -> ServerConfig {
    let mut c = ServerConfig::new(d.data.clone());
    c.database = d.database.clone();
    c
}

fn serve(a: &ServeArgs) -> CliResult {
    let mut c = config(&a.data);
    c.listen = a.listen;
    c.storage = a.storage.clone();
    c.external_url = a.external_url.clone();
    c.tls = a.tls_cert.clone().zip(a.tls_key.clone());
    c.link_lifetime = a.link_lifetime;
    c.token_lifetime = a.token_lifetime;
    c.rate_quota = a.rate_quota;
    c.rate_interval = a.rate_interval;
    c.max_body = a.max_body;
    c.max_artifact_size = a.max_artifact_size;
    let tls = c.tls.is_some();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(1, format!("starting the runtime: {e}")))?;
    rt.block_on(crate::server::serve(c, |addr| {
        let scheme = if tls { "https" } else { "http" };
        println!("mender-server: listening on {scheme}://{addr}");
    }))
    .map_err(|e| CliError::new(1, e.to_string()))
}

fn create_user(a: &CreateUserArgs) -> CliResult {
    if a.password.chars().count() < 8 {
        return Err(CliError::usage(
            "the password must be at least 8 characters",
        ));
    }
    if a.username.trim().is_empty() {
        return Err(CliError::usage("the username must not be empty"));
    }
    let c = config(&a.data);
    std::fs::create_dir_all(&c.data_dir)
        .map_err(|e| CliError::new(1, format!("{}: {e}", c.data_dir.display())))?;
    let store = Store::open_url(&c.database_url()).map_err(|e| CliError::new(1, e.to_string()))?;
    let hash = crate::server::api::users::hash_password(&a.password);
    let id = store
        .upsert_user(&a.username, &hash)
        .map_err(|e| CliError::new(1, e.to_string()))?;
    println!("{id}");
    Ok(())
}

/// Parses `args` and runs the command.
pub fn run<I, T>(args: I) -> CliResult
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let Some(cli) = super::exit::parse_or_print::<Cli, _, _>(args, USAGE)? else {
        return Ok(());
    };
    match &cli.command {
        Command::Serve(a) => serve(a),
        Command::CreateUser(a) => create_user(a),
    }
}
