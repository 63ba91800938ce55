"""Every citation of the benchmark notes names a file that exists and, where it
quotes a section title, the start of a heading in that file (CPU only)."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTES = ROOT / "bench" / "notes"
CITING = [ROOT / "README.md", *sorted((ROOT / "cupyflash").rglob("*.py")),
          *sorted((ROOT / "cuda_src").glob("*.*")), *sorted((ROOT / "bench").glob("*.py"))]
REF = re.compile(r"bench/notes/(\w+\.md)")


def _headings(name):
    return [line.lstrip("#").strip() for line in (NOTES / name).read_text().split("\n")
            if line.startswith("## ") or line.startswith("### ")]


def _citations():
    for path in CITING:
        text = path.read_text()
        # One line per source line, comment markers dropped, so that a title wrapped
        # over two comment lines reads as one.
        flat = " ".join(re.sub(r"^\s*(#|//|\*)?\s*", "", line) for line in text.split("\n"))
        for m in REF.finditer(flat):
            tail = flat[m.end():m.end() + 200]
            tail = tail[:tail.find(")")] if ")" in tail else tail[:80]
            yield path.relative_to(ROOT), m.group(1), re.findall(r'"([^"]+)"', tail)


def test_notes_index_lists_every_file():
    index = (ROOT / "bench" / "NOTES.md").read_text()
    files = sorted(p.name for p in NOTES.glob("*.md"))
    assert files, "bench/notes/ is empty"
    for name in files:
        assert f"notes/{name}" in index, name


def test_citations_point_at_existing_sections():
    cites = list(_citations())
    assert len(cites) >= 15
    for path, name, titles in cites:
        assert (NOTES / name).is_file(), f"{path}: bench/notes/{name} does not exist"
        heads = _headings(name)
        for title in titles:
            assert any(h.startswith(title) for h in heads), f"{path}: {name} has no section {title!r}"
