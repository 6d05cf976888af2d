//! The `mpda` command line: parses arguments, calls the library, prints results.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use mpda::config::{EvalConfig, ReplayConfig, WorkloadConfig};
use mpda::eval::{self, SchedulerFactory, SchedulerResult};
use mpda::sched::{HEURISTICS, SchedulerSpec};
use mpda::validate::{FieldError, in_range};
use mpda::workload::arrivals::ArrivalProcess;

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
    device: String,
    /// Worker threads (default: all cores). Results are bit-identical for a given count.
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
    /// Trace folder: DIR/<size>/<query>.json[.gz].
    #[arg(long)]
    traces: Option<PathBuf>,
    /// Replay the job sequences of a file in reference-episodes.json format.
    #[arg(long, requires = "scenario")]
    replay: Option<PathBuf>,
    /// Scenario of the replay file.
    #[arg(long, requires = "replay")]
    scenario: Option<String>,
    /// Batch arrivals: N jobs at t = 0.
    #[arg(long, conflicts_with_all = ["replay", "stream"])]
    batch: Option<usize>,
    /// Poisson arrivals: N jobs after the initial ones.
    #[arg(long)]
    stream: Option<usize>,
    /// Jobs present at t = 0 with --stream.
    #[arg(long, default_value_t = 1, requires = "stream")]
    init_jobs: usize,
    /// Mean gap between arrivals with --stream, seconds.
    #[arg(long, default_value_t = 25.0, requires = "stream")]
    interval_s: f64,
    /// Sizes to sample, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<String>>,
    /// Queries to sample, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    queries: Option<Vec<String>>,
    /// Number of executors (overrides the config and the replay scenario).
    #[arg(long)]
    executors: Option<u32>,
    /// Number of episodes (for a replay: its first N episodes).
    #[arg(long)]
    seeds: Option<usize>,
    /// Seed of the first episode.
    #[arg(long)]
    first_seed: Option<u64>,
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
    device: String,
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
        Command::Schedulers => {
            for (name, what) in HEURISTICS {
                println!("{name:<22} {what}");
            }
            Ok(())
        }
        Command::Trace(TraceCommand::Check { dir }) => cmd_trace_check(&dir),
        Command::Trace(TraceCommand::Import(a)) => cmd_trace_import(&a),
        Command::Trace(TraceCommand::Info { dir, markdown }) => cmd_trace_info(&dir, markdown),
        Command::Train(a) => cmd_train(a),
    }
}

/// Most worker threads `--threads` accepts.
const MAX_THREADS: usize = 1024;
/// Most episodes per run (`--seeds`, `eval.seeds`): each one's job sequence is kept in
/// memory, and 100,000 episodes of the default workload take hours.
const MAX_SEEDS: usize = 100_000;

fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        in_range("--threads", n, 1, MAX_THREADS)?;
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up the thread pool")?;
    }
    Ok(())
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    set_threads(a.threads)?;
    let backend: mpda::model::Backend = a
        .device
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--device: {e}"))?;
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("{}: cannot read", a.config.display()))?;
    let mut cfg = mpda::rl::TrainConfig::parse(&text, &a.config)?;
    if let Some(n) = a.iterations {
        if n == 0 {
            bail!("--iterations must be at least 1");
        }
        cfg.train.iterations = n;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    let mut trainer =
        mpda::rl::Trainer::new(cfg.clone(), &text, &a.config, &a.runs, backend, a.resume)?;
    let done = trainer.state().iteration;
    eprintln!(
        "{}: {} ({}), {} iterations{}; held-out {} on {} seeds: {:.2} s",
        cfg.name,
        cfg.model.preset,
        format!("{:?}", cfg.train.algorithm).to_lowercase(),
        cfg.train.iterations,
        if done > 0 {
            format!(", resuming after iteration {done}")
        } else {
            String::new()
        },
        cfg.eval.baseline,
        cfg.eval.seeds,
        trainer.baseline_jct()
    );
    let pb = ProgressBar::new(cfg.train.iterations as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .expect("static template"),
    );
    pb.set_position(done as u64);
    let mut last_eval = None;
    let outcome = trainer.run(&stop, &mut |m| {
        if let Some(e) = m.eval_avg_jct_s {
            last_eval = Some(e);
        }
        pb.set_position(m.iteration as u64);
        pb.set_message(format!(
            "JCT {:.1} s | held-out {} | H {:.3} | pi {:.4} v {:.4} | {:.0} steps/s",
            m.train_avg_jct_s,
            last_eval.map_or("-".into(), |e| format!(
                "{e:.2} s ({:.3}x {})",
                e / m.baseline_avg_jct_s,
                "fair"
            )),
            m.entropy,
            m.policy_loss,
            m.value_loss,
            m.decisions_per_s
        ));
        if m.eval_avg_jct_s.is_some() {
            let line = format!(
                "iter {:>5}  {:>8.1} s  {}",
                m.iteration,
                m.elapsed_s,
                pb.message()
            );
            // Without a terminal the bar is hidden; keep a log of the evaluations anyway.
            if pb.is_hidden() {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        }
    })?;
    pb.finish();
    let st = trainer.state();
    match outcome {
        mpda::rl::Outcome::Interrupted => eprintln!(
            "interrupted: checkpoint of iteration {} in {}; continue with --resume",
            st.iteration,
            trainer.run_dir().display()
        ),
        mpda::rl::Outcome::Finished => eprintln!(
            "done: {} iterations in {:.1} s; best held-out {} at iteration {}; beat the baseline at {}",
            st.iteration,
            st.elapsed_s,
            st.best_eval_jct_s
                .map_or("-".into(), |v| format!("{v:.2} s")),
            st.best_iteration.map_or("-".into(), |v| v.to_string()),
            st.beat_baseline_at_s
                .map_or("never".into(), |v| format!("{v:.1} s")),
        ),
    }
    Ok(())
}

/// A config from `--config` (if any) with the flags applied on top.
fn build_config(a: &WorkloadArgs) -> Result<(EvalConfig, PathBuf)> {
    let (mut cfg, origin) = match (&a.config, &a.traces) {
        (Some(p), _) => (EvalConfig::load(p)?, p.clone()),
        (None, Some(_)) => (EvalConfig::default(), PathBuf::from("command line")),
        (None, None) => (
            EvalConfig::embedded_default(),
            PathBuf::from(mpda::config::DEFAULT_CONFIG_NAME),
        ),
    };
    if let Some(t) = &a.traces {
        cfg.workload.traces = t.clone();
    }
    if let (Some(file), Some(scenario)) = (&a.replay, &a.scenario) {
        cfg.workload.replay = Some(ReplayConfig {
            file: file.clone(),
            scenario: scenario.clone(),
        });
        cfg.workload.arrivals = None;
    }
    if let Some(jobs) = a.batch {
        cfg.workload.arrivals = Some(ArrivalProcess::Batch { jobs });
        cfg.workload.replay = None;
    }
    if let Some(stream_jobs) = a.stream {
        cfg.workload.arrivals = Some(ArrivalProcess::Poisson {
            init_jobs: a.init_jobs,
            stream_jobs,
            mean_interval_ms: a.interval_s * 1000.0,
        });
        cfg.workload.replay = None;
    }
    if a.sizes.is_some() {
        cfg.workload.sizes = a.sizes.clone();
    }
    if a.queries.is_some() {
        cfg.workload.queries = a.queries.clone();
    }
    if let Some(n) = a.seeds {
        cfg.eval.seeds = n;
    }
    if let Some(s) = a.first_seed {
        cfg.eval.first_seed = s;
    }
    Ok((cfg, origin))
}

struct Prepared {
    cfg: EvalConfig,
    workload: mpda::config::ResolvedWorkload,
}

fn prepare(a: &WorkloadArgs) -> Result<Prepared> {
    set_threads(a.threads)?;
    if let Some(n) = a.seeds {
        in_range("--seeds", n, 1, MAX_SEEDS)?;
    }
    let (mut cfg, origin) = build_config(a)?;
    // A config file's seeds, and episode seeds first_seed + i that must not overflow.
    let in_file = |e: FieldError| anyhow::anyhow!("{}: {}", origin.display(), e.within("eval"));
    in_range("seeds", cfg.eval.seeds, 1, MAX_SEEDS).map_err(in_file)?;
    let first_seed = in_range(
        "first_seed",
        cfg.eval.first_seed,
        0,
        u64::MAX - cfg.eval.seeds as u64,
    );
    match a.first_seed {
        Some(_) => first_seed.map_err(|e| FieldError::new("--first-seed", e.msg))?,
        None => first_seed.map_err(in_file)?,
    }
    let w: &WorkloadConfig = &cfg.workload;
    let workload = w.resolve(&origin, cfg.eval.seeds, cfg.eval.first_seed)?;
    if workload.episodes.is_empty() {
        bail!("no episodes to run (seeds = {})", cfg.eval.seeds);
    }
    if let Some(n) = workload.replay_exec_cap {
        cfg.sim.executors = n;
    }
    if let Some(n) = a.executors {
        cfg.sim.executors = n;
    }
    cfg.sim
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {}", origin.display(), e.within("sim")))?;
    Ok(Prepared { cfg, workload })
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta_precise}}]"
        ))
        .expect("static template"),
    );
    pb
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let p = prepare(&a.workload)?;
    let mut names: Vec<String> = Vec::new();
    for s in &a.schedulers {
        names.extend(SchedulerSpec::parse_list(s)?.iter().map(|x| x.to_string()));
    }
    if names.is_empty() {
        names = p.cfg.eval.schedulers.clone();
    }
    let backend: mpda::model::Backend = a
        .device
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--device: {e}"))?;
    let specs = names
        .iter()
        .map(|n| SchedulerSpec::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let owned = specs
        .iter()
        .map(|s| mpda::sched::factory(s, backend))
        .collect::<Result<Vec<_>, _>>()?;
    let factories: Vec<&dyn SchedulerFactory> = owned.iter().map(|f| f.as_ref()).collect();
    let eps = &p.workload.episodes;
    eprintln!(
        "{}: {} episodes, {} executors, {} scheduler(s)",
        p.workload.description,
        eps.len(),
        p.cfg.sim.executors,
        specs.len()
    );
    let pb = progress((eps.len() * specs.len()) as u64, "episodes");
    let t0 = Instant::now();
    let results = eval::evaluate(&p.cfg.sim, &factories, eps, &|| pb.inc(1))?;
    pb.finish_and_clear();
    print_table(&results);
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
    set_threads(a.threads)?;
    if let Some(n) = a.seeds {
        in_range("--seeds", n, 1, MAX_SEEDS)?;
    }
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
    for s in &result.settings {
        if let Some(a) = &s.alpha_sweep {
            eprintln!(
                "{}: opt-weighted-fair alpha = {}",
                s.setting.label, a.best_alpha
            );
        }
    }
    eprintln!(
        "wrote {} files to {} in {:.1} s",
        files.len(),
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn print_table(results: &[SchedulerResult]) {
    println!(
        "{:<28} {:>18} {:>12} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "scheduler",
        "avg JCT s (±std)",
        "makespan s",
        "p50 JCT s",
        "p95 JCT s",
        "decisions",
        "events",
        "util"
    );
    for r in results {
        println!(
            "{:<28} {:>18} {:>12.1} {:>10.1} {:>10.1} {:>10.0} {:>10.0} {:>7.3}",
            r.name,
            format!("{:.2} ± {:.2}", r.mean_avg_jct_s, r.std_avg_jct_s),
            r.mean_makespan_s,
            r.p50_jct_s,
            r.p95_jct_s,
            r.mean_decisions,
            r.mean_events,
            r.mean_utilisation
        );
    }
}

fn write_json(path: &Path, p: &Prepared, results: &[SchedulerResult]) -> Result<()> {
    let mut schedulers = serde_json::Map::new();
    for r in results {
        schedulers.insert(r.name.clone(), serde_json::to_value(r)?);
    }
    let doc = serde_json::json!({
        "mpda_version": env!("CARGO_PKG_VERSION"),
        "workload": {
            "description": p.workload.description,
            "traces": p.cfg.workload.traces,
            "episodes": p.workload.episodes.len(),
        },
        "sim": p.cfg.sim,
        "schedulers": schedulers,
    });
    mpda::io::write_atomic(path, serde_json::to_string_pretty(&doc)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// decima-sim's measured event-loop speed on this machine class (docs: 71k–106k events/s).
const REFERENCE_EVENTS_PER_S: (f64, f64) = (71_000.0, 106_000.0);

fn cmd_bench(a: BenchArgs) -> Result<()> {
    let t_load = Instant::now();
    let p = prepare(&a.workload)?;
    let load_s = t_load.elapsed().as_secs_f64();
    let spec = SchedulerSpec::parse(&a.scheduler)?;
    let eps = &p.workload.episodes;
    println!(
        "workload: {} ({} episodes, {} executors); traces parsed in {load_s:.2} s (not timed below)",
        p.workload.description,
        eps.len(),
        p.cfg.sim.executors
    );

    // Job instantiation: reset from already-parsed traces.
    let mut env = mpda::sim::Env::new(p.cfg.sim.clone())?;
    let jobs: usize = eps.iter().map(|e| e.jobs.len()).sum();
    let t = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        for e in eps {
            env.reset(&e.jobs, e.seed)?;
        }
    }
    let per_job_us = t.elapsed().as_secs_f64() * 1e6 / (rounds * jobs) as f64;
    println!("job instantiation: {per_job_us:.2} µs per job (reset of {jobs} jobs x {rounds})");

    // Single-threaded event loop.
    let mut obs = mpda::sim::Observation::default();
    let mut sched = spec.build()?;
    let pb = progress((eps.len() * a.repeat) as u64, "single-threaded");
    let (mut events, mut decisions, mut best) = (0u64, 0u64, f64::INFINITY);
    let t = Instant::now();
    for e in eps {
        for _ in 0..a.repeat {
            let t_ep = Instant::now();
            let s = eval::run_episode(&mut env, sched.as_mut(), e, &mut obs)?;
            best = best.min(t_ep.elapsed().as_secs_f64());
            events += s.events.total();
            decisions += s.decisions;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let wall = t.elapsed().as_secs_f64();
    let runs = (eps.len() * a.repeat) as f64;
    let eps_s = events as f64 / wall;
    println!(
        "single thread: {:.0} events/s, {:.0} decisions/s, {:.1} ms per episode (best {:.1} ms), {:.0} events per episode",
        eps_s,
        decisions as f64 / wall,
        wall * 1000.0 / runs,
        best * 1000.0,
        events as f64 / runs
    );
    println!(
        "vs decima-sim's event loop (71k-106k events/s, measured on this machine class): {:.0}x-{:.0}x",
        eps_s / REFERENCE_EVENTS_PER_S.1,
        eps_s / REFERENCE_EVENTS_PER_S.0
    );

    // Parallel scaling over episodes: same work at 1 thread and at all cores.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut base = 0.0;
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let t = Instant::now();
        let results = pool.install(|| eval::evaluate(&p.cfg.sim, &[&spec], eps, &|| {}))?;
        let wall = t.elapsed().as_secs_f64();
        let ev: f64 = results[0]
            .episodes
            .iter()
            .map(|e| e.events.total() as f64)
            .sum();
        if threads == 1 {
            base = wall;
        }
        println!(
            "rayon {threads} thread(s): {:.2} s for {} episodes, {:.0} events/s, speed-up {:.2}x",
            wall,
            eps.len(),
            ev / wall,
            base / wall
        );
    }
    Ok(())
}

fn cmd_trace_check(dir: &Path) -> Result<()> {
    let lib = mpda::workload::TraceLibrary::load_dir(dir)?;
    let stages: usize = lib.jobs().iter().map(|j| j.stages.len()).sum();
    let tasks: u64 = lib.jobs().iter().map(|j| j.num_tasks()).sum();
    println!(
        "{}: {} jobs ({} sizes x {} queries), {stages} stages, {tasks} tasks: all valid",
        dir.display(),
        lib.jobs().len(),
        lib.sizes().len(),
        lib.queries().len()
    );
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
    if import.jobs.is_empty() {
        for w in &import.warnings {
            eprintln!("warning: {w}");
        }
        bail!(
            "no logical job to import from {} application(s) (grouped by {})",
            import.apps.len(),
            opts.group_property
        );
    }
    let files = eventlog::write_traces(&import, &a.out, a.gzip)
        .with_context(|| format!("writing traces to {}", a.out.display()))?;
    for (job, file) in import.jobs.iter().zip(&files) {
        let keys: Vec<String> = job.runs.iter().map(|r| r.2.to_string()).collect();
        println!(
            "{}: group {}, {} stages, {} tasks, executors {} ({} run(s))",
            file.display(),
            job.group,
            job.trace.stages.len(),
            job.trace.num_tasks(),
            keys.join(","),
            job.runs.len()
        );
    }
    for w in &import.warnings {
        eprintln!("warning: {w}");
    }
    let versions: std::collections::BTreeSet<&str> = import
        .apps
        .iter()
        .filter_map(|a| a.spark_version.as_deref())
        .collect();
    println!(
        "imported {} group(s) from {} application(s) (Spark {}): {} stages, {} tasks, {} \
         task samples; {} job(s) without {} dropped, {} group(s) dropped, {} warning(s)",
        import.jobs.len(),
        import.apps.len(),
        versions.into_iter().collect::<Vec<_>>().join(", "),
        import.num_stages(),
        import.num_tasks(),
        import.num_samples(),
        import.counts.jobs_without_group,
        opts.group_property,
        import.counts.groups_dropped,
        import.warnings.len()
    );
    Ok(())
}

fn cmd_trace_info(dir: &Path, markdown: bool) -> Result<()> {
    let lib = mpda::workload::TraceLibrary::load_dir(dir)?;
    let (rows, total) = mpda::workload::info::library_stats(&lib);
    print!(
        "{}",
        mpda::workload::info::format_table(&rows, &total, markdown)
    );
    Ok(())
}
