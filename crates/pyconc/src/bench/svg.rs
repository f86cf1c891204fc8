//! `pyconc bench --svg FILE`: the report as a picture (plotters' SVG backend).
//!
//! On top, one band per operation with three bars — pyconc, raw Rust, CPython — on a log
//! scale of median wall time; below, the CPU-bound speedup of threads and processes on
//! 1..N workers, pyconc's and CPython's.

use std::path::Path;

use plotters::prelude::*;

use super::measure::{Report, format_ns, primary};
use super::scaling::Scaling;

const WIDTH: u32 = 1100;
const BAND: u32 = 46;
const SPEEDUP_HEIGHT: u32 = 440;

const PYCONC: RGBColor = RGBColor(0xd9, 0x5f, 0x02);
const RAW: RGBColor = RGBColor(0x75, 0x70, 0xb3);
const CPYTHON: RGBColor = RGBColor(0x1b, 0x9e, 0x77);

type Failure = Box<dyn std::error::Error>;

/// Writes the report's charts to `path`.
pub(crate) fn write(path: &Path, report: &Report) -> Result<(), Failure> {
    let rows = report.rows().len() as u32;
    let bars_height = if rows == 0 { 0 } else { 110 + rows * BAND };
    let height = bars_height + if report.scaling().is_some() { SPEEDUP_HEIGHT } else { 0 };
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(bars_height);
    if rows > 0 {
        draw_bars(&top, report)?;
    }
    if let Some(scaling) = report.scaling() {
        draw_speedup(&bottom, scaling)?;
    }
    root.present()?;
    Ok(())
}

fn draw_bars(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    report: &Report,
) -> Result<(), Failure> {
    let rows = report.rows();
    let values = rows.iter().flat_map(|r| {
        [Some(primary(&r.pyconc)), Some(primary(&r.raw)), r.python.as_ref().ok().map(primary)]
    });
    let values: Vec<f64> = values.flatten().filter(|v| *v > 0.0).collect();
    let low = values.iter().copied().fold(f64::INFINITY, f64::min).min(1e3) / 3.0;
    let high = values.iter().copied().fold(0.0, f64::max).max(1e4) * 3.0;
    let n = rows.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "median wall time per operation (log scale; shorter is faster)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(8)
        .build_cartesian_2d((low..high).log_scale(), n..0.0)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .light_line_style(WHITE)
        .x_labels(10)
        .x_label_formatter(&|v| format_ns(*v))
        .draw()?;
    let series: [(&str, RGBColor, usize); 3] =
        [("pyconc", PYCONC, 0), ("raw Rust", RAW, 1), ("CPython 3.11", CPYTHON, 2)];
    for (label, color, k) in series {
        let bars = rows.iter().enumerate().filter_map(move |(i, row)| {
            let value = match k {
                0 => Some(primary(&row.pyconc)),
                1 => Some(primary(&row.raw)),
                _ => row.python.as_ref().ok().map(primary),
            }?;
            let y0 = i as f64 + 0.34 + 0.2 * k as f64;
            Some(Rectangle::new([(low, y0), (value, y0 + 0.17)], color.filled()))
        });
        chart
            .draw_series(bars)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    let labels = rows.iter().enumerate().map(|(i, row)| {
        Text::new(
            format!("{}: {}", row.group, row.operation),
            (low * 1.05, i as f64 + 0.05),
            ("sans-serif", 13).into_font().color(&BLACK),
        )
    });
    chart.draw_series(labels)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn draw_speedup(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    scaling: &Scaling,
) -> Result<(), Failure> {
    let workers = scaling.points.len().max(1) as f64;
    let top = scaling
        .points
        .iter()
        .flat_map(|p| [Some(p.threads), Some(p.processes), p.python_threads, p.python_processes])
        .flatten()
        .fold(workers, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "CPU-bound job of {} equal tasks: speedup on 1..{} workers (higher is better)",
                scaling.tasks,
                scaling.points.len()
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5..workers + 0.5, 0.0..top)?;
    chart
        .configure_mesh()
        .x_labels(scaling.points.len())
        .light_line_style(WHITE)
        .x_desc("workers")
        .y_desc("speedup")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.1}x"))
        .draw()?;
    type Pick = fn(&super::scaling::Point) -> Option<f64>;
    let lines: [(&str, RGBColor, Pick); 4] = [
        ("pyconc threads", PYCONC, |p| Some(p.threads)),
        ("pyconc processes (Pool)", RAW, |p| Some(p.processes)),
        ("CPython threads (GIL)", CPYTHON, |p| p.python_threads),
        ("CPython processes (Pool)", RGBColor(0xe7, 0x29, 0x8a), |p| p.python_processes),
    ];
    for (label, color, pick) in lines {
        let points: Vec<(f64, f64)> =
            scaling.points.iter().filter_map(|p| Some((p.workers as f64, pick(p)?))).collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
