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
    # no package is installed on top of requirements.txt except the project itself
    extra = re.findall(r"pip install (?!.*-r )(?!.*--no-deps /opt/glacier-movement)(.*)", post)
    assert not extra, f"packages installed outside requirements.txt: {extra}"


def test_torch_pin_matches_requirements():
    pins = dict(
        line.split("==")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["torch"] == "2.13.0"


def test_spython_parses_the_definition():
    recipe = SingularityParser(str(DEF)).recipe
    (stage,) = recipe.values()
    assert "cuda" in stage.fromHeader
    assert any("requirements.txt" in f for f in stage.files)
    assert stage.cmd and "glacier-movement" in stage.cmd
