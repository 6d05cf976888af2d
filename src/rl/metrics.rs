//! `metrics.csv`: one typed row per training iteration, and the training curves drawn from
//! those rows.
//!
//! One column table (`COLUMNS`) says, for every column, its name, how its value is
//! written and where it is read back into. The header, each written row and the resume
//! read all come from that table, so they cannot drift apart as the hand-kept header and
//! format string once could. The format is unchanged from the runs written before the
//! table existed, so those runs still resume.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::learner::StepStats;
use super::rollout::{RolloutTimes, Trajectory};
use super::{RlError, io_err};
use crate::plot::{Axes, Series, line_chart_with};

/// One iteration's numbers: a row of `metrics.csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IterationMetrics {
    pub iteration: usize,
    pub elapsed_s: f64,
    pub decisions: usize,
    pub decisions_per_s: f64,
    /// Mean over the iteration's rollouts of their average JCT (finished jobs), seconds.
    pub train_avg_jct_s: f64,
    pub mean_return: f64,
    pub entropy: f64,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub approx_kl: f64,
    pub clip_fraction: f64,
    pub grad_norm: f64,
    pub gradient_steps: usize,
    pub lr: f64,
    pub entropy_weight: f64,
    pub rollout_s: f64,
    pub learn_s: f64,
    /// Thread time inside the rollouts.
    pub simulation_s: f64,
    pub observation_s: f64,
    pub inference_s: f64,
    pub eval_s: f64,
    /// Held-out average JCT, when evaluated this iteration.
    pub eval_avg_jct_s: Option<f64>,
    pub baseline_avg_jct_s: f64,
    /// `eval_avg_jct_s / baseline_avg_jct_s`, when evaluated. Kept as a value rather than
    /// derived on writing: it was computed from the unrounded JCTs, and a row read back
    /// from `metrics.csv` holds them rounded, so deriving it again could change its
    /// written digits.
    pub eval_ratio: Option<f64>,
}

impl IterationMetrics {
    /// The part of an iteration's row that its rollouts and gradient steps measured; the
    /// loop adds the clock, the schedule and the evaluation.
    pub fn measured(trajs: &[Trajectory], stats: &StepStats, gradient_steps: usize) -> Self {
        let mut times = RolloutTimes::default();
        for t in trajs {
            times.add(&t.times);
        }
        let n = trajs.len().max(1) as f64;
        IterationMetrics {
            decisions: trajs.iter().map(Trajectory::len).sum(),
            train_avg_jct_s: finite_mean(trajs.iter().map(|t| t.stats.avg_jct_s)),
            mean_return: trajs
                .iter()
                .map(|t| t.rewards.iter().map(|&r| f64::from(r)).sum::<f64>())
                .sum::<f64>()
                / n,
            entropy: stats.entropy,
            policy_loss: stats.policy_loss,
            value_loss: stats.value_loss,
            approx_kl: stats.approx_kl,
            clip_fraction: stats.clip_fraction,
            grad_norm: stats.grad_norm,
            gradient_steps,
            simulation_s: times.simulation_s,
            observation_s: times.observation_s,
            inference_s: times.inference_s,
            ..Self::default()
        }
    }

    /// The row with the held-out JCT (when evaluated), the baseline's, and their ratio: the
    /// one place the ratio is computed.
    pub fn with_held_out(self, eval: Option<f64>, baseline: f64) -> Self {
        Self {
            eval_avg_jct_s: eval,
            baseline_avg_jct_s: baseline,
            eval_ratio: eval.map(|v| v / baseline),
            ..self
        }
    }
}

/// Mean of the finite values (an episode cut before any job finished has no JCT); NaN if
/// there are none.
fn finite_mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// The file name of the metrics in a run's folder.
pub const FILE: &str = "metrics.csv";

/// How a real number is written. Every notation reads back to a value that is written
/// again as the same text (the written precision is far coarser than an `f64`'s).
#[derive(Debug, Clone, Copy)]
enum Notation {
    /// `digits` decimals (`{:.digits}`).
    Fixed(usize),
    /// Scientific, `digits` decimals in the mantissa (`{:.digits e}`).
    Sci(usize),
}

impl Notation {
    fn write(self, v: f64, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = match self {
            Notation::Fixed(d) => write!(out, "{v:.d$}"),
            Notation::Sci(d) => write!(out, "{v:.d$e}"),
        };
    }
}

/// A column's value: how to take it from a row and put it back.
#[derive(Clone, Copy)]
enum Cell {
    /// A count, written as an integer.
    Count(
        fn(&IterationMetrics) -> usize,
        fn(&mut IterationMetrics, usize),
    ),
    /// A real number.
    Real(
        Notation,
        fn(&IterationMetrics) -> f64,
        fn(&mut IterationMetrics, f64),
    ),
    /// A real number that may be absent: an empty cell then.
    Maybe(
        Notation,
        fn(&IterationMetrics) -> Option<f64>,
        fn(&mut IterationMetrics, Option<f64>),
    ),
}

/// One column of `metrics.csv`.
struct Column {
    name: &'static str,
    cell: Cell,
}

/// `column!(field: kind)`: the column named after an [`IterationMetrics`] field, its cell
/// reading and writing that field, so that a name cannot be paired with another field.
macro_rules! column {
    ($f:ident: count) => {
        Column {
            name: stringify!($f),
            cell: Cell::Count(|m| m.$f, |m, v| m.$f = v),
        }
    };
    ($f:ident: fixed $d:literal) => {
        Column {
            name: stringify!($f),
            cell: Cell::Real(Notation::Fixed($d), |m| m.$f, |m, v| m.$f = v),
        }
    };
    ($f:ident: sci $d:literal) => {
        Column {
            name: stringify!($f),
            cell: Cell::Real(Notation::Sci($d), |m| m.$f, |m, v| m.$f = v),
        }
    };
    ($f:ident: maybe fixed $d:literal) => {
        Column {
            name: stringify!($f),
            cell: Cell::Maybe(Notation::Fixed($d), |m| m.$f, |m, v| m.$f = v),
        }
    };
}

/// The columns of `metrics.csv`, in file order: the one place that defines the format.
static COLUMNS: [Column; 24] = [
    column!(iteration: count),
    column!(elapsed_s: fixed 2),
    column!(decisions: count),
    column!(decisions_per_s: fixed 1),
    column!(train_avg_jct_s: fixed 4),
    column!(mean_return: fixed 5),
    column!(entropy: fixed 5),
    column!(policy_loss: fixed 6),
    column!(value_loss: fixed 6),
    column!(approx_kl: fixed 6),
    column!(clip_fraction: fixed 4),
    column!(grad_norm: fixed 5),
    column!(gradient_steps: count),
    column!(lr: sci 3),
    column!(entropy_weight: sci 3),
    column!(rollout_s: fixed 3),
    column!(learn_s: fixed 3),
    column!(simulation_s: fixed 3),
    column!(observation_s: fixed 3),
    column!(inference_s: fixed 3),
    column!(eval_s: fixed 3),
    column!(eval_avg_jct_s: maybe fixed 4),
    column!(baseline_avg_jct_s: fixed 4),
    column!(eval_ratio: maybe fixed 5),
];

/// A `metrics.csv` that cannot be read back.
#[derive(Debug, Error)]
pub enum MetricsError {
    #[error("{}: line 1: not the metrics header of this version (expected `{expected}`)", file.display())]
    Header { file: PathBuf, expected: String },
    #[error("{}: line {line}: {found} columns, expected {expected}", file.display())]
    Width {
        file: PathBuf,
        line: usize,
        found: usize,
        expected: usize,
    },
    #[error("{}: line {line}, column {column}: {msg}", file.display())]
    Cell {
        file: PathBuf,
        line: usize,
        column: &'static str,
        msg: String,
    },
}

/// The header line (without its newline).
pub fn header() -> String {
    COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>().join(",")
}

impl Cell {
    fn write(self, m: &IterationMetrics, out: &mut String) {
        match self {
            Cell::Count(get, _) => {
                let _ = write!(out, "{}", get(m));
            }
            Cell::Real(n, get, _) => n.write(get(m), out),
            Cell::Maybe(n, get, _) => {
                if let Some(v) = get(m) {
                    n.write(v, out);
                }
            }
        }
    }

    /// Puts `text` into `m`; the message says why it cannot.
    fn read(self, text: &str, m: &mut IterationMetrics) -> Result<(), String> {
        let real = |t: &str| {
            t.parse::<f64>()
                .map_err(|_| format!("`{t}` is not a number"))
        };
        match self {
            Cell::Count(_, set) => set(
                m,
                text.parse()
                    .map_err(|_| format!("`{text}` is not a count"))?,
            ),
            Cell::Real(_, _, set) => set(m, real(text)?),
            Cell::Maybe(_, _, set) => set(
                m,
                if text.is_empty() {
                    None
                } else {
                    Some(real(text)?)
                },
            ),
        }
        Ok(())
    }
}

impl IterationMetrics {
    /// The row as written in `metrics.csv` (without its newline).
    pub fn csv(&self) -> String {
        let mut out = String::with_capacity(200);
        for (i, c) in COLUMNS.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            c.cell.write(self, &mut out);
        }
        out
    }

    /// Reads back a row written by [`IterationMetrics::csv`]; `line` (1-based) and `file`
    /// name it in errors. A cell that reads but would be written otherwise (`1e-3` for
    /// `1.000e-3`) is an error too: rewriting the file must not change the rows kept.
    fn parse(text: &str, file: &Path, line: usize) -> Result<Self, MetricsError> {
        let cells: Vec<&str> = text.split(',').collect();
        if cells.len() != COLUMNS.len() {
            return Err(MetricsError::Width {
                file: file.to_path_buf(),
                line,
                found: cells.len(),
                expected: COLUMNS.len(),
            });
        }
        let mut m = IterationMetrics::default();
        for (c, &cell) in COLUMNS.iter().zip(&cells) {
            let err = |msg| MetricsError::Cell {
                file: file.to_path_buf(),
                line,
                column: c.name,
                msg,
            };
            c.cell.read(cell, &mut m).map_err(err)?;
            let mut again = String::new();
            c.cell.write(&m, &mut again);
            if again != cell {
                return Err(err(format!(
                    "`{cell}` is not written the way this version writes it (`{again}`)"
                )));
            }
        }
        Ok(m)
    }
}

/// The whole file: the header, then one line per row.
pub fn to_csv(rows: &[IterationMetrics]) -> String {
    let head = header();
    let mut text = String::with_capacity(rows.len() * 200 + head.len() + 1);
    text.push_str(&head);
    text.push('\n');
    for r in rows {
        text.push_str(&r.csv());
        text.push('\n');
    }
    text
}

/// Reads the rows of `text`, the contents of `file`, every one of them: a row that does not
/// read is an error naming its line and column, never skipped.
pub fn parse_csv(text: &str, file: &Path) -> Result<Vec<IterationMetrics>, MetricsError> {
    let mut lines = text.lines();
    let expected = header();
    if lines.next() != Some(expected.as_str()) {
        return Err(MetricsError::Header {
            file: file.to_path_buf(),
            expected,
        });
    }
    lines
        .enumerate()
        .map(|(i, l)| IterationMetrics::parse(l, file, i + 2))
        .collect()
}

/// Writes `rows` to `file` atomically (a reader never sees half a file).
pub fn write(file: &Path, rows: &[IterationMetrics]) -> Result<(), RlError> {
    crate::io::write_atomic(file, to_csv(rows).as_bytes()).map_err(io_err(file))
}

/// The rows of an existing `file` up to iteration `upto`: a resumed run drops the rows
/// after its checkpoint, which it will produce again. No file: no rows.
pub fn read(file: &Path, upto: usize) -> Result<Vec<IterationMetrics>, RlError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(file)(e)),
    };
    let mut rows = parse_csv(&text, file)?;
    rows.retain(|r| r.iteration <= upto);
    Ok(rows)
}

/// What the training curves show besides the rows.
pub struct CurveLabels<'a> {
    /// The run's name, in the title.
    pub run: &'a str,
    /// The baseline scheduler's name.
    pub baseline: &'a str,
    /// Whether the held-out evaluation takes the policy's most likely actions.
    pub greedy: bool,
}

/// Draws `<stem>.png` and `<stem>.svg`: held-out and training JCT by iteration, against
/// the baseline, from the rows so far (the typed rows, not the CSV just written).
pub fn draw_curves(
    stem: &Path,
    labels: &CurveLabels<'_>,
    rows: &[IterationMetrics],
) -> Result<(), RlError> {
    let mut held_out = Vec::new();
    let mut training = Vec::new();
    let mut baseline = Vec::with_capacity(rows.len());
    for r in rows {
        let x = r.iteration as f64;
        if let Some(v) = r.eval_avg_jct_s {
            held_out.push((x, v));
        }
        // Row 0 has no training rollouts.
        if r.iteration > 0 {
            training.push((x, r.train_avg_jct_s));
        }
        baseline.push((x, r.baseline_avg_jct_s));
    }
    let series = [
        Series {
            name: if labels.greedy {
                "held-out, greedy"
            } else {
                "held-out, sampled"
            }
            .into(),
            points: held_out,
        },
        Series {
            name: "training rollouts, sampled".into(),
            points: training,
        },
        Series {
            name: format!("{} (held-out)", labels.baseline),
            points: baseline,
        },
    ];
    line_chart_with(
        stem,
        &format!("{}: average JCT while training", labels.run),
        "iteration",
        "average JCT (s)",
        &series,
        Axes::YLog,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of the runs written before the column table: old runs must still read.
    const OLD_HEADER: &str = "iteration,elapsed_s,decisions,decisions_per_s,train_avg_jct_s,mean_return,entropy,policy_loss,value_loss,approx_kl,clip_fraction,grad_norm,gradient_steps,lr,entropy_weight,rollout_s,learn_s,simulation_s,observation_s,inference_s,eval_s,eval_avg_jct_s,baseline_avg_jct_s,eval_ratio";

    fn row(eval: Option<f64>) -> IterationMetrics {
        let baseline = 64.354_512_3;
        IterationMetrics {
            iteration: 2,
            elapsed_s: 0.456_789,
            decisions: 464,
            decisions_per_s: 1624.849,
            train_avg_jct_s: 174.376_31,
            mean_return: -0.871_881_2,
            entropy: 3.057_312,
            policy_loss: -0.003_694_4,
            value_loss: 0.018_748_1,
            approx_kl: 0.001_439_2,
            clip_fraction: 0.017_578,
            grad_norm: 0.371_601,
            gradient_steps: 8,
            lr: 7.5e-4,
            entropy_weight: 5.5e-3,
            rollout_s: 0.046_2,
            learn_s: 0.239_1,
            simulation_s: 0.015_3,
            observation_s: 0.012_4,
            inference_s: 0.057_5,
            eval_s: 0.011_6,
            eval_avg_jct_s: eval,
            baseline_avg_jct_s: baseline,
            eval_ratio: eval.map(|v| v / baseline),
        }
    }

    #[test]
    fn the_header_is_the_old_one() {
        assert_eq!(header(), OLD_HEADER);
    }

    /// The hand-kept format string the column table replaced: the reference for the
    /// on-disk format.
    fn old_csv(m: &IterationMetrics) -> String {
        let eval = m
            .eval_avg_jct_s
            .map_or(String::new(), |v| format!("{v:.4}"));
        let ratio = m.eval_avg_jct_s.map_or(String::new(), |v| {
            format!("{:.5}", v / m.baseline_avg_jct_s)
        });
        format!(
            "{},{:.2},{},{:.1},{:.4},{:.5},{:.5},{:.6},{:.6},{:.6},{:.4},{:.5},{},{:.3e},{:.3e},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{:.4},{}",
            m.iteration,
            m.elapsed_s,
            m.decisions,
            m.decisions_per_s,
            m.train_avg_jct_s,
            m.mean_return,
            m.entropy,
            m.policy_loss,
            m.value_loss,
            m.approx_kl,
            m.clip_fraction,
            m.grad_norm,
            m.gradient_steps,
            m.lr,
            m.entropy_weight,
            m.rollout_s,
            m.learn_s,
            m.simulation_s,
            m.observation_s,
            m.inference_s,
            m.eval_s,
            eval,
            m.baseline_avg_jct_s,
            ratio
        )
    }

    #[test]
    fn a_row_is_written_as_before_and_reads_back_to_the_same_text() {
        let file = Path::new("run/metrics.csv");
        let rows = [
            // Row 0, an evaluated row, one not evaluated, and one whose rollouts finished
            // no job (NaN JCT) with a negative zero.
            IterationMetrics {
                eval_avg_jct_s: Some(61.266),
                eval_ratio: Some(61.266 / 41.635_3),
                baseline_avg_jct_s: 41.635_3,
                ..IterationMetrics::default()
            },
            row(Some(103.906_73)),
            row(None),
            IterationMetrics {
                train_avg_jct_s: f64::NAN,
                mean_return: -0.0,
                policy_loss: -1e-9,
                ..row(Some(1e9 / 7.0))
            },
        ];
        for (i, r) in rows.iter().enumerate() {
            let text = r.csv();
            assert_eq!(text, old_csv(r));
            let back = IterationMetrics::parse(&text, file, i + 2).unwrap();
            assert_eq!(back.csv(), text);
            assert_eq!(back.iteration, r.iteration);
            assert_eq!(back.eval_avg_jct_s.is_some(), r.eval_avg_jct_s.is_some());
        }
        assert!(rows[2].csv().ends_with(",,64.3545,"));
        // The whole file, as the trainer writes it.
        let csv = to_csv(&rows);
        assert!(csv.starts_with(&format!("{OLD_HEADER}\n")));
        let back = parse_csv(&csv, file).unwrap();
        assert_eq!(back.len(), rows.len());
        assert_eq!(to_csv(&back), csv);
    }

    #[test]
    fn a_malformed_file_names_the_line_and_the_column() {
        let file = Path::new("run/metrics.csv");
        let good = to_csv(&[row(Some(61.266)), row(None)]);
        let lines: Vec<&str> = good.lines().collect();
        let with_line_3 = |l: &str| format!("{}\n{}\n{l}\n", lines[0], lines[1]);

        let bad = lines[2].replacen(",8,", ",eight,", 1);
        let err = parse_csv(&with_line_3(&bad), file).unwrap_err().to_string();
        assert_eq!(
            err,
            "run/metrics.csv: line 3, column gradient_steps: `eight` is not a count"
        );

        let bad = lines[2].replacen("7.500e-4", "0.00075", 1);
        let err = parse_csv(&with_line_3(&bad), file).unwrap_err().to_string();
        assert!(
            err.starts_with("run/metrics.csv: line 3, column lr: "),
            "{err}"
        );

        let bad = lines[2].replacen(",64.3545,", ",,", 1);
        let err = parse_csv(&with_line_3(&bad), file).unwrap_err().to_string();
        assert!(
            err.starts_with("run/metrics.csv: line 3, column baseline_avg_jct_s: "),
            "{err}"
        );

        let err = parse_csv(&with_line_3("3,0.5"), file)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "run/metrics.csv: line 3: 2 columns, expected 24");

        let err = parse_csv("iteration,jct\n", file).unwrap_err().to_string();
        assert!(err.starts_with("run/metrics.csv: line 1: "), "{err}");
    }
}
