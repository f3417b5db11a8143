"""CareCall: a call-based monitoring agent (Lee et al., 2020, and its Keep Me Updated successor).

The agent phones people under monitoring on a schedule, asks scripted questions (symptoms for
active monitoring, meals/sleep/mood for elderly check-ins), understands Korean phone answers,
remembers earlier calls through :mod:`haneul.dialog`, and raises alerts for staff.
"""
