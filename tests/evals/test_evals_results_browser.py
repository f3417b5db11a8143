"""The /evals results page in headless Chromium: two published models, the right numbers, the bold best."""

from __future__ import annotations

import pytest
from evals_results_helpers import results_doc

from haneul.platform.credentials import local_admin_token

pytestmark = pytest.mark.browser


def cell(model: str, task: str, shots: int) -> str:
    return f"tr[data-model='{model}'] td[data-task='{task}'][data-shots='{shots}']"


def test_results_page_table_detail_and_shots_selector(evals_server, page) -> None:  # type: ignore[no-untyped-def]
    from haneul.evals import publish

    publish(
        results_doc("model-a", {"nsmc": {0: [60.0], 4: [70.0, 74.0]}, "korsts": {0: [40.0]}}),
        server=evals_server,
        session=3,
    )
    publish(results_doc("model-b", {"nsmc": {0: [65.5], 4: [71.0, 71.0]}}, se=2.5), server=evals_server)

    page.goto(f"{evals_server}/evals?token={local_admin_token()}")
    assert page.locator("#board th.group").all_text_contents() == ["0-shot", "4-shot"]
    expected = {
        ("model-a", "korsts", 0): ("40.00 ± 1.00", True),  # the only korsts score is the best one
        ("model-a", "nsmc", 0): ("60.00 ± 1.00", False),
        ("model-b", "nsmc", 0): ("65.50 ± 2.50", True),
        ("model-a", "nsmc", 4): ("72.00 ± 1.00", True),  # the mean of seeds 70 and 74
        ("model-b", "nsmc", 4): ("71.00 ± 2.50", False),
    }
    for (model, task, k), (text, best) in expected.items():
        sel = cell(model, task, k)
        assert page.text_content(sel).strip() == text, sel
        assert page.locator(f"{sel} strong").count() == (1 if best else 0), sel
        weight = page.eval_on_selector(
            f"{sel} a", "a => getComputedStyle(a.firstElementChild || a).fontWeight"
        )
        assert (int(weight) >= 700) == best, (sel, weight)
    assert page.text_content(cell("model-b", "korsts", 0)).strip() == "·"  # never evaluated

    # a click shows the per-seed spread and the run's details
    page.click(cell("model-a", "nsmc", 4))
    page.wait_for_selector("#detail:not([hidden])")
    assert page.text_content("#detail h2") == "model-a · nsmc · 4-shot"
    seeds = page.locator("#detail-seeds tr[data-seed]").all_text_contents()
    assert seeds == ["070.00 ± 1.00", "174.00 ± 1.00"]
    assert "2.83" in page.text_content("#detail-seeds")  # sd of 70 and 74
    facts = page.text_content("#detail .facts")
    assert "#3" in facts and "/data/nsmc.tsv" in facts and "seeds=2" in facts
    assert page.get_attribute("#detail a[href^='/sessions/']", "href") == "/sessions/3"

    # the shots selector keeps one group; the best cell moves with the columns
    page.select_option("#shots", "0")
    page.wait_for_url("**/evals?shots=0")
    assert page.locator("#board th.group").all_text_contents() == ["0-shot"]
    assert page.locator("#board td.best").count() == 2

    # each model row links to its runs
    page.click("tr[data-model='model-b'] th.model a")
    page.wait_for_url("**model=model-b**")
    runs = page.locator("#runs tbody tr").all_text_contents()
    assert len(runs) == 1 and "model-b" in runs[0] and "nsmc" in runs[0]
