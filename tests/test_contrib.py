"""contrib/: the systemd unit, the Kubernetes DaemonSet and the Prometheus rules,
checked by the tools that will read them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONTRIB = Path(__file__).resolve().parents[1] / "contrib"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: make test installs it")
    return found


def test_the_prometheus_rules_are_valid() -> None:
    result = subprocess.run([tool("promtool"), "check", "rules", str(CONTRIB / "prometheus" / "rules.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "SUCCESS: 6 rules found" in result.stdout, result.stdout + result.stderr


def test_the_systemd_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    unit = (CONTRIB / "systemd" / "pyexec.service").read_text()
    command = Path(sys.prefix) / "bin" / "pyexec"  # where this installation has it
    local = tmp_path / "pyexec.service"
    local.write_text(unit.replace("/usr/local/bin/pyexec", str(command)))
    result = subprocess.run([tool("systemd-analyze"), "verify", str(local)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["ExecStart"].endswith("serve --listen 127.0.0.1:9435")  # loopback unless said otherwise
    assert set(settings["CapabilityBoundingSet"].split()) == {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_RESOURCE"}
    assert (settings["NoNewPrivileges"], settings["ProtectSystem"], settings["ReadWritePaths"]) == (
        "yes", "strict", "/sys/fs/bpf")


def test_the_daemonset_mounts_what_pyexec_needs_and_no_more_privilege() -> None:
    import yaml

    daemonset = yaml.safe_load((CONTRIB / "kubernetes" / "daemonset.yaml").read_text())
    assert daemonset["kind"] == "DaemonSet"
    pod = daemonset["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["spec"]["hostPID"] is True
    (container,) = pod["spec"]["containers"]
    assert "pyexec serve --listen 0.0.0.0:9435" in container["command"][-1]
    security = container["securityContext"]
    assert security["privileged"] is False and security["capabilities"]["drop"] == ["ALL"]
    assert set(security["capabilities"]["add"]) == {"BPF", "PERFMON", "SYS_RESOURCE"}
    mounts = {volume["hostPath"]["path"] for volume in pod["spec"]["volumes"]}
    assert mounts == {"/sys/kernel/btf", "/sys/fs/bpf", "/sys/kernel/tracing"}
