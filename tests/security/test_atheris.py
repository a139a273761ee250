"""Coverage-guided fuzzing (atheris/libFuzzer) of the EncryptedCredential, bundle and syslog
line parsers.

Each target (tests/security/fuzz_targets.py) runs in its own process for
``scaled(5, 120)`` seconds from a seed corpus of valid inputs.  A target lets
any exception but the documented one escape, which libFuzzer reports as a
crash: the test then fails with the crashing input saved beside the corpus.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.security.fuzz_targets import TARGETS, write_seeds
from tests.security.scale import scaled

pytest.importorskip("atheris")

REPO = Path(__file__).resolve().parents[2]
SECONDS = scaled(5, 120)
_DONE = re.compile(r"^Done (\d+) runs in", re.MULTILINE)
_CRASH = re.compile(r"^(==\d+== ERROR: libFuzzer|=== Uncaught Python exception)", re.MULTILINE)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("atheris")
    write_seeds(directory)
    return directory


def fuzz(directory: Path, target: str, *flags: str) -> subprocess.CompletedProcess[str]:
    artifacts = directory / f"{target}-artifacts"
    artifacts.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "tests.security.fuzz_targets", target, str(directory)]
    return subprocess.run(
        [*command, f"-artifact_prefix={artifacts}/", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SECONDS + 180,
        check=False,
    )


@pytest.mark.parametrize("target", TARGETS)
def test_the_fuzz_target_finds_no_crash(
    seeded: Path, target: str, record_property: Callable[[str, object], None]
) -> None:
    run = fuzz(seeded, target, f"-max_total_time={SECONDS}")
    done = _DONE.search(run.stderr)
    crashes = len(_CRASH.findall(run.stderr))
    record_property("cases", int(done.group(1)) if done else 0)
    record_property("crashes", crashes)
    crashing = sorted(p.name for p in (seeded / f"{target}-artifacts").iterdir())
    assert run.returncode == 0 and crashes == 0, f"{crashing}\n{run.stderr[-4000:]}"
    assert done is not None and int(done.group(1)) > 0, run.stderr[-2000:]
    assert "INFO: Instrumenting vault" in run.stderr  # coverage guidance is on


def test_a_target_reports_an_undocumented_exception_as_a_crash(seeded: Path) -> None:
    """The harness can fail: a target that tolerates no exception at all, fed a
    seed ``read_header`` refuses, is reported as one crash and a non-zero exit."""
    corpus = seeded / "crash-probe"
    corpus.mkdir(exist_ok=True)
    (corpus / "not-a-bundle").write_bytes(b"GWVAULT-RECOVERY-BUNDLE\n\xff\xff\xff\xff")
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            _STRICT_BUNDLE,
            str(corpus),
            "-atheris_runs=10",
            f"-artifact_prefix={seeded}/",  # libFuzzer writes crash-<sha1> here, not in the repo
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode != 0 and len(_CRASH.findall(run.stderr)) == 1, run.stderr[-2000:]


# The bundle target without its ``except InvalidInputError``: every refusal is a crash.
_STRICT_BUNDLE = """
import sys, atheris
with atheris.instrument_imports(include=["vault"]):
    from vault.format.recovery_bundle import read_header
atheris.Setup([sys.argv[0], *sys.argv[2:], sys.argv[1]], lambda data: read_header(data))
atheris.Fuzz()
"""
