//! A hand-written SVG of horizontal bar panels, for the figures a benchmark writes
//! into BENCHMARKS.md: no plotting dependency, a file that renders on GitHub and in
//! any browser. Each panel is one measure (its own scale, starting at zero); each
//! bar one subject, with its value printed at its end.

use std::fmt::Write as _;

/// One bar: a subject and its value (`None`: not measured, drawn as a note).
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    /// Drawn in the accent colour (the subject the benchmark is about).
    pub accent: bool,
}

/// One measure.
pub struct Panel {
    pub title: String,
    /// After each value: `µs`, `/s`, `MB/s`.
    pub unit: String,
    pub bars: Vec<Bar>,
}

const WIDTH: f64 = 860.0;
const LABEL_W: f64 = 300.0;
const BAR_H: f64 = 18.0;
const GAP: f64 = 6.0;
const PANEL_GAP: f64 = 34.0;
const VALUE_W: f64 = 90.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG document: `title` on top, then the panels one below the other.
pub fn bars_svg(title: &str, panels: &[Panel]) -> String {
    let height: f64 = 40.0
        + panels
            .iter()
            .map(|p| PANEL_GAP + p.bars.len() as f64 * (BAR_H + GAP))
            .sum::<f64>()
        + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        s,
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"22\" \
         font-size=\"15\" font-weight=\"bold\">{}</text>",
        escape(title)
    );
    let mut y = 40.0;
    let span = WIDTH - LABEL_W - VALUE_W - 10.0;
    for panel in panels {
        y += PANEL_GAP;
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{:.0}\" font-weight=\"bold\">{}</text>",
            y - 10.0,
            escape(&panel.title)
        );
        let max = panel
            .bars
            .iter()
            .filter_map(|b| b.value)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        for bar in &panel.bars {
            let mid = y + BAR_H * 0.75;
            let _ = writeln!(
                s,
                "<text x=\"{:.0}\" y=\"{mid:.0}\" text-anchor=\"end\">{}</text>",
                LABEL_W - 8.0,
                escape(&bar.label)
            );
            match bar.value.filter(|v| v.is_finite()) {
                Some(v) => {
                    let w = if max > 0.0 { span * v / max } else { 0.0 };
                    let fill = if bar.accent { "#c0392b" } else { "#7f8c8d" };
                    let _ = writeln!(
                        s,
                        "<rect x=\"{LABEL_W}\" y=\"{y:.0}\" width=\"{w:.1}\" height=\"{BAR_H}\" \
                         fill=\"{fill}\"/>\n<text x=\"{:.1}\" y=\"{mid:.0}\">{v:.0} {}</text>",
                        LABEL_W + w + 5.0,
                        escape(&panel.unit)
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "<text x=\"{LABEL_W}\" y=\"{mid:.0}\" fill=\"#7f8c8d\">not measured</text>"
                    );
                }
            }
            y += BAR_H + GAP;
        }
    }
    s.push_str("</svg>\n");
    s
}
