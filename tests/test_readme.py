"""Every Python snippet of the README runs, as a reader would paste it.

A snippet whose first line names a file (``# my_package/models.py``) is
written to that file of a package in a temporary directory -- the plugin
package the "Writing a plugin" section builds; every other snippet runs as a
script in a fresh namespace, in README order, with that package importable
and the working directory a temporary one.  So a snippet that uses a name it
does not import fails here, and so does a plugin the README describes but
that does not register or run.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from iqabench.registry import plugin_infos, unregister_plugin

README = Path(__file__).resolve().parents[1] / "README.md"
FILE_HEADER = re.compile(r"#\s*([\w/]+\.py)\b")


def snippets() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_a_snippet_for_every_kind_of_plugin():
    files = {m.group(1) for code in snippets() if (m := FILE_HEADER.match(code))}
    assert {f"my_package/{m}.py" for m in ("plugin", "models", "datasets", "attacks", "triggers", "defenses",
                                           "experiments")} <= files


def test_every_python_snippet_of_the_readme_runs(tmp_path, monkeypatch):
    package_root = tmp_path / "src"
    scripts = []
    for i, code in enumerate(snippets(), 1):
        header = FILE_HEADER.match(code)
        if header:
            path = package_root / header.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "__init__.py").touch()
            path.write_text(code)
        else:
            scripts.append((i, code))
    assert scripts, "the README has no script snippet"
    monkeypatch.syspath_prepend(str(package_root))
    monkeypatch.chdir(tmp_path)
    try:
        for i, code in scripts:
            exec(compile(code, f"README.md python snippet {i}", "exec"), {"__name__": f"readme_snippet_{i}"})
        assert "my-package" in plugin_infos()  # the last snippet registers the README's plugin
    finally:
        unregister_plugin("my-package")
        for name in [m for m in sys.modules if m == "my_package" or m.startswith("my_package.")]:
            del sys.modules[name]
