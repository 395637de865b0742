//! Which namespaces clients may join, from `server.namespaces`.

use std::sync::Arc;

/// The namespace allowlist: exact names, `*` for any, or a prefix ending in `*`.
#[derive(Debug, Clone)]
pub struct NamespacePolicy {
    patterns: Vec<Arc<str>>,
}

impl NamespacePolicy {
    /// A policy from the configured patterns.
    pub fn new(patterns: &[String]) -> Self {
        NamespacePolicy {
            patterns: patterns.iter().map(|p| Arc::from(p.as_str())).collect(),
        }
    }

    /// Whether `namespace` may be joined; if so, the label it is counted under in
    /// metrics: the namespace itself when listed exactly, otherwise the wildcard
    /// pattern that allowed it (so metric labels stay a bounded set).
    pub fn allows(&self, namespace: &str) -> Option<Arc<str>> {
        if !namespace.starts_with('/') {
            return None;
        }
        if let Some(exact) = self.patterns.iter().find(|p| &***p == namespace) {
            return Some(exact.clone());
        }
        self.patterns
            .iter()
            .find(|p| {
                p.strip_suffix('*')
                    .is_some_and(|prefix| namespace.starts_with(prefix))
            })
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_wildcard_and_prefix() {
        let policy = NamespacePolicy::new(&["/".into(), "/chat/*".into()]);
        assert_eq!(policy.allows("/").as_deref(), Some("/"));
        assert_eq!(policy.allows("/chat/room1").as_deref(), Some("/chat/*"));
        assert_eq!(policy.allows("/admin"), None);
        let any = NamespacePolicy::new(&["*".into()]);
        assert_eq!(any.allows("/anything").as_deref(), Some("*"));
        assert_eq!(any.allows("nope"), None);
    }
}
