"""Every built-in component names the work it implements (``citation``), and what
``iqabench cite`` prints is BibTeX a parser reads: balanced braces, one
``@type{key,`` per entry, unique keys, ``field = {value}`` pairs with the fields
its entry type requires (a minimal checker below: no new dependency)."""
from __future__ import annotations

import re

import pytest

#: components with nothing to cite, and why
NOTHING_TO_CITE = {("dataset", "folder"): "the user's own images"}
#: the fields BibTeX's standard styles require per entry type
REQUIRED = {"article": ("author", "title", "journal", "year"),
            "inproceedings": ("author", "title", "booktitle", "year"),
            "misc": ("title", "year"), "incollection": ("author", "title", "booktitle", "publisher", "year"), "techreport": ("author", "title", "institution", "year")}


def parse_bibtex(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """``key -> (type, fields)`` of every entry of ``text`` (``%`` lines are comments);
    raises AssertionError on anything a BibTeX parser would reject."""
    entries: dict[str, tuple[str, dict[str, str]]] = {}
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("%"))
    pos = 0
    while (start := body.find("@", pos)) >= 0:
        assert not body[pos:start].strip(), f"text outside an entry: {body[pos:start][:60]!r}"
        head = re.match(r"@(\w+)\s*\{\s*([^,\s{}]+)\s*,", body[start:])
        assert head, f"bad entry head: {body[start:start + 60]!r}"
        depth, i = 0, start + head.group(0).index("{")
        while True:  # the entry ends where its braces balance
            assert i < len(body), f"unbalanced braces in {head.group(2)}"
            depth += {"{": 1, "}": -1}.get(body[i], 0)
            i += 1
            if depth == 0:
                break
        inner = body[start + head.end(): i - 1]
        fields, rest = {}, inner
        while rest.strip():
            m = re.match(r"\s*(\w+)\s*=\s*\{", rest)
            assert m, f"{head.group(2)}: bad field near {rest.strip()[:40]!r}"
            depth, j = 1, m.end()
            while depth:
                assert j < len(rest), f"{head.group(2)}: unbalanced value of {m.group(1)}"
                depth += {"{": 1, "}": -1}.get(rest[j], 0)
                j += 1
            name = m.group(1).lower()
            assert name not in fields, f"{head.group(2)}: field {name} twice"
            fields[name] = rest[m.end(): j - 1]
            rest = rest[j:].lstrip()
            rest = rest[1:] if rest.startswith(",") else rest
        key = head.group(2)
        assert key not in entries, f"key {key} twice"
        kind = head.group(1).lower()
        missing = [f for f in REQUIRED.get(kind, ("title",)) if f not in fields]
        assert not missing, f"{key}: {kind} lacks {missing}"
        assert re.fullmatch(r"\d{4}", fields["year"]), f"{key}: year {fields['year']!r}"
        entries[key] = (kind, fields)
        pos = i
    assert not body[pos:].strip(), f"text after the last entry: {body[pos:][:60]!r}"
    return entries


def test_the_checker_rejects_what_bibtex_rejects():
    good = "@article{a,\n  author = {A, B},\n  title = {{T} x},\n  journal = {J},\n  year = {2020},\n}"
    assert parse_bibtex(good)["a"][1]["title"] == "{T} x"
    for bad in (good.replace("{2020}", "{2020"), good.replace("journal", "jornal"),
                good + "\n" + good, good.replace("@article{a,", "@article{a"), good + "\nstray"):
        with pytest.raises(AssertionError):
            parse_bibtex(bad)


def test_every_built_in_component_declares_a_citation_that_parses():
    from iqabench.board.cite import citations_of
    from iqabench.registry import KINDS, registry

    for kind in KINDS:
        for name, entry in registry(kind).items():
            if (kind, name) in NOTHING_TO_CITE:
                continue
            found = citations_of(kind, name)
            assert found, f"{kind} {name} ({entry.plugin}) declares no citation"
            for text in found:
                assert len(parse_bibtex(text)) == 1, (kind, name)


def test_cite_prints_bibtex_a_parser_reads(invoke, tmp_path):
    """``iqabench cite`` on a store whose cells use every built-in component kind."""
    from iqabench.board.cite import bibliography
    from iqabench.run.store import Store

    store = Store(tmp_path / "s.sqlite")
    cells = [("adversarial", {"model": {"name": "hyperiqa"}, "dataset": {"name": "koniq10k"},
                              "attack": {"name": "amifgsm"}}),
             ("backdoor", {"model": {"name": "cnniqa"}, "dataset": {"name": "embedded"}, "attack": {"name": "baiqa-c"},
                           "trigger": {"name": "wanet"}, "defense": {"name": "prune"}, "victim": "backdoored"})]
    for i, (kind, cfg) in enumerate(cells):
        store.start_cell(f"k{i}", kind, cfg, "run")
        store.finish_cell(f"k{i}", {})
    entries = parse_bibtex(bibliography(store))
    titles = " ".join(fields["title"].lower() for _, fields in entries.values())
    for words in ("hyper network", "koniq-10k", "adversarial", "backdoor", "warping", "fine-pruning"):
        assert words in titles, words
