//! Every IAM action the adapters name (the action of each call, as errors report it) is in
//! the engine table (`snapcourier_core::engine::EngineFacts::iam`), from which the stacks grant
//! each step's role: a new call without a grant fails here, not in production.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;
use snapcourier_core::Engine;
use snapcourier_core::engine::ENGINE_SERVICES;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The engines a source file serves: its adapter's and steps' own, or every engine.
fn engines_of(path: &Path) -> Vec<Engine> {
    let name = path.file_stem().unwrap().to_str().unwrap();
    match name {
        "aurora" => vec![Engine::Aurora],
        "rds" => vec![Engine::Rds, Engine::Aurora],
        "redshift" => vec![Engine::Redshift],
        "elasticache" => vec![Engine::ElastiCache],
        _ => Engine::ALL.to_vec(),
    }
}

#[test]
fn every_action_the_adapters_name_is_in_the_engine_table() {
    let services = ENGINE_SERVICES.join("|");
    let action = Regex::new(&format!(r#""((?:{services}):[A-Za-z0-9]+)""#)).unwrap();
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut named = 0;
    let mut missing = BTreeSet::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let table: BTreeSet<&str> = engines_of(path)
            .into_iter()
            .flat_map(|e| e.facts().iam.all())
            .collect();
        for found in action.captures_iter(&text) {
            named += 1;
            if !table.contains(&found[1]) {
                missing.insert(format!("{} ({})", &found[1], path.display()));
            }
        }
    }
    assert!(named > 50, "the scan found the adapters' actions: {named}");
    assert!(
        missing.is_empty(),
        "actions the code names but the engine table (crates/core/src/engine.rs) does not, so no role is granted them: {missing:#?}"
    );
}

#[test]
fn the_table_holds_only_its_services_actions_each_once_per_step() {
    for e in Engine::ALL {
        let iam = e.facts().iam;
        for step in [
            iam.take,
            iam.share,
            iam.copy_in_destination,
            iam.cross_region_copy,
            iam.delete,
            iam.drill,
            iam.cli,
        ] {
            let unique: BTreeSet<&str> = step.iter().copied().collect();
            assert_eq!(unique.len(), step.len(), "{e}: {step:?}");
            for a in step {
                let service = a.split(':').next().unwrap_or_default();
                assert!(ENGINE_SERVICES.contains(&service), "{e}: {a}");
            }
        }
    }
}
