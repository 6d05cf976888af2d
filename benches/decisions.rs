//! Decision cost against concurrent jobs (issue 17: at 400 jobs at most 1.5x the cost at
//! 50). For N = 50, 100, 200 and 400 jobs at t = 0 on N executors, whole episodes decided
//! by the shipped MPDA model and by its key-query variant (`PolicyConfig::key_dim`), on
//! this thread; prints milliseconds per decision (the simulation included, best of 3) and
//! the ratio to N = 50 measured in the same run. Decima's traces from
//! `../shared/decima-tpch` when present (the models were trained on them), else the shipped
//! `tpch/` traces. `cargo bench --bench decisions`; pin it to one core for stable numbers.

use std::path::Path;
use std::time::Instant;

use mpda::eval::run_episode;
use mpda::model::Backend;
use mpda::registry::factory;
use mpda::sched::SchedulerSpec;
use mpda::sim::{Env, Observation, SimConfig};
use mpda::workload::TraceLibrary;
use mpda::workload::arrivals::{ArrivalProcess, Episode, JobMix};

const SIZES: [usize; 4] = [50, 100, 200, 400];
const MODELS: [&str; 2] = ["mpda-decima-batch20", "mpda-keyed-batch20"];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let decima = root.join("../shared/decima-tpch");
    let lib = match TraceLibrary::load_dir(&decima) {
        Ok(lib) => {
            println!("decisions bench: Decima's traces from {}", decima.display());
            lib
        }
        Err(_) => {
            let tpch = root.join("tpch");
            println!(
                "decisions bench: {} not found; the shipped traces in {}",
                decima.display(),
                tpch.display()
            );
            TraceLibrary::load_dir(&tpch).expect("the shipped tpch/ traces load")
        }
    };
    let mix = JobMix::all(&lib);
    for model in MODELS {
        let spec = SchedulerSpec::parse(&format!("mpda[model={model}]")).expect("a valid spec");
        let f = factory(&spec, Backend::Cpu).expect("the shipped model loads");
        let mut base = None;
        for n in SIZES {
            // About 8,000 decisions per size.
            let episodes = (400 / n).max(1) as u64;
            let eps: Vec<Episode> = (0..episodes)
                .map(|i| {
                    let seed = 40_000_000 + i;
                    Episode {
                        seed,
                        jobs: ArrivalProcess::Batch { jobs: n }.generate(&lib, &mix, seed),
                    }
                })
                .collect();
            let mut best = f64::INFINITY;
            let mut decisions = 0;
            for _ in 0..3 {
                let mut obs = Observation::default();
                let t0 = Instant::now();
                decisions = 0;
                for ep in &eps {
                    let mut env = Env::new(SimConfig {
                        executors: n as u32,
                        ..SimConfig::default()
                    })
                    .expect("a valid cluster");
                    let mut sched = f.build().expect("the scheduler builds");
                    run_episode(&mut env, sched.as_mut(), ep, &mut obs).expect("the episode runs");
                    decisions += env.decisions();
                }
                best = best.min(t0.elapsed().as_secs_f64() * 1e3 / decisions as f64);
            }
            let base = *base.get_or_insert(best);
            println!(
                "{model:>22}  {n:>3} jobs on {n:>3} executors: {best:.3} ms per decision ({decisions} decisions), {:.2}x the cost at {} jobs",
                best / base,
                SIZES[0]
            );
        }
    }
}
