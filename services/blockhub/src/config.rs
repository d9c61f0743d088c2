//! Where a hub keeps its files, and how clients find a running hub.
//!
//! On one machine everything lives in the data directory: the store, the
//! broker's files, the person-key secret, the tokens file, a local
//! operator token and `hub.json`, which `blockhub up` writes so that the
//! client commands find the broker and gateway without flags. Flags and
//! environment variables override each of these for deployments that
//! spread the services over machines.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use blockhub_gateway::{CertificateEntry, TokenEntry, TokensFile, hash_token};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The default gateway address.
pub const DEFAULT_GATEWAY_LISTEN: &str = "127.0.0.1:50051";
/// The default address of the status page and metrics.
pub const DEFAULT_STATUS_LISTEN: &str = "127.0.0.1:8470";
/// The default embedded broker port.
pub const DEFAULT_BROKER_PORT: u16 = 9092;

/// What a running hub tells its clients, written to `hub.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HubFile {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topic name prefix.
    pub topic_prefix: String,
    /// Gateway URL, such as http://127.0.0.1:50051.
    pub gateway: String,
    /// Store URL with any password removed.
    pub store: String,
    /// The `blockhub up` process.
    pub pid: u32,
    /// Status page URL, such as http://127.0.0.1:8470/ (none: not served).
    #[serde(default)]
    pub status: Option<String>,
}

/// The files of one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The directory, created if missing and readable only by its owner:
    /// the store and the broker's files hold ID numbers and pay.
    pub fn create(root: &Path) -> Result<Self> {
        fs::create_dir_all(root.join("logs"))
            .with_context(|| format!("creating data directory {}", root.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(root, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("restricting {} to its owner", root.display()))?;
        }
        Ok(Self::at(root))
    }

    /// The directory as it is, created or not: client commands read a
    /// hub's files from it but never create it, so a mistyped path fails
    /// instead of growing a second, empty hub directory.
    pub fn at(root: &Path) -> Self {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        Self { root }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The embedded store's URL.
    pub fn store_url(&self) -> String {
        format!("sqlite://{}", self.store_file().display())
    }

    /// The default SQLite store file.
    pub fn store_file(&self) -> PathBuf {
        self.path("store.db")
    }

    /// The running hub's file. A file whose hub is gone (killed before it
    /// could remove it) is not read: its addresses lead nowhere. `up`
    /// writes over it.
    pub fn hub(&self) -> Option<HubFile> {
        let text = fs::read_to_string(self.path("hub.json")).ok()?;
        let hub: HubFile = serde_json::from_str(&text).ok()?;
        process_alive(hub.pid).then_some(hub)
    }

    /// Writes the hub file.
    pub fn write_hub(&self, hub: &HubFile) -> Result<()> {
        let text = serde_json::to_string_pretty(hub)? + "\n";
        fs::write(self.path("hub.json"), text).context("writing hub.json")
    }

    /// Records the store the hub runs on (password removed), which stays
    /// after it stops: the store-reading commands keep reading that store,
    /// not the data directory's own file the hub never used.
    pub fn write_last_store(&self, url: &str) -> Result<()> {
        fs::write(self.path("last-store"), format!("{url}\n")).context("writing last-store")
    }

    /// The store the last hub of this data directory ran on.
    pub fn last_store(&self) -> Option<String> {
        let text = fs::read_to_string(self.path("last-store")).ok()?;
        Some(text.trim().to_string()).filter(|url| !url.is_empty())
    }

    /// Whether a hub file was left by a hub that no longer runs.
    pub fn stale_hub_file(&self) -> bool {
        self.path("hub.json").exists() && self.hub().is_none()
    }

    /// Removes the hub file when the hub stops.
    pub fn remove_hub(&self) {
        let _ = fs::remove_file(self.path("hub.json"));
    }

    /// Creates the person-key secret file with a random value unless the
    /// environment or an existing file already provides one (`up` does this).
    pub fn ensure_key_secret(&self) -> Result<()> {
        self.ensure_secret(
            "key.secret",
            "BLOCKHUB_KEY_SECRET",
            "Person-key secret created.",
        )
    }

    /// The person-key secret: from BLOCKHUB_KEY_SECRET, else the hub's file
    /// in the data directory. Never invented here: events keyed with
    /// another secret would land in other partitions than the hub's.
    pub fn key_secret(&self) -> Result<Vec<u8>> {
        self.secret(
            "key.secret",
            "BLOCKHUB_KEY_SECRET",
            "person-key secret",
            "secret",
        )
    }

    /// Creates the audit key (the HMAC-SM3 key of the audit chain) unless
    /// BLOCKHUB_AUDIT_KEY or an existing file provides one.
    pub fn ensure_audit_key(&self) -> Result<()> {
        self.ensure_secret("audit.key", "BLOCKHUB_AUDIT_KEY", "Audit key created.")
    }

    /// The audit key: from BLOCKHUB_AUDIT_KEY, else audit.key in the data
    /// directory. Without the key the chain cannot be verified, so it is
    /// never invented here.
    pub fn audit_key(&self) -> Result<Vec<u8>> {
        self.secret("audit.key", "BLOCKHUB_AUDIT_KEY", "audit key", "key")
    }

    /// Writes a random secret to `file` unless `variable` or the file
    /// already provides one.
    fn ensure_secret(&self, file: &str, variable: &str, created: &str) -> Result<()> {
        let path = self.path(file);
        if std::env::var_os(variable).is_none() && !path.exists() {
            write_private(&path, &random_hex(32))?;
            tracing::info!(file = %path.display(), "{created}");
        }
        Ok(())
    }

    /// A secret from `variable`, else from `file` in the data directory.
    fn secret(&self, file: &str, variable: &str, what: &str, noun: &str) -> Result<Vec<u8>> {
        if let Ok(secret) = std::env::var(variable) {
            return Ok(secret.into_bytes());
        }
        let path = self.path(file);
        let secret = fs::read_to_string(&path).with_context(|| {
            format!(
                "no {what}: set {variable} to the deployment's {noun}, or use the --data-dir \
                 of the hub ({} is missing)",
                path.display()
            )
        })?;
        Ok(secret.trim().as_bytes().to_vec())
    }

    /// The local operator token, created (and its hash added to the tokens
    /// file) on first use.
    pub fn ensure_operator_token(&self, tokens_file: &Path) -> Result<PathBuf> {
        let path = self.path("operator.token");
        if !path.exists() {
            let token = random_hex(32);
            add_token(tokens_file, "operator", &token)?;
            write_private(&path, &token)?;
            tracing::info!(file = %path.display(), "Operator token created.");
        }
        Ok(path)
    }

    /// The local operator token, if one was created.
    pub fn operator_token(&self) -> Option<String> {
        let token = fs::read_to_string(self.path("operator.token")).ok()?;
        Some(token.trim().to_string())
    }
}

/// Appends a token's hash to the tokens file.
pub fn add_token(tokens_file: &Path, department: &str, token: &str) -> Result<()> {
    edit_tokens(tokens_file, department, |file| {
        file.token.push(TokenEntry {
            department: department.to_string(),
            sha256: hash_token(token),
        })
    })
}

/// Pins a client certificate (its SHA-256 fingerprint) to a department.
pub fn add_certificate(tokens_file: &Path, department: &str, fingerprint: &str) -> Result<()> {
    if let Ok(text) = fs::read_to_string(tokens_file)
        && let Ok(file) = toml::from_str::<TokensFile>(&text)
        && let Some(pinned) = file.certificate.iter().find(|c| c.sha256 == fingerprint)
    {
        if pinned.department == department {
            bail!("that certificate already acts for {department}");
        }
        bail!(
            "that certificate already acts for {}; a certificate acts for one department only",
            pinned.department
        );
    }
    edit_tokens(tokens_file, department, |file| {
        file.certificate.push(CertificateEntry {
            department: department.to_string(),
            sha256: fingerprint.to_string(),
        })
    })
}

fn edit_tokens(
    tokens_file: &Path,
    department: &str,
    edit: impl FnOnce(&mut TokensFile),
) -> Result<()> {
    if department.trim().is_empty() {
        bail!("a token or certificate needs a department name");
    }
    let mut file: TokensFile = match fs::read_to_string(tokens_file) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("tokens file {} is invalid", tokens_file.display()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => TokensFile::default(),
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", tokens_file.display()));
        }
    };
    edit(&mut file);
    let text = format!(
        "# Tokens and client certificates that may call the Blockhub gateway. Only\n\
         # SHA-256 hashes are kept; add them with `blockhub token issue DEPARTMENT`\n\
         # and `blockhub token pin-cert DEPARTMENT CERT.pem`.\n\n{}",
        toml::to_string(&file)?
    );
    write_private(tokens_file, &text)
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A random value as hex, from the operating system's generator.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// Whether a process with this id runs (on Linux, where the hub is
/// deployed; elsewhere every recorded hub is taken to run).
pub fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}
