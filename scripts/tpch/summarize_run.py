#!/usr/bin/env python3
"""Summarise a run directory written by run_tpch.py (plain Python, no dependencies).

Per query: Spark jobs (and how many carry the q<N> job group), stages run / skipped, tasks,
sum of task durations (Finish - Launch), executors seen, and each executor's first task
duration (the "fresh executor" task). Reads plain, .zstd (zstd frame format, via the zstd
CLI), .lz4 and rolling (eventlog_v2_*) logs. Note: Spark's lz4 event logs are NOT lz4 frame
format (the `lz4` CLI rejects them) but lz4-java's LZ4BlockOutputStream format, decoded here.

Usage: summarize_run.py RUN_DIR [--json OUT.json]
"""
import glob
import json
import os
import subprocess
import sys


def _lz4_block(src):
    """Decompress one raw LZ4 block."""
    dst, i, n = bytearray(), 0, len(src)
    while i < n:
        tok = src[i]; i += 1
        lit = tok >> 4
        if lit == 15:
            while True:
                b = src[i]; i += 1; lit += b
                if b != 255:
                    break
        dst += src[i:i + lit]; i += lit
        if i >= n:
            break
        off = src[i] | (src[i + 1] << 8); i += 2
        ml = tok & 15
        if ml == 15:
            while True:
                b = src[i]; i += 1; ml += b
                if b != 255:
                    break
        ml += 4
        start = len(dst) - off
        for k in range(ml):
            dst.append(dst[start + k])
    return bytes(dst)


def lz4_java_block_stream(data):
    """Decode lz4-java LZ4BlockOutputStream (what Spark's lz4 codec writes): repeated blocks of
    magic 'LZ4Block', 1 byte method|level (0x10 raw, 0x20 LZ4), int32 LE compressed length,
    int32 LE decompressed length, int32 LE checksum (xxhash32, not verified here), payload."""
    out, i = bytearray(), 0
    while i < len(data):
        if data[i:i + 8] != b"LZ4Block":
            raise ValueError(f"bad LZ4Block magic at offset {i}")
        method = data[i + 8] & 0xF0
        clen = int.from_bytes(data[i + 9:i + 13], "little")
        dlen = int.from_bytes(data[i + 13:i + 17], "little")
        payload = data[i + 21:i + 21 + clen]
        i += 21 + clen
        if dlen == 0:
            continue  # end-of-stream marker block
        block = payload if method == 0x10 else _lz4_block(payload)
        if len(block) != dlen:
            raise ValueError("LZ4Block length mismatch")
        out += block
    return bytes(out)


def read_lines(path):
    files = sorted(glob.glob(os.path.join(path, "events_*"))) if os.path.isdir(path) else [path]
    for f in files:
        if f.endswith(".zstd") or f.endswith(".zst"):
            data = subprocess.run(["zstd", "-dc", f], capture_output=True, check=True).stdout
        elif f.endswith(".lz4"):
            with open(f, "rb") as fh:
                data = lz4_java_block_stream(fh.read())
        else:
            with open(f, "rb") as fh:
                data = fh.read()
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def summarize(path, group):
    jobs, tagged, stages_listed, submitted, tasks = 0, 0, set(), set(), []
    for e in read_lines(path):
        ev = e["Event"]
        if ev == "SparkListenerJobStart":
            jobs += 1
            if (e.get("Properties") or {}).get("spark.jobGroup.id") == group:
                tagged += 1
            stages_listed.update(e["Stage IDs"])
        elif ev == "SparkListenerStageSubmitted":
            submitted.add(e["Stage Info"]["Stage ID"])
        elif ev == "SparkListenerTaskEnd":
            ti = e["Task Info"]
            tasks.append((ti["Launch Time"], ti["Finish Time"], ti["Executor ID"]))
    tasks.sort()
    first = {}
    for lt, ft, ex in tasks:
        first.setdefault(ex, ft - lt)
    return {
        "jobs": jobs, "jobs_in_group": tagged,
        "stages_run": len(submitted), "stages_skipped": len(stages_listed - submitted),
        "tasks": len(tasks), "task_time_s": round(sum(f - l for l, f, _ in tasks) / 1000, 1),
        "executors": sorted(first), "first_task_ms": first,
    }


def main():
    run = sys.argv[1]
    m = json.load(open(os.path.join(run, "runs.json")))
    out = {}
    print(f"{m['run']}: {m['master']} sf {m['sf_text']} aqe {m['aqe']} spark {m['spark_version']}")
    print("query  app_s  query_s  jobs(grp)  stages run/skip  tasks  task_s  first task ms per executor")
    for q in m["queries"]:
        if q.get("status") != "ok":
            print(f"{q['query']:<5} {q['status']}")
            continue
        s = summarize(q["event_log"], q["query"])
        out[q["query"]] = dict(s, app_wall_s=q["app_wall_s"], query_wall_s=q["query_wall_s"], rows=q["rows"])
        print(f"{q['query']:<5} {q['app_wall_s']:6.1f} {q['query_wall_s']:7.1f}  {s['jobs']:3d}({s['jobs_in_group']:d})"
              f"      {s['stages_run']:3d}/{s['stages_skipped']:<3d}     {s['tasks']:5d} {s['task_time_s']:7.1f}  "
              f"{s['first_task_ms']}")
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
