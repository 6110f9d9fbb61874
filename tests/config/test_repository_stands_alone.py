"""The repository stands alone: no tracked file points a reader to a document outside it (the
project's specification or style guide, a shared folder). What a reader needs is in the README,
docs/ and the code."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()

OUTSIDE_REFERENCES = re.compile(
    r"\bSPEC\b"  # the specification, "SPEC §6"
    r"|\.\./shared|/work/shared|\bshared/SPEC"  # the folder it lives in
    r"|\bSTYLE\.md\b|\bSTYLE \""  # the style guide, STYLE "State machines"
    r"|\bseed 00\d"  # the seed documents of the specification
)


def tracked_text_files() -> list[Path]:
    names = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    return [REPO / name for name in names if name and name != THIS_FILE]


def test_no_tracked_file_refers_to_a_document_outside_the_repository():
    found = []
    for path in tracked_text_files():
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary (screenshots)
            continue
        for number, line in enumerate(data.decode(errors="replace").splitlines(), 1):
            if OUTSIDE_REFERENCES.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")

    assert found == [], "\n".join(found)


def test_the_check_recognises_each_kind_of_outside_reference():
    for line in ('"""The shops API (SPEC §6)."""', "see ../shared/notes", "as STYLE.md says", "seed 004"):
        assert OUTSIDE_REFERENCES.search(line), line
    for line in ("SPECTACULAR_SETTINGS = {", "def _validate_value(spec: dict, value):"):
        assert not OUTSIDE_REFERENCES.search(line), line
