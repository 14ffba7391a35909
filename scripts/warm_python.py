"""Run a command whose `python -m <module>` processes start warm: TensorFlow already imported.

    python scripts/warm_python.py dvc repro        # what `make quick-look` runs

Every stage of the quick look is a `python -m stages.<name>` process, and each one spent
3.4-3.7 s importing TensorFlow, Keras and scikit-learn before any work (51 of them: about 3 of
the quick look's 9 minutes). Here one server process imports them once; the command runs with a
`python` first on its PATH that hands `-m <module> args` to the server, which forks a child for
it. The child takes over the caller's standard streams, working directory and environment,
imports the project's own code fresh (the server imports none of it, so DVC's deps stay the
whole truth) and runs the module as `python -m` would; its exit code, or the signal that ended
it, becomes the caller's. Ctrl-C and kill are passed on to the child.

Any other `python` call (`-c`, a script, options), a call while the server is not up, or an
environment that differs in what TensorFlow and Keras read when imported, runs the real
`python` as usual. Forking is safe here because the server only imports: TensorFlow's runtime
and its thread pools start with the first op, in the child (onnxruntime, which starts a thread
when imported, is left to the children). Linux only (macOS frameworks are not fork-safe):
elsewhere the command runs as given.
"""

import atexit
import gc
import io
import json
import os
import runpy
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

SOCKET_VARIABLE = "CNNLAB_WARM_PYTHON_SOCKET"
REAL_PYTHON_VARIABLE = "CNNLAB_WARM_PYTHON_REAL"
# What the stage processes import: TensorFlow and Keras (with scikit-learn), matplotlib, the
# exporters (LiteRT, tf2onnx), dvclive with the DVC and Git code it calls on.
WARM_IMPORTS = (
    *("tensorflow", "keras", "sklearn.metrics", "matplotlib.figure", "matplotlib.backends.backend_agg"),
    *("pandas", "yaml", "PIL.Image", "PIL.JpegImagePlugin", "PIL.PngImagePlugin"),
    *("dvclive", "dvclive.keras", "dvc.repo", "scmrepo.git"),
    *("tf2onnx", "ai_edge_litert.interpreter"),
)
IMPORT_TIME_PREFIXES = ("TF_", "KERAS_", "CUDA_", "PYTHON")
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
HEADER = struct.Struct("!I")  # payload length, then the child's pid, then its wait status
ENDED_UNKNOWN = 1 << 8  # wait status "exit code 1": the server went away while the child ran


def import_time_environment(environ):
    return {key: value for key, value in environ.items() if key.startswith(IMPORT_TIME_PREFIXES)}


# ---- the command side: start the server, put the `python` shim first on PATH, run, stop ----


def real_python(path):
    """The interpreter `python` on `path` runs (through pyenv's or a venv's shims), or this one."""
    found = shutil.which("python", path=path)
    if found is None:
        return sys.executable
    result = subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else sys.executable


def write_shim(directory, python):
    shim = os.path.join(directory, "python")
    with open(shim, "w", encoding="utf-8") as file:
        file.write(f'#!/bin/sh\nexec "{python}" "{os.path.abspath(__file__)}" --client "$@"\n')
    os.chmod(shim, 0o755)


def run_command(command, imports=WARM_IMPORTS):
    """Run `command` with `python -m` starts warm with `imports`; its exit code."""
    if sys.platform != "linux":
        return subprocess.run(command).returncode
    python = real_python(os.environ.get("PATH"))
    with tempfile.TemporaryDirectory(prefix="warm-python-") as directory:
        address = os.path.join(directory, "server")
        server = subprocess.Popen(
            [python, os.path.abspath(__file__), "--serve", address, *imports], start_new_session=True
        )
        try:
            wait_for(address, server)
            write_shim(directory, python)
            environ = dict(os.environ, PATH=directory + os.pathsep + os.environ.get("PATH", ""))
            environ.update({SOCKET_VARIABLE: address, REAL_PYTHON_VARIABLE: python})
            with subprocess.Popen(command, env=environ) as process:
                try:
                    return process.wait()
                except KeyboardInterrupt:  # the terminal sent SIGINT to the command too
                    return process.wait()
        finally:
            server.terminate()
            server.wait()


def wait_for(address, server, seconds=30):
    """Until the server listens at `address` (or has died: then every call runs cold)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(address) and server.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


# ---- the shim's side: hand argv, cwd, environment and streams to the server ----


def client(args):
    """`python args` through the server when it can take them; else the real interpreter."""
    python = os.environ.get(REAL_PYTHON_VARIABLE, sys.executable)
    address = os.environ.get(SOCKET_VARIABLE)
    if address and len(args) >= 2 and args[0] == "-m":
        status = run_in_server(address, args)
        if status is not None:
            exit_like(status)
    os.execv(python, [python, *args])


def run_in_server(address, args):
    """The child's wait status, or None when the server did not start one (run it cold)."""
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(address)
    except OSError:
        return None
    child, pending = {}, []

    def forward(number, frame):  # to the child once it exists; until then, kept
        if child:
            os.kill(child["pid"], number)
        else:
            pending.append(number)

    for number in FORWARDED_SIGNALS:
        signal.signal(number, forward)
    with connection:
        payload = json.dumps({"args": args, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(connection, [HEADER.pack(len(payload))], [0, 1, 2])
        connection.sendall(payload)
        pid = receive_number(connection)
        if pid is None:  # the server declined or died before forking
            return pending[0] if pending else None  # a wait status: killed by that signal
        child["pid"] = pid
        for number in pending:
            os.kill(pid, number)
        status = receive_number(connection)
    return ENDED_UNKNOWN if status is None else status


def receive_number(connection):
    data = receive_exactly(connection, HEADER.size)
    return None if data is None else HEADER.unpack(data)[0]


def receive_exactly(connection, size):
    """`size` bytes from the stream, or None if it ends first."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def exit_like(status):
    """End this process as the child ended: same exit code, or killed by the same signal."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        die_of(-code)
    sys.exit(code)


def die_of(number):
    """End this process by signal `number`, as an uncaught Ctrl-C ends Python."""
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)


# ---- the server: import once, fork a child per request ----


def serve(address, imports):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address + ".binding")
    listener.listen(8)
    os.rename(address + ".binding", address)  # listening before the imports: a request waits for them
    imported_environment = import_time_environment(os.environ)
    # TensorFlow reads its C++ log level once, on import; every stage sets this before importing
    # it (stages/__init__.py), so that its children print what the stages print.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import_quietly(imports)
    # Out of the collector's sight: a child's collections then skip the imported objects (the
    # whole old generation), and leave their memory pages shared with this process.
    gc.freeze()
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda number, frame: None)
    waiting = {}
    while True:
        ready, _, _ = select.select([listener, wakeup_read], [], [])
        if wakeup_read in ready:
            os.read(wakeup_read, 512)
            report_ended_children(waiting)
        if listener in ready:
            connection, _ = listener.accept()
            request, fds = receive_request(connection)
            if request is None or import_time_environment(request["env"]) != imported_environment:
                close_all(fds)
                connection.close()  # no pid: the caller runs the real interpreter instead
                continue
            pid = os.fork()
            if pid == 0:
                os.close(wakeup_read)
                os.close(wakeup_write)
                listener.close()
                close_all(other.detach() for other in waiting.values())
                run_child(request, fds, connection)
            close_all(fds)
            connection.sendall(HEADER.pack(pid))
            waiting[pid] = connection


def import_quietly(modules):
    """Import `modules` with stderr (TensorFlow's C++ start-up lines) hidden. One that is not
    installed is left out: a child imports it, or fails, as a cold start would."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            for module in modules:
                try:
                    __import__(module)
                except ImportError:
                    pass
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def receive_request(connection):
    message, fds, _, _ = socket.recv_fds(connection, HEADER.size, 3)
    if len(message) < HEADER.size or len(fds) != 3:
        return None, fds
    payload = receive_exactly(connection, HEADER.unpack(message)[0])
    return (None if payload is None else json.loads(payload)), fds


def report_ended_children(waiting):
    while waiting:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        connection = waiting.pop(pid, None)
        if connection is not None:
            try:
                connection.sendall(HEADER.pack(status))
            except OSError:
                pass  # the caller is gone
            connection.close()


def close_all(fds):
    for fd in fds:
        os.close(fd)


def run_child(request, fds, connection):
    """In the forked child: become `python -m module args` as the caller would have run it."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    connection.close()  # the server's copy reports the exit; this one would hold the caller open
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    close_all(fds)
    reopen_standard_streams(request["env"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = request["cwd"]
    module, *arguments = request["args"][1:]
    sys.argv = ["-m", *arguments]
    os._exit(run_module(module))


def reopen_standard_streams(environ):
    """Standard streams over the caller's descriptors, buffered as Python would buffer them there."""
    unbuffered = bool(environ.get("PYTHONUNBUFFERED"))
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        binary = open(fd, "rb" if fd == 0 else "wb", closefd=False)
        stream = io.TextIOWrapper(
            binary,
            encoding=getattr(sys, name).encoding,
            errors="backslashreplace" if fd == 2 else None,
            line_buffering=fd == 2 or (fd == 1 and os.isatty(1)),
            write_through=unbuffered,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def run_module(module):
    """Run `module` as __main__; the exit code `python -m module` would end with."""
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_request:
        code = exit_code(exit_request.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if code < 0:
        die_of(-code)
    return code


def exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def main(argv):
    if argv[:1] == ["--client"]:
        client(argv[1:])
    elif argv[:1] == ["--serve"]:
        serve(argv[1], argv[2:])
    elif argv:
        sys.exit(run_command(argv))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
