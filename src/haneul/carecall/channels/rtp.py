"""RTP (RFC 3550) for the telephone channel: packets, a small jitter buffer and one media session per call.

A SIP call (:mod:`.sip`) carries its audio as RTP over UDP: one G.711 packet every 20 ms with a
sequence number, a sample-clock timestamp and a random SSRC. :class:`RtpSession` owns one call's UDP
socket: :meth:`RtpSession.send` stamps and sends a frame (the 20 ms pacing comes from the audio
channel's driver, :func:`~haneul.carecall.channels.audio.serve`), received packets are parsed, checked
(version, payload type, one source) and put in a :class:`JitterBuffer` that re-orders them and hides
losses as silence, and :meth:`RtpSession.receive` hands the audio channel one 20 ms frame at a time.
Anything that is not a valid packet of the call's stream is counted and dropped, never raised: a
stray or hostile datagram must not end a call.
"""

from __future__ import annotations

import asyncio
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from haneul.carecall.channels import g711
from haneul.errors import InvalidInput

__all__ = ["JitterBuffer", "RtpError", "RtpPacket", "RtpSession", "RtpStats"]

_HEADER = struct.Struct("!BBHII")
RTP_VERSION = 2


class RtpError(InvalidInput):
    """A datagram that is not an RTP packet."""


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet (no CSRC list or header extension on the way out)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def to_bytes(self) -> bytes:
        head = _HEADER.pack(RTP_VERSION << 6, (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                            self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF)
        return head + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """A packet from a datagram; :class:`RtpError` when it is not one (too short, wrong version, bad lengths)."""
        if len(data) < _HEADER.size:
            raise RtpError(f"{len(data)} bytes is shorter than an RTP header (12)")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {b0 >> 6}, expected 2")
        start = _HEADER.size + 4 * (b0 & 0x0F)  # CSRC list
        if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
            if len(data) < start + 4:
                raise RtpError("header extension cut short")
            start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
        end = len(data)
        if b0 & 0x20:  # padding: the last byte counts the padding bytes
            end -= data[-1]
        if start > end:
            raise RtpError("header longer than the packet")
        return cls(b1 & 0x7F, seq, ts, ssrc, bytes(data[start:end]), bool(b1 & 0x80))


class JitterBuffer:
    """Re-orders packets by sequence number and releases one per tick after ``depth`` are queued.

    ``pop()`` returns the next payload, or None when it is missing (lost, late, or the sender is
    quiet). A packet older than the one last released is dropped; so is the oldest when more than
    ``capacity`` wait. After a gap longer than ``capacity`` the buffer re-synchronises on the new stream.
    """

    def __init__(self, depth: int = 3, capacity: int = 50) -> None:
        if depth < 1 or capacity < depth:
            raise InvalidInput(f"jitter buffer needs 1 <= depth <= capacity; got depth={depth}, capacity={capacity}")
        self.depth, self.capacity = depth, capacity
        self._packets: dict[int, bytes] = {}
        self._next: int | None = None  # extended sequence number to release next
        self._last: int | None = None  # extended sequence number of the newest packet seen
        self.lost = self.late = self.duplicates = 0

    def _extend(self, seq: int) -> int:
        """The 16-bit sequence number on a counter that does not wrap."""
        if self._last is None:
            return seq
        delta = (seq - self._last) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        return self._last + delta

    def push(self, sequence: int, payload: bytes) -> None:
        ext = self._extend(sequence)
        if self._next is not None and abs(ext - self._next) > self.capacity and not self._packets:
            self._next = None  # a new talk spurt far from the old one: start over
        if self._next is not None and ext < self._next:
            self.late += 1
            return
        if ext in self._packets:
            self.duplicates += 1
            return
        self._packets[ext] = payload
        self._last = ext if self._last is None else max(self._last, ext)
        while len(self._packets) > self.capacity:
            oldest = min(self._packets)
            del self._packets[oldest]
            if self._next is not None:
                self._next = max(self._next, oldest + 1)

    def pop(self) -> bytes | None:
        if self._next is None:
            if len(self._packets) < self.depth:
                return None
            self._next = min(self._packets)
        if not self._packets:
            return None  # the sender is quiet; keep the place for when it resumes
        payload = self._packets.pop(self._next, None)
        if payload is None:
            self.lost += 1
        self._next += 1
        return payload

    def __len__(self) -> int:
        return len(self._packets)


@dataclass
class RtpStats:
    sent: int = 0
    received: int = 0
    garbage: int = 0  # datagrams that are not RTP
    foreign: int = 0  # valid RTP of another payload type or source
    lost: int = 0
    late: int = 0


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.session._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # an ICMP port-unreachable from a peer that went away: the RTP timeout ends the call
        self.session.errors += 1


class RtpSession:
    """One call's media: a UDP socket, an outgoing stream (sequence, timestamp, SSRC) and a jitter buffer.

    ``codec`` is ``PCMU`` or ``PCMA``; ``frame_samples`` the samples per packet (160 = 20 ms at 8 kHz).
    Open it with :meth:`open`, point it at the peer with :attr:`remote`, then call :meth:`send` and
    :meth:`receive` once per frame.
    """

    def __init__(self, codec: str = "PCMU", *, frame_samples: int = 160, jitter_depth: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.use_codec(codec)
        self.frame_samples = frame_samples
        self.ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)  # random starts, as RFC 3550 asks, so streams are not guessable
        self._ts = secrets.randbits(32)
        self._first = True
        self.remote: tuple[str, int] | None = None
        self.buffer = JitterBuffer(jitter_depth)
        self.stats = RtpStats()
        self.errors = 0
        self._clock = clock
        self.last_received: float | None = None
        self._peer_ssrc: int | None = None
        self._pending = np.zeros(0, np.int16)
        self._transport: asyncio.DatagramTransport | None = None

    def use_codec(self, codec: str) -> None:
        """Switch the codec both ways, e.g. to the one the peer's SDP answer chose."""
        if codec not in g711.CODECS:
            raise InvalidInput(f"codec {codec!r} is not supported; use one of {', '.join(g711.CODECS)}")
        self.codec, self.payload_type = codec, g711.CODECS[codec]

    async def open(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind the socket; returns the local port (an even one is not required by anyone we talk to)."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(host, port))
        self._transport = transport
        return self.port

    @property
    def port(self) -> int:
        if self._transport is None:
            raise InvalidInput("the RTP session is not open; await open() first")
        return int(self._transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # -- sending ---------------------------------------------------------------------------------

    def send(self, frame: np.ndarray) -> None:
        """Send one frame of int16 samples to :attr:`remote` (dropped while there is none)."""
        if self._transport is None or self.remote is None:
            return
        packet = RtpPacket(self.payload_type, self._seq, self._ts, self.ssrc, g711.encode(frame, self.codec),
                           marker=self._first)
        self._transport.sendto(packet.to_bytes(), self.remote)
        self._first = False
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + len(frame)) & 0xFFFFFFFF
        self.stats.sent += 1

    # -- receiving --------------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self.stats.garbage += 1
            return
        if packet.payload_type != self.payload_type:
            self.stats.foreign += 1  # comfort noise, DTMF events, or someone else's stream
            return
        now = self._clock()
        if self._peer_ssrc is None or (packet.ssrc != self._peer_ssrc and self.last_received is not None
                                       and now - self.last_received > 1.0):
            self._peer_ssrc = packet.ssrc  # latch on the first source; follow a new one only once the old is gone
        if packet.ssrc != self._peer_ssrc:
            self.stats.foreign += 1
            return
        self.stats.received += 1
        self.last_received = now
        self.buffer.push(packet.sequence, packet.payload)

    def receive(self) -> np.ndarray | None:
        """The next frame of the peer's audio, or None when nothing is there (lost or quiet)."""
        n = self.frame_samples
        while len(self._pending) < n:
            payload = self.buffer.pop()
            if payload is None:
                break
            self._pending = np.concatenate([self._pending, g711.decode(payload, self.codec)])
        self.stats.lost, self.stats.late = self.buffer.lost, self.buffer.late
        if len(self._pending) < n:
            if not len(self._pending):
                return None
            frame = np.concatenate([self._pending, np.zeros(n - len(self._pending), np.int16)])
            self._pending = np.zeros(0, np.int16)
            return frame
        frame, self._pending = self._pending[:n], self._pending[n:]
        return frame
