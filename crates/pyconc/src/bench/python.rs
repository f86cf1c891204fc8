//! Running the CPython side of a benchmark: the shipped scripts, run by the real `python3`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The CPython interpreter to compare with, if it runs.
#[derive(Debug)]
pub(crate) struct Python {
    program: PathBuf,
    version: Result<String, String>,
}

impl Python {
    /// Checks that `program` runs; its absence is recorded, not an error.
    pub(crate) fn find(program: &Path) -> Python {
        let version = Command::new(program)
            .args(["-c", "import sys; print(sys.version.split()[0])"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))
            .and_then(|out| {
                if out.status.success() {
                    Ok(format!("CPython {}", String::from_utf8_lossy(&out.stdout).trim()))
                } else {
                    Err(format!("{} failed: {}", program.display(), out.status))
                }
            });
        Python { program: program.to_owned(), version }
    }

    pub(crate) fn version(&self) -> Result<String, String> {
        self.version.clone()
    }

    /// Runs `script` with `args` and parses the JSON object it prints last.
    pub(crate) fn run_script(&self, script: &str, args: &[&str]) -> Result<Value, String> {
        self.version.as_ref()?;
        let out = Command::new(&self.program)
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        if !out.status.success() {
            return Err(format!(
                "the CPython script failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).map_err(|e| format!("unreadable CPython output: {e}"))
    }
}
