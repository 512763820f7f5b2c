//! Who the workload runs as: a user spec ("name", "uid", "uid:gid", "name:group") resolved
//! against the container's own /etc/passwd and /etc/group, as docker and OCI runtimes do.
//! Pure: text in, ids out; the workload process reads the files and switches ids.

/// uid, primary gid, supplementary gids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Resolve `spec` with the container's passwd and group files (empty when missing).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Ids, String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entries = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split(':').map(String::from).collect())
            .collect()
    };
    let passwd = entries(passwd);
    let groups = entries(group);
    let (uid, name, default_gid) = match user.parse::<u32>() {
        Ok(uid) => {
            let entry = passwd
                .iter()
                .find(|e| e.get(2).and_then(|u| u.parse().ok()) == Some(uid));
            (
                uid,
                entry.map(|e| e[0].clone()),
                entry.and_then(|e| e.get(3)?.parse().ok()),
            )
        }
        Err(_) => {
            let entry = passwd
                .iter()
                .find(|e| e.first().map(String::as_str) == Some(user))
                .ok_or_else(|| format!("user `{user}` is not in the container's /etc/passwd"))?;
            let uid = entry
                .get(2)
                .and_then(|u| u.parse().ok())
                .ok_or_else(|| format!("bad /etc/passwd entry for `{user}`"))?;
            (
                uid,
                Some(user.to_string()),
                entry.get(3).and_then(|g| g.parse().ok()),
            )
        }
    };
    let gid = match grp {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.first().map(String::as_str) == Some(g))
                .and_then(|e| e.get(2)?.parse().ok())
                .ok_or_else(|| format!("group `{g}` is not in the container's /etc/group"))?,
        },
        None => default_gid.unwrap_or(uid),
    };
    let mut supplementary = vec![gid];
    if let Some(name) = name {
        for e in &groups {
            let members = e.get(3).map(String::as_str).unwrap_or("");
            if members.split(',').any(|m| m == name)
                && let Some(g) = e.get(2).and_then(|g| g.parse().ok())
                && !supplementary.contains(&g)
            {
                supplementary.push(g);
            }
        }
    }
    Ok(Ids {
        uid,
        gid,
        groups: supplementary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nbench:x:1000:1000::/home/bench:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nbench:x:1000:\nperf:x:1500:bench,other\n";

    #[test]
    fn names_numbers_and_groups() {
        assert_eq!(
            resolve("bench", PASSWD, GROUP).unwrap(),
            Ids {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 1500]
            }
        );
        assert_eq!(resolve("1000", PASSWD, GROUP).unwrap().gid, 1000);
        assert_eq!(
            resolve("4242", "", "").unwrap(),
            Ids {
                uid: 4242,
                gid: 4242,
                groups: vec![4242]
            }
        );
        assert_eq!(resolve("bench:perf", PASSWD, GROUP).unwrap().gid, 1500);
        assert_eq!(
            resolve("5:7", "", "").unwrap(),
            Ids {
                uid: 5,
                gid: 7,
                groups: vec![7]
            }
        );
        assert!(
            resolve("nobody", PASSWD, GROUP)
                .unwrap_err()
                .contains("`nobody`")
        );
        assert!(
            resolve("bench:nogroup", PASSWD, GROUP)
                .unwrap_err()
                .contains("`nogroup`")
        );
    }
}
