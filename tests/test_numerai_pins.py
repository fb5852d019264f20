"""Numerai's vendored pin lists, the module map generated from the wheels, and the auto profile's
arithmetic on them (no Docker, no network)."""

from __future__ import annotations

import json
import zipfile

import pytest

from conftest import REFERENCE
from runner.images import numerai, pypi
from runner.images.pinfiles import PinError, read_pins
from runner.images.pins import SUBSTITUTES, SUPPORTED_PYTHONS, numerai_pins, pin_set, standard_pins

PYTHONS = numerai.vendored_pythons()


def test_every_python_we_build_has_numerais_list_and_the_commit_it_came_from():
    assert set(SUPPORTED_PYTHONS) <= set(PYTHONS) and "3.14" in PYTHONS
    for python in PYTHONS:
        listing = numerai.numerai_list(python)
        assert listing.commit and len(listing.pins) > 100
    assert numerai.numerai_list("3.11").commit == "19d1769" and numerai.numerai_list("3.14").commit == "04eeb2a"


def test_the_readme_names_the_commits_todays_pins_come_from():
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for commit in {numerai.numerai_list(python).commit for python in PYTHONS}:
        assert f"**{commit}**" in readme


@pytest.mark.skipif(REFERENCE is None, reason="Numerai's reference pin lists (shared/reference) are not here")
@pytest.mark.parametrize("python", ["3.10", "3.11", "3.12", "3.13", "3.14"])
def test_vendored_lists_are_the_reference_lists(python):
    from runner.images.pinfiles import version_dir

    reference = REFERENCE / "numerai-predict-pins" / f"py{python}.txt"
    assert (version_dir(python) / numerai.LIST_FILE).read_text() == reference.read_text()


def test_pins_only_for_windows_or_macos_are_left_out():
    assert set(numerai.numerai_list("3.10").left_out) == {"appnope", "pywin32", "pywinpty"}
    assert set(numerai.numerai_list("3.14").left_out) == {"mlx", "mlx-metal"}  # sys_platform == "darwin"
    full = pin_set("3.11", "full")
    assert full.pins["torch"] == "2.7.1" and full.pins["pip"] == standard_pins("3.11")["pip"]


@pytest.mark.parametrize("marker", [
    'sys_platform == "darwin" and platform_machine == "arm64"',
    'sys_platform == "linux"', 'platform_system != "Windows"', 'sys_platform == "linux" and python_version == "3.11"',
    'sys_platform == "win32" or platform_machine == "x86_64"', 'python_version >= "3.12"',
    'platform_version == "a and b"', "os_name == 'posix'",
])
def test_markers_judged_directly_agree_with_packaging(marker):
    """The fast path (and-joined equalities) and packaging's grammar give the same answer for every Python."""
    from packaging.markers import Marker

    for python in PYTHONS:
        assert numerai._marker_holds(marker, python) == Marker(marker).evaluate(numerai.linux_environment(python))


def test_the_map_knows_every_pin_it_was_made_from():
    data = json.loads((numerai.images_root() / numerai.MAP_FILE).read_text())
    assert "scripts/make_module_map.py" in data["about"] and not data["problems"]
    for python in PYTHONS:
        listing = numerai.numerai_list(python)
        assert data["lists"][python]["commit"] == listing.commit, "run scripts/make_module_map.py"
        missing = [f"{n}=={v}" for n, v in listing.pins.items() if numerai.distribution(n, v) is None]
        assert not missing, f"run scripts/make_module_map.py: {missing[:5]}"


@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_the_standard_profile_has_numerais_version_of_everything_both_hold(python):
    theirs = numerai_pins(python)
    for name, version in standard_pins(python).items():
        pinned = theirs.get(SUBSTITUTES.get(name, name))
        assert pinned in (None, version), f"{name}: standard {version}, Numerai {pinned}"


@pytest.mark.parametrize("python, module, expected", [
    ("3.11", "sklearn.ensemble._forest", ("scikit-learn", "1.6.1")),
    ("3.11", "numerai_tools.scoring", ("numerai-tools", "0.4.0")),
    ("3.10", "numerai_tools", ("numerai-tools", "0.3.3")),
    ("3.14", "numerai_tools", ("numerai-tools", "0.6.0")),
    ("3.11", "google.protobuf.message", ("protobuf", "5.29.5")),  # a namespace package: the wheel's package
    ("3.11", "yaml", ("pyyaml", "6.0.2")),
    ("3.11", "PIL.Image", ("pillow", "11.3.0")),
    ("3.11", "tabulate", ("tabulate", "0.9.0")),
    ("3.11", "psutil", None),  # only 3.10's image has it
    ("3.11", "my_own_helpers", None),
    ("3.11", "src.features", None),  # kiwisolver's wheel ships a `src` folder: not an import name of it
    ("3.11", "testing", None),  # nor google-auth's `testing`
])
def test_the_distribution_behind_an_import_name(python, module, expected):
    assert numerai.provider(python, module) == expected


def test_import_roots_follow_namespace_packages():
    assert numerai.import_root("google.protobuf.message") == "google.protobuf"
    assert numerai.import_root("pandas.core.frame") == "pandas"
    assert numerai.import_root("my_module.sub") == "my_module"


def test_closure_follows_requirements_at_numerais_pins():
    found = numerai.closure("3.11", ["numerai-tools"])
    # numerai-tools 0.4.0 needs torch (imported by numerai_tools.scoring), and torch its CUDA wheels
    assert found.pins["torch"] == "2.7.1" and found.pins["numerai-tools"] == "0.4.0"
    assert any(name.startswith("nvidia-") for name in found.pins) and found.required_by["torch"] == "numerai-tools"
    assert not found.not_in_list and not found.no_metadata
    assert "torch" not in numerai.closure("3.13", ["numerai-tools"]).pins  # 0.4.3 no longer imports torch


def test_requirements_numerais_list_lacks_are_skipped_and_reported():
    found = numerai.closure("3.11", ["numerblox"])
    lacking = {requirement.split(">")[0].split("=")[0] for by, requirement in found.not_in_list if by == "numerblox"}
    assert lacking == {"google-cloud-storage", "numerai-era-data", "pandas-ta-classic"}
    assert not set(found.pins) & lacking


def test_extras_are_followed_only_when_asked():
    with_extras = [(n, v) for n, v in numerai.numerai_list("3.11").pins.items()
                   if any("extra ==" in r for r in numerai.distribution(n, v).requires)]
    name, _version = with_extras[0]
    plain = numerai.closure("3.11", [name])
    extras = {r.split("extra ==")[1].strip(" \"'") for r in numerai.distribution(name, _version).requires
              if "extra ==" in r}
    everything = numerai.closure("3.11", [name], extras={name: extras})
    assert set(plain.pins) <= set(everything.pins)
    assert len(everything.pins) + len(everything.not_in_list) > len(plain.pins) + len(plain.not_in_list)


# ---------------------------------------------------------------- the auto profile's pins

def test_auto_needing_nothing_more_is_the_standard_image():
    assert pin_set("3.11", "auto") == pin_set("3.11", "standard")
    # xgboost is in the standard image as xgboost-cpu: nothing to add
    assert pin_set("3.11", "auto", needs={"xgboost": "xgboost"}).profile == "standard"


def test_auto_adds_what_numerais_image_has_and_names_the_image_by_the_set():
    pins = pin_set("3.11", "auto", needs={"tabulate": "tabulate"})
    assert pins.profile == "auto" and pins.added == {"tabulate": "0.9.0"} and pins.wanted == {"tabulate": "tabulate"}
    assert pins.all == {**standard_pins("3.11"), "tabulate": "0.9.0"}
    assert pins.tag_profile == f"auto-{pins.digest()[:12]}"
    under, top = pins.layer()
    assert under == pin_set("3.11", "standard") and top == {"tabulate": "0.9.0"}
    # the same package set, needed for another module, is the same image
    assert pin_set("3.11", "auto", needs={"tabulate": "tabulate.tabulate"}).digest() == pins.digest()


def test_auto_with_torch_adds_its_closure_but_nothing_the_standard_image_has():
    pins = pin_set("3.11", "auto", needs={"numerai-tools": "numerai_tools"})
    assert pins.added["torch"] == "2.7.1" and not set(pins.added) & set(standard_pins("3.11"))
    assert pins.layer() is not None


def test_an_override_of_a_standard_pin_is_built_from_scratch_not_layered(tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("pandas==2.2.0\n")
    pins = pin_set("3.11", "auto", extra_requirements=extra, needs={"tabulate": "tabulate"})
    assert pins.layer() is None and pins.all["pandas"] == "2.2.0"


# ---------------------------------------------------------------- pin files, wheels

def test_read_pins_keeps_markers_and_reads_direct_wheel_links():
    pins = read_pins("# comment\nnumpy==2.1.3\nmlx==0.32.0 ; sys_platform == \"darwin\"\n"
                     "tf-nightly @ https://example.org/tf_nightly-2.22.0.dev20260722-cp314-cp314-"
                     "manylinux_2_27_x86_64.whl#sha256=00\n--extra-index-url https://x\n", "t")
    assert [(p.name, p.version, p.marker) for p in pins] == [
        ("numpy", "2.1.3", None), ("mlx", "0.32.0", 'sys_platform == "darwin"'),
        ("tf-nightly", "2.22.0.dev20260722", None)]
    with pytest.raises(PinError, match="not an exact pin"):
        read_pins("numpy>=1\n", "t")


def test_import_names_from_a_wheels_file_list():
    assert pypi.import_names(["six.py", "six-1.17.0.dist-info/RECORD"]) == ["six"]
    assert pypi.import_names(["google/protobuf/__init__.py", "google/protobuf/message.py"]) == ["google.protobuf"]
    assert pypi.import_names(["torch/__init__.py", "functorch/__init__.py", "torch.libs/x.so",
                              "torch-2.7.1.data/scripts/torchrun"]) == ["functorch", "torch"]
    assert pypi.import_names(["x-1.data/purelib/foo/__init__.py", "_bar.cpython-311-x86_64-linux-gnu.so"],
                             ["foo", "baz"]) == ["_bar", "baz", "foo"]


def test_best_wheel_is_the_one_pip_picks():
    files = [{"filename": f, "size": i, "url": f} for i, f in enumerate([
        "pkg-1.0-py3-none-any.whl", "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "pkg-1.0-cp311-cp311-macosx_11_0_arm64.whl",
        "pkg-1.0.tar.gz", "pkg-0.9-cp311-cp311-manylinux_2_28_x86_64.whl"])]
    assert pypi.best_wheel(files, "1.0", "3.11")["filename"].startswith("pkg-1.0-cp311-cp311-manylinux_2_17")
    assert pypi.best_wheel(files, "1.0", "3.13")["filename"] == "pkg-1.0-py3-none-any.whl"
    assert pypi.best_wheel(files, "2.0", "3.11") is None


def test_a_remote_zip_is_read_from_its_central_directory(tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pkg/__init__.py", "x = 1\n" * 1000)
        archive.writestr("pkg-1.0.dist-info/METADATA", "Name: pkg\nRequires-Dist: numpy>=2\n")
        archive.writestr("pkg-1.0.dist-info/top_level.txt", "pkg\n", compress_type=zipfile.ZIP_STORED)
    remote = pypi.RemoteZip(wheel.as_uri(), wheel.stat().st_size)
    members = {m.name: m for m in remote.members()}
    assert set(members) == {"pkg/__init__.py", "pkg-1.0.dist-info/METADATA", "pkg-1.0.dist-info/top_level.txt"}
    assert b"Requires-Dist: numpy>=2" in remote.open(members["pkg-1.0.dist-info/METADATA"])
    assert remote.open(members["pkg-1.0.dist-info/top_level.txt"]) == b"pkg\n"
