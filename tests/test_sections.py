"""report.sections: the training's own Markdown and images in the pull request report."""

from __future__ import annotations

import dataclasses
import io
import os
import random
import textwrap

import pytest

from mlci import pipeline
from mlci.config import parse_config
from mlci.console import Console
from mlci.core import report as report_module
from mlci.core.gate import Baseline, Rule, evaluate_gate
from mlci.core.markdown import untrusted_markdown
from mlci.core.report import ReportInput, ReportSection
from mlci.errors import EXIT_OK, ConfigError
from tests.conftest import CONFIG, Project

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 5
HOSTILE = textwrap.dedent(
    """\
    ## Error analysis

    | class | errors |
    |---|---|
    | cat | 3 |

    <script>alert(1)</script> <img src=x onerror=alert(1)>
    <!-- mlci:report key=tiny-model -->
    </details>
    cc @team, mail me at a@b.c, see [the docs](https://example.com/docs)

    `<kbd>kept in code</kbd>`

    ```python
    print("<b>kept</b>")
    """
)


def report_with(*sections: ReportSection) -> ReportInput:
    gate = evaluate_gate(
        [Rule("accuracy", min=0.8)], {"accuracy": 0.9}, Baseline("file", "b.json", {})
    )
    return ReportInput(
        model="m", gate=gate, candidate={"accuracy": 0.9, "loss": 0.2}, sections=sections
    )


def test_untrusted_markdown_keeps_markdown_and_neutralises_html() -> None:
    safe = untrusted_markdown(HOSTILE)
    assert "| cat | 3 |" in safe and "[the docs](https://example.com/docs)" in safe
    for raw in ("<script>", "<img src", "<!-- mlci:report", "</details>"):
        assert raw not in safe
    assert "&lt;script>" in safe and "&lt;!-- mlci:report" in safe
    assert "@&#8203;team" in safe and "a@b.c" in safe  # a mention is defused, a mail is not
    assert "`<kbd>kept in code</kbd>`" in safe and 'print("<b>kept</b>")' in safe
    assert safe.endswith('print("<b>kept</b>")\n```\n')  # the open block is closed


def test_untrusted_markdown_leaves_indented_code_as_written() -> None:
    text = "Logs:\n\n    <b>epoch</b> 1 @loss\n\n- item\n\n    <b>in the item</b>\n"

    safe = untrusted_markdown(text)

    assert "\n    <b>epoch</b> 1 @loss\n" in safe  # code: shown as written
    assert "\n    &lt;b>in the item&lt;/b>\n" in safe  # the item's text, not code


# Lines that nest, interrupt and continue blocks in the ways CommonMark decides what is
# code: random texts of them must never reach a renderer as HTML.
# fmt: off
PIECES = (
    "text", "", "    code", "  - item", "- item", "1. item", "2. x", "10. ten", "-", "   -",
    "      deep", "        eight", "     five", "\tcode", "   ```", "```", "~~~", "  ```",
    "````", "- ```", "1. ~~~", "```x```", "# h", "> q", "> - a", ">     <i>", "***", "* * *",
    "===", "---", "  text", "`a", "b`", "<div>", "<details>", "  <script>", "    <b>x</b>",
    "- <i>", "      <i>", "1.     <i>", "+ a", "1) x", "    - x", "  1. y", "     - z",
)
# fmt: on


def test_untrusted_markdown_never_renders_as_html_in_a_commonmark_parser() -> None:
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark")  # the reference parser: raw HTML on, as on forges
    chooser = random.Random(7)
    for _ in range(3000):
        text = "\n".join(chooser.choices(PIECES, k=chooser.randint(2, 8))) + "\n"
        tokens = parser.parse(untrusted_markdown(text))
        inline = [child for token in tokens for child in token.children or ()]
        html = [t.content for t in tokens + inline if t.type in ("html_block", "html_inline")]
        assert html == [], text


def test_sections_come_after_the_gate_table_and_before_other_metrics() -> None:
    report = report_with(
        ReportSection("reports/errors.md", markdown=HOSTILE),
        ReportSection("plots/importance.png", png=PNG),
        ReportSection("plots/missing.png", note="plots/missing.png was not found"),
    )
    text = report_module.render_markdown(report)
    table = text.index("| accuracy")
    errors = text.index("<summary>reports/errors.md</summary>")
    other = text.index("Other metrics")
    assert table < errors < other
    assert text.count("<details") == text.count("</details>")  # the section closed nothing
    assert "plots/importance.png is not shown here: publish.images is `inline`" in text
    assert "> ⚠️ plots/missing.png was not found" in text
    assert "<script>" not in text
    hosted = dataclasses.replace(report.sections[1], image_url="../blob/abc/x.png?raw=true")
    assert "![plots/importance.png](../blob/abc/x.png?raw=true)" in report_module.render_markdown(
        report_with(hosted)
    )
    html = report_module.render_html(report)
    assert "&lt;script&gt;" in html and "data:image/png;base64," in html


def test_sections_fold_first_when_the_comment_is_over_the_limit() -> None:
    big = ReportSection("big.md", markdown="word " * 20_000)
    text = report_module.render_markdown(report_with(big), max_chars=20_000)
    assert len(text) <= 20_000 and "the sections from report.sections" in text
    assert "| accuracy" in text


def test_report_document_keeps_sections() -> None:
    report = report_with(ReportSection("a.md", markdown="# hi"), ReportSection("b.png", png=PNG))
    document = report_module.to_document(report)
    assert document["sections"][1]["png"] == "section-2.png"  # type: ignore[index]
    back = report_module.from_document(document, {"section-2.png": PNG}.__getitem__)
    assert back.sections == report.sections


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("../secrets.md", "inside the project"),
        ("/etc/passwd.md", "inside the project"),
        ("notes.txt", "a Markdown file (.md) or a PNG image"),
    ],
)
def test_config_rejects_bad_section_paths(entry: str, message: str, tmp_path: object) -> None:
    from pathlib import Path

    text = CONFIG + f"report:\n  sections: [{entry}]\n"
    with pytest.raises(ConfigError, match=r"report\.sections\[0\]") as caught:
        parse_config(text, root=Path(str(tmp_path)))
    assert message in caught.value.message


def test_pipeline_reads_the_sections_the_training_wrote(project: Project) -> None:
    sections = "[analysis.md, plot.png, gone.md, link.md]"
    project.write("mlci.yaml", CONFIG + f"report:\n  sections: {sections}\n")
    (project.root / "link.md").symlink_to(project.root / ".git" / "config")
    project.write("analysis.md", "## Errors\n\n![local](plot.png) <b>x</b>\n")
    (project.root / "plot.png").write_bytes(PNG)
    project.commit("sections")

    outcome = pipeline.run(
        config_path=project.config, env=dict(os.environ), console=Console(io.StringIO())
    )

    assert outcome.exit_code == EXIT_OK
    text = (project.out / "report.md").read_text()
    assert text.index("| accuracy") < text.index("<summary>analysis.md</summary>")
    assert "list it in report.sections to show it" in text and "&lt;b>x" in text
    assert "gone.md was not found: the training did not write it" in text
    assert "link.md leads to a hidden file: not shown" in text and "[core]" not in text
    assert (project.out / "plots" / "section-2.png").read_bytes() == PNG
