//! Which KV v2 secret a Vault/OpenBao request path or event names, and whether
//! a configured `vault-kv` source reads it: shared by the Vault event route and
//! the audit stream listener.

use crate::config::VaultKvConfig;

/// The part of a KV v2 mount a path addresses (`{mount}/{section}/{name}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Data,
    Metadata,
    Delete,
    Undelete,
    Destroy,
}

/// Splits `{mount}/{section}/{name}` (the mount given without slashes); `None`
/// for paths of other mounts, the mount's `config`, or an empty name.
pub(crate) fn locate<'p>(mount: &str, path: &'p str) -> Option<(Section, &'p str)> {
    let rest = path.trim_start_matches('/').strip_prefix(mount)?;
    let rest = rest.strip_prefix('/')?;
    let (section, name) = rest.split_once('/')?;
    let section = match section {
        "data" => Section::Data,
        "metadata" => Section::Metadata,
        "delete" => Section::Delete,
        "undelete" => Section::Undelete,
        "destroy" => Section::Destroy,
        _ => return None,
    };
    let name = name.trim_end_matches('/');
    (!name.is_empty()).then_some((section, name))
}

/// A namespace as Vault writes it in events and audit entries (`""`, `root`,
/// `team/`) compared with a source's (`None` is the root namespace).
pub(crate) fn same_namespace(given: Option<&str>, source: Option<&str>) -> bool {
    let norm = |n: Option<&str>| {
        let n = n.unwrap_or_default().trim_matches('/');
        if n == "root" {
            String::new()
        } else {
            n.to_string()
        }
    };
    norm(given) == norm(source)
}

/// A source's mount without slashes.
pub(crate) fn mount(source: &VaultKvConfig) -> &str {
    source.mount.trim_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_section_and_secret() {
        assert_eq!(
            locate("secret", "secret/data/app/db"),
            Some((Section::Data, "app/db"))
        );
        assert_eq!(
            locate("kv/team", "kv/team/metadata/app/"),
            Some((Section::Metadata, "app"))
        );
        assert_eq!(
            locate("secret", "secret/destroy/x"),
            Some((Section::Destroy, "x"))
        );
        assert_eq!(locate("secret", "secret/config"), None);
        assert_eq!(locate("secret", "secretive/data/x"), None);
        assert_eq!(locate("secret", "secret/data/"), None);
        assert_eq!(locate("secret", "sys/mounts/secret"), None);
    }

    #[test]
    fn root_namespace_has_several_spellings() {
        assert!(same_namespace(Some("root"), None));
        assert!(same_namespace(Some(""), None));
        assert!(same_namespace(None, Some("/")));
        assert!(same_namespace(Some("team/"), Some("team")));
        assert!(!same_namespace(Some("team/"), None));
    }
}
