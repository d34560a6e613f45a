"""The guide stays true: every ``>>>`` example in docs/*.md runs and prints what the page says, and
every code excerpt marked ``<!-- quote: path -->`` appears, line for line, in that file.

The worked example of docs/tutorial.md (one gradient-descent step on a 2-2-1 network, with the
compiled kernels and the NumPy twin) is one of those ``>>>`` examples, so its numbers are checked
here. Fence lines are blanked before doctest reads a page, so an expected output can end right
at a closing fence.
"""
import argparse
import doctest
import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import pytest

import fastmlp
from fastmlp.__main__ import parser as cli_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^\s*```")
QUOTE = re.compile(r"<!-- quote: (?P<path>\S+) -->\n```[^\n]*\n(?P<body>.*?)\n```", re.DOTALL)


def test_the_guide_has_its_pages():
    assert {page.name for page in PAGES} >= {"tutorial.md", "api.md", "performance.md"}


NEEDS = re.compile(r"<!-- needs: (?P<modules>[\w. ]+) -->")


def without_fences(page_text):
    """The page with fence lines blanked, and each fenced block after a ``<!-- needs: modules -->``
    line blanked too when one of those (optional) modules is not installed."""
    lines, skipping, inside = [], False, False
    for line in page_text.splitlines():
        needs = NEEDS.search(line)
        if needs:
            skipping = any(importlib.util.find_spec(name) is None for name in needs["modules"].split())
        if FENCE.match(line):
            inside = not inside
            skipping = skipping and inside
            line = ""
        lines.append("" if skipping and inside else line)
    return "\n".join(lines)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_examples_run_and_print_what_the_page_says(page):
    text = without_fences(page.read_text())
    test = doctest.DocTestParser().get_doctest(text, {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples in {page.name} failed (see above)"


def quotes():
    for page in PAGES:
        for match in QUOTE.finditer(page.read_text()):
            yield pytest.param(match["path"], match["body"], id=f"{page.name}:{match['path']}:{match.start()}")


def runs(body):
    """The quoted lines, split into runs at each ``...`` line (lines the quote leaves out)."""
    groups = [[]]
    for line in body.splitlines():
        if line.strip() == "...":
            groups.append([])
        elif line.strip():
            groups[-1].append(line.rstrip())
    return [group for group in groups if group]


@pytest.mark.parametrize("path, body", list(quotes()))
def test_quoted_code_is_in_the_file(path, body):
    """Each run of quoted lines stands in the file as consecutive lines (same indentation), in order."""
    lines = [line.rstrip() for line in (ROOT / path).read_text().splitlines()]
    start = 0
    for run in runs(body):
        found = next((i for i in range(start, len(lines) - len(run) + 1) if lines[i:i + len(run)] == run), None)
        assert found is not None, f"not found in {path} (after line {start}):\n" + "\n".join(run)
        start = found + len(run)


def test_the_tutorial_quotes_every_step_from_both_files():
    text = (DOCS / "tutorial.md").read_text()
    quoted = [match["path"] for match in QUOTE.finditer(text)]
    assert quoted.count("fastmlp/reference.py") >= 6 and quoted.count("fastmlp/_kernels.pyx") >= 5


# ---------------------------------------------------------------------------------------------
# docs/api.md names everything public, every parameter of fit, and every command-line option
# ---------------------------------------------------------------------------------------------

def api_text():
    return (DOCS / "api.md").read_text()


@pytest.mark.parametrize("module", ["fastmlp", "fastmlp.datasets", "fastmlp.plots"])
def test_api_names_every_public_name(module):
    names = importlib.import_module(module).__all__
    missing = [name for name in names if not re.search(rf"\b{re.escape(name)}\b", api_text())]
    assert not missing, f"{module} names missing from docs/api.md: {missing}"


@pytest.mark.parametrize("function", ["fit", "check_gradients"])
def test_api_names_every_parameter(function):
    parameters = inspect.signature(getattr(fastmlp, function)).parameters
    missing = [name for name in parameters if f"{name}=" not in api_text() and f"`{name}`" not in api_text()]
    assert not missing, f"parameters of {function} missing from docs/api.md: {missing}"


def cli_commands():
    """{command: set of its --options} from fastmlp's argument parser."""
    subparsers = next(action for action in cli_parser()._actions if isinstance(action, argparse._SubParsersAction))
    return {name: {option for action in command._actions for option in action.option_strings
                   if option.startswith("--") and option != "--help"}
            for name, command in subparsers.choices.items()}


def documented_commands():
    """{command: set of the --options in its section} from docs/api.md."""
    sections = re.split(r"^### `fastmlp ([\w-]+)`", api_text(), flags=re.MULTILINE)
    return {name: set(re.findall(r"`(--[a-z][\w-]*)`", body)) for name, body in zip(sections[1::2], sections[2::2])}


def test_api_documents_exactly_the_commands_and_options():
    assert documented_commands() == cli_commands()
