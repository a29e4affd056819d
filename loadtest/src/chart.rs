//! `loadtest chart`: latency against offered load, one line per scenario, as a
//! PNG (plotters, bitmap backend; text drawn with a TrueType font from disk, so
//! no system font library is needed).

use std::path::Path;

use anyhow::Context as _;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde::Deserialize;

/// The sweep `loadtest/summarize.py` writes: per scenario, one point per
/// offered load (medians over the rounds).
#[derive(Debug, Deserialize)]
pub struct Sweep {
    pub title: String,
    pub series: Vec<Series>,
}

#[derive(Debug, Deserialize)]
pub struct Series {
    pub scenario: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Deserialize)]
pub struct Point {
    /// Requests per second offered (open loop).
    pub offered: f64,
    pub p50: f64,
    pub p99: f64,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
];

/// Registers the font plotters draws text with. `bytes` must live as long as
/// the process (plotters keeps a reference).
fn register_font(font: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(font).with_context(|| {
        format!(
            "cannot read the chart font {} (Debian: apt-get install fonts-dejavu-core, or pass --font)",
            font.display()
        )
    })?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into()))
        .map_err(|_| anyhow::anyhow!("{} is not a TrueType font", font.display()))
}

/// Draws `sweep` into a PNG at `out`.
pub fn draw(sweep: &Sweep, out: &Path, font: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        sweep.series.iter().any(|s| !s.points.is_empty()),
        "the sweep has no points to draw"
    );
    register_font(font)?;
    let max_x = sweep
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.offered))
        .fold(0.0, f64::max)
        * 1.05;
    let lat = sweep
        .series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.p50, p.p99]))
        .filter(|v| *v > 0.0);
    let (min_y, max_y) = lat.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (min_y, max_y) = ((min_y * 0.8).max(0.01), max_y * 1.25);

    let root = BitMapBackend::new(out, (1400, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&sweep.title, ("sans-serif", 22))?;
    let panels = root.split_evenly((1, 2));
    for (panel, (name, pick)) in panels.iter().zip([
        ("p50 latency", (|p: &Point| p.p50) as fn(&Point) -> f64),
        ("p99 latency", |p: &Point| p.p99),
    ]) {
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_x, (min_y..max_y).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("offered load, requests/s (open loop)")
            .y_desc("ms (log scale)")
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .y_labels(20)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y}"))
            .draw()?;
        for (i, s) in sweep.series.iter().enumerate() {
            draw_series(&mut chart, s, pick, COLORS[i % COLORS.len()])?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

type Chart<'a> = ChartContext<
    'a,
    BitMapBackend<'a>,
    Cartesian2d<RangedCoordf64, plotters::coord::combinators::LogCoord<f64>>,
>;

fn draw_series(
    chart: &mut Chart<'_>,
    s: &Series,
    pick: fn(&Point) -> f64,
    color: RGBColor,
) -> anyhow::Result<()> {
    let mut pts: Vec<(f64, f64)> = s
        .points
        .iter()
        .map(|p| (p.offered, pick(p)))
        .filter(|(_, y)| *y > 0.0)
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
        .label(s.scenario.clone())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

    #[test]
    fn draws_a_png() {
        if !Path::new(FONT).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{FONT} is missing; scripts/test.sh installs fonts-dejavu-core"
            );
            return;
        }
        let sweep: Sweep = serde_json::from_str(
            r#"{"title": "t", "series": [
                {"scenario": "baseline", "points": [{"offered": 1000, "p50": 0.5, "p99": 2.0},
                                                   {"offered": 5000, "p50": 0.8, "p99": 4.0}]},
                {"scenario": "durable", "points": [{"offered": 1000, "p50": 1.5, "p99": 5.0},
                                                  {"offered": 3000, "p50": 3.0, "p99": 30.0}]}]}"#,
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("latency.png");
        draw(&sweep, &out, Path::new(FONT)).unwrap();
        let png = std::fs::read(&out).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 10_000, "a chart, not an empty image");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_an_empty_sweep() {
        let sweep = Sweep {
            title: "t".into(),
            series: vec![],
        };
        let err = draw(&sweep, Path::new("/nonexistent.png"), Path::new(FONT)).unwrap_err();
        assert!(err.to_string().contains("no points"), "{err}");
    }
}
