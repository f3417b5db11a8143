"""One walk through the tracker as a user would take it: two projects, sessions with params and tags, a
filter that narrows the table, the compare page with two keys of three sessions and their params
diff, and an image artifact previewed on a session's page."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from platform_helpers import LiveServer

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cf"
    "c000000301010018dd8db00000000049454e44ae426082"
)
TRAIN = """\
import argparse, haneul
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--layers", type=int, default=2)
args = p.parse_args()
haneul.config({"model": {"layers": args.layers}, "lr": args.lr})
for step in range(30):
    haneul.report(step=step, loss=args.lr * 100 / (step + 1), acc=step / 30)
haneul.log_artifact("curve.png", name="plots/curve.png")
"""


@pytest.mark.browser
def test_projects_filter_compare_and_artifact_preview(live_server: LiveServer, tmp_path: Path, page) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "curve.png").write_bytes(PNG)
    runs = [("nsmc", "bert", "0.01", "2"), ("nsmc", "bert", "0.001", "4"), ("klue", "gpt", "0.001", "2")]
    sids = []
    for project, model, lr, layers in runs:
        res = live_server.cli("run", "-f", "--project", project, "--tag", f"model={model}", "--",
                              "python", "train.py", "--lr", lr, "--layers", layers, cwd=tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
        sids.append(res.stderr.split("/sessions/")[1].split()[0])
    first = json.loads(urllib.request.urlopen(urllib.request.Request(f"{live_server.url}/api/v1/sessions/{sids[1]}", headers=live_server.headers())).read())
    assert first["project"] == "nsmc" and first["tags"] == {"model": "bert"}
    assert first["params"]["lr"] == 0.001 and first["params"]["model.layers"] == 4

    page.goto(live_server.login_url("/"))
    page.wait_for_selector(f"tr[data-id='{sids[2]}']")
    assert page.locator("#sessions tbody tr").count() == 3
    page.fill("#filter", 'project = "nsmc" and params.lr < 0.005')
    page.click("#filter-btn")
    page.wait_for_load_state()
    rows = page.locator("#sessions tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-id") == sids[1]

    page.goto(live_server.login_url(f"/compare?ids={','.join(sids)}&key=loss&key=acc"))
    for key in ("loss", "acc"):
        page.wait_for_function(f"document.querySelector('.compare-chart[data-key={key}]').data", timeout=20_000)
    traces = page.evaluate("[...document.querySelectorAll('.compare-chart')].map("
                           "(d) => [d.dataset.key, d.data.map((t) => t.name)])")
    names = [f"train.py #{sid}" for sid in sids]
    assert traces == [["loss", names], ["acc", names]]
    diff = page.evaluate("[...document.querySelectorAll('#params-diff tbody tr')].map("
                         "(r) => [...r.children].map((c) => c.textContent))")
    # the command line's --layers and --lr are params too, beside what haneul.config recorded
    assert diff == [["layers", "2", "4", "2"], ["lr", "0.01", "0.001", "0.001"], ["model.layers", "2", "4", "2"]]

    page.goto(live_server.login_url(f"/sessions/{sids[0]}"))
    page.wait_for_selector("#artifacts [data-path='plots/curve.png']", timeout=20_000)
    page.click("#artifacts [data-path='plots/curve.png'] .artifact-show")
    page.wait_for_function("(() => { const i = document.querySelector('#artifact-preview img');"
                           " return i && i.complete && i.naturalWidth === 1; })()", timeout=20_000)
