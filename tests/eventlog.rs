//! The event-log importer on real Spark logs (trimmed fixtures, see
//! tests/fixtures/eventlogs/README.md) and on broken copies of them.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use mpda::workload::eventlog::{self, EventLogError, Import, ImportOptions, input};
use mpda::workload::{JobTrace, load_trace_file};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eventlogs")
        .join(rel)
}

const Q1_ZSTD: &str = "sf1/q1-sf1-e2-noaqe.zstd";
const Q3_E1: &str = "sf1/q3-sf1-e1-noaqe.zstd";
const Q3_E2: &str = "sf1/q3-sf1-e2-noaqe.zstd";
const SF001_PLAIN: &str = "sf0.01/plain/app-20261123035843-0000";
const SF001_ZSTD: &str = "sf0.01/zstd/app-20261123035911-0000.zstd";
const SF001_LZ4: &str = "sf0.01/lz4/app-20261123035939-0000.lz4";
const SF001_ROLLING: &str = "sf0.01/rolling/eventlog_v2_app-20261123040007-0000";
const SF001_ROLLING_PART: &str =
    "sf0.01/rolling/eventlog_v2_app-20261123040007-0000/events_1_app-20261123040007-0000";
const SF001_AQE: &str = "sf0.01/aqe/app-20261123040052-0000";
const Q6_E1: &str = "sf1/q6-sf1-e1-noaqe";
const Q6_E2: &str = "sf1/q6-sf1-e2-noaqe";

fn paths<P: AsRef<Path>>(p: &[P]) -> Vec<PathBuf> {
    p.iter().map(|x| x.as_ref().to_path_buf()).collect()
}

fn import<P: AsRef<Path>>(p: &[P]) -> Result<Import, EventLogError> {
    eventlog::import(&paths(p), &ImportOptions::new("sf1"))
}

fn import_ok<P: AsRef<Path>>(p: &[P]) -> Import {
    import(p).unwrap_or_else(|e| panic!("import of {:?} failed: {e}", paths(p)))
}

fn import_err<P: AsRef<Path>>(p: &[P]) -> String {
    match import(p) {
        Ok(i) => panic!(
            "import of {:?} should fail, got {} jobs",
            paths(p),
            i.jobs.len()
        ),
        Err(e) => e.to_string(),
    }
}

/// The decompressed text of a fixture, read with the reference decoders (not ours).
fn text_of(path: &Path) -> String {
    let raw = std::fs::read(path).unwrap();
    let bytes = if path.extension().is_some_and(|e| e == "zstd") {
        zstd::stream::decode_all(&raw[..]).unwrap()
    } else {
        raw
    };
    String::from_utf8(bytes).unwrap()
}

fn count_events(text: &str, event: &str) -> usize {
    let needle = format!("{{\"Event\":\"{event}\"");
    text.lines().filter(|l| l.starts_with(&needle)).count()
}

/// The one job of an import.
fn only_job(i: &Import) -> &JobTrace {
    assert_eq!(i.jobs.len(), 1, "expected one job");
    &i.jobs[0].trace
}

/// Stage structure without samples: (Spark stage id, tasks, parents).
fn shape(job: &JobTrace) -> Vec<(Option<u64>, u32, Vec<u32>)> {
    job.stages
        .iter()
        .map(|s| (s.spark_stage_id, s.num_tasks, s.parents.clone()))
        .collect()
}

/// A temporary copy of a fixture's text with `edit` applied.
fn edited(dir: &Path, name: &str, src: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, edit(text_of(&fixture(src)))).unwrap();
    p
}

// ---------------------------------------------------------------------------------------
// Structure

#[test]
fn skipped_stage_resolves_to_the_stage_that_ran() {
    // Q1 without AQE is two Spark jobs: job 0 runs stages 0 (scan) and 1 (the ORDER BY's
    // sampling pass); job 1 lists stages 2, 3, 4, where stage 2 is skipped: it has the same
    // output RDD (3) as stage 0, so stage 3's parent 2 becomes stage 0.
    let i = import_ok(&[fixture(Q1_ZSTD)]);
    let job = only_job(&i);
    assert_eq!(job.query, "1");
    assert_eq!(job.name, "tpch-sf1-1");
    assert_eq!(
        shape(job),
        vec![
            (Some(0), 2, vec![]),
            (Some(1), 200, vec![0]),
            (Some(3), 200, vec![0]),
            (Some(4), 4, vec![2]),
        ]
    );
    let app = &i.jobs[0].source["apps"][0];
    assert_eq!(app["skipped_stages"], 1);
    assert_eq!(app["spark_jobs"], serde_json::json!([0, 1]));
    assert_eq!(app["app_id"], "app-20261123025025-0000");
    assert_eq!(
        i.jobs[0].source["spark_versions"],
        serde_json::json!(["4.3.0"])
    );
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

#[test]
fn waves_on_a_hand_checked_stage() {
    // Stage 4 of Q1 (from the log, in launch order):
    //   task 402 exec 0 launch ..228 264 ms  -> exec 0's first task in the stage: first wave
    //   task 403 exec 1 launch ..229 216 ms  -> exec 1's first: first wave
    //   task 404 exec 1 launch ..442  34 ms  -> rest wave
    //   task 405 exec 1 launch ..474  50 ms  -> rest wave
    // Both executors had run stage 0 of the same query, so nothing is fresh. Stage 0 holds
    // the first task of each executor in the query (11695 and 11765 ms: JVM warm-up and
    // the lineitem scan), so its first wave is also its fresh list.
    let i = import_ok(&[fixture(Q1_ZSTD)]);
    let job = only_job(&i);
    let w = &job.stages[3].samples;
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].executors, 2);
    assert_eq!(w[0].first_wave, vec![264, 216]);
    assert_eq!(w[0].rest_wave, vec![34, 50]);
    assert!(w[0].fresh.is_empty());
    let s0 = &job.stages[0].samples[0];
    assert_eq!(s0.first_wave, vec![11695, 11765]);
    assert!(s0.rest_wave.is_empty());
    assert_eq!(s0.fresh, vec![11695, 11765]);
    // Everywhere: one first-wave task per executor that ran in the stage, fresh within
    // first wave, and every task counted once.
    for (k, s) in job.stages.iter().enumerate() {
        let w = &s.samples[0];
        assert!(w.first_wave.len() <= 2, "stage {k}");
        assert!(
            w.fresh.iter().all(|f| w.first_wave.contains(f)),
            "stage {k}"
        );
        assert_eq!(w.first_wave.len() + w.rest_wave.len(), s.num_tasks as usize);
        let sh = s.shuffle.as_ref().unwrap();
        assert_eq!(sh.read_bytes.len(), s.num_tasks as usize);
    }
    let fresh: usize = job.stages.iter().map(|s| s.samples[0].fresh.len()).sum();
    assert_eq!(fresh, 2, "one fresh task per executor in the query");
    // Shuffle statistics: the scan writes, the last stage reads.
    let sh0 = job.stages[0].shuffle.as_ref().unwrap();
    assert!(sh0.write_bytes.iter().all(|&b| b > 0));
    assert!(sh0.read_bytes.iter().all(|&b| b == 0));
}

#[test]
fn import_matches_the_event_log_counts() {
    // Counted from the raw lines, independently of the importer: every submitted stage is
    // a stage of the trace and every successful TaskEnd a task.
    for f in [
        Q1_ZSTD,
        Q3_E1,
        Q3_E2,
        Q6_E2,
        Q6_E1,
        SF001_PLAIN,
        SF001_ZSTD,
        SF001_ROLLING_PART,
        SF001_AQE,
    ] {
        let text = text_of(&fixture(f));
        let submitted = count_events(&text, "SparkListenerStageSubmitted");
        let task_ends = count_events(&text, "SparkListenerTaskEnd");
        let success = text
            .lines()
            .filter(|l| l.contains("\"Task End Reason\":{\"Reason\":\"Success\"}"))
            .count();
        assert_eq!(task_ends, success, "{f}: all tasks succeeded");
        let i = import_ok(&[fixture(f)]);
        let job = only_job(&i);
        assert_eq!(job.stages.len(), submitted, "{f}: stages");
        assert_eq!(job.num_tasks(), task_ends as u64, "{f}: tasks");
        assert_eq!(i.num_stages(), submitted);
        assert_eq!(i.num_samples(), task_ends);
    }
}

#[test]
fn aqe_log_resolves_a_skipped_stage_across_jobs() {
    // Q3 with AQE (and broadcasts) on is four Spark jobs of one group: two broadcast jobs
    // (stages 0 and 1), a shuffle-map job (stage 2, output RDD 11), and the result job,
    // which lists stage 3 (output RDD 11: skipped, it is stage 2) and stage 4 (parent 3).
    let i = import_ok(&[fixture(SF001_AQE)]);
    let job = only_job(&i);
    assert_eq!(
        shape(job),
        vec![
            (Some(0), 1, vec![]),
            (Some(1), 1, vec![]),
            (Some(2), 1, vec![]),
            (Some(4), 1, vec![2]),
        ]
    );
    let app = &i.jobs[0].source["apps"][0];
    assert_eq!(app["spark_jobs"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(app["skipped_stages"], 1);
    // The first task of each executor in the group is fresh, wherever it ran.
    let fresh: usize = job.stages.iter().map(|s| s.samples[0].fresh.len()).sum();
    assert_eq!(fresh, 2);
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    // Its DAG is not the AQE-off one, so the two runs do not merge.
    let e = import_err(&[fixture(SF001_PLAIN), fixture(SF001_AQE)]);
    assert!(e.contains("differs from the one in"), "{e}");
    assert!(e.ends_with("4 stages against 5"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Input formats

#[test]
fn spark_written_zstd_lz4_and_rolling_logs_read_like_plain_ones() {
    // Four runs of Q3 at SF 0.01 with the same settings (2 executors, AQE off, 4 shuffle
    // partitions), whose logs Spark wrote plain, zstd-compressed, lz4-compressed
    // (lz4-java's LZ4Block container) and as a rolling folder.
    // Spark numbered the stages differently in some of the runs, so each run is
    // compared with the plain one through a merge, which pairs stages by output RDD.
    let plain = import_ok(&[fixture(SF001_PLAIN)]);
    assert_eq!(
        shape(only_job(&plain)),
        vec![
            (Some(0), 1, vec![]),
            (Some(1), 1, vec![]),
            (Some(2), 4, vec![0, 1]),
            (Some(3), 1, vec![]),
            (Some(4), 4, vec![2, 3]),
        ]
    );
    for (f, codecs) in [
        (SF001_ZSTD, vec!["zstd"]),
        (SF001_LZ4, vec!["lz4"]),
        (SF001_ROLLING, vec!["plain"]),
    ] {
        let i = import_ok(&[fixture(f)]);
        assert_eq!(only_job(&i).stages.len(), 5, "{f}");
        assert_eq!(only_job(&i).num_tasks(), 11, "{f}");
        assert_eq!(i.apps[0].codecs, codecs, "{f}");
        assert!(i.warnings.is_empty(), "{f}: {:?}", i.warnings);
        let both = import_ok(&[fixture(SF001_PLAIN), fixture(f)]);
        assert_eq!(shape(only_job(&both)), shape(only_job(&plain)), "{f}");
    }
    let rolling = import_ok(&[fixture(SF001_ROLLING)]);
    assert_eq!(rolling.apps[0].app_id, "app-20261123040007-0000");
    // The zstd text, decoded by the reference decoder, counts the same stages and tasks.
    let text = text_of(&fixture(SF001_ZSTD));
    assert_eq!(count_events(&text, "SparkListenerStageSubmitted"), 5);
    assert_eq!(count_events(&text, "SparkListenerTaskEnd"), 11);
    // All four pooled: one executor count, four runs' samples per stage.
    let all = import_ok(&[
        fixture("sf0.01/plain"),
        fixture("sf0.01/zstd"),
        fixture("sf0.01/lz4"),
        fixture("sf0.01/rolling"),
    ]);
    let job = only_job(&all);
    assert_eq!(all.jobs[0].runs.len(), 4);
    for s in &job.stages {
        assert_eq!(s.samples.len(), 1);
        let w = &s.samples[0];
        assert_eq!(
            w.first_wave.len() + w.rest_wave.len(),
            4 * s.num_tasks as usize
        );
    }
    assert_eq!(all.num_samples(), 44);
}

#[test]
fn zstd_log_reads_like_its_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("app-20261123025025-0000");
    std::fs::write(&plain, text_of(&fixture(Q1_ZSTD))).unwrap();
    let a = import_ok(&[fixture(Q1_ZSTD)]);
    let b = import_ok(&[plain]);
    assert_eq!(only_job(&a), only_job(&b));
    assert_eq!(a.apps[0].codecs, vec!["zstd"]);
    assert_eq!(b.apps[0].codecs, vec!["plain"]);
}

/// Splits a log into `n` rolling parts, compressing each with the codec `codec(i)`.
fn write_rolling(dir: &Path, text: &str, n: usize, codec: impl Fn(usize) -> &'static str) {
    let lines: Vec<&str> = text.lines().collect();
    let per = lines.len().div_ceil(n);
    for (i, chunk) in lines.chunks(per).enumerate() {
        let mut body = chunk.join("\n");
        body.push('\n');
        let c = codec(i + 1);
        let name = format!("events_{}_app-20261123025025-0000{c}", i + 1);
        let bytes = match c {
            ".zstd" => zstd::stream::encode_all(body.as_bytes(), 3).unwrap(),
            ".lz4" => input::lz4_block_encode(body.as_bytes(), 32 * 1024),
            _ => body.into_bytes(),
        };
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn rolling_log_reads_parts_in_numeric_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("eventlog_v2_app-20261123025025-0000");
    std::fs::create_dir(&dir).unwrap();
    // 12 parts, so that events_10.. sort after events_9 only if read numerically; parts
    // in all three codecs; Spark's status file beside them.
    let text = text_of(&fixture(Q1_ZSTD));
    write_rolling(&dir, &text, 12, |i| match i % 3 {
        0 => ".zstd",
        1 => ".lz4",
        _ => "",
    });
    std::fs::write(dir.join("appstatus_app-20261123025025-0000"), "").unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 13);
    let rolled = import_ok(&[&dir]);
    let single = import_ok(&[fixture(Q1_ZSTD)]);
    assert_eq!(only_job(&rolled), only_job(&single));
    assert_eq!(rolled.apps[0].codecs.len(), 12);
    assert_eq!(rolled.apps[0].path, dir);
    // Read as a member of a folder of logs, too.
    let again = import_ok(&[tmp.path().to_path_buf()]);
    assert_eq!(only_job(&again), only_job(&single));
}

#[test]
fn rolling_log_of_a_running_application_ends_with_a_warning() {
    // The last part's zstd frame is cut in half, as when Spark is still writing it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("eventlog_v2_app-20261123025025-0000");
    std::fs::create_dir(&dir).unwrap();
    write_rolling(&dir, &text_of(&fixture(Q1_ZSTD)), 3, |_| ".zstd");
    let last = dir.join("events_3_app-20261123025025-0000.zstd");
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    let status = dir.join("appstatus_app-20261123025025-0000.inprogress");
    std::fs::write(&status, "").unwrap();
    let i = import_ok(&[&dir]);
    assert!(i.jobs.is_empty(), "the query's last job had not ended");
    assert!(
        i.warnings.iter().any(|w| w.path == last
            && w.msg.contains("zstd stream is corrupt or truncated")
            && w.msg.contains("still in progress")),
        "{:?}",
        i.warnings
    );
    // Once the application is marked finished, the same damage is an error.
    std::fs::rename(&status, dir.join("appstatus_app-20261123025025-0000")).unwrap();
    let e = import_err(&[&dir]);
    assert!(
        e.starts_with(&format!("{}: zstd stream is corrupt", last.display())),
        "{e}"
    );
}

#[test]
fn lz4_block_log_reads_like_its_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let text = text_of(&fixture(Q1_ZSTD));
    let p = dir.path().join("app-20261123025025-0000.lz4");
    std::fs::write(&p, input::lz4_block_encode(text.as_bytes(), 32 * 1024)).unwrap();
    let a = import_ok(&[p]);
    assert_eq!(a.apps[0].codecs, vec!["lz4"]);
    assert_eq!(only_job(&a), only_job(&import_ok(&[fixture(Q1_ZSTD)])));
}

// ---------------------------------------------------------------------------------------
// Merging

#[test]
fn one_and_two_executor_runs_merge_into_one_trace() {
    let i = import_ok(&[fixture(Q6_E1), fixture(Q6_E2)]);
    let job = only_job(&i);
    assert_eq!(job.query, "6");
    assert_eq!(
        i.jobs[0].source["executor_counts"],
        serde_json::json!([1, 2])
    );
    let e1 = import_ok(&[fixture(Q6_E1)]);
    let e2 = import_ok(&[fixture(Q6_E2)]);
    for (k, s) in job.stages.iter().enumerate() {
        let keys: Vec<u32> = s.samples.iter().map(|w| w.executors).collect();
        assert_eq!(keys, vec![1, 2], "stage {k}");
        assert_eq!(s.samples[0], only_job(&e1).stages[k].samples[0]);
        assert_eq!(s.samples[1], only_job(&e2).stages[k].samples[0]);
        let sh = s.shuffle.as_ref().unwrap();
        assert_eq!(sh.read_bytes.len(), 2 * s.num_tasks as usize);
    }
    // The input order does not matter, and a folder of logs works like the files.
    let rev = import_ok(&[fixture(Q6_E2), fixture(Q6_E1)]);
    assert_eq!(
        only_job(&rev)
            .stages
            .iter()
            .map(|s| &s.samples)
            .collect::<Vec<_>>(),
        job.stages.iter().map(|s| &s.samples).collect::<Vec<_>>()
    );
}

#[test]
fn stages_numbered_differently_in_two_runs_are_matched_by_output_rdd() {
    // Spark numbered Q3's stages differently in its two runs (its scheduler walks shuffle
    // dependencies in hash order). From the JobStart lines, (stage, output RDD, tasks):
    //   1 executor:  (0, 3, 2) (1, 9, 2) (2, 14, 200) (3, 20, 2) (4, 26, 200)
    //   2 executors: (0, 20, 2) (1, 9, 2) (2, 3, 2) (3, 14, 200) (4, 26, 200)
    // so the 2-executor stages for the 1-executor order are 2, 1, 3, 0, 4.
    let e1 = import_ok(&[fixture(Q3_E1)]);
    let e2 = import_ok(&[fixture(Q3_E2)]);
    let tasks =
        |i: &Import| -> Vec<u32> { only_job(i).stages.iter().map(|s| s.num_tasks).collect() };
    assert_eq!(tasks(&e1), vec![2, 2, 200, 2, 200]);
    assert_eq!(
        tasks(&e2),
        vec![2, 2, 2, 200, 200],
        "by position the DAGs differ"
    );
    let m = import_ok(&[fixture(Q3_E1), fixture(Q3_E2)]);
    let job = only_job(&m);
    assert_eq!(shape(job), shape(only_job(&e1)));
    let apps = &m.jobs[0].source["apps"];
    assert_eq!(
        apps[0]["spark_stage_ids"],
        serde_json::json!([0, 1, 2, 3, 4])
    );
    assert_eq!(
        apps[1]["spark_stage_ids"],
        serde_json::json!([2, 1, 3, 0, 4])
    );
    let e2_stages = &only_job(&e2).stages;
    for (k, &j) in [2usize, 1, 3, 0, 4].iter().enumerate() {
        assert_eq!(job.stages[k].samples[0], only_job(&e1).stages[k].samples[0]);
        assert_eq!(
            job.stages[k].samples[1], e2_stages[j].samples[0],
            "stage {k}"
        );
    }
    // The other way round, the 2-executor run's order is kept.
    let r = import_ok(&[fixture(Q3_E2), fixture(Q3_E1)]);
    assert_eq!(shape(only_job(&r)), shape(only_job(&e2)));
}

#[test]
fn runs_with_the_same_executor_count_pool_their_samples() {
    let dir = tempfile::tempdir().unwrap();
    let copy = edited(dir.path(), "app-copy", Q6_E2, |t| {
        t.replace("app-20261123025635-0000", "app-20261123025635-0001")
    });
    let i = import_ok(&[fixture(Q6_E2), copy]);
    let one = import_ok(&[fixture(Q6_E2)]);
    for (s, o) in only_job(&i).stages.iter().zip(&only_job(&one).stages) {
        assert_eq!(s.samples.len(), 1);
        let (w, v) = (&s.samples[0], &o.samples[0]);
        assert_eq!(
            w.first_wave,
            [v.first_wave.clone(), v.first_wave.clone()].concat()
        );
        assert_eq!(
            w.rest_wave,
            [v.rest_wave.clone(), v.rest_wave.clone()].concat()
        );
        assert_eq!(w.fresh, [v.fresh.clone(), v.fresh.clone()].concat());
        assert_eq!(s.num_tasks, o.num_tasks);
    }
    assert_eq!(i.jobs[0].runs.len(), 2);
}

#[test]
fn different_dags_of_one_group_do_not_merge() {
    let dir = tempfile::tempdir().unwrap();
    // Q1's log relabelled as Q6: same group, another DAG.
    let fake = edited(dir.path(), "q1-as-q6", Q1_ZSTD, |t| {
        t.replace(
            "\"spark.jobGroup.id\":\"q1\"",
            "\"spark.jobGroup.id\":\"q6\"",
        )
    });
    let e = import_err(&[&fixture(Q6_E2), &fake]);
    assert!(e.contains("group \"q6\""), "{e}");
    assert!(e.contains("q1-as-q6"), "{e}");
    assert!(e.contains("q6-sf1-e2-noaqe"), "{e}");
    assert!(e.contains("4 stages against 2"), "{e}");
    // Same stage count, different task count.
    let more = edited(dir.path(), "q6-more-tasks", Q6_E2, |t| {
        t.replace("app-20261123025635-0000", "app-x")
            .replace("\"Number of Tasks\":2,", "\"Number of Tasks\":3,")
    });
    let e = import_err(&[fixture(Q6_E2), more]);
    assert!(
        e.contains("stage 0 (Spark stage 0 / 0) has 3 tasks against 2"),
        "{e}"
    );
    // The same application twice would double its samples.
    let e = import_err(&[fixture(Q6_E2), fixture("sf1")]);
    assert!(
        e.contains("application app-20261123025635-0000 was already read"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Bad input: errors name the file, the line and the field; warnings are counted.

/// Applies `edit` to line `n` (1-based) of Q6's 2-executor log.
fn q6_with_line(dir: &Path, n: usize, edit: impl Fn(&str) -> String) -> PathBuf {
    edited(dir, "q6-bad", Q6_E2, |t| {
        t.lines()
            .enumerate()
            .map(|(i, l)| if i + 1 == n { edit(l) } else { l.to_string() } + "\n")
            .collect()
    })
}

/// The 1-based line number of the first line of `event` with `needle` in Q6's log.
fn q6_line_of(event: &str, needle: &str) -> usize {
    let text = text_of(&fixture(Q6_E2));
    1 + text
        .lines()
        .position(|l| l.contains(&format!("\"Event\":\"{event}\"")) && l.contains(needle))
        .unwrap()
}

#[test]
fn malformed_json_line_is_an_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let n = q6_line_of("SparkListenerTaskEnd", "");
    let p = q6_with_line(dir.path(), n, |l| l[..l.len() / 2].to_string());
    let e = import_err(&[&p]);
    assert!(
        e.starts_with(&format!(
            "{}:{n}: malformed JSON: EOF while parsing",
            p.display()
        )),
        "{e}"
    );
}

#[test]
fn missing_field_is_an_error_naming_event_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let n = q6_line_of("SparkListenerTaskEnd", "");
    let p = q6_with_line(dir.path(), n, |l| {
        let v = l.find("\"Launch Time\"").unwrap();
        let end = v + l[v..].find(',').unwrap() + 1;
        format!("{}{}", &l[..v], &l[end..])
    });
    let e = import_err(&[&p]);
    assert!(
        e.starts_with(&format!(
            "{}:{n}: SparkListenerTaskEnd: field `Task Info`: missing field `Launch Time` (column ",
            p.display()
        )),
        "{e}"
    );
}

#[test]
fn mistyped_field_is_an_error_naming_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let n = q6_line_of("SparkListenerJobStart", "");
    let p = q6_with_line(dir.path(), n, |l| {
        l.replacen("\"Number of Tasks\":2", "\"Number of Tasks\":\"two\"", 1)
    });
    let e = import_err(&[&p]);
    assert!(
        e.starts_with(&format!(
            "{}:{n}: SparkListenerJobStart: field `Stage Infos[0].Number of Tasks`: invalid type: string \"two\", expected u32",
            p.display()
        )),
        "{e}"
    );
}

#[test]
fn task_finishing_before_its_launch_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let n = q6_line_of("SparkListenerTaskEnd", "");
    let p = q6_with_line(dir.path(), n, |l| {
        let v = l.find("\"Finish Time\":").unwrap() + "\"Finish Time\":".len();
        let end = v + l[v..].find(',').unwrap();
        format!("{}1{}", &l[..v], &l[end..])
    });
    let e = import_err(&[&p]);
    assert!(
        e.starts_with(&format!(
            "{}:{n}: SparkListenerTaskEnd: field `Task Info.Finish Time`: finish time 1 is before launch time",
            p.display()
        )),
        "{e}"
    );
}

#[test]
fn line_without_an_event_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = q6_with_line(dir.path(), 3, |_| "{\"Executor ID\":\"0\"}".to_string());
    let e = import_err(&[&p]);
    assert_eq!(
        e,
        format!(
            "{}:3: (unknown event): field `Event`: missing field `Event`: not a Spark event-log line",
            p.display()
        )
    );
    // A trace file is not an event log either.
    let trace = dir.path().join("3.json");
    std::fs::write(&trace, "{\"format\":\"mpda-trace/1\",\"stages\":[]}\n").unwrap();
    let e = import_err(&[trace]);
    assert!(e.ends_with("3.json:1: (unknown event): field `Event`: missing field `Event`: not a Spark event-log line"), "{e}");
}

#[test]
fn truncated_final_line_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = text_of(&fixture(Q6_E2));
    let n = text.lines().count() + 1;
    text.push_str("{\"Event\":\"SparkListenerExecutorRemoved\",\"Timest");
    let p = dir.path().join("q6-cut");
    std::fs::write(&p, text).unwrap();
    let i = import_ok(&[&p]);
    assert_eq!(only_job(&i), only_job(&import_ok(&[fixture(Q6_E2)])));
    assert_eq!(i.warnings.len(), 1, "{:?}", i.warnings);
    let w = i.warnings[0].to_string();
    assert!(
        w.starts_with(&format!(
            "{}:{n}: truncated final line skipped (EOF while parsing",
            p.display()
        )),
        "{w}"
    );
}

#[test]
fn log_cut_inside_a_job_drops_the_group_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let text = text_of(&fixture(Q1_ZSTD));
    // Stop before job 1 ends: an in-progress log.
    let cut: String = text
        .lines()
        .take_while(|l| !l.contains("\"Event\":\"SparkListenerJobEnd\",\"Job ID\":1"))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = dir.path().join("app-20261123025025-0000.inprogress");
    std::fs::write(&p, cut).unwrap();
    let i = import_ok(&[p]);
    assert!(i.jobs.is_empty());
    assert_eq!(i.counts.groups_dropped, 1);
    assert!(
        i.warnings[0]
            .msg
            .contains("group \"q1\" dropped: Spark job 1 never ended"),
        "{:?}",
        i.warnings
    );
}

#[test]
fn unknown_events_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = edited(dir.path(), "q6-extra", Q6_E2, |t| {
        let extra = "{\"Event\":\"com.example.MyListenerEvent\",\"x\":1}\n";
        let sql = "{\"Event\":\"org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionEnd\",\"executionId\":8,\"time\":1}\n";
        format!("{extra}{t}{extra}{sql}")
    });
    let i = import_ok(&[&p]);
    assert_eq!(only_job(&i), only_job(&import_ok(&[fixture(Q6_E2)])));
    assert_eq!(i.warnings.len(), 1, "{:?}", i.warnings);
    assert_eq!(
        i.warnings[0].to_string(),
        format!(
            "{}: skipped 2 event(s) of unknown type \"com.example.MyListenerEvent\"",
            p.display()
        )
    );
}

#[test]
fn truncated_compressed_logs_are_errors_unless_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let raw = std::fs::read(fixture(Q1_ZSTD)).unwrap();
    let p = dir.path().join("app-1.zstd");
    std::fs::write(&p, &raw[..raw.len() / 2]).unwrap();
    let e = import_err(&[&p]);
    assert!(
        e.starts_with(&format!(
            "{}: zstd stream is corrupt or truncated after line",
            p.display()
        )),
        "{e}"
    );
    // The same bytes from a log still being written: what was read is kept, the rest
    // warned about (here the query had not finished, so nothing is imported).
    let q = dir.path().join("app-1.zstd.inprogress");
    std::fs::write(&q, &raw[..raw.len() / 2]).unwrap();
    let i = import_ok(&[q]);
    assert!(i.jobs.is_empty());
    assert!(
        i.warnings
            .iter()
            .any(|w| w.msg.contains("zstd stream is corrupt or truncated")),
        "{:?}",
        i.warnings
    );
    // A damaged lz4 block fails its checksum.
    let text = text_of(&fixture(Q6_E2));
    let mut lz = input::lz4_block_encode(text.as_bytes(), 32 * 1024);
    let mid = lz.len() / 2;
    lz[mid] ^= 0x20;
    let l = dir.path().join("app-2.lz4");
    std::fs::write(&l, lz).unwrap();
    let e = import_err(&[l]);
    assert!(e.contains("lz4 stream is corrupt or truncated"), "{e}");
    assert!(
        e.contains("checksum mismatch") || e.contains("bad LZ4 data"),
        "{e}"
    );
}

#[test]
fn inputs_that_are_not_logs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = import_err(&[dir.path().to_path_buf()]);
    assert!(
        e.ends_with(
            ": no event logs found: expected event-log files or eventlog_v2_<appId>/ folders"
        ),
        "{e}"
    );
    let e = import_err(&[dir.path().join("missing")]);
    assert!(e.contains("missing: cannot read: No such file"), "{e}");
    let snappy = dir.path().join("app-1.snappy");
    std::fs::write(&snappy, b"x").unwrap();
    let e = import_err(&[snappy]);
    assert!(e.contains("the snappy codec is not supported"), "{e}");
    let rolling = dir.path().join("eventlog_v2_app-1");
    std::fs::create_dir(&rolling).unwrap();
    let e = import_err(&[rolling]);
    assert!(
        e.contains("rolling event-log folder without any events_<n>_<appId> part"),
        "{e}"
    );
    let empty = dir.path().join("empty-log");
    std::fs::write(&empty, b"\n\n").unwrap();
    let e = import_err(&[empty]);
    assert!(
        e.ends_with("empty-log: not a Spark event log: no events in it"),
        "{e}"
    );
}

#[test]
fn group_property_decides_the_logical_jobs() {
    // Q1's two Spark jobs share a job group; without it (property not present in the
    // log) each Spark job is its own trace.
    let opts = ImportOptions {
        group_property: "no.such.property".into(),
        ..ImportOptions::new("sf1")
    };
    let i = eventlog::import(&[fixture(Q1_ZSTD)], &opts).unwrap();
    let labels: Vec<&str> = i.jobs.iter().map(|j| j.trace.query.as_str()).collect();
    assert_eq!(labels, vec!["job0", "job1"]);
    assert_eq!(i.jobs[0].trace.stages.len(), 2);
    // Job 1 alone: its skipped stage 2 ran in job 0, so stage 3 has no parent in it.
    assert_eq!(
        shape(&i.jobs[1].trace),
        vec![(Some(3), 200, vec![]), (Some(4), 4, vec![0])]
    );
    assert!(
        i.warnings[0]
            .msg
            .contains("no job has the property no.such.property")
    );
    // Jobs without the property, where others have it, are dropped and counted.
    let dir = tempfile::tempdir().unwrap();
    let p = edited(dir.path(), "q1-one-group", Q1_ZSTD, |t| {
        t.replacen("\"spark.jobGroup.id\":\"q1\",", "", 1)
    });
    let i = import_ok(&[p]);
    assert_eq!(i.counts.jobs_without_group, 1);
    assert_eq!(
        shape(only_job(&i)),
        vec![(Some(3), 200, vec![]), (Some(4), 4, vec![0])]
    );
}

// ---------------------------------------------------------------------------------------
// The command line

fn mpda(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpda"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn cli_import_info_and_check() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let sf1 = fixture("sf1");
    let (code, stdout, stderr) = mpda(&[
        "trace",
        "import",
        sf1.to_str().unwrap(),
        "--out",
        o,
        "--size",
        "sf1",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "imported 3 group(s) from 5 application(s) (Spark 4.3.0): 11 stages, 815 tasks, 1224 task samples"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("1.json: group q1, 4 stages, 406 tasks, executors 2 (1 run(s))"));
    assert!(stdout.contains("3.json: group q3, 5 stages, 406 tasks, executors 1,2 (2 run(s))"));
    assert!(stdout.contains("6.json: group q6, 2 stages, 3 tasks, executors 1,2 (2 run(s))"));
    let job = load_trace_file(&out.path().join("sf1/6.json")).unwrap();
    assert_eq!(job.name, "tpch-sf1-6");

    let (code, stdout, stderr) = mpda(&["trace", "check", o]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("3 jobs (1 sizes x 3 queries), 11 stages, 815 tasks: all valid"),
        "{stdout}"
    );

    let (code, stdout, stderr) = mpda(&["trace", "info", o]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(lines[0].starts_with("size   query"), "{stdout}");
    let q1: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &q1[..8],
        ["sf1", "1", "4", "406", "2", "102.0", "101.5", "200"]
    );
    assert_eq!(q1[11], "2");
    let q6: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(&q6[..4], ["sf1", "6", "2", "3"]);
    assert_eq!(q6[11], "1,2");
    assert!(lines[4].starts_with("total  3 jobs"), "{stdout}");

    let (code, stdout, _) = mpda(&["trace", "info", o, "--markdown"]);
    assert_eq!(code, 0);
    let md: Vec<&str> = stdout.lines().collect();
    assert!(md[0].starts_with("| size"));
    assert!(md[1].starts_with("| :---"));
    assert!(md.iter().all(|l| l.starts_with('|') && l.ends_with('|')));

    // Gzip output replaces the plain files and loads the same.
    let (code, _, stderr) = mpda(&[
        "trace",
        "import",
        sf1.to_str().unwrap(),
        "--out",
        o,
        "--size",
        "sf1",
        "--gzip",
        "--prefix",
        "x",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!out.path().join("sf1/6.json").exists());
    let gz = load_trace_file(&out.path().join("sf1/6.json.gz")).unwrap();
    assert_eq!(gz.name, "x-sf1-6");
    assert_eq!(gz.stages, job.stages);

    // Bad input exits non-zero with the file named.
    let (code, _, stderr) = mpda(&["trace", "import", o, "--out", o, "--size", "sf1"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("error: importing event logs: "), "{stderr}");
    let (code, _, stderr) = mpda(&[
        "trace",
        "import",
        sf1.to_str().unwrap(),
        "--out",
        o,
        "--size",
        "a/b",
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("--size \"a/b\" must be a non-empty label"),
        "{stderr}"
    );
}

#[test]
fn read_stream_is_the_decompressed_text() {
    let (mut s, codec) = input::open(&fixture(Q1_ZSTD)).unwrap();
    assert_eq!(codec, input::Codec::Zstd);
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert_eq!(text, text_of(&fixture(Q1_ZSTD)));
}

#[test]
fn cli_info_reads_decima_traces() {
    let Some(dir) = common::decima_dir("cli_info_reads_decima_traces") else {
        return;
    };
    let (code, stdout, stderr) = mpda(&["trace", "info", dir.to_str().unwrap(), "--markdown"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    // Header, separator, 7 sizes x 22 queries, totals.
    assert_eq!(lines.len(), 2 + 154 + 1, "{stdout}");
    let total: Vec<&str> = lines[156].split('|').map(str::trim).collect();
    assert_eq!(&total[1..5], ["total", "154 jobs", "1414", "177890"]);
    assert_eq!(total[12], "2,5,10,12,13,20,29,30,40,50,58,59,60,80,100");
}

#[test]
fn per_task_fields_come_from_the_log() {
    // Counted from the raw TaskEnd lines, independently of the importer: storage input,
    // output, spill and GC totals, localities, hosts and executors.
    let text = text_of(&fixture(Q1_ZSTD));
    let (mut input, mut output, mut gc, mut spill) = (0u64, 0u64, 0u64, 0u64);
    let (mut localities, mut hosts) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| l.contains("SparkListenerTaskEnd")) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let m = &v["Task Metrics"];
        input += m["Input Metrics"]["Bytes Read"].as_u64().unwrap_or(0);
        output += m["Output Metrics"]["Bytes Written"].as_u64().unwrap_or(0);
        gc += m["JVM GC Time"].as_u64().unwrap_or(0);
        spill += m["Memory Bytes Spilled"].as_u64().unwrap_or(0)
            + m["Disk Bytes Spilled"].as_u64().unwrap_or(0);
        localities.push(v["Task Info"]["Locality"].as_str().unwrap().to_string());
        hosts.push(v["Task Info"]["Host"].as_str().unwrap().to_string());
    }
    assert!(input > 0, "Q1 scans lineitem");
    let i = import_ok(&[fixture(Q1_ZSTD)]);
    let job = only_job(&i);
    let all = |f: &dyn Fn(&mpda::workload::trace::ShuffleStats) -> u64| -> u64 {
        job.stages
            .iter()
            .map(|s| f(s.shuffle.as_ref().unwrap()))
            .sum()
    };
    assert_eq!(all(&|s| s.input_bytes.iter().sum()), input);
    assert_eq!(all(&|s| s.output_bytes.iter().sum()), output);
    assert_eq!(all(&|s| s.gc_ms.iter().sum()), gc);
    assert_eq!(
        all(&|s| s.memory_spill_bytes.iter().chain(&s.disk_spill_bytes).sum()),
        spill
    );
    let mut got_loc: Vec<String> = Vec::new();
    let mut got_hosts: Vec<String> = Vec::new();
    for s in &job.stages {
        let sh = s.shuffle.as_ref().unwrap();
        let n = s.num_tasks as usize;
        for (name, len) in sh.lengths() {
            assert_eq!(len, n, "{name}: one entry per task");
        }
        // The per-task durations are the wave samples, task by task.
        let mut d = sh.duration_ms.clone();
        let mut w = [
            s.samples[0].first_wave.clone(),
            s.samples[0].rest_wave.clone(),
        ]
        .concat();
        d.sort_unstable();
        w.sort_unstable();
        assert_eq!(d, w);
        assert!(sh.executor.iter().all(|e| e == "0" || e == "1"));
        got_loc.extend(sh.locality.iter().cloned());
        got_hosts.extend(sh.host.iter().cloned());
    }
    got_loc.sort();
    localities.sort();
    assert_eq!(got_loc, localities);
    got_hosts.sort();
    hosts.sort();
    assert_eq!(got_hosts, hosts);
    // The scan stage's input reaches Spark's engine as its tasks' data.
    let scan = job.stages[0].shuffle.as_ref().unwrap();
    assert!(scan.input_bytes.iter().all(|&b| b > 0));
}

#[test]
fn peak_execution_memory_is_kept_per_task() {
    // The fixtures were trimmed of `Peak Execution Memory`; give every TaskEnd of Q1 its
    // own value (1 MB + 1000 x its line number) and check that each stage keeps exactly its
    // tasks' values, and that a log without the field imports as zeros.
    let text = text_of(&fixture(Q1_ZSTD));
    let mut expected: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    let mut out = String::new();
    for (k, line) in text.lines().enumerate() {
        if line.contains("SparkListenerTaskEnd") {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            let peak = 1_048_576 + 1000 * k as u64;
            v["Task Metrics"]["Peak Execution Memory"] = peak.into();
            let stage = v["Stage ID"].as_u64().unwrap();
            expected.entry(stage).or_default().push(peak);
            out.push_str(&v.to_string());
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("q1-with-peaks");
    std::fs::write(&log, out).unwrap();
    let i = import_ok(&[&log]);
    let job = only_job(&i);
    let mut seen = 0;
    for st in &job.stages {
        let sh = st.shuffle.as_ref().unwrap();
        let mut want = expected[&st.spark_stage_id.unwrap()].clone();
        let mut got = sh.peak_memory_bytes.clone();
        assert_eq!(got.len(), st.num_tasks as usize);
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "stage {:?}", st.spark_stage_id);
        seen += got.len();
    }
    assert!(seen > 0);
    let plain = import_ok(&[fixture(Q1_ZSTD)]);
    let sh = only_job(&plain).stages[0].shuffle.as_ref().unwrap();
    assert!(sh.peak_memory_bytes.iter().all(|&b| b == 0));
}
