"""Every link in the teaching notebooks resolves where `make lab` serves them (the repository
root, the notebooks opened): the file exists inside the served root, and an anchor names a heading."""

from __future__ import annotations

import pytest

from notebook_links import REPO, heading_ids, links

LINKS = links()


def test_the_notebooks_name_files_at_all():
    """The collector finds what is there (so the tests below cannot pass on an empty list)."""
    assert any(link.path == REPO / "docs" / "derivations.md" for link in LINKS)
    assert {link.source for link in LINKS} >= {"notebooks/01_derivation.ipynb",
                                                "notebooks/02_gradient_check_exercises.ipynb"}


@pytest.mark.parametrize("link", LINKS, ids=str)
def test_link_resolves_inside_the_served_root(link):
    assert link.path is not None, f"{link} points outside the repository, which `make lab` serves"
    assert link.path.exists(), f"{link}: no such file {link.path.relative_to(REPO)}"


@pytest.mark.parametrize("link", [link for link in LINKS if link.anchor], ids=str)
def test_anchor_names_a_heading(link):
    assert link.anchor in heading_ids(link.path), (
        f"{link}: no heading with id {link.anchor!r} in {link.path.relative_to(REPO)}")


def test_a_broken_link_and_anchor_are_caught(tmp_path, monkeypatch):
    import notebook_links as nl

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "d.md").write_text("# Title\n\n## 3. The discriminator\n")
    (tmp_path / "notebooks" / "README.md").write_text(
        "[ok](../docs/d.md#3-the-discriminator) [lab](../docs/d.md#3.-The-discriminator) "
        "[bad anchor](../docs/d.md#4-nothing) [gone](../docs/missing.md) [out](../../etc/passwd) `docs/d.md`")
    monkeypatch.setattr(nl, "REPO", tmp_path.resolve())
    monkeypatch.setattr(nl, "NOTEBOOKS", tmp_path.resolve() / "notebooks")
    found = {link.target: link for link in nl.links()}
    assert found["../docs/d.md#3-the-discriminator"].anchor in nl.heading_ids(found["../docs/d.md#4-nothing"].path)
    assert "3.-The-discriminator" in nl.heading_ids(tmp_path / "docs" / "d.md")
    assert "4-nothing" not in nl.heading_ids(tmp_path / "docs" / "d.md")
    assert not found["../docs/missing.md"].path.exists()
    assert found["../../etc/passwd"].path is None
    assert found["docs/d.md"].path == (tmp_path / "docs" / "d.md").resolve() and not found["docs/d.md"].written_as_link
