"""The render benchmark still runs (its figures are read by people, never asserted)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_render_benchmark_runs_and_prints_its_figures():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "render.py"), "--renders", "30", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == [
        "journeyline render path",
        "raw Jinja render",
        "time ratio ours/raw",
    ]
