//! The layering check (run by `.ci/run`): in each library crate, the `mod` lines of
//! `lib.rs` list the top-level modules from the bottom layer up, and a module may name only
//! modules listed before it. A lower module that names a higher one — `crate::pool` in
//! `error.rs`, say — fails the check with the line that does it, so the module graph
//! stays free of circles.
//!
//! "Names" means code, not comments: a path `crate::m::…` or `crate::{m, …}`, a `super::m`
//! that reaches the crate root, or an item that `lib.rs` re-exports from `m`
//! (`crate::Process` names `process`). Comments and string literals are not read.
//!
//! Written by hand (no parser crate): the few shapes of path above are all the check needs,
//! and `syn` would add a heavy build for one test.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The library crates, by directory under `crates/`.
const CRATES: [&str; 3] = ["core", "threading", "multiprocessing"];

#[test]
fn no_module_names_a_module_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut violations = Vec::new();
    for name in CRATES {
        let src = root.join("crates").join(name).join("src");
        violations.extend(check_crate(&src).into_iter().map(|v| format!("crates/{name}/src/{v}")));
    }
    assert!(
        violations.is_empty(),
        "lower modules name higher ones (the order is lib.rs's `mod` lines, bottom first):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_check_sees_every_kind_of_reference() {
    let code = "use crate::{a, b::{c, d}};\nfn f() { crate::e::g(); super::h(); crate::Item; }\n\
                // crate::comment\nconst S: &str = \"crate::string\";";
    let reexports = BTreeMap::from([("Item".to_owned(), "i".to_owned())]);
    let found: Vec<String> =
        references(&strip(code), true, &reexports).into_iter().map(|(m, _)| m).collect();
    assert_eq!(found, ["a", "b", "e", "h", "i"]);
}

/// The violations of one crate, as `file:line: module names higher`.
fn check_crate(src: &Path) -> Vec<String> {
    let lib = strip(&fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    let order = module_order(&lib);
    assert!(!order.is_empty(), "no modules found in {}", src.display());
    let reexports = reexports(&lib);
    let rank: BTreeMap<&str, usize> =
        order.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let mut violations = Vec::new();
    for (index, module) in order.iter().enumerate() {
        for (file, top_level) in module_files(src, module) {
            let code = strip(&fs::read_to_string(&file).expect("module file"));
            for (named, line) in references(&code, top_level, &reexports) {
                if let Some(&other) = rank.get(named.as_str()) {
                    if other > index {
                        violations.push(format!(
                            "{}:{line}: `{module}` names `{named}`, which is above it",
                            file.strip_prefix(src).unwrap_or(&file).display()
                        ));
                    }
                }
            }
        }
    }
    violations
}

/// The crate's modules in the order of their `mod` lines (test-only modules left out).
fn module_order(lib: &str) -> Vec<String> {
    let mut order = Vec::new();
    let mut cfg_test = false;
    for line in lib.lines().map(str::trim) {
        if line.starts_with("#[cfg(test)]") {
            cfg_test = true;
            continue;
        }
        let rest = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("pub(crate) mod "))
            .or_else(|| line.strip_prefix("mod "));
        if let Some(name) = rest.and_then(|r| r.strip_suffix(';')) {
            if !cfg_test {
                order.push(name.trim().to_owned());
            }
        }
        if !line.is_empty() && !line.starts_with("#[") {
            cfg_test = false;
        }
    }
    order
}

/// Items that `lib.rs` re-exports, by the module they come from: `pub use m::{A, B};`.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut rest = lib;
    while let Some(at) = rest.find("use ") {
        let statement = &rest[at + 4..];
        let end = statement.find(';').unwrap_or(statement.len());
        let statement = &statement[..end];
        rest = &rest[at + 4 + end..];
        let Some((module, items)) = statement.split_once("::") else { continue };
        let module = module.trim();
        if module == "std" || module == "crate" || module == "self" {
            continue;
        }
        for item in items.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if item.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') {
                map.insert(item.to_owned(), module.to_owned());
            }
        }
    }
    map
}

/// The files of `module` with whether each is at the top level (where `super::` is the
/// crate root).
fn module_files(src: &Path, module: &str) -> Vec<(PathBuf, bool)> {
    let file = src.join(format!("{module}.rs"));
    let dir = src.join(module);
    let mut files = Vec::new();
    if file.is_file() {
        files.push((file, true));
    }
    if dir.is_dir() {
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).expect("module directory").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let top = path.parent() == Some(&src.join(module))
                        && path.file_name().is_some_and(|n| n == "mod.rs");
                    files.push((path, top));
                }
            }
        }
    }
    files
}

/// Every crate-level name the code uses, with its line: the first segment after
/// `crate::` (each first segment of a `crate::{…}` group), or after `super::` in a
/// top-level file; re-exported items are mapped to their module.
fn references(
    code: &str,
    top_level: bool,
    reexports: &BTreeMap<String, String>,
) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let prefixes: &[&str] = if top_level { &["crate::", "super::"] } else { &["crate::"] };
    for prefix in prefixes {
        let mut from = 0;
        while let Some(at) = code[from..].find(prefix) {
            let start = from + at;
            from = start + prefix.len();
            let before = code[..start].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                continue;
            }
            let line = code[..start].matches('\n').count() + 1;
            let rest = &code[from..];
            let names = if let Some(group) = rest.strip_prefix('{') {
                first_segments(group)
            } else {
                vec![identifier(rest)]
            };
            for name in names.into_iter().filter(|n| !n.is_empty()) {
                let module = reexports.get(&name).cloned().unwrap_or(name);
                found.push((module, line));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The first identifier of each top-level entry of a `{…}` use group.
fn first_segments(group: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut at_entry = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_entry = true,
            c if at_entry && (c.is_alphanumeric() || c == '_') => {
                names.push(identifier(&group[i..]));
                at_entry = false;
            }
            _ => {}
        }
    }
    names
}

fn identifier(text: &str) -> String {
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// `code` with comments and string literals blanked (newlines kept, for line numbers).
fn strip(code: &str) -> String {
    let bytes = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < bytes.len() {
        if code[i..].starts_with("//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if code[i..].starts_with("/*") {
            let end = code[i + 2..].find("*/").map_or(bytes.len(), |e| i + 2 + e + 2);
            out.extend(code[i..end].chars().filter(|&c| c == '\n'));
            i = end;
        } else if bytes[i] == b'"' && !code[..i].ends_with('\'') {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(bytes.len());
            out.extend(code[i..end].chars().filter(|&c| c == '\n'));
            i = end;
        } else {
            let c = code[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}
