//! The SVG of docs/performance.md: latency percentiles against concurrency, one panel per
//! percentile and protocol, one line per endpoint, both axes logarithmic so that 1, 16 and 64
//! workers and microseconds to milliseconds all stay readable.

use std::path::Path;

use plotters::prelude::*;

use super::matrix::{MatrixRow, Measured};

const PROTOCOLS: [&str; 2] = ["HTTP/1.1", "HTTP/2"];

/// Reads one latency percentile, in microseconds, from a row.
type Percentile = fn(&MatrixRow) -> f64;

/// The percentiles drawn, top to bottom, with how to read each from a row.
const PERCENTILES: [(&str, Percentile); 3] = [
    ("p50", |row| row.latency.p50_us),
    ("p99", |row| row.latency.p99_us),
    ("p99.9", |row| row.latency.p999_us),
];

/// One colour per endpoint, in `Measured::ALL` order (distinguishable for colour-blind readers:
/// the Okabe–Ito palette).
const COLOURS: [RGBColor; 4] = [
    RGBColor(0, 0, 0),
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
];

pub(crate) fn latency_against_concurrency(rows: &[MatrixRow], path: &Path) -> Result<(), String> {
    let error = |error: &dyn std::fmt::Display| error.to_string();
    let (min_level, max_level) = rows.iter().fold((usize::MAX, 1), |(low, high), row| {
        (low.min(row.concurrency), high.max(row.concurrency))
    });
    if rows.is_empty() {
        return Err("no measurements to plot".to_owned());
    }
    // Ticks exactly at the measured concurrencies.
    let mut levels: Vec<f64> = rows.iter().map(|row| row.concurrency as f64).collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let root = SVGBackend::new(path, (1100, 1200)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let root = root
        .titled(
            "isvc-ingress webhook: latency against concurrency (loopback TLS, isvc-ingress-load --matrix)",
            ("sans-serif", 20),
        )
        .map_err(|e| error(&e))?;
    let panels = root.split_evenly((PERCENTILES.len(), PROTOCOLS.len()));
    for (index, panel) in panels.iter().enumerate() {
        let (percentile, read) = PERCENTILES[index / PROTOCOLS.len()];
        let protocol = PROTOCOLS[index % PROTOCOLS.len()];
        // The same latency axis for both protocols, so the panels of a row compare directly.
        let (low, high) = rows
            .iter()
            .map(read)
            .filter(|value| *value > 0.0)
            .fold((f64::MAX, f64::MIN), |(low, high), value| {
                (low.min(value), high.max(value))
            });
        let (low, high) = if low <= high {
            (low / 1.5, high * 1.5)
        } else {
            (1.0, 10.0)
        };
        let x_range = (min_level as f64 / 1.3)..(max_level as f64 * 1.3);
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{protocol}, {percentile}"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                x_range.log_scale().with_key_points(levels.clone()),
                (low..high)
                    .log_scale()
                    .with_key_points(one_two_five(low, high)),
            )
            .map_err(|e| error(&e))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("concurrency (requests in flight)")
            .y_desc(format!("{percentile} latency (µs)"))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| error(&e))?;
        for (measured, colour) in Measured::ALL.iter().zip(COLOURS) {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|row| row.endpoint == measured.name() && row.protocol == protocol)
                .map(|row| (row.concurrency as f64, read(row)))
                .filter(|(_, value)| *value > 0.0)
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(|e| error(&e))?
                .label(measured.name())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|point| Circle::new(point, 3, colour.filled())),
                )
                .map_err(|e| error(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| error(&e))?;
    }
    root.present().map_err(|e| error(&e))
}

/// One size of the real-control-plane scale benchmark (`benches/control_plane_scale.rs`, a
/// JSON line of its `CONTROL_PLANE_SCALE_ROWS` file): `serve`'s memory once its caches hold
/// `isvcs` ISVCs and their routes.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct RssRow {
    pub isvcs: usize,
    /// VmRSS, MiB.
    pub rss_mib: f64,
    /// VmHWM (peak RSS), MiB.
    pub hwm_mib: f64,
}

/// Reads one memory figure, in MiB, from a row.
type Memory = fn(&RssRow) -> f64;

/// The memory plot of docs/performance.md: `serve`'s VmRSS and VmHWM against the ISVCs it
/// caches, linear axes from zero (the slope is the point), and the target (4 MiB per
/// 1,000 ISVCs from the RSS at the smallest size) as a dashed line.
pub(crate) fn rss_against_isvcs(rows: &[RssRow], path: &Path) -> Result<(), String> {
    let error = |error: &dyn std::fmt::Display| error.to_string();
    let (Some(first), Some(last)) = (
        rows.iter().min_by_key(|row| row.isvcs),
        rows.iter().max_by_key(|row| row.isvcs),
    ) else {
        return Err("no measurements to plot".to_owned());
    };
    let max_isvcs = (last.isvcs.max(1) as f64) * 1.05;
    let target = |isvcs: f64| first.rss_mib + 4.0 * (isvcs - first.isvcs as f64) / 1000.0;
    let max_mib = rows
        .iter()
        .map(|row| row.rss_mib.max(row.hwm_mib))
        .fold(target(max_isvcs), f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "isvc-ingress serve: memory against InferenceServices cached (real kube-apiserver)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_isvcs, 0f64..max_mib)
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("InferenceServices (with their routes)")
        .y_desc("resident memory (MiB)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|e| error(&e))?;
    let mut sorted = rows.to_vec();
    sorted.sort_by_key(|row| row.isvcs);
    let series: [(&str, Memory, RGBColor); 2] = [
        ("VmRSS after start-up", |row| row.rss_mib, COLOURS[1]),
        ("VmHWM (peak) after start-up", |row| row.hwm_mib, COLOURS[2]),
    ];
    for (label, read, colour) in series {
        let points: Vec<(f64, f64)> = sorted
            .iter()
            .map(|row| (row.isvcs as f64, read(row)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(|e| error(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|point| Circle::new(point, 4, colour.filled())),
            )
            .map_err(|e| error(&e))?;
    }
    let dashes = DashedLineSeries::new(
        [
            (first.isvcs as f64, target(first.isvcs as f64)),
            (max_isvcs, target(max_isvcs)),
        ],
        8,
        6,
        COLOURS[0].stroke_width(1),
    );
    chart
        .draw_series(dashes)
        .map_err(|e| error(&e))?
        .label("target: 4 MiB per 1,000 ISVCs")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], COLOURS[0].stroke_width(1)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))
}

/// Latency ticks at 1, 2 and 5 times each power of ten between `low` and `high`: few enough to
/// read on a logarithmic axis, where plotters' own ticks crowd each decade.
fn one_two_five(low: f64, high: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(low.log10().floor());
    while decade <= high {
        for step in [1.0, 2.0, 5.0] {
            let tick = decade * step;
            if (low..=high).contains(&tick) {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}

#[cfg(test)]
mod tests {
    use super::one_two_five;

    #[test]
    fn ticks_are_one_two_five_within_the_range() {
        assert_eq!(
            one_two_five(40.0, 1500.0),
            [50.0, 100.0, 200.0, 500.0, 1000.0]
        );
        assert_eq!(one_two_five(1.0, 1.0), [1.0]);
    }
}
