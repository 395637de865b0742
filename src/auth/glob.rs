//! Glob patterns for the `namespaces` claim: `*` matches any run of characters (`/` too),
//! `?` any one character; everything else matches itself.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("/", "/"));
        assert!(!matches("/", "/chat"));
        assert!(matches("/chat/*", "/chat/room1"));
        assert!(matches("/chat/*", "/chat/a/b"));
        assert!(!matches("/chat/*", "/admin"));
        assert!(matches("*", "/anything"));
        assert!(matches("/t?am", "/team"));
        assert!(matches("/*/x", "/a/b/x"));
        assert!(!matches("/*/x", "/a/b/y"));
        assert!(matches("/a**", "/a"));
        assert!(!matches("", "/"));
    }
}
