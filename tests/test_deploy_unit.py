"""deploy/gwvault.service: every hardening directive issue 19 asks for, checked
line by line; systemd's own tools (``systemd-analyze verify`` and ``security``,
``systemd-sysusers``) where they are installed; the README's copy identical; and,
on a machine whose PID 1 is systemd with GWVAULT_SYSTEMD_TESTS=1, the unit
started for real.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service_fixtures import free_tcp_port, require_service
from tests.vault.cli.gwvault_process import GWVAULT

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "gwvault.service"
SYSUSERS = ROOT / "deploy" / "gwvault.sysusers"
INSTALLED_GWVAULT = "/opt/gwvault/.venv/bin/gwvault"
DATA_DIR = "/var/lib/gwvault"

# (section, directive) -> the value it must have.  Removing or weakening any of
# them fails test_every_required_directive_is_there.
REQUIRED = {
    ("Service", "Type"): "notify",
    ("Service", "User"): "gwvault",
    ("Service", "Group"): "gwvault",
    ("Service", "ExecStart"): f"{INSTALLED_GWVAULT} --data-dir {DATA_DIR} serve",
    ("Service", "StateDirectory"): "gwvault",
    ("Service", "StateDirectoryMode"): "0700",
    ("Service", "UMask"): "0077",
    ("Service", "ProtectSystem"): "strict",
    ("Service", "ReadWritePaths"): DATA_DIR,
    ("Service", "PrivateTmp"): "yes",
    ("Service", "NoNewPrivileges"): "yes",
    ("Service", "MemorySwapMax"): "0",
    ("Service", "LimitCORE"): "0",
    ("Service", "LimitMEMLOCK"): "infinity",  # what mlockall needs (process_hardening)
    ("Service", "ProtectHome"): "yes",
    ("Service", "PrivateDevices"): "yes",
    ("Service", "CapabilityBoundingSet"): "",
    ("Service", "RestrictAddressFamilies"): "AF_INET AF_INET6 AF_UNIX",
    ("Service", "SystemCallFilter"): "@system-service",
    ("Service", "Restart"): "on-failure",
    ("Service", "RestartSec"): "5s",
    ("Service", "TimeoutStopSec"): "30s",
    ("Unit", "StartLimitIntervalSec"): "600",
    ("Unit", "StartLimitBurst"): "5",
}
Unit = dict[str, list[tuple[str, str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> (directive, value) in order; a directive may repeat (systemd.syntax(7))."""
    unit: Unit = {}
    section = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            unit.setdefault(section, [])
        elif "=" in line and section is not None and not line.endswith("\\"):
            key, value = line.split("=", 1)
            unit[section].append((key.strip(), value.strip()))
        else:
            raise ValueError(f"line {number}: not a directive this checker understands: {raw!r}")
    return unit


def missing_hardening(unit: Unit) -> list[str]:
    """Each required directive that is absent or has another value, as text."""
    found = []
    for (section, key), wanted in REQUIRED.items():
        values = [v for k, v in unit.get(section, []) if k == key]
        if wanted not in values:
            found.append(f"[{section}] {key}={wanted} (has {values or 'nothing'})")
    return found


def test_every_required_directive_is_there() -> None:
    assert missing_hardening(parse_unit(UNIT.read_text())) == []


@pytest.mark.parametrize(("section", "key"), sorted(REQUIRED))
def test_removing_any_required_directive_is_caught(section: str, key: str) -> None:
    wanted = REQUIRED[(section, key)]
    text = UNIT.read_text().replace(f"\n{key}={wanted}\n", "\n", 1)
    assert text != UNIT.read_text(), f"{key}={wanted} is not a line of its own"
    [missing] = missing_hardening(parse_unit(text))
    assert missing.startswith(f"[{section}] {key}={wanted} (has ")


def test_a_line_the_checker_cannot_read_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_unit("[Service]\nLimitCORE=0 \\\n")


def test_the_readme_shows_this_very_unit() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"```ini\n(# gwvault: the credential vault.*?)```", readme, re.S)
    assert shown is not None, "README: Install as a service has no ```ini block with the unit"
    assert shown.group(1) == UNIT.read_text()


# -- systemd's own tools, offline -----------------------------------------------


def systemd_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        require_service(f"{name} is not installed (Debian package systemd)")
    return path


@pytest.fixture
def runnable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's gwvault, which exists here
    (verify checks that the command is an executable file)."""
    path = tmp_path / "gwvault.service"
    path.write_text(UNIT.read_text().replace(INSTALLED_GWVAULT, str(GWVAULT)))
    return path


def verify(unit: Path) -> str:
    """What ``systemd-analyze verify`` says of ``unit`` and its drop-ins beside it
    (empty: accepted without a warning)."""
    done = subprocess.run(
        [systemd_tool("systemd-analyze"), "verify", unit.name],
        capture_output=True, text=True, check=False, timeout=60, cwd=unit.parent,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{unit.parent}:"},
    )  # fmt: skip
    # A value it cannot parse is a warning ("ignoring"), not a failure: both count.
    return (
        f"exit {done.returncode}: {done.stdout}{done.stderr}"
        if done.returncode
        else (done.stdout + done.stderr)
    )


def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(runnable_unit: Path) -> None:
    assert verify(runnable_unit) == ""


def test_systemd_analyze_verify_would_catch_a_bad_value(runnable_unit: Path) -> None:
    runnable_unit.write_text(runnable_unit.read_text().replace("LimitCORE=0", "LimitCORE=none"))
    assert "Failed to parse resource value" in verify(runnable_unit)


DROP_IN = re.compile(r"```ini\n(# /etc/systemd/system/gwvault.service.d/pkcs11.conf.*?)```", re.S)


def test_the_readmes_hsm_drop_in_is_valid_with_every_option_on(runnable_unit: Path) -> None:
    shown = DROP_IN.search((ROOT / "README.md").read_text())
    assert shown is not None, "README: the PKCS#11 drop-in is gone"
    drop_in = runnable_unit.parent / "gwvault.service.d" / "pkcs11.conf"
    drop_in.parent.mkdir()
    text = shown.group(1).replace(INSTALLED_GWVAULT, str(GWVAULT))
    drop_in.write_text(re.sub(r"^#(?=[A-Z]\w+=)", "", text, flags=re.M))  # the options on
    assert verify(runnable_unit) == ""
    drop_in.write_text(drop_in.read_text() + "LimitCORE=bogus\n")
    assert "pkcs11.conf" in verify(runnable_unit)  # the drop-in was read


def test_systemd_analyze_security_rates_the_unit_exposure_at_most_2(runnable_unit: Path) -> None:
    done = subprocess.run(
        [systemd_tool("systemd-analyze"), "security", "--offline=yes", "--threshold=20",
         str(runnable_unit)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert done.returncode == 0 and level is not None, done.stdout[-2000:] + done.stderr
    assert float(level.group(1)) <= 2.0


def test_systemd_sysusers_would_create_the_gwvault_user(tmp_path: Path) -> None:
    done = subprocess.run(
        [systemd_tool("systemd-sysusers"), f"--root={tmp_path}", "--dry-run", str(SYSUSERS)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Creating user 'gwvault'" in done.stderr + done.stdout
    assert not (tmp_path / "etc" / "passwd").exists()  # a dry run


# -- the unit under a real systemd ------------------------------------------------


def real_systemd_reason() -> str | None:
    if Path("/proc/1/comm").read_text().strip() != "systemd":
        return "PID 1 is not systemd (a container?)"
    if os.environ.get("GWVAULT_SYSTEMD_TESTS") != "1":
        return "GWVAULT_SYSTEMD_TESTS=1 not set (the test adds the gwvault user and a unit)"
    if os.geteuid() != 0:
        return "installing a unit needs root"
    return None


@pytest.fixture
def started_unit(vault_templates: dict[str, Path]) -> Iterator[tuple[int, int]]:
    """A scratch copy of the unit, started: (main pid, port).  Its own name, data
    dir and port, so it never touches an installed gwvault."""
    name = f"gwvault-test-{os.getpid()}"
    data_dir, port = Path("/var/lib") / name, free_tcp_port()
    unit = Path("/run/systemd/system") / f"{name}.service"
    subprocess.run(["systemd-sysusers", str(SYSUSERS)], check=True, timeout=60)
    text = (
        UNIT.read_text()
        .replace(DATA_DIR, str(data_dir))
        .replace(
            f"{INSTALLED_GWVAULT} --data-dir {data_dir} serve",
            f"{GWVAULT} --data-dir {data_dir} serve --port {port}",
        )
    )
    text = text.replace("StateDirectory=gwvault", f"StateDirectory={name}")
    if Path(sys.executable).resolve().is_relative_to("/root") or "/home/" in sys.executable:
        # This checkout's interpreter lives in a home directory; an install in /opt does not.
        text = text.replace("ProtectHome=yes", "ProtectHome=read-only")
    shutil.copytree(vault_templates["ec-p256"], data_dir)
    subprocess.run(["chown", "-R", "gwvault:gwvault", str(data_dir)], check=True, timeout=60)
    unit.write_text(text)
    try:
        subprocess.run(["systemctl", "daemon-reload"], check=True, timeout=60)
        # Type=notify: start returns once READY=1 arrived, or fails.
        subprocess.run(["systemctl", "start", name], check=True, timeout=120)
        shown = subprocess.run(
            ["systemctl", "show", "-p", "MainPID", "--value", name],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        yield int(shown.stdout), port
    finally:
        subprocess.run(["systemctl", "stop", name], check=False, timeout=120)
        unit.unlink(missing_ok=True)
        subprocess.run(["systemctl", "daemon-reload"], check=False, timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)


# Allowed to skip in CI too: a container's PID 1 is not systemd (README "Tests").
@pytest.mark.skipif(real_systemd_reason() is not None, reason=real_systemd_reason() or "")
def test_under_systemd_the_unit_starts_hardened_and_answers_tls(
    started_unit: tuple[int, int],
) -> None:
    pid, port = started_unit
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert re.search(r"Max core file size\s+0\s+0", limits)
    assert re.search(r"Max locked memory\s+unlimited\s+unlimited", limits)
    status = Path(f"/proc/{pid}/status").read_text()
    assert re.search(r"VmLck:\s+[1-9]", status)
    assert os.stat(f"/proc/{pid}/environ").st_uid == 0  # not dumpable
    assert "\nUid:\t0\t" not in status  # the gwvault user, not root
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + 5  # READY=1 came first: it should answer at once
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                client.wrap_socket(raw).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "READY=1 but no TLS handshake"
            time.sleep(0.1)
