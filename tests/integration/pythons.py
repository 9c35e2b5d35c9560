# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The CPython interpreters the integration tests run hangtrace against.

Three sources, each interpreter verified by running it once (cached for the
life of the process):

- pyenv: ``<pyenv root>/versions/3.*/bin/python3``; the pyenv root is
  ``$PYENV_ROOT``, else ``~/.pyenv``, else what ``pyenv root`` prints.  A minor
  series of EXPECTED_PYENV with no version installed is reported skipped, as is
  any non-3.x version directory (e.g. 2.7.18: "unsupported").
- debian: ``/usr/bin/python3.11``, the system's own.
- sid: the launchers ``tests/fetch-pythons.sh`` writes to
  ``${HANGTRACE_PYCACHE:-~/.cache/hangtrace/pythons}/bin/python3.X`` for the
  versions in ``$HANGTRACE_SID_VERSIONS`` (default 3.13 3.14 3.15).  Those run
  Debian unstable's python through its own ld.so: /proc/PID/exe of the process
  is the loader, not python.

Use::

    from pythons import interpreters, ids
    @pytest.mark.parametrize("py", interpreters(), ids=ids)
    def test_x(py):
        subprocess.run(py.argv + ["script.py"])

``skipped()`` lists (label, reason) for the expected interpreters that are
absent or broken, for a test to report.  Run this file to print both lists.
"""

import dataclasses
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys

__all__ = ["Interpreter", "interpreters", "skipped", "ids", "sid_cache"]

# Minor series expected under pyenv (one version each is enough).
EXPECTED_PYENV = ("3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
DEBIAN_PYTHON = "/usr/bin/python3.11"
DEFAULT_SID_VERSIONS = ("3.13", "3.14", "3.15")
PROBE_TIMEOUT = 60  # seconds; a cold start of a big stdlib can be slow

# Runs on every interpreter, 3.6 and up: no f-strings beyond 3.6, no walrus.
_PROBE = (
    "import sys, json; "
    "print(json.dumps({'version': list(sys.version_info[:5]), "
    "'hexversion': sys.hexversion, 'implementation': sys.implementation.name, "
    "'executable': sys.executable}))"
)
_KIND_ORDER = {"pyenv": 0, "debian": 1, "sid": 2}
_LEVELS = {"alpha": "a", "beta": "b", "candidate": "rc", "final": ""}


@dataclasses.dataclass
class Interpreter:
    """One verified interpreter."""

    label: str  # "pyenv-3.12.1", "debian-3.11.2", "sid-3.14.10": a test id
    kind: str  # "pyenv", "debian" or "sid"
    argv: list  # command prefix: argv + ["script.py", ...] runs a script
    version: tuple  # sys.version_info[:3] as reported by running it
    hexversion: int  # sys.hexversion
    release: str = ""  # "3.14.10", "3.15.0rc1"
    executable: str = ""  # sys.executable as the interpreter sees it

    @property
    def minor(self):
        """ "3.14" """
        return "%d.%d" % self.version[:2]

    @property
    def via_loader(self):
        """True when the process's /proc/PID/exe is ld.so, not python."""
        return self.kind == "sid"

    def cmd(self, *args):
        """argv + args, as a new list."""
        return list(self.argv) + [str(a) for a in args]

    def __str__(self):
        return self.label


def ids(value):
    """For ``pytest.mark.parametrize(..., ids=ids)``: the label of an
    Interpreter, pytest's default id for anything else."""
    if isinstance(value, Interpreter):
        return value.label
    return None


def interpreters():
    """Every working interpreter, oldest version first."""
    return list(_discover()[0])


def skipped():
    """(label, reason) for each expected interpreter that is absent or
    broken, and for pyenv versions hangtrace does not support."""
    return list(_discover()[1])


def sid_cache():
    """The directory tests/fetch-pythons.sh fills."""
    env = os.environ.get("HANGTRACE_PYCACHE")
    if env:
        return os.path.abspath(env)
    return os.path.join(os.path.expanduser("~"), ".cache", "hangtrace", "pythons")


def _sid_versions():
    env = os.environ.get("HANGTRACE_SID_VERSIONS")
    return tuple(env.split()) if env and env.strip() else DEFAULT_SID_VERSIONS


def _pyenv_root():
    env = os.environ.get("PYENV_ROOT")
    if env and os.path.isdir(env):
        return env
    home = os.path.join(os.path.expanduser("~"), ".pyenv")
    if os.path.isdir(home):
        return home
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run(
                [exe, "root"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        if out and os.path.isdir(out):
            return out
    return None


def _probe_env():
    # The test runner's PYTHONHOME/PYTHONPATH etc. are meant for it, not for
    # interpreters of other versions.
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def _probe(argv):
    """Run the interpreter once: (info dict, None) or (None, reason)."""
    try:
        proc = subprocess.run(
            list(argv) + ["-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            env=_probe_env(),
            cwd="/",
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s running it" % PROBE_TIMEOUT
    except OSError as e:
        return None, "cannot run it: %s" % e
    if proc.returncode != 0:
        lines = [l for l in (proc.stderr or proc.stdout).splitlines() if l.strip()]
        last = lines[-1].strip() if lines else "no output"
        return None, "fails to run (exit status %d): %s" % (proc.returncode, last)
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, "unexpected output: %r" % proc.stdout[-200:]
    if info.get("implementation") != "cpython":
        return None, "unsupported: not CPython (%s)" % info.get("implementation")
    return info, None


def _release(vi):
    major, minor, micro, level, serial = vi
    tail = _LEVELS.get(level, level) + (str(serial) if level != "final" else "")
    return "%d.%d.%d%s" % (major, minor, micro, tail)


def _make(kind, label, argv, info):
    return Interpreter(
        label=label,
        kind=kind,
        argv=list(argv),
        version=tuple(info["version"][:3]),
        hexversion=info["hexversion"],
        release=_release(info["version"]),
        executable=info.get("executable") or "",
    )


def _sid_stamp_notes():
    """From fetch-pythons.sh's stamp: {"3.15": "reason"} for versions it could
    not get or found broken."""
    notes = {}
    try:
        with open(os.path.join(sid_cache(), "stamp")) as f:
            for line in f:
                words = line.split()
                if len(words) >= 2 and words[0] in ("missing", "broken"):
                    v = words[1].replace("python", "", 1)
                    if words[0] == "missing":
                        notes[v] = "Debian sid had no installable python%s" % v
                    else:
                        notes[v] = "python%s %s fetched but failed its smoke test" % (
                            v,
                            " ".join(words[2:]),
                        )
    except OSError:
        pass
    return notes


def _pyenv(found, skips):
    root = _pyenv_root()
    if root is None:
        for minor in EXPECTED_PYENV:
            skips.append(("pyenv-" + minor, "pyenv not found (PYENV_ROOT, ~/.pyenv, `pyenv root`)"))
        return
    seen = set()
    for d in sorted(glob.glob(os.path.join(root, "versions", "*"))):
        name = os.path.basename(d)
        label = "pyenv-" + name
        if not os.path.isdir(d):
            continue
        if not name.startswith("3."):
            skips.append((label, "unsupported: hangtrace traces CPython 3.x only"))
            continue
        exe = os.path.join(d, "bin", "python3")
        if not os.access(exe, os.X_OK):
            skips.append((label, "no executable %s" % exe))
            continue
        info, why = _probe([exe])
        if why:
            skips.append((label, "%s: %s" % (exe, why)))
            continue
        got = "%d.%d" % tuple(info["version"][:2])
        named = re.match(r"3\.\d+", name)
        if named is None or named.group(0) != got:
            skips.append((label, "%s runs Python %s, not %s" % (exe, _release(info["version"]), name)))
            continue
        found.append(_make("pyenv", label, [exe], info))
        seen.add(got)
    for minor in EXPECTED_PYENV:
        if minor not in seen:
            skips.append(("pyenv-" + minor, "no working pyenv python %s under %s/versions" % (minor, root)))


def _debian(found, skips):
    exe = DEBIAN_PYTHON
    want = os.path.basename(exe).replace("python", "")
    if not os.access(exe, os.X_OK):
        skips.append(("debian-" + want, "%s not found" % exe))
        return
    info, why = _probe([exe])
    if why:
        skips.append(("debian-" + want, "%s: %s" % (exe, why)))
        return
    found.append(_make("debian", "debian-" + _release(info["version"]), [exe], info))


def _sid(found, skips):
    bindir = os.path.join(sid_cache(), "bin")
    notes = _sid_stamp_notes()
    for v in _sid_versions():
        launcher = os.path.join(bindir, "python" + v)
        if not os.access(launcher, os.X_OK):
            why = notes.get(v) or "no launcher %s (run tests/fetch-pythons.sh)" % launcher
            skips.append(("sid-" + v, why))
            continue
        info, why = _probe([launcher])
        if why:
            skips.append(("sid-" + v, "%s: %s" % (launcher, why)))
            continue
        got = "%d.%d" % tuple(info["version"][:2])
        if got != v:
            skips.append(("sid-" + v, "%s runs Python %s, not %s" % (launcher, got, v)))
            continue
        found.append(_make("sid", "sid-" + _release(info["version"]), [launcher], info))


@functools.lru_cache(maxsize=None)
def _discover():
    found, skips = [], []
    _pyenv(found, skips)
    _debian(found, skips)
    _sid(found, skips)
    found.sort(key=lambda i: (i.version, _KIND_ORDER[i.kind], i.label))
    return tuple(found), tuple(skips)


def _main():
    for i in interpreters():
        print("%-16s %-8s 0x%08x %s" % (i.label, i.release, i.hexversion, " ".join(i.argv)))
    for label, reason in skipped():
        print("%-16s skipped: %s" % (label, reason))
    return 0 if interpreters() else 1


if __name__ == "__main__":
    sys.exit(_main())
