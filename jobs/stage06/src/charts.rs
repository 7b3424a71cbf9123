//! The report's charts, drawn by plotters as SVG text to inline in the page.
//!
//! plotters' SVG backend writes text as `<text>` elements, so no font files
//! are needed to draw and the browser renders the labels with its own fonts.

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::summary::DayPoint;

const WIDTH: u32 = 880;
const BLUE: RGBColor = RGBColor(37, 99, 235);
const RED: RGBColor = RGBColor(220, 38, 38);
const GREEN: RGBColor = RGBColor(22, 163, 74);
pub const AMBER: RGBColor = RGBColor(217, 119, 6);
pub const TEAL: RGBColor = RGBColor(13, 148, 136);
pub const VIOLET: RGBColor = RGBColor(124, 58, 237);
pub const PRIMARY: RGBColor = BLUE;

fn draw_error<E: std::fmt::Debug>(e: E) -> funnelpulse_engine::Error {
    funnelpulse_engine::plan_error!("drawing a chart: {e:?}")
}

/// Runs `draw` on a white SVG canvas of `height` pixels and returns the SVG.
fn svg(
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> funnelpulse_engine::Result<()>,
) -> funnelpulse_engine::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        draw(&root)?;
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}

/// An axis tick: whole numbers with thousands separators on large scales.
fn axis_number(v: f64, scale: f64) -> String {
    if scale >= 100.0 { crate::format::thousands(v.max(0.0).round() as u64) } else { format!("{v:.1}") }
}

/// One horizontal bar per row, the first row on top, each labelled with `label(value)`.
pub fn horizontal_bars(
    title: &str,
    rows: &[(String, f64)],
    axis: &str,
    color: RGBColor,
    label: impl Fn(f64) -> String,
) -> funnelpulse_engine::Result<String> {
    let n = rows.len().max(1) as i32;
    let height = 90 + 34 * n as u32;
    // Room right of the longest bar for its label.
    let top = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9) * 1.4;
    let name_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(4).clamp(4, 28) as u32 * 8 + 16;
    svg(height, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(36)
            .y_label_area_size(name_width)
            .build_cartesian_2d(0.0..top, (0..n).into_segmented())
            .map_err(draw_error)?;
        // Row i is drawn at y = n−1−i so that the list reads top-down.
        let name_of = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(y) => rows.get((n - 1 - y) as usize).map(|r| r.0.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n as usize)
            .y_label_formatter(&name_of)
            .x_desc(axis)
            .x_labels(6)
            .x_label_formatter(&|v: &f64| axis_number(*v, top))
            .light_line_style(RGBColor(241, 245, 249))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(draw_error)?;
        chart
            .draw_series(
                Histogram::horizontal(&chart)
                    .style(color.filled())
                    .margin(6)
                    .data(rows.iter().enumerate().map(|(i, r)| (n - 1 - i as i32, r.1))),
            )
            .map_err(draw_error)?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                Text::new(
                    label(r.1),
                    (r.1 + top * 0.01, SegmentValue::CenterOf(n - 1 - i as i32)),
                    ("sans-serif", 13).into_font().color(&BLACK),
                )
            }))
            .map_err(draw_error)?;
        Ok(())
    })
}

/// Daily conversion rate (purchases / views, %) with the days that had
/// anomalies marked: red circles for drops, green triangles for spikes, sized
/// by how many brand-hours were flagged that day (v2 detector).
pub fn conversion_over_time(days: &[DayPoint]) -> funnelpulse_engine::Result<String> {
    let points: Vec<(f64, f64)> =
        days.iter().enumerate().filter_map(|(i, d)| d.conversion_rate.map(|r| (i as f64, 100.0 * r))).collect();
    // A y range around the data (a flat line at 14% on a 0–18% axis hides the dips),
    // with room above it for the legend.
    let high = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    let low = points.iter().map(|p| p.1).fold(f64::MAX, f64::min);
    let (bottom, top) = if points.is_empty() { (0.0, 1.0) } else { ((low * 0.8).max(0.0), high * 1.35 + 1e-9) };
    let last = (days.len().max(2) - 1) as f64;
    svg(400, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Conversion (purchases / views) per day, anomalies marked", ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..last + 0.5, bottom..top)
            .map_err(draw_error)?;
        let date_of = |x: &f64| {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                String::new()
            } else {
                days.get(i as usize).map(|d| d.date[5..].to_string()).unwrap_or_default()
            }
        };
        chart
            .configure_mesh()
            .x_labels(days.len().min(16))
            .x_label_formatter(&date_of)
            .y_desc("conversion %")
            .light_line_style(RGBColor(241, 245, 249))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(draw_error)?;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), BLUE.stroke_width(2)))
            .map_err(draw_error)?
            .label("conversion")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        let rate_of = |i: usize| days[i].conversion_rate.map(|r| 100.0 * r);
        let size = |n: u64| 4 + n.min(8) as i32;
        chart
            .draw_series(
                days.iter().enumerate().filter(|(_, d)| d.v2_drops > 0).filter_map(|(i, d)| {
                    rate_of(i).map(|r| Circle::new((i as f64, r), size(d.v2_drops), RED.filled()))
                }),
            )
            .map_err(draw_error)?
            .label("days with drops (v2)")
            .legend(|(x, y)| Circle::new((x + 8, y), 5, RED.filled()));
        chart
            .draw_series(days.iter().enumerate().filter(|(_, d)| d.v2_spikes > 0).filter_map(|(i, d)| {
                rate_of(i).map(|r| TriangleMarker::new((i as f64, r), size(d.v2_spikes) + 2, GREEN.filled()))
            }))
            .map_err(draw_error)?
            .label("days with spikes (v2)")
            .legend(|(x, y)| TriangleMarker::new((x + 8, y), 6, GREEN.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(draw_error)?;
        Ok(())
    })
}
