"""The command line follows the conventions a person expects: named metavars, help for every option,
environment-variable defaults shown in --help, and --json that holds its promise even for usage errors."""

from __future__ import annotations

import json

import click
import pytest

from conftest import run_cli
from runner.cli.main import cli

RUN_ENVIRONMENT = {"--python": "NUMERAI_SANDBOX_PYTHON", "--profile": "NUMERAI_SANDBOX_PROFILE",
                   "--data": "NUMERAI_SANDBOX_DATA", "--memory": "NUMERAI_SANDBOX_MEMORY",
                   "--cpus": "NUMERAI_SANDBOX_CPUS", "--timeout": "NUMERAI_SANDBOX_TIMEOUT"}


def commands(group: click.Group = cli, path: tuple[str, ...] = ()):
    """(command path, command) for every command, groups included."""
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, path + (name,))
        else:
            yield path + (name,), command


def help_of(path: tuple[str, ...], command: click.Command) -> str:
    with click.Context(command, info_name=" ".join(("numerai-sandbox",) + path)) as ctx:
        return command.get_help(ctx)


@pytest.mark.parametrize("path,command", list(commands()), ids=lambda p: " ".join(p) if isinstance(p, tuple) else "")
def test_every_option_has_help_and_a_named_metavar(path, command):
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in ("help", "version"):
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help"
    text = help_of(path, command)
    for generic in ("TEXT", "FLOAT", "INTEGER", "DIRECTORY", "[auto|", "[3.10|", "[standard|"):
        assert generic not in text, f"{' '.join(path)}: {generic} in\n{text}"


def test_environment_defaults_are_shown_in_help():
    text = help_of(("run",), cli.commands["run"])
    for option, variable in RUN_ENVIRONMENT.items():
        assert variable in text, option
        assert next(p for p in cli.commands["run"].params if option in p.opts).envvar == variable
    assert "NUMERAI_SANDBOX_CACHE" in help_of((), cli) and "DOCKER_HOST" in help_of((), cli)


@pytest.mark.parametrize("variable,value,message", [
    ("NUMERAI_SANDBOX_CPUS", "100", "from 0.01 to"),
    ("NUMERAI_SANDBOX_PYTHON", "3.9", "'3.9' is not one of"),
    ("NUMERAI_SANDBOX_TIMEOUT", "soon", "not a duration"),
    ("NUMERAI_SANDBOX_MEMORY", "lots", "not a memory size"),
    ("NUMERAI_SANDBOX_PROFILE", "huge", "'huge' is not one of"),
    ("NUMERAI_SANDBOX_DATA", "/nonexistent/live.parquet", "--data"),
])
def test_environment_defaults_are_used_and_judged_like_options(host_pickle, variable, value, message):
    result = run_cli("run", host_pickle, env={variable: value})
    assert result.code == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args,message", [
    (["run", "/nonexistent/model.pkl", "--json"], "does not exist"),
    (["run", "{model}", "--json", "--cpus", "abc"], "'abc' is not a valid float"),
    (["run", "{model}", "--json", "--python", "2.7"], "'2.7' is not one of"),
    (["run", "{model}", "--json", "--no-such-option"], "No such option"),
    (["run", "--json"], "Missing argument 'MODEL'"),
    (["inspect", "/nonexistent/model.pkl", "--json"], "does not exist"),
])
def test_usage_errors_with_json_print_one_json_object(host_pickle, args, message):
    result = run_cli(*[a.format(model=host_pickle) for a in args])
    assert result.code == 2
    error = json.loads(result.stdout)  # the whole of stdout is one object
    assert error["status"] is None and error["exit_code"] == 2 and message in error["message"]
    assert message in result.stderr and "Traceback" not in result.stderr


def test_usage_errors_without_json_leave_stdout_empty(host_pickle):
    result = run_cli("run", host_pickle, "--cpus", "abc")
    assert result.code == 2 and result.stdout == "" and "'abc' is not a valid float" in result.stderr
