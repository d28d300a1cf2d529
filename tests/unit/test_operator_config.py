"""The operator's configuration file: read strictly, and what its allow-list lets run."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.operator_config import OperatorConfig, OperatorConfigError, load_operator_config

GOOD = """
approvals:
  rolling-node-maintenance:
    usergroups: [S0ONCALL]
    timeout: 30m
identities:
  U0ALICE: [os-user:alice, prefect-user:alice@example.com]
allow:
  commands:
    - /usr/local/sbin/patch-node {node}
    - [ssh, "{node}", sudo, reboot]
  images:
    - registry.example.com/ops/patcher:1.4
    - sha256:0123abcd
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_a_written_configuration_is_read(tmp_path: Path) -> None:
    config = load_operator_config(write(tmp_path, GOOD))
    assert config.approvals["rolling-node-maintenance"].usergroups == ["S0ONCALL"]
    assert config.identities["U0ALICE"][0] == "os-user:alice"
    assert str(tmp_path) in config.where


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("approvals: {}\nallow_list: {}\n", "unknown key allow_list"),
        (
            "approvals:\n  rolling-node-maintenance:\n    users: [U0A]\n    self_ok: true\n",
            "unknown key approvals.rolling-node-maintenance.self_ok",
        ),
        ("allow:\n  command: [ls]\n", "unknown key allow.command"),
        ("identities:\n  U0A: [alice]\n", "not identities"),
        ("allow:\n  commands: ['']\n", "would allow every command"),
        ("allow: [\n", "is not YAML"),
        ("- a\n", "expected a mapping"),
    ],
)
def test_a_configuration_mistake_is_one_line_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(OperatorConfigError, match=message) as raised:
        load_operator_config(write(tmp_path, text))
    assert str(tmp_path) in str(raised.value) and "\n" not in str(raised.value)


def test_a_named_configuration_that_is_missing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(OperatorConfigError, match="cannot read the operator configuration"):
        load_operator_config()


ALLOW = OperatorConfig.model_validate(
    {
        "allow": {
            "commands": ["/usr/local/sbin/patch-node {node}", ["ssh", "{node}", "sudo", "reboot"]],
            "images": ["registry.example.com/ops/patcher:1.4", "sha256:0123abcd"],
        }
    }
)


@pytest.mark.parametrize(
    ("kind", "argv", "image", "refused"),
    [
        ("none", ["rm", "-rf", "/"], None, None),  # no command runs
        ("command", ["/usr/local/sbin/patch-node", "{node}"], None, None),
        ("command", ["/usr/local/sbin/patch-node", "{node}", "--dry"], None, None),  # prefix
        ("command", ["/usr/local/sbin/patch-node"], None, "command '/usr/local/sbin/patch-node'"),
        ("command", ["ssh", "{node}", "sudo", "reboot"], None, None),
        ("command", ["ssh", "{node}", "sudo", "sh"], None, "allow.commands"),
        ("command", ["touch", "/tmp/x"], None, "command 'touch /tmp/x' is not allowed"),
        ("job", [], "registry.example.com/ops/patcher:1.4", None),
        ("job", [], "registry.example.com/ops/patcher:1.5", "job image"),
        ("job", [], "registry.example.com/ops/patcher:1.4-evil", "allow.images"),
        ("job", [], "anything.example/x@sha256:0123abcd", None),  # pinned by digest
        ("job", [], "busybox:1.36", "job image 'busybox:1.36' is not allowed"),
        ("job", ["sh", "-c", "id"], "registry.example.com/ops/patcher:1.4", "job command"),
    ],
)
def test_commands_and_images_run_only_when_allowed(kind, argv, image, refused):
    reason = ALLOW.action_refusal(kind, argv, image)
    assert (reason is None) if refused is None else (refused in (reason or "")), reason


def test_without_a_configuration_no_command_or_image_is_allowed() -> None:
    reason = OperatorConfig().action_refusal("command", ["true"], None)
    assert reason and "no operator configuration file" in reason


def test_the_system_file_wins_over_an_environment_a_run_could_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow run's env can come from its starter (job variables): it must not swap the file."""
    import runbooks.operator_config as operator_config

    system = write(tmp_path, GOOD)
    lax = tmp_path / "lax.yaml"
    lax.write_text("allow:\n  commands: [[sh]]\n")
    monkeypatch.setattr(operator_config, "SYSTEM_CONFIG", system)
    monkeypatch.setenv("RUNBOOK_CONFIG", str(lax))
    config = load_operator_config()
    assert config.source == str(system)
    assert config.action_refusal("command", ["sh", "-c", "id"], None)
