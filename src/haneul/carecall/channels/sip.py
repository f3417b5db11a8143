"""The telephone channel: a minimal SIP user agent (RFC 3261 over UDP) with SDP (RFC 4566) and G.711 RTP.

CareCall (Lee et al., 2020) reaches people on ordinary phones; a PBX or SIP trunk is the way in.
:class:`SipAgent` is a small user agent that speaks the part of SIP such a call needs. As a server
it listens on a UDP port and answers: ``INVITE`` gets ``100 Trying``, ``180 Ringing`` and ``200 OK``
with an SDP answer picking PCMU or PCMA from the offer, the ``200`` is re-sent until the ``ACK``,
and a ``BYE`` from either side ends the call; ``CANCEL`` before the answer gets ``487``, ``OPTIONS``
gets ``200``. As a client (:meth:`SipAgent.call`) it places a call to a SIP URI with an SDP offer of
PCMU and PCMA, acknowledges the answer and hangs up with ``BYE`` when the agent has said its last
line. Each answered call runs one :class:`~haneul.carecall.channels.audio.AudioCall` over an
:class:`~haneul.carecall.channels.rtp.RtpSession` in real time.

Every call is isolated: a datagram that does not parse is counted and dropped, a failure inside one
call ends that call (outcome ``failed``) and no other, a peer that never acknowledges the answer ends
the call as ``failed`` and one that stops sending RTP for ``rtp_timeout_s`` as ``hung_up``. In-dialog
requests go back to the address the peer's messages came from (symmetric signalling), which is what
a PBX behind NAT expects. No authentication, TCP, TLS or SRTP: put the agent behind a PBX that has
them (see docs/carecall.md).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from haneul.carecall.agent import CallRecord
from haneul.carecall.channels import g711
from haneul.carecall.channels.audio import AudioCall, serve
from haneul.carecall.channels.rtp import RtpSession
from haneul.errors import InvalidInput

__all__ = [
    "CallInfo",
    "SessionDescription",
    "SipAgent",
    "SipCall",
    "SipConfig",
    "SipError",
    "SipMessage",
    "parse_uri",
    "sdp_answer",
    "sdp_offer",
]

log = logging.getLogger(__name__)

_COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length",
            "c": "content-type", "k": "supported"}
_ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS"
_NO_ANSWER = {408, 480, 486, 487, 600, 603}


class SipError(InvalidInput):
    """A SIP message or SDP body that cannot be understood."""


# ------------------------------------------------------------------------------------------------
# messages


@dataclass
class SipMessage:
    """A SIP request (``method``, ``uri``) or response (``status``, ``reason``) with its headers and body."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name`` (compact forms understood), or ``default``."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header(self, name: str) -> str:
        """A header the message must have; :class:`SipError` naming it when missing."""
        value = self.get(name)
        if value is None:
            raise SipError(f"SIP message without a {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self.header("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.header("CSeq").partition(" ")
        try:
            return int(number), method.strip().upper()
        except ValueError:
            raise SipError(f"bad CSeq {self.header('CSeq')!r}") from None

    def to_bytes(self) -> bytes:
        start = f"{self.method} {self.uri} SIP/2.0" if self.is_request else f"SIP/2.0 {self.status} {self.reason}"
        lines = [start] + [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        """A message from one UDP datagram; :class:`SipError` when it is not SIP."""
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = data.partition(b"\n\n")  # bare line feeds, which RFC 3261 tolerates
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            raise SipError("SIP headers are not UTF-8") from None
        lines = text.replace("\r\n", "\n").split("\n")
        start = lines[0].strip()
        msg = cls()
        parts = start.split(" ", 2)
        if start.startswith("SIP/2.0 ") and len(parts) >= 2 and parts[1].isdigit():
            msg.status, msg.reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        elif len(parts) == 3 and parts[2] == "SIP/2.0" and re.fullmatch(r"[A-Z]+", parts[0]):
            msg.method, msg.uri = parts[0], parts[1]
        else:
            raise SipError(f"not a SIP start line: {start[:60]!r}")
        for line in lines[1:]:
            if not line.strip():
                continue
            if line[0] in " \t" and msg.headers:  # folded continuation line
                key, value = msg.headers[-1]
                msg.headers[-1] = (key, value + " " + line.strip())
                continue
            key, colon, value = line.partition(":")
            if not colon:
                raise SipError(f"bad SIP header line {line[:60]!r}")
            key = key.strip()
            msg.headers.append((_COMPACT.get(key.lower(), key), value.strip()))
        length = msg.get("content-length")
        if length is not None:
            try:
                body = body[: int(length)]
            except ValueError:
                raise SipError(f"bad Content-Length {length!r}") from None
        msg.body = body
        for name in ("Call-ID", "CSeq", "From", "To"):
            msg.header(name)
        if msg.is_request:
            msg.header("Via")
        return msg


def _tag(value: str) -> str | None:
    match = re.search(r";\s*tag=([^;>\s]+)", value)
    return match.group(1) if match else None


def _uri_in(value: str) -> str:
    """The URI of a From / To / Contact value (``"Name" <sip:a@b>;tag=x`` -> ``sip:a@b``)."""
    match = re.search(r"<([^>]+)>", value)
    return match.group(1) if match else value.split(";")[0].strip()


def parse_uri(uri: str) -> tuple[str, str, int]:
    """``sip:user@host:port`` -> ``(user, host, port)``; the port defaults to 5060."""
    match = re.fullmatch(r"sips?:(?:([^@;]+)@)?([^:;>]+)(?::(\d+))?(?:;.*)?", uri.strip())
    if not match:
        raise SipError(f"bad SIP URI {uri!r}; write it as sip:user@host:port")
    return match.group(1) or "", match.group(2), int(match.group(3) or 5060)


# ------------------------------------------------------------------------------------------------
# SDP


@dataclass(frozen=True)
class SessionDescription:
    """The audio part of an SDP body: where to send RTP and which payload types, in preference order."""

    address: str
    port: int
    payload_types: tuple[int, ...]
    rtpmap: dict[int, str] = field(default_factory=dict)  # payload type -> encoding name (upper case)

    @classmethod
    def parse(cls, body: bytes | str) -> SessionDescription:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        session_addr = media_addr = None
        port: int | None = None
        pts: tuple[int, ...] = ()
        rtpmap: dict[int, str] = {}
        in_audio = False
        for raw in text.splitlines():
            line = raw.strip()
            kind, eq, value = line.partition("=")
            if not eq:
                continue
            if kind == "m":
                fields = value.split()
                in_audio = len(fields) >= 4 and fields[0] == "audio" and port is None
                if in_audio:
                    try:
                        port = int(fields[1])
                        pts = tuple(int(f) for f in fields[3:])
                    except ValueError:
                        raise SipError(f"bad SDP media line {line!r}") from None
            elif kind == "c":
                fields = value.split()
                if len(fields) >= 3:
                    if in_audio:
                        media_addr = fields[2].split("/")[0]
                    elif port is None:
                        session_addr = fields[2].split("/")[0]
            elif kind == "a" and in_audio and value.startswith("rtpmap:"):
                match = re.match(r"rtpmap:(\d+)\s+([^/\s]+)", value)
                if match:
                    rtpmap[int(match.group(1))] = match.group(2).upper()
        address = media_addr or session_addr
        if port is None or address is None:
            raise SipError("SDP has no audio stream with an address (m=audio and c= lines)")
        return cls(address, port, pts, rtpmap)

    def codecs(self) -> list[str]:
        """The G.711 codecs offered, in the peer's order (static payload types need no rtpmap)."""
        names = {pt: name for name, pt in g711.CODECS.items()}
        out = []
        for pt in self.payload_types:
            name = self.rtpmap.get(pt, names.get(pt, ""))
            if name in g711.CODECS and name not in out:
                out.append(name)
        return out


def _sdp(address: str, port: int, codecs: list[str], session_id: int) -> str:
    pts = [g711.CODECS[c] for c in codecs]
    lines = [
        "v=0",
        f"o=carecall {session_id} {session_id} IN IP4 {address}",
        "s=carecall",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}",
        *[f"a=rtpmap:{g711.CODECS[c]} {c}/8000" for c in codecs],
        "a=ptime:20",
        "a=sendrecv",
    ]
    return "\r\n".join(lines) + "\r\n"


def sdp_offer(address: str, port: int, codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> str:
    """An SDP offer of ``codecs`` for RTP at ``address:port``."""
    return _sdp(address, port, list(codecs), secrets.randbits(31))


def sdp_answer(offer: SessionDescription, address: str, port: int,
               codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> tuple[str, str]:
    """``(answer body, chosen codec)``: the first codec of the offer that we support (RFC 3264 order)."""
    common = [c for c in offer.codecs() if c in codecs]
    if not common:
        raise SipError(f"the offer has no codec we speak (offered payload types {list(offer.payload_types)}; "
                       f"we speak {', '.join(codecs)})")
    return _sdp(address, port, common[:1], secrets.randbits(31)), common[0]


# ------------------------------------------------------------------------------------------------
# calls


@dataclass(frozen=True)
class SipConfig:
    """Where the agent listens and how long it waits before it gives a call up."""

    host: str = "127.0.0.1"
    port: int = 5060  # 0: any free port (tests)
    user: str = "carecall"
    #: the address written into SDP and Contact; the public address when behind NAT (default: host)
    public_host: str | None = None
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    ring_s: float = 0.0  # how long an incoming call rings before the agent picks up
    #: UDP ports for RTP, first to last inclusive (to forward through NAT); None: any free port
    rtp_ports: tuple[int, int] | None = None
    t1_s: float = 0.5  # RFC 3261 round-trip estimate; retransmissions start here and double
    t2_s: float = 4.0
    ack_timeout_s: float = 32.0  # 64 * T1, as RFC 3261 waits for an ACK
    invite_timeout_s: float = 60.0  # ringing this long without an answer is no answer
    rtp_timeout_s: float = 15.0  # no RTP this long in an answered call: the peer is gone
    bye_timeout_s: float = 4.0
    jitter_frames: int = 3
    max_call_s: float = 900.0
    keep_finished: int = 1000  # ended calls kept in SipAgent.finished (older ones are dropped)

    def __post_init__(self) -> None:
        for name in ("t1_s", "ack_timeout_s", "invite_timeout_s", "rtp_timeout_s", "bye_timeout_s"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"{name}={getattr(self, name)} must be positive")
        if self.rtp_ports is not None and not 0 < self.rtp_ports[0] <= self.rtp_ports[1] < 65536:
            raise InvalidInput(f"rtp_ports={self.rtp_ports} must be (first, last) with 0 < first <= last < 65536")
        unknown = [c for c in self.codecs if c not in g711.CODECS]
        if unknown or not self.codecs:
            raise InvalidInput(f"codecs {list(self.codecs)}: use PCMU and/or PCMA")

    @property
    def address(self) -> str:
        return self.public_host or self.host


@dataclass(frozen=True)
class CallInfo:
    """Who is calling whom, for the function that builds the call's :class:`AudioCall`."""

    call_id: str
    direction: str  # "in" (the agent answered) or "out" (the agent dialled)
    local_uri: str
    remote_uri: str
    remote: tuple[str, int]


class _RtpEndpoint:
    """The audio channel's far end over RTP; hung up by a BYE or by RTP silence longer than the timeout."""

    def __init__(self, rtp: RtpSession, timeout_s: float) -> None:
        self.rtp, self.timeout_s = rtp, timeout_s
        self.started = time.monotonic()
        self.bye = False

    @property
    def rtp_lost(self) -> bool:
        last = self.rtp.last_received or self.started
        return time.monotonic() - last > self.timeout_s

    @property
    def hung_up(self) -> bool:
        return self.bye or self.rtp_lost

    def receive(self) -> np.ndarray | None:
        return self.rtp.receive()

    def send(self, frame: np.ndarray) -> None:
        self.rtp.send(frame)


class SipCall:
    """One dialog. ``outcome`` once ``done``: completed (the agent hung up after its last line), hung_up
    (the peer's BYE, or its RTP stopped), failed (no ACK, bad SDP, an error), cancelled, no_answer or
    rejected. ``events`` lists the dialog as ``"> INVITE"`` (sent) / ``"< 200 INVITE"`` (received)."""

    def __init__(self, ua: SipAgent, info: CallInfo, audio: AudioCall | None) -> None:
        self.ua, self.info, self.audio = ua, info, audio
        self.call_id = info.call_id
        self.local_tag = secrets.token_hex(4)
        self.remote_tag: str | None = None
        self.local_cseq = 1
        self.remote_target = info.remote_uri
        self.events: list[str] = []
        self.outcome: str | None = None
        self.reason = ""
        self.codec: str | None = None
        self.local_sdp = ""  # what we offered or answered; a re-INVITE gets it again
        self.rtp: RtpSession | None = None
        self.endpoint: _RtpEndpoint | None = None
        self.invite: SipMessage | None = None  # the INVITE this call answers or sent
        self.last_response: SipMessage | None = None  # re-sent when the INVITE is retransmitted
        self.acked = asyncio.Event()
        self.answered = asyncio.Event()
        self.final = asyncio.Event()  # a final response to our INVITE, or our BYE's 200
        self.final_status: int | None = None
        self.bye_ok = asyncio.Event()
        self.done = asyncio.Event()
        self.media_task: asyncio.Task[None] | None = None

    @property
    def record(self) -> CallRecord | None:
        return self.audio.agent.record if self.audio is not None else None

    def end(self, outcome: str, reason: str = "") -> None:
        """Finish the call once (the first outcome wins), release its media and keep the agent's record final."""
        if self.outcome is not None:
            return
        self.outcome, self.reason = outcome, reason
        if self.audio is not None and not self.audio.agent.done:
            agent = self.audio.agent
            if agent.record.started_at is None:
                agent.no_answer()
            else:
                agent.hang_up()
        if self.rtp is not None:
            self.rtp.close()
        self.done.set()
        self.ua._finished(self)


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, ua: SipAgent) -> None:
        self.ua = ua

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.ua._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP socket error: %s", exc)


class SipAgent:
    """A SIP user agent that runs an :class:`AudioCall` per call.

    ``answer(info)`` builds the :class:`AudioCall` (agent, recogniser, voice) for an incoming call, or
    returns None to decline it with ``486 Busy Here``; without it incoming calls are declined.
    ``on_finish(call)`` is told of every call that ends (e.g. to store its record).
    Use it as ``async with SipAgent(...) as ua:``; ``ua.port`` is the bound port.
    """

    def __init__(self, answer: Callable[[CallInfo], AudioCall | None] | None = None,
                 config: SipConfig | None = None, *,
                 on_finish: Callable[[SipCall], None] | None = None) -> None:
        self.answer = answer
        self.config = config or SipConfig()
        self.calls: dict[str, SipCall] = {}
        self.finished: collections.deque[SipCall] = collections.deque(maxlen=self.config.keep_finished)
        self.ended = 0  # calls ended since start
        self.garbage = 0  # datagrams that were not SIP
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_finish = on_finish

    async def start(self) -> SipAgent:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self), local_addr=(self.config.host, self.config.port))
        self._transport = transport
        return self

    async def close(self) -> None:
        """Hang up every call still running and close the socket."""
        for call in list(self.calls.values()):
            if call.endpoint is not None:
                call.endpoint.bye = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for call in list(self.calls.values()):
            call.end("failed", "the user agent closed")
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> SipAgent:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._transport is None:
            raise InvalidInput("the SIP agent is not started; use `async with SipAgent(...)` or await start()")
        return int(self._transport.get_extra_info("sockname")[1])

    @property
    def uri(self) -> str:
        return f"sip:{self.config.user}@{self.config.address}:{self.port}"

    def _finished(self, call: SipCall) -> None:
        self.calls.pop(call.call_id, None)
        self.finished.append(call)
        self.ended += 1
        if self._on_finish is not None:
            try:
                self._on_finish(call)
            except Exception:  # the hook is the caller's code; a bug there must not stop the agent
                log.exception("on_finish failed for call %s", call.call_id)

    async def wait_finished(self, n: int = 1, timeout: float = 60.0) -> list[SipCall]:
        """Wait until ``n`` calls have ended since start; returns the ended calls kept (in order of ending)."""
        async def poll() -> None:
            while self.ended < n:
                await asyncio.sleep(0.02)
        await asyncio.wait_for(poll(), timeout)
        return list(self.finished)

    # -- the wire --------------------------------------------------------------------------------------

    def _send(self, msg: SipMessage, addr: tuple[str, int], call: SipCall | None = None) -> None:
        if self._transport is None:
            return
        self._transport.sendto(msg.to_bytes(), addr)
        if call is not None:
            label = msg.method if msg.is_request else f"{msg.status} {(msg.get('CSeq') or '').split(' ')[-1]}"
            call.events.append(f"> {label}")

    def _spawn(self, coro: Awaitable[None], call: SipCall | None = None) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one call's failure must not reach the others
                log.exception("call %s failed", call.call_id if call else "?")
                if call is not None:
                    self._hang_up_quietly(call)
                    call.end("failed", f"{type(exc).__name__}: {exc}")

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return  # a keep-alive (CRLF) from a NAT-friendly peer
        try:
            msg = SipMessage.parse(data)
        except SipError as exc:
            self.garbage += 1
            log.debug("dropped a datagram from %s: %s", addr, exc)
            return
        try:
            if msg.is_request:
                self._on_request(msg, addr)
            else:
                self._on_response(msg, addr)
        except SipError as exc:
            self.garbage += 1
            log.debug("dropped a message from %s: %s", addr, exc)
            if msg.is_request and msg.method != "ACK":
                self._send(self._response(msg, 400, "Bad Request"), addr)

    def _response(self, req: SipMessage, status: int, reason: str, call: SipCall | None = None,
                  body: str = "") -> SipMessage:
        headers = [("Via", v) for v in req.get_all("via")]
        to = req.header("To")
        if call is not None and _tag(to) is None and status > 100:
            to = f"{to};tag={call.local_tag}"
        headers += [("From", req.header("From")), ("To", to), ("Call-ID", req.call_id),
                    ("CSeq", req.header("CSeq"))]
        if call is not None and 100 < status < 300:
            headers.append(("Contact", f"<sip:{self.config.user}@{self.config.address}:{self.port}>"))
        if req.method in ("INVITE", "OPTIONS"):
            headers.append(("Allow", _ALLOW))
        headers.append(("User-Agent", "haneul-carecall"))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return SipMessage(status=status, reason=reason, headers=headers, body=body.encode())

    # -- requests ----------------------------------------------------------------------------------------

    def _on_request(self, req: SipMessage, addr: tuple[str, int]) -> None:
        call = self.calls.get(req.call_id)
        if call is not None:
            call.events.append(f"< {req.method}")
        method = req.method
        if method == "INVITE":
            if call is None:
                self._incoming(req, addr)
            elif (call.info.direction == "in" and call.invite is not None and req.cseq == call.invite.cseq
                  and call.last_response is not None):
                self._send(call.last_response, addr)  # a retransmission: say the same again
            elif call.local_sdp:  # a re-INVITE (a session timer, a hold): the media stays as it is
                self._send(self._response(req, 200, "OK", call, call.local_sdp), addr, call)
            else:
                self._send(self._response(req, 491, "Request Pending"), addr, call)
        elif method == "ACK":
            if call is not None:
                call.acked.set()
        elif method == "BYE":
            known = call is not None or any(c.call_id == req.call_id for c in self.finished)
            # a BYE for a call already over is a retransmission (our 200 was lost): answer it again
            self._send(self._response(req, 200, "OK", call) if known else
                       self._response(req, 481, "Call/Transaction Does Not Exist"), addr, call)
            if call is not None:
                if call.endpoint is not None:
                    call.endpoint.bye = True  # the media loop hangs the agent up and ends the call
                else:
                    call.end("hung_up", "BYE before media")
        elif method == "CANCEL":
            self._send(self._response(req, 200, "OK", call), addr, call)
            if call is not None and call.invite is not None and not call.answered.is_set():
                final = self._response(call.invite, 487, "Request Terminated", call)
                call.last_response = final
                self._send(final, addr, call)
                call.end("cancelled", "CANCEL before the answer")
        elif method == "OPTIONS":
            self._send(self._response(req, 200, "OK"), addr)
        else:
            self._send(self._response(req, 501, "Not Implemented"), addr, call)

    def _incoming(self, req: SipMessage, addr: tuple[str, int]) -> None:
        info = CallInfo(req.call_id, "in", _uri_in(req.header("To")), _uri_in(req.header("From")), addr)
        self._send(self._response(req, 100, "Trying"), addr)
        try:
            offer = SessionDescription.parse(req.body)
            codec = next(c for c in offer.codecs() if c in self.config.codecs)
        except (SipError, StopIteration):
            self._send(self._response(req, 488, "Not Acceptable Here"), addr)
            return
        try:
            audio = self.answer(info) if self.answer is not None else None
        except Exception:  # the caller's factory failed: decline this call, keep serving the others
            log.exception("answer() failed for call %s", req.call_id)
            self._send(self._response(req, 500, "Server Internal Error"), addr)
            return
        call = SipCall(self, info, audio)
        call.invite, call.remote_tag = req, _tag(req.header("From"))
        call.remote_target = _uri_in(req.get("Contact") or req.header("From"))
        call.events += ["< INVITE", "> 100 INVITE"]
        if audio is None:
            busy = self._response(req, 486, "Busy Here", call)
            call.last_response = busy
            self._send(busy, addr, call)
            call.outcome, call.reason = "rejected", "no agent for this call"
            call.done.set()
            self._finished(call)
            return
        self.calls[call.call_id] = call
        self._spawn(self._answer(call, req, offer, codec, addr), call)

    async def _answer(self, call: SipCall, req: SipMessage, offer: SessionDescription, codec: str,
                      addr: tuple[str, int]) -> None:
        ringing = self._response(req, 180, "Ringing", call)
        call.last_response = ringing
        self._send(ringing, addr, call)
        if self.config.ring_s > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(call.done.wait(), self.config.ring_s)  # a CANCEL ends the ringing
        if call.outcome is not None:
            return
        await self._open_media(call, codec, offer)
        assert call.rtp is not None
        body, _ = sdp_answer(offer, self.config.address, call.rtp.port, (codec,))
        call.local_sdp = body
        ok = self._response(req, 200, "OK", call, body)
        call.last_response = ok
        call.answered.set()
        # re-send the 200 until the ACK (RFC 3261 13.3.1.4): UDP may have lost it
        interval, waited = self.config.t1_s, 0.0
        while not call.acked.is_set() and call.outcome is None:
            self._send(ok, addr, call)
            wait = min(interval, self.config.ack_timeout_s - waited)
            if wait <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(call.acked.wait(), wait)
            waited += wait
            interval = min(interval * 2, self.config.t2_s)
        if call.outcome is not None:
            return  # a BYE or CANCEL ended it while we waited
        if not call.acked.is_set():
            self._send_bye(call)
            call.end("failed", f"no ACK for the 200 OK in {self.config.ack_timeout_s:g} s")
            return
        await self._media(call)

    # -- responses ---------------------------------------------------------------------------------------

    def _on_response(self, resp: SipMessage, addr: tuple[str, int]) -> None:
        call = self.calls.get(resp.call_id)
        if call is None:
            return  # a late retransmission for a call that is over
        _, method = resp.cseq
        assert resp.status is not None
        call.events.append(f"< {resp.status} {method}")
        if method == "INVITE":
            if resp.status < 200:
                # provisional: the INVITE timer stops re-sending; the call waits for the final answer
                call.final_status = call.final_status or resp.status
                return
            if resp.status < 300:
                if call.final.is_set():
                    self._send(self._ack(call), addr)  # our ACK was lost; the 200 came again
                    return
                call.remote_tag = _tag(resp.header("To"))
                contact = resp.get("Contact")
                if contact:
                    call.remote_target = _uri_in(contact)
                call.final_status = resp.status
                call.last_response = resp
                call.final.set()
                return
            call.remote_tag = _tag(resp.header("To"))
            call.final_status = resp.status
            # a failure is acknowledged in the INVITE's own transaction (same branch)
            assert call.invite is not None
            ack = SipMessage(method="ACK", uri=call.invite.uri, headers=[
                ("Via", call.invite.header("Via")), ("From", call.invite.header("From")), ("To", resp.header("To")),
                ("Call-ID", call.call_id), ("CSeq", f"{call.invite.cseq[0]} ACK"), ("Max-Forwards", "70")])
            self._send(ack, addr, call)
            call.reason = f"{resp.status} {resp.reason}"
            call.final.set()
        elif method == "BYE" and resp.status >= 200:
            call.bye_ok.set()

    # -- dialling ------------------------------------------------------------------------------------------

    def _request(self, call: SipCall, method: str, cseq: int, *, branch: str | None = None,
                 body: str = "") -> SipMessage:
        c = self.config
        via = f"SIP/2.0/UDP {c.address}:{self.port};branch=z9hG4bK{branch or secrets.token_hex(6)};rport"
        local = f"<{call.info.local_uri}>;tag={call.local_tag}"
        remote = f"<{call.info.remote_uri}>" + (f";tag={call.remote_tag}" if call.remote_tag else "")
        incoming = call.info.direction == "in"
        headers = [("Via", via), ("Max-Forwards", "70"),
                   ("From", remote if incoming else local), ("To", local if incoming else remote)]
        if incoming:  # our BYE in a dialog the peer opened: its From is our To
            assert call.invite is not None
            headers[2] = ("From", f"{call.invite.header('To').split(';tag=')[0]};tag={call.local_tag}")
            headers[3] = ("To", call.invite.header("From"))
        headers += [("Call-ID", call.call_id), ("CSeq", f"{cseq} {method}"),
                    ("Contact", f"<sip:{c.user}@{c.address}:{self.port}>"), ("User-Agent", "haneul-carecall")]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        uri = call.remote_target if method != "INVITE" else call.info.remote_uri
        return SipMessage(method=method, uri=uri, headers=headers, body=body.encode())

    def _ack(self, call: SipCall) -> SipMessage:
        assert call.invite is not None
        return self._request(call, "ACK", call.invite.cseq[0])

    def _send_bye(self, call: SipCall) -> SipMessage:
        call.local_cseq += 1
        bye = self._request(call, "BYE", call.local_cseq)
        self._send(bye, call.info.remote, call)
        return bye

    def _hang_up_quietly(self, call: SipCall) -> None:
        with contextlib.suppress(Exception):
            if call.outcome is None and (call.acked.is_set() or call.info.direction == "out"):
                self._send_bye(call)

    async def call(self, uri: str, audio: AudioCall, *, call_id: str | None = None) -> SipCall:
        """Dial ``uri`` (``sip:user@host:port``) and run ``audio`` once answered; returns when the call ends."""
        _, host, port = parse_uri(uri)
        info = CallInfo(call_id or f"{secrets.token_hex(8)}@{self.config.address}", "out", self.uri, uri,
                        (host, port))
        call = SipCall(self, info, audio)
        self.calls[call.call_id] = call
        self._spawn(self._dial(call), call)
        await call.done.wait()
        return call

    async def _dial(self, call: SipCall) -> None:
        c = self.config
        call.rtp = RtpSession(c.codecs[0], frame_samples=call.audio.config.frame_samples if call.audio else 160,
                              jitter_depth=c.jitter_frames)
        rtp_port = await self._open_rtp(call.rtp)
        call.local_sdp = sdp_offer(c.address, rtp_port, c.codecs)
        invite = self._request(call, "INVITE", call.local_cseq, body=call.local_sdp)
        call.invite = invite
        # Timer A: re-send the INVITE until any response, doubling up to T2 (RFC 3261 17.1.1.2)
        interval, started = c.t1_s, time.monotonic()
        while not call.final.is_set():
            if call.final_status is None:
                self._send(invite, call.info.remote, call)
            elapsed = time.monotonic() - started
            if elapsed >= c.invite_timeout_s:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(call.final.wait(), min(interval, c.invite_timeout_s - elapsed))
            interval = min(interval * 2, c.t2_s)
        status = call.final_status
        if not call.final.is_set():
            if status is not None:  # it rang: withdraw the INVITE
                cancel = SipMessage(method="CANCEL", uri=invite.uri, headers=[
                    ("Via", invite.header("Via")), ("Max-Forwards", "70"), ("From", invite.header("From")),
                    ("To", invite.header("To")), ("Call-ID", call.call_id), ("CSeq", f"{invite.cseq[0]} CANCEL")])
                self._send(cancel, call.info.remote, call)
                call.end("no_answer", f"no answer in {c.invite_timeout_s:g} s")
            else:
                call.end("failed", f"no response to the INVITE in {c.invite_timeout_s:g} s")
            return
        assert status is not None
        if status >= 300:
            call.end("no_answer" if status in _NO_ANSWER else "failed", call.reason or str(status))
            return
        assert call.last_response is not None
        self._send(self._ack(call), call.info.remote, call)
        call.acked.set()
        call.answered.set()
        try:
            answer = SessionDescription.parse(call.last_response.body)
            codec = next(x for x in answer.codecs() if x in c.codecs)
        except (SipError, StopIteration):
            self._send_bye(call)
            call.end("failed", "the answer has no SDP with a codec we offered")
            return
        call.rtp.use_codec(codec)  # the answer picks one of the codecs we offered
        call.codec = codec
        call.rtp.remote = (answer.address, answer.port)
        await self._media(call)

    # -- media ----------------------------------------------------------------------------------------------

    async def _open_rtp(self, rtp: RtpSession) -> int:
        """Bind ``rtp`` to a free port of ``rtp_ports`` (any free port without a range)."""
        if self.config.rtp_ports is None:
            return await rtp.open(self.config.host)
        first, last = self.config.rtp_ports
        for port in range(first, last + 1):
            try:
                return await rtp.open(self.config.host, port)
            except OSError:
                continue
        raise InvalidInput(f"no free UDP port in rtp_ports {first}-{last}; widen the range")

    async def _open_media(self, call: SipCall, codec: str, offer: SessionDescription) -> None:
        frame = call.audio.config.frame_samples if call.audio is not None else 160
        call.rtp = RtpSession(codec, frame_samples=frame, jitter_depth=self.config.jitter_frames)
        await self._open_rtp(call.rtp)
        call.rtp.remote = (offer.address, offer.port)
        call.codec = codec

    async def _media(self, call: SipCall) -> None:
        """Run the audio call until it ends, then hang up or record how the peer did."""
        assert call.rtp is not None and call.audio is not None
        endpoint = _RtpEndpoint(call.rtp, self.config.rtp_timeout_s)
        call.endpoint = endpoint
        await serve(call.audio, endpoint, max_s=self.config.max_call_s)
        if endpoint.bye:
            call.end("hung_up", "the peer sent BYE")
            return
        bye = self._send_bye(call)
        lost = endpoint.rtp_lost
        # re-send the BYE until its 200 or the timeout; a vanished peer never answers
        interval, waited = self.config.t1_s, 0.0
        while not call.bye_ok.is_set() and waited < self.config.bye_timeout_s:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(call.bye_ok.wait(), interval)
            waited += interval
            interval = min(interval * 2, self.config.t2_s)
            if not call.bye_ok.is_set() and waited < self.config.bye_timeout_s:
                self._send(bye, call.info.remote, call)
        if lost:
            call.end("hung_up", f"no RTP for {self.config.rtp_timeout_s:g} s")
        elif call.audio.finished and call.audio.agent.done:
            call.end("completed", "" if call.bye_ok.is_set() else "BYE not answered")
        else:
            call.end("failed", "the call ran past max_call_s")
