//! Schedulers: one trait, the heuristics behind it, and the `name[key=value]` specs that
//! name them. Learned schedulers implement the same trait in `model::scheduler`; the
//! registry that builds any scheduler from its name is `crate::registry`, above both.

mod critical_path;
pub mod dag;
mod fair;
pub mod plan;
mod random;
mod sjf_cp;
pub mod spark;
mod tetris;

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use crate::sim::cluster::Reoffer;
use crate::sim::plan::PlanConfig;
use crate::sim::{Action, Observation};

pub use critical_path::CriticalPath;
pub use fair::{Fifo, Partition, WeightedFair};
pub use random::RandomScheduler;
pub use sjf_cp::SjfCp;
pub use spark::SparkPools;
pub use tetris::Tetris;

/// Decides where the executors of a scheduling event go. A scheduler sees only the
/// [`Observation`], exactly as a learned policy does, and may keep state across the
/// decisions of one episode; `reset` starts a new episode.
pub trait Scheduler: Send {
    /// Canonical name with parameters, as accepted by [`SchedulerSpec::parse`].
    fn name(&self) -> String;
    /// Called before each episode with the episode's seed.
    fn reset(&mut self, _seed: u64) {}
    /// Chooses the action for the executors being placed. The episode driver
    /// (`sim::driver`) asks only when at least one stage is schedulable; with none, the
    /// executors can only stay idle and it answers that itself.
    fn decide(&mut self, obs: &Observation) -> Action;
    /// The shuffle planner its episodes run with (a spec's `+planner[...]`), if any: the
    /// evaluation sets it on the engine before each episode.
    fn plan(&self) -> Option<PlanConfig> {
        None
    }
    /// Who decides what a slot runs next when its task ends, if the scheduler chooses
    /// (`None`: the cluster's `reoffer`). A learned scheduler trained with Decima's rule
    /// answers every offer of a freed slot with the slot's own stage while that stage has
    /// tasks to start (`Reoffer::Stage`): that is its policy, applied by the engine, which
    /// saves asking the network at every task end.
    fn reoffer(&self) -> Option<Reoffer> {
        None
    }
}

/// The schedulable stage with the highest `score`, stages that can run now first, ties to
/// the earlier stage: the selection rule of the priority heuristics.
pub(crate) fn best_stage(obs: &Observation, score: impl Fn(usize) -> f64) -> Option<usize> {
    obs.schedulable
        .iter()
        .map(|&s| s as usize)
        .max_by(|&a, &b| {
            obs.stages[a]
                .runnable
                .cmp(&obs.stages[b].runnable)
                .then(score(a).total_cmp(&score(b)))
                .then(b.cmp(&a))
        })
}

/// Builds one scheduler instance per call, so that every parallel episode owns its own.
pub trait SchedulerFactory: Sync {
    fn label(&self) -> String;
    fn build(&self) -> Result<Box<dyn Scheduler>, SchedError>;
}

impl SchedulerFactory for SchedulerSpec {
    fn label(&self) -> String {
        self.to_string()
    }
    fn build(&self) -> Result<Box<dyn Scheduler>, SchedError> {
        SchedulerSpec::build(self)
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum SchedError {
    #[error("scheduler \"{spec}\": {msg}")]
    Spec { spec: String, msg: String },
}

/// A scheduler name with parameters: `name` or `name[key=value,key=value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerSpec {
    pub name: String,
    pub params: BTreeMap<String, String>,
    /// The shuffle planner after a `+` (`spark-fair+dscs`), itself `name[key=value]`.
    pub planner: Option<Box<SchedulerSpec>>,
}

/// The heuristics and their parameters, for help texts and errors.
pub const HEURISTICS: &[(&str, &str)] = &[
    (
        "fifo",
        "Spark's FIFO: the oldest job takes every executor it can use; [cumulative=true] reproduces decima-sim's spark_fifo counter quirk",
    ),
    (
        "fair",
        "Decima's dynamic partition: equal shares, filled in arrival order",
    ),
    (
        "weighted-fair",
        "shares proportional to remaining work^alpha; [alpha=-1] (default 0 = fair)",
    ),
    (
        "sjf-cp",
        "shortest remaining work first; within a job, the longest remaining critical path",
    ),
    (
        "critical-path",
        "the stage on the longest remaining critical path of any job takes what it can use",
    ),
    (
        "tetris",
        "Tetris*: packing alignment + weight x shortness of the job (SRTF); [weight=1]",
    ),
    ("random", "a uniformly random schedulable stage and limit"),
    (
        "spark-fifo",
        "Spark's TaskScheduler in FIFO mode: submitted stages by job id, then stage id",
    ),
    (
        "spark-fair",
        "Spark's FAIR pools ([sim.cluster] pools; one pool per job otherwise): needy pools by running/minShare, then running/weight, then name",
    ),
];

impl SchedulerSpec {
    pub fn parse(text: &str) -> Result<Self, SchedError> {
        let err = |msg: String| SchedError::Spec {
            spec: text.to_string(),
            msg,
        };
        let text_t = text.trim();
        // `scheduler+planner`: the first `+` outside brackets.
        let mut depth = 0i32;
        let plus = text_t.char_indices().find_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                '+' if depth == 0 => return Some(i),
                _ => {}
            }
            None
        });
        if let Some(i) = plus {
            let planner = Self::parse(&text_t[i + 1..])?;
            if planner.planner.is_some() {
                return Err(err("at most one planner (`scheduler+planner`)".into()));
            }
            let mut spec = Self::parse(&text_t[..i])?;
            spec.planner = Some(Box::new(planner));
            return Ok(spec);
        }
        let (name, rest) = match text_t.find('[') {
            Some(i) => {
                let inner = text_t[i + 1..]
                    .strip_suffix(']')
                    .ok_or_else(|| err("missing closing ']'".into()))?;
                (&text_t[..i], Some(inner))
            }
            None => (text_t, None),
        };
        if name.is_empty() {
            return Err(err("empty scheduler name".into()));
        }
        let mut params = BTreeMap::new();
        if let Some(inner) = rest {
            for kv in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| err(format!("parameter \"{kv}\" is not key=value")))?;
                if params
                    .insert(k.trim().to_string(), v.trim().to_string())
                    .is_some()
                {
                    return Err(err(format!("parameter \"{}\" given twice", k.trim())));
                }
            }
        }
        Ok(Self {
            name: name.to_string(),
            params,
            planner: None,
        })
    }

    /// Splits a comma-separated list of specs, ignoring commas inside brackets.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, SchedError> {
        let mut out = Vec::new();
        let (mut depth, mut start) = (0i32, 0);
        for (i, c) in text.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(Self::parse(&text[start..i])?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(Self::parse(&text[start..])?);
        Ok(out)
    }

    /// The same spec without its `+planner`.
    pub fn without_planner(&self) -> Self {
        Self {
            planner: None,
            ..self.clone()
        }
    }

    fn err(&self, msg: impl Into<String>) -> SchedError {
        SchedError::Spec {
            spec: self.to_string(),
            msg: msg.into(),
        }
    }

    /// Checks that only `allowed` parameters are present.
    pub fn allow(&self, allowed: &[&str]) -> Result<(), SchedError> {
        match self.params.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) if allowed.is_empty() => {
                Err(self.err(format!("unknown parameter \"{k}\" (it takes none)")))
            }
            Some(k) => Err(self.err(format!(
                "unknown parameter \"{k}\" (allowed: {})",
                allowed.join(", ")
            ))),
            None => Ok(()),
        }
    }

    pub fn get_f64(&self, key: &str, default: f64) -> Result<f64, SchedError> {
        match self.params.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.err(format!("{key}={v} is not a finite number"))),
        }
    }

    /// A whole number in `0..=u64::MAX` (a seed, say).
    pub fn get_u64(&self, key: &str, default: u64) -> Result<u64, SchedError> {
        match self.params.get(key) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().map_err(|_| {
                self.err(format!(
                    "{key}={v} is not a whole number in 0..={}",
                    u64::MAX
                ))
            }),
        }
    }

    /// A number parameter that must be finite and in `lo..=hi` (its documented range);
    /// the error names the parameter and the limit.
    pub fn get_f64_in(&self, key: &str, default: f64, lo: f64, hi: f64) -> Result<f64, SchedError> {
        let v = self.get_f64(key, default)?;
        crate::validate::finite_in(key, v, lo, hi).map_err(|e| self.err(e.to_string()))?;
        Ok(v)
    }

    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool, SchedError> {
        match self.params.get(key).map(String::as_str) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(self.err(format!("{key}={v} must be true or false"))),
        }
    }

    /// Builds a heuristic. Learned schedulers are built by `crate::registry` (they need a
    /// model).
    pub fn build(&self) -> Result<Box<dyn Scheduler>, SchedError> {
        if let Some(p) = &self.planner {
            let plan = plan::plan_config(p)?;
            let inner = self.without_planner().build()?;
            return Ok(Box::new(plan::Planned { inner, plan }));
        }
        match self.name.as_str() {
            "fifo" => {
                self.allow(&["cumulative"])?;
                Ok(Box::new(Fifo::new(self.get_bool("cumulative", false)?)))
            }
            "fair" => {
                self.allow(&[])?;
                Ok(Box::new(WeightedFair::fair()))
            }
            "weighted-fair" => {
                self.allow(&["alpha"])?;
                let (lo, hi) = WeightedFair::ALPHA_RANGE;
                Ok(Box::new(WeightedFair::new(
                    self.get_f64_in("alpha", 0.0, lo, hi)?,
                )))
            }
            "sjf-cp" => {
                self.allow(&[])?;
                Ok(Box::new(SjfCp::default()))
            }
            "random" => {
                self.allow(&[])?;
                Ok(Box::new(RandomScheduler::default()))
            }
            "critical-path" => {
                self.allow(&[])?;
                Ok(Box::new(CriticalPath::default()))
            }
            "tetris" => {
                self.allow(&["weight"])?;
                let (lo, hi) = Tetris::WEIGHT_RANGE;
                Ok(Box::new(Tetris::new(
                    self.get_f64_in("weight", 1.0, lo, hi)?,
                )))
            }
            "spark-fifo" => {
                self.allow(&[])?;
                Ok(Box::new(SparkPools::fifo()))
            }
            "spark-fair" => {
                self.allow(&[])?;
                Ok(Box::new(SparkPools::fair()))
            }
            other => Err(self.err(format!(
                "unknown scheduler \"{other}\" (known: {})",
                HEURISTICS
                    .iter()
                    .map(|h| h.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

impl fmt::Display for SchedulerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.params.is_empty() {
            let kv: Vec<String> = self
                .params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, "[{}]", kv.join(","))?;
        }
        if let Some(p) = &self.planner {
            write!(f, "+{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_params() {
        let s = SchedulerSpec::parse("weighted-fair[alpha=-1]").unwrap();
        assert_eq!(s.name, "weighted-fair");
        assert_eq!(s.params["alpha"], "-1");
        assert_eq!(s.to_string(), "weighted-fair[alpha=-1]");
        let l = SchedulerSpec::parse_list("fair,weighted-fair[alpha=1,],fifo[cumulative=true]")
            .unwrap();
        assert_eq!(l.len(), 3);
        assert!(SchedulerSpec::parse("fair[alpha").is_err());
        assert!(
            SchedulerSpec::parse("fair[alpha=1]")
                .unwrap()
                .build()
                .is_err()
        );
        assert!(SchedulerSpec::parse("nope").unwrap().build().is_err());
        assert!(
            SchedulerSpec::parse("weighted-fair[alpha=x]")
                .unwrap()
                .build()
                .is_err()
        );
    }
}
