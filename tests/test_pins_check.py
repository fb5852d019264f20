"""`numerai-sandbox images pins --check/--update` against a numerai-predict checkout made here
(a git repository holding py3.X/requirements.txt per Python), and offline against GitHub."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import run_cli
from runner.images import numerai, pinfiles, upstream
from runner.images.pinfiles import version_dir


def git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(directory), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A numerai-predict checkout whose pins are exactly the vendored ones."""
    root = tmp_path / "numerai-predict"
    for python in numerai.vendored_pythons():
        folder = root / f"py{python}"
        folder.mkdir(parents=True)
        lines = [pin.line() for pin in numerai.numerai_list(python).raw]
        (folder / "requirements.txt").write_text("# requirements\n" + "\n".join(lines) + "\n")
    (root / "README.md").write_text("numerai-predict\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "pins")
    return root


def edit(checkout: Path, python: str, old: str, new: str) -> None:
    path = checkout / f"py{python}" / "requirements.txt"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_equal_pins_exit_0_naming_the_commit(checkout):
    result = run_cli("images", "pins", "--check", "--source", checkout)
    assert result.code == 0, result.stdout + result.stderr
    assert "match" in result.stdout and git(checkout, "rev-parse", "HEAD")[:12] in result.stdout


def test_a_changed_pin_exits_1_listing_it(checkout):
    edit(checkout, "3.11", "numpy==2.1.3\n", "numpy==2.2.0\n")
    edit(checkout, "3.12", "tabulate==0.9.0\n", "")
    (checkout / "py3.13" / "requirements.txt").open("a").write("numerai-new-thing==1.0\n")
    result = run_cli("images", "pins", "--check", "--source", checkout)
    assert result.code == 1, result.stderr
    out = result.stdout
    assert "Python 3.11: 1 changed, 0 added, 0 removed" in out and "changed numpy 2.1.3 -> 2.2.0" in out
    assert "removed tabulate==0.9.0" in out and "added   numerai-new-thing==1.0" in out
    assert "Python 3.10" not in out and "images pins --update" in out


def test_added_and_removed_pythons_are_listed(checkout):
    shutil.copytree(checkout / "py3.14", checkout / "py3.15")
    shutil.rmtree(checkout / "py3.10")
    result = run_cli("images", "pins", "--check", "--source", checkout)
    assert result.code == 1
    assert "Python 3.15: numerai-predict has an image for it" in result.stdout
    assert "Python 3.10: numerai-predict has no image for it any more" in result.stdout


def test_a_folder_that_is_not_numerai_predict_is_an_error(tmp_path):
    result = run_cli("images", "pins", "--check", "--source", tmp_path)
    assert result.code == 3 and "not a numerai-predict checkout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_offline_says_so_in_one_line(monkeypatch):
    """GitHub unreachable (here: a closed local port): exit 3, one line, pointing at --source."""
    from runner.cli.main import cli

    monkeypatch.setattr(upstream, "API", "http://127.0.0.1:9/repos/numerai/numerai-predict")
    result = CliRunner().invoke(cli, ["images", "pins", "--check"])
    assert result.exit_code == 3
    assert "cannot reach GitHub" in result.output and "--source DIR" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_update_rewrites_the_lists_with_the_commit(checkout, tmp_path):
    """--update on a copy of images/ (the checkout's own images/ stays as it is)."""
    from runner.cli.main import cli

    real = version_dir("3.11") / "numerai.txt"
    before = real.read_text()
    images = tmp_path / "images"
    shutil.copytree(pinfiles.images_root(), images)
    saved = pinfiles.images_root, numerai.images_root
    pinfiles.images_root = numerai.images_root = lambda: images
    numerai.numerai_list.cache_clear()
    try:
        edit(checkout, "3.11", "numpy==2.1.3\n", "numpy==2.2.0\n")
        git(checkout, "commit", "-q", "-am", "numpy 2.2")
        commit = git(checkout, "rev-parse", "HEAD")
        result = CliRunner().invoke(cli, ["images", "pins", "--update", "--source", str(checkout)])
        assert result.exit_code == 0, result.output
        assert f"wrote {images / 'py3.11' / 'numerai.txt'}" in result.output
        assert "scripts/make_module_map.py" in result.output and "lock_standard.py" in result.output
        listing = numerai.numerai_list("3.11")
        assert listing.pins["numpy"] == "2.2.0" and listing.commit == commit
        assert CliRunner().invoke(cli, ["images", "pins", "--check", "--source", str(checkout)]).exit_code == 0
    finally:
        pinfiles.images_root, numerai.images_root = saved
        numerai.numerai_list.cache_clear()
    assert real.read_text() == before and numerai.numerai_list("3.11").pins["numpy"] == "2.1.3"
