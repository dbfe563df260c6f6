//! `strategy:`: `fail-fast`, `max-parallel`, and the shape of `matrix` (kept as a YAML
//! node for the planner, which evaluates its expressions).

use crate::yaml::{Node, NodeValue};

use super::expressions::Scope;
use super::reader::Reader;
use super::types::Strategy;

pub(crate) fn read_strategy(r: &mut Reader, node: &Node) -> Option<Strategy> {
    let scope = Scope::Strategy;
    if r.whole_expression(node, scope).is_some() {
        return Some(Strategy {
            matrix: Some(node.clone()),
            fail_fast: None,
            max_parallel: None,
            location: node.location,
        });
    }
    let mut strategy = Strategy {
        matrix: None,
        fail_fast: None,
        max_parallel: None,
        location: node.location,
    };
    for (key, _, value) in r.mapping(node, Some(&["fail-fast", "max-parallel", "matrix"]))? {
        match key {
            "fail-fast" => strategy.fail_fast = r.boolean(value, scope),
            "max-parallel" => strategy.max_parallel = r.number(value, scope),
            _ => {
                check_matrix(r, value);
                strategy.matrix = Some(value.clone());
            }
        }
    }
    Some(strategy)
}

/// Checks a matrix's shape: vectors are non-empty sequences (or expressions);
/// `include` / `exclude` are sequences of mappings.
fn check_matrix(r: &mut Reader, node: &Node) {
    let scope = Scope::Strategy;
    if r.whole_expression(node, scope).is_some() {
        return;
    }
    for (key, _, value) in r.mapping_with_keys(node, None, scope).unwrap_or_default() {
        if r.whole_expression(value, scope).is_some() {
            continue;
        }
        let Some(items) = value.as_sequence() else {
            let help = if key == "include" || key == "exclude" {
                format!("'{key}' is a list of mappings, each starting with '- '.")
            } else {
                format!(
                    "Write the values of '{key}' as a list, like '{key}: [a, b]', or one '${{{{ }}}}' expression."
                )
            };
            r.unexpected(value, help);
            continue;
        };
        if key == "include" || key == "exclude" {
            for item in items {
                if r.whole_expression(item, scope).is_none() {
                    for (_, _, v) in r.mapping(item, None).unwrap_or_default() {
                        check_matrix_value(r, v);
                    }
                }
            }
        } else if items.is_empty() {
            r.error(
                value.location,
                format!("Matrix vector '{key}' does not contain any values"),
                format!("Give '{key}' at least one value, or remove it."),
            );
        } else {
            for item in items {
                check_matrix_value(r, item);
            }
        }
    }
}

fn check_matrix_value(r: &mut Reader, node: &Node) {
    match &node.value {
        NodeValue::String(_) => {
            r.string(node, Scope::Strategy);
        }
        NodeValue::Sequence(items) => items.iter().for_each(|i| check_matrix_value(r, i)),
        NodeValue::Mapping(entries) => entries.iter().for_each(|(_, v)| check_matrix_value(r, v)),
        _ => {}
    }
}
