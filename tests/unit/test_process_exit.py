"""The process ends as soon as the command is done: ``run()`` (the console script and
``python -m archiver``) leaves without Python's teardown, which only frees objects one by
one; exit handlers still run, the standard streams are flushed, and threads still
running are waited for as the ordinary exit waits for them."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, SAMPLES

PRELUDE = """
import atexit, sys, threading, time
from archiver.cli.main import run

class Noisy:
    def __del__(self):
        print("torn down", flush=True)

kept = Noisy()  # freed by the teardown, if there is one
atexit.register(lambda: print("handler ran", flush=True))
"""


def python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + script, *args], capture_output=True, text=True, cwd=ROOT
    )


def test_the_exit_skips_the_teardown_but_runs_the_handlers() -> None:
    done = python(
        "sys.argv[0] = 'archiver'; run()", "ls", "--json", str(SAMPLES / "bundle.tar.zst")
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "handler ran" in lines and "torn down" not in lines
    listed = json.loads("\n".join(line for line in lines if line != "handler ran"))
    assert listed  # every row written: stdout flushed before the exit


def test_an_error_keeps_its_exit_code_and_its_line() -> None:
    done = python("run()", "ls", str(ROOT / "no-such.tar"))
    assert done.returncode == 4
    assert done.stderr.startswith("Error: ") and "no-such.tar" in done.stderr


def test_a_thread_still_running_is_waited_for() -> None:
    script = (
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done', flush=True)))"
        ".start()\nrun()"
    )
    done = python(script, "--version")
    assert done.returncode == 0
    assert "thread done" in done.stdout.splitlines()
