"""CHOPT: hyper-parameter optimisation as platform sessions.

A study (:class:`~haneul.tune.spec.StudySpec`, written in YAML) runs its trials as preemptible
platform sessions, with Optuna's samplers and pruners choosing the parameters and stopping poor
trials from the values the trials report (fed by the server), stop-and-go when higher-priority work
needs the capacity, population-based training through fork, and pages that analyse and edit a
running study. ``haneul tune`` is the command; the ``tune`` server plugin runs the studies.
"""

from haneul.tune.spec import StudySpec

__all__ = ["StudySpec"]
