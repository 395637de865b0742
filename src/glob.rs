//! Name globs, as configured and as tokens carry them: `hooks.events` (client event names)
//! and the `namespaces` claim of a JWT (`[auth]`). `*` matches any run of characters (none
//! included, `/` too), `?` exactly one; everything else matches itself.
//!
//! (The room and namespace globs of `[[admin.keys]]` have no `?`: see `admin::scope`.)

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point (the last `*`): linear in practice and
    // never exponential, whatever the pattern.
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
    fn event_names() {
        for (pattern, name, want) in [
            ("*", "anything", true),
            ("*", "", true),
            ("chat:*", "chat:message", true),
            ("chat:*", "chat:", true),
            ("chat:*", "chatter", false),
            ("typing", "typing", true),
            ("typing", "typing2", false),
            ("t?ping", "typing", true),
            ("t?ping", "tping", false),
            ("*-with-ack", "message-with-ack", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("é*", "événement", true),
        ] {
            assert_eq!(matches(pattern, name), want, "{pattern} {name}");
        }
    }

    #[test]
    fn namespaces() {
        for (pattern, namespace, want) in [
            ("/", "/", true),
            ("/", "/chat", false),
            ("/chat/*", "/chat/room1", true),
            ("/chat/*", "/chat/a/b", true),
            ("/chat/*", "/admin", false),
            ("*", "/anything", true),
            ("/t?am", "/team", true),
            ("/*/x", "/a/b/x", true),
            ("/*/x", "/a/b/y", false),
            ("/a**", "/a", true),
            ("", "/", false),
        ] {
            assert_eq!(matches(pattern, namespace), want, "{pattern} {namespace}");
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(50);
        let text = "a".repeat(49) + "b";
        assert!(!matches(&pattern, &text));
    }
}
