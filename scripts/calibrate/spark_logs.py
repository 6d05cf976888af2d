"""Reading Spark event logs in the calibration scripts (standard library only)."""
import subprocess
from pathlib import Path


def lines_of(path):
    """The event log lines of one application: a plain file, or a rolling (v2) folder of
    parts; each plain or zstd-compressed (Spark 4's default; decompressed with the zstd
    command)."""
    p = Path(path)
    parts = sorted(p.glob("events_*"), key=lambda x: int(x.name.split("_")[1])) if p.is_dir() else [p]
    for part in parts:
        if part.suffix == ".zstd":
            text = subprocess.run(["zstd", "-dc", str(part)], capture_output=True, check=True).stdout
            yield from text.decode().splitlines()
        else:
            yield from part.read_text().splitlines()
