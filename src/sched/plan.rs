//! Planners by name: a scheduler spec's `+planner[...]` suffix (`spark-fair+dscs`,
//! `fair+aqe[advisory_mb=32]`) pairs any job-level scheduler with a shuffle planner of
//! `sim::plan`, so that every experiment can name the pair as one arm.

use std::path::PathBuf;

use crate::io::{FileError, read_text};
use crate::sim::plan::{KeyPlan, KeySample, PLANNERS, PlanConfig, PlannerKind, plan_sample};
use crate::sim::{Action, Observation};

use super::{SchedError, Scheduler, SchedulerSpec};

/// The planner a `+planner[...]` spec names, checked (every parameter, every range).
pub fn plan_config(spec: &SchedulerSpec) -> Result<PlanConfig, SchedError> {
    let err = |msg: String| SchedError::Spec {
        spec: spec.to_string(),
        msg,
    };
    let Some(planner) = PlannerKind::parse(&spec.name) else {
        let known: Vec<&str> = PLANNERS.iter().map(|p| p.0).collect();
        return Err(err(format!(
            "unknown planner \"{}\" (known: {})",
            spec.name,
            known.join(", ")
        )));
    };
    spec.allow(planner.params())?;
    let d = PlanConfig::default();
    let partitions = match spec.params.get("partitions") {
        None => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| {
            err(format!(
                "partitions={v} is not a whole number in 1..={}",
                u32::MAX
            ))
        })?),
    };
    let cfg = PlanConfig {
        planner,
        partitions,
        xp: spec.get_f64("xp", d.xp)?,
        advisory_mb: spec.get_f64("advisory_mb", d.advisory_mb)?,
        min_partition_mb: spec.get_f64("min_partition_mb", d.min_partition_mb)?,
        parallelism_first: spec.get_bool("parallelism_first", d.parallelism_first)?,
        skew_factor: spec.get_f64("skew_factor", d.skew_factor)?,
        skew_threshold_mb: spec.get_f64("skew_threshold_mb", d.skew_threshold_mb)?,
        skew_joins_only: spec.get_bool("skew_joins_only", d.skew_joins_only)?,
    };
    cfg.validate().map_err(|e| err(e.to_string()))?;
    Ok(cfg)
}

/// `mpda plan`: a planner's numbers for a real job, from a key sample and a cluster.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Key sample of the shuffle (JSON: total_bytes, distinct_keys, keys [{key, bytes}]).
    #[arg(long)]
    pub keys: PathBuf,
    /// Planner spec: dscs, dscs-parallelism, dscs-skew[partitions=N], with [xp=...].
    #[arg(long, default_value = "dscs")]
    pub planner: String,
    /// Task slots of the cluster (tcn).
    #[arg(long)]
    pub slots: u32,
    /// Execution memory of all executors together, MB (tms): per executor,
    /// (spark.executor.memory − 300) × spark.memory.fraction.
    #[arg(long)]
    pub execution_mb: f64,
}

/// Why `mpda plan` could not plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanInputError {
    #[error("{0}")]
    Flag(String),
    #[error(transparent)]
    Spec(#[from] SchedError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{file}: {msg}")]
    Sample { file: PathBuf, msg: String },
}

/// Checks the flags, reads and checks the key sample, and plans it: the plan as JSON.
pub fn run(a: &PlanArgs) -> Result<String, PlanInputError> {
    if a.slots == 0 {
        return Err(PlanInputError::Flag("--slots: must be at least 1".into()));
    }
    if !(a.execution_mb.is_finite() && a.execution_mb > 0.0) {
        return Err(PlanInputError::Flag(format!(
            "--execution-mb: must be a finite number > 0, found {}",
            a.execution_mb
        )));
    }
    let spec = SchedulerSpec::parse(&format!("x+{}", a.planner))?;
    let cfg = plan_config(spec.planner.as_deref().expect("a planner after +"))?;
    if !matches!(
        cfg.planner,
        PlannerKind::Dscs | PlannerKind::DscsParallelism | PlannerKind::DscsSkew
    ) {
        return Err(PlanInputError::Flag(format!(
            "--planner: \"{}\" has no key-level plan; use dscs, dscs-parallelism or dscs-skew",
            a.planner
        )));
    }
    let sample_err = |msg: String| PlanInputError::Sample {
        file: a.keys.clone(),
        msg,
    };
    let text = read_text(&a.keys)?;
    let sample: KeySample =
        serde_json::from_str(&text).map_err(|e| sample_err(format!("not a key sample: {e}")))?;
    sample.validate().map_err(|e| sample_err(e.to_string()))?;
    let plan: KeyPlan = plan_sample(&cfg, &sample, a.slots, a.execution_mb);
    Ok(serde_json::to_string_pretty(&plan).expect("a plan is plain data"))
}

/// A scheduler paired with a planner: decisions are the scheduler's, and the episode's
/// engine plans shuffle stages with the planner (`Env::set_plan`).
pub struct Planned {
    pub inner: Box<dyn Scheduler>,
    pub plan: PlanConfig,
}

impl Scheduler for Planned {
    fn name(&self) -> String {
        format!("{}+{}", self.inner.name(), self.plan.label())
    }
    fn reset(&mut self, seed: u64) {
        self.inner.reset(seed);
    }
    fn decide(&mut self, obs: &Observation) -> Action {
        self.inner.decide(obs)
    }
    fn plan(&self) -> Option<PlanConfig> {
        Some(self.plan.clone())
    }
    fn reoffer(&self) -> Option<crate::sim::cluster::Reoffer> {
        self.inner.reoffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<PlanConfig, SchedError> {
        let spec = SchedulerSpec::parse(text)?;
        plan_config(spec.planner.as_deref().expect("a planner"))
    }

    #[test]
    fn specs_pair_a_scheduler_with_a_planner() {
        let s = SchedulerSpec::parse("weighted-fair[alpha=1]+dscs-skew[partitions=20]").unwrap();
        assert_eq!(s.name, "weighted-fair");
        assert_eq!(s.params["alpha"], "1");
        assert_eq!(
            s.to_string(),
            "weighted-fair[alpha=1]+dscs-skew[partitions=20]"
        );
        let p = cfg("fair+dscs-skew[partitions=20]").unwrap();
        assert_eq!((p.planner, p.partitions), (PlannerKind::DscsSkew, Some(20)));
        let a = cfg("spark-fair+aqe[advisory_mb=32,skew_factor=3]").unwrap();
        assert_eq!((a.advisory_mb, a.skew_factor), (32.0, 3.0));
        assert_eq!(a.label(), "aqe[advisory_mb=32,skew_factor=3]");
        let built = s.build().unwrap();
        assert_eq!(
            built.name(),
            "weighted-fair[alpha=1]+dscs-skew[partitions=20]"
        );
        assert_eq!(built.plan().unwrap().partitions, Some(20));
        // A list splits at top-level commas only.
        let l = SchedulerSpec::parse_list("fair+aqe[advisory_mb=32,skew_factor=3],fifo").unwrap();
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn bad_planners_are_refused_with_the_parameter() {
        let msg = |t: &str| cfg(t).unwrap_err().to_string();
        assert!(msg("fair+nope").contains("unknown planner \"nope\""));
        assert!(msg("fair+dscs[xp=0]").contains("xp: must be a finite number > 0"));
        assert!(msg("fair+aqe[advisory_mb=0]").contains("advisory_mb"));
        assert!(msg("fair+aqe[skew_factor=0.5]").contains("skew_factor: must be"));
        assert!(msg("fair+fixed[partitions=0]").contains("partitions: must be in 1..="));
        assert!(msg("fair+fixed[xp=2]").contains("unknown parameter \"xp\""));
        assert!(msg("fair+fixed[partitions=x]").contains("partitions=x is not a whole number"));
        assert!(SchedulerSpec::parse("fair+dscs+aqe").is_err());
        assert!(SchedulerSpec::parse("fair+").is_err());
        assert!(
            SchedulerSpec::parse("fair+dscs[xp=0]")
                .unwrap()
                .build()
                .is_err()
        );
    }
}
