"""The audio channel: one :class:`~haneul.carecall.agent.CallAgent` behind a stream of 20 ms telephone frames.

CareCall (Lee et al., 2020) talks to people on the phone: its questions are synthesised speech and the
answers are recognised speech. :class:`AudioCall` is that loop, independent of the transport. Each
20 ms tick takes one caller frame (8 kHz int16; ``None`` when nothing arrived) and returns one agent
frame: the agent's lines rendered by espeak-ng's Korean voice through the phone-band channel of
:mod:`haneul.speech.synth` (:class:`PhoneVoice`), or silence. An energy voice-activity detector
(:class:`EnergyVad`) finds where the caller starts and stops speaking; the caller speaking over a
prompt stops it (barge-in); no speech for ``silence_timeout_s`` after a prompt is an empty answer
(``agent.hear("")``, which makes the agent ask again); the end of a turn goes through a pluggable
recogniser (anything with ``transcribe(audio) -> str``) to ``agent.hear``. The time from the caller's
last voiced frame to the agent's first reply frame is kept as the turn latency.

Two drivers move frames: :func:`run_simulated` as fast as the CPU allows on a virtual clock that also
counts the time spent recognising and synthesising (so latencies are what a real line would see), and
:func:`serve` paced in real time on an asyncio loop with recognition in a worker thread, which the
RTP channel (:mod:`.sip`) and a real-time simulation share. :class:`SimulatedCaller` is the other end
for simulations: a :class:`~haneul.carecall.channels.text.Callee` (e.g. a ``SimulatedCallee``) whose
text answers are spoken with espeak-ng when the agent falls silent.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from haneul.carecall.agent import CallAgent, CallRecord
from haneul.errors import InvalidInput

__all__ = [
    "AudioCall",
    "AudioConfig",
    "CallStats",
    "CallerTurn",
    "EnergyVad",
    "FrameEndpoint",
    "PhoneVoice",
    "ReferenceRecognizer",
    "Reply",
    "SimulatedCaller",
    "Transcriber",
    "VirtualClock",
    "envelope",
    "envelope_similarity",
    "run_simulated",
    "serve",
]

SAMPLE_RATE = 8000  # the telephone band; G.711 and RTP carry 8 kHz


@dataclass(frozen=True)
class AudioConfig:
    """Frame size, voice-activity and timing settings of one audio call."""

    sample_rate: int = SAMPLE_RATE
    frame_ms: int = 20
    #: a frame whose RMS is above this (dB relative to full scale) is voiced
    vad_threshold_db: float = -45.0
    #: voiced this long before it counts as speech: a click or a cough of line noise is not an answer
    speech_start_ms: int = 60
    #: silence this long after speech ends the turn; longer than the pause at a comma
    speech_end_ms: int = 500
    #: audio kept from before speech was detected, so the recogniser hears the first syllable
    preroll_ms: int = 200
    #: no speech this long after a prompt ends is an empty answer
    silence_timeout_s: float = 6.0
    #: a turn longer than this is cut and recognised (a caller talking to someone else in the room)
    max_turn_s: float = 15.0
    barge_in: bool = True
    #: pause between two agent lines
    line_gap_ms: int = 250
    voice: str = "m3"
    speed: int = 160
    pitch: int = 50

    def __post_init__(self) -> None:
        if self.frame_ms <= 0 or self.sample_rate * self.frame_ms % 1000:
            raise InvalidInput(f"frame_ms={self.frame_ms} must be a positive whole number of samples at "
                               f"{self.sample_rate} Hz (e.g. 20)")
        if min(self.speech_start_ms, self.speech_end_ms) <= 0 or self.silence_timeout_s <= 0:
            raise InvalidInput("speech_start_ms, speech_end_ms and silence_timeout_s must be positive")

    @property
    def frame_samples(self) -> int:
        return self.sample_rate * self.frame_ms // 1000

    @property
    def frame_s(self) -> float:
        return self.frame_ms / 1000

    def frames(self, ms: float) -> int:
        """How many frames cover ``ms`` milliseconds (at least one)."""
        return max(1, int(round(ms / self.frame_ms)))


# ------------------------------------------------------------------------------------------------
# audio helpers


def _float(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype == np.int16:
        return frame.astype(np.float32) / 32768.0
    return frame.astype(np.float32, copy=False)


def _int16(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.dtype == np.int16:
        return audio
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def frame_db(frame: np.ndarray) -> float:
    """RMS of one frame in dB relative to full scale (-120 for digital silence)."""
    x = _float(frame)
    power = float(np.mean(x * x)) if x.size else 0.0
    return 10.0 * np.log10(power) if power > 1e-12 else -120.0


def envelope(audio: np.ndarray, frame: int = 160) -> np.ndarray:
    """Energy envelope in dB per ``frame`` samples (20 ms at 8 kHz), floored at -60 dB."""
    x = _float(audio)
    n = len(x) // frame
    if n == 0:
        return np.zeros(0, np.float32)
    power = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    return np.maximum(10 * np.log10(power + 1e-12), -60.0).astype(np.float32)


def _trim(env: np.ndarray, floor_db: float = -50.0) -> np.ndarray:
    """The envelope from its first to its last frame above ``floor_db``: lead-in silence says nothing."""
    loud = np.nonzero(env > floor_db)[0]
    return env[loud[0]: loud[-1] + 1] if len(loud) else env[:0]


def envelope_similarity(heard: np.ndarray, reference: np.ndarray, frame: int = 160) -> float:
    """Best correlation (-1..1) of the two energy envelopes over every alignment of ``reference`` in ``heard``.

    Says whether audio that crossed a line (codec, jitter buffer, clipped ends) is the audio that was
    sent, where a recogniser cannot be trusted to say it: the same speech stays near 1, other speech
    of the same length does not. Silence before and after the speech is left out of both.
    """
    a, b = _trim(envelope(heard, frame)), _trim(envelope(reference, frame))
    if len(b) < 2 or len(a) < 2:
        return 0.0
    if len(a) < len(b):
        a, b = b, a
    best = -1.0
    b0 = (b - b.mean()) / (b.std() or 1.0)
    for lag in range(len(a) - len(b) + 1):
        w = a[lag: lag + len(b)]
        sd = w.std()
        if sd == 0:
            continue
        best = max(best, float(np.mean((w - w.mean()) / sd * b0)))
    return best


class PhoneVoice:
    """Korean text to 8 kHz int16 telephone speech: espeak-ng through the phone-band channel, cached per line."""

    def __init__(self, config: AudioConfig | None = None, *, cache_size: int = 256) -> None:
        self.config = config or AudioConfig()
        self._cache: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self._cache_size = cache_size
        # one voice may serve several calls in worker threads (a dialer's calls share its cache)
        self._lock = threading.Lock()

    def line(self, text: str) -> np.ndarray:
        """One line as int16 samples at the config's rate."""
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        from haneul.speech.synth import check_tools, espeak, phone_channel

        check_tools()
        c = self.config
        audio, sr = espeak(text, c.voice, c.speed, c.pitch)
        pcm = _int16(phone_channel(audio, sr, out_rate=c.sample_rate))
        with self._lock:
            self._cache[text] = pcm
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return pcm

    def __call__(self, lines: Sequence[str]) -> np.ndarray:
        """Several lines with a short pause between them."""
        gap = np.zeros(self.config.sample_rate * self.config.line_gap_ms // 1000, np.int16)
        parts: list[np.ndarray] = []
        for text in lines:
            if text.strip():
                parts += [gap, self.line(text)] if parts else [self.line(text)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


class Transcriber(Protocol):
    """A recogniser: ``transcribe(float32 audio) -> text``. A ``sample_rate`` attribute says the rate it wants
    (default 16 kHz, the rate of :class:`haneul.speech.recognizer.Recognizer`)."""

    def transcribe(self, audio: np.ndarray) -> str: ...


def _recognizer_rate(recognizer: Any) -> int:
    rate = getattr(recognizer, "sample_rate", None)
    if rate is None:
        rate = getattr(getattr(recognizer, "features", None), "sample_rate", None)
    return int(rate or 16000)


class ReferenceRecognizer:
    """Returns reference transcripts in order, one per turn: for simulations that measure the channel, not ASR.

    The simulated caller calls :meth:`expect` with what it is about to say; ``transcribe`` returns the
    oldest text not yet returned (``""`` when there is none, e.g. a turn that was only a noise).
    """

    sample_rate = SAMPLE_RATE  # no resampling: the audio is not looked at

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._texts: collections.deque[str] = collections.deque(texts)
        self.heard: list[int] = []  # samples per transcribed turn, to check turns were not split

    def expect(self, text: str) -> None:
        self._texts.append(text)

    def transcribe(self, audio: np.ndarray) -> str:
        self.heard.append(len(audio))
        return self._texts.popleft() if self._texts else ""


# ------------------------------------------------------------------------------------------------
# voice activity


class EnergyVad:
    """Energy voice-activity detector on fixed frames: ``step(frame)`` returns "start", "end" or None.

    Speech starts after ``speech_start_ms`` of voiced frames in a row and ends after ``speech_end_ms``
    of unvoiced ones; :attr:`in_speech` says which side of the two it is on.
    """

    def __init__(self, config: AudioConfig | None = None) -> None:
        self.config = config or AudioConfig()
        self._start = self.config.frames(self.config.speech_start_ms)
        self.end_frames = self.config.frames(self.config.speech_end_ms)
        self.reset()

    def reset(self) -> None:
        self.in_speech = False
        self._voiced = 0
        self._quiet = 0

    def voiced(self, frame: np.ndarray | None) -> bool:
        return frame is not None and frame_db(frame) > self.config.vad_threshold_db

    def step(self, frame: np.ndarray | None) -> str | None:
        if self.voiced(frame):
            self._voiced, self._quiet = self._voiced + 1, 0
        else:
            self._voiced, self._quiet = 0, self._quiet + 1
        if not self.in_speech and self._voiced >= self._start:
            self.in_speech = True
            return "start"
        if self.in_speech and self._quiet >= self.end_frames:
            self.in_speech = False
            return "end"
        return None


# ------------------------------------------------------------------------------------------------
# the call


@dataclass(frozen=True)
class CallerTurn:
    """One answer to recognise: ``audio`` (8 kHz int16) or None for a silence timeout; ``ended_at`` is the
    clock time of the caller's last voiced frame (None for silence)."""

    audio: np.ndarray | None
    ended_at: float | None
    barged_in: bool = False


@dataclass(frozen=True)
class Reply:
    """What came of a turn: the recognised text, the agent's lines and their audio."""

    turn: CallerTurn
    heard: str
    lines: list[str]
    audio: np.ndarray


@dataclass
class CallStats:
    """Measured on a call: turn latencies (s), barge-ins, silence timeouts, frames in and out."""

    latencies: list[float] = field(default_factory=list)
    barge_ins: int = 0
    silence_timeouts: int = 0
    frames_in: int = 0
    frames_missing: int = 0  # ticks with no caller frame (lost or late packets, or a quiet sender)
    frames_out: int = 0
    late_ticks: int = 0  # real-time driver only: ticks that started after their deadline
    asr_s: list[float] = field(default_factory=list)
    tts_s: list[float] = field(default_factory=list)


class AudioCall:
    """One agent behind a stream of frames; drive it with :func:`run_simulated` or :func:`serve`.

    ``recognizer`` turns each caller turn into text; ``voice`` turns the agent's lines into audio
    (default: :class:`PhoneVoice`); ``clock`` stamps turns and latencies (seconds).
    """

    def __init__(
        self,
        agent: CallAgent,
        recognizer: Transcriber,
        config: AudioConfig | None = None,
        *,
        voice: Callable[[Sequence[str]], np.ndarray] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent = agent
        self.recognizer = recognizer
        self.config = config or AudioConfig()
        self.voice = voice or PhoneVoice(self.config)
        self.clock = clock
        self.vad = EnergyVad(self.config)
        self.stats = CallStats()
        self.said: list[str] = []  # every agent line, in order (a simulated caller reads them)
        self.heard: list[str] = []  # every recognised answer
        self.state = "idle"  # idle, speaking, listening, thinking, ended
        self._out = np.zeros(0, np.int16)
        self._pos = 0
        self._preroll: collections.deque[np.ndarray] = collections.deque(maxlen=self.config.frames(
            self.config.preroll_ms))
        self._capture: list[np.ndarray] | None = None
        self._last_voiced_at: float | None = None
        self._barged = False
        self._listen_since = 0.0
        self._turn: CallerTurn | None = None
        self._latency_from: float | None = None
        self._rate = _recognizer_rate(recognizer)

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """The line is open: the agent says its first lines."""
        if self.state != "idle":
            raise InvalidInput("this audio call has already started; create a new AudioCall")
        lines = self.agent.start()
        self._play(lines, self._render(lines))

    @property
    def finished(self) -> bool:
        """The agent is done and has said its last word (or the caller hung up)."""
        return self.state == "ended"

    def hang_up(self) -> CallRecord:
        """The caller hung up or the line dropped: the agent keeps what it heard so far."""
        self.state = "ended"
        return self.agent.hang_up()

    # -- one 20 ms step ------------------------------------------------------------------------------

    def tick(self, inbound: np.ndarray | None) -> np.ndarray:
        """Take one caller frame (None when nothing arrived) and return the agent's next frame."""
        n = self.config.frame_samples
        if inbound is None:
            self.stats.frames_missing += 1
        else:
            self.stats.frames_in += 1
            if len(inbound) != n:  # a short or long packet: keep the beat
                inbound = np.concatenate([inbound, np.zeros(n, np.int16)])[:n].astype(np.int16)
        # while the agent thinks, the caller's words answer nothing yet; they are not kept
        if self.state in ("speaking", "listening"):
            self._listen(inbound)
        out = self._next_frame()
        self.stats.frames_out += 1
        return out

    def take_turn(self) -> CallerTurn | None:
        """The caller turn that just ended, once; the driver then gets a :class:`Reply` with :meth:`respond`."""
        turn, self._turn = self._turn, None
        return turn

    def respond(self, turn: CallerTurn) -> Reply:
        """Recognise the turn, let the agent answer and render its lines. May run in a worker thread:
        it touches only the agent, the recogniser and the voice, never the frame state."""
        heard = ""
        if turn.audio is not None and len(turn.audio):
            t0 = time.perf_counter()
            heard = self.transcribe(turn.audio)
            self.stats.asr_s.append(time.perf_counter() - t0)
        if self.agent.done:
            return Reply(turn, heard, [], np.zeros(0, np.int16))
        lines = self.agent.hear(heard)
        return Reply(turn, heard, lines, self._render(lines))

    def play(self, reply: Reply) -> None:
        """Say the reply's lines (on the frame loop's thread, after :meth:`respond`)."""
        if self.state == "ended":
            return
        self.heard.append(reply.heard)
        self._latency_from = reply.turn.ended_at
        self._play(reply.lines, reply.audio)

    def transcribe(self, audio: np.ndarray) -> str:
        """The recogniser's text for 8 kHz int16 caller audio, resampled to the rate it wants."""
        x = _float(audio)
        if self._rate != self.config.sample_rate:
            from haneul.speech.corpus import resample

            x = resample(x, self.config.sample_rate, self._rate)
        return (self.recognizer.transcribe(x) or "").strip()

    # -- steps -------------------------------------------------------------------------------------------

    def _render(self, lines: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        audio = _int16(self.voice(lines))
        self.stats.tts_s.append(time.perf_counter() - t0)
        return audio

    def _play(self, lines: Sequence[str], audio: np.ndarray) -> None:
        self.said.extend(lines)
        self._out, self._pos = audio, 0
        self.vad.reset()
        self._capture = None
        self.state = "speaking" if len(audio) else self._after_speaking()

    def _after_speaking(self) -> str:
        if self.agent.done:
            return "ended"
        self._listen_since = self.clock()
        return "listening"

    def _next_frame(self) -> np.ndarray:
        n = self.config.frame_samples
        if self.state != "speaking":
            return np.zeros(n, np.int16)
        if self._pos == 0 and self._latency_from is not None:
            self.stats.latencies.append(self.clock() - self._latency_from)
            self._latency_from = None
        frame = self._out[self._pos: self._pos + n]
        self._pos += n
        if len(frame) < n:
            frame = np.concatenate([frame, np.zeros(n - len(frame), np.int16)])
        if self._pos >= len(self._out):
            self.state = self._after_speaking()
        return frame

    def _listen(self, frame: np.ndarray | None) -> None:
        speaking = self.state == "speaking"
        if speaking and (not self.config.barge_in or self.agent.done):
            return  # the caller cannot interrupt; their words over the prompt are not an answer
        event = self.vad.step(frame)
        if self.vad.voiced(frame):
            self._last_voiced_at = self.clock() + self.config.frame_s  # the end of this frame
        if self._capture is None:
            if event == "start":
                self._capture = list(self._preroll)
                self._barged = speaking
                if speaking:
                    self.stats.barge_ins += 1
                    self._out, self._pos = np.zeros(0, np.int16), 0  # stop the prompt now
                    self.state = "listening"
            elif frame is not None:
                self._preroll.append(frame)
            if self._capture is None:
                if not speaking and self.clock() - self._listen_since >= self.config.silence_timeout_s:
                    self.stats.silence_timeouts += 1
                    self._end_turn(None)
                return
        self._capture.append(frame if frame is not None else np.zeros(self.config.frame_samples, np.int16))
        too_long = len(self._capture) * self.config.frame_s >= self.config.max_turn_s
        if event == "end" or too_long:
            self._end_turn(np.concatenate(self._capture))

    def _end_turn(self, audio: np.ndarray | None) -> None:
        if audio is not None:
            # drop the trailing silence that ended the turn: the recogniser needs none of it
            audio = audio[: max(0, len(audio) - self.vad.end_frames * self.config.frame_samples)]
        ended = self._last_voiced_at if audio is not None else None
        self._turn = CallerTurn(audio, ended, self._barged)
        self._capture, self._barged = None, False
        self._preroll.clear()
        self.vad.reset()
        self.state = "thinking"


# ------------------------------------------------------------------------------------------------
# the far end and the drivers


class FrameEndpoint(Protocol):
    """The far end of an audio call: where caller frames come from and agent frames go."""

    @property
    def hung_up(self) -> bool: ...

    def receive(self) -> np.ndarray | None: ...

    def send(self, frame: np.ndarray) -> None: ...


class VirtualClock:
    """A clock that moves only when told: simulated calls run faster than real time yet measure like one."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SimulatedCaller:
    """A :class:`~haneul.carecall.channels.text.Callee` on the phone: its text answers spoken by espeak-ng.

    It listens to the agent's frames; once the agent has said new lines and then been quiet for
    ``reply_after_ms``, it asks the callee for an answer and speaks it (``None`` hangs up, ``""`` stays
    silent). ``barge_in_after_ms`` makes it answer that long into each prompt instead, talking over it.
    ``recognizer``, when given, is told each answer (a :class:`ReferenceRecognizer`).
    """

    def __init__(
        self,
        callee: Any,
        voice: PhoneVoice | Callable[[Sequence[str]], np.ndarray],
        *,
        day: int = 0,
        reply_after_ms: int = 300,
        barge_in_after_ms: int | None = None,
        recognizer: ReferenceRecognizer | None = None,
        config: AudioConfig | None = None,
    ) -> None:
        self.callee, self.voice, self.day = callee, voice, day
        self.config = config or AudioConfig()
        self.reply_after = self.config.frames(reply_after_ms)
        self.barge_after = None if barge_in_after_ms is None else self.config.frames(barge_in_after_ms)
        self.recognizer = recognizer
        self.call: AudioCall | None = None
        self.answers: list[str] = []
        self.heard_audio: list[np.ndarray] = []  # every agent frame, for checks
        self._hung_up = False
        self._lines_heard = 0
        self._quiet = 0
        self._talking = 0  # agent frames with sound since its last new line
        self._say = np.zeros(0, np.int16)
        self._pos = 0

    def attach(self, call: AudioCall) -> None:
        self.call = call

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    def send(self, frame: np.ndarray) -> None:
        self.heard_audio.append(frame)
        voiced = frame_db(frame) > self.config.vad_threshold_db
        self._quiet = 0 if voiced else self._quiet + 1
        self._talking = self._talking + 1 if voiced else self._talking
        if self.call is None or self._pos < len(self._say) or len(self.call.said) <= self._lines_heard:
            return
        if self.barge_after is not None and self._talking >= self.barge_after:
            self._answer()
        elif self._quiet >= self.reply_after and self.call.state == "listening":
            self._answer()

    def _answer(self) -> None:
        assert self.call is not None
        new = self.call.said[self._lines_heard:]
        self._lines_heard = len(self.call.said)
        self._talking = 0
        expecting = self.call.agent.expecting
        text = self.callee.reply("\n".join(new), self.day, expecting[1] if expecting else None)
        if text is None:
            self._hung_up = True
            return
        self.answers.append(text)
        if not text.strip():
            return  # silence: the agent's timeout answers it
        if self.recognizer is not None:
            self.recognizer.expect(text)
        self._say, self._pos = _int16(self.voice([text])), 0

    def receive(self) -> np.ndarray | None:
        n = self.config.frame_samples
        if self._pos >= len(self._say):
            return np.zeros(n, np.int16)
        frame = self._say[self._pos: self._pos + n]
        self._pos += n
        return frame if len(frame) == n else np.concatenate([frame, np.zeros(n - len(frame), np.int16)])


def run_simulated(
    call: AudioCall, endpoint: FrameEndpoint, clock: VirtualClock, *, max_s: float = 600.0
) -> CallRecord:
    """Drive ``call`` against ``endpoint`` frame by frame as fast as the CPU allows.

    ``clock`` must be the call's clock: it advances one frame per tick plus the wall time spent in
    recognition and synthesis, as if they had blocked a real line. Ends when the call finishes, the
    endpoint hangs up, or after ``max_s`` seconds of call time (the agent then hangs up).
    """
    attach = getattr(endpoint, "attach", None)
    if callable(attach):
        attach(call)
    call.start()
    frame_s = call.config.frame_s
    while not call.finished:
        if endpoint.hung_up or clock() >= max_s:
            call.hang_up()
            break
        endpoint.send(call.tick(endpoint.receive()))
        turn = call.take_turn()
        if turn is not None:
            t0 = time.perf_counter()
            reply = call.respond(turn)
            clock.advance(time.perf_counter() - t0)
            call.play(reply)
        clock.advance(frame_s)
    return _record(call)


async def serve(call: AudioCall, endpoint: FrameEndpoint, *, max_s: float = 600.0) -> CallRecord:
    """Drive ``call`` in real time: one frame every ``frame_ms`` on the running loop.

    Recognition and synthesis run in a worker thread so the line keeps its beat (silence goes out
    meanwhile). The call's clock should be ``time.monotonic`` (the default). A tick that starts
    more than a frame late is counted in ``stats.late_ticks``; after a long stall the schedule
    restarts from now instead of bursting the missed frames.
    """
    loop = asyncio.get_running_loop()
    attach = getattr(endpoint, "attach", None)
    if callable(attach):
        attach(call)
    await loop.run_in_executor(None, call.start)
    frame_s = call.config.frame_s
    started = loop.time()
    deadline = started
    pending: asyncio.Future[Reply] | None = None
    while not call.finished:
        if endpoint.hung_up or loop.time() - started >= max_s:
            if pending is not None:
                await pending  # the agent is mid-answer in the worker; let it finish before hanging up
            call.hang_up()
            break
        endpoint.send(call.tick(endpoint.receive()))
        turn = call.take_turn()
        if turn is not None:
            pending = loop.run_in_executor(None, call.respond, turn)
        if pending is not None and pending.done():
            call.play(pending.result())
            pending = None
        deadline += frame_s
        lag = loop.time() - deadline
        if lag > frame_s:
            call.stats.late_ticks += 1
            if lag > 10 * frame_s:
                deadline = loop.time()
        await asyncio.sleep(max(0.0, deadline - loop.time()))
    return _record(call)


def _record(call: AudioCall) -> CallRecord:
    """The agent's record, marked as an audio call and carrying the turn latencies the line measured."""
    record = call.agent.record
    record.channel = "audio"
    record.latencies = [round(x, 4) for x in call.stats.latencies]
    return record
