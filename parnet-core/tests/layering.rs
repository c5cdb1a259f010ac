//! The import structure of parnet-core's own source, checked: dependencies point one way.
//!
//! Every `crate::...` and `super::...` path in `src/` (code and unit tests; comments are skipped)
//! is an edge from the file to the module it names. Two rules:
//! - between top-level modules, an edge may only point down [`LAYERS`] (a module may use those
//!   listed before it);
//! - inside any module, the edges between its children (files or folders) form no circle.
//!
//! A file's use of its own ancestors (`super::Geometry` from a child) or of its own descendants
//! is not an edge: a `mod.rs` is the face of its folder.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Top-level modules from the bottom up; each may depend only on modules before it.
const LAYERS: [&str; 16] = [
    "error", "replicas", "tensor", "testing", "kernels", "autograd", "ops", "nn", "reparam",
    "optim", "io", "exec", "models", "training", "onnx", "lib",
];

type ModPath = Vec<String>;

/// Every `.rs` file under `src/` with its module path (`ops/conv2d/mod.rs` -> `ops::conv2d`).
fn source_files(dir: &Path, prefix: &[String], out: &mut Vec<(ModPath, String)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            let mut p = prefix.to_vec();
            p.push(name);
            source_files(&path, &p, out);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            let mut p = prefix.to_vec();
            let is_mod = stem == "mod" || (prefix.is_empty() && stem == "lib");
            if !is_mod {
                p.push(stem.to_string());
            }
            out.push((p, fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The text without `//` comments (string literals holding `//` do not occur in paths).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The `a::b::c` path segments starting at `s` (stops at the first non-path character); a
/// `{...}` group yields one path per item.
fn paths_at(s: &str) -> Vec<Vec<String>> {
    let mut segs = Vec::new();
    let mut rest = s;
    loop {
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if end == 0 {
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut item_start = 0;
                let mut out = Vec::new();
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            out.push(&group[item_start..i]);
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push(&group[item_start..i]);
                            item_start = i + 1;
                        }
                        _ => {}
                    }
                }
                return out
                    .into_iter()
                    .flat_map(|item| paths_at(item.trim_start()))
                    .map(|tail| segs.iter().cloned().chain(tail).collect())
                    .collect();
            }
            break;
        }
        segs.push(rest[..end].to_string());
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    vec![segs]
}

/// Absolute module paths (possibly ending in an item name) that `file` refers to.
fn references(file: &ModPath, text: &str) -> Vec<ModPath> {
    let text = strip_comments(text);
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        if i > 0 && is_ident(text[..i].chars().last().unwrap()) {
            continue;
        }
        out.extend(paths_at(&text[i + "crate::".len()..]));
    }
    for (i, _) in text.match_indices("super::") {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        // `super` is the parent of the file's module (for `mod.rs`, of its folder's module).
        let mut base: Vec<String> = file.clone();
        base.pop();
        let mut rest = &text[i + "super::".len()..];
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        for tail in paths_at(rest) {
            out.push(base.iter().cloned().chain(tail).collect());
        }
    }
    out
}

struct Tree {
    modules: BTreeSet<ModPath>,
}

impl Tree {
    /// The longest prefix of `path` that is a module of the crate.
    fn module_of(&self, path: &[String]) -> ModPath {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| self.modules.contains(p))
            .unwrap_or_default()
    }
}

/// The groups of modules that reach each other (strongly connected, more than one member).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|n| (n, reach(n))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for (n, r) in &reached {
        if !r.contains(n.as_str()) || out.iter().any(|c| c.contains(n)) {
            continue;
        }
        let group = r
            .iter()
            .filter(|m| reached.get(m).is_some_and(|back| back.contains(n.as_str())))
            .cloned()
            .collect();
        out.push(group);
    }
    out
}

#[test]
fn core_modules_depend_one_way_and_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &[], &mut files);
    let tree = Tree {
        modules: files.iter().map(|(p, _)| p.clone()).collect(),
    };
    // (parent module, child it is seen from) -> children it uses; and top-level edges.
    let mut sibling_edges: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut upward = BTreeSet::new();
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    for (file, text) in &files {
        for target in references(file, text) {
            let target = tree.module_of(&target);
            // Ancestors are the module's face; descendants are the module's own parts.
            if target.is_empty() || file.starts_with(&target) || target.starts_with(file) {
                continue;
            }
            let common = file.iter().zip(&target).take_while(|(a, b)| a == b).count();
            let (from, to) = (&file[common], &target[common]);
            if common == 0 {
                let (rf, rt) = (rank(from), rank(to));
                assert!(rf.is_some(), "top-level module {from} is not in LAYERS");
                assert!(rt.is_some(), "top-level module {to} is not in LAYERS");
                if rt >= rf {
                    upward.insert(format!("{} -> {}", file.join("::"), target.join("::")));
                }
            }
            sibling_edges
                .entry(file[..common].to_vec())
                .or_default()
                .entry(from.clone())
                .or_default()
                .insert(to.clone());
        }
    }
    let cycles: Vec<String> = sibling_edges
        .iter()
        .flat_map(|(parent, edges)| {
            circles(edges)
                .into_iter()
                .map(move |c| format!("in crate::{}: {{{}}}", parent.join("::"), c.join(", ")))
        })
        .collect();
    assert!(
        upward.is_empty() && cycles.is_empty(),
        "imports that point up the layers {LAYERS:?}:\n{}\nimport circles:\n{}",
        upward.into_iter().collect::<Vec<_>>().join("\n"),
        cycles.join("\n")
    );
}

#[test]
fn simd_code_lives_under_kernels() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &[], &mut files);
    let outside: Vec<String> = files
        .iter()
        .filter(|(path, _)| path.first().map(String::as_str) != Some("kernels"))
        .filter(|(_, text)| {
            let code = strip_comments(text);
            [
                "std::arch",
                "target_feature",
                "avx2_kernel!",
                "is_x86_feature_detected",
            ]
            .iter()
            .any(|needle| code.contains(needle))
        })
        .map(|(path, _)| path.join("::"))
        .collect();
    assert!(
        outside.is_empty(),
        "SIMD code outside kernels/: {outside:?}"
    );
}

#[test]
fn the_checker_sees_paths_groups_and_super() {
    let file: ModPath = vec!["ops".into(), "conv2d".into(), "backward".into()];
    let refs = references(
        &file,
        "use crate::kernels::{gemm, im2col::{col2im, Geom}};\nuse super::direct::weight; // crate::models\nlet x = crate::tensor::Tensor::zeros(1);",
    );
    let refs: Vec<String> = refs.iter().map(|r| r.join("::")).collect();
    assert_eq!(
        refs,
        [
            "kernels::gemm",
            "kernels::im2col::col2im",
            "kernels::im2col::Geom",
            "tensor::Tensor::zeros",
            "ops::conv2d::direct::weight"
        ]
    );
    let mod_rs: ModPath = vec!["ops".into(), "conv2d".into()];
    let refs = references(&mod_rs, "use super::pool::x;");
    assert_eq!(refs[0].join("::"), "ops::pool::x");
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    edges.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(circles(&edges), [["a", "b"]]);
}
