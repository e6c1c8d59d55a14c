//! The forward-proxy benchmark's table as an SVG of bar panels (bench_proxy.rs).

use super::Row;

/// The table as bars: CPU per keep-alive GET, tunnels per second, MB/s.
pub fn plot(
    rows: &[Row],
    extra: &[Row],
    direct_tunnels: f64,
    direct_mbps: Option<f64>,
    command: &str,
) -> String {
    use super::plot::{self, Bar, Panel};
    let short = |name: &str| name.split(" (").next().unwrap_or(name).to_owned();
    let all: Vec<&Row> = rows.iter().chain(extra).collect();
    let bars = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<Bar> {
        all.iter()
            .filter(|r| !r.note.starts_with("not run"))
            .map(|r| Bar {
                label: short(&r.name),
                value: f(r),
                accent: r.name.starts_with("kerbside"),
            })
            .collect()
    };
    let mut tunnels = bars(&|r| r.tunnels.map(|t| t.0));
    tunnels.push(Bar {
        label: "direct to the origin".into(),
        value: Some(direct_tunnels),
        accent: false,
    });
    let mut mbps = bars(&|r| r.mbps);
    mbps.push(Bar {
        label: "direct to the origin".into(),
        value: direct_mbps,
        accent: false,
    });
    plot::bars_svg(
        &format!("Forward proxies on this machine: {command}"),
        &[
            Panel {
                title: "Proxy CPU per keep-alive GET, 4 clients (less is better)".into(),
                unit: "µs".into(),
                bars: bars(&|r| r.get4.map(|c| c.1)),
            },
            Panel {
                title: "Proxy CPU per keep-alive GET, 64 clients (less is better)".into(),
                unit: "µs".into(),
                bars: bars(&|r| r.get64.map(|c| c.1)),
            },
            Panel {
                title: "CONNECT + TLS + GET per second, 8 clients".into(),
                unit: "/s".into(),
                bars: tunnels,
            },
            Panel {
                title: "Proxy CPU per CONNECT + TLS + GET (less is better)".into(),
                unit: "µs".into(),
                bars: bars(&|r| r.tunnel_cpu),
            },
            Panel {
                title: "MB/s through one tunnel".into(),
                unit: "MB/s".into(),
                bars: mbps,
            },
        ],
    )
}
