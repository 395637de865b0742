//! Admission of new Engine.IO sessions: who the client is (its address, through trusted
//! proxies) and whether `[limits]` let it open one more session.
//!
//! Three limits, each 0 for none: sessions open on this node (`max_connections`), sessions
//! open per client address (`max_connections_per_ip`), and new sessions per second per
//! client address (`handshakes_per_second_per_ip`, a token bucket holding that many
//! tokens, refilled at that rate). A session holds a [`Permit`] for its whole life; the
//! counts go down when it drops.
//!
//! Memory stays bounded whatever the clients do: an address is in the count table only
//! while it has sessions open, and its bucket only until the bucket is full again (a full
//! bucket is the same as none). Full buckets are swept out when the table has grown, at
//! most once a second; past [`MAX_BUCKETS`] addresses with partly used buckets, the oldest
//! half is forgotten (those clients get a fresh bucket: the limit errs on letting in).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use crate::config::LimitsConfig;
use crate::config::cidr::Cidr;
use crate::metrics::Metrics;

/// The most addresses with a partly used bucket kept at once.
pub const MAX_BUCKETS: usize = 65_536;

/// Table size past which full buckets are swept out (at most once a second).
const SWEEP_ABOVE: usize = 1024;

/// Why a handshake was refused; the `reason` label of
/// `sio_relay_refused_connections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.max_connections` sessions are open.
    MaxConnections,
    /// `limits.max_connections_per_ip` sessions are open from the client's address.
    MaxConnectionsPerIp,
    /// The client's address opened more than `limits.handshakes_per_second_per_ip`.
    RateLimited,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxConnectionsPerIp => "max_connections_per_ip",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

/// Counts of open sessions; shared with the permits.
#[derive(Default)]
struct Counts {
    total: u64,
    per_ip: HashMap<IpAddr, u64>,
}

/// A token bucket: `tokens` as of `at`.
#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct Buckets {
    map: HashMap<IpAddr, Bucket>,
    last_sweep: Option<Instant>,
}

/// The settings admission reads, replaced whole on reload.
#[derive(Default)]
struct Rules {
    limits: LimitsConfig,
    trusted_proxies: Vec<Cidr>,
}

/// Decides who may open a session. One per engine.
pub struct Admission {
    rules: RwLock<Arc<Rules>>,
    /// Locked for a count check and update only, never across an await.
    counts: Arc<Mutex<Counts>>,
    /// Locked for a bucket update (and, rarely, a sweep) only.
    buckets: Mutex<Buckets>,
    metrics: Metrics,
}

/// One admitted session's place in the counts, given back when dropped.
pub struct Permit {
    held: Option<(Arc<Mutex<Counts>>, IpAddr)>,
}

impl Permit {
    /// A permit that counts nothing: for sessions opened in-process (tests, benchmarks).
    pub fn unlimited() -> Self {
        Permit { held: None }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some((counts, ip)) = self.held.take() else {
            return;
        };
        let mut counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

impl Admission {
    /// Admission with no limits and no trusted proxy.
    pub fn new(metrics: Metrics) -> Self {
        Admission {
            rules: RwLock::new(Arc::default()),
            counts: Arc::default(),
            buckets: Mutex::default(),
            metrics,
        }
    }

    /// Applies `[limits]` (reloadable): sessions already open stay, even over a lowered cap.
    pub fn set_limits(&self, limits: &LimitsConfig) {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        *rules = Arc::new(Rules {
            limits: limits.clone(),
            trusted_proxies: rules.trusted_proxies.clone(),
        });
    }

    /// Applies `server.trusted_proxies` (reloadable). Entries that do not parse were
    /// refused by validation and are skipped here.
    pub fn set_trusted_proxies(&self, trusted_proxies: &[String]) {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        *rules = Arc::new(Rules {
            limits: rules.limits.clone(),
            trusted_proxies: trusted_proxies
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
        });
    }

    fn rules(&self) -> Arc<Rules> {
        self.rules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the
    /// nearest address in `X-Forwarded-For` (`forwarded`: the header's values in order)
    /// that is not a trusted proxy itself. Forwarded addresses carry no port: port 0.
    pub fn client_addr<'a>(
        &self,
        peer: SocketAddr,
        forwarded: impl IntoIterator<Item = &'a [u8]>,
    ) -> SocketAddr {
        let rules = self.rules();
        let trusted = |ip: IpAddr| rules.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(peer.ip()) {
            return peer;
        }
        let hops: Vec<IpAddr> = forwarded
            .into_iter()
            .filter_map(|value| std::str::from_utf8(value).ok())
            .flat_map(|value| value.split(','))
            .map(|hop| parse_hop(hop.trim()))
            .collect::<Option<_>>()
            // A malformed list cannot be trusted at all: the peer is the client.
            .unwrap_or_default();
        // Right to left: each hop was added by the proxy after it; the first untrusted
        // one is the client as far as our proxies can vouch.
        let mut client = None;
        for hop in hops.iter().rev() {
            client = Some(*hop);
            if !trusted(*hop) {
                break;
            }
        }
        match client {
            Some(ip) => SocketAddr::new(ip, 0),
            None => peer,
        }
    }

    /// Lets a client at `ip` open a session, or says why not (counted).
    pub fn admit(&self, ip: IpAddr) -> Result<Permit, Refusal> {
        let result = self.try_admit(ip.to_canonical());
        if let Err(refusal) = result {
            self.metrics
                .refused_connections
                .with_label_values(&[refusal.as_str()])
                .inc();
            tracing::debug!(%ip, reason = refusal.as_str(), "handshake refused");
        }
        result
    }

    fn try_admit(&self, ip: IpAddr) -> Result<Permit, Refusal> {
        let rules = self.rules();
        let limits = &rules.limits;
        {
            // Checked before spending a token: a client at its cap does not drain its
            // bucket as well.
            let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            check_counts(&counts, limits, ip)?;
        }
        if limits.handshakes_per_second_per_ip > 0 {
            self.take_token(ip, limits.handshakes_per_second_per_ip as f64)?;
        }
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        // Again, under the lock that counts: another handshake may have come in between.
        check_counts(&counts, limits, ip)?;
        counts.total += 1;
        *counts.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Permit {
            held: Some((self.counts.clone(), ip)),
        })
    }

    fn take_token(&self, ip: IpAddr, rate: f64) -> Result<(), Refusal> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.map.len() > SWEEP_ABOVE
            && buckets
                .last_sweep
                .is_none_or(|at| now.duration_since(at).as_secs() >= 1)
        {
            sweep(&mut buckets, now, rate);
        }
        let bucket = buckets.map.entry(ip).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let refilled = bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = refilled.min(rate);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(Refusal::RateLimited);
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    /// How many addresses have a bucket (for tests of the memory bound).
    pub fn tracked_addresses(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }
}

fn check_counts(counts: &Counts, limits: &LimitsConfig, ip: IpAddr) -> Result<(), Refusal> {
    if limits.max_connections > 0 && counts.total >= limits.max_connections {
        return Err(Refusal::MaxConnections);
    }
    if limits.max_connections_per_ip > 0
        && counts.per_ip.get(&ip).copied().unwrap_or(0) >= limits.max_connections_per_ip
    {
        return Err(Refusal::MaxConnectionsPerIp);
    }
    Ok(())
}

/// Forgets full buckets; past [`MAX_BUCKETS`], the least recently used half too.
fn sweep(buckets: &mut Buckets, now: Instant, rate: f64) {
    buckets.last_sweep = Some(now);
    buckets
        .map
        .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < rate);
    if buckets.map.len() > MAX_BUCKETS {
        let mut ages: Vec<Instant> = buckets.map.values().map(|b| b.at).collect();
        let middle = ages.len() / 2;
        let (_, cutoff, _) = ages.select_nth_unstable(middle);
        let cutoff = *cutoff;
        buckets.map.retain(|_, b| b.at > cutoff);
    }
}

/// One `X-Forwarded-For` hop: an IP, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|a| a.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limits: LimitsConfig, proxies: &[&str]) -> Admission {
        let admission = Admission::new(Metrics::new());
        let proxies: Vec<String> = proxies.iter().map(|p| p.to_string()).collect();
        admission.set_limits(&limits);
        admission.set_trusted_proxies(&proxies);
        admission
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_and_total_caps_hold_until_permits_drop() {
        let a = admission(
            LimitsConfig {
                max_connections: 3,
                max_connections_per_ip: 2,
                handshakes_per_second_per_ip: 0,
                ..LimitsConfig::default()
            },
            &[],
        );
        let p1 = a.admit(ip("10.0.0.1")).unwrap();
        let _p2 = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(
            a.admit(ip("10.0.0.1")).err(),
            Some(Refusal::MaxConnectionsPerIp)
        );
        let _p3 = a.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.3")).err(), Some(Refusal::MaxConnections));
        drop(p1);
        assert!(a.admit(ip("10.0.0.1")).is_ok());
        assert_eq!(
            a.metrics
                .refused_connections
                .with_label_values(&["max_connections"])
                .get(),
            1
        );
    }

    #[test]
    fn a_bucket_refills_at_the_rate_and_full_ones_are_forgotten() {
        let a = admission(
            LimitsConfig {
                handshakes_per_second_per_ip: 2,
                ..LimitsConfig::default()
            },
            &[],
        );
        drop(a.admit(ip("10.0.0.1")).unwrap());
        drop(a.admit(ip("10.0.0.1")).unwrap());
        assert_eq!(a.admit(ip("10.0.0.1")).err(), Some(Refusal::RateLimited));
        assert!(a.admit(ip("10.0.0.2")).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(600));
        assert!(a.admit(ip("10.0.0.1")).is_ok());

        // Many addresses, each one handshake: swept once their buckets are full again.
        for i in 0..5000u32 {
            let _ = a.admit(IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i)));
        }
        assert!(a.tracked_addresses() <= 5002);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let _ = a.admit(ip("10.9.9.9"));
        assert!(a.tracked_addresses() <= 2, "{}", a.tracked_addresses());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let a = admission(LimitsConfig::default(), &["10.0.0.0/8"]);
        let peer: SocketAddr = "10.1.1.1:4000".parse().unwrap();
        let outsider: SocketAddr = "203.0.113.9:4000".parse().unwrap();
        let xff = |v: &'static str| vec![v.as_bytes()];
        assert_eq!(
            a.client_addr(peer, xff("198.51.100.7")),
            "198.51.100.7:0".parse().unwrap()
        );
        // The client may forge the left part; the proxies vouch for the right part.
        assert_eq!(
            a.client_addr(peer, xff("1.1.1.1, 198.51.100.7, 10.2.2.2")),
            "198.51.100.7:0".parse().unwrap()
        );
        assert_eq!(a.client_addr(outsider, xff("198.51.100.7")), outsider);
        assert_eq!(a.client_addr(peer, Vec::<&[u8]>::new()), peer);
        assert_eq!(a.client_addr(peer, xff("not an ip")), peer);
        assert_eq!(
            a.client_addr(peer, vec![&b"1.1.1.1"[..], &b"[2001:db8::1]:443"[..]]),
            "[2001:db8::1]:0".parse().unwrap()
        );
    }
}
