"""The package's docstring example and the README's "Use it from Python"
example run as written."""

import doctest
import os
import re
from pathlib import Path

import arcface

README = Path(__file__).resolve().parents[2] / "README.md"


def test_package_docstring_example():
    assert doctest.testmod(arcface).failed == 0


def test_readme_python_example(tmp_path, capsys):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use it from Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # it writes head.safetensors
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert (tmp_path / "head.safetensors").exists()
    assert "(32, 64)" in capsys.readouterr().out
