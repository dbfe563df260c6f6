//! `on:` in its three forms (one event, a list, a mapping with filters), with
//! `workflow_dispatch` and `workflow_call` definitions and `schedule` crons.
//! Event names, filters, activity types and crons are checked as GitHub's strict schema
//! checks them when the file is read as GitHub ([`super::event_checks`]); Gitea and
//! Forgejo read them as act does and ignore what they do not know.

use crate::yaml::{Node, NodeValue};

use super::dialect::Dialect;
use super::event_checks;
use super::expressions::Scope;
use super::reader::{Reader, WANT_SEQUENCE, WANT_STRING};
use super::suggest::did_you_mean;

const EVENT_FORMS: &str = "Write 'on:' as one event ('on: push'), a list of events ('on: [push, pull_request]'), or a mapping of events to their filters.";

/// The help for an input `type` GitHub does not know.
fn input_type_help(node: &Node, dispatch: bool) -> String {
    let types: &[&str] = if dispatch {
        &["string", "boolean", "number", "choice", "environment"]
    } else {
        &["string", "boolean", "number"]
    };
    did_you_mean(node.as_str().unwrap_or_default(), types, "types")
}
use super::types::{
    CallOutput, CallSecret, Cron, Event, Input, InputType, Located, Triggers, WorkflowCall,
};

pub(crate) fn read_triggers(r: &mut Reader, node: &Node) -> Triggers {
    let mut events = Vec::new();
    match &node.value {
        NodeValue::String(_) => {
            if let Some(name) = r.non_empty_string(node, Scope::None) {
                event_checks::check_event_name(r, &name);
                events.push(Event {
                    name,
                    ..Event::default()
                });
            }
        }
        NodeValue::Sequence(items) => {
            for item in items {
                if let Some(name) = r.non_empty_string(item, Scope::None) {
                    event_checks::check_event_name(r, &name);
                    events.push(Event {
                        name,
                        ..Event::default()
                    });
                }
            }
        }
        NodeValue::Mapping(_) => {
            for (name, key, value) in r.mapping(node, None).unwrap_or_default() {
                let name = Located::new(name.to_string(), key.location);
                event_checks::check_event_name(r, &name);
                event_checks::check_event_config(r, &name.value, value);
                events.push(read_event(r, name, value));
            }
        }
        _ => r.unexpected(node, EVENT_FORMS),
    }
    Triggers { events }
}

fn read_event(r: &mut Reader, name: Located<String>, node: &Node) -> Event {
    let mut event = Event {
        name,
        ..Event::default()
    };
    match event.name.value.as_str() {
        "schedule" => {
            event.schedule = read_schedule(r, node);
            return event;
        }
        "workflow_call" => {
            event.call = Some(read_workflow_call(r, node));
            return event;
        }
        _ => {}
    }
    let Some(entries) = node.as_mapping() else {
        // `push:` (null) and other scalars carry no configuration.
        if matches!(node.value, NodeValue::Sequence(_)) {
            r.unexpected(
                node,
                "An event's configuration is a mapping of filters, like 'branches: [main]'.",
            );
        }
        return event;
    };
    for (key, value) in entries {
        let list = |r: &mut Reader| r.string_list(value, Scope::None, true);
        match key.as_str().unwrap_or_default() {
            "types" => event.types = list(r).unwrap_or_default(),
            "branches" => event.branches = list(r),
            "branches-ignore" => event.branches_ignore = list(r),
            "tags" => event.tags = list(r),
            "tags-ignore" => event.tags_ignore = list(r),
            "paths" => event.paths = list(r),
            "paths-ignore" => event.paths_ignore = list(r),
            "workflows" => event.workflows = list(r).unwrap_or_default(),
            "names" => event.names = list(r),
            "versions" => event.versions = list(r),
            "inputs" if event.name.value == "workflow_dispatch" => {
                event.dispatch_inputs = read_dispatch_inputs(r, value);
            }
            _ => {}
        }
    }
    event
}

fn read_schedule(r: &mut Reader, node: &Node) -> Vec<Cron> {
    let Some(items) = node.as_sequence() else {
        r.unexpected(
            node,
            format!("'schedule' is a list of '- cron: \"...\"' entries. {WANT_SEQUENCE}"),
        );
        return Vec::new();
    };
    let mut crons = Vec::new();
    for (index, item) in items.iter().enumerate() {
        // GitHub knows `cron` and `timezone`; Gitea reads `cron` and ignores the rest;
        // Forgejo refuses any other key (forgejo-runner's `act/jobparser/model.go`).
        let known: Option<&[&str]> = match r.dialect {
            Dialect::Github => Some(&["cron", "timezone"]),
            Dialect::Gitea | Dialect::Forgejo => None,
        };
        let Some(entries) = r.mapping(item, known) else {
            continue;
        };
        let mut cron = None;
        let mut timezone = None;
        for (key, key_node, value) in entries {
            match key {
                "cron" => cron = r.non_empty_string(value, Scope::None),
                "timezone" if r.dialect == Dialect::Github => {
                    timezone = r.non_empty_string(value, Scope::None);
                }
                _ if r.dialect == Dialect::Forgejo => r.error(
                    key_node.location,
                    format!("key \"schedule\"[{index}] had unexpected key \"{key}\"; \"cron\" was expected"),
                    if key == "timezone" {
                        format!("'timezone:' is GitHub syntax; {}. Put the zone in the cron string instead: 'TZ=Europe/Berlin 0 3 * * *'.", r.dialect.read_as())
                    } else {
                        "Forgejo's schedule entries hold only 'cron:'.".to_string()
                    },
                ),
                _ => {}
            }
        }
        match cron {
            Some(cron) => {
                event_checks::check_cron(r, &cron.value, cron.location);
                crons.push(Cron { cron, timezone });
            }
            None => r.missing(item.location, "cron"),
        }
    }
    crons
}

fn input_type(text: &str, dispatch: bool) -> Option<InputType> {
    match text {
        "string" => Some(InputType::String),
        "boolean" => Some(InputType::Boolean),
        "number" => Some(InputType::Number),
        "choice" if dispatch => Some(InputType::Choice),
        "environment" if dispatch => Some(InputType::Environment),
        _ => None,
    }
}

/// `workflow_dispatch.inputs`, read leniently (unknown keys ignored) as GitHub does.
fn read_dispatch_inputs(r: &mut Reader, node: &Node) -> Vec<Input> {
    if node.is_null() {
        return Vec::new();
    }
    let mut inputs = Vec::new();
    for (name, key, value) in r.mapping(node, None).unwrap_or_default() {
        let mut input = Input {
            name: Located::new(name.to_string(), key.location),
            description: None,
            input_type: InputType::String,
            required: false,
            default: None,
            options: Vec::new(),
        };
        for (k, v) in value.as_mapping().unwrap_or_default() {
            match k.as_str().unwrap_or_default() {
                "description" => input.description = v.scalar_text(),
                "type" => match v.as_str().and_then(|t| input_type(t, true)) {
                    Some(t) => input.input_type = t,
                    None => r.unexpected(v, input_type_help(v, true)),
                },
                "required" => input.required = r.plain_bool(v).unwrap_or(false),
                "default" => input.default = Some(v.clone()),
                "options" => {
                    input.options = r
                        .string_sequence(v, Scope::None, false)
                        .into_iter()
                        .map(|s| s.value)
                        .collect();
                }
                _ => {}
            }
        }
        inputs.push(input);
    }
    inputs
}

fn read_workflow_call(r: &mut Reader, node: &Node) -> WorkflowCall {
    let mut call = WorkflowCall::default();
    if node.is_null() {
        return call;
    }
    let Some(entries) = r.mapping(node, Some(&["inputs", "secrets", "outputs"])) else {
        return call;
    };
    for (key, key_node, value) in entries {
        if key == "secrets" && r.dialect == Dialect::Forgejo {
            // forgejo-runner's `act/jobparser/model.go` (the server parses `on:` with it).
            r.error(
                key_node.location,
                "workflow_call only supports keys \"inputs\" and \"outputs\", but key \"secrets\" was found",
                format!(
                    "Declaring the secrets of a called workflow is GitHub syntax; {}, where a called workflow reads the caller's secrets without declaring them. Remove 'secrets:'.",
                    r.dialect.read_as()
                ),
            );
            continue;
        }
        if value.is_null() {
            // GitHub's schema wants a mapping here (`workflow-call-inputs` and the others
            // are mappings, not null); act reads null as empty.
            if !r.dialect.is_forge() {
                r.unexpected(
                    value,
                    format!("Give '{key}:' a mapping, or remove the key."),
                );
            }
            continue;
        }
        match key {
            "inputs" => call.inputs = read_call_inputs(r, value),
            "secrets" => call.secrets = read_call_secrets(r, value),
            _ => call.outputs = read_call_outputs(r, value),
        }
    }
    call
}

fn read_call_inputs(r: &mut Reader, node: &Node) -> Vec<Input> {
    let mut inputs = Vec::new();
    for (name, key, value) in r.mapping(node, None).unwrap_or_default() {
        let Some(entries) = r.mapping(value, Some(&["description", "type", "required", "default"]))
        else {
            continue;
        };
        let mut input = Input {
            name: Located::new(name.to_string(), key.location),
            description: None,
            input_type: InputType::String,
            required: false,
            default: None,
            options: Vec::new(),
        };
        let mut has_type = false;
        for (k, _, v) in entries {
            match k {
                "description" => input.description = r.string(v, Scope::None).map(|s| s.value),
                "type" => match v.as_str().and_then(|t| input_type(t, false)) {
                    Some(t) => {
                        input.input_type = t;
                        has_type = true;
                    }
                    None => {
                        r.unexpected(v, input_type_help(v, false));
                        has_type = true;
                    }
                },
                "required" => input.required = r.plain_bool(v).unwrap_or(false),
                _ => {
                    if v.as_mapping().is_some() || v.as_sequence().is_some() {
                        r.unexpected(v, WANT_STRING);
                    } else {
                        r.string(v, Scope::Workflow);
                        input.default = Some(v.clone());
                    }
                }
            }
        }
        if !has_type {
            r.missing(value.location, "type");
        }
        inputs.push(input);
    }
    inputs
}

fn read_call_secrets(r: &mut Reader, node: &Node) -> Vec<CallSecret> {
    let mut secrets = Vec::new();
    for (name, key, value) in r.mapping(node, None).unwrap_or_default() {
        let mut secret = CallSecret {
            name: Located::new(name.to_string(), key.location),
            description: None,
            required: false,
        };
        if !value.is_null() {
            for (k, _, v) in r
                .mapping(value, Some(&["description", "required"]))
                .unwrap_or_default()
            {
                match k {
                    "description" => secret.description = r.string(v, Scope::None).map(|s| s.value),
                    _ => secret.required = r.plain_bool(v).unwrap_or(false),
                }
            }
        }
        secrets.push(secret);
    }
    secrets
}

fn read_call_outputs(r: &mut Reader, node: &Node) -> Vec<CallOutput> {
    let mut outputs = Vec::new();
    for (name, key, value) in r.mapping(node, None).unwrap_or_default() {
        let Some(entries) = r.mapping(value, Some(&["description", "value"])) else {
            continue;
        };
        let mut description = None;
        let mut output_value = None;
        for (k, _, v) in entries {
            match k {
                "description" => description = r.string(v, Scope::None).map(|s| s.value),
                _ => output_value = r.string(v, Scope::CallOutput),
            }
        }
        match output_value {
            Some(value) => outputs.push(CallOutput {
                name: Located::new(name.to_string(), key.location),
                description,
                value,
            }),
            None => r.missing(value.location, "value"),
        }
    }
    outputs
}
