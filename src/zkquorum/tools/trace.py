"""An election as a sequence diagram, in SVG: ``render_svg(events) -> str``.

One lifeline per peer, time flowing down to scale, each notification an arrow from the
sender's lifeline at the moment it was sent to the receiver's at the moment it arrived,
coloured by the leader it proposes and labelled with its vote.  The lifeline itself shows
the peer's state: LOOKING, decided and syncing on the quorum port, established as leader
or learner (with the epoch), hung (SIGSTOP), killed.  Stretches where nothing happens for
longer than ``gap`` seconds (waiting for a hung leader to be noticed, the idle time before
a fault) are cut out and drawn as a labelled break, so the rest can stay to scale.

Pure: events in, SVG text out.  Every element that stands for a message is a
``<g class="msg">`` with ``data-from``/``data-to``/``data-vote`` attributes and a
``<title>`` giving the whole vote and the times; every peer has a ``<g class="peer">``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

from zkquorum.tools.events import Event, Message, leader_name, pair_messages

# Colours for proposed leaders (Okabe-Ito, readable by colour-blind viewers), by sid order.
_PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#8C564B",
    "#000000",
    "#7F7F7F",
    "#BCBD22",
)
_STATE_COLOURS = {
    "starting": "#DDDDDD",
    "LOOKING": "#F0B323",
    "syncing": "#A6CEE3",
    "LEADING": "#1B7837",
    "FOLLOWING": "#5AAE61",
    "OBSERVING": "#9970AB",
    "hung": "#B2182B",
}
_FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"


@dataclasses.dataclass(frozen=True, slots=True)
class _Segment:
    """A stretch of time drawn to scale, starting at pixel ``y``."""

    start: float
    end: float
    y: float


class _TimeAxis:
    """Seconds -> pixels: to scale inside segments, fixed-height breaks between them."""

    BREAK = 44.0

    def __init__(self, times: Sequence[float], *, gap: float, top: float, scale: float) -> None:
        ordered = sorted(times)
        self.scale = scale  # pixels per second
        spans: list[list[float]] = []
        for t in ordered:
            if spans and t - spans[-1][1] <= gap:
                spans[-1][1] = t
            else:
                spans.append([t, t])
        self.segments: list[_Segment] = []
        y = top
        for i, (start, end) in enumerate(spans):
            if i:
                y += self.BREAK
            pad = 12.0 / scale  # a few pixels of air around a segment's events
            s = _Segment(start - (pad if i else 0.0), end + pad, y)
            self.segments.append(s)
            y += (s.end - s.start) * scale
        self.bottom = y

    def y(self, t: float) -> float:
        segs = self.segments
        for i, s in enumerate(segs):
            if t <= s.end or i == len(segs) - 1:
                if t < s.start:  # inside the break before s
                    return s.y - self.BREAK / 2
                return s.y + (min(t, s.end) - s.start) * self.scale
        return self.bottom

    def breaks(self) -> list[tuple[float, float]]:
        """(pixel y of the middle of the break, seconds cut out) for each break."""
        out = []
        for prev, nxt in zip(self.segments, self.segments[1:], strict=False):
            out.append((nxt.y - self.BREAK / 2, nxt.start - prev.end))
        return out


def _nice_step(span_s: float, target: int) -> float:
    raw = span_s / max(1, target)
    if raw <= 0:
        return 0.001
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


def _fmt_offset(s: float) -> str:
    if abs(s) < 1.0:
        return f"+{s * 1000:.0f} ms" if s >= 0 else f"{s * 1000:.0f} ms"
    return f"+{s:.3f} s" if s >= 0 else f"{s:.3f} s"


def _fmt_duration(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1.0 else f"{s:.2f} s"


class _Labels:
    """Greedy placement: a label that would overlap one already placed is left out."""

    def __init__(self) -> None:
        self.boxes: list[tuple[float, float, float, float]] = []

    def free(self, x: float, y: float, w: float, h: float) -> bool:
        for bx, by, bw, bh in self.boxes:
            if x < bx + bw and bx < x + w and y < by + bh and by < y + h:
                return False
        return True

    def take(self, x: float, y: float, w: float, h: float) -> None:
        self.boxes.append((x, y, w, h))


def _text(
    x: float, y: float, text: str, *, size: int = 11, anchor: str = "start", fill: str = "#222"
) -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' "
        f"fill='{fill}' {_FONT} paint-order='stroke' stroke='white' stroke-width='3' "
        f"stroke-linejoin='round'>{escape(text)}</text>"
    )


def _text_width(text: str, size: int) -> float:
    return len(text) * size * 0.58


def render_svg(
    events: Iterable[Event],
    *,
    title: str = "",
    t0: float | None = None,
    roles: Mapping[int, str] | None = None,
    gap: float | None = None,
    quiet_px: float = 140.0,
    lane_width: float = 170.0,
) -> str:
    """The SVG text of a sequence diagram of ``events``.

    ``t0`` is the time the ruler counts from (default: the first event); ``roles`` marks
    observers (``{sid: "observer"}``); ``gap`` is the longest quiet stretch (seconds) still
    drawn to scale (default: whatever would take more than ``quiet_px`` pixels).  The scale
    is chosen so that the notifications of a burst stand apart.
    """
    evs = sorted(events, key=lambda e: e.t)
    roles = dict(roles or {})
    sids = sorted({e.sid for e in evs} | {int(e.get("peer")) for e in evs if "peer" in e.fields})
    messages = pair_messages(evs)
    if not evs:
        return _empty(title)
    origin = evs[0].t if t0 is None else t0
    times = [e.t for e in evs]
    scale = _choose_scale(times)
    cut = gap if gap is not None else max(0.01, quiet_px / scale)
    top = 96.0
    axis = _TimeAxis(times, gap=cut, top=top, scale=scale)
    left = 96.0
    xs = {sid: left + lane_width * (i + 0.5) for i, sid in enumerate(sids)}
    width = left + lane_width * len(sids) + 120
    legend_h = 70.0
    height = axis.bottom + 30 + legend_h

    leaders = sorted({m.vote.leader for m in messages} | set(sids))
    colour = {sid: _PALETTE[i % len(_PALETTE)] for i, sid in enumerate(leaders)}
    labels = _Labels()
    out: list[str] = []
    out.append(
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}'>"
    )
    out.append(
        "<defs>"
        + "".join(
            f"<marker id='arrow-{sid}' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
            f"markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' "
            f"fill='{c}'/></marker>"
            for sid, c in colour.items()
        )
        + "</defs>"
    )
    out.append(f"<rect x='0' y='0' width='{width:.0f}' height='{height:.0f}' fill='white'/>")
    if title:
        out.append(_text(16, 24, title, size=15))
    out.append(
        _text(
            16,
            44,
            f"time flows down, to scale ({scale / 1000:.1f} px per ms) except where cut; "
            f"t = 0 at {_fmt_clock(origin)}",
            size=11,
            fill="#555",
        )
    )
    _ruler(out, axis, origin, left)
    # Lifelines with their state bands.
    for sid in sids:
        out.append(f"<g class='peer' data-sid='{sid}'>")
        x = xs[sid]
        role = roles.get(sid, "")
        name = f"peer {sid}" + (f" ({role})" if role else "")
        out.append(
            f"<rect x='{x - 52:.1f}' y='58' width='104' height='24' rx='4' fill='#F4F4F4' "
            f"stroke='#888'/>"
        )
        out.append(_text(x, 75, name, size=12, anchor="middle"))
        out.append(
            f"<line x1='{x:.1f}' y1='82' x2='{x:.1f}' y2='{axis.bottom + 10:.1f}' "
            f"stroke='#BBB' stroke-width='1' stroke-dasharray='2,3'/>"
        )
        for start, end, state in _bands([e for e in evs if e.sid == sid], evs[-1].t):
            y1, y2 = axis.y(start), axis.y(end)
            out.append(
                f"<rect x='{x - 3:.1f}' y='{y1:.1f}' width='6' height='{max(1.0, y2 - y1):.1f}' "
                f"fill='{_STATE_COLOURS.get(state, '#CCC')}'><title>peer {sid}: {state} "
                f"{_fmt_offset(start - origin)} .. {_fmt_offset(end - origin)}</title></rect>"
            )
        out.append("</g>")
    for y, cut in axis.breaks():
        out.append(
            f"<rect x='{left - 80:.1f}' y='{y - 9:.1f}' width='{width - left + 60:.1f}' "
            f"height='18' fill='#F7F7F7'/>"
        )
        out.append(
            f"<path d='M{left - 80:.1f},{y - 9:.1f} H{width - 20:.1f} M{left - 80:.1f},"
            f"{y + 9:.1f} H{width - 20:.1f}' stroke='#999' stroke-dasharray='6,4'/>"
        )
        out.append(_text(left + 4, y + 4, f"… {_fmt_duration(cut)} without events cut …", size=11))
    # Messages.
    for i, m in enumerate(messages):
        out.append(_message(m, i, xs, axis, origin, colour, labels))
    # Marks on the lifelines, on top.
    for e in evs:
        mark = _mark(e, xs[e.sid], axis.y(e.t), labels)
        if mark:
            out.append(mark)
    _legend(out, colour, axis.bottom + 30, left)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _fmt_clock(t: float) -> str:
    secs = t % 86400
    h, rem = divmod(secs, 3600)
    mnt, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(mnt):02d}:{s:06.3f} UTC"


def _choose_scale(times: Sequence[float]) -> float:
    """Pixels per second: the shorter gaps between events get about 7 px, within bounds."""
    ordered = sorted(times)
    gaps = sorted(b - a for a, b in itertools.pairwise(ordered) if b - a > 1e-5)
    if not gaps:
        return 4000.0
    typical = gaps[len(gaps) // 2]
    return min(12000.0, max(400.0, 7.0 / typical))


def _empty(title: str) -> str:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<svg xmlns='http://www.w3.org/2000/svg' width='400' height='60'>"
        f"{_text(10, 30, title or 'no events recorded')}</svg>\n"
    )


def _ruler(out: list[str], axis: _TimeAxis, origin: float, left: float) -> None:
    out.append("<g class='ruler'>")
    for seg in axis.segments:
        span = seg.end - seg.start
        px = span * axis.scale
        step = _nice_step(span, max(1, int(px // 60)))
        k = math.ceil((seg.start - origin) / step - 1e-9)
        while True:
            t = origin + k * step
            if t > seg.end + 1e-9:
                break
            y = axis.y(t)
            out.append(
                f"<line x1='{left - 8:.1f}' y1='{y:.1f}' x2='{left:.1f}' y2='{y:.1f}' "
                "stroke='#777'/>"
            )
            out.append(_text(left - 12, y + 4, _fmt_offset(t - origin), size=10, anchor="end"))
            k += 1
        out.append(
            f"<line x1='{left:.1f}' y1='{seg.y:.1f}' x2='{left:.1f}' "
            f"y2='{seg.y + px:.1f}' stroke='#777'/>"
        )
    out.append("</g>")


def _bands(evs: Sequence[Event], end: float) -> list[tuple[float, float, str]]:
    """(start, end, state) stretches of one peer's lifeline."""
    bands: list[tuple[float, float, str]] = []
    state: str | None = None
    since = 0.0

    def switch(t: float, new: str | None) -> None:
        nonlocal state, since
        if state is not None and t > since:
            bands.append((since, t, state))
        elif state is not None:
            bands.append((since, since, state))
        state, since = new, t

    resume_state: str | None = None
    for e in evs:
        if e.ev == "launched":
            switch(e.t, "starting")
        elif e.ev == "looking":
            switch(e.t, "LOOKING")
        elif e.ev == "decided":
            switch(e.t, "syncing")
        elif e.ev == "established":
            switch(e.t, str(e.get("state", "FOLLOWING")))
        elif e.ev == "stopped":
            resume_state = state
            switch(e.t, "hung")
        elif e.ev == "continued":
            switch(e.t, resume_state)
        elif e.ev in ("killed", "exited"):
            switch(e.t, None)
        elif state is None and e.ev in ("send", "recv"):
            switch(e.t, "LOOKING")
    switch(end, None)
    return bands


def _message(
    m: Message,
    index: int,
    xs: Mapping[int, float],
    axis: _TimeAxis,
    origin: float,
    colour: Mapping[int, str],
    labels: _Labels,
) -> str:
    c = colour.get(m.vote.leader, "#444")
    x1 = xs.get(m.src, 0.0)
    x2 = xs.get(m.dst, 0.0)
    direction = 1 if x2 >= x1 else -1
    sent = m.sent if m.sent is not None else m.received
    assert sent is not None
    y1 = axis.y(sent)
    dash = ""
    if m.received is None:  # never delivered: a short arrow ending in a cross
        x2 = x1 + direction * min(40.0, abs(x2 - x1) / 3)
        y2 = y1
        dash = " stroke-dasharray='3,3'"
    else:
        y2 = axis.y(m.received)
        if m.sent is None:
            dash = " stroke-dasharray='5,3'"
    # Leave the lifeline band clear at both ends.
    x1a = x1 + direction * 4
    x2a = x2 - direction * 4 if m.received is not None else x2
    width = "1.6" if m.vote.state == "LOOKING" else "1.2"
    tip = (
        f"{m.src} → {m.dst}: {m.vote.describe()}; "
        + (f"sent {_fmt_offset(m.sent - origin)}" if m.sent is not None else "(re-sent)")
        + (
            f", received {_fmt_offset(m.received - origin)}"
            if m.received is not None
            else ", never delivered"
        )
    )
    parts = [
        f"<g class='msg' data-from='{m.src}' data-to='{m.dst}' "
        f"data-vote={quoteattr(m.vote.label())} data-index='{index}'>",
        f"<title>{escape(tip)}</title>",
        f"<line x1='{x1a:.1f}' y1='{y1:.1f}' x2='{x2a:.1f}' y2='{y2:.1f}' stroke='{c}' "
        f"stroke-width='{width}'{dash}"
        + (f" marker-end='url(#arrow-{m.vote.leader})'" if m.received is not None else "")
        + "/>",
    ]
    if m.received is None:
        parts.append(
            f"<path d='M{x2 - 4:.1f},{y2 - 4:.1f} l8,8 m0,-8 l-8,8' stroke='{c}' "
            "stroke-width='1.5'/>"
        )
    label = m.vote.label()
    size = 10
    w = _text_width(label, size)
    # Just past the sender, on the arrow, slightly above it.
    lx = x1a + direction * 8 if direction > 0 else x1a - 8 - w
    frac = (lx + w / 2 - x1a) / (x2a - x1a) if x2a != x1a else 0
    ly = y1 + (y2 - y1) * max(0.0, min(1.0, frac)) - 3
    if labels.free(lx, ly - size, w, size + 2):
        labels.take(lx, ly - size, w, size + 2)
        parts.append(_text(lx, ly, label, size=size, fill=c))
    parts.append("</g>")
    return "".join(parts)


def _mark(e: Event, x: float, y: float, labels: _Labels) -> str | None:
    g = e.get
    if e.ev == "looking":
        text, shape, fill = f"LOOKING r{g('round')}", "circle", _STATE_COLOURS["LOOKING"]
    elif e.ev == "decided":
        state = str(g("state"))
        text = f"decided {state} {g('leader')} ({g('took_ms')} ms)"
        shape, fill = "diamond", _STATE_COLOURS.get(state, "#555")
    elif e.ev == "established":
        text = f"ESTABLISHED epoch {g('epoch')}"
        shape, fill = "bar", _STATE_COLOURS.get(str(g("state")), "#1B7837")
    elif e.ev == "phase-over":
        text, shape, fill = f"{g('state')} ended: {g('reason')}", "circle", "#777"
    elif e.ev == "launched":
        text, shape, fill = "process started", "tick", "#555"
    elif e.ev == "killed":
        text, shape, fill = "SIGKILL", "cross", "#B2182B"
    elif e.ev == "stopped":
        text, shape, fill = "SIGSTOP (hung)", "cross", "#B2182B"
    elif e.ev == "continued":
        text, shape, fill = "SIGCONT", "tick", "#B2182B"
    elif e.ev == "exited":
        text, shape, fill = f"exited ({g('status')})", "cross", "#555"
    else:
        return None
    parts = [f"<g class='mark' data-ev={quoteattr(e.ev)} data-sid='{e.sid}'>"]
    if shape == "circle":
        parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4' fill='{fill}' stroke='#333'/>")
    elif shape == "diamond":
        parts.append(
            f"<path d='M{x:.1f},{y - 7:.1f} l7,7 l-7,7 l-7,-7 z' fill='{fill}' stroke='#222'/>"
        )
    elif shape == "bar":
        parts.append(
            f"<rect x='{x - 12:.1f}' y='{y - 3:.1f}' width='24' height='6' fill='{fill}' "
            "stroke='#222'/>"
        )
    elif shape == "cross":
        parts.append(
            f"<path d='M{x - 7:.1f},{y - 7:.1f} l14,14 m0,-14 l-14,14' stroke='{fill}' "
            "stroke-width='3'/>"
        )
    else:
        parts.append(
            f"<line x1='{x - 10:.1f}' y1='{y:.1f}' x2='{x + 10:.1f}' y2='{y:.1f}' "
            f"stroke='{fill}' stroke-width='2'/>"
        )
    size = 11
    w = _text_width(text, size)
    lx, ly = x + 12, y + 4
    for dy in (0, 13, -13, 26, -26):
        if labels.free(lx, ly + dy - size, w, size + 2):
            labels.take(lx, ly + dy - size, w, size + 2)
            parts.append(_text(lx, ly + dy, text, size=size, fill="#111"))
            break
    parts.append(f"<title>{escape(f'peer {e.sid}: {text}')}</title></g>")
    return "".join(parts)


def _legend(out: list[str], colour: Mapping[int, str], y: float, left: float) -> None:
    out.append("<g class='legend'>")
    x = 16.0
    out.append(_text(x, y + 12, "arrow colour = proposed leader:", size=11))
    x += 190
    for sid, c in colour.items():
        out.append(
            f"<line x1='{x:.1f}' y1='{y + 8:.1f}' x2='{x + 22:.1f}' y2='{y + 8:.1f}' "
            f"stroke='{c}' stroke-width='3'/>"
        )
        out.append(_text(x + 26, y + 12, leader_name(sid), size=11))
        x += 46
    x = 16.0
    y2 = y + 32
    out.append(_text(x, y2 + 4, "lifeline:", size=11))
    x += 58
    for state in ("starting", "LOOKING", "syncing", "LEADING", "FOLLOWING", "OBSERVING", "hung"):
        out.append(
            f"<rect x='{x:.1f}' y='{y2 - 6:.1f}' width='14' height='12' "
            f"fill='{_STATE_COLOURS[state]}'/>"
        )
        out.append(_text(x + 18, y2 + 4, state, size=11))
        x += 26 + _text_width(state, 11)
    out.append(
        _text(
            16,
            y2 + 24,
            "labels: proposed leader and round (F:/L:/O: = sent while FOLLOWING/LEADING/"
            "OBSERVING); dashed = re-sent, ✕ = never delivered; hover for the whole vote",
            size=10,
            fill="#555",
        )
    )
    out.append("</g>")
