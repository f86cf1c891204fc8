//! Running the CPython side of a benchmark: the shipped scripts, run by the real `python3`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::measure::{Figures, Stats};

/// The timing loop every CPython script uses.
const COMMON: &str = include_str!("common.py");

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

    /// Runs `script` with `args` (as `python3 -c`, after the shared `common.py`) and parses
    /// the JSON object it prints last.
    pub(crate) fn run_script(&self, script: &str, args: &[&str]) -> Result<Value, String> {
        self.version.as_ref()?;
        let mut command = Command::new(&self.program);
        command.arg("-c").arg(format!("{COMMON}\n{script}")).args(args);
        Self::json_of(&self.program, command)
    }

    /// Runs `script` saved as a file named `name` in a fresh temporary directory: a script
    /// whose spawn children must import it as their main module needs a real file.
    pub(crate) fn run_script_file(
        &self,
        name: &str,
        script: &str,
        args: &[&str],
    ) -> Result<Value, String> {
        self.run_script_file_under(&[], &[], name, script, args)
    }

    /// [`run_script_file`](Python::run_script_file) started through `launcher` (e.g.
    /// `mpirun -n 3`; empty: the interpreter directly), with `python_args` for the
    /// interpreter before the script (e.g. `-m mpi4py.futures`).
    pub(crate) fn run_script_file_under(
        &self,
        launcher: &[String],
        python_args: &[&str],
        name: &str,
        script: &str,
        args: &[&str],
    ) -> Result<Value, String> {
        self.version.as_ref()?;
        let dir = std::env::temp_dir().join(format!("pyconc-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(name);
        std::fs::write(&path, format!("{COMMON}\n{script}"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut command = match launcher.split_first() {
            None => Command::new(&self.program),
            Some((first, rest)) => {
                let mut command = Command::new(first);
                command.args(rest).arg(&self.program);
                command
            }
        };
        command.args(python_args).arg(&path).args(args);
        let result = Self::json_of(&self.program, command);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn json_of(program: &Path, mut command: Command) -> Result<Value, String> {
        let out = command.output().map_err(|e| format!("cannot run {}: {e}", program.display()))?;
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

/// The figures of operation `key` in the JSON printed by a CPython script.
pub(crate) fn python_figures(
    all: &Result<Value, String>,
    key: &str,
    backend: &str,
) -> Result<Figures, String> {
    let all = all.as_ref().map_err(Clone::clone)?;
    let op = &all[key];
    let wall = &op["wall_ns"];
    let get = |field: &str| wall[field].as_f64().ok_or_else(|| format!("{key}: no {field}"));
    Ok(Figures {
        backend: backend.to_owned(),
        wall_ns: Stats { min: get("min")?, median: get("median")?, max: get("max")? },
        cpu_ns: op["cpu_ns"].as_f64(),
        peak_rss_kib: None,
    })
}
