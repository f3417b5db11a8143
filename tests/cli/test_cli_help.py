"""Every ``haneul`` command and option is documented, and shared options read the same in every group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from haneul.cli import options
from haneul.cli.main import build_app


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """``(command path, command)`` for every leaf command; typer groups are not click.Group instances."""
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), cmd


@pytest.fixture(scope="module")
def root() -> Any:
    return typer.main.get_command(build_app())


@pytest.fixture(scope="module")
def commands(root: Any) -> dict[str, Any]:
    return dict(_commands(root))


def test_the_tree_holds_every_group(commands: dict[str, Any]) -> None:
    # the walk must reach into each group, or the help checks below would pass on nothing
    groups = {path.split()[0] for path in commands if " " in path}
    assert {"lm", "eval", "quant", "dialog", "speech", "rec"} <= groups
    assert {"run", "ps", "server", "lm tokenizer train", "dialog memory show"} <= set(commands)


def test_every_command_option_and_argument_has_help(commands: dict[str, Any]) -> None:
    missing = [path for path, cmd in commands.items() if not (cmd.help or "").strip()]
    for path, cmd in commands.items():
        missing += [
            f"{path} {param.name}"
            for param in cmd.params
            if param.name != "help" and not (getattr(param, "help", None) or "").strip()
        ]
    assert missing == []


def test_every_default_shows_in_help(commands: dict[str, Any]) -> None:
    """An option with a default prints it (``[default: ...]``); one whose default comes from a setting
    says so in its help text."""
    hidden = [
        f"{path} {param.name}"
        for path, cmd in commands.items()
        for param in cmd.params
        if getattr(param, "param_type_name", "") == "option" and param.name != "help"
        and param.default not in (None, False, (), []) and not getattr(param, "show_default", True)
    ]
    assert hidden == []
    server = {p.name: p for p in commands["server"].params}
    assert "7860" in server["port"].help and "127.0.0.1" in server["host"].help


def _options_named(commands: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        path: param
        for path, cmd in commands.items()
        for param in cmd.params
        if name in param.opts or name in param.secondary_opts
    }


SHARED = {
    "--json": (options.JSON_HELP, {"as_json"}),
    "--seed": (options.SEED_HELP, {"seed"}),
    "--threads": (options.THREADS_HELP, {"threads"}),
    "--device": (options.DEVICE_HELP, {"device"}),
    "--endpoint-model": (options.ENDPOINT_MODEL_HELP, {"endpoint_model", "lm_model"}),
}


@pytest.mark.parametrize("name", list(SHARED))
def test_a_shared_option_has_one_spelling_and_one_help(commands: dict[str, Any], name: str) -> None:
    help_text, params = SHARED[name]
    found = _options_named(commands, name)
    assert len(found) >= 2, f"{name} is shared by several commands"
    for path, param in found.items():
        assert param.help == help_text, f"{path} {name}"
    # and no command takes the same setting under another spelling
    for path, cmd in commands.items():
        for param in cmd.params:
            if param.name in params:
                assert name in param.opts, f"{path} spells {param.name} as {param.opts}"


def test_every_output_folder_is_out_with_short_o_and_the_old_spelling_kept(commands: dict[str, Any]) -> None:
    spelled_output = _options_named(commands, "--output")
    outs = _options_named(commands, "--out")
    assert len(outs) > 10 and set(spelled_output) == set(outs)
    for path, param in outs.items():
        assert {"--out", "-o", "--output"} <= set(param.opts), path


def test_hidden_names_never_stand_alone(commands: dict[str, Any]) -> None:
    """An old spelling is only ever an alias of an option that has a visible name."""
    for path, cmd in commands.items():
        for param in cmd.params:
            if set(param.opts) & options.HIDDEN_NAMES:
                assert set(param.opts) - options.HIDDEN_NAMES, f"{path} {param.name}"


def test_old_spellings_still_parse_but_help_does_not_show_them(commands: dict[str, Any]) -> None:
    synth = commands["speech synth"]
    ctx = synth.make_context("synth", ["--hours", "0.1", "--output", "calls"])
    assert ctx.params["out"] == Path("calls")
    respond = commands["dialog respond"]
    ctx = respond.make_context("respond", ["kim", "--dialogue", "d.json", "--lm-model", "qwen"])
    assert ctx.params["lm_model"] == "qwen"
    study = commands["eval corpus-study"]
    ctx = study.make_context("corpus-study", ["-c", "a=b.txt", "--tasks", "nsmc=x.tsv", "-o", "s"])
    assert ctx.params["task"] == "nsmc=x.tsv"

    runner = CliRunner()
    for argv in (
        ["speech", "synth", "--help"],
        ["dialog", "respond", "--help"],
        ["eval", "corpus-study", "--help"],
    ):
        result = runner.invoke(build_app(), argv, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "--out" in result.output or "--endpoint-model" in result.output or "--task" in result.output
        for hidden in options.HIDDEN_NAMES:
            assert hidden not in result.output, f"{' '.join(argv)} shows {hidden}"
