"""The CI integrations in examples/ work as written: the GitHub Actions workflow's `run:` steps, in
order, in a fresh virtual environment, and the pre-commit hook through pre-commit itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT

WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"


def fresh_venv(where: Path) -> Path:
    """A new virtual environment whose dependencies resolve from ours (no downloads), but which holds
    no numerai-sandbox until a step installs it."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    site = subprocess.run([str(where / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return where / "bin"


def workspace(models, root: Path, names: list[str]) -> Path:
    (root / "models").mkdir(parents=True)
    for name in names:
        shutil.copyfile(models[name], root / "models" / f"{name}.pkl")
    return root


def run_workflow(work: Path, venv_bin: Path) -> list[tuple[str, int, str]]:
    """Every `run:` step of the workflow's jobs, in order, under bash -e as GitHub runs them; stops at the
    first failing step (as GitHub does). Returns (step name, exit code, output) per step run."""
    import yaml

    workflow = yaml.safe_load(WORKFLOW.read_text())
    env = dict(os.environ, **{k: str(v) for k, v in (workflow.get("env") or {}).items()})
    env.update(NUMERAI_SANDBOX_SPEC=str(ROOT), PATH=f"{venv_bin}{os.pathsep}{env['PATH']}",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    ran = []
    for job in workflow["jobs"].values():
        env.update({k: str(v) for k, v in (job.get("env") or {}).items()})
        for step in job["steps"]:
            if "run" not in step or "always()" in str(step.get("if", "")):
                continue
            proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=work, env=env, capture_output=True,
                                  text=True, timeout=1800)
            ran.append((step.get("name", step["run"][:40]), proc.returncode, proc.stdout + proc.stderr))
            if proc.returncode != 0:
                return ran
    return ran


def test_the_workflow_is_valid_and_checks_with_numerais_limits():
    import yaml

    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["check"]["steps"]
    commands = " ".join(step.get("run", "") for step in steps)
    assert "numerai-sandbox check" in commands and "--junit" in commands and "--numerai-limits" in commands
    assert any(str(step.get("uses", "")).startswith("actions/upload-artifact") for step in steps)


def test_the_workflow_steps_pass_for_good_pickles_and_fail_for_a_broken_one(models, client, tmp_path):
    venv_bin = fresh_venv(tmp_path / "venv")
    good = workspace(models, tmp_path / "good", ["good_1arg", "good_2arg"])
    ran = run_workflow(good, venv_bin)
    assert [code for _, code, _ in ran] == [0, 0, 0], ran[-1]
    assert (venv_bin / "numerai-sandbox").exists()  # the install step installed it into the fresh venv
    assert (good / "numerai-sandbox.xml").exists() and (good / "numerai-sandbox.html").exists()
    assert "2 checked: 2 Success" in ran[-1][2]

    broken = workspace(models, tmp_path / "broken", ["good_1arg", "raises"])
    ran = run_workflow(broken, venv_bin)
    name, code, output = ran[-1]
    assert name.startswith("Check the pickles") and code == 1, output
    assert "1 Failed" in output and 'failures="1"' in (broken / "numerai-sandbox.xml").read_text()


@pytest.fixture
def git_repo(tmp_path):
    repo = tmp_path / "team-models"
    repo.mkdir()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    return repo, env


def test_the_pre_commit_hook_runs_through_pre_commit(models, client, git_repo, tmp_path):
    repo, env = git_repo
    shutil.copyfile(models["good_1arg"], repo / "good.pkl")
    shutil.copyfile(models["raises"], repo / "broken.pkl")
    subprocess.run(["git", "add", "good.pkl", "broken.pkl"], cwd=repo, check=True, env=env)
    env = dict(env, PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"))
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "numerai-sandbox-check"]
    passed = subprocess.run(pre_commit + ["--files", "good.pkl"], cwd=repo, env=env, capture_output=True,
                            text=True, timeout=1800)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "numerai-sandbox check" in passed.stdout and "Passed" in passed.stdout
    failed = subprocess.run(pre_commit + ["--files", "good.pkl", "broken.pkl"], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=1800)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout and "model_exception" in failed.stdout
