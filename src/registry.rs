//! Building any scheduler from its name, `name[key=value,...]`: the heuristics of `sched`
//! and the learned policies of `model`. It sits above both, so that neither depends on
//! the other.

use crate::model::Backend;
use crate::model::scheduler::{LEARNED, LearnedFactory};
use crate::sched::{HEURISTICS, SchedError, SchedulerFactory, SchedulerSpec};

/// What `mpda schedulers` prints for the learned presets.
const LEARNED_HELP: &str = "a learned policy: [model=PATH or NAME in models/, greedy=true|false]; \
     without model, an untrained one [seed=N]";

/// Every scheduler name with a line of help, heuristics first.
pub fn catalogue() -> Vec<(String, &'static str)> {
    HEURISTICS
        .iter()
        .map(|&(name, help)| (name.to_string(), help))
        .chain(std::iter::once((LEARNED.join(" | "), LEARNED_HELP)))
        .collect()
}

/// What `mpda schedulers` prints: every scheduler, then every shuffle planner, a line each.
pub fn catalogue_text() -> String {
    let mut out: Vec<String> = catalogue()
        .into_iter()
        .map(|(name, what)| format!("{name:<22} {what}"))
        .collect();
    out.push(
        "\nShuffle planners, on Spark's engine ([sim.cluster]): append to any scheduler as \
         `scheduler+planner[key=value]`, or set [sim.cluster.plan]"
            .into(),
    );
    out.extend(
        crate::sim::plan::PLANNERS
            .iter()
            .map(|(name, what)| format!("{name:<22} {what}")),
    );
    out.join("\n")
}

/// A factory for any scheduler name: heuristics directly, learned presets by loading (or
/// initialising) their model once on `backend`. Every parameter is checked here, before
/// anything runs.
pub fn factory(
    spec: &SchedulerSpec,
    backend: Backend,
) -> Result<Box<dyn SchedulerFactory>, SchedError> {
    if let Some(p) = &spec.planner {
        let plan = crate::sched::plan::plan_config(p)?;
        let inner = factory(&spec.without_planner(), backend)?;
        return Ok(Box::new(PlannedFactory { inner, plan }));
    }
    if LEARNED.contains(&spec.name.as_str()) {
        return Ok(Box::new(LearnedFactory::from_spec(spec, backend)?));
    }
    if !HEURISTICS.iter().any(|h| h.0 == spec.name) {
        let known: Vec<&str> = HEURISTICS
            .iter()
            .map(|h| h.0)
            .chain(LEARNED.iter().copied())
            .collect();
        return Err(SchedError::Spec {
            spec: spec.to_string(),
            msg: format!(
                "unknown scheduler \"{}\" (known: {})",
                spec.name,
                known.join(", ")
            ),
        });
    }
    spec.build()?;
    Ok(Box::new(spec.clone()))
}

/// Factories for a list of specs as the command line gives them (each entry may hold
/// several, comma-separated).
pub fn factories(
    specs: &[String],
    backend: Backend,
) -> Result<Vec<Box<dyn SchedulerFactory>>, SchedError> {
    let mut out = Vec::new();
    for s in specs {
        for spec in SchedulerSpec::parse_list(s)? {
            out.push(factory(&spec, backend)?);
        }
    }
    Ok(out)
}

/// Any scheduler's factory paired with a planner (`name+planner[...]`).
struct PlannedFactory {
    inner: Box<dyn SchedulerFactory>,
    plan: crate::sim::plan::PlanConfig,
}

impl SchedulerFactory for PlannedFactory {
    fn label(&self) -> String {
        format!("{}+{}", self.inner.label(), self.plan.label())
    }
    fn build(&self) -> Result<Box<dyn crate::sched::Scheduler>, SchedError> {
        Ok(Box::new(crate::sched::plan::Planned {
            inner: self.inner.build()?,
            plan: self.plan.clone(),
        }))
    }
}
