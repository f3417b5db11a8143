"""The SIP/RTP channel: messages, SDP, the user agent's dialogs and failures, and real calls with sipp on loopback."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from haneul.carecall.agent import CallAgent
from haneul.carecall.channels import g711
from haneul.carecall.channels.audio import AudioCall, AudioConfig, PhoneVoice, envelope_similarity
from haneul.carecall.channels.rtp import RtpPacket
from haneul.carecall.channels.sip import (
    SessionDescription,
    SipAgent,
    SipConfig,
    SipError,
    SipMessage,
    parse_uri,
    sdp_answer,
    sdp_offer,
)
from haneul.carecall.scenario import parse

SIPP_DIR = Path(__file__).parent / "sipp"
needs_sipp = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("sipp", "espeak-ng", "sox")),
    reason="sipp, espeak-ng and sox are needed (bash scripts/sysdeps.sh)")

PROMPT = "안녕하세요. 오늘 열이 있으세요?"
ANSWER = "네, 열이 조금 있어요."
HEARD = "네 열이 조금 있어요"

ONE_QUESTION = {
    "id": "sip_check", "title": "sip check", "language": "ko", "start": "fever", "nodes": {
        "fever": {"type": "ask", "prompt": PROMPT, "expect": "yesno", "slot": "fever", "next": "bye"},
        "bye": {"type": "closing", "prompt": "감사합니다."},
    },
}
TWO_QUESTIONS = {
    "id": "sip_check2", "title": "sip check", "language": "ko", "start": "fever", "nodes": {
        "fever": {"type": "ask", "prompt": PROMPT, "expect": "yesno", "slot": "fever", "next": "cough"},
        "cough": {"type": "ask", "prompt": "기침이 나오시나요?", "expect": "yesno", "slot": "cough", "next": "bye"},
        "bye": {"type": "closing", "prompt": "감사합니다."},
    },
}


def yes_no(text: str, expect: str = "yesno", slot: str | None = None, **_: object) -> SimpleNamespace:
    intent = "yes" if text.startswith("네") else "no" if text.startswith("아니") else "unclear"
    return SimpleNamespace(intent=intent, value=None, symptoms={})


def tone_voice(lines: list[str]) -> np.ndarray:
    n = sum(len(line) for line in lines) * 400
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 8000) * 32767).astype(np.int16)


class MatchingRecognizer:
    """A fake recogniser that knows one recording: it returns its text only when the turn's audio is it."""

    sample_rate = 8000

    def __init__(self, reference: np.ndarray, text: str) -> None:
        self.reference, self.text = reference, text
        self.scores: list[float] = []

    def transcribe(self, audio: np.ndarray) -> str:
        score = envelope_similarity(audio, self.reference)
        self.scores.append(score)
        return self.text if score > 0.85 else ""


# -- messages and SDP ----------------------------------------------------------------------------------

INVITE = (
    "INVITE sip:carecall@127.0.0.1:5060 SIP/2.0\r\n"
    "v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    "f: <sip:a@127.0.0.1:5070>;tag=abc\r\n"
    "t: <sip:carecall@127.0.0.1:5060>\r\n"
    "i: call-1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Subject: a long\r\n  folded header\r\n"
    "c: application/sdp\r\n"
    "l: {length}\r\n\r\n{body}"
)
OFFER = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
         "m=audio 4000 RTP/AVP 18 8 0 101\r\nc=IN IP4 127.0.0.2\r\na=rtpmap:18 G729/8000\r\n"
         "a=rtpmap:101 telephone-event/8000\r\n")


def test_sip_message_parses_compact_folded_headers_and_round_trips():
    msg = SipMessage.parse(INVITE.format(length=len(OFFER), body=OFFER).encode())
    assert (msg.method, msg.uri, msg.call_id, msg.cseq) == ("INVITE", "sip:carecall@127.0.0.1:5060", "call-1",
                                                            (1, "INVITE"))
    assert msg.get("subject") == "a long folded header"
    assert msg.body.decode() == OFFER
    again = SipMessage.parse(msg.to_bytes())
    assert (again.get("Call-ID"), again.body) == ("call-1", msg.body)
    for junk in (b"\x00\x01\x02", b"HELLO world\r\n\r\n", b"INVITE sip:x SIP/2.0\r\nVia: x\r\n\r\n",
                 b"SIP/2.0 200 OK\r\nCSeq: x\r\n"):
        with pytest.raises(SipError):
            SipMessage.parse(junk)
    assert parse_uri("sip:carecall@10.1.2.3:5080;transport=udp") == ("carecall", "10.1.2.3", 5080)
    assert parse_uri("sip:pbx.example.org") == ("", "pbx.example.org", 5060)


def test_sdp_answer_takes_the_first_g711_codec_of_the_offer():
    offer = SessionDescription.parse(OFFER)
    assert (offer.address, offer.port, offer.codecs()) == ("127.0.0.2", 4000, ["PCMA", "PCMU"])
    body, codec = sdp_answer(offer, "127.0.0.1", 5004)
    assert codec == "PCMA"
    answer = SessionDescription.parse(body)
    assert (answer.port, answer.payload_types, answer.codecs()) == (5004, (8,), ["PCMA"])
    assert SessionDescription.parse(sdp_offer("127.0.0.1", 6000)).codecs() == ["PCMU", "PCMA"]
    with pytest.raises(SipError):
        sdp_answer(SessionDescription.parse(OFFER.replace("18 8 0 101", "18")), "127.0.0.1", 5004)
    with pytest.raises(SipError):
        SessionDescription.parse("v=0\r\ns=-\r\n")


# -- the user agent against a scripted peer -------------------------------------------------------------


class Peer(asyncio.DatagramProtocol):
    """A bare UDP peer that sends what the test writes and keeps every SIP message it gets."""

    def __init__(self) -> None:
        self.got: list[SipMessage] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.got.append(SipMessage.parse(data))

    @property
    def port(self) -> int:
        return self.transport.get_extra_info("sockname")[1]

    def invite(self, ua_port: int, call_id: str, rtp_port: int = 4000) -> None:
        sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {rtp_port} RTP/AVP 0\r\n")
        self.request("INVITE", ua_port, call_id, body=sdp)

    def request(self, method: str, ua_port: int, call_id: str, body: str = "", to_tag: str = "",
                cseq: int = 1) -> None:
        text = (f"{method} sip:carecall@127.0.0.1:{ua_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{call_id}{method}\r\n"
                f"From: <sip:peer@127.0.0.1:{self.port}>;tag=p1\r\n"
                f"To: <sip:carecall@127.0.0.1:{ua_port}>{to_tag}\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:peer@127.0.0.1:{self.port}>\r\n"
                + ("Content-Type: application/sdp\r\n" if body else "")
                + f"Content-Length: {len(body)}\r\n\r\n{body}")
        self.transport.sendto(text.encode(), ("127.0.0.1", ua_port))

    def respond(self, req: SipMessage, status: int, reason: str, body: str = "") -> None:
        text = "".join(f"Via: {v}\r\n" for v in req.get_all("Via"))
        text += (f"From: {req.get('From')}\r\nTo: {req.get('To')};tag=callee\r\nCall-ID: {req.call_id}\r\n"
                 f"CSeq: {req.get('CSeq')}\r\nContact: <sip:callee@127.0.0.1:{self.port}>\r\n")
        text += ("Content-Type: application/sdp\r\n" if body else "") + f"Content-Length: {len(body)}\r\n\r\n{body}"
        self.transport.sendto(f"SIP/2.0 {status} {reason}\r\n{text}".encode(), self.origin(req))

    @staticmethod
    def origin(msg: SipMessage) -> tuple[str, int]:
        host, _, port = msg.get("Via").split()[1].split(";")[0].partition(":")
        return host, int(port)

    def statuses(self, call_id: str) -> list[str]:
        return [f"{m.status} {m.cseq[1]}" if not m.is_request else m.method for m in self.got
                if m.call_id == call_id]


def _answerer(scenario=ONE_QUESTION, recognizer=None, cfg: AudioConfig | None = None):
    def answer(info):
        return AudioCall(CallAgent(parse(scenario), yes_no), recognizer or MatchingRecognizer(np.zeros(0), ""),
                         cfg or AudioConfig(), voice=tone_voice)
    return answer


async def _with_peer(ua: SipAgent):
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    return peer


def test_options_garbage_unknown_methods_and_cancel():
    async def main():
        async with SipAgent(_answerer(), SipConfig(port=0, ring_s=5)) as ua:
            peer = await _with_peer(ua)
            peer.transport.sendto(b"\x16\x03\x01 not sip at all", ("127.0.0.1", ua.port))
            peer.transport.sendto(b"\r\n\r\n", ("127.0.0.1", ua.port))  # keep-alive, not garbage
            peer.request("OPTIONS", ua.port, "opt-1")
            peer.request("SUBSCRIBE", ua.port, "sub-1")
            peer.request("BYE", ua.port, "nobody-1")
            peer.invite(ua.port, "cancel-1")
            await asyncio.sleep(0.2)
            peer.request("CANCEL", ua.port, "cancel-1")
            calls = await ua.wait_finished(1, 5)
            await asyncio.sleep(0.1)
            peer.transport.close()
            return ua, peer, calls[0]

    ua, peer, call = asyncio.run(main())
    assert ua.garbage == 1
    assert peer.statuses("opt-1") == ["200 OPTIONS"]
    assert peer.statuses("sub-1") == ["501 SUBSCRIBE"]
    assert peer.statuses("nobody-1") == ["481 BYE"]
    assert peer.statuses("cancel-1") == ["100 INVITE", "180 INVITE", "200 CANCEL", "487 INVITE"]
    assert call.outcome == "cancelled" and call.record.outcome == "no_answer"


def test_no_ack_fails_the_call_and_hangs_up():
    async def main():
        async with SipAgent(_answerer(), SipConfig(port=0, t1_s=0.1, ack_timeout_s=0.8)) as ua:
            peer = await _with_peer(ua)
            peer.invite(ua.port, "noack-1")
            calls = await ua.wait_finished(1, 5)
            peer.transport.close()
            return peer, calls[0]

    peer, call = asyncio.run(main())
    assert call.outcome == "failed" and "ACK" in call.reason
    got = peer.statuses("noack-1")
    assert got[:3] == ["100 INVITE", "180 INVITE", "200 INVITE"]
    assert got.count("200 INVITE") >= 3  # re-sent while waiting for the ACK
    assert got[-1] == "BYE"
    assert call.record.outcome == "no_answer"  # the agent never spoke


def test_a_vanished_peer_ends_its_call_only():
    """Call A's peer stops sending RTP and gets garbage RTP; call B keeps going and hangs up normally."""
    async def main():
        loop = asyncio.get_running_loop()
        cfg = SipConfig(port=0, t1_s=0.1, rtp_timeout_s=1.0, bye_timeout_s=0.5)
        async with SipAgent(_answerer(TWO_QUESTIONS, cfg=AudioConfig(silence_timeout_s=30)), cfg) as ua:
            peer = await _with_peer(ua)
            media, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
            media_port = media.get_extra_info("sockname")[1]
            for cid in ("gone-1", "alive-1"):
                peer.invite(ua.port, cid, media_port)
            await asyncio.sleep(0.3)
            for cid in ("gone-1", "alive-1"):
                tag = next(m.get("To") for m in peer.got if m.call_id == cid and m.status == 200).split(">")[1]
                peer.request("ACK", ua.port, cid, to_tag=tag)
            await asyncio.sleep(0.2)
            alive = ua.calls["alive-1"]
            ports = (alive.rtp.port, ua.calls["gone-1"].rtp.port)
            for seq in range(150):  # 3 s of RTP to the live call only; garbage to both
                media.sendto(RtpPacket(0, seq, seq * 160, 7, b"\xff" * 160).to_bytes(), ("127.0.0.1", ports[0]))
                if seq % 10 == 0:
                    for port in ports:
                        media.sendto(b"\x00junk" * seq, ("127.0.0.1", port))
                    peer.transport.sendto(b"garbage", ("127.0.0.1", ua.port))
                await asyncio.sleep(0.02)
            first = list(ua.finished)
            still_up = "alive-1" in ua.calls
            garbage = alive.rtp.stats.garbage
            peer.request("BYE", ua.port, "alive-1", to_tag=tag, cseq=2)
            await ua.wait_finished(2, 5)
            media.close()
            peer.transport.close()
            return first, still_up, garbage, ua, peer

    first, still_up, garbage, ua, peer = asyncio.run(main())
    assert [c.call_id for c in first] == ["gone-1"]
    assert first[0].outcome == "hung_up" and "RTP" in first[0].reason
    assert first[0].record.outcome == "hung_up"
    assert "BYE" in peer.statuses("gone-1")
    assert still_up and garbage >= 10 and ua.garbage >= 10
    alive = ua.finished[1]
    assert alive.call_id == "alive-1" and alive.outcome == "hung_up" and alive.reason == "the peer sent BYE"
    assert alive.events[-2:] == ["< BYE", "> 200 BYE"]


def test_dialling_a_peer_that_answers_with_pcma_then_hangs_up():
    class Media(asyncio.DatagramProtocol):
        def __init__(self):
            self.packets = []

        def datagram_received(self, data, addr):
            self.packets.append(RtpPacket.parse(data))

    async def main():
        loop = asyncio.get_running_loop()
        media_transport, media = await loop.create_datagram_endpoint(Media, local_addr=("127.0.0.1", 0))
        media_port = media_transport.get_extra_info("sockname")[1]
        async with SipAgent(None, SipConfig(port=0, t1_s=0.1)) as ua:
            peer = await _with_peer(ua)
            audio = AudioCall(CallAgent(parse(TWO_QUESTIONS), yes_no), MatchingRecognizer(np.zeros(0), ""),
                              AudioConfig(), voice=tone_voice)
            dialling = asyncio.ensure_future(ua.call(f"sip:someone@127.0.0.1:{peer.port}", audio))
            while not peer.got:
                await asyncio.sleep(0.01)
            invite = peer.got[0]
            answer = ("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                      f"m=audio {media_port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
            peer.respond(invite, 180, "Ringing")
            peer.respond(invite, 200, "OK", answer)
            await asyncio.sleep(0.6)
            peer.respond(invite, 200, "OK", answer)  # as if our ACK were lost: it must come again
            await asyncio.sleep(0.3)
            bye = (f"BYE sip:carecall@127.0.0.1:{ua.port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bKbye\r\n"
                   f"From: {invite.get('To')};tag=callee\r\nTo: {invite.get('From')}\r\n"
                   f"Call-ID: {invite.call_id}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n")
            peer.transport.sendto(bye.encode(), ("127.0.0.1", ua.port))
            call = await asyncio.wait_for(dialling, 5)
            await asyncio.sleep(0.1)
            peer.transport.close()
        media_transport.close()
        return invite, call, peer, media

    invite, call, peer, media = asyncio.run(main())
    offer = SessionDescription.parse(invite.body)
    assert offer.codecs() == ["PCMU", "PCMA"]
    assert call.codec == "PCMA" and call.outcome == "hung_up" and call.record.outcome == "hung_up"
    assert [m.method for m in peer.got if m.is_request].count("ACK") == 2
    assert peer.statuses(invite.call_id)[-1] == "200 BYE"
    assert call.events[:4] == ["> INVITE", "< 180 INVITE", "< 200 INVITE", "> ACK"]
    assert len(media.packets) >= 20 and {p.payload_type for p in media.packets} == {8}
    assert len({p.ssrc for p in media.packets}) == 1
    first = media.packets[0]
    assert first.marker and all(not p.marker for p in media.packets[1:])
    heard = g711.decode(b"".join(p.payload for p in media.packets), "PCMA").astype(np.int32)
    prompt = tone_voice([PROMPT]).astype(np.int32)
    assert len(heard) >= len(prompt)
    assert np.max(np.abs(heard[: len(prompt)] - prompt)) < 0.05 * 32768  # the prompt, through A-law


def test_declined_call_bad_offer_and_a_failing_factory():
    def answer(info):
        if info.call_id == "oops-1":
            raise RuntimeError("no agent today")
        return None

    async def main():
        async with SipAgent(answer, SipConfig(port=0)) as ua:
            peer = await _with_peer(ua)
            peer.invite(ua.port, "oops-1")
            peer.invite(ua.port, "busy-1")
            peer.request("INVITE", ua.port, "nosdp-1", body="v=0\r\nm=audio 4000 RTP/AVP 18\r\nc=IN IP4 1.2.3.4\r\n")
            await asyncio.sleep(0.3)
            peer.transport.close()
            return ua, peer

    ua, peer = asyncio.run(main())
    assert peer.statuses("oops-1") == ["100 INVITE", "500 INVITE"]
    assert peer.statuses("busy-1") == ["100 INVITE", "486 INVITE"]
    assert peer.statuses("nosdp-1") == ["100 INVITE", "488 INVITE"]
    assert ua.finished[0].outcome == "rejected"


# -- real calls with sipp ---------------------------------------------------------------------------------


class Sink(asyncio.DatagramProtocol):
    """Where sipp's SDP points the agent's RTP: keeps every packet."""

    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []

    def datagram_received(self, data, addr):
        self.packets.append(RtpPacket.parse(data))

    def audio(self) -> np.ndarray:
        ordered = sorted(self.packets, key=lambda p: p.sequence)  # one short call: no wrap to worry about
        return np.concatenate([g711.decode(p.payload, "PCMU") for p in ordered])


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """The prompt as the agent renders it, and a caller recording: silence while the prompt plays, the answer."""
    import soundfile as sf

    voice = PhoneVoice(AudioConfig())
    prompt, answer = voice.line(PROMPT), voice.line(ANSWER)
    lead = np.zeros(len(prompt) + 8000, np.int16)  # the prompt, then a second's pause before answering
    recording = np.concatenate([lead, answer, np.zeros(int(2.5 * 8000), np.int16)])
    folder = tmp_path_factory.mktemp("sipp")
    sf.write(folder / "caller.wav", recording, 8000, subtype="ULAW")  # sipp streams the data chunk as PCMU
    return SimpleNamespace(voice=voice, prompt=prompt, answer=answer, folder=folder,
                           seconds=len(recording) / 8000)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _sipp(folder: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sipp", "-i", "127.0.0.1", "-m", "1", "-nostdin", "-trace_err", "-timeout", "60s", "-timeout_error",
        *args, cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


def _check_prompt_and_answer(call, sink: Sink, recognizer: MatchingRecognizer, speech) -> None:
    assert sink.packets and {p.payload_type for p in sink.packets} == {0}
    seqs = sorted(p.sequence for p in sink.packets)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # every 20 ms frame, numbered in order
    assert {len(p.payload) for p in sink.packets} == {160}
    heard = sink.audio()
    assert envelope_similarity(heard, speech.prompt) > 0.95  # the prompt arrived as sent
    assert envelope_similarity(heard[: len(speech.prompt) + 8000], speech.answer) < 0.85
    assert max(recognizer.scores) > 0.85  # the caller's answer reached the recogniser
    answer = call.record.answers["fever"]
    assert (answer.text, answer.intent) == (HEARD, "yes")


@pytest.mark.slow
@needs_sipp
def test_sipp_calls_the_agent(speech):
    recognizer = MatchingRecognizer(speech.answer, HEARD)

    def answer(info):
        return AudioCall(CallAgent(parse(ONE_QUESTION), yes_no), recognizer, AudioConfig(), voice=speech.voice)

    async def main():
        loop = asyncio.get_running_loop()
        sink_transport, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        async with SipAgent(answer, SipConfig(port=0, rtp_timeout_s=5)) as ua:
            proc = await _sipp(speech.folder, "-sf", str(SIPP_DIR / "uac_answer.xml"), "-s", "carecall",
                               "-p", str(_free_port()), "-key", "sink_port", str(sink_transport.get_extra_info(
                                   "sockname")[1]), f"127.0.0.1:{ua.port}")
            _, err = await proc.communicate()
            calls = await ua.wait_finished(1, 10)
        sink_transport.close()
        return proc.returncode, err.decode(), calls[0], sink

    rc, err, call, sink = asyncio.run(main())
    assert rc == 0, err  # sipp: INVITE, 100/180/200, ACK, the answer streamed, BYE answered
    assert call.outcome == "completed" and call.record.outcome == "completed"
    assert call.events[:5] == ["< INVITE", "> 100 INVITE", "> 180 INVITE", "> 200 INVITE", "< ACK"]
    assert call.events[-2:] == ["> BYE", "< 200 BYE"]
    assert call.codec == "PCMU"
    _check_prompt_and_answer(call, sink, recognizer, speech)
    assert [t.text for t in call.record.transcript if t.speaker == "agent"] == [PROMPT, "감사합니다."]
    assert len(call.audio.stats.latencies) == 1


@pytest.mark.slow
@needs_sipp
def test_the_agent_calls_sipp(speech):
    recognizer = MatchingRecognizer(speech.answer, HEARD)

    async def main():
        loop = asyncio.get_running_loop()
        sink_transport, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        port = _free_port()
        # sipp answers, streams the recording and hangs up a little after it ends
        proc = await _sipp(speech.folder, "-sf", str(SIPP_DIR / "uas_answer.xml"), "-p", str(port),
                           "-key", "sink_port", str(sink_transport.get_extra_info("sockname")[1]),
                           "-d", str(int(speech.seconds * 1000)))
        await asyncio.sleep(0.5)  # let it bind
        async with SipAgent(None, SipConfig(port=0, rtp_timeout_s=5)) as ua:
            audio = AudioCall(CallAgent(parse(TWO_QUESTIONS), yes_no), recognizer, AudioConfig(), voice=speech.voice)
            call = await asyncio.wait_for(ua.call(f"sip:sipp@127.0.0.1:{port}", audio), 60)
        _, err = await proc.communicate()
        sink_transport.close()
        return proc.returncode, err.decode(), call, sink

    rc, err, call, sink = asyncio.run(main())
    assert rc == 0, err
    assert call.events[:4] == ["> INVITE", "< 180 INVITE", "< 200 INVITE", "> ACK"]
    assert call.events[-2:] == ["< BYE", "> 200 BYE"]
    assert call.outcome == "hung_up" and call.record.outcome == "hung_up"
    _check_prompt_and_answer(call, sink, recognizer, speech)
    assert "cough" not in call.record.answers  # sipp hung up during the second question
