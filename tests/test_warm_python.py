"""scripts/warm_python.py: `python -m` calls in a command run in children of a warm server, and
behave as the real interpreter's would (arguments, directory, environment, streams, exit code,
Ctrl-C); everything else runs the real interpreter."""

import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the warm server forks: Linux only")

# A module the server imports and a fresh `python` does not: shows which one ran the call.
WARM_MARKER = "xml.dom.minidom"

PROBE = f"""
    import os, sys
    print("argv", sys.argv[1:], "cwd", os.getcwd(), "X", os.environ.get("X"))
    print("warm" if {WARM_MARKER!r} in sys.modules else "cold")
    print("to stderr", file=sys.stderr)
    if sys.argv[1:2] == ["fail"]:
        raise RuntimeError("probe failed")
    sys.exit(int(sys.argv[1]) if sys.argv[1:] else 0)
"""

SLEEPER = """
    import pathlib, time
    try:
        print("sleeping", flush=True)
        time.sleep(30)
    finally:
        pathlib.Path("interrupted").write_text("cleaned up")
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE))
    (tmp_path / "sleeper.py").write_text(textwrap.dedent(SLEEPER))
    return tmp_path


def run_warm(project, script, **kwargs):
    """`sh -c script` under warm_python (its server importing only WARM_MARKER): (code, stdout, stderr)."""
    code = f"""
import sys
sys.path.insert(0, {str(REPO / "scripts")!r})
import warm_python
sys.exit(warm_python.run_command(["sh", "-c", {script!r}], imports=[{WARM_MARKER!r}]))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=60, **kwargs
    )
    return result.returncode, result.stdout, result.stderr


def test_module_call_runs_warm_with_the_callers_arguments_directory_environment_and_streams(project):
    (project / "sub").mkdir()
    (project / "sub" / "probe.py").write_text(textwrap.dedent(PROBE))
    script = "cd sub && X=7 python -m probe 3 >out 2>err; echo code $?"
    code, stdout, _ = run_warm(project, script)
    assert (code, stdout) == (0, "code 3\n")
    assert (project / "sub" / "out").read_text() == f"argv ['3'] cwd {project / 'sub'} X 7\nwarm\n"
    assert (project / "sub" / "err").read_text() == "to stderr\n"


def test_the_commands_exit_code_is_returned(project):
    assert run_warm(project, "python -m probe 0 && exit 4")[0] == 4


def test_an_uncaught_exception_prints_its_traceback_and_exits_1(project):
    code, stdout, stderr = run_warm(project, "python -m probe fail; echo code $?")
    assert stdout.endswith("warm\ncode 1\n")
    assert "RuntimeError: probe failed" in stderr and "Traceback" in stderr


def test_other_calls_run_the_real_interpreter(project):
    code, stdout, _ = run_warm(project, f"python -c \"import sys; print('{WARM_MARKER}' in sys.modules)\"; echo $?")
    assert stdout == "False\n0\n"


def test_without_the_server_a_module_call_runs_cold(project):
    script = "CNNLAB_WARM_PYTHON_SOCKET=/nonexistent/server python -m probe 5; echo code $?"
    assert run_warm(project, script)[1].endswith("cold\ncode 5\n")


def test_an_environment_tensorflow_would_read_differently_runs_cold(project):
    assert run_warm(project, "TF_CPP_MIN_LOG_LEVEL=0 python -m probe")[1].endswith("cold\n")


def test_ctrl_c_reaches_the_child_which_cleans_up_and_dies_of_it(project):
    script = (
        "python -m sleeper > slept & pid=$!; "
        "until grep -q sleeping slept 2>/dev/null; do sleep 0.1; done; "
        "kill -INT $pid; wait $pid; echo code $?"
    )
    code, stdout, stderr = run_warm(project, script)
    assert stdout == "code 130\n"  # the shell's way of saying "ended by SIGINT"
    assert (project / "interrupted").read_text() == "cleaned up"
    assert "KeyboardInterrupt" in stderr
