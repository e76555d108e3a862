"""The JVM's start-up notice and internal warnings go to the Spark log file, not the user's console."""

from __future__ import annotations

import os
import subprocess
import sys


def test_jvm_notices_go_to_the_log_file_not_the_console(tmp_path):
    env = {**os.environ, "REDCLOUD_PATHS__RUN_DIR": str(tmp_path)}
    code = ("from redcloud.spark import get_spark, stop_spark\n"
            "s = get_spark()\n"
            "print(s.range(3).count())\n"
            "stop_spark()\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "3"
    log = (tmp_path / "logs" / "spark-jvm.log").read_text()
    assert "incubator" in log                       # the JVM did print its notice ...
    assert "incubator" not in r.stderr, r.stderr   # ... but not on the console
