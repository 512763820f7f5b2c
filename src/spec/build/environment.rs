//! The values of `[environment]` (and of a `[services.NAME]`, which shares them) that point at
//! files: the root, the `user` (checked against the account files of the root), host paths
//! relative to the matrix file, absolute paths inside the container, volumes, and `env`.

use super::*;

/// What `[environment]` and a `[services.NAME]` share: where a container's files come from,
/// who runs in it, and its environment variables.
pub(super) struct Files {
    pub(super) root: Root,
    /// The root as written, for the id.
    pub(super) id_root: IdRoot,
    pub(super) workdir: Option<PathBuf>,
    pub(super) user: Option<String>,
    pub(super) volumes: Vec<Volume>,
    /// The volumes with their host paths as written, for the id.
    pub(super) id_volumes: Vec<(PathBuf, PathBuf, bool)>,
    pub(super) env: BTreeMap<String, String>,
}

/// `image` or `rootfs` (or neither), `workdir`, `user`, `volumes` and `env` of a substituted
/// section (`prepare` has refused both `image` and `rootfs`: [`one_root`]).
pub(super) fn parse_files(
    r: &Reporter,
    ctx: &ValidationContext,
    base_dir: &Path,
    env_t: &Node,
) -> Result<Files> {
    // Root filesystem.
    let (root, id_root) = if let Some(e) = env_t.get("image") {
        let image = non_empty(r, e)?;
        if let Err(crate::image::ImageError::BadReference { why, .. }) =
            crate::image::Reference::parse(image)
        {
            return Err(r.node(
                &e.value,
                format!("invalid image reference `{image}`: {why}"),
                Some("write an image as docker does: `name`, `name:tag`, `registry.example.com:5000/team/name:tag` or `name@sha256:<64 hex digits>`".into()),
            ));
        }
        (
            Root::Image(image.to_string()),
            IdRoot::Image(image.to_string()),
        )
    } else if let Some(e) = env_t.get("rootfs") {
        let written = non_empty(r, e)?;
        let dir = host_path(r, ctx, base_dir, &e.value, written, "rootfs", true)?;
        (Root::Dir(dir), IdRoot::Dir(normalize(Path::new(written))))
    } else {
        (Root::Host, IdRoot::Host)
    };

    let workdir = match env_t.get("workdir") {
        Some(e) => Some(container_path(r, &e.value, r.string(e)?, "workdir")?),
        None => None,
    };

    // `user` is resolved inside the container (its /etc/passwd): "name", "uid", "uid:gid",
    // "name:group".
    let user = match env_t.get("user") {
        Some(e) => Some(user_spec(r, e)?),
        None => None,
    };

    let mut volumes = Vec::new();
    let mut id_volumes = Vec::new();
    if let Some(e) = env_t.get("volumes") {
        let Kind::Array(items) = &e.value.kind else {
            return Err(r.wrong_type(&e.key, &e.value, "an array of strings"));
        };
        for item in items {
            let spec = item.as_str().ok_or_else(|| {
                r.wrong_type("volumes", item, "a string like \"./data:/data:ro\"")
            })?;
            let (host, target, read_only) = volume(r, ctx, base_dir, item, spec)?;
            if volumes.iter().any(|v: &Volume| v.target == target) {
                return Err(r.node(
                    item,
                    format!("two volumes mount onto `{}`", target.display()),
                    Some("give each volume its own target".into()),
                ));
            }
            let written = spec.split(':').next().unwrap_or_default();
            id_volumes.push((normalize(Path::new(written)), target.clone(), read_only));
            volumes.push(Volume {
                host,
                target,
                read_only,
            });
        }
    }

    let mut env = BTreeMap::new();
    if let Some(e) = env_t.get("env") {
        if !matches!(e.value.kind, Kind::Table(_)) {
            return Err(r.wrong_type(&e.key, &e.value, "a table of strings"));
        }
        for var in e.value.entries() {
            if var.key.is_empty() || var.key.contains(['=', '\0']) {
                return Err(r.at(
                    &var.key_span,
                    format!("invalid environment variable name `{}`", var.key),
                    Some("names may not be empty or contain `=`".into()),
                ));
            }
            let value = match &var.value.kind {
                Kind::Str(s) => s.clone(),
                Kind::Int(i) => i.to_string(),
                // Same text as a float axis value pasted by a placeholder (`1.0`, not `1`).
                Kind::Float(f) => {
                    serde_json::Number::from_f64(*f).map_or(f.to_string(), |n| n.to_string())
                }
                Kind::Bool(b) => b.to_string(),
                _ => return Err(r.wrong_type(&var.key, &var.value, "a string")),
            };
            if value.contains('\0') {
                return Err(r.node(
                    &var.value,
                    format!("the value of `{}` contains a nul byte", var.key),
                    None,
                ));
            }
            env.insert(var.key.clone(), value);
        }
    }

    Ok(Files {
        root,
        id_root,
        workdir,
        user,
        volumes,
        id_volumes,
        env,
    })
}

/// A section may name an image or a local directory, not both (`section`: "[environment]",
/// `who`: "a cell").
pub(super) fn one_root(r: &Reporter, t: &Node, section: &str, who: &str) -> Result<()> {
    if let (Some(_), Some(rootfs)) = (t.get("image"), t.get("rootfs")) {
        return Err(r.at(
            &rootfs.key_span,
            format!("both `image` and `rootfs` are set in {section}"),
            Some(format!(
                "{who} runs in an image or in a local directory: remove one"
            )),
        ));
    }
    Ok(())
}

/// A named `user` of `env_t` must be in its root's account files (see [`check_accounts`]),
/// unless a volume over `/etc` brings its own (the caller skips the check when a setup step
/// may create the user).
pub(super) fn check_user(
    r: &Reporter,
    shared: &Shared,
    env_t: &Node,
    user: Option<&str>,
    volumes: &[Volume],
    root: &Root,
) -> Result<()> {
    let (Some(spec), Some(e)) = (user, env_t.get("user")) else {
        return Ok(());
    };
    let covered = volumes
        .iter()
        .any(|v| ["/etc", "/etc/passwd", "/etc/group"].contains(&v.target.to_str().unwrap_or("")));
    if shared.ctx.check_paths && !covered {
        check_accounts(r, shared.ctx, &e.value, spec, root, shared.accounts)?;
    }
    Ok(())
}

/// `user`: "name", "uid", "uid:gid", "name:group" (names or ids on either side of the `:`),
/// checked for what can never resolve: a negative or out-of-range id, a malformed name.
pub(super) fn user_spec(r: &Reporter, e: &Entry) -> Result<String> {
    let spec = non_empty(r, e)?;
    let hint = || {
        Some("write a user name, a uid from 0 to 4294967294, or `user:group` with names or ids: \"bench\", \"1000\", \"1000:1000\", \"bench:staff\"".to_string())
    };
    let invalid = |why: String| r.node(&e.value, format!("invalid user `{spec}`: {why}"), hint());
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if group.is_some_and(|g| g.contains(':')) {
        return Err(invalid("it has more than one `:`".into()));
    }
    for (part, what) in [(Some(user), "user"), (group, "group")] {
        let Some(part) = part else { continue };
        if part.is_empty() {
            return Err(invalid(format!("the {what} is empty")));
        }
        let digits = part.strip_prefix('-').unwrap_or(part);
        if digits.chars().all(|c| c.is_ascii_digit()) {
            if part.starts_with('-') {
                return Err(invalid(format!("`{part}` is a negative id")));
            }
            // (uid_t)-1 means "unchanged" to setuid: no process can run as it.
            if !matches!(part.parse::<u32>(), Ok(id) if id < u32::MAX) {
                return Err(invalid(format!(
                    "id `{part}` is out of range (0 to 4294967294)"
                )));
            }
        } else {
            let name_ok = !part.starts_with('-')
                && part
                    .trim_end_matches('$')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !name_ok {
                return Err(invalid(format!("`{part}` is not a valid {what} name")));
            }
        }
    }
    Ok(spec.to_string())
}

/// The account files of root directories, read once per directory (a matrix may name the same
/// rootfs in a million cells): `None` where they cannot be read safely (a symlinked `etc`).
#[derive(Default)]
pub(crate) struct AccountFiles(Mutex<HashMap<PathBuf, Option<Arc<Accounts>>>>);

/// The text of `/etc/passwd` and of `/etc/group`.
type Accounts = (String, String);

impl AccountFiles {
    /// `/etc/passwd` and `/etc/group` under `root` (a missing file is empty, as in the sandbox).
    fn get(&self, root: &Path) -> Option<Arc<Accounts>> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(root.to_path_buf())
            .or_insert_with(|| {
                // Not through a symlink: in the container it would resolve inside the rootfs,
                // here on the host.
                let etc = root.join("etc");
                let read = |name: &str| -> Option<String> {
                    let path = etc.join(name);
                    match std::fs::symlink_metadata(&path) {
                        Err(_) => Some(String::new()),
                        Ok(m) if m.file_type().is_symlink() => None,
                        Ok(_) => std::fs::read(&path)
                            .ok()
                            .map(|b| String::from_utf8_lossy(&b).into_owned()),
                    }
                };
                if std::fs::symlink_metadata(&etc).is_ok_and(|m| m.file_type().is_symlink()) {
                    return None;
                }
                Some(Arc::new((read("passwd")?, read("group")?)))
            })
            .clone()
    }
}

/// A named user (and group) must be in the account files of the cell's root: the rootfs's, the
/// host's for a cell on the host's files, an image's when `run` has unpacked it
/// ([`ValidationContext::image_accounts`]). Ids need no entry.
pub(super) fn check_accounts(
    r: &Reporter,
    ctx: &ValidationContext,
    node: &Node,
    spec: &str,
    root: &Root,
    accounts: &AccountFiles,
) -> Result<()> {
    let (files, place, which) = match root {
        Root::Image(reference) => match ctx.image_accounts.get(reference) {
            Some(files) => (Arc::new(files.clone()), "the image's", reference.clone()),
            None => return Ok(()),
        },
        Root::Dir(dir) => match accounts.get(dir) {
            Some(files) => (files, "the rootfs's", dir.join("etc").display().to_string()),
            None => return Ok(()),
        },
        Root::Host => match accounts.get(Path::new("/")) {
            Some(files) => (
                files,
                "the host's",
                "a cell without `image` or `rootfs` runs on the host's files".to_string(),
            ),
            None => return Ok(()),
        },
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let named = |part: &str| !part.chars().all(|c| c.is_ascii_digit());
    let listed = |text: &str, name: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.split(':').next() == Some(name))
    };
    let missing = if named(user) && !listed(&files.0, user) {
        Some(("user", user, "passwd"))
    } else {
        group
            .filter(|g| named(g) && !listed(&files.1, g))
            .map(|g| ("group", g, "group"))
    };
    let Some((what, name, file)) = missing else {
        return Ok(());
    };
    let which = match root {
        Root::Dir(_) => format!("{which}/{file}"),
        _ => which,
    };
    Err(r.node(
        node,
        format!("{what} `{name}` is not in {place} /etc/{file} ({which})"),
        Some(format!(
            "name a {what} of that file, give a numeric id (\"1000\", \"1000:1000\"), or create the {what} in `setup`"
        )),
    ))
}

/// A host path relative to the matrix file's directory, checked when `ctx.check_paths`.
pub(super) fn host_path(
    r: &Reporter,
    ctx: &ValidationContext,
    base_dir: &Path,
    node: &Node,
    written: &str,
    what: &str,
    must_be_dir: bool,
) -> Result<PathBuf> {
    let path = normalize(&base_dir.join(written));
    if !ctx.check_paths {
        return Ok(path);
    }
    let hint = Some(format!(
        "relative paths are relative to the matrix file's directory, {}",
        base_dir.display()
    ));
    match std::fs::metadata(&path) {
        Err(_) => Err(r.node(
            node,
            format!("{what} `{written}` does not exist ({})", path.display()),
            hint,
        )),
        Ok(m) if must_be_dir && !m.is_dir() => Err(r.node(
            node,
            format!("{what} `{written}` is not a directory ({})", path.display()),
            hint,
        )),
        Ok(_) => Ok(std::fs::canonicalize(&path).unwrap_or(path)),
    }
}

/// An absolute path inside the container.
pub(super) fn container_path(
    r: &Reporter,
    node: &Node,
    written: &str,
    what: &str,
) -> Result<PathBuf> {
    if !written.starts_with('/') {
        return Err(r.node(
            node,
            format!("{what} `{written}` is not an absolute path"),
            Some(format!(
                "paths inside the container start with `/`, e.g. `/{}`",
                written.trim_start_matches("./")
            )),
        ));
    }
    // `..` above `/` would mean a path outside the container; inside it the kernel stops at the
    // root anyway, so such a path is a mistake (or an attempt), never what the user meant.
    let mut depth = 0usize;
    for c in Path::new(written).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth == 0 => {
                return Err(r.node(
                    node,
                    format!("{what} `{written}` climbs above the container's root with `..`"),
                    Some(
                        "container paths stay inside the container: write the path without `..`"
                            .into(),
                    ),
                ));
            }
            Component::ParentDir => depth -= 1,
            _ => {}
        }
    }
    Ok(normalize(Path::new(written)))
}

/// `host:target[:ro|:rw]`.
pub(super) fn volume(
    r: &Reporter,
    ctx: &ValidationContext,
    base_dir: &Path,
    node: &Node,
    spec: &str,
) -> Result<(PathBuf, PathBuf, bool)> {
    let syntax = || {
        r.node(
            node,
            format!("invalid volume `{spec}`"),
            Some("write volumes as `host:target`, `host:target:ro` or `host:target:rw`".into()),
        )
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, target, read_only) = match parts.as_slice() {
        [host, target] => (*host, *target, false),
        [host, target, "ro"] => (*host, *target, true),
        [host, target, "rw"] => (*host, *target, false),
        [_, _, mode] => {
            return Err(r.node(
                node,
                format!("invalid volume mode `{mode}` in `{spec}`"),
                Some("valid modes: ro, rw (the default)".into()),
            ));
        }
        _ => return Err(syntax()),
    };
    if host.is_empty() || target.is_empty() {
        return Err(syntax());
    }
    let target = container_path(r, node, target, "volume target")?;
    if target == Path::new("/") {
        return Err(r.node(
            node,
            format!("volume `{spec}` would cover the container's whole filesystem"),
            Some("mount it on a directory such as `/data`".into()),
        ));
    }
    let host = host_path(r, ctx, base_dir, node, host, "volume host path", false)?;
    Ok((host, target, read_only))
}
