"""The audio channel: G.711, RTP packets and jitter buffer, voice activity, barge-in, silence timeout, a whole call."""

from __future__ import annotations

import asyncio
import shutil
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from haneul.carecall.agent import CallAgent
from haneul.carecall.channels import g711
from haneul.carecall.channels.audio import (
    AudioCall,
    AudioConfig,
    EnergyVad,
    PhoneVoice,
    ReferenceRecognizer,
    SimulatedCaller,
    VirtualClock,
    envelope_similarity,
    run_simulated,
)
from haneul.carecall.channels.rtp import JitterBuffer, RtpError, RtpPacket, RtpSession
from haneul.carecall.scenario import parse
from haneul.errors import InvalidInput

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                  reason="espeak-ng and sox are needed (bash scripts/sysdeps.sh)")

TWO_QUESTIONS = {
    "id": "audio_check", "title": "audio check", "language": "ko", "start": "fever", "nodes": {
        "fever": {"type": "ask", "prompt": "열이 있으세요?", "expect": "yesno", "slot": "fever", "next": "cough",
                  "retries": 1},
        "cough": {"type": "ask", "prompt": "기침이 나오시나요?", "expect": "yesno", "slot": "cough", "next": "bye",
                  "retries": 1},
        "bye": {"type": "closing", "prompt": "감사합니다."},
    },
}


def yes_no(text: str, expect: str = "yesno", slot: str | None = None, **_: object) -> SimpleNamespace:
    intent = "yes" if text.startswith("네") else "no" if text.startswith("아니") else "unclear"
    return SimpleNamespace(intent=intent, value=None, symptoms={})


def tone_voice(lines: list[str]) -> np.ndarray:
    """A stand-in for speech: 100 ms of a 440 Hz tone per character, so tests need no espeak."""
    n = sum(len(line) for line in lines) * 800
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 8000) * 32767).astype(np.int16)


def tone(seconds: float, freq: float = 300.0) -> np.ndarray:
    n = int(seconds * 8000)
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(n) / 8000) * 32767).astype(np.int16)


class Frames:
    """A far end that plays a fixed caller signal, frame by frame, and keeps what the agent sent."""

    def __init__(self, caller: np.ndarray) -> None:
        self.caller, self.pos, self.out = caller, 0, []
        self.hung_up = False

    def receive(self) -> np.ndarray:
        frame = self.caller[self.pos: self.pos + 160]
        self.pos += 160
        return np.concatenate([frame, np.zeros(160 - len(frame), np.int16)])

    def send(self, frame: np.ndarray) -> None:
        self.out.append(frame)


class FixedRecognizer:
    sample_rate = 8000

    def __init__(self, *texts: str) -> None:
        self.texts, self.audio = list(texts), []

    def transcribe(self, audio: np.ndarray) -> str:
        self.audio.append(audio)
        return self.texts.pop(0) if self.texts else ""


# -- G.711 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("codec", "ref_encode", "ref_decode"), [
    ("PCMU", audioop.lin2ulaw, audioop.ulaw2lin), ("PCMA", audioop.lin2alaw, audioop.alaw2lin)])
def test_g711_matches_the_reference_for_every_sample(codec, ref_encode, ref_decode):
    every = np.arange(-32768, 32768, dtype=np.int16)
    assert g711.encode(every, codec) == ref_encode(every.tobytes(), 2)
    codes = bytes(range(256))
    assert g711.decode(codes, codec).tobytes() == ref_decode(codes, 2)


def test_g711_reference_points_and_round_trip():
    # silence is 0xFF in mu-law and 0xD5 in A-law; the extremes decode to +-32124 (mu) and +-32256 (A)
    assert g711.ulaw_encode(np.array([0], np.int16)) == b"\xff"
    assert g711.alaw_encode(np.array([0], np.int16)) == b"\xd5"
    assert g711.ulaw_decode(b"\x00\x80").tolist() == [-32124, 32124]
    assert g711.alaw_decode(b"\x2a\xaa").tolist() == [-32256, 32256]
    x = tone(0.1, 1000)
    for codec in ("PCMU", "PCMA"):
        back = g711.decode(g711.encode(x, codec), codec).astype(np.float64)
        snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((back - x) ** 2))
        assert snr > 30  # companding keeps about 38 dB SNR on a loud tone
    assert g711.encode(np.array([0.5, -2.0], np.float32)) == g711.encode(np.array([16383, -32767], np.int16))


# -- RTP --------------------------------------------------------------------------------------------


def test_rtp_packet_round_trip_and_garbage():
    p = RtpPacket(0, 65535, 2**32 - 160, 0xDEADBEEF, b"\xff" * 160, marker=True)
    assert RtpPacket.parse(p.to_bytes()) == p
    # one CSRC, a one-word header extension and four bytes of padding are all skipped
    raw = bytes([0xB1, 0x08]) + (7).to_bytes(2, "big") + (1).to_bytes(4, "big") + (2).to_bytes(4, "big")
    raw += b"\0\0\0\1" + b"\xbe\xde\0\1" + b"XXXX" + b"hello" + b"\0\0\0\4"
    q = RtpPacket.parse(raw)
    assert (q.payload_type, q.sequence, q.payload) == (8, 7, b"hello")
    for junk in (b"", b"\x80\x00", b"INVITE sip:x SIP/2.0\r\n", bytes([0x40]) + bytes(20)):
        with pytest.raises(RtpError):
            RtpPacket.parse(junk)


def test_jitter_buffer_reorders_hides_loss_and_wraps():
    jb = JitterBuffer(depth=2)
    jb.push(65534, b"a")
    assert jb.pop() is None  # still filling
    jb.push(0, b"c")  # 65535 is late; 0 comes first (wrapped)
    assert jb.pop() == b"a"
    jb.push(65535, b"b")
    jb.push(65535, b"b")
    assert [jb.pop(), jb.pop()] == [b"b", b"c"]
    jb.push(2, b"e")  # 1 is lost
    assert [jb.pop(), jb.pop()] == [None, b"e"]
    jb.push(1, b"d")  # too late now
    assert (jb.lost, jb.late, jb.duplicates) == (1, 1, 1)
    assert jb.pop() is None  # quiet sender
    with pytest.raises(InvalidInput):
        JitterBuffer(depth=0)


def test_rtp_sessions_carry_audio_and_drop_garbage():
    async def main():
        a, b = RtpSession("PCMA"), RtpSession("PCMA", jitter_depth=1)
        await a.open()
        await b.open()
        a.remote = ("127.0.0.1", b.port)
        loop = asyncio.get_running_loop()
        junk, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", b.port))
        x = tone(0.2)
        junk.sendto(b"\x00garbage")
        junk.sendto(RtpPacket(0, 1, 1, 1, b"\xff" * 160).to_bytes())  # PCMU into a PCMA call
        for i in range(10):
            a.send(x[i * 160:(i + 1) * 160])
        await asyncio.sleep(0.2)
        got = [b.receive() for _ in range(10)]
        junk.close()
        a.close()
        b.close()
        return x, got, b.stats

    x, got, stats = asyncio.run(main())
    assert all(f is not None for f in got)
    back = np.concatenate(got).astype(np.float64)
    assert np.max(np.abs(back - x)) < 0.05 * 32768
    assert (stats.received, stats.garbage, stats.foreign) == (10, 1, 1)


# -- voice activity and the call loop ---------------------------------------------------------


def test_vad_finds_speech_and_ignores_a_click():
    cfg = AudioConfig(speech_start_ms=60, speech_end_ms=200)
    vad = EnergyVad(cfg)
    signal = np.concatenate([np.zeros(800, np.int16), tone(0.02), np.zeros(1600, np.int16), tone(0.5),
                             np.zeros(4000, np.int16)])
    events = [(i, e) for i, f in enumerate(signal.reshape(-1, 160)) if (e := vad.step(f))]
    # the 20 ms click at frame 5 is not speech; the tone starts at frame 16 (3 frames to confirm)
    # and lasts 25 frames; the end comes 10 silent frames after it
    assert events == [(18, "start"), (50, "end")]


def _call(caller: np.ndarray, recognizer, cfg: AudioConfig, scenario=TWO_QUESTIONS):
    clock = VirtualClock()
    agent = CallAgent(parse(scenario), yes_no, clock=clock)
    call = AudioCall(agent, recognizer, cfg, voice=tone_voice, clock=clock)
    far = Frames(caller)
    run_simulated(call, far, clock, max_s=60)
    return call, far


def test_barge_in_stops_the_prompt_and_the_answer_is_heard():
    cfg = AudioConfig(speech_end_ms=300)
    prompt_s = len("열이 있으세요?") * 0.1  # 0.8 s of tone
    # the caller answers 0.3 s into the first prompt, then answers the second after it ends
    caller = np.concatenate([np.zeros(2400, np.int16), tone(0.6), np.zeros(int(8000 * 1.6), np.int16),
                             tone(0.6), np.zeros(8000 * 3, np.int16)])
    rec = FixedRecognizer("네 있어요", "아니요")
    call, far = _call(caller, rec, cfg)
    assert call.stats.barge_ins >= 1
    out = np.concatenate(far.out)
    voiced = [i for i, f in enumerate(out.reshape(-1, 160)) if np.abs(f).max() > 0]
    first_gap = next(i for a, i in zip(voiced, voiced[1:], strict=False) if i != a + 1)
    # the prompt stopped after the barge-in was confirmed (0.3 s + 60 ms), long before its 0.8 s end
    first_prompt_frames = voiced.index(first_gap)
    assert first_prompt_frames < prompt_s / 0.02 * 0.6
    assert call.agent.record.answers["fever"].text == "네 있어요"
    assert call.agent.record.answers["cough"].intent == "no"
    assert call.agent.record.outcome == "completed"
    # the recogniser got the caller's speech, not the agent's tone
    assert len(rec.audio[0]) >= 0.6 * 8000


def test_without_barge_in_the_prompt_plays_to_the_end():
    cfg = AudioConfig(barge_in=False, speech_end_ms=300)
    caller = np.concatenate([np.zeros(2400, np.int16), tone(0.3), np.zeros(8000 * 8, np.int16)])
    call, far = _call(caller, FixedRecognizer(), cfg)
    assert call.stats.barge_ins == 0
    out = np.concatenate(far.out)
    assert np.count_nonzero(np.abs(out[: int(0.8 * 8000)])) > 0.9 * 0.8 * 8000


def test_silence_timeout_is_an_empty_answer():
    cfg = AudioConfig(silence_timeout_s=2.0)
    rec = FixedRecognizer()
    call, _ = _call(np.zeros(8000 * 30, np.int16), rec, cfg)
    record = call.agent.record
    # each question is asked twice (retries: 1); four silences, then the closing line
    assert call.stats.silence_timeouts == 4
    assert [t.text for t in record.transcript if t.speaker == "callee"] == [""] * 4
    assert record.answers["fever"].status == "unanswered"
    assert record.outcome == "completed" and rec.audio == []
    assert call.stats.latencies == []  # nobody spoke, so no turn latency


def test_turn_latency_is_measured_from_the_callers_last_frame():
    cfg = AudioConfig(speech_end_ms=400)
    caller = np.concatenate([np.zeros(int(8000 * 1.2), np.int16), tone(0.5), np.zeros(8000 * 2, np.int16),
                             tone(0.5), np.zeros(8000 * 3, np.int16)])
    call, _ = _call(caller, FixedRecognizer("네", "아니요"), cfg)
    assert len(call.stats.latencies) == 2
    # end of turn needs 400 ms of silence; the reply starts within a frame or two plus processing
    assert all(lat >= 0.4 for lat in call.stats.latencies)
    assert call.agent.record.answers["fever"].intent == "yes"


def test_hang_up_keeps_the_answers():
    cfg = AudioConfig()
    clock = VirtualClock()
    agent = CallAgent(parse(TWO_QUESTIONS), yes_no, clock=clock)
    call = AudioCall(agent, FixedRecognizer(), cfg, voice=tone_voice, clock=clock)
    far = Frames(np.zeros(8000, np.int16))
    far.hung_up = True
    record = run_simulated(call, far, clock)
    assert record.outcome == "hung_up" and call.finished


# -- with real speech -------------------------------------------------------------------------------


@needs_espeak
def test_phone_voice_renders_8khz_speech_that_matches_itself():
    voice = PhoneVoice()
    a = voice.line("안녕하세요. 오늘 열이 있으세요?")
    b = voice.line("아니요, 괜찮습니다 정말로요.")
    assert a.dtype == np.int16 and 1.0 < len(a) / 8000 < 5.0
    assert voice.line("안녕하세요. 오늘 열이 있으세요?") is a  # cached
    codec = g711.decode(g711.encode(a))
    padded = np.concatenate([np.zeros(4000, np.int16), codec, np.zeros(8000, np.int16)])
    assert envelope_similarity(padded, a) > 0.95
    assert envelope_similarity(padded, b) < 0.8


@needs_espeak
def test_simulated_audio_call_gives_the_text_channels_record():
    from haneul.carecall.channels.text import run_call
    from haneul.carecall.simulate import SimulatedCallee, population

    persona = population(4, seed=3)[1]
    text_callee = SimulatedCallee(persona, seed=0)
    text_record = run_call(CallAgent("covid", text_callee.oracle, {"name": persona.name}), text_callee)

    cfg = AudioConfig()
    voice = PhoneVoice(cfg)
    callee = SimulatedCallee(persona, seed=0)
    assert callee.picks_up(0)  # as the text channel asks first (it draws from the callee's generator)
    rec = ReferenceRecognizer()
    clock = VirtualClock()
    agent = CallAgent("covid", callee.oracle, {"name": persona.name}, clock=clock)
    call = AudioCall(agent, rec, cfg, voice=voice, clock=clock)
    caller = SimulatedCaller(callee, voice, recognizer=rec, config=cfg)
    record = run_simulated(call, caller, clock)

    assert record.outcome == text_record.outcome
    assert {k: a.text for k, a in record.answers.items()} == {k: a.text for k, a in text_record.answers.items()}
    assert record.summary == text_record.summary
    spoken = [a for a in caller.answers if a.strip()]
    assert call.heard == caller.answers and len(rec.heard) == len(spoken)  # one recognised turn per answer
    assert len(call.stats.latencies) == len(spoken)
    assert call.said == [t.text for t in record.transcript if t.speaker == "agent"]
