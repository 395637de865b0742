//! Event name globs of `hooks.events`: `*` matches any run of characters (none included),
//! `?` exactly one; everything else matches itself.

/// Whether `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point (the last `*`): linear in practice and
    // never exponential, whatever the pattern.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
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
}
