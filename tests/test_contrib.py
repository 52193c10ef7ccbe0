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
    assert result.returncode == 0 and "SUCCESS: 8 rules found" in result.stdout, result.stdout + result.stderr


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


def daemonset_documents(text: str) -> dict[str, dict]:
    import yaml

    return {document["kind"]: document for document in yaml.safe_load_all(text)}


def test_the_daemonset_mounts_what_pyexec_needs_and_no_more_privilege() -> None:
    daemonset = daemonset_documents((CONTRIB / "kubernetes" / "daemonset.yaml").read_text())["DaemonSet"]
    pod = daemonset["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["spec"]["hostPID"] is True and "hostNetwork" not in pod["spec"]
    (container,) = pod["spec"]["containers"]
    security = container["securityContext"]
    assert security["privileged"] is False and security["capabilities"]["drop"] == ["ALL"]
    assert set(security["capabilities"]["add"]) == {"BPF", "PERFMON", "SYS_RESOURCE"}
    mounts = {volume["hostPath"]["path"] for volume in pod["spec"]["volumes"] if "hostPath" in volume}
    assert mounts == {"/sys/kernel/btf", "/sys/fs/bpf", "/sys/kernel/tracing"}


def test_the_daemonset_installs_only_files_pinned_by_hash_and_serves_on_the_pods_address(tmp_path: Path) -> None:
    # make daemonset's last step, on wheels made up here (the real ones come from make wheel and pip).
    import hashlib

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    wheels = {"pyexec_ebpf-0.1.0-cp310-abi3-manylinux_2_28_x86_64.whl": b"ours",
              "prometheus_client-0.21.1-py3-none-any.whl": b"theirs",
              "typing_extensions-4.12.2-py3-none-any.whl": b"more"}
    for name, content in wheels.items():
        (downloads / name).write_bytes(content)
    out = tmp_path / "daemonset.yaml"
    subprocess.run([sys.executable, str(CONTRIB.parent / "scripts" / "daemonset.py"),
                    str(CONTRIB / "kubernetes" / "daemonset.yaml"), str(downloads), str(out)], check=True)
    documents = daemonset_documents(out.read_text())
    requirements = documents["ConfigMap"]["data"]["requirements.txt"].splitlines()
    assert sorted(requirements) == sorted([
        f"pyexec-ebpf==0.1.0 --hash=sha256:{hashlib.sha256(b'ours').hexdigest()}",
        f"prometheus-client==0.21.1 --hash=sha256:{hashlib.sha256(b'theirs').hexdigest()}",
        f"typing-extensions==4.12.2 --hash=sha256:{hashlib.sha256(b'more').hexdigest()}",
    ])
    (container,) = documents["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    command = container["command"][-1]
    assert "--require-hashes" in command and "-r /etc/pyexec/requirements.txt" in command
    assert command.endswith('pyexec serve --listen "${POD_IP}:9435"') and "0.0.0.0" not in command
    assert container["env"] == [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    # The template alone installs nothing: its requirements are a comment.
    template = daemonset_documents((CONTRIB / "kubernetes" / "daemonset.yaml").read_text())
    assert all(line.startswith("#") for line in template["ConfigMap"]["data"]["requirements.txt"].splitlines())
