"""deeplearning.def: no Apptainer runtime is installable here, so the definition is checked statically.

spython parses the definition but silently drops sections it does not know (e.g. %help), so the
sections are also split out here and checked one by one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from spython.main.parse.parsers import SingularityParser

ROOT = Path(__file__).resolve().parents[1]
DEF = ROOT / "deeplearning.def"


def sections(text: str) -> dict[str, str]:
    """Header lines under '' and each %section's body under its name."""
    out: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        m = re.match(r"^%(\w+)\s*$", line)
        if m:
            current = m.group(1)
            out[current] = []
        else:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.split(r"[=<>!~\[ ]", line, maxsplit=1)[0].lower())
    return names


@pytest.fixture(scope="module")
def definition() -> dict[str, str]:
    return sections(DEF.read_text())


def test_header_bootstraps_from_a_cuda_image(definition):
    header = definition[""]
    assert re.search(r"^Bootstrap:\s*docker\s*$", header, re.M)
    m = re.search(r"^From:\s*(\S+)\s*$", header, re.M)
    assert m and "cuda" in m.group(1) and "runtime" in m.group(1)


@pytest.mark.parametrize(
    "name", ["labels", "help", "files", "post", "environment", "runscript", "test"]
)
def test_required_sections_present_and_not_empty(definition, name):
    assert name in definition, f"%{name} missing"
    assert definition[name].strip(), f"%{name} is empty"


def test_runscript_is_the_command_line(definition):
    assert 'glacier-movement "$@"' in definition["runscript"]


def test_test_section_imports_package_and_runs_help(definition):
    body = definition["test"]
    assert "import glacier_movement" in body
    assert "glacier-movement --help" in body


def test_package_list_is_requirements_txt(definition):
    """The container installs exactly requirements.txt (copied in by %files) and the package."""
    files = definition["files"].split()
    assert "requirements.txt" in files and "glacier_movement" in files
    post = definition["post"]
    m = re.search(r"pip install[^\n]*-r\s+(\S*requirements\.txt)", post)
    assert m, "%post must pip install -r requirements.txt"
    dest = files[files.index("requirements.txt") + 1]
    assert m.group(1) == dest
    names = requirement_names(ROOT / "requirements.txt")
    assert "torch" in names and len(names) == len(set(names))
    # nothing is installed on top of requirements.txt except the project itself and torch's CUDA
    # build of the same pin (see test_torch_is_the_cuda_build_of_the_base_image)
    extra = re.findall(
        r"pip install (?!.*-r )(?!.*--no-deps /opt/glacier-movement)(?!.*--index-url)(.*)", post
    )
    assert not extra, f"packages installed outside requirements.txt: {extra}"


def test_torch_is_the_cuda_build_of_the_base_image(definition):
    """PyPI's torch 2.13.0 is built for CUDA 13 (host driver >= 580): on the CUDA 12.8 image the
    container installs the same pin from PyTorch's cu128 index, before requirements.txt."""
    base = re.search(r"^From:\s*\S+:(\d+)\.(\d+)", definition[""], re.M)
    assert base, "the base image tag names no CUDA version"
    cuda = f"cu{base.group(1)}{base.group(2)}"  # 12.8 → cu128
    post = definition["post"]
    m = re.search(r"pip install[^\n]*\btorch==(\S+)[^\n]*--index-url\s+(\S+)", post)
    assert m, "%post must install torch from PyTorch's index for the base image's CUDA"
    pins = dict(
        line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )  # fmt: skip
    assert m.group(1) == pins["torch"]
    assert m.group(2).rstrip("/") == f"https://download.pytorch.org/whl/{cuda}"
    assert post.index(m.group(0)) < post.index("-r /opt/glacier-movement/requirements.txt")
    assert f"{base.group(1)}.{base.group(2)}" in definition["test"]  # %test checks the build


def test_test_section_fails_when_torch_cannot_use_a_visible_gpu(definition):
    body = definition["test"]
    assert re.search(r"^\s*set -e\s*$", body, re.M), "%test must stop at the first failure"
    m = re.search(r"python3 - <<'PY'\n(.*?)\nPY\n", body, re.S)
    assert m, "%test runs its GPU check as an inline Python script"
    code = m.group(1)
    compile(code, "%test", "exec")  # the script is valid Python
    for needed in (
        "torch.cuda.is_available()", "/dev/nvidia", "nvidia-smi", "sys.exit(1)",
        "torch.version.cuda", "get_device_name",
    ):  # fmt: skip
        assert needed in code, f"%test's GPU check lacks {needed}"


def test_spython_parses_the_definition():
    recipe = SingularityParser(str(DEF)).recipe
    (stage,) = recipe.values()
    assert "cuda" in stage.fromHeader
    assert any("requirements.txt" in f for f in stage.files)
    assert stage.cmd and "glacier-movement" in stage.cmd
