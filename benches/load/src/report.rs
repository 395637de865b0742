//! Console table rows and the Markdown comparison of JSON-lines results.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::Row;

fn opt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(v) => format!("{v:.prec$}"),
        None => "-".to_string(),
    }
}

pub fn table_header() -> String {
    format!(
        "{:<14} {:<12} {:>6} {:>15} {:>9} {:>6} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>6} {:>5}",
        "server",
        "scenario",
        "conns",
        "push/s want/got",
        "delivered",
        "lost",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "µs/msg",
        "KiB/conn",
        "µs/conn",
        "tool%",
        "psi%"
    )
}

pub fn table_row(r: &Row) -> String {
    let rate = match (r.target_rate, r.achieved_rate, r.max_rate) {
        (_, _, Some(m)) => format!("max {m:.0}"),
        (Some(t), Some(a), _) => format!("{t:.0}/{a:.0}"),
        _ => "-".to_string(),
    };
    format!(
        "{:<14} {:<12} {:>6} {:>15} {:>9} {:>6} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>6.0} {:>5}",
        r.label,
        r.scenario,
        r.connected,
        rate,
        r.delivered.map(|v| v.to_string()).unwrap_or("-".into()),
        r.lost.map(|v| v.to_string()).unwrap_or("-".into()),
        opt(r.p50_ms, 2),
        opt(r.p90_ms, 2),
        opt(r.p99_ms, 2),
        opt(r.max_ms, 1),
        opt(r.cpu_us_per_msg, 1),
        opt(r.rss_kib_per_conn, 1),
        opt(r.cpu_us_per_connect, 0),
        r.tool_cpu_pct,
        opt(r.cpu_pressure_pct, 0)
    )
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn thousands(n: f64) -> String {
    let n = n.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Reads `--json` files and renders one Markdown table: a row per figure, a column per label
/// (in order of first appearance), the median over repeated runs in each cell. With
/// `ratio_to`, each CPU and memory figure of the other labels also shows as a multiple of
/// those labels' (the ratio of the medians).
pub fn markdown(files: &[PathBuf], ratio_to: &[String]) -> Result<String, String> {
    // A reference named twice (`compare.sh --floor` already names the floor) is one reference.
    let mut references: Vec<String> = Vec::new();
    for r in ratio_to {
        if !references.contains(r) {
            references.push(r.clone());
        }
    }
    let ratio_to = &references[..];
    let mut rows: Vec<Row> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            rows.push(
                serde_json::from_str(line)
                    .map_err(|e| format!("{}:{}: {e}", f.display(), i + 1))?,
            );
        }
    }
    let mut labels: Vec<String> = Vec::new();
    for r in &rows {
        if !labels.contains(&r.label) {
            labels.push(r.label.clone());
        }
    }
    let mut by: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        by.entry((r.scenario.clone(), r.label.clone()))
            .or_default()
            .push(r);
    }
    // A figure is shown when a server measured it (a reference such as the floor alone does
    // not make a row), and its title (client counts, rates) comes from that server's run.
    let only_references = labels.iter().all(|l| ratio_to.contains(l));
    let first = |scenario: &str| {
        rows.iter()
            .find(|r| r.scenario == scenario && (only_references || !ratio_to.contains(&r.label)))
    };
    let cell = |scenario: &str, label: &str, f: &dyn Fn(&Row) -> Option<f64>| -> Option<f64> {
        let rs = by.get(&(scenario.to_string(), label.to_string()))?;
        median(rs.iter().filter_map(|r| f(r)).collect())
    };
    // The references a column is compared with: all of them for a server; for a reference,
    // those listed before it (the floor's column stays plain, a peer's shows its floor).
    let references_for = |label: &str| -> &[String] {
        match ratio_to.iter().position(|r| r == label) {
            Some(i) => &ratio_to[..i],
            None => ratio_to,
        }
    };
    // A value with its multiples of the reference labels', e.g. "34.1 µs (2.3× floor)".
    let measured = |scenario: &str,
                    label: &str,
                    f: &dyn Fn(&Row) -> Option<f64>,
                    show: &dyn Fn(f64) -> String| {
        let v = cell(scenario, label, f)?;
        let ratios: Vec<String> = references_for(label)
            .iter()
            .filter_map(|reference| {
                let base = cell(scenario, reference, f).filter(|b| *b > 0.0)?;
                Some(format!("{:.2}× {reference}", v / base))
            })
            .collect();
        let mut text = show(v);
        if !ratios.is_empty() {
            let _ = write!(text, " ({})", ratios.join(", "));
        }
        Some(text)
    };
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    let mut figure = |name: String, fmt: &dyn Fn(&str) -> Option<String>| {
        lines.push((
            name,
            labels
                .iter()
                .map(|l| fmt(l).unwrap_or_else(|| "-".into()))
                .collect(),
        ));
    };

    // Each transport's idle rows (`idle`, `idle-polling`, ...) make lines of their own.
    for (suffix, transport, connect) in [
        ("", "WebSocket", "connect"),
        ("-polling", "polling", "polling connect"),
    ] {
        let idle = format!("idle{suffix}");
        if let Some(r) = first(&idle) {
            figure(
                format!(
                    "RSS per idle {transport} client ({} clients)",
                    thousands(r.clients as f64)
                ),
                &|l| {
                    measured(&idle, l, &|r| r.rss_kib_per_conn, &|v| {
                        format!("{v:.1} KiB")
                    })
                },
            );
            figure(format!("server CPU per {connect}"), &|l| {
                measured(&idle, l, &|r| r.cpu_us_per_connect, &|v| {
                    format!("{v:.0} µs")
                })
            });
        }
        let engine = format!("idle-engine{suffix}");
        if let Some(r) = first(&engine) {
            figure(
                format!(
                    "RSS per Engine.IO-only {transport} session, no namespace ({} sessions)",
                    thousands(r.clients as f64)
                ),
                &|l| cell(&engine, l, &|r| r.rss_kib_per_conn).map(|v| format!("{v:.1} KiB")),
            );
        }
    }
    if let Some(r) = first("unicast") {
        figure(
            format!(
                "server CPU per unicast push, {} clients at {}/s",
                thousands(r.clients as f64),
                thousands(r.target_rate.unwrap_or(0.0))
            ),
            &|l| {
                measured("unicast", l, &|r| r.cpu_us_per_msg, &|v| {
                    format!("{v:.1} µs")
                })
            },
        );
        figure(
            "p50 / p99 latency of that push (POST written → client received)".into(),
            &|l| {
                let p50 = cell("unicast", l, &|r| r.p50_ms)?;
                let p99 = cell("unicast", l, &|r| r.p99_ms)?;
                Some(format!("{p50:.2} / {p99:.2} ms"))
            },
        );
        figure("messages lost in that run".into(), &|l| {
            cell("unicast", l, &|r| r.lost.map(|v| v as f64)).map(|v| format!("{v:.0}"))
        });
    }
    if let Some(r) = first("rooms") {
        figure(
            format!(
                "server CPU per delivery, {} clients in {} rooms, {} deliveries/s",
                thousands(r.clients as f64),
                r.rooms.unwrap_or(0),
                thousands(
                    r.target_rate.unwrap_or(0.0) * r.clients as f64
                        / r.rooms.unwrap_or(1).max(1) as f64
                )
            ),
            &|l| measured("rooms", l, &|r| r.cpu_us_per_msg, &|v| format!("{v:.1} µs")),
        );
    }
    if let Some(r) = first("broadcast") {
        figure(
            format!(
                "server CPU per delivery, broadcast to {} clients ({} deliveries/s)",
                thousands(r.clients as f64),
                thousands(r.target_rate.unwrap_or(0.0) * r.clients as f64)
            ),
            &|l| {
                measured("broadcast", l, &|r| r.cpu_us_per_msg, &|v| {
                    format!("{v:.1} µs")
                })
            },
        );
    }
    if first("unicast-max").is_some() {
        figure(
            "highest unicast rate with p99 < 50 ms and nothing lost".into(),
            &|l| {
                measured("unicast-max", l, &|r| r.max_rate, &|v| {
                    format!("{}/s", thousands(v))
                })
            },
        );
    }
    figure(
        "share of server CPU time in the kernel (idle / unicast / rooms / broadcast)".into(),
        &|l| {
            let v: Vec<String> = ["idle", "unicast", "rooms", "broadcast"]
                .iter()
                .map(|s| {
                    cell(s, l, &|r| r.server_sys_pct)
                        .map(|v| format!("{v:.0}"))
                        .unwrap_or_else(|| "-".into())
                })
                .collect();
            v.iter()
                .any(|c| c != "-")
                .then(|| format!("{} %", v.join(" / ")))
        },
    );
    figure(
        "CPU pressure during the measurements (share of time a task waited for a CPU)".into(),
        &|l| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r.label == l)
                .filter_map(|r| r.cpu_pressure_pct)
                .collect();
            let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = v.iter().cloned().fold(0.0, f64::max);
            (!v.is_empty()).then(|| format!("{lo:.0}–{hi:.0} %"))
        },
    );
    let most_runs = by.values().map(Vec::len).max().unwrap_or(0);

    let mut out = String::new();
    let _ = write!(out, "| figure |");
    for l in &labels {
        let _ = write!(out, " {l} |");
    }
    let _ = write!(out, "\n| --- |");
    for _ in &labels {
        let _ = write!(out, " --- |");
    }
    out.push('\n');
    for (name, cells) in lines {
        let _ = write!(out, "| {name} |");
        for c in cells {
            let _ = write!(out, " {c} |");
        }
        out.push('\n');
    }
    if most_runs > 1 {
        let _ = writeln!(out, "\nEach cell is the median of up to {most_runs} runs.");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Markdown table of `rows`, through a JSON-lines file as `report` reads them.
    fn table(name: &str, rows: &[Row], ratio_to: &[String]) -> String {
        let path = std::env::temp_dir().join(format!(
            "sio-relay-load-report-{name}-{}",
            std::process::id()
        ));
        let lines: Vec<String> = rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
        let table = markdown(std::slice::from_ref(&path), ratio_to).unwrap();
        std::fs::remove_file(&path).unwrap();
        table
    }

    #[test]
    fn figures_show_as_multiples_of_the_references_listed_before() {
        let rows: Vec<Row> = [("server", 20.0), ("peer", 40.0), ("floor", 8.0)]
            .iter()
            .map(|(label, us)| Row {
                label: label.to_string(),
                scenario: "unicast".into(),
                cpu_us_per_msg: Some(*us),
                ..Row::default()
            })
            .collect();
        let table = table("ratios", &rows, &["floor".into(), "peer".into()]);
        assert!(
            table
                .contains("| 20.0 µs (2.50× floor, 0.50× peer) | 40.0 µs (5.00× floor) | 8.0 µs |"),
            "{table}"
        );
    }

    #[test]
    fn a_reference_named_twice_shows_its_multiple_once() {
        let rows: Vec<Row> = [("server", 20.0), ("floor", 8.0)]
            .iter()
            .map(|(label, us)| Row {
                label: label.to_string(),
                scenario: "unicast".into(),
                cpu_us_per_msg: Some(*us),
                ..Row::default()
            })
            .collect();
        let table = table("twice", &rows, &["floor".into(), "floor".into()]);
        assert!(
            table.contains("| 20.0 µs (2.50× floor) | 8.0 µs |"),
            "{table}"
        );
    }

    #[test]
    fn idle_polling_clients_have_lines_of_their_own() {
        let idle = |scenario: &str, kib: f64, us: f64| Row {
            label: "server".into(),
            scenario: scenario.into(),
            clients: 2_000,
            rss_kib_per_conn: Some(kib),
            cpu_us_per_connect: Some(us),
            ..Row::default()
        };
        let rows = [
            idle("idle", 6.0, 60.0),
            idle("idle-polling", 14.0, 300.0),
            idle("idle-engine-polling", 9.0, 200.0),
        ];
        let table = table("polling", &rows, &[]);
        for line in [
            "| RSS per idle WebSocket client (2,000 clients) | 6.0 KiB |",
            "| server CPU per connect | 60 µs |",
            "| RSS per idle polling client (2,000 clients) | 14.0 KiB |",
            "| server CPU per polling connect | 300 µs |",
            "| RSS per Engine.IO-only polling session, no namespace (2,000 sessions) | 9.0 KiB |",
        ] {
            assert!(table.contains(line), "{line} not in\n{table}");
        }
        assert!(!table.contains("Engine.IO-only WebSocket"), "{table}");
    }
}
