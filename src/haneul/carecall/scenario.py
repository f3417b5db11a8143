"""Call scenarios: the scripted dialogue flows a CareCall call follows, written as YAML and checked on load.

CareCall (Lee et al., 2020, the call scenario) phones people under active monitoring with a fixed list of
questions (identity, temperature, cough, sore throat, breathing, taste/smell, contacts) and its
successor phones elderly people living alone about meals, sleep, health and mood, opening with what
they said last time. Both are the same machine: a graph of *nodes* — ``say`` a line, ``ask`` a
question and branch on the answer, ``identity`` check, ``recall`` an earlier call, ``closing``,
``handoff`` to a person — that :class:`~haneul.carecall.agent.CallAgent` walks one answer at a time.

A scenario file is data, not code: :func:`load` validates it and every problem comes back as one
line naming the file, the node and the field (``covid.yaml: node 'cough': field 'next': unknown
node 'cuogh'``). Conditions on answers are a tiny language (``value >= 37.5``, ``intent == yes``,
``symptoms.breathing == true``, joined with ``and`` / ``or``) parsed here once, so a typo fails at
load time rather than in the middle of a call.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haneul.errors import InvalidInput, register

__all__ = [
    "ASKING",
    "EXPECTS",
    "INTENTS",
    "NODE_TYPES",
    "OUTCOMES",
    "SYMPTOM_SLOTS",
    "AlertRule",
    "Branch",
    "Condition",
    "Node",
    "Scenario",
    "ScenarioError",
    "load",
    "parse",
    "parse_condition",
    "resolve",
    "shipped",
    "validate",
]

#: what the understander can say an answer means
INTENTS = ("yes", "no", "unknown", "later", "human", "unclear")
#: what an ask node expects the answer to hold
EXPECTS = ("yesno", "temperature", "number", "symptoms", "free")
#: symptom slots the monitoring questions fill (the understander reports the same names)
SYMPTOM_SLOTS = ("fever", "cough", "sore_throat", "breathing", "taste_smell", "contact")
#: how a call can end
OUTCOMES = ("completed", "escalated", "callback_requested", "handed_off", "hung_up", "no_answer")
NODE_TYPES = ("say", "ask", "identity", "recall", "closing", "handoff")
#: node types that wait for the callee's answer
ASKING = ("ask", "identity", "recall")

SCENARIO_DIR = Path(__file__).parent / "scenarios"
DEFAULT_RETRIES = 2

_TOP_FIELDS = {"id", "title", "language", "description", "start", "retries", "on_human", "on_later", "nodes"}
_COMMON = {"type", "prompt", "requires"}
_ASK_FIELDS = {"next", "expect", "slot", "label", "branches", "alerts", "reprompt", "retries", "summary"}
_FIELDS = {
    "say": _COMMON | {"next"},
    "ask": _COMMON | _ASK_FIELDS,
    "recall": _COMMON | _ASK_FIELDS,
    "identity": _COMMON | {"next", "mismatch", "reprompt", "retries", "slot"},
    "closing": _COMMON | {"outcome"},
    "handoff": _COMMON | {"reason"},
}


@register
class ScenarioError(InvalidInput):
    """A scenario file is malformed; the message names the file, the node and the field."""

    code = "invalid_scenario"


# ------------------------------------------------------------------------------------------------
# conditions


_CLAUSE = re.compile(
    r"^(?P<field>intent|value|confidence|symptoms\.[a-z_]+)\s*(?P<op>==|!=|>=|<=|>|<|not in|in)\s*(?P<rhs>.+)$"
)
_NUMERIC_OPS = {">=", "<=", ">", "<", "==", "!="}


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    operand: Any

    def holds(self, heard: Any) -> bool:
        if self.field.startswith("symptoms."):
            left: Any = (getattr(heard, "symptoms", None) or {}).get(self.field.split(".", 1)[1])
        else:
            left = getattr(heard, self.field, None)
        if left is None:
            return self.op in ("!=", "not in")  # an unknown value never satisfies a comparison
        if self.op == "in":
            return left in self.operand
        if self.op == "not in":
            return left not in self.operand
        if self.op == "==":
            return bool(left == self.operand)
        if self.op == "!=":
            return bool(left != self.operand)
        if self.op == ">=":
            return bool(left >= self.operand)
        if self.op == "<=":
            return bool(left <= self.operand)
        if self.op == ">":
            return bool(left > self.operand)
        return bool(left < self.operand)


@dataclass(frozen=True)
class Condition:
    """``a and b or c``: an OR of AND groups of clauses, evaluated on what the understander heard."""

    source: str
    groups: tuple[tuple[Clause, ...], ...]

    def __call__(self, heard: Any) -> bool:
        return any(all(c.holds(heard) for c in group) for group in self.groups)


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def _clause(text: str) -> Clause:
    m = _CLAUSE.match(text.strip())
    if m is None:
        raise ValueError(f"cannot read {text.strip()!r}; write FIELD OP VALUE with FIELD one of intent, value, "
                         "confidence, symptoms.<slot> and OP one of == != >= <= > < in")
    name, op, rhs = m["field"], m["op"], m["rhs"].strip()
    if op in ("in", "not in"):
        if not (rhs.startswith("[") and rhs.endswith("]")):
            raise ValueError(f"{op!r} takes a list like [yes, unknown], got {rhs!r}")
        operand: Any = tuple(_literal(x) for x in rhs[1:-1].split(",") if x.strip())
        items = operand
    else:
        operand = _literal(rhs)
        items = (operand,)
    if name == "intent":
        bad = [x for x in items if x not in INTENTS]
        if bad or op not in ("==", "!=", "in", "not in"):
            raise ValueError(f"intent compares with == != in against {', '.join(INTENTS)}; got {text.strip()!r}")
    elif name in ("value", "confidence"):
        if op not in _NUMERIC_OPS or not isinstance(operand, float) or isinstance(operand, bool):
            raise ValueError(f"{name} compares with a number (e.g. {name} >= 37.5); got {text.strip()!r}")
    else:
        slot = name.split(".", 1)[1]
        if slot not in SYMPTOM_SLOTS:
            raise ValueError(f"unknown symptom {slot!r}; use one of {', '.join(SYMPTOM_SLOTS)}")
        if op not in ("==", "!=") or not isinstance(operand, bool):
            raise ValueError(f"{name} compares with == true / == false; got {text.strip()!r}")
    return Clause(name, op, operand)


def parse_condition(text: str) -> Condition:
    """Parse ``value >= 37.5 or intent == human`` (or ``always``); raises ValueError with a one-line reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty condition; write e.g. 'value >= 37.5' or 'intent == yes'")
    if text.strip() == "always":  # an alert on any answer (a free-text request, say)
        return Condition("always", ((),))
    groups = tuple(tuple(_clause(c) for c in re.split(r"\s+and\s+", part)) for part in re.split(r"\s+or\s+", text))
    return Condition(text.strip(), groups)


# ------------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class Branch:
    """Go to ``goto`` when ``when`` holds for the answer (the first matching branch wins)."""

    when: Condition
    goto: str


@dataclass(frozen=True)
class AlertRule:
    """Raise an alert for staff when ``when`` holds; ``reason`` may use ``{value}`` and context fields."""

    when: Condition
    code: str
    reason: str


@dataclass(frozen=True)
class Node:
    """One step of a call. Fields a node type does not use keep their defaults."""

    id: str
    type: str
    prompt: str = ""
    next: str | None = None
    expect: str = "yesno"
    slot: str | None = None
    label: str | None = None
    branches: tuple[Branch, ...] = ()
    alerts: tuple[AlertRule, ...] = ()
    reprompt: str | None = None
    retries: int = DEFAULT_RETRIES
    summary: Mapping[str, str] = field(default_factory=dict)
    mismatch: str | None = None
    outcome: str = "completed"
    reason: str | None = None
    requires: tuple[str, ...] = ()

    @property
    def asks(self) -> bool:
        return self.type in ASKING

    @property
    def ends(self) -> bool:
        return self.type in ("closing", "handoff")

    def targets(self) -> list[tuple[str, str]]:
        """``(field, node id)`` for every node this one can lead to."""
        out = [("next", self.next)] if self.next else []
        out += [("mismatch", self.mismatch)] if self.mismatch else []
        out += [(f"branches[{i}].goto", b.goto) for i, b in enumerate(self.branches)]
        return [(f, t) for f, t in out if t is not None]

    def texts(self) -> list[tuple[str, str]]:
        """``(field, template)`` for every text this node fills from the call context."""
        out = [("prompt", self.prompt)]
        out += [("reprompt", self.reprompt)] if self.reprompt else []
        out += [(f"alerts[{i}].reason", a.reason) for i, a in enumerate(self.alerts)]
        return out


@dataclass(frozen=True)
class Scenario:
    """A validated call flow; build one with :func:`load` or :func:`parse`."""

    id: str
    title: str
    language: str
    start: str
    nodes: Mapping[str, Node]
    on_human: str | None = None
    on_later: str | None = None
    description: str = ""
    source: str = "<string>"

    @property
    def questions(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.asks]

    def placeholders(self, node: Node) -> set[str]:
        """Context fields the texts of ``node`` use (``{name}``, ``{memory_prompt}``, ...)."""
        # value (an alert's number) and prompt (the question, inside a re-ask) come from the agent
        return {f for _, text in node.texts() for f in _fields(text)} - {"value", "prompt"}


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


# ------------------------------------------------------------------------------------------------
# loading and validation


class _Problems:
    """Collects one-line problems, each prefixed with the file and where in it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, message: str, *, node: str | None = None, field: str | None = None) -> None:
        where = [self.source]
        if node is not None:
            where.append(f"node {node!r}")
        if field is not None:
            where.append(f"field {field!r}")
        self.lines.append(": ".join([*where, message]))


def _text(value: Any, problems: _Problems, node: str | None, name: str, *, required: bool) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.add("missing; write the text the agent says", node=node, field=name)
        return ""
    if not isinstance(value, str):
        problems.add(f"must be text, got {type(value).__name__}", node=node, field=name)
        return ""
    try:
        _fields(value)
    except ValueError as exc:
        problems.add(f"bad placeholder ({exc}); write {{name}} and double braces for a literal brace",
                     node=node, field=name)
    return value.strip()


def _condition(value: Any, problems: _Problems, node: str, name: str) -> Condition | None:
    try:
        return parse_condition(value)
    except ValueError as exc:
        problems.add(f"bad condition: {exc}", node=node, field=name)
        return None


def _node(nid: str, raw: Any, problems: _Problems, default_retries: int) -> Node | None:
    if not isinstance(raw, Mapping):
        problems.add("must be a mapping of fields (type, prompt, next, ...)", node=nid)
        return None
    ntype = raw.get("type")
    if ntype not in NODE_TYPES:
        problems.add(f"unknown type {ntype!r}; use one of {', '.join(NODE_TYPES)}", node=nid, field="type")
        return None
    for key in raw:
        if key not in _FIELDS[ntype]:
            problems.add(f"unknown for a {ntype} node; use {', '.join(sorted(_FIELDS[ntype]))}", node=nid,
                         field=str(key))
    kw: dict[str, Any] = {"id": nid, "type": ntype}
    if ntype == "recall":  # the memory hook: says what the caller remembered, skipped when it has nothing
        kw["prompt"] = _text(raw.get("prompt", "{memory_prompt}"), problems, nid, "prompt", required=True)
        kw["requires"] = ("memory_prompt",)
        kw["slot"] = "recall"
    else:
        kw["prompt"] = _text(raw.get("prompt"), problems, nid, "prompt", required=True)
    if "requires" in raw:
        req = raw["requires"]
        req = [req] if isinstance(req, str) else req
        if not isinstance(req, list) or not all(isinstance(r, str) and r.isidentifier() for r in req):
            problems.add("must be a context field name or a list of them", node=nid, field="requires")
        else:
            kw["requires"] = tuple(req)
    if ntype not in ("closing", "handoff"):
        if not raw.get("next"):
            problems.add("missing; name the node that follows", node=nid, field="next")
        kw["next"] = str(raw.get("next")) if raw.get("next") else None
    if ntype in ("ask", "recall", "identity"):
        retries = raw.get("retries", default_retries)
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            problems.add(f"must be a whole number >= 0, got {retries!r}", node=nid, field="retries")
            retries = default_retries
        kw["retries"] = retries
        if "reprompt" in raw:
            kw["reprompt"] = _text(raw["reprompt"], problems, nid, "reprompt", required=True)
    if ntype in ("ask", "recall"):
        expect = raw.get("expect", "yesno")
        if expect not in EXPECTS:
            problems.add(f"unknown {expect!r}; use one of {', '.join(EXPECTS)}", node=nid, field="expect")
        kw["expect"] = expect
        slot = raw.get("slot", kw.get("slot"))
        if ntype == "ask" and not (isinstance(slot, str) and slot.isidentifier()):
            problems.add("missing; name the answer (e.g. cough, temperature)", node=nid, field="slot")
        kw["slot"] = slot
        kw["label"] = raw.get("label")
        kw["branches"] = tuple(_branches(raw.get("branches", []), problems, nid))
        kw["alerts"] = tuple(_alerts(raw.get("alerts", []), problems, nid))
        summary = raw.get("summary", {})
        if not isinstance(summary, Mapping) or not all(k in INTENTS for k in summary):
            problems.add(f"must map an intent ({', '.join(INTENTS[:3])}) to a phrase", node=nid, field="summary")
        else:
            kw["summary"] = {str(k): str(v) for k, v in summary.items()}
    if ntype == "identity":
        if not raw.get("mismatch"):
            problems.add("missing; name the node for a wrong person", node=nid, field="mismatch")
        kw["mismatch"] = str(raw.get("mismatch")) if raw.get("mismatch") else None
        kw["slot"] = raw.get("slot", "identity")
    if ntype == "closing":
        outcome = raw.get("outcome", "completed")
        if outcome not in OUTCOMES:
            problems.add(f"unknown {outcome!r}; use one of {', '.join(OUTCOMES)}", node=nid, field="outcome")
        kw["outcome"] = outcome
    if ntype == "handoff" and "reason" in raw:
        kw["reason"] = _text(raw["reason"], problems, nid, "reason", required=True)
    return Node(**kw)


def _branches(raw: Any, problems: _Problems, nid: str) -> Iterable[Branch]:
    if not isinstance(raw, list):
        problems.add("must be a list of {when, goto}", node=nid, field="branches")
        return
    for i, item in enumerate(raw):
        name = f"branches[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"when", "goto"}:
            problems.add("must have exactly 'when' and 'goto'", node=nid, field=name)
            continue
        cond = _condition(item["when"], problems, nid, f"{name}.when")
        if cond is not None:
            yield Branch(cond, str(item["goto"]))


def _alerts(raw: Any, problems: _Problems, nid: str) -> Iterable[AlertRule]:
    if not isinstance(raw, list):
        problems.add("must be a list of {when, code, reason}", node=nid, field="alerts")
        return
    for i, item in enumerate(raw):
        name = f"alerts[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"when", "code", "reason"}:
            problems.add("must have exactly 'when', 'code' and 'reason'", node=nid, field=name)
            continue
        cond = _condition(item["when"], problems, nid, f"{name}.when")
        reason = _text(item["reason"], problems, nid, f"{name}.reason", required=True)
        if cond is not None:
            yield AlertRule(cond, str(item["code"]), reason)


def _cycles_without_ask(nodes: Mapping[str, Node]) -> list[list[str]]:
    """Loops made only of nodes that never wait for an answer: a call would talk forever."""
    silent = {nid: n for nid, n in nodes.items() if not n.asks and not n.ends}
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(nid: str, path: list[str]) -> None:
        state[nid] = 1
        node = silent[nid]
        for _, target in node.targets():
            if target not in silent:
                continue
            if state.get(target) == 1:
                found.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[nid] = 2

    for nid in silent:
        if nid not in state:
            visit(nid, [nid])
    return found


def _check(data: Any, source: str) -> tuple[Scenario | None, list[str]]:
    problems = _Problems(source)
    if not isinstance(data, Mapping):
        problems.add("must be a YAML mapping with id, title, language and nodes")
        return None, problems.lines
    for key in data:
        if key not in _TOP_FIELDS:
            problems.add(f"unknown; use {', '.join(sorted(_TOP_FIELDS))}", field=str(key))
    for key in ("id", "title", "language"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            problems.add("missing; write it as text", field=key)
    retries = data.get("retries", DEFAULT_RETRIES)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        problems.add(f"must be a whole number >= 0, got {retries!r}", field="retries")
        retries = DEFAULT_RETRIES
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, Mapping) or not raw_nodes:
        problems.add("missing; map node ids to nodes", field="nodes")
        return None, problems.lines
    nodes: dict[str, Node] = {}
    for nid, raw in raw_nodes.items():
        node = _node(str(nid), raw, problems, retries)
        if node is not None:
            nodes[str(nid)] = node
    for node in nodes.values():
        for fname, target in node.targets():
            if target not in raw_nodes:
                problems.add(f"unknown node {target!r}", node=node.id, field=fname)
    start = str(data.get("start") or next(iter(raw_nodes)))
    if start not in raw_nodes:
        problems.add(f"unknown node {start!r}", field="start")
    for key in ("on_human", "on_later"):
        escape = data.get(key)
        if escape is not None and escape not in raw_nodes:
            problems.add(f"unknown node {escape!r}", field=key)
        elif escape is not None and str(escape) in nodes and not nodes[str(escape)].ends:
            problems.add(f"node {escape!r} must be a closing or handoff node", field=key)
    for cycle in _cycles_without_ask(nodes):
        problems.add(f"cycle without a question: {' -> '.join(cycle)}; put an ask in the loop or break it",
                     node=cycle[0], field="next")
    if problems.lines:
        return None, problems.lines
    scenario = Scenario(
        id=data["id"].strip(), title=data["title"].strip(), language=data["language"].strip(), start=start,
        nodes=nodes, on_human=data.get("on_human"), on_later=data.get("on_later"),
        description=str(data.get("description", "")).strip(), source=source,
    )
    return scenario, []


def _read(path: Path) -> tuple[Any, list[str]]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [f"{path}: cannot read ({exc.strerror or exc}); pass a scenario YAML file"]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, [f"{path}: not valid YAML{where}: {problem}"]


def validate(path: str | Path) -> list[str]:
    """Every problem in the scenario file at ``path``, one line each; an empty list means it loads."""
    path = Path(path)
    data, errors = _read(path)
    if errors:
        return errors
    return _check(data, str(path))[1]


def parse(data: Mapping[str, Any] | str, source: str = "<string>") -> Scenario:
    """A scenario from a mapping or YAML text; raises :class:`ScenarioError` naming the first problem."""
    if isinstance(data, str):
        import yaml

        data = yaml.safe_load(data)
    scenario, errors = _check(data, source)
    if scenario is None:
        more = f" (and {len(errors) - 1} more; run `haneul carecall validate` to see all)" if len(errors) > 1 else ""
        raise ScenarioError(errors[0] + more, problems=errors)
    return scenario


def load(path: str | Path) -> Scenario:
    """Load and validate the scenario YAML at ``path`` (see :func:`resolve` for shipped names)."""
    path = Path(path)
    data, errors = _read(path)
    if errors:
        raise ScenarioError(errors[0])
    return parse(data, str(path))


def shipped() -> dict[str, Path]:
    """Shipped scenario files by id (file stem), e.g. ``covid_monitoring``."""
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.yaml")) if not p.name.startswith("_")}


def resolve(name: str | Path) -> Scenario:
    """A shipped scenario by id or short name (``covid``, ``elderly``), or a YAML file by path."""
    files = shipped()
    key = str(name)
    if key in files:
        return load(files[key])
    short = {stem.split("_", 1)[0]: p for stem, p in files.items()}
    if key in short:
        return load(short[key])
    path = Path(key)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ScenarioError(f"{path}: no such file; pass a scenario YAML file or one of {', '.join(short)}")
        return load(path)
    choices = ", ".join([*short, *files])
    raise ScenarioError(f"unknown scenario {key!r}; use one of {choices} or a path to a YAML file")
