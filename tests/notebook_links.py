"""Every link and file reference in the teaching notebooks (and their README), resolved as
`make lab` serves them: relative to the notebook's folder, inside the repository root.

Used by ``tests/test_notebook_links.py`` (on disk) and ``tests/test_lab.py`` (through the server).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
_CODE_SPAN = re.compile(r"`([^`\s]+)`")
_FILE_LIKE = re.compile(r"^(?:\.\./|\./)?(?:[\w.-]+/)*[\w.-]+\.(?:md|ipynb|py|png|json|cfg|toml|txt)(?:#[\w.-]+)?$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Link:
    source: str          # the notebook (or README) it is in, relative to the repository
    target: str          # as written
    path: Path | None    # the file it resolves to (None: outside the served root)
    anchor: str          # the part after '#', if any
    written_as_link: bool

    def __str__(self) -> str:
        return f"{self.source}: {self.target}"


def _texts(path: Path) -> list[str]:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return [path.read_text(encoding="utf-8")]


def _resolve(base: Path, target: str, *, code_span: bool) -> Path | None:
    rel = target.split("#", 1)[0]
    candidates = [base / rel] + ([REPO / rel] if code_span else [])       # `docs/x.md` names a repository path
    for cand in candidates:
        path = cand.resolve()
        if path.is_relative_to(REPO) and path.exists():
            return path
    first = candidates[0].resolve()
    return first if first.is_relative_to(REPO) else None


def links() -> list[Link]:
    """Every relative link (markdown, HTML) and every file named in a code span, in notebooks/."""
    found = []
    for path in sorted([*NOTEBOOKS.glob("*.ipynb"), NOTEBOOKS / "README.md"]):
        source = path.relative_to(REPO).as_posix()
        for text in _texts(path):
            targets = [(t, True) for t in _MD_LINK.findall(text) + _HTML_LINK.findall(text)]
            targets += [(t, False) for t in _CODE_SPAN.findall(text) if _FILE_LIKE.match(t)]
            for target, is_link in targets:
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue                                                # http(s):, mailto:, in-page
                anchor = target.split("#", 1)[1] if "#" in target else ""
                found.append(Link(source, target, _resolve(path.parent, target, code_span=not is_link),
                                  anchor, is_link))
    return found


def heading_ids(path: Path) -> set[str]:
    """The ids a heading of ``path`` (markdown, or a notebook's markdown cells) can be linked by:
    JupyterLab's (the text, spaces as '-') and GitHub's (lower case, punctuation dropped)."""
    ids = set()
    for text in _texts(path) if path.suffix in (".md", ".ipynb") else []:
        in_code = False
        for line in text.splitlines():
            if line.lstrip().startswith("```"):
                in_code = not in_code
            m = None if in_code else _HEADING.match(line)
            if m:
                title = re.sub(r"[*_`]", "", m.group(1))
                ids.add(title.replace(" ", "-"))
                slug = "".join(ch for ch in unicodedata.normalize("NFKC", title.lower())
                               if ch.isalnum() or ch in " -_")
                ids.add(slug.replace(" ", "-"))
    return ids
