//! The containers a job asks for (`container:` and `services:`), evaluated with the job's
//! contexts and checked for what a pod can run: the input of the job pod's manifests
//! ([`super::manifest`]).
//!
//! - `ports`: `PORT`, `HOST:PORT` or `IP:HOST:PORT`, each with an optional `/tcp` or
//!   `/udp`. In the pod every container shares one network, so a service is on
//!   `localhost:PORT` at its own port; a TCP mapping to another port (`8080:80`) is also
//!   reached on `localhost:8080` through a forwarder sidecar ([`super::manifest`]), as a
//!   job on a Docker host reaches it. A UDP mapping to another port is refused (the
//!   forwarder speaks TCP), and so is a host port another container of the pod already
//!   listens on, naming both.
//! - `volumes`: `NAME:/path` is a volume shared by every container of the job that names
//!   it (an `emptyDir`, gone with the job), `/path` one of its own; a host folder
//!   (`/src:/dst`, `./dir:/dst`) is refused: the pod runs on a node, not on this runner.
//! - `options`: see [`super::docker_options`].
//! - `credentials`: user and password for the image's registry (an image pull Secret).

use workflows::diagnostic::Location;
use workflows::expression::{Value, to_display_string};
use workflows::model::{Container, Job, Located};

use super::docker_options::{self, DockerOptions, split_words};
use crate::eval::Scope;

/// A job's containers, ready for the pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobContainers {
    /// `container:` (absent, or its image empty: the label's image).
    pub job: Option<ContainerSpec>,
    /// `services:`, in the workflow's order.
    pub services: Vec<ServiceSpec>,
}

/// One container, its values evaluated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    pub image: String,
    /// `env:`, then the `-e` options (a later entry wins).
    pub env: Vec<(String, String)>,
    pub ports: Vec<PortSpec>,
    pub volumes: Vec<VolumeSpec>,
    pub options: DockerOptions,
    /// `credentials:` (username, password).
    pub credentials: Option<(String, String)>,
    /// A service's `entrypoint:` (over `--entrypoint`).
    pub entrypoint: Option<String>,
    /// A service's `command:`, split into words.
    pub command: Vec<String>,
}

/// One `services:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// The key under `services:` (the host name the job reaches it by).
    pub id: String,
    pub container: ContainerSpec,
}

/// One `ports:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub container: u16,
    /// `HOST` of `HOST:PORT` when it differs from the container's port: the port a
    /// forwarder in the pod listens on and passes to `localhost:PORT`.
    pub host: Option<u16>,
    /// `TCP` or `UDP`, as Kubernetes spells it.
    pub protocol: &'static str,
    /// Where the entry is written (for errors about the pod as a whole).
    pub location: Location,
}

impl PortSpec {
    /// The port the job reaches this one on: the host port of a mapping, else its own.
    pub fn reached_on(&self) -> u16 {
        self.host.unwrap_or(self.container)
    }
}

/// One `volumes:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The volume's name, `None` for an anonymous one (`/path`).
    pub name: Option<String>,
    pub path: String,
    pub read_only: bool,
}

/// A `container:` or `services:` entry that cannot run in a pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {what}: {message}")]
pub struct ContainerError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// Which entry, e.g. `services.redis.ports`.
    pub what: String,
    pub message: String,
}

/// Whether the job asks for containers at all.
pub fn asks_for_containers(job: &Job) -> bool {
    job.container.is_some() || !job.services.is_empty()
}

impl JobContainers {
    /// `job`'s containers evaluated in `scope` (`file` names the workflow in errors).
    pub fn evaluate(job: &Job, file: &str, scope: &Scope) -> Result<JobContainers, ContainerError> {
        let mut out = JobContainers::default();
        if let Some(container) = &job.container {
            let spec = evaluate(container, "container", false, file, scope)?;
            if !spec.image.trim().is_empty() {
                out.job = Some(spec);
            }
        }
        for (id, container) in &job.services {
            let what = format!("services.{}", id.value);
            let spec = evaluate(container, &what, true, file, scope)?;
            if spec.image.trim().is_empty() {
                // GitHub skips a service whose image evaluates to empty.
                continue;
            }
            out.services.push(ServiceSpec {
                id: id.value.clone(),
                container: spec,
            });
        }
        out.check_forwarded_ports(file)?;
        Ok(out)
    }

    /// A mapped port (`HOST:PORT`) is forwarded from `HOST` in the pod's one network, so
    /// `HOST` must be free there: no other container's port and no other mapping.
    fn check_forwarded_ports(&self, file: &str) -> Result<(), ContainerError> {
        let owner =
            |id: Option<&str>| id.map_or("container".to_string(), |id| format!("services.{id}"));
        let mut listening: Vec<(u16, &'static str, String)> = self
            .all()
            .flat_map(|(id, c)| {
                c.ports
                    .iter()
                    .map(move |p| (p.container, p.protocol, owner(id)))
            })
            .collect();
        for (id, c) in self.all() {
            for port in &c.ports {
                let Some(host) = port.host else { continue };
                if let Some((_, _, other)) = listening
                    .iter()
                    .find(|(p, proto, _)| *p == host && *proto == port.protocol)
                {
                    return Err(ContainerError {
                        file: file.to_string(),
                        line: port.location.line,
                        column: port.location.column,
                        what: format!("{}.ports", owner(id)),
                        message: format!(
                            "`{host}:{}` would forward port {host} of the pod, but {other} already uses it (the job's containers share the pod's network); map to another host port",
                            port.container
                        ),
                    });
                }
                listening.push((
                    host,
                    port.protocol,
                    format!("{}.ports `{host}:{}`", owner(id), port.container),
                ));
            }
        }
        Ok(())
    }

    /// Every mapped port (`HOST:PORT` with different numbers): `(host, container)`.
    pub fn forwarded_ports(&self) -> Vec<(u16, u16)> {
        self.all()
            .flat_map(|(_, c)| c.ports.iter())
            .filter_map(|p| p.host.map(|h| (h, p.container)))
            .collect()
    }

    /// Every container spec with its id (`None` for the job container).
    pub fn all(&self) -> impl Iterator<Item = (Option<&str>, &ContainerSpec)> {
        self.job.iter().map(|c| (None, c)).chain(
            self.services
                .iter()
                .map(|s| (Some(s.id.as_str()), &s.container)),
        )
    }
}

fn evaluate(
    container: &Container,
    what: &str,
    service: bool,
    file: &str,
    scope: &Scope,
) -> Result<ContainerSpec, ContainerError> {
    let error = |field: &str, location: Location, message: String| ContainerError {
        file: file.to_string(),
        line: location.line,
        column: location.column,
        what: if field.is_empty() {
            what.to_string()
        } else {
            format!("{what}.{field}")
        },
        message,
    };
    let text = |field: &str, v: &Located<String>| {
        scope
            .interpolate(&v.value)
            .map(|s| s.trim().to_string())
            .map_err(|e| error(field, v.location, e.to_string()))
    };
    let image = match &container.image {
        Some(i) => text("image", i)?,
        None => String::new(),
    };
    let mut spec = ContainerSpec {
        image,
        ..ContainerSpec::default()
    };
    if let Some(env) = &container.env {
        for (k, v) in &env.entries {
            let key = scope
                .interpolate(&k.value)
                .map_err(|e| error("env", k.location, e.to_string()))?;
            let value = scope
                .interpolate(&v.value)
                .map_err(|e| error(&format!("env.{key}"), v.location, e.to_string()))?;
            crate::eval::upsert(&mut spec.env, key, value);
        }
        for insert in &env.inserts {
            let value = scope
                .value(&insert.value)
                .map_err(|e| error("env", insert.location, e.to_string()))?;
            if let Value::Object(o) = value {
                for (k, v) in o.iter() {
                    crate::eval::upsert(&mut spec.env, k.to_string(), to_display_string(v));
                }
            }
        }
    }
    if let Some(options) = &container.options {
        let value = text("options", options)?;
        spec.options = docker_options::parse(&value)
            .map_err(|e| error("options", options.location, e.to_string()))?;
        for (k, v) in spec.options.env.clone() {
            crate::eval::upsert(&mut spec.env, k, v);
        }
    }
    for port in &container.ports {
        let value = text("ports", port)?;
        let mut parsed = parse_port(&value).map_err(|m| error("ports", port.location, m))?;
        parsed.location = port.location;
        spec.ports.push(parsed);
    }
    for volume in &container.volumes {
        let value = text("volumes", volume)?;
        spec.volumes
            .push(parse_volume(&value).map_err(|m| error("volumes", volume.location, m))?);
    }
    if let Some(credentials) = &container.credentials {
        let (user, password) = match &credentials.whole {
            // `credentials: ${{ ... }}`: one expression giving `{username, password}`.
            Some(whole) => {
                let value = scope
                    .value(&whole.value)
                    .map_err(|e| error("credentials", whole.location, e.to_string()))?;
                let field = |name: &str| match &value {
                    Value::Object(o) => o.get(name).map(to_display_string).unwrap_or_default(),
                    _ => String::new(),
                };
                (field("username"), field("password"))
            }
            None => (
                match &credentials.username {
                    Some(u) => text("credentials.username", u)?,
                    None => String::new(),
                },
                match &credentials.password {
                    Some(p) => text("credentials.password", p)?,
                    None => String::new(),
                },
            ),
        };
        // GitHub ignores credentials with an empty half (e.g. a secret not set in a fork).
        if !user.is_empty() && !password.is_empty() {
            spec.credentials = Some((user, password));
        }
    }
    if service {
        if let Some(entrypoint) = &container.entrypoint {
            spec.entrypoint = Some(text("entrypoint", entrypoint)?).filter(|e| !e.is_empty());
        }
        if let Some(command) = &container.command {
            let value = text("command", command)?;
            spec.command = split_words(&value)
                .map_err(|e| error("command", command.location, e.to_string()))?;
        }
        // Gitea's and Forgejo's `cmd:` list: each item one argument, as act's `Config.Cmd`.
        if !container.cmd.is_empty() {
            spec.command = container
                .cmd
                .iter()
                .map(|arg| text("cmd", arg))
                .collect::<Result<_, _>>()?;
        }
        if spec.entrypoint.is_none() {
            spec.entrypoint = spec.options.entrypoint.clone();
        }
    } else if spec.options.entrypoint.is_some() {
        return Err(error(
            "options",
            container.options.as_ref().map_or(container.location, |o| o.location),
            "`--entrypoint` cannot be given to the job container: its entrypoint keeps it running for the steps; run the program in a step instead".into(),
        ));
    }
    Ok(spec)
}

/// `PORT`, `HOST:PORT`, `IP:HOST:PORT`, each optionally `/tcp` or `/udp`.
fn parse_port(value: &str) -> Result<PortSpec, String> {
    let (ports, protocol) = match value.rsplit_once('/') {
        Some((p, proto)) => match proto.to_ascii_lowercase().as_str() {
            "tcp" => (p, "TCP"),
            "udp" => (p, "UDP"),
            _ => return Err(format!("`{value}`: the protocol is tcp or udp")),
        },
        None => (value, "TCP"),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let number = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{value}`: `{s}` is not a port number"))
    };
    let (host, container) = match parts.as_slice() {
        [c] => (None, number(c)?),
        [h, c] => (Some(*h), number(c)?),
        [_, h, c] => (Some(*h), number(c)?),
        _ => return Err(format!("`{value}` is not PORT, HOST:PORT or IP:HOST:PORT")),
    };
    let host = match host.filter(|h| !h.is_empty()) {
        Some(h) => Some(number(h)?).filter(|h| *h != container),
        None => None,
    };
    if let (Some(host), "UDP") = (host, protocol) {
        return Err(format!(
            "`{value}` maps UDP port {container} to {host}, but the pod's port forwarder speaks TCP only and the job's containers share the pod's network, where the service is on localhost:{container}; write `{container}/udp` and use port {container}"
        ));
    }
    Ok(PortSpec {
        container,
        host,
        protocol,
        location: Location::default(),
    })
}

/// `NAME:/path[:ro|rw]` or `/path`.
fn parse_volume(value: &str) -> Result<VolumeSpec, String> {
    let parts: Vec<&str> = value.split(':').collect();
    let (source, path, mode) = match parts.as_slice() {
        [p] => (None, *p, None),
        [s, p] => (Some(*s), *p, None),
        [s, p, m] => (Some(*s), *p, Some(*m)),
        _ => return Err(format!("`{value}` is not NAME:/path or /path")),
    };
    if !path.starts_with('/') {
        return Err(format!(
            "`{value}`: the path in the container must be absolute"
        ));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => return Err(format!("`{value}`: unknown mode `{m}` (ro or rw)")),
    };
    if let Some(source) = source {
        let named = source
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && source
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !named {
            return Err(format!(
                "`{value}` mounts the host folder {source}, which a pod cannot reach (it runs on a cluster node); use a named volume (NAME:{path}) shared by the job's containers, or copy the files in a step"
            ));
        }
    }
    Ok(VolumeSpec {
        name: source.map(str::to_string),
        path: path.to_string(),
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use workflows::expression::{Object, Value};

    fn job(yaml: &str) -> Job {
        let text =
            format!("on: push\njobs:\n  t:\n    runs-on: x\n{yaml}    steps:\n      - run: echo\n");
        workflows::model::load(&text, "ci.yml")
            .unwrap()
            .jobs
            .remove(0)
    }

    fn scope() -> Scope {
        let mut contexts = Object::new();
        let mut matrix = Object::new();
        matrix.insert("pg", Value::from("16"));
        contexts.insert("matrix", Value::object(matrix));
        let mut secrets = Object::new();
        secrets.insert("PW", Value::from("s3cret"));
        contexts.insert("secrets", Value::object(secrets));
        Scope::new(contexts, None)
    }

    #[test]
    fn containers_evaluate_with_the_job_contexts() {
        let job = job(concat!(
            "    container:\n      image: alpine:${{ matrix.pg }}\n      env: {A: '1'}\n      options: --user 1000 -e B=2\n",
            "      volumes: [cache:/cache, /scratch]\n",
            "      credentials: {username: me, password: '${{ secrets.PW }}'}\n",
            "    services:\n      db:\n        image: postgres:${{ matrix.pg }}\n        ports: ['5432', '5432:5432/tcp']\n",
            "        env: {POSTGRES_PASSWORD: '${{ secrets.PW }}'}\n",
            "        options: --health-cmd pg_isready --health-interval 1s\n",
            "      none:\n        image: ${{ matrix.none }}\n",
            "      cmd:\n        image: busybox\n        entrypoint: nc\n        command: -lk -p '7 8'\n",
        ));
        let c = JobContainers::evaluate(&job, "ci.yml", &scope()).unwrap();
        let j = c.job.as_ref().unwrap();
        assert_eq!(j.image, "alpine:16");
        assert_eq!(j.env, [("A".into(), "1".into()), ("B".into(), "2".into())]);
        assert_eq!(j.options.user, Some((1000, None)));
        assert_eq!(j.credentials, Some(("me".into(), "s3cret".into())));
        assert_eq!(j.volumes[0].name.as_deref(), Some("cache"));
        assert_eq!(j.volumes[1].name, None);
        assert_eq!(c.services.len(), 2, "the empty image is skipped");
        let db = &c.services[0];
        assert_eq!(db.id, "db");
        assert_eq!(db.container.image, "postgres:16");
        assert_eq!(db.container.ports.len(), 2);
        assert!(db.container.options.health.is_some());
        assert_eq!(c.services[1].container.entrypoint.as_deref(), Some("nc"));
        assert_eq!(c.services[1].container.command, ["-lk", "-p", "7 8"]);
        assert_eq!(c.all().count(), 3);
    }

    #[test]
    fn what_a_pod_cannot_run_is_refused_at_its_line() {
        for (yaml, wanted) in [
            (
                "    container:\n      image: a\n      volumes: [/var/run/docker.sock:/var/run/docker.sock]\n",
                "ci.yml:7:17: container.volumes: `/var/run/docker.sock:/var/run/docker.sock` mounts the host folder",
            ),
            (
                "    container:\n      image: a\n      options: --privileged\n",
                "ci.yml:7:16: container.options: `--privileged` cannot be given",
            ),
            (
                "    services:\n      dns:\n        image: a\n        ports: ['5353:53/udp']\n",
                "ci.yml:8:17: services.dns.ports: `5353:53/udp` maps UDP port 53 to 5353",
            ),
            (
                "    services:\n      a:\n        image: a\n        ports: ['8080']\n      b:\n        image: b\n        ports: ['80', '8080:80']\n",
                "ci.yml:11:23: services.b.ports: `8080:80` would forward port 8080 of the pod, but services.a already uses it",
            ),
            (
                "    services:\n      a:\n        image: a\n        ports: ['9000:80']\n      b:\n        image: b\n        ports: ['9000:81']\n",
                "ci.yml:11:17: services.b.ports: `9000:81` would forward port 9000 of the pod, but services.a.ports `9000:80` already uses it",
            ),
            (
                "    container:\n      image: a\n      options: --entrypoint sh\n",
                "container.options: `--entrypoint` cannot be given to the job container",
            ),
        ] {
            let error = JobContainers::evaluate(&job(yaml), "ci.yml", &scope())
                .unwrap_err()
                .to_string();
            assert!(error.contains(wanted), "{error}\nwanted: {wanted}");
        }
    }

    #[test]
    fn ports_and_volumes_read_as_docker_writes_them() {
        assert_eq!(
            parse_port("127.0.0.1:53:53/udp").unwrap(),
            PortSpec {
                container: 53,
                host: None,
                protocol: "UDP",
                location: Location::default(),
            }
        );
        let mapped = parse_port("15432:5432").unwrap();
        assert_eq!((mapped.host, mapped.reached_on()), (Some(15432), 15432));
        assert_eq!(parse_port("5432:5432").unwrap().host, None);
        assert_eq!(parse_port(":5432").unwrap().host, None);
        assert!(parse_port("x").is_err());
        assert!(parse_port("1:2:3:4").is_err());
        assert!(parse_volume("data:/d:ro").unwrap().read_only);
        assert!(parse_volume("./src:/d").is_err());
        assert!(parse_volume("data:rel").is_err());
    }
}
