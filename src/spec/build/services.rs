//! `[services.NAME]`: containers beside a cell's workload (a database, a web server). What does
//! not vary by cell (names, keys, one root) is checked once per matrix ([`check_services`]);
//! each cell's values are read by [`parse_services`], sharing the code of `[environment]` and
//! `[limits]` for the keys they share, then put in start order (each service after those it
//! `depends-on`, ties in the file's order). [`service_metrics`] are the columns benchbox
//! measures for each.

use super::*;
use crate::spec::SERVICE_METRICS;

pub(super) const SERVICE_KEYS: &[&str] = &[
    "image",
    "rootfs",
    "command",
    "env",
    "volumes",
    "user",
    "workdir",
    "ready",
    "ready-timeout",
    "stop-timeout",
    "lifetime",
    "depends-on",
    "ports",
    "limits",
];
const READY_KEYS: &[&str] = &["tcp", "command", "log"];

/// A service's name is a host name label.
const NAME_MAX: usize = 63;

const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// `ready-timeout`: from 100 ms (a probe itself takes milliseconds) to an hour.
const READY_TIMEOUT_BOUNDS: DurationBounds = DurationBounds {
    min: Duration::from_millis(100),
    max: Duration::from_secs(3_600),
    min_text: "100ms",
    max_text: "1h",
    seconds: true,
    none: false,
    feature: "",
    too_short: "starting a container and probing it takes milliseconds itself: a shorter timeout fails services that are fine",
    too_long: "a service that is not ready within an hour holds the whole run up; give it an hour or less",
    example: "\"30s\" or \"2m\"",
};

/// `stop-timeout`: from 0 (SIGKILL at once) to 5 minutes.
const STOP_TIMEOUT_BOUNDS: DurationBounds = DurationBounds {
    min: Duration::ZERO,
    max: Duration::from_secs(300),
    min_text: "0s",
    max_text: "5m",
    seconds: true,
    none: false,
    feature: "",
    too_short: "",
    too_long: "every stop waits this long for a service that ignores SIGTERM; give it 5 minutes or less",
    example: "\"5s\" or \"0s\" (SIGKILL at once)",
};

/// Checks `[services]` as written: each service is a table with a valid name and known keys
/// (in its `limits` and `ready` too), and not both `image` and `rootfs`.
pub(super) fn check_services(r: &Reporter, t: &Node) -> Result<()> {
    for e in t.entries() {
        check_name(r, e)?;
        if !matches!(e.value.kind, Kind::Table(_)) {
            return Err(r.at(
                &e.value.span,
                format!(
                    "expected a table for `services.{}`, found {}",
                    e.key,
                    e.value.describe()
                ),
                Some(format!(
                    "write it as a `[services.{}]` section with `image` or `command`",
                    e.key
                )),
            ));
        }
        let section = format!("[services.{}]", e.key);
        r.check_keys(&e.value, SERVICE_KEYS, &format!("in {section}"))?;
        one_root(r, &e.value, &section, "a service")?;
        if let Some(l) = e.value.get("limits")
            && matches!(l.value.kind, Kind::Table(_))
        {
            r.check_keys(
                &l.value,
                LIMIT_KEYS,
                &format!("in [services.{}.limits]", e.key),
            )?;
        }
        if let Some(ready) = e.value.get("ready")
            && matches!(ready.value.kind, Kind::Table(_))
        {
            r.check_keys(
                &ready.value,
                READY_KEYS,
                &format!("in `ready` of {section}"),
            )?;
        }
    }
    Ok(())
}

/// `[a-z][a-z0-9-]*`, at most 63 characters, not `localhost`: the workload reaches the service
/// by this name (an /etc/hosts entry), and it prefixes the service's columns.
fn check_name(r: &Reporter, e: &Entry) -> Result<()> {
    let name = &e.key;
    let hint = || {
        Some("the workload reaches a service by its name, a host name: lowercase letters, digits and `-`, starting with a letter, at most 63 characters (`db`, `redis-7`)".to_string())
    };
    let why = if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it does not start with a lowercase letter")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("only lowercase letters, digits and `-` may follow")
    } else if name.len() > NAME_MAX {
        Some("it is longer than 63 characters")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(r.at(
            &e.key_span,
            format!("invalid service name `{name}`: {why}"),
            hint(),
        ));
    }
    if name == "localhost" {
        return Err(r.at(
            &e.key_span,
            "a service cannot be called `localhost`",
            Some("`localhost` is every container's own loopback address: pick another name".into()),
        ));
    }
    Ok(())
}

/// One cell's services (its substituted `[services]`), in start order, with their paths as
/// written (for the id), in the same order.
pub(super) fn parse_services(
    r: &Reporter,
    shared: &Shared,
    t: &Node,
    label: &str,
    warnings: &mut Warnings,
) -> Result<(Vec<Service>, Vec<IdPaths>)> {
    let names: Vec<&str> = t.entries().iter().map(|e| e.key.as_str()).collect();
    // Port -> the service that claimed it first.
    let mut claims: HashMap<u16, &str> = HashMap::new();
    let mut parsed = Vec::with_capacity(names.len());
    for e in t.entries() {
        parsed.push(parse_service(
            r,
            shared,
            e,
            &names,
            &mut claims,
            label,
            warnings,
        )?);
    }
    let order = start_order(r, t.entries(), &parsed)?;
    let mut slots: Vec<Option<(Service, IdPaths)>> = parsed.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).unzip())
}

fn parse_service<'t>(
    r: &Reporter,
    shared: &Shared,
    e: &'t Entry,
    names: &[&str],
    claims: &mut HashMap<u16, &'t str>,
    label: &str,
    warnings: &mut Warnings,
) -> Result<(Service, IdPaths)> {
    let name = e.key.as_str();
    let section = format!("[services.{name}]");
    let s = &e.value;
    let files = parse_files(r, shared.ctx, shared.base_dir, s)?;

    // With an image, no command means the image's own Entrypoint + Cmd (an empty argv).
    let command = match s.get("command") {
        Some(c) => argv(r, c)?,
        None if matches!(files.root, Root::Image(_)) => Vec::new(),
        None => {
            return Err(r.at(
                &e.key_span,
                format!("missing `command` in {section}"),
                Some("a service without an `image` runs the `command` it is given: add `command = [\"./server\"]` (or a string, run with /bin/sh -c)".into()),
            ));
        }
    };

    let ready = match s.get("ready") {
        None => Ready::Started,
        Some(ready_e) => parse_ready(r, ready_e, &section)?,
    };
    let ready_timeout = match s.get("ready-timeout") {
        None => DEFAULT_READY_TIMEOUT,
        Some(t) => duration_setting(r, t, &READY_TIMEOUT_BOUNDS)?.unwrap_or(DEFAULT_READY_TIMEOUT),
    };
    let stop_timeout = match s.get("stop-timeout") {
        None => DEFAULT_STOP_TIMEOUT,
        Some(t) => duration_setting(r, t, &STOP_TIMEOUT_BOUNDS)?.unwrap_or(DEFAULT_STOP_TIMEOUT),
    };
    let lifetime = r.choice(
        s.get("lifetime"),
        Lifetime::Invocation,
        "lifetime",
        &[("invocation", Lifetime::Invocation), ("cell", Lifetime::Cell)],
        "valid lifetimes: invocation (a fresh service for every invocation, the default), cell (one for all of the cell's invocations)",
    )?;

    let mut depends_on: Vec<String> = Vec::new();
    if let Some(d) = s.get("depends-on") {
        let Kind::Array(items) = &d.value.kind else {
            return Err(r.wrong_type(&d.key, &d.value, "an array of service names"));
        };
        for item in items {
            let dep = item
                .as_str()
                .ok_or_else(|| r.wrong_type(&d.key, item, "a service name"))?;
            if dep == name {
                return Err(r.node(
                    item,
                    format!("service `{name}` depends on itself"),
                    Some(format!("remove `{name}` from its `depends-on`")),
                ));
            }
            if !names.contains(&dep) {
                let others = names.iter().copied().filter(|n| *n != name);
                return Err(r.node(
                    item,
                    format!("service `{name}` depends on `{dep}`, which is no service"),
                    Some(if names.len() > 1 {
                        suggest(dep, others, "services")
                    } else {
                        format!("`{name}` is the only service: declare `[services.{dep}]`")
                    }),
                ));
            }
            if depends_on.iter().any(|d| d == dep) {
                return Err(r.node(
                    item,
                    format!("service `{name}` lists `{dep}` twice in `depends-on`"),
                    Some("list each service once".into()),
                ));
            }
            depends_on.push(dep.to_string());
        }
    }

    // The ports it claims: `ready.tcp`, then `ports`, each once.
    let mut ports: Vec<u16> = Vec::new();
    let mut claim = |port: u16, node: &Node| -> Result<()> {
        if ports.contains(&port) {
            return Ok(());
        }
        if let Some(first) = claims.get(&port) {
            return Err(r.node(
                node,
                format!("port {port} of service `{name}` is claimed by service `{first}` already"),
                Some("a cell's services share one network namespace, so each listens on ports of its own: change one".into()),
            ));
        }
        claims.insert(port, name);
        ports.push(port);
        Ok(())
    };
    if let (Ready::Tcp(port), Some(ready_e)) = (&ready, s.get("ready"))
        && let Some(tcp) = ready_e.value.get("tcp")
    {
        claim(*port, &tcp.value)?;
    }
    if let Some(p) = s.get("ports") {
        let Kind::Array(items) = &p.value.kind else {
            return Err(r.wrong_type(&p.key, &p.value, "an array of port numbers"));
        };
        for item in items {
            claim(port(r, "ports", item)?, item)?;
        }
    }

    let limits = match s.get("limits") {
        None => Limits::default(),
        Some(l) if matches!(l.value.kind, Kind::Table(_)) => {
            parse_limits(r, shared.ctx, &l.value, label, warnings)?
        }
        Some(l) => return Err(r.wrong_type(&l.key, &l.value, "a table")),
    };
    check_user(
        r,
        shared,
        s,
        files.user.as_deref(),
        &files.volumes,
        &files.root,
    )?;

    Ok((
        Service {
            name: name.to_string(),
            root: files.root,
            image_digest: None,
            workdir: files.workdir,
            user: files.user,
            volumes: files.volumes,
            env: files.env,
            command,
            ready,
            ready_timeout,
            lifetime,
            depends_on,
            ports,
            limits,
            stop_timeout,
        },
        IdPaths {
            root: files.id_root,
            volumes: files.id_volumes,
        },
    ))
}

/// `ready = { tcp = PORT }`, `{ command = ... }` or `{ log = "text" }`: exactly one.
fn parse_ready(r: &Reporter, e: &Entry, section: &str) -> Result<Ready> {
    let hint = || {
        Some("write `ready = { tcp = 6379 }` (a port that accepts connections), `ready = { command = [\"redis-cli\", \"ping\"] }` (a probe that exits 0) or `ready = { log = \"Ready to accept\" }` (a text in its output)".to_string())
    };
    if !matches!(e.value.kind, Kind::Table(_)) {
        return Err(r.node(
            &e.value,
            format!(
                "expected a table for `ready` in {section}, found {}",
                e.value.describe()
            ),
            hint(),
        ));
    }
    let probe = match e.value.entries() {
        [one] => one,
        [] => {
            return Err(r.node(&e.value, format!("`ready` in {section} is empty"), hint()));
        }
        [first, second, ..] => {
            return Err(r.at(
                &second.key_span,
                format!(
                    "`ready` in {section} has both `{}` and `{}`: it takes exactly one of `tcp`, `command` and `log`",
                    first.key, second.key
                ),
                hint(),
            ));
        }
    };
    Ok(match probe.key.as_str() {
        "tcp" => Ready::Tcp(port(r, "tcp", &probe.value)?),
        "command" => Ready::Command(argv(r, probe)?),
        // `check_services` allows no other key.
        _ => Ready::Log(non_empty(r, probe)?.to_string()),
    })
}

/// A TCP port: an integer from 1 to 65535.
fn port(r: &Reporter, key: &str, node: &Node) -> Result<u16> {
    let Kind::Int(i) = node.kind else {
        return Err(r.wrong_type(key, node, "a port number"));
    };
    u16::try_from(i).ok().filter(|p| *p > 0).ok_or_else(|| {
        r.node(
            node,
            format!("port `{i}` in `{key}` is out of range"),
            Some("a TCP port is a number from 1 to 65535".into()),
        )
    })
}

/// Indices of `services` in start order: each after the services it depends on, ties in the
/// file's order. A cycle is an error at the `depends-on` entry that closes it.
fn start_order(
    r: &Reporter,
    entries: &[Entry],
    services: &[(Service, IdPaths)],
) -> Result<Vec<usize>> {
    let n = services.len();
    let index = |name: &str| services.iter().position(|(s, _)| s.name == name);
    let deps: Vec<Vec<usize>> = services
        .iter()
        .map(|(s, _)| s.depends_on.iter().filter_map(|d| index(d)).collect())
        .collect();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let next = (0..n).find(|&i| !placed[i] && deps[i].iter().all(|&d| placed[d]));
        let Some(i) = next else {
            return Err(cycle_error(r, entries, services, &deps, &placed));
        };
        placed[i] = true;
        order.push(i);
    }
    Ok(order)
}

/// Every unplaced service waits on another unplaced one: follow the first such dependency
/// from the first unplaced service until a service repeats; that loop is the cycle.
fn cycle_error(
    r: &Reporter,
    entries: &[Entry],
    services: &[(Service, IdPaths)],
    deps: &[Vec<usize>],
    placed: &[bool],
) -> SpecError {
    let mut path: Vec<usize> = Vec::new();
    let mut at = (0..placed.len()).find(|&i| !placed[i]).unwrap_or(0);
    while !path.contains(&at) {
        path.push(at);
        at = deps[at].iter().copied().find(|&d| !placed[d]).unwrap_or(at);
    }
    let start = path.iter().position(|&i| i == at).unwrap_or(0);
    let mut cycle = path[start..].to_vec();
    // Named from the service declared first, so the message does not depend on the walk.
    let first = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, i)| **i)
        .map_or(0, |(k, _)| k);
    cycle.rotate_left(first);
    let name = |i: usize| services[i].0.name.as_str();
    let mut text: Vec<&str> = cycle.iter().map(|&i| name(i)).collect();
    text.push(name(cycle[0]));
    // The entry of the first service's `depends-on` that names the next one.
    let next = name(cycle.get(1).copied().unwrap_or(cycle[0]));
    let span = entries[cycle[0]]
        .value
        .get("depends-on")
        .and_then(|d| match &d.value.kind {
            Kind::Array(items) => items.iter().find(|i| i.as_str() == Some(next)),
            _ => None,
        })
        .map_or(entries[cycle[0]].key_span.clone(), |n| n.span.clone());
    r.at(
        &span,
        format!("the services depend on each other in a cycle: {}", text.join(" -> ")),
        Some("a service starts once the services it `depends-on` are ready, so none of these could start: remove one of these dependencies".into()),
    )
}

/// The columns benchbox measures for each service (`NAME.cpu_s`, ...), as metrics the
/// workload cannot report (`service` set).
pub(super) fn service_metrics(services: &[Service]) -> impl Iterator<Item = MetricSpec> + '_ {
    services.iter().flat_map(|s| {
        SERVICE_METRICS.iter().map(|(column, unit)| MetricSpec {
            name: format!("{}.{column}", s.name),
            pattern: None,
            unit: Some(unit.to_string()),
            better: Better::Lower,
            service: Some(s.name.clone()),
        })
    })
}

/// The service whose column `metric` would be (`db.cpu_s` is service `db`'s), if any.
pub(super) fn service_column<'n>(metric: &str, services: &[&'n str]) -> Option<&'n str> {
    let (service, column) = metric.split_once('.')?;
    let service = services.iter().find(|s| **s == service)?;
    SERVICE_METRICS
        .iter()
        .any(|(c, _)| *c == column)
        .then_some(*service)
}
