"""The certificate doctor's picture of a chain. Pure: no Django.

``picture`` lays out the chain from the certificate up, one box per certificate, each marked
with where the app knows it from, and the link between boxes as verified or broken, ending
where the path ends (at a trust anchor) or stops (and why).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from cryptography import x509

from . import trust
from .paths import MAX_PATH_LENGTH
from .x509 import directly_issued_by, display_name, format_thumbprint, summarize

# Where a box's certificate is known from.
ROOT = "root"
INTERMEDIATE = "intermediate"
APPROVED = "approved"
PRESENTED = "presented"  # sent by the client (the certificate itself, or its chain)
UNKNOWN = "unknown"  # named as an issuer, but the app has no certificate of that name

MARK_TEXT = {
    ROOT: "in the trusted root store",
    INTERMEDIATE: "in the intermediate pool",
    APPROVED: "on the approved-CA list",
    PRESENTED: "sent by the client",
    UNKNOWN: "unknown",
}

# A box's revocation status, in words.
REVOCATION_TEXT = {
    "good": "not revoked",
    "revoked": "REVOKED",
    "unknown": "revocation status unknown",
    "not_checked": "revocation not checked",
}

# The link from a box up to the next one.
VERIFIED = "verified"
BROKEN = "broken"  # a certificate of the issuer's name is known, but its key did not sign this one
MISSING = "missing"  # no certificate of the issuer's name is known


@dataclass(frozen=True)
class Box:
    subject: str
    issuer: str
    thumbprint: str | None
    sha256: str | None
    not_before: datetime | None
    not_after: datetime | None
    validity: str  # "valid", "expired", "not yet valid", or "" for an unknown certificate
    marks: tuple[str, ...]
    anchor: bool = False
    link_up: str | None = None  # VERIFIED, BROKEN or MISSING; None at the top
    link_note: str = ""
    stops_here: bool = False  # the path validation stopped at this certificate
    # Revocation: good, revoked, unknown or not_checked ('' when no path was validated), and why.
    revocation: str = ""
    revocation_note: str = ""

    @property
    def revocation_text(self) -> str:
        return REVOCATION_TEXT.get(self.revocation, "")


@dataclass(frozen=True)
class Picture:
    boxes: tuple[Box, ...]
    connected: bool
    stop: str  # where and why the path ends or stops, in words


def picture(
    cert: x509.Certificate, chain, config: trust.TrustConfig, connection: trust.Connection, at: datetime
) -> Picture:
    """The chain from ``cert`` up, as the path validation found it or as far as it goes."""
    chain = tuple(chain)
    presented = {_sha(c) for c in (cert, *chain)}
    result = _picture(cert, chain, presented, config, connection, at)
    if not connection.revocation:
        return result
    statuses = {_sha(s.cert): s for s in connection.revocation}
    boxes = tuple(
        replace(box, revocation=statuses[box.sha256].status, revocation_note=statuses[box.sha256].reason)
        if box.sha256 in statuses
        else box
        for box in result.boxes
    )
    return replace(result, boxes=boxes)


def _picture(cert, chain, presented, config, connection, at) -> Picture:
    if connection.ok:
        path = list(connection.path)
        boxes = [_box(c, presented, config, at) for c in path]
        linked = [replace(box, link_up=VERIFIED) for box in boxes[:-1]] + [replace(boxes[-1], anchor=True)]
        return Picture(tuple(linked), True, connection.reason)
    boxes, current, seen = [], cert, set()
    pool = [*chain, *config.roots, *config.intermediates, *config.approved]
    while len(boxes) < MAX_PATH_LENGTH:
        box = _box(current, presented, config, at)
        seen.add(box.sha256)
        if current.subject == current.issuer and directly_issued_by(current, current):
            boxes.append(box)  # self-signed: nothing above it
            break
        signer = next((c for c in pool if directly_issued_by(current, c) and _sha(c) not in seen), None)
        if signer is not None:
            boxes.append(replace(box, link_up=VERIFIED))
            current = signer
            continue
        namesakes = [c for c in pool if c.subject == current.issuer and _sha(c) not in seen]
        if namesakes:
            note = (
                f"A certificate named '{display_name(current.issuer)}' is known, but its key did not sign "
                f"'{display_name(current.subject)}'."
            )
            boxes.append(replace(box, link_up=BROKEN, link_note=note))
            boxes.append(_box(namesakes[0], presented, config, at))
        else:
            note = f"The app knows no certificate named '{display_name(current.issuer)}'."
            boxes.append(replace(box, link_up=MISSING, link_note=note))
            boxes.append(Box(display_name(current.issuer), "", None, None, None, None, "", (UNKNOWN,)))
        break
    depth = connection.failed_depth
    if depth is not None and 0 <= depth < len(boxes) and boxes[depth].sha256 is not None:
        boxes[depth] = replace(boxes[depth], stops_here=True)
    else:
        known = [i for i, box in enumerate(boxes) if box.sha256 is not None]
        if known:
            boxes[known[-1]] = replace(boxes[known[-1]], stops_here=True)
    return Picture(tuple(boxes), False, connection.reason)


def _sha(cert: x509.Certificate) -> str:
    return summarize(cert).sha256


def _box(cert: x509.Certificate, presented: set[str], config: trust.TrustConfig, at: datetime) -> Box:
    summary = summarize(cert)
    marks = [
        mark
        for mark, certs in ((ROOT, config.roots), (INTERMEDIATE, config.intermediates), (APPROVED, config.approved))
        if cert in certs
    ]
    if summary.sha256 in presented:
        marks.append(PRESENTED)
    if summary.not_after < at:
        validity = "expired"
    elif summary.not_before > at:
        validity = "not yet valid"
    else:
        validity = "valid"
    return Box(
        subject=summary.subject_display,
        issuer=summary.issuer_display,
        thumbprint=format_thumbprint(summary.sha1),
        sha256=summary.sha256,
        not_before=summary.not_before,
        not_after=summary.not_after,
        validity=validity,
        marks=tuple(marks),
    )
