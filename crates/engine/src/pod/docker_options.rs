//! A container's `options:` (the `docker create` flags a workflow passes through) read
//! into what a pod can do. The useful subset is mapped (see [`DockerOptions`]); a flag
//! that needs a Docker daemon or the host (`--privileged`, `--network`, `-v`, ...) is
//! refused by name, never ignored: a job that silently ran without it would fail in a
//! way nobody could trace back.
//!
//! The string is split as actions/runner hands it to `docker create`: on blanks, with
//! `'...'` and `"..."` quoting and `\` escapes, so `--health-cmd "pg_isready -U app"` is
//! one value.

use std::time::Duration;

/// What a container's `options:` ask for, as a pod can give it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DockerOptions {
    /// `--user UID[:GID]` (numeric, or `root`): the container's `runAsUser`/`runAsGroup`.
    pub user: Option<(i64, Option<i64>)>,
    /// `--workdir` / `-w`: the container's `workingDir`.
    pub workdir: Option<String>,
    /// `--cpus`: the CPU limit (a Kubernetes quantity).
    pub cpus: Option<String>,
    /// `--memory` / `-m`: the memory limit (a Kubernetes quantity).
    pub memory: Option<String>,
    /// `--entrypoint`: the container's `command`.
    pub entrypoint: Option<String>,
    /// `--hostname` / `-h`: the pod's `hostname`.
    pub hostname: Option<String>,
    /// `--add-host HOST:IP`: `hostAliases` entries (host, ip).
    pub add_hosts: Vec<(String, String)>,
    /// `--env` / `-e NAME=VALUE`: more environment.
    pub env: Vec<(String, String)>,
    /// `--health-*`: the container's startup probe.
    pub health: Option<HealthCheck>,
}

/// Docker's health check, which the pod runs as a startup probe: the job's first step
/// waits until it passes.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// `--health-cmd`, run with `sh -c` (Docker's `CMD-SHELL` form).
    pub command: String,
    /// `--health-interval` (Docker's default 30 s).
    pub interval: Duration,
    /// `--health-timeout` (default 30 s).
    pub timeout: Duration,
    /// `--health-retries` (default 3).
    pub retries: u32,
    /// `--health-start-period`: failures in it do not count (default 0).
    pub start_period: Duration,
}

impl HealthCheck {
    /// `periodSeconds`, `timeoutSeconds` and `failureThreshold` of the startup probe: the
    /// retries, plus as many more as fit into the start period (whose failures Docker does
    /// not count).
    pub fn probe_numbers(&self) -> (i32, i32, i32) {
        let seconds = |d: Duration| d.as_secs_f64().ceil().max(1.0) as i32;
        let period = seconds(self.interval);
        let grace = (self.start_period.as_secs_f64() / f64::from(period)).ceil() as i32;
        (
            period,
            seconds(self.timeout),
            (self.retries.max(1) as i32).saturating_add(grace),
        )
    }
}

/// An `options:` string that cannot be run in a pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("unbalanced quotes in `{text}`")]
    Quotes { text: String },
    #[error("`{option}` needs a value")]
    MissingValue { option: String },
    #[error("`{option} {value}`: {why}")]
    BadValue {
        option: String,
        value: String,
        why: String,
    },
    #[error(
        "`{option}` cannot be given to a pod (it needs a Docker daemon or the host); remove it from options:{hint}"
    )]
    Unsupported { option: String, hint: String },
}

/// Options whose refusal can say what to write instead.
fn hint(option: &str) -> &'static str {
    match option {
        "-v" | "--volume" | "--mount" => {
            " and use `volumes:` with a named volume (a volume shared by the job's containers)"
        }
        "-p" | "--publish" => " and use `ports:`",
        "--network" | "--net" | "--network-alias" => {
            "; the job's containers share one pod network and reach services by name and on localhost"
        }
        "--privileged" | "--cap-add" | "--security-opt" => {
            "; a job pod runs unprivileged (build images with `hybrid-runner/build` instead of Docker-in-Docker)"
        }
        _ => "",
    }
}

/// Splits `text` as a shell would split plain words: blanks separate, quotes group,
/// `\` escapes (outside single quotes).
pub fn split_words(text: &str) -> Result<Vec<String>, OptionsError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => {
                            return Err(OptionsError::Quotes {
                                text: text.to_string(),
                            });
                        }
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => {
                                return Err(OptionsError::Quotes {
                                    text: text.to_string(),
                                });
                            }
                        },
                        Some(c) => word.push(c),
                        None => {
                            return Err(OptionsError::Quotes {
                                text: text.to_string(),
                            });
                        }
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Go's `time.ParseDuration`, as Docker's health flags and Gitea's runner config take
/// it: one or more `<number><unit>` (units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`; the
/// number may have a fraction), or a bare `0`; `None` for anything else, a duration too
/// long to hold included.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Docker's memory size (`512m`, `1g`, `1073741824`, `2GB`) as a Kubernetes quantity.
fn memory_quantity(value: &str) -> Option<String> {
    let lower = value.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let suffix = match unit {
        "" => "",
        "k" => "Ki",
        "m" => "Mi",
        "g" => "Gi",
        "t" => "Ti",
        _ => return None,
    };
    Some(format!("{n}{suffix}"))
}

fn user(value: &str) -> Option<(i64, Option<i64>)> {
    let (u, g) = match value.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (value, None),
    };
    let id = |s: &str| match s {
        "root" => Some(0),
        s => s.parse::<i64>().ok().filter(|n| *n >= 0),
    };
    let uid = id(u)?;
    let gid = match g {
        Some(g) => Some(id(g)?),
        None => None,
    };
    Some((uid, gid))
}

/// Reads an `options:` string.
pub fn parse(text: &str) -> Result<DockerOptions, OptionsError> {
    let words = split_words(text)?;
    let mut options = DockerOptions::default();
    let mut health_cmd = None;
    let (mut interval, mut timeout, mut retries, mut start_period) = (None, None, None, None);
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        let (option, inline) = match word.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (word.clone(), None),
        };
        let takes_value = matches!(
            option.as_str(),
            "--user"
                | "-u"
                | "--workdir"
                | "-w"
                | "--cpus"
                | "--memory"
                | "-m"
                | "--entrypoint"
                | "--hostname"
                | "-h"
                | "--add-host"
                | "--env"
                | "-e"
                | "--health-cmd"
                | "--health-interval"
                | "--health-timeout"
                | "--health-retries"
                | "--health-start-period"
        );
        if !takes_value {
            let option = option.clone();
            return Err(OptionsError::Unsupported {
                hint: hint(&option).to_string(),
                option,
            });
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let Some(v) = words.get(i) else {
                    return Err(OptionsError::MissingValue { option });
                };
                i += 1;
                v.clone()
            }
        };
        let bad = |why: &str| OptionsError::BadValue {
            option: option.clone(),
            value: value.clone(),
            why: why.to_string(),
        };
        let duration = || parse_duration(&value).ok_or_else(|| bad("not a duration like 10s"));
        match option.as_str() {
            "--user" | "-u" => {
                options.user = Some(user(&value).ok_or_else(|| {
                    bad("give a numeric UID[:GID]; a pod cannot look user names up in the image")
                })?);
            }
            "--workdir" | "-w" => options.workdir = Some(value),
            "--cpus" => {
                let cpus: f64 = value
                    .parse()
                    .ok()
                    .filter(|c: &f64| *c > 0.0)
                    .ok_or_else(|| bad("not a positive number of CPUs"))?;
                options.cpus = Some(format!("{}m", (cpus * 1000.0).round() as u64));
            }
            "--memory" | "-m" => {
                options.memory =
                    Some(memory_quantity(&value).ok_or_else(|| bad("not a size like 512m or 2g"))?);
            }
            "--entrypoint" => options.entrypoint = Some(value),
            "--hostname" | "-h" => options.hostname = Some(value),
            "--add-host" => {
                let (host, ip) = value
                    .split_once(':')
                    .filter(|(h, ip)| !h.is_empty() && !ip.is_empty())
                    .ok_or_else(|| bad("give HOST:IP"))?;
                options.add_hosts.push((host.to_string(), ip.to_string()));
            }
            "--env" | "-e" => match value.split_once('=') {
                Some((k, v)) if !k.is_empty() => options.env.push((k.to_string(), v.to_string())),
                _ => return Err(bad("give NAME=VALUE")),
            },
            "--health-cmd" => health_cmd = Some(value),
            "--health-interval" => interval = Some(duration()?),
            "--health-timeout" => timeout = Some(duration()?),
            "--health-start-period" => start_period = Some(duration()?),
            _ => {
                retries = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| bad("not a whole number"))?,
                )
            }
        }
    }
    if let Some(command) = health_cmd.filter(|c| !c.trim().is_empty() && c != "NONE") {
        options.health = Some(HealthCheck {
            command,
            interval: interval.unwrap_or(Duration::from_secs(30)),
            timeout: timeout.unwrap_or(Duration::from_secs(30)),
            retries: retries.unwrap_or(3),
            start_period: start_period.unwrap_or(Duration::ZERO),
        });
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapped_subset_is_read_with_docker_quoting() {
        let o = parse(
            "--health-cmd \"pg_isready -U app\" --health-interval 10s --health-timeout=5s --health-retries 5 \
             --user 1001:1001 -w /src --cpus 1.5 -m 512m --hostname db --add-host=gw:10.0.0.1 -e 'A=b c'",
        )
        .unwrap();
        let health = o.health.clone().unwrap();
        assert_eq!(health.command, "pg_isready -U app");
        assert_eq!(health.probe_numbers(), (10, 5, 5));
        assert_eq!(o.user, Some((1001, Some(1001))));
        assert_eq!(o.workdir.as_deref(), Some("/src"));
        assert_eq!(o.cpus.as_deref(), Some("1500m"));
        assert_eq!(o.memory.as_deref(), Some("512Mi"));
        assert_eq!(o.hostname.as_deref(), Some("db"));
        assert_eq!(o.add_hosts, [("gw".to_string(), "10.0.0.1".to_string())]);
        assert_eq!(o.env, [("A".to_string(), "b c".to_string())]);
        // Docker's defaults; the start period adds tries.
        let o = parse("--health-cmd true --health-start-period 1m").unwrap();
        assert_eq!(o.health.unwrap().probe_numbers(), (30, 30, 5));
        assert_eq!(parse("--user root").unwrap().user, Some((0, None)));
        assert_eq!(parse("").unwrap(), DockerOptions::default());
    }

    #[test]
    fn what_a_pod_cannot_do_is_refused_by_name() {
        for (text, option) in [
            ("--privileged", "--privileged"),
            ("--network host", "--network"),
            ("-v /var/run/docker.sock:/var/run/docker.sock", "-v"),
            ("--cpus 1 --shm-size 2g", "--shm-size"),
        ] {
            match parse(text) {
                Err(OptionsError::Unsupported { option: o, .. }) => assert_eq!(o, option),
                other => panic!("{text}: {other:?}"),
            }
        }
        let e = parse("-v /x:/y").unwrap_err().to_string();
        assert!(e.contains("volumes:"), "{e}");
        assert!(matches!(
            parse("--user app"),
            Err(OptionsError::BadValue { .. })
        ));
        assert!(matches!(
            parse("--health-interval"),
            Err(OptionsError::MissingValue { .. })
        ));
        assert!(matches!(
            parse("--memory lots"),
            Err(OptionsError::BadValue { .. })
        ));
        assert!(matches!(
            parse("-e \"A=b"),
            Err(OptionsError::Quotes { .. })
        ));
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5x"), None);
        // Too long to hold: refused, never a panic.
        assert_eq!(parse_duration(&format!("{}h", "9".repeat(400))), None);
    }
}
