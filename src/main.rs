//! The `mpda` command line: parses arguments, calls the library, prints results.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use mpda::config::{EvalConfig, EvalFlags, PreparedEval};
use mpda::eval::run::{format_table, run_eval, schedulers, write_json};
use mpda::model::Backend;
use mpda::sched::SchedulerSpec;

#[derive(Parser)]
#[command(
    name = "mpda",
    version,
    about = "Spark job scheduling lab: a Decima-faithful simulator and schedulers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run schedulers over many seeded episodes and compare them.
    Eval(EvalArgs),
    /// Run an experiment file (configs/experiments/) and write its report: tables with
    /// paired bootstrap intervals, JCT CDFs, bar charts, Gantt charts, sweeps, CSV, JSON.
    Report(ReportArgs),
    /// Measure simulator throughput (events per second) and parallel scaling.
    Bench(BenchArgs),
    /// List the schedulers `--scheduler` accepts, with their parameters.
    Schedulers,
    /// Inspect trace folders.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Train a learned scheduler (checkpoints, metrics and curves in runs/<name>/).
    Train(TrainArgs),
    /// Start, inspect or stop a standalone Spark cluster on this machine (`mpda spark up`).
    Spark(mpda::live::cli::SparkArgs),
    /// DSCS's numbers for a real job from a key sample: Pa0, keys to salt, Pa1, α, Pa2.
    Plan(mpda::sched::plan::PlanArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// Training config (TOML), e.g. configs/train/mpda-tpch-batch20.toml.
    #[arg(long)]
    config: PathBuf,
    /// Continue the run in runs/<name>/ from its latest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Folder that holds the runs.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Where the network trains: cpu (default), wgpu or cuda (needs the cargo feature).
    #[arg(long, default_value = "cpu")]
    device: Backend,
    /// Worker threads (default: all cores; under mpirun, the cores shared by the ranks on
    /// the machine). Results are bit-identical for a given count.
    #[arg(long)]
    threads: Option<usize>,
    /// Override the config's iteration count.
    #[arg(long)]
    iterations: Option<usize>,
}

#[derive(Subcommand)]
enum TraceCommand {
    /// Load and validate every trace of a folder (DIR/<size>/<query>.json[.gz]).
    Check { dir: PathBuf },
    /// Import Spark event logs (files, rolling-log folders, or folders of logs) as traces
    /// DIR/<size>/<query>.json[.gz]; runs of one query with different executor counts
    /// merge into one trace.
    Import(ImportArgs),
    /// Statistics of a trace folder: per size and query, stages, tasks per stage,
    /// duration means per wave and executor counts.
    Info {
        dir: PathBuf,
        /// Print a Markdown table.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Args)]
struct ImportArgs {
    /// Event logs: files, eventlog_v2_<appId>/ folders, or folders holding several.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output trace folder; traces go to OUT/<size>/<query>.json[.gz].
    #[arg(long)]
    out: PathBuf,
    /// Input-size label of these runs (e.g. sf1).
    #[arg(long)]
    size: String,
    /// Job property that names a logical job.
    #[arg(long, default_value = mpda::workload::eventlog::DEFAULT_GROUP_PROPERTY)]
    group_property: String,
    /// Trace names are <prefix>-<size>-<query>.
    #[arg(long, default_value = "tpch")]
    prefix: String,
    /// Write .json.gz instead of .json.
    #[arg(long)]
    gzip: bool,
}

#[derive(Args, Clone)]
struct WorkloadArgs {
    /// Experiment config (TOML); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: EvalFlags,
    /// Worker threads for episodes (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Scheduler, e.g. fair, fifo, weighted-fair[alpha=-1], sjf-cp, random; repeat the
    /// flag or separate with commas.
    #[arg(long = "scheduler", short = 's')]
    schedulers: Vec<String>,
    /// Write per-episode results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where learned models run: cpu (default), wgpu or cuda (needs the cargo feature).
    #[arg(long, default_value = "cpu")]
    device: Backend,
}

#[derive(Args)]
struct ReportArgs {
    /// Experiment file (TOML), e.g. configs/experiments/tpch-decima-batch.toml.
    experiment: PathBuf,
    /// Output folder (default: reports/<name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads for episodes (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Test episodes per setting, overriding the file (for quick runs).
    #[arg(long)]
    seeds: Option<usize>,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Scheduler to drive the episodes.
    #[arg(long, default_value = "fair")]
    scheduler: String,
    /// Times each episode is repeated in the single-threaded measurement.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Eval(a) => cmd_eval(a),
        Command::Report(a) => cmd_report(&a),
        Command::Bench(a) => cmd_bench(a),
        Command::Plan(a) => print(mpda::sched::plan::run(&a)?),
        Command::Schedulers => print(mpda::registry::catalogue_text()),
        Command::Trace(TraceCommand::Check { dir }) => {
            let lib = mpda::workload::TraceLibrary::load_dir(&dir)?;
            println!("{}", mpda::workload::info::check_summary(&lib));
            Ok(())
        }
        Command::Trace(TraceCommand::Import(a)) => cmd_trace_import(&a),
        Command::Trace(TraceCommand::Info { dir, markdown }) => cmd_trace_info(&dir, markdown),
        Command::Train(a) => cmd_train(a),
        Command::Spark(a) => Ok(mpda::live::cli::run(a)?),
    }
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    // Under mpirun, ranks on one machine share its cores unless --threads says otherwise.
    mpda::set_threads(a.threads.or_else(mpda::rl::dist::threads_per_rank))?;
    let text = mpda::io::read_text(&a.config)?;
    let cfg = mpda::rl::TrainConfig::parse_with_iterations(&text, &a.config, a.iterations)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    // Alone, or as one rank of `mpirun -n N` (a failing rank ends the whole job).
    mpda::rl::dist::run_as_rank(|group| {
        let mut trainer = mpda::rl::Trainer::new(
            cfg.clone(),
            &text,
            &a.config,
            &a.runs,
            a.device,
            a.resume,
            group,
        )?;
        if trainer.is_root() {
            train_with_progress(&mut trainer, &cfg, &stop)
        } else {
            trainer.run(&stop, &mut |_| {})?;
            Ok(())
        }
    })
}

/// Rank 0 (or the only process): trains with a progress bar and a line per evaluation.
fn train_with_progress(
    trainer: &mut mpda::rl::Trainer,
    cfg: &mpda::rl::TrainConfig,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    use mpda::rl::console;
    eprintln!("{}", trainer.header());
    let pb = bar(
        cfg.train.iterations as u64,
        "{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
    );
    pb.set_position(trainer.state().iteration as u64);
    let mut last_eval = None;
    let outcome = trainer.run(stop, &mut |m| {
        if let Some(e) = m.eval_avg_jct_s {
            last_eval = Some(e);
        }
        pb.set_position(m.iteration as u64);
        pb.set_message(console::progress(m, last_eval, &cfg.eval.baseline));
        if let Some(line) = console::evaluation_line(m, &pb.message()) {
            // Without a terminal the bar is hidden; keep a log of the evaluations anyway.
            if pb.is_hidden() {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        }
    })?;
    pb.finish();
    eprintln!("{}", trainer.footer(outcome));
    Ok(())
}

impl WorkloadArgs {
    /// The config with the flags on top, its traces loaded and its episodes drawn.
    fn prepare(&self) -> Result<(PreparedEval, PathBuf)> {
        mpda::set_threads(self.threads)?;
        let flags = &self.flags;
        let (cfg, origin) = EvalConfig::from_command_line(self.config.as_deref(), flags)?;
        let p = cfg.prepare(&origin, flags)?;
        if p.workload.episodes.is_empty() {
            bail!("no episodes to run (seeds = {})", p.cfg.eval.seeds);
        }
        Ok((p, origin))
    }
}

fn progress(len: u64, what: &str) -> ProgressBar {
    bar(
        len,
        &format!("{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta_precise}}]"),
    )
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(ProgressStyle::with_template(template).expect("static template"));
    pb
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let (p, origin) = a.workload.prepare()?;
    let eps = &p.workload.episodes;
    let factories = schedulers(&p, &origin, &a.schedulers, a.device)?;
    let count = factories.len();
    eprintln!(
        "{}: {} episodes, {}, {count} scheduler(s)",
        p.workload.description,
        eps.len(),
        p.cfg.sim.capacity(),
    );
    let pb = progress((eps.len() * count) as u64, "episodes");
    let t0 = Instant::now();
    let results = run_eval(&p, &factories, &|| pb.inc(1))?;
    pb.finish_and_clear();
    print!("{}", format_table(&results));
    eprintln!("({:.2} s)", t0.elapsed().as_secs_f64());
    if let Some(path) = &a.json {
        write_json(path, &p, &results)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn cmd_report(a: &ReportArgs) -> Result<()> {
    use mpda::eval::experiment::{Experiment, Overrides};
    let t0 = Instant::now();
    mpda::set_threads(a.threads)?;
    let overrides = Overrides { seeds: a.seeds };
    let exp = Experiment::load(&a.experiment, &overrides)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new("reports").join(&exp.cfg.name));
    eprintln!(
        "{}: {} setting(s) x {} scheduler(s) x {} episodes",
        exp.cfg.name,
        exp.settings.len(),
        exp.scheduler_labels().len(),
        exp.cfg.run.seeds
    );
    let pb = progress(exp.total_runs(), "episodes");
    let result = exp.run(&|| pb.inc(1))?;
    pb.finish_and_clear();
    let files = mpda::eval::report::write_report(&exp, &result, &out)?;
    for line in result.tuned_alphas() {
        eprintln!("{line}");
    }
    eprintln!(
        "wrote {} files to {} in {:.1} s",
        files.len(),
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cmd_bench(a: BenchArgs) -> Result<()> {
    let t_load = Instant::now();
    let (p, _) = a.workload.prepare()?;
    let load_s = t_load.elapsed().as_secs_f64();
    let spec = SchedulerSpec::parse(&a.scheduler)?;
    spec.build()?;
    let eps = &p.workload.episodes;
    println!(
        "workload: {} ({} episodes, {}); traces parsed in {load_s:.2} s (not timed below)",
        p.workload.description,
        eps.len(),
        p.cfg.sim.capacity()
    );
    let pb = progress((eps.len() * a.repeat) as u64, "single-threaded");
    let result = mpda::eval::bench::bench(&p.cfg.sim, &spec, eps, a.repeat, &|| pb.inc(1))?;
    pb.finish_and_clear();
    print!("{result}");
    Ok(())
}

fn cmd_trace_import(a: &ImportArgs) -> Result<()> {
    use mpda::workload::eventlog;
    let opts = eventlog::ImportOptions {
        size: a.size.clone(),
        prefix: a.prefix.clone(),
        group_property: a.group_property.clone(),
    };
    let import = eventlog::import(&a.inputs, &opts).context("importing event logs")?;
    for w in &import.warnings {
        eprintln!("warning: {w}");
    }
    if import.jobs.is_empty() {
        bail!(
            "no logical job to import from {} application(s) (grouped by {})",
            import.apps.len(),
            opts.group_property
        );
    }
    let files = eventlog::write_traces(&import, &a.out, a.gzip)
        .with_context(|| format!("writing traces to {}", a.out.display()))?;
    print!("{}", import.summary(&files));
    Ok(())
}

fn cmd_trace_info(dir: &Path, markdown: bool) -> Result<()> {
    use mpda::workload::info;
    let lib = mpda::workload::TraceLibrary::load_dir(dir)?;
    let (rows, total) = info::library_stats(&lib);
    print!("{}", info::format_table(&rows, &total, markdown));
    Ok(())
}

fn print(text: String) -> Result<()> {
    println!("{text}");
    Ok(())
}
