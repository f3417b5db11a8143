"""``haneul carecall``: scripted check-in calls (CareCall) — talk to a scenario in the terminal, list and
validate scenario files, and phone a simulated population."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt, SeedOpt, Typer

app = Typer(
    help="CareCall: scripted monitoring and check-in calls (scenarios, a text call, a simulated campaign).",
    no_args_is_help=True,
)

SCENARIO_HELP = "Scenario: covid, elderly, a shipped id (covid_monitoring) or a path to a scenario YAML file."
METHOD_HELP = "How answers are understood, passed to haneul.carecall.understand (auto, rules, ...)."


def _understander(method: str) -> Any:
    from haneul.carecall import agent

    understand = agent.default_understander()

    def with_method(text: str, **kwargs: Any) -> Any:
        return understand(text, method=method, **kwargs)

    return with_method


def _show_record(record: Any, *, transcript: bool) -> None:
    if transcript:
        for turn in record.transcript:
            who = "상담원" if turn.speaker == "agent" else "나"
            output.say(f"{who}> {turn.text if turn.text else '(말 없음)'}")
    alerts = "; ".join(f"{a.code}: {a.reason}" for a in record.alerts) or "—"
    output.print_fields({"outcome": record.outcome, "summary": record.summary or "—", "alerts": alerts,
                         "turns": record.turns}, title=f"call · {record.scenario}")


@app.command("chat")
def chat(
    scenario: str = typer.Option("covid", "--scenario", "-s", help=SCENARIO_HELP),
    name: str = typer.Option("홍길동", "--name", help="Name of the person called (fills {name} in prompts)."),
    script: Path | None = typer.Option(
        None, "--script", help="Read the answers from this file, one per line ('-' for silence); the call hangs up "
        "when it runs out. Without it, type the answers (an empty line is silence, Ctrl-D hangs up)."),
    memory: list[str] = typer.Option(
        [], "--memory", help="Something said in an earlier call, as a clause like '기침하신다고' (repeatable); "
        "fills {memory_prompt} for a scenario's recall node."),
    method: str = typer.Option("auto", "--method", help=METHOD_HELP),
    as_json: JsonOpt = False,
) -> None:
    """Hold one call of a scenario in the terminal and print its record (outcome, summary, alerts)."""
    from haneul.carecall.agent import CallAgent, memory_context
    from haneul.carecall.channels.text import ScriptedCallee, TerminalCallee, run_call
    from haneul.carecall.scenario import resolve
    from haneul.errors import NotFound

    plan = resolve(scenario)
    context = {"name": name, **memory_context(remembered=memory)}
    agent = CallAgent(plan, _understander(method), context, person=name)
    if script is not None:
        if not script.is_file():
            raise NotFound(f"no such file {script}; pass a text file with one answer per line")
        record = run_call(agent, ScriptedCallee.from_file(script))
    else:
        record = run_call(agent, TerminalCallee(write=output.say))
    output.emit(record, as_json=as_json, show=lambda: _show_record(record, transcript=script is not None))


@app.command("scenarios")
def scenarios(as_json: JsonOpt = False) -> None:
    """List the scenarios shipped with haneul."""
    from haneul.carecall.scenario import load, shipped

    rows = []
    for stem, path in shipped().items():
        plan = load(path)
        rows.append({"id": plan.id, "name": stem.split("_", 1)[0], "title": plan.title, "language": plan.language,
                     "questions": len(plan.questions), "file": str(path)})
    output.emit(rows, as_json=as_json, show=lambda: output.print_table(
        rows, columns=["name", "id", "title", "language", "questions"], right=["questions"], title="scenarios"))


@app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(..., help="Scenario YAML files to check."),
    as_json: JsonOpt = False,
) -> None:
    """Check scenario files: one line per problem (file, node, field); exits 1 when any has one."""
    from haneul.carecall.scenario import validate as check

    results = [{"file": str(p), "errors": check(p)} for p in paths]

    def show() -> None:
        for res in results:
            if res["errors"]:
                for line in res["errors"]:
                    output.say(line)
            else:
                output.say(f"{res['file']}: ok")

    output.emit(results, as_json=as_json, show=show)
    if any(res["errors"] for res in results):
        raise typer.Exit(1)


@app.command("simulate")
def simulate(
    scenario: str = typer.Option("covid", "--scenario", "-s", help=SCENARIO_HELP),
    people: int = typer.Option(50, "--people", "-n", help="How many simulated people to call."),
    days: int = typer.Option(3, "--days", help="Days the campaign runs."),
    calls_per_day: int = typer.Option(2, "--calls-per-day", help="Calls to each person a day."),
    oracle: bool = typer.Option(False, "--oracle", help="Understand every answer perfectly (tests the scenario "
                                "alone) instead of running the understander on the text."),
    elderly: bool = typer.Option(False, "--elderly", help="Draw an elderly population (ages 65-95)."),
    method: str = typer.Option("auto", "--method", help=METHOD_HELP),
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Phone a simulated population and count outcomes and alerts (the same seed gives the same calls)."""
    from haneul.carecall.channels.text import simulate_campaign
    from haneul.carecall.simulate import population

    crowd = population(people, seed, elderly=elderly)
    records = simulate_campaign(crowd, scenario, days, calls_per_day, seed, oracle=oracle,
                                understander=None if oracle else _understander(method))
    answered = [r for r in records if r.outcome != "no_answer"]
    result = {
        "calls": len(records),
        "outcomes": dict(Counter(r.outcome for r in records).most_common()),
        "alerts": dict(Counter(c for r in records for c in sorted(r.alert_codes)).most_common()),
        "people_alerted": len({r.person for r in records if r.alerts}),
        "mean_turns": round(sum(r.turns for r in answered) / len(answered), 2) if answered else 0.0,
    }
    output.emit(result, as_json=as_json, title=f"campaign · {people} people × {days} days × {calls_per_day}")


@app.command("demo")
def demo(
    people: int = typer.Option(200, "--people", "-n", help="Simulated people to call."),
    days: int = typer.Option(3, "--days", help="Days the campaign runs."),
    audio: int = typer.Option(0, "--audio", min=0, help="Place this many of the calls (the first ones) through "
                              "the audio channel: espeak-ng speech both ways, a reference recogniser."),
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Fill a campaign in the server's database through the simulated dialer on an accelerated clock
    (open /carecall as an admin to see it)."""
    from haneul.carecall.db import MIGRATIONS
    from haneul.carecall.scheduler import run_demo
    from haneul.dialog.stores import DIALOG_MIGRATIONS
    from haneul.platform.db import make_engine, migrate, version_table
    from haneul.settings import get_settings

    engine = make_engine(get_settings().database_url)
    migrate(engine)
    migrate(engine, MIGRATIONS, version_table=version_table("carecall"))
    migrate(engine, DIALOG_MIGRATIONS, version_table=version_table("dialog"))
    result = run_demo(engine, people=people, days=days, seed=seed, audio=audio)
    output.emit(result, as_json=as_json, title=f"demo campaign {result['campaign']}")
