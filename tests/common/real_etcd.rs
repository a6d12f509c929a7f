//! A private, throw-away etcd for tests.
//!
//! [`EtcdGuard::start`] picks free loopback ports (by binding port 0), creates a temporary data
//! dir, starts `etcd` as a child process and waits until its JSON gateway answers. Dropping the
//! guard (also while unwinding from a failed assertion) kills the child by PID, reaps it and
//! removes the temporary directory. Nothing is left behind and no port is fixed.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::gateway::Gateway;

/// Environment variable that names the etcd binary explicitly (otherwise `etcd` on `PATH`).
pub const ETCD_BIN_ENV: &str = "WATCHSIM_ETCD";

/// Finds the etcd binary: `$WATCHSIM_ETCD` if set, else the first `etcd` on `PATH`.
pub fn find_etcd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ETCD_BIN_ENV) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The etcd binary, or `None` after printing a loud SKIPPED line. With `CI=true` a missing etcd
/// is a test failure (panic), never a skip.
pub fn etcd_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(p) = find_etcd() {
        return Some(p);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!(
            "{test}: etcd not installed but CI=true; the etcd conformance tests need a real etcd \
             (apt-get install etcd-server, see .ci/run) or ${ETCD_BIN_ENV}=/path/to/etcd"
        );
    }
    uncaptured(&format!(
        "\n{bar}\nSKIPPED: etcd not installed (apt-get install etcd-server) -- {test}\n{bar}\n",
        bar = "#".repeat(80)
    ));
    None
}

/// Writes straight to the process's stderr, bypassing libtest's output capture (which swallows
/// `eprintln!` of passing tests), so that skips and summaries are seen in a plain `cargo test`.
pub fn uncaptured(msg: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(msg.as_bytes());
    if !msg.ends_with('\n') {
        let _ = err.write_all(b"\n");
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A running etcd child process; killed and cleaned up on drop.
pub struct EtcdGuard {
    child: Child,
    root: PathBuf,
    /// Client URL address (the gRPC + JSON gateway port).
    pub addr: SocketAddr,
}

impl EtcdGuard {
    /// Starts a fresh single-member etcd and waits (up to 20 s) until it serves requests.
    pub fn start(bin: &Path) -> Result<EtcdGuard, String> {
        let mut last_err = String::new();
        // A free port can be taken by someone else between probing and etcd binding it; retry.
        for _attempt in 0..3 {
            match Self::try_start(bin) {
                Ok(g) => return Ok(g),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn try_start(bin: &Path) -> Result<EtcdGuard, String> {
        let (client_port, peer_port) = free_ports()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let root = std::env::temp_dir().join(format!(
            "watchsim-etcd-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        let log_path = root.join("etcd.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("create log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let spawned = Command::new(bin)
            .arg("--name=conformance")
            .arg(format!("--data-dir={}", root.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=conformance={peer_url}"))
            // Fast first election: the single member is leader in tens of milliseconds.
            .arg("--heartbeat-interval=10")
            .arg("--election-timeout=100")
            .arg("--logger=zap")
            .arg("--log-level=error")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&root);
                return Err(format!("cannot spawn {}: {e}", bin.display()));
            }
        };
        let addr: SocketAddr = ([127, 0, 0, 1], client_port).into();
        // From here on the guard owns the child: any early return kills it.
        let mut guard = EtcdGuard { child, root, addr };
        guard.wait_ready(Duration::from_secs(20))?;
        Ok(guard)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "etcd exited early ({status}); log:\n{}",
                    self.log_tail()
                ));
            }
            if let Ok(mut gw) = Gateway::connect(self.addr)
                && gw.current_revision().is_ok_and(|rev| rev >= 1)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd did not answer on {} within {timeout:?}; log:\n{}",
                    self.addr,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last lines of etcd's log (for error messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.root.join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new gateway client for this etcd.
    pub fn gateway(&self) -> Result<Gateway, String> {
        Gateway::connect(self.addr)
    }
}

impl Drop for EtcdGuard {
    fn drop(&mut self) {
        // `Child::kill` signals exactly this PID (SIGKILL); `wait` reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Two distinct free loopback ports, found by binding port 0.
fn free_ports() -> Result<(u16, u16), String> {
    let a = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let b = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let pa = a.local_addr().map_err(|e| e.to_string())?.port();
    let pb = b.local_addr().map_err(|e| e.to_string())?.port();
    Ok((pa, pb))
}
