//! A private tansu broker a test can stop and start again (durable sqlite storage in its own
//! directory) without disturbing the shared broker other tests use.

use crate::stack::Stack;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tansu binary: `SENDTRACE_TANSU`, else `~/.cache/sendtrace/bin/tansu`.
pub fn tansu_bin() -> PathBuf {
    std::env::var("SENDTRACE_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/sendtrace/bin/tansu"))
}

/// A broker on `127.0.0.1:<port>` with sqlite storage in a directory, killed on drop.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    log: String,
}

impl Broker {
    /// Starts tansu and waits (at most 20 s) until it accepts connections; its log goes to
    /// `<log_dir>/<log>.log`.
    pub fn start(port: u16, dir: &Path, log: &str) -> Broker {
        let mut b = Broker { child: None, port, dir: dir.to_path_buf(), log: log.to_string() };
        b.restart();
        b
    }

    /// Starts it again (after [`Broker::kill`]) on the same port and storage.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(Stack::from_env().log_dir.join(format!("{}.log", self.log)));
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu_bin())
            .current_dir(&self.dir)
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener, "--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(log.map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
            .spawn()
            .expect("tansu installed (devstack/install-tansu.sh)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "broker did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: the broker is gone at once.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
