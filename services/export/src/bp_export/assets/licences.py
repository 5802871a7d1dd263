"""Licence policy: which asset licences allow the commercial use of the datasets we produce.

Allowed: CC0, CC-BY in any version (also -SA and -ND, which allow commercial use; their
share-alike and no-derivatives terms are recorded as obligations), MIT, Apache-2.0 and BSD.
Rejected: anything non-commercial (-NC, "non-commercial"), academic-only, research-only,
unknown, proprietary, and a missing licence (a missing licence is not a yes). Anything not on
the allow-list is rejected too. SPDX expressions are understood: `A OR B` is allowed when
either is, `A AND B` only when both are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_REJECT_WORDS = (
    (re.compile(r"(^|-)NC(-|$)|NON-?COMMERCIAL"), "non-commercial licence"),
    (re.compile(r"ACADEMIC"), "academic-only licence"),
    (re.compile(r"RESEARCH"), "research-only licence"),
    (re.compile(r"^(UNKNOWN|NONE|NOASSERTION|N/?A|UNLICENSED|TBD|\?)$"), "unknown licence"),
    (re.compile(r"PROPRIETARY|ALL-RIGHTS-RESERVED|EVALUATION|PERSONAL-USE"), "proprietary licence"),
)
_ALLOWED = (
    (re.compile(r"^CC0(-1(\.0)?)?(-UNIVERSAL)?$"), "CC0-1.0", ()),
    (re.compile(r"^CC-BY(-(\d(\.\d)?))?(-INTERNATIONAL)?$"), "CC-BY", ("attribution",)),
    (
        re.compile(r"^CC-BY-SA(-(\d(\.\d)?))?(-INTERNATIONAL)?$"),
        "CC-BY-SA",
        ("attribution", "share-alike"),
    ),
    (
        re.compile(r"^CC-BY-ND(-(\d(\.\d)?))?(-INTERNATIONAL)?$"),
        "CC-BY-ND",
        ("attribution", "no-derivatives"),
    ),
    (re.compile(r"^MIT$"), "MIT", ("attribution",)),
    (re.compile(r"^APACHE(-2(\.0)?)?$"), "Apache-2.0", ("attribution",)),
    (
        re.compile(r"^BSD(-[0-4]-CLAUSE)?(-(CLEAR|NEW|SIMPLIFIED|REVISED))?$"),
        "BSD",
        ("attribution",),
    ),
)


@dataclass(frozen=True)
class LicenceVerdict:
    """Whether one licence string allows commercial use, and why."""

    licence: str | None
    normalised: str | None
    commercial_use: bool
    reason: str
    obligations: tuple[str, ...] = ()


def classify_licence(licence: str | None) -> LicenceVerdict:
    """Judge a licence string (SPDX id, or the way people usually write one)."""
    if licence is None or not licence.strip():
        return LicenceVerdict(licence, None, False, "missing licence")
    text = licence.strip()
    alternatives = re.split(r"\s+OR\s+", text, flags=re.IGNORECASE)
    verdicts = [_all_of(part, licence) for part in alternatives]
    allowed = [v for v in verdicts if v.commercial_use]
    if allowed:
        return allowed[0]
    return verdicts[0]


def _all_of(expression: str, original: str) -> LicenceVerdict:
    terms = re.split(r"\s+AND\s+", expression.strip("() "), flags=re.IGNORECASE)
    verdicts = [_single(term, original) for term in terms]
    refused = next((v for v in verdicts if not v.commercial_use), None)
    if refused is not None:
        return refused
    names = " AND ".join(v.normalised or "" for v in verdicts)
    obligations = tuple(dict.fromkeys(o for v in verdicts for o in v.obligations))
    return LicenceVerdict(original, names, True, "commercial use allowed", obligations)


def _single(term: str, original: str) -> LicenceVerdict:
    key = _normalise(term)
    for pattern, reason in _REJECT_WORDS:
        if pattern.search(key):
            return LicenceVerdict(original, key, False, reason)
    for pattern, name, obligations in _ALLOWED:
        if pattern.fullmatch(key):
            return LicenceVerdict(original, name, True, "commercial use allowed", obligations)
    return LicenceVerdict(original, key, False, "licence not on the commercial allow-list")


def _normalise(term: str) -> str:
    key = term.strip().strip("()").upper()
    key = re.sub(r"\b(THE|LICEN[CS]E[SD]?|VERSION)\b", " ", key)
    key = re.sub(r"\bV(?=\d)", "", key)
    key = re.sub(r"CREATIVE\s*COMMONS", "CC", key)
    key = re.sub(r"ATTRIBUTION", "BY", key)
    key = key.replace("SHAREALIKE", "SA").replace("SHARE-ALIKE", "SA")
    key = key.replace("NODERIVATIVES", "ND").replace("NO-DERIVATIVES", "ND")
    key = re.sub(r"[\s_/,;]+", "-", key).strip("-")
    key = re.sub(r"-+", "-", key)
    key = re.sub(r"^(CC)-?0", "CC0", key)
    return key
