"""Channels carry a call between a :class:`~haneul.carecall.agent.CallAgent` and the person called.

The agent only turns answers into next lines; a channel decides how those lines reach someone and how
the answers come back: :mod:`.text` (a terminal, a script, a simulated callee), :mod:`.audio` (an
8 kHz audio stream with synthesised prompts, voice activity detection, barge-in and a pluggable
recogniser) and :mod:`.sip` (SIP/RTP telephone lines with G.711, answering and placing calls).
"""

from haneul.carecall.channels.audio import (
    AudioCall,
    AudioConfig,
    PhoneVoice,
    ReferenceRecognizer,
    SimulatedCaller,
    run_simulated,
    serve,
)
from haneul.carecall.channels.sip import SipAgent, SipCall, SipConfig
from haneul.carecall.channels.text import (
    Callee,
    ScriptedCallee,
    TerminalCallee,
    run_call,
    run_call_async,
    simulate_campaign,
)

__all__ = [
    "AudioCall", "AudioConfig", "Callee", "PhoneVoice", "ReferenceRecognizer", "ScriptedCallee", "SimulatedCaller",
    "SipAgent", "SipCall", "SipConfig", "TerminalCallee", "run_call", "run_call_async", "run_simulated", "serve",
    "simulate_campaign",
]
