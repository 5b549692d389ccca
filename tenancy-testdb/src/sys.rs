//! What the private servers share: running a program as the server's operating-system user,
//! finding programs, a private temporary folder, a free port, and the watchdog that removes a
//! server when the process that started it is gone.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

// ---------------------------------------------------------------------------
// Running as the right user
// ---------------------------------------------------------------------------

/// How a server's commands are run: database servers refuse to run as root, so as root they
/// run as the server's own operating-system user (`postgres`, `mysql`).
#[derive(Debug, Clone)]
pub(crate) enum RunAs {
    /// Directly, as the current (non-root) user.
    Current,
    /// As root: `runuser -u <user> -- <cmd>`.
    Runuser { tool: String, user: &'static str },
    /// As root, without runuser: `su <user> -s /bin/sh -c '<cmd>'`.
    Su { tool: String, user: &'static str },
}

/// Why a server cannot be run as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAsError {
    /// There is no operating-system user of that name.
    NoUser,
    /// Neither `runuser` nor `su` was found.
    NoTool,
}

impl RunAs {
    /// How to run commands as `user` when this process runs as root, directly otherwise.
    pub(crate) fn detect(user: &'static str) -> Result<RunAs, RunAsError> {
        if !is_root() {
            return Ok(RunAs::Current);
        }
        if !user_exists(user) {
            return Err(RunAsError::NoUser);
        }
        if let Some(tool) = find_program("runuser") {
            return Ok(RunAs::Runuser { tool, user });
        }
        if let Some(tool) = find_program("su") {
            return Ok(RunAs::Su { tool, user });
        }
        Err(RunAsError::NoTool)
    }

    /// The operating-system user the commands run as, when switching (as root).
    pub(crate) fn user(&self) -> Option<&'static str> {
        match self {
            RunAs::Current => None,
            RunAs::Runuser { user, .. } | RunAs::Su { user, .. } => Some(user),
        }
    }

    pub(crate) fn command(&self, program: &str, args: &[String]) -> Command {
        match self {
            RunAs::Current => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
            RunAs::Runuser { tool, user } => {
                let mut c = Command::new(tool);
                c.args(["-u", user, "--", program]).args(args);
                c
            }
            RunAs::Su { tool, user } => {
                let mut c = Command::new(tool);
                c.args([user, "-s", "/bin/sh", "-c"])
                    .arg(shell_join(program, args));
                c
            }
        }
    }

    /// Runs to completion with stdin closed, capturing the output.
    pub(crate) fn run(
        &self,
        program: &str,
        args: &[String],
        cwd: &Path,
        what: &str,
    ) -> Result<Output, (String, io::Error)> {
        self.command(program, args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                (
                    format!("running {what} ({})", self.shell_line(program, args)),
                    e,
                )
            })
    }

    /// The command as one `sh` line.
    pub(crate) fn shell_line(&self, program: &str, args: &[String]) -> String {
        match self {
            RunAs::Current => shell_join(program, args),
            RunAs::Runuser { tool, user } => format!(
                "{} -u {user} -- {}",
                sh_quote(tool),
                shell_join(program, args)
            ),
            RunAs::Su { tool, user } => format!(
                "{} {user} -s /bin/sh -c {}",
                sh_quote(tool),
                sh_quote(&shell_join(program, args))
            ),
        }
    }
}

/// Whether the operating-system user `user` exists.
pub(crate) fn user_exists(user: &str) -> bool {
    Command::new("id")
        .args(["-u", user])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub(crate) fn is_root() -> bool {
    if let Ok(out) = Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).trim() == "0";
        }
    }
    // No `id`: on Linux, /proc/self belongs to the effective user.
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `name` on `PATH`, or in the system's program folders (`/usr/sbin` is often not on a
/// user's `PATH`, and server programs live there).
pub(crate) fn find_program(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/sbin",
                "/usr/bin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

/// Single-quotes `s` for `sh`.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub(crate) fn shell_join(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(sh_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
pub(crate) fn free_port() -> io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

// ---------------------------------------------------------------------------
// Private folder
// ---------------------------------------------------------------------------

/// Longest socket file path we create (the kernel limit is 107 bytes).
const MAX_SOCKET_PATH: usize = 100;

/// Characters allowed in the folder path: safe unquoted in URLs and inside
/// the single quotes of `pg_ctl -o`.
pub(crate) fn is_safe_path(p: &Path) -> bool {
    p.to_str().is_some_and(|s| {
        s.starts_with('/')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
    })
}

/// Creates `<tmp>/<prefix>-<unique>` (mode 0700), owned by the server's user when running as
/// root, and checks the server will be able to use it; `socket` is the longest file name the
/// server puts there as a Unix socket (the path must fit the kernel's limit). On failure, every
/// candidate parent folder with the reason it was rejected.
pub(crate) fn create_private_dir(
    run_as: &RunAs,
    prefix: &str,
    socket: &str,
) -> Result<PathBuf, Vec<String>> {
    let mut candidates = vec![std::env::temp_dir()];
    if candidates[0] != Path::new("/tmp") {
        candidates.push(PathBuf::from("/tmp"));
    }
    let mut tried = Vec::new();
    for base in candidates {
        let dir = base.join(format!(
            "{prefix}-{}",
            crate::unique_name("d")
                .trim_start_matches("d_")
                .replace('_', "-")
        ));
        let socket_len = dir.as_os_str().len() + 1 + socket.len();
        if !is_safe_path(&dir) {
            tried.push(format!(
                "{} (path has characters other than A-Z a-z 0-9 / . _ -)",
                base.display()
            ));
            continue;
        }
        if socket_len > MAX_SOCKET_PATH {
            tried.push(format!(
                "{} (path too long for a Unix socket)",
                base.display()
            ));
            continue;
        }
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&dir) {
            tried.push(format!("{} ({e})", base.display()));
            continue;
        }
        if let Some(user) = run_as.user() {
            let chown = Command::new("chown")
                .args([OsStr::new("-R"), OsStr::new(user), dir.as_os_str()])
                .stdin(Stdio::null())
                .output();
            let ok = match &chown {
                Ok(out) if out.status.success() => true,
                Ok(out) => {
                    tried.push(format!(
                        "{} (chown {user} failed: {})",
                        base.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                    false
                }
                Err(e) => {
                    tried.push(format!("{} (chown: {e})", base.display()));
                    false
                }
            };
            // The server's user must be able to reach the folder through all its parents.
            let ok = ok
                && run_as
                    .run(
                        "test",
                        &["-w".into(), dir.to_string_lossy().into_owned()],
                        Path::new("/"),
                        "test -w",
                    )
                    .map(|o| o.status.success())
                    .unwrap_or(false);
            if !ok {
                if chown.as_ref().is_ok_and(|o| o.status.success()) {
                    tried.push(format!(
                        "{} (not writable for the {user} user)",
                        base.display()
                    ));
                }
                let _ = fs::remove_dir_all(&dir);
                continue;
            }
        }
        return Ok(dir);
    }
    Err(tried)
}

// ---------------------------------------------------------------------------
// Watchdog
// ---------------------------------------------------------------------------

/// Spawns a detached shell that waits for this process to exit (or for `dir` to disappear),
/// then runs `stop` (a shell line stopping the server) and removes `dir`.
///
/// It runs in its own process group, so a Ctrl-C aimed at the test runner does not kill it
/// before it has cleaned up, and it survives a `kill -9` of this process.
pub(crate) fn spawn_watchdog(dir: &Path, stop: &str) -> io::Result<Child> {
    let dir = sh_quote(&dir.to_string_lossy());
    let script = format!(
        "trap '' HUP INT; \
         while kill -0 {pid} 2>/dev/null && [ -d {dir} ]; do sleep 0.5; done; \
         if [ -d {dir} ]; then {stop}; rm -rf {dir}; fi",
        pid = std::process::id(),
    );
    Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .process_group(0)
        .spawn()
}

/// Removes `dir`, retrying a few times (a server that was just stopped may still be closing
/// its files); whether it is gone.
pub(crate) fn remove_dir(dir: &Path) -> bool {
    for attempt in 0..5 {
        match fs::remove_dir_all(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50 << attempt)),
        }
    }
    false
}

/// The last `max_lines` lines of `text`.
pub(crate) fn tail(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(max_lines);
    lines[start..].join("\n")
}

/// The last `max_lines` lines of the file at `path`, if it can be read.
pub(crate) fn file_tail(path: &Path, max_lines: usize) -> Option<String> {
    fs::read(path)
        .ok()
        .map(|b| tail(&String::from_utf8_lossy(&b), max_lines))
}

/// Whether `pid` exists and is not a zombie.
#[cfg(test)]
pub(crate) fn process_alive(pid: &str) -> bool {
    if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Format: `pid (comm) state ...`
        if let Some(rest) = stat.rsplit_once(')') {
            if rest.1.trim_start().starts_with('Z') {
                return false;
            }
        }
    }
    Command::new("kill")
        .args(["-0", pid])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Whether `pid` is gone within `limit`.
#[cfg(test)]
pub(crate) fn gone(pid: &str, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while process_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    !process_alive(pid)
}
