//! Secret masking: the effective configuration as an operator may see it, in
//! `--check-config` output and in `Debug` output that could reach a log.
//!
//! Secrets are the admin tokens, the `[auth]` secrets, `hooks.secret` and any password in
//! `cluster.redis_url`. A masked token
//! keeps its place in the list, so the count stays visible.

use std::borrow::Cow;

use super::Config;

/// What a secret is shown as.
pub const MASK: &str = "********";

/// A copy of `config` with every secret replaced by [`MASK`].
pub fn masked(config: &Config) -> Config {
    let mut config = config.clone();
    for token in &mut config.admin.tokens {
        *token = MASK.to_owned();
    }
    for key in &mut config.admin.keys {
        key.token = MASK.to_owned();
    }
    config.cluster.redis_url = mask_url(&config.cluster.redis_url).into_owned();
    super::auth::mask(&mut config.auth);
    if !config.hooks.secret.is_empty() {
        config.hooks.secret = MASK.to_owned();
    }
    config
}

/// The effective configuration as TOML, secrets masked: what `--check-config` prints.
pub fn render_masked(config: &Config) -> String {
    toml::to_string(&masked(config))
        .expect("the config tree serializes to TOML (tested with the defaults)")
}

/// `url` with the password of its user info, and any `password`/`pass` query parameter,
/// replaced by [`MASK`]. User info without a `:` is masked whole: some clients read a lone
/// name there as the password.
pub fn mask_url(url: &str) -> Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Cow::Borrowed(url);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);

    let mut changed = false;
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            changed = true;
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:{MASK}@{host}"),
                None => format!("{MASK}@{host}"),
            }
        }
        None => authority.to_owned(),
    };

    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if is_password_param(name) => {
                        changed = true;
                        format!("{name}={MASK}")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            let mut tail = format!("{path}?{}", params.join("&"));
            if let Some(fragment) = fragment {
                tail.push('#');
                tail.push_str(fragment);
            }
            tail
        }
        None => tail.to_owned(),
    };

    if changed {
        Cow::Owned(format!("{scheme}://{authority}{tail}"))
    } else {
        Cow::Borrowed(url)
    }
}

fn is_password_param(name: &str) -> bool {
    name.eq_ignore_ascii_case("password") || name.eq_ignore_ascii_case("pass")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://user:hunter2@host:6379/0",
                "redis://user:********@host:6379/0",
            ),
            ("redis://:hunter2@host", "redis://:********@host"),
            ("rediss://hunter2@host", "rediss://********@host"),
            ("redis://a:b@c@host/1?x=1", "redis://a:********@host/1?x=1"),
            (
                "unix:///run/redis.sock?db=2&pass=hunter2",
                "unix:///run/redis.sock?db=2&pass=********",
            ),
            (
                "unix:///run/redis.sock?password=hunter2#frag",
                "unix:///run/redis.sock?password=********#frag",
            ),
            ("not a url", "not a url"),
        ];
        for (url, want) in cases {
            assert_eq!(mask_url(url), want, "{url}");
        }
    }

    #[test]
    fn rendering_masks_every_secret() {
        let mut config = Config::default();
        config.admin.tokens = vec!["hunter2".into(), "swordfish".into()];
        config.cluster.redis_url = "redis://u:pa55@redis:6379".into();
        let text = render_masked(&config);
        assert!(!text.contains("hunter2") && !text.contains("swordfish"));
        assert!(!text.contains("pa55"));
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.admin.tokens, [MASK, MASK]);
        assert_eq!(back.cluster.redis_url, "redis://u:********@redis:6379");
        assert_eq!(back.server, config.server);
    }
}
