//! Charts for reports and training curves, as PNG and SVG.
//!
//! Text is drawn with DejaVu Sans compiled into the binary (`assets/fonts/`), because a CI
//! machine may have no system fonts and plotters' `ab_glyph` feature loads none. PNGs are
//! rendered into memory and encoded here, so that both files go through
//! [`crate::io::write_atomic`] like every other output.
//!
//! Every chart keeps its legend in a panel of its own beside the plot, so that a legend can
//! never hide a curve however the data fall.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use thiserror::Error;

use crate::sim::TaskRecord;

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

#[derive(Debug, Error)]
pub enum PlotError {
    #[error("{}: drawing failed: {msg}", file.display())]
    Draw { file: PathBuf, msg: String },
    #[error(transparent)]
    File(#[from] crate::io::FileError),
}

/// One named curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Category-10 colours: distinct at a glance and still distinct for most colour-blind
/// readers in the first six.
const LINE_COLOURS: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Tableau-20 for jobs in Gantt charts: twice as many hues, so that neighbouring jobs
/// rarely share a colour.
const JOB_COLOURS: [RGBColor; 20] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xae, 0xc7, 0xe8),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0xff, 0xbb, 0x78),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x98, 0xdf, 0x8a),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x98, 0x96),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xc5, 0xb0, 0xd5),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xc4, 0x9c, 0x94),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0xf7, 0xb6, 0xd2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xc7, 0xc7, 0xc7),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0xdb, 0xdb, 0x8d),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x9e, 0xda, 0xe5),
];

pub fn line_colour(i: usize) -> RGBColor {
    LINE_COLOURS[i % LINE_COLOURS.len()]
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font checked in with the source; a failure here is
        // a broken build, not bad input.
        if plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("the embedded DejaVu Sans font does not parse");
        }
    });
}

/// A chart drawable on any plotters backend, so that PNG and SVG share one drawing code.
trait Chart {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Renders `chart` to `stem.png` and `stem.svg`, each written atomically.
fn save(stem: &Path, chart: &impl Chart) -> Result<(), PlotError> {
    register_font();
    let (w, h) = chart.size();
    let png_path = with_ext(stem, "png");
    let svg_path = with_ext(stem, "svg");
    let draw_err = |file: &Path| {
        let file = file.to_path_buf();
        move |msg: String| PlotError::Draw { file, msg }
    };

    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        chart.draw(&root).map_err(draw_err(&png_path))?;
        root.present()
            .map_err(|e| draw_err(&png_path)(e.to_string()))?;
    }
    let png = encode_png(&rgb, w, h).map_err(|e| draw_err(&png_path)(e.to_string()))?;
    crate::io::write_file(&png_path, &png)?;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        chart.draw(&root).map_err(draw_err(&svg_path))?;
        root.present()
            .map_err(|e| draw_err(&svg_path)(e.to_string()))?;
    }
    Ok(crate::io::write_file(&svg_path, svg.as_bytes())?)
}

fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::High);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// A range that plotters can draw: finite, non-empty, padded by `pad` of its width.
fn axis_range(values: impl Iterator<Item = f64>, pad: f64, from_zero: bool) -> (f64, f64) {
    let (mut lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero && lo >= 0.0 {
        lo = 0.0;
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let d = (hi.abs() * 0.1).max(1.0);
        return (lo - d, hi + d);
    }
    let d = (hi - lo) * pad;
    (if from_zero && lo == 0.0 { 0.0 } else { lo - d }, hi + d)
}

/// One legend entry: a swatch (line or box) and its text.
struct LegendEntry {
    text: String,
    colour: RGBColor,
    kind: Swatch,
}

#[derive(Clone, Copy)]
enum Swatch {
    Line,
    Box,
    TriangleDown,
    Dot,
}

const LEGEND_FONT: u32 = 15;

/// Width of the legend panel for these entries, in pixels.
fn legend_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> Result<u32, String> {
    let style: TextStyle = (FONT, LEGEND_FONT).into_font().into();
    let mut w = 0;
    for e in entries {
        w = w.max(root.estimate_text_size(&e.text, &style).map_err(err)?.0);
    }
    Ok(if entries.is_empty() { 0 } else { w + 50 })
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    top: i32,
) -> Result<(), String> {
    let style = (FONT, LEGEND_FONT).into_font().color(&BLACK);
    for (i, e) in entries.iter().enumerate() {
        let y = top + 24 * i as i32;
        match e.kind {
            Swatch::Line => area
                .draw(&PathElement::new(
                    vec![(4, y), (28, y)],
                    e.colour.stroke_width(3),
                ))
                .map_err(err)?,
            Swatch::Box => area
                .draw(&Rectangle::new(
                    [(6, y - 6), (26, y + 6)],
                    e.colour.filled(),
                ))
                .map_err(err)?,
            Swatch::TriangleDown => area
                .draw(&Polygon::new(
                    vec![(10, y - 5), (22, y - 5), (16, y + 6)],
                    e.colour.filled(),
                ))
                .map_err(err)?,
            Swatch::Dot => area
                .draw(&Circle::new((16, y), 5, e.colour.filled()))
                .map_err(err)?,
        }
        area.draw(&Text::new(
            e.text.clone(),
            (36, y - (LEGEND_FONT as i32) / 2 - 1),
            style.clone(),
        ))
        .map_err(err)?;
    }
    Ok(())
}

type Area<DB> = DrawingArea<DB, Shift>;

/// Splits off a right-hand legend panel and returns (plot area, legend area).
fn split_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> Result<(Area<DB>, Area<DB>), String> {
    let (w, _) = root.dim_in_pixel();
    let lw = legend_width(root, entries)?.min(w / 2);
    Ok(root.split_horizontally(w - lw))
}

struct LineChart<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [Series],
    axes: Axes,
}

/// Which axes start at zero (when the data are not negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axes {
    /// Both axes follow the data: training curves, α sweeps.
    Data,
    /// y from zero: quantities whose distance from zero matters (JCT against a sweep).
    YFromZero,
    /// Both from zero: CDFs of durations.
    BothFromZero,
    /// Logarithmic y (non-positive values are left out): values spanning decades.
    YLog,
}

/// Tick labels without trailing zeros ("50", "0.25", not "50.0", "0.250").
fn tick(v: &f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

impl Chart for LineChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 600)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let entries: Vec<LegendEntry> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| LegendEntry {
                text: s.name.clone(),
                colour: line_colour(i),
                kind: Swatch::Line,
            })
            .collect();
        let (plot, legend) = split_legend(root, &entries)?;
        let log = self.axes == Axes::YLog;
        let shown = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!log || p.1 > 0.0);
        let all = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().filter(|p| shown(p)))
        };
        let (x0, x1) = axis_range(all().map(|p| p.0), 0.0, self.axes == Axes::BothFromZero);
        let title = fitted(&plot, self.title, 22)?;
        let mut builder = ChartBuilder::on(&plot);
        builder
            .caption(self.title, title)
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(75);
        if log {
            let (lo, hi) = all()
                .map(|p| p.1)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            let (y0, y1) = if lo.is_finite() {
                (lo / 1.3, hi * 1.3)
            } else {
                (1.0, 10.0)
            };
            let chart = builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(err)?;
            self.finish(chart, &plot, &shown)?;
        } else {
            let (y0, y1) = axis_range(all().map(|p| p.1), 0.05, self.axes != Axes::Data);
            let chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?;
            self.finish(chart, &plot, &shown)?;
        }
        draw_legend(&legend, &entries, 60)
    }
}

impl LineChart<'_> {
    /// Mesh, curves and markers, for either y scale.
    fn finish<DB: DrawingBackend, Y>(
        &self,
        mut chart: ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
        plot: &DrawingArea<DB, Shift>,
        shown: &dyn Fn(&(f64, f64)) -> bool,
    ) -> Result<(), String>
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(err)?;
        let mut any = false;
        for (i, s) in self.series.iter().enumerate() {
            let colour = line_colour(i);
            // A point not shown breaks its curve rather than being joined across.
            for piece in s.points.split(|p| !shown(p)) {
                any |= !piece.is_empty();
                chart
                    .draw_series(LineSeries::new(
                        piece.iter().copied(),
                        colour.stroke_width(2),
                    ))
                    .map_err(err)?;
            }
            if s.points.iter().filter(|p| shown(p)).count() <= 40 {
                chart
                    .draw_series(
                        s.points
                            .iter()
                            .filter(|p| shown(p))
                            .map(|&p| Circle::new(p, 4, colour.filled())),
                    )
                    .map_err(err)?;
            }
        }
        if !any {
            let (w, h) = plot.dim_in_pixel();
            plot.draw(&Text::new(
                "no data",
                (w as i32 / 2 - 30, h as i32 / 2),
                (FONT, 20).into_font(),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

/// The largest font size up to `size` at which `text` fits the area's width.
fn fitted<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    size: u32,
) -> Result<TextStyle<'static>, String> {
    let max = area.dim_in_pixel().0.saturating_sub(30);
    let mut size = size;
    loop {
        let style: TextStyle = (FONT, size).into_font().into();
        if size <= 10 || area.estimate_text_size(text, &style).map_err(err)?.0 <= max {
            return Ok(style);
        }
        size -= 1;
    }
}

/// A line chart with a legend: training curves, sweeps, CDFs. Points that are not finite
/// break their curve; empty and single-point series draw without error.
pub fn line_chart(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), PlotError> {
    line_chart_with(stem, title, x_label, y_label, series, Axes::Data)
}

/// [`line_chart`] with a choice of axes starting at zero.
pub fn line_chart_with(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    axes: Axes,
) -> Result<(), PlotError> {
    save(
        stem,
        &LineChart {
            title,
            x_label,
            y_label,
            series,
            axes,
        },
    )
}

/// One horizontal bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub name: String,
    pub value: f64,
    /// Whisker, e.g. a 95% interval of the mean; drawn when finite.
    pub low: f64,
    pub high: f64,
}

struct BarChart<'a> {
    title: &'a str,
    x_label: &'a str,
    bars: &'a [Bar],
}

impl Chart for BarChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 140 + 42 * self.bars.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let n = self.bars.len().max(1);
        let label_style: TextStyle = (FONT, 15).into_font().into();
        let mut label_w = 0;
        for b in self.bars {
            label_w = label_w.max(
                root.estimate_text_size(&b.name, &label_style)
                    .map_err(err)?
                    .0,
            );
        }
        let values = self
            .bars
            .iter()
            .flat_map(|b| [b.value, b.high])
            .filter(|v| v.is_finite());
        // Room on the right for the value printed after each bar.
        let (_, x1) = axis_range(values, 0.18, true);
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, fitted(root, self.title, 22)?)
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(label_w + 15)
            .build_cartesian_2d(0.0..x1, 0.0..n as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc(self.x_label)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&tick)
            .draw()
            .map_err(err)?;
        let row = |i: usize| (n - 1 - i) as f64;
        for (i, b) in self.bars.iter().enumerate() {
            let y = row(i);
            let colour = line_colour(i);
            if b.value.is_finite() {
                chart
                    .draw_series([Rectangle::new(
                        [(0.0, y + 0.2), (b.value, y + 0.8)],
                        colour.filled(),
                    )])
                    .map_err(err)?;
                if b.low.is_finite() && b.high.is_finite() {
                    let whisker = BLACK.stroke_width(1);
                    chart
                        .draw_series([
                            PathElement::new(vec![(b.low, y + 0.5), (b.high, y + 0.5)], whisker),
                            PathElement::new(vec![(b.low, y + 0.38), (b.low, y + 0.62)], whisker),
                            PathElement::new(vec![(b.high, y + 0.38), (b.high, y + 0.62)], whisker),
                        ])
                        .map_err(err)?;
                }
            }
            let (px, py) = chart.backend_coord(&(b.value.max(b.high).max(0.0), y + 0.5));
            let text = if b.value.is_finite() {
                format!("{:.1}", b.value)
            } else {
                "n/a".into()
            };
            let px = if b.value.is_finite() {
                px + 6
            } else {
                chart.backend_coord(&(0.0, 0.0)).0 + 6
            };
            root.draw(&Text::new(text, (px, py - 8), label_style.clone()))
                .map_err(err)?;
            let (lx, _) = chart.backend_coord(&(0.0, y));
            let w = root
                .estimate_text_size(&b.name, &label_style)
                .map_err(err)?
                .0 as i32;
            root.draw(&Text::new(
                b.name.clone(),
                (lx - w - 8, py - 8),
                label_style.clone(),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

/// A horizontal bar chart, one bar per category in the given order from the top.
pub fn bar_chart(stem: &Path, title: &str, x_label: &str, bars: &[Bar]) -> Result<(), PlotError> {
    save(
        stem,
        &BarChart {
            title,
            x_label,
            bars,
        },
    )
}

/// What a Gantt chart shows: one episode's tasks and its jobs' arrivals and completions.
#[derive(Debug, Clone)]
pub struct GanttData {
    pub title: String,
    pub executors: u32,
    pub tasks: Vec<TaskRecord>,
    /// Per job in arrival order: (arrival s, completion s if it finished).
    pub jobs: Vec<(f64, Option<f64>)>,
    /// Time window shown, seconds.
    pub window_s: f64,
}

struct Gantt<'a> {
    data: &'a GanttData,
}

/// Merges a job's back-to-back tasks on one executor into one bar when the gap between
/// them is below `min_gap_ms`, i.e. invisible at the chart's resolution; this keeps an
/// SVG of thousands of tasks small without changing what the eye sees.
pub fn merge_bars(
    tasks: &[TaskRecord],
    min_gap_ms: u64,
    until_ms: u64,
) -> Vec<(u32, u32, u64, u64)> {
    let mut sorted: Vec<&TaskRecord> = tasks.iter().filter(|t| t.start_ms < until_ms).collect();
    sorted.sort_by_key(|t| (t.executor, t.start_ms, t.end_ms));
    let mut out: Vec<(u32, u32, u64, u64)> = Vec::new();
    for t in sorted {
        let end = t.end_ms.min(until_ms);
        match out.last_mut() {
            Some(last)
                if last.0 == t.executor && last.1 == t.job && t.start_ms <= last.3 + min_gap_ms =>
            {
                last.3 = last.3.max(end);
            }
            _ => out.push((t.executor, t.job, t.start_ms, end)),
        }
    }
    out
}

impl Chart for Gantt<'_> {
    fn size(&self) -> (u32, u32) {
        let rows = self.data.executors.max(1);
        (1300, (260 + 9 * rows).clamp(500, 1100))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let d = self.data;
        root.fill(&WHITE).map_err(err)?;
        let entries = [
            LegendEntry {
                text: "tasks, coloured by job".into(),
                colour: JOB_COLOURS[0],
                kind: Swatch::Box,
            },
            LegendEntry {
                text: "job arrival".into(),
                colour: RGBColor(0x40, 0x40, 0x40),
                kind: Swatch::TriangleDown,
            },
            LegendEntry {
                text: "job completion".into(),
                colour: RGBColor(0x40, 0x40, 0x40),
                kind: Swatch::Dot,
            },
        ];
        let (plot, legend) = split_legend(root, &entries)?;
        let e = f64::from(d.executors.max(1));
        let band = (e * 0.06).max(1.5);
        let window = if d.window_s.is_finite() && d.window_s > 0.0 {
            d.window_s
        } else {
            1.0
        };
        let mut chart = ChartBuilder::on(&plot)
            .caption(&d.title, fitted(&plot, &d.title, 22)?)
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..window, -band..e + band)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("time (s)")
            .y_desc("executor")
            .y_label_formatter(&|v| {
                if *v >= 0.0 && *v < e && v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .x_label_formatter(&tick)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .draw()
            .map_err(err)?;
        let (pw, _) = plot.dim_in_pixel();
        let until_ms = (window * 1000.0) as u64;
        let min_gap_ms = (window * 1000.0 / f64::from(pw.max(1))) as u64;
        let colour = |job: u32| JOB_COLOURS[job as usize % JOB_COLOURS.len()];
        let bars = merge_bars(&d.tasks, min_gap_ms, until_ms);
        chart
            .draw_series(bars.iter().map(|&(ex, job, s, t)| {
                let y = f64::from(ex);
                Rectangle::new(
                    [(s as f64 / 1000.0, y + 0.1), (t as f64 / 1000.0, y + 0.9)],
                    colour(job).filled(),
                )
            }))
            .map_err(err)?;
        // Separators between the task rows and the marker bands.
        chart
            .draw_series(
                [0.0, e].map(|y| {
                    PathElement::new(vec![(0.0, y), (window, y)], RGBColor(0x99, 0x99, 0x99))
                }),
            )
            .map_err(err)?;
        let top = e + band / 2.0;
        let bottom = -band / 2.0;
        for (j, &(arr, done)) in d.jobs.iter().enumerate() {
            let c = colour(j as u32);
            if arr <= window {
                let down = Polygon::new(vec![(-6, -5), (6, -5), (0, 6)], c.filled());
                let outline = PathElement::new(
                    vec![(-6, -5), (6, -5), (0, 6), (-6, -5)],
                    BLACK.stroke_width(1),
                );
                chart
                    .draw_series([EmptyElement::at((arr, top)) + down + outline])
                    .map_err(err)?;
            }
            if let Some(t) = done.filter(|&t| t <= window) {
                chart
                    .draw_series([
                        Circle::new((t, bottom), 4, c.filled()),
                        Circle::new((t, bottom), 4, BLACK.stroke_width(1)),
                    ])
                    .map_err(err)?;
            }
        }
        draw_legend(&legend, &entries, 60)
    }
}

/// A Gantt chart: executors on the y axis, time on the x axis, tasks coloured by job,
/// arrivals marked above the rows and completions below.
pub fn gantt_chart(stem: &Path, data: &GanttData) -> Result<(), PlotError> {
    save(stem, &Gantt { data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_drawable() {
        assert_eq!(axis_range([].into_iter(), 0.05, false), (0.0, 1.0));
        let (lo, hi) = axis_range([3.0].into_iter(), 0.05, false);
        assert!(lo < 3.0 && hi > 3.0);
        let (lo, hi) = axis_range([f64::NAN, 2.0, 4.0].into_iter(), 0.0, false);
        assert_eq!((lo, hi), (2.0, 4.0));
        assert_eq!(axis_range([2.0, 4.0].into_iter(), 0.0, true), (0.0, 4.0));
    }

    #[test]
    fn merging_keeps_jobs_and_executors_apart() {
        let t = |job, executor, start_ms, end_ms| TaskRecord {
            job,
            stage: 0,
            task: 0,
            executor,
            start_ms,
            end_ms,
            wave: crate::sim::Wave::Rest,
        };
        let tasks = [
            t(0, 0, 0, 10),
            t(0, 0, 10, 20),
            t(1, 0, 20, 30),
            t(0, 1, 0, 10),
            t(0, 1, 50, 60),
        ];
        let bars = merge_bars(&tasks, 5, 1000);
        assert_eq!(
            bars,
            vec![(0, 0, 0, 20), (0, 1, 20, 30), (1, 0, 0, 10), (1, 0, 50, 60)]
        );
        assert_eq!(
            merge_bars(&tasks, 100, 55),
            vec![(0, 0, 0, 20), (0, 1, 20, 30), (1, 0, 0, 55)]
        );
    }
}
