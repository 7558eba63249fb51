"""The benchmark entry point keeps working (its figures are read by people, not asserted here)."""

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_writes_its_table(tmp_path):
    out = tmp_path / "bench.csv"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--csv", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1] == "measure,value,unit,target"
    rows = list(csv.reader(lines[2:]))
    measures = {row[0] for row in rows}
    assert {"simpy raw timeout rate (median)", "model rate / simpy rate (median of adjacent pairs)",
            "simpy rate, loop written out as the model's (median)", "model rate / that rate (median of adjacent pairs)",
            "sweep speed-up, 2 workers / 1 (median of adjacent pairs)"} <= measures
    for row in rows:
        assert float(row[1]) > 0
