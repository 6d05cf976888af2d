//! Spark's own schedulers: the schedulable tree of `TaskSchedulerImpl` (a root pool, pools,
//! one `TaskSetManager` per submitted stage) sorted by `FIFOSchedulingAlgorithm` or
//! `FairSchedulingAlgorithm`, as `Pool.getSortedTaskSetQueue` does before each round of
//! resource offers. The first task set in that order takes every slot it can use.
//!
//! - `spark-fifo`: the root pool in FIFO: jobs by id (arrival order), then stages by id.
//! - `spark-fair`: the root pool in FAIR over the pools of `[sim.cluster] pools` (a job
//!   with no configured pool gets one of its own with Spark's defaults: minShare 0,
//!   weight 1, FIFO inside). Needy pools (running < minShare) first, by running/minShare;
//!   then by running/weight; then by name.

use std::cmp::Ordering;

use super::Scheduler;
use crate::sim::cluster::SchedulingMode;
use crate::sim::{Action, Observation};

/// A name in Spark's tie-break order (byte order of the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// A configured pool: its rank among the configured names.
    Rank(u32),
    /// A job's own pool, named after the job; after the configured pools, by job id.
    Job(u32),
    /// A task set, `TaskSet_<stageId>.0`: compared as Spark compares those strings.
    TaskSet(u32),
}

fn digits(mut v: u32, buf: &mut [u8; 12]) -> &[u8] {
    let mut i = buf.len();
    buf[i - 1] = b'0';
    buf[i - 2] = b'.';
    i -= 2;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

impl Name {
    fn cmp_spark(&self, other: &Name) -> Ordering {
        match (self, other) {
            (Name::TaskSet(a), Name::TaskSet(b)) => {
                let (mut x, mut y) = ([0u8; 12], [0u8; 12]);
                digits(*a, &mut x).cmp(digits(*b, &mut y))
            }
            (Name::Rank(a), Name::Rank(b)) | (Name::Job(a), Name::Job(b)) => a.cmp(b),
            (Name::Rank(_), _) => Ordering::Less,
            (_, Name::Rank(_)) => Ordering::Greater,
            (Name::Job(_), _) => Ordering::Less,
            (_, Name::Job(_)) => Ordering::Greater,
        }
    }
}

/// One node of the schedulable tree.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: Name,
    pub min_share: u32,
    pub weight: u32,
    pub running: u32,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Pool {
        mode: SchedulingMode,
        children: Vec<usize>,
    },
    /// A task set: `priority` is its job's id, `stage` the stage id; `item` is what the
    /// caller wants back (an index into `Observation::stages`).
    TaskSet {
        priority: u32,
        stage: u32,
        item: usize,
    },
}

/// `FairSchedulingAlgorithm.comparator`.
pub fn fair_order(a: &Node, b: &Node) -> Ordering {
    let (na, nb) = (a.running < a.min_share, b.running < b.min_share);
    let by = match (na, nb) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (true, true) => {
            let ra = f64::from(a.running) / f64::from(a.min_share.max(1));
            let rb = f64::from(b.running) / f64::from(b.min_share.max(1));
            ra.total_cmp(&rb)
        }
        (false, false) => {
            let ra = f64::from(a.running) / f64::from(a.weight);
            let rb = f64::from(b.running) / f64::from(b.weight);
            ra.total_cmp(&rb)
        }
    };
    by.then_with(|| a.name.cmp_spark(&b.name))
}

/// `FIFOSchedulingAlgorithm.comparator`: job id, then stage id.
pub fn fifo_order(a: &Node, b: &Node) -> Ordering {
    let key = |n: &Node| match n.kind {
        Kind::TaskSet {
            priority, stage, ..
        } => (priority, stage),
        Kind::Pool { .. } => (u32::MAX, u32::MAX),
    };
    key(a).cmp(&key(b))
}

/// A schedulable tree in an arena; node 0 is the root pool.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Empties the tree down to a root pool in `mode`.
    pub fn clear(&mut self, mode: SchedulingMode) {
        self.nodes.clear();
        self.nodes.push(Node {
            name: Name::Rank(0),
            min_share: 0,
            weight: 0,
            running: 0,
            kind: Kind::Pool {
                mode,
                children: Vec::new(),
            },
        });
    }

    /// Adds `node` under `parent`; returns its index.
    pub fn add(&mut self, parent: usize, node: Node) -> usize {
        let i = self.nodes.len();
        self.nodes.push(node);
        if let Kind::Pool { children, .. } = &mut self.nodes[parent].kind {
            children.push(i);
        }
        i
    }

    /// `Pool.getSortedTaskSetQueue`: the task sets' `item`s in offer order.
    pub fn sorted(&mut self, out: &mut Vec<usize>) {
        out.clear();
        self.visit(0, out);
    }

    fn visit(&mut self, node: usize, out: &mut Vec<usize>) {
        // A pool's own children are sorted in place (the tree is rebuilt for every
        // decision) and visited in that order: no copy of the child list at any level.
        let (mode, mut kids) = match &mut self.nodes[node].kind {
            Kind::TaskSet { item, .. } => {
                out.push(*item);
                return;
            }
            Kind::Pool { mode, children } => (*mode, std::mem::take(children)),
        };
        let nodes = &self.nodes;
        kids.sort_by(|&a, &b| match mode {
            SchedulingMode::Fair => fair_order(&nodes[a], &nodes[b]),
            SchedulingMode::Fifo => fifo_order(&nodes[a], &nodes[b]),
        });
        for &k in &kids {
            self.visit(k, out);
        }
        if let Kind::Pool { children, .. } = &mut self.nodes[node].kind {
            *children = kids;
        }
    }
}

/// Spark's scheduler over the observation: `spark-fifo` or `spark-fair`.
pub struct SparkPools {
    mode: SchedulingMode,
    tree: Tree,
    order: Vec<usize>,
    pool_node: Vec<usize>,
}

impl SparkPools {
    pub fn fifo() -> Self {
        Self::new(SchedulingMode::Fifo)
    }
    pub fn fair() -> Self {
        Self::new(SchedulingMode::Fair)
    }
    fn new(mode: SchedulingMode) -> Self {
        Self {
            mode,
            tree: Tree::default(),
            order: Vec::new(),
            pool_node: Vec::new(),
        }
    }

    /// Builds the tree of the observation's submitted stages.
    fn build(&mut self, obs: &Observation) {
        self.tree.clear(self.mode);
        self.pool_node.clear();
        if self.mode == SchedulingMode::Fair {
            for (i, p) in obs.pools.iter().enumerate() {
                let n = self.tree.add(
                    0,
                    Node {
                        name: Name::Rank(p.name_rank),
                        min_share: p.min_share,
                        weight: p.weight,
                        running: p.running,
                        kind: Kind::Pool {
                            mode: p.mode,
                            children: Vec::new(),
                        },
                    },
                );
                debug_assert_eq!(self.pool_node.len(), i);
                self.pool_node.push(n);
            }
        }
        for (ji, job) in obs.jobs.iter().enumerate() {
            let pool = obs.job_pool.get(ji).copied().flatten();
            let parent = match (self.mode, pool) {
                (SchedulingMode::Fifo, _) => 0,
                (SchedulingMode::Fair, Some(p)) => self.pool_node[p as usize],
                (SchedulingMode::Fair, None) => self.tree.add(
                    0,
                    Node {
                        name: Name::Job(job.id),
                        min_share: 0,
                        weight: 1,
                        running: job.executors,
                        kind: Kind::Pool {
                            mode: SchedulingMode::Fifo,
                            children: Vec::new(),
                        },
                    },
                ),
            };
            for s in job.stage_range() {
                let st = &obs.stages[s];
                if !st.runnable {
                    continue;
                }
                self.tree.add(
                    parent,
                    Node {
                        name: Name::TaskSet(st.id),
                        min_share: 0,
                        weight: 1,
                        running: st.executors,
                        kind: Kind::TaskSet {
                            priority: ji as u32,
                            stage: st.id,
                            item: s,
                        },
                    },
                );
            }
        }
    }
}

impl Scheduler for SparkPools {
    fn name(&self) -> String {
        match self.mode {
            SchedulingMode::Fifo => "spark-fifo".into(),
            SchedulingMode::Fair => "spark-fair".into(),
        }
    }

    fn decide(&mut self, obs: &Observation) -> Action {
        self.build(obs);
        self.tree.sorted(&mut self.order);
        match self.order.iter().find(|&&s| obs.stages[s].schedulable) {
            Some(&s) => obs.send_all(s),
            // Spark runs only submitted stages: the slots wait.
            None => obs.idle(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Cases from Spark's `PoolSuite` (core/src/test/.../scheduler/PoolSuite.scala): the
    //! order in which `getSortedTaskSetQueue` hands out tasks one at a time.
    use super::*;

    fn pool(name: Name, mode: SchedulingMode, min_share: u32, weight: u32) -> Node {
        Node {
            name,
            min_share,
            weight,
            running: 0,
            kind: Kind::Pool {
                mode,
                children: Vec::new(),
            },
        }
    }

    fn task_set(stage: u32, tasks: u32) -> (Node, u32) {
        let n = Node {
            name: Name::TaskSet(stage),
            min_share: 0,
            weight: 1,
            running: 0,
            kind: Kind::TaskSet {
                priority: 0,
                stage,
                item: stage as usize,
            },
        };
        (n, tasks)
    }

    /// `scheduleTaskAndVerifyId`: the first task set in the sorted queue that still has a
    /// task to start gets one; its running count goes up, and so do its pools'.
    fn schedule_one(tree: &mut Tree, parents: &[usize], tasks: &[u32]) -> u32 {
        let mut order = Vec::new();
        tree.sorted(&mut order);
        let node_of = |stage: usize, tree: &Tree| {
            tree.nodes
                .iter()
                .position(|n| matches!(n.kind, Kind::TaskSet { item, .. } if item == stage))
                .unwrap()
        };
        let stage = *order
            .iter()
            .find(|&&s| tree.nodes[node_of(s, tree)].running < tasks[s])
            .expect("a task set with work");
        let mut n = node_of(stage, tree);
        tree.nodes[n].running += 1;
        // Walk up: `parents[n]` is the parent of node n.
        while n != 0 {
            n = parents[n];
            tree.nodes[n].running += 1;
        }
        stage as u32
    }

    /// Builds a tree and remembers each node's parent.
    struct Built {
        tree: Tree,
        parents: Vec<usize>,
        tasks: Vec<u32>,
    }

    impl Built {
        fn new(mode: SchedulingMode) -> Self {
            let mut tree = Tree::default();
            tree.clear(mode);
            Self {
                tree,
                parents: vec![0],
                tasks: Vec::new(),
            }
        }
        fn add(&mut self, parent: usize, node: Node) -> usize {
            self.parents.push(parent);
            self.tree.add(parent, node)
        }
        fn add_task_set(&mut self, parent: usize, stage: u32, tasks: u32) {
            let (n, t) = task_set(stage, tasks);
            if self.tasks.len() <= stage as usize {
                self.tasks.resize(stage as usize + 1, 0);
            }
            self.tasks[stage as usize] = t;
            self.add(parent, n);
        }
        fn next(&mut self) -> u32 {
            schedule_one(&mut self.tree, &self.parents, &self.tasks)
        }
    }

    #[test]
    fn fifo_scheduler_test() {
        // PoolSuite "FIFO Scheduler Test": three task sets of 2 tasks, by stage id.
        let mut b = Built::new(SchedulingMode::Fifo);
        for s in 0..3 {
            b.add_task_set(0, s, 2);
        }
        let got: Vec<u32> = (0..6).map(|_| b.next()).collect();
        assert_eq!(got, [0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn fair_scheduler_test() {
        // PoolSuite "Fair Scheduler Test" with its fairscheduler.xml: pools "1" (minShare
        // 2), "2" (minShare 3), "3" (minShare 0), weight 1, FIFO inside; names ranked
        // "1" < "2" < "3" < "default".
        let mut b = Built::new(SchedulingMode::Fair);
        let p1 = b.add(0, pool(Name::Rank(0), SchedulingMode::Fifo, 2, 1));
        let p2 = b.add(0, pool(Name::Rank(1), SchedulingMode::Fifo, 3, 1));
        b.add(0, pool(Name::Rank(2), SchedulingMode::Fifo, 0, 1));
        b.add(0, pool(Name::Rank(3), SchedulingMode::Fifo, 0, 1));
        b.add_task_set(p1, 0, 1);
        b.add_task_set(p1, 1, 1);
        b.add_task_set(p1, 2, 2);
        b.add_task_set(p2, 3, 2);
        b.add_task_set(p2, 4, 2);
        let got: Vec<u32> = (0..8).map(|_| b.next()).collect();
        // Needy pools by running/minShare, ties by name; then by running/weight.
        assert_eq!(got, [0, 3, 3, 1, 4, 2, 2, 4]);
    }

    #[test]
    fn nested_pool_test() {
        // PoolSuite "Nested Pool Test": FAIR pools inside FAIR pools, minShare and weight
        // at both levels.
        let mut b = Built::new(SchedulingMode::Fair);
        let fair = SchedulingMode::Fair;
        let p0 = b.add(0, pool(Name::Rank(0), fair, 3, 1));
        let p1 = b.add(0, pool(Name::Rank(3), fair, 4, 1));
        let p00 = b.add(p0, pool(Name::Rank(1), fair, 2, 2));
        let p01 = b.add(p0, pool(Name::Rank(2), fair, 1, 1));
        let p10 = b.add(p1, pool(Name::Rank(4), fair, 2, 2));
        let p11 = b.add(p1, pool(Name::Rank(5), fair, 2, 1));
        for (p, stages) in [(p00, [0, 1]), (p01, [2, 3]), (p10, [4, 5]), (p11, [6, 7])] {
            for s in stages {
                b.add_task_set(p, s, 5);
            }
        }
        let got: Vec<u32> = (0..4).map(|_| b.next()).collect();
        assert_eq!(got, [0, 4, 6, 2]);
    }

    #[test]
    fn weight_decides_between_satisfied_pools() {
        // FairSchedulingAlgorithm: with minShare met, running/weight orders the pools, so a
        // pool of weight 2 gets twice the running tasks of a pool of weight 1.
        let mut b = Built::new(SchedulingMode::Fair);
        let heavy = b.add(0, pool(Name::Rank(1), SchedulingMode::Fifo, 0, 2));
        let light = b.add(0, pool(Name::Rank(0), SchedulingMode::Fifo, 0, 1));
        b.add_task_set(heavy, 0, 100);
        b.add_task_set(light, 1, 100);
        let got: Vec<u32> = (0..9).map(|_| b.next()).collect();
        let to_heavy = got.iter().filter(|&&s| s == 0).count();
        assert_eq!(to_heavy, 6, "{got:?}");
        // Ties (0/1 = 0/2) go to the name: "light" ranks first.
        assert_eq!(got[0], 1);
    }

    /// Runs `sched` on Spark's engine with `cluster` (TOML), two jobs of one stage each;
    /// returns the job of each launch in start order.
    fn launches(sched: &mut dyn Scheduler, cluster: &str, jobs: &[(&str, u32)]) -> Vec<(u32, u64)> {
        use crate::sim::live::tests::trace;
        use crate::sim::{Env, SimConfig, driver};
        use crate::workload::arrivals::JobArrival;
        let cfg = SimConfig {
            record_tasks: true,
            cluster: Some(toml::from_str(cluster).unwrap()),
            ..SimConfig::default()
        };
        let mut env = Env::new(cfg).unwrap();
        let arrivals: Vec<JobArrival> = jobs
            .iter()
            .map(|&(q, n)| JobArrival {
                job: trace(q, &[n], 1000),
                arrival_ms: 0,
            })
            .collect();
        env.reset(&arrivals, 1).unwrap();
        let mut obs = Observation::default();
        driver::run_to_end(
            &mut env,
            &mut obs,
            None,
            &mut |o| sched.decide(o),
            &mut |_| {},
        )
        .unwrap();
        let mut r: Vec<(u64, u32, u32)> = env
            .records()
            .iter()
            .map(|r| (r.start_ms, r.executor, r.job))
            .collect();
        r.sort_unstable();
        r.iter().map(|&(t, _, j)| (j, t)).collect()
    }

    #[test]
    fn fifo_runs_the_first_job_first_and_fair_shares() {
        // Two slots, two jobs of 4 tasks. Spark's FIFO mode: job 0's tasks before job 1's.
        // FAIR with a pool per job: the first round's two offers go to one task set (one sort
        // per round, ties by name); then each freed slot goes to the pool with fewer running
        // tasks, so at t = 1 s the jobs run one task each.
        let two_slots = "[[hosts]]\ncores = 2\nmemory_mb = 2048";
        let jobs = [("a", 4), ("b", 4)];
        let at = |l: &[(u32, u64)], t: u64| -> Vec<u32> {
            let mut v: Vec<u32> = l.iter().filter(|x| x.1 == t).map(|x| x.0).collect();
            v.sort_unstable();
            v
        };
        let fifo = launches(&mut SparkPools::fifo(), two_slots, &jobs);
        assert_eq!(at(&fifo, 0), [0, 0]);
        assert_eq!(at(&fifo, 1000), [0, 0]);
        assert_eq!(at(&fifo, 2000), [1, 1]);
        let fair = launches(&mut SparkPools::fair(), two_slots, &jobs);
        assert_eq!(at(&fair, 0), [0, 0]);
        assert_eq!(at(&fair, 1000), [0, 1]);
        assert_eq!(at(&fair, 2000), [0, 1]);
        // With one slot there is nothing to share: a finished task leaves both pools at 0
        // running, and the name decides, as in Spark.
        let one = launches(
            &mut SparkPools::fair(),
            "[[hosts]]\ncores = 1\nmemory_mb = 2048",
            &jobs,
        );
        let order: Vec<u32> = one.iter().map(|x| x.0).collect();
        assert_eq!(order, [0, 0, 0, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn min_share_puts_a_needy_pool_first() {
        // FairSchedulingAlgorithm: a pool below its minShare sorts before satisfied pools,
        // so it takes the first round of offers; without minShare the name decides
        // ("heavy" < "light"). The first task set takes every offer it can (one sort per
        // resourceOffers round).
        let cluster = |light_share: u32| {
            format!(
                "[[hosts]]\ncores = 3\nmemory_mb = 4096\n\
                 [[pools]]\nname = \"heavy\"\nweight = 2\n\
                 [[pools]]\nname = \"light\"\nmin_share = {light_share}\n\
                 [assign]\nby_query = {{ h = \"heavy\", l = \"light\" }}"
            )
        };
        let jobs = [("h", 30), ("l", 30)];
        let first_round = |share: u32| -> Vec<u32> {
            launches(&mut SparkPools::fair(), &cluster(share), &jobs)
                .iter()
                .filter(|l| l.1 == 0)
                .map(|l| l.0)
                .collect()
        };
        assert_eq!(first_round(0), [0, 0, 0]);
        assert_eq!(first_round(2), [1, 1, 1]);
        // Over the run, weight 2 against 1: the heavy pool starts about twice the tasks
        // while both have work.
        let l = launches(&mut SparkPools::fair(), &cluster(0), &jobs);
        let until = 8000;
        let heavy = l.iter().filter(|x| x.1 < until && x.0 == 0).count() as f64;
        let light = l.iter().filter(|x| x.1 < until && x.0 == 1).count() as f64;
        assert!(
            (1.6..=2.6).contains(&(heavy / light)),
            "heavy {heavy}, light {light}"
        );
    }

    #[test]
    fn task_set_names_compare_as_strings() {
        // Spark compares "TaskSet_10.0" < "TaskSet_2.0" and "TaskSet_1.0" < "TaskSet_10.0".
        assert_eq!(
            Name::TaskSet(10).cmp_spark(&Name::TaskSet(2)),
            Ordering::Less
        );
        assert_eq!(
            Name::TaskSet(1).cmp_spark(&Name::TaskSet(10)),
            Ordering::Less
        );
        assert_eq!(
            Name::TaskSet(7).cmp_spark(&Name::TaskSet(7)),
            Ordering::Equal
        );
    }
}
