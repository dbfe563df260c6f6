//! `container:` and `services:`: image, options, env, ports, volumes, credentials.

use crate::yaml::Node;

use super::expressions::Scope;
use super::reader::Reader;
use super::types::{Container, Credentials, Located};

pub(crate) fn read_services(r: &mut Reader, node: &Node) -> Vec<(Located<String>, Container)> {
    let mut services = Vec::new();
    for (name, key, value) in r.mapping(node, None).unwrap_or_default() {
        if let Some(container) = read_container(r, value, true) {
            services.push((Located::new(name.to_string(), key.location), container));
        }
    }
    services
}

pub(crate) fn read_container(r: &mut Reader, node: &Node, service: bool) -> Option<Container> {
    let scope = Scope::JobStrategy;
    if node.as_mapping().is_none() {
        let image = if service {
            r.non_empty_string(node, scope)?
        } else {
            r.string(node, scope)?
        };
        return Some(Container {
            image: Some(image),
            location: node.location,
            ..Container::default()
        });
    }
    let known: &[&str] = if service {
        &[
            "image",
            "options",
            "env",
            "ports",
            "volumes",
            "credentials",
            "entrypoint",
            "command",
            "cmd",
        ]
    } else {
        &[
            "image",
            "options",
            "env",
            "ports",
            "volumes",
            "credentials",
            "cmd",
        ]
    };
    let mut container = Container {
        location: node.location,
        ..Container::default()
    };
    for (key, key_node, value) in r.mapping(node, Some(known))? {
        match key {
            "image" => container.image = r.non_empty_string(value, scope),
            "options" => container.options = r.string(value, scope),
            "env" => container.env = r.string_map(value, Scope::Runner),
            "ports" => container.ports = r.string_sequence(value, scope, true),
            "volumes" => container.volumes = r.string_sequence(value, scope, true),
            "credentials" => container.credentials = read_credentials(r, value),
            "entrypoint" => container.entrypoint = r.string(value, scope),
            "command" => container.command = r.string(value, scope),
            _ if r.dialect.is_forge() => {
                container.cmd = r.string_sequence(value, scope, true);
            }
            _ => r.error(
                key_node.location,
                "Unexpected value 'cmd'",
                format!(
                    "'cmd:' is Gitea and Forgejo syntax; {}. GitHub's services take 'command:' (and 'entrypoint:').",
                    r.dialect.read_as()
                ),
            ),
        }
    }
    // Gitea's and Forgejo's runners take a job container without an image for the image of
    // the job's label (forgejo-runner's schema does not require `image`).
    let image_required = service || !r.dialect.is_forge();
    if image_required && container.image.is_none() && !has_key(node, "image") {
        r.error(
            node.location,
            "Container image cannot be empty",
            "Add 'image:' with the image to run, like 'image: node:20'.",
        );
    }
    Some(container)
}

fn has_key(node: &Node, key: &str) -> bool {
    node.get(key).is_some()
}

fn read_credentials(r: &mut Reader, node: &Node) -> Option<Credentials> {
    let mut credentials = Credentials::default();
    if let Some(whole) = r.whole_expression(node, Scope::Credentials) {
        credentials.whole = Some(whole);
        return Some(credentials);
    }
    for (key, _, value) in r.mapping(node, Some(&["username", "password"]))? {
        let v = r.string(value, Scope::Credentials);
        match key {
            "username" => credentials.username = v,
            _ => credentials.password = v,
        }
    }
    Some(credentials)
}
