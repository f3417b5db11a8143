"""The one output helper: a table for people, one JSON document for scripts, everything else on stderr."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from haneul.cli import output


@dataclass
class Result:
    name: str
    folder: Path
    size: int
    score: float
    parts: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)


RESULT = Result("하늘 [bold]x[/bold]", Path("runs/a"), 1234567, 0.123456, ("ko", "en"), {"bleu": 37.31})


def test_json_is_one_document_on_one_line_with_korean_kept(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit(RESULT, as_json=True)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.count("\n") == 1 and "하늘" in captured.out  # ensure_ascii=False
    assert json.loads(captured.out) == {
        "name": "하늘 [bold]x[/bold]",
        "folder": "runs/a",
        "size": 1234567,
        "score": 0.123456,
        "parts": ["ko", "en"],
        "metrics": {"bleu": 37.31},
    }


def test_json_follows_to_dict_when_a_result_defines_it(capsys: pytest.CaptureFixture[str]) -> None:
    @dataclass
    class Flat:
        inner: Result

        def to_dict(self) -> dict[str, object]:
            return {"name": self.inner.name, "where": self.inner.folder}

    output.print_json([Flat(RESULT)])
    assert json.loads(capsys.readouterr().out) == [{"name": "하늘 [bold]x[/bold]", "where": "runs/a"}]


def test_the_table_shows_each_field_formatted_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit(RESULT, as_json=False, title="a result")
    out = capsys.readouterr().out
    assert "a result" in out
    assert "1,234,567" in out and "0.1235" in out and "ko, en" in out and "bleu=37.31" in out
    assert "[bold]x[/bold]" in out  # user text is shown as written, not read as markup
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_a_list_of_rows_is_one_table_and_show_overrides_the_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [{"rank": 1, "item": "i7", "score": 0.5}, {"rank": 2, "item": "i3", "score": 0.25}]
    output.emit(rows, as_json=False)
    table = capsys.readouterr().out
    assert table.index("i7") < table.index("i3") and "rank" in table and "score" in table
    output.emit(rows, as_json=False, show=lambda: output.say("custom"))
    assert capsys.readouterr().out == "custom\n"
    output.emit(rows, as_json=True, show=lambda: output.say("custom"))
    assert json.loads(capsys.readouterr().out) == rows


def test_print_table_uses_the_given_columns_order_and_formats(capsys: pytest.CaptureFixture[str]) -> None:
    output.print_table(
        [(0.123456, "a"), (2.0, "b")],
        columns=["value", "name"],
        formats={"value": lambda v: f"{v:.2f}"},
        title="t",
    )
    out = capsys.readouterr().out
    assert "0.12" in out and "2.00" in out and out.index("value") < out.index("name")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        (True, "yes"),
        (12345, "12,345"),
        (0.000123456, "0.0001235"),
        (float("nan"), "nan"),
        ({"acc": 0.5, "n": 3}, "acc=0.5, n=3"),
        ([1, "a"], "1, a"),
        (Path("x/y"), "x/y"),
    ],
)
def test_format_value(value: object, shown: str) -> None:
    assert output.format_value(value) == shown


def test_notes_and_progress_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    output.note("warning: something", style="yellow")
    with output.progress() as bar:
        task = bar.add_task("working", total=2)
        bar.update(task, completed=2)
    captured = capsys.readouterr()
    assert captured.out == "" and "warning: something" in captured.err and "working" in captured.err
