"""Wikidata's `wbgetentities` API: batches of at most 50 ids over urllib with a descriptive User-Agent, retried
with exponential backoff on 429/5xx/maxlag/connection errors (Retry-After honoured), and the parsing of a response
into one `Entity` per requested id. The HTTP function is injectable (`fetch(url) -> bytes`)."""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import flextape_bench
from flextape_bench.errors import UserError
from flextape_bench.transfers import ReplyTooLarge, ReplyTooSlow, bounded_blocks, gunzipped

API_URL = "https://www.wikidata.org/w/api.php"
BATCH_SIZE = 50  # wbgetentities accepts at most 50 ids per request (anonymous clients)
MAX_REPLY_BYTES = 256 << 20  # 50 entities' claims (countries have the most) come to a few MB; never read past this
REPLY_SECONDS = 600.0  # longest one reply may take in all (the socket timeout bounds each read only)

PERSON_PROPERTIES = ("P21", "P172", "P27", "P19")  # gender, ethnic group, citizenship, place of birth
PLACE_PROPERTIES = ("P17", "P30")  # country (of a birthplace), continent (of a country)
PROPERTIES = PERSON_PROPERTIES + PLACE_PROPERTIES  # kept for every fetched entity
PROPERTY_NAMES = {
    "P21": "gender",
    "P172": "ethnic group",
    "P27": "citizenship",
    "P19": "birthplace",
    "P17": "country",
    "P30": "continent",
}

_QID = re.compile(r"Q[1-9][0-9]*")

Fetch = Callable[[str], bytes]
Sleep = Callable[[float], None]


class WikidataError(UserError):
    """The Wikidata API could not be used (network down, refused request, API error); the message says what to do."""


def user_agent() -> str:
    """Descriptive User-Agent (Wikimedia policy): project, version, a URL or contact (the package metadata's
    Project-URL, or $FLEXTAPE_CONTACT when set) and purpose."""
    contact = os.environ.get("FLEXTAPE_CONTACT", "").strip()
    if not contact:
        try:
            from importlib.metadata import metadata

            meta = metadata("flextape-bench")
            urls = [value.split(",", 1)[-1].strip() for value in meta.get_all("Project-URL") or []]
            home = next(iter(meta.get_all("Home-page") or []), "").strip()
            contact = urls[0] if urls else (home if home.upper() != "UNKNOWN" else "")
        except Exception:  # not installed: no URL to give
            contact = ""
    about = f"{contact}; " if contact else ""
    return (
        f"flextape-bench/{flextape_bench.__version__} ({about}Seesaw-CF benchmark: demographic labels of "
        f"probe entities) Python-urllib/{sys.version_info.major}.{sys.version_info.minor}"
    )


def urllib_fetch(url: str, timeout: float = 60.0) -> bytes:
    """GET `url` with the project's User-Agent, accepting gzip; raises urllib/OS errors as they come. The reply is
    read as it arrives: more than MAX_REPLY_BYTES (sent or decompressed) is a WikidataError, more than REPLY_SECONDS
    in all a TimeoutError (retried as any timeout)."""
    request = urllib.request.Request(
        url, headers={"User-Agent": user_agent(), "Accept": "application/json", "Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        blocks = bounded_blocks(response, MAX_REPLY_BYTES, REPLY_SECONDS)
        if (response.headers.get("Content-Encoding") or "").lower() == "gzip":
            blocks = gunzipped(blocks, MAX_REPLY_BYTES)
        try:
            return b"".join(blocks)
        except ReplyTooLarge:
            raise WikidataError(
                f"the Wikidata API sent more than {MAX_REPLY_BYTES} bytes for {BATCH_SIZE} entities' claims, far more "
                "than they take; not read further. Check for a proxy between this machine and wikidata.org"
            ) from None
        except ReplyTooSlow as slow:
            raise TimeoutError(f"the reply took more than {REPLY_SECONDS} s ({slow.size} bytes had come)") from None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt k (0-based) waits base_delay * 2**k, capped at max_delay, or longer when the
    server's Retry-After says so (up to max_retry_after; a longer demand ends the fetch with an error)."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 600.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.base_delay * (2**attempt), self.max_delay)
        return max(backoff, retry_after or 0.0)


DEFAULT_RETRY = RetryPolicy()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def wbgetentities_url(qids: Sequence[str]) -> str:
    """The wbgetentities request for the claims of `qids` (at most BATCH_SIZE), with maxlag as bots should."""
    if not 0 < len(qids) <= BATCH_SIZE:
        raise ValueError(f"wbgetentities takes 1 to {BATCH_SIZE} ids, got {len(qids)}")
    query = urllib.parse.urlencode(
        {"action": "wbgetentities", "ids": "|".join(qids), "props": "claims", "format": "json", "maxlag": "5"}, safe="|"
    )
    return f"{API_URL}?{query}"


@dataclass
class Attempts:
    """Retries spent, across requests."""

    retries: int = 0


def get_json(
    url: str,
    fetch: Fetch,
    sleep: Sleep = time.sleep,
    policy: RetryPolicy = DEFAULT_RETRY,
    attempts: Attempts | None = None,
) -> dict[str, Any]:
    """The JSON object at `url`, retrying 429, 5xx, maxlag, connection errors and unreadable bodies.

    Raises WikidataError after `policy.attempts` failures, on any other HTTP error, or on an API error.
    """
    reason = "no attempt made"
    for attempt in range(policy.attempts):
        retry_after: float | None = None
        try:
            payload = json.loads(fetch(url))
        except urllib.error.HTTPError as exc:
            if exc.code != 429 and exc.code < 500:
                raise WikidataError(
                    f"the Wikidata API refused the request (HTTP {exc.code} {exc.reason}); "
                    f"this is not a network problem, report it with the command you ran"
                ) from exc
            reason = f"HTTP {exc.code} {exc.reason}"
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, truncated transfers
            reason = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
        except (ValueError, UnicodeDecodeError) as exc:  # a cut-off or garbled body
            reason = f"unreadable response ({exc})"
        else:
            error = payload.get("error") if isinstance(payload, dict) else {"info": "not a JSON object"}
            if error is None:
                return payload
            if error.get("code") != "maxlag":
                raise WikidataError(
                    f"the Wikidata API answered with an error ({error.get('code', '?')}: "
                    f"{error.get('info', '')}); report it with the command you ran"
                )
            reason = f"the servers are lagging ({error.get('info', 'maxlag')})"
        if attempt + 1 == policy.attempts:
            break
        if retry_after is not None and retry_after > policy.max_retry_after:
            raise WikidataError(
                f"the Wikidata API asks to wait {retry_after:.0f} s ({reason}); try again later, "
                f"or use the cache only (--offline)"
            )
        if attempts is not None:
            attempts.retries += 1
        sleep(policy.delay(attempt, retry_after))
    raise WikidataError(
        f"cannot reach the Wikidata API ({reason}) after {policy.attempts} attempts; rerun with "
        f"network access, or use the cache only (--offline)"
    )


@dataclass(frozen=True)
class Entity:
    """What one wbgetentities answer says about a requested id: `status` "ok" or "missing" (deleted or never
    existed); `redirect` the id it was merged into; `claims` property -> ((value QID, rank), ...), item values only,
    deprecated statements dropped."""

    qid: str
    status: str = "ok"
    redirect: str | None = None
    claims: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def is_qid(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _QID.fullmatch(value) is not None


def distinct_qids(qids: Iterable[str]) -> tuple[list[str], int]:
    """The distinct QIDs of `qids` in order, and how many distinct values are not QIDs."""
    ids, invalid = [], 0
    for qid in dict.fromkeys(qids):
        if is_qid(qid):
            ids.append(qid)
        else:
            invalid += 1
    return ids, invalid


def _item_value(statement: Any) -> tuple[str, str] | None:
    """(QID, rank) of a statement whose main snak is an item value; None for other statements."""
    if not isinstance(statement, dict):
        return None
    rank = statement.get("rank", "normal")
    snak = statement.get("mainsnak")
    if rank == "deprecated" or not isinstance(snak, dict) or snak.get("snaktype", "value") != "value":
        return None
    datavalue = snak.get("datavalue")
    if not isinstance(datavalue, dict) or datavalue.get("type") != "wikibase-entityid":
        return None
    value = datavalue.get("value")
    if not isinstance(value, dict):
        return None
    qid = value.get("id")
    if qid is None and value.get("entity-type", "item") == "item" and isinstance(value.get("numeric-id"), int):
        qid = f"Q{value['numeric-id']}"
    return (qid, rank if rank in ("preferred", "normal") else "normal") if is_qid(qid) else None


def parse_entities(
    payload: Mapping[str, Any], requested: Iterable[str], properties: Sequence[str] = PROPERTIES
) -> dict[str, Entity]:
    """Entities of a wbgetentities response, keyed by the requested id (a redirected id keeps its own key, the
    response's outer key, with `redirect` naming the target). Requested ids the response does not mention are left
    out (the caller does not mark them fetched)."""
    entities = payload.get("entities")
    if not isinstance(entities, dict):
        raise WikidataError("the Wikidata API answered without 'entities'; report it with the command you ran")
    by_key = {str(key).upper(): value for key, value in entities.items()}
    out: dict[str, Entity] = {}
    for qid in requested:
        data = by_key.get(qid.upper())
        if not isinstance(data, dict):
            continue
        if "missing" in data:
            out[qid] = Entity(qid, status="missing")
            continue
        redirects = data.get("redirects")
        target = redirects.get("to") if isinstance(redirects, dict) else None
        if target is None and is_qid(data.get("id")) and data["id"] != qid:
            target = data["id"]
        claims = data.get("claims")
        claims = claims if isinstance(claims, dict) else {}  # PHP encodes no claims as []
        values: dict[str, tuple[tuple[str, str], ...]] = {}
        for prop in properties:
            statements = claims.get(prop)
            found = [v for v in map(_item_value, statements if isinstance(statements, list) else []) if v]
            if found:
                values[prop] = tuple(dict.fromkeys(found))
        out[qid] = Entity(qid, status="ok", redirect=target if target != qid else None, claims=values)
    return out


def truthy(values: Iterable[tuple[str, str]]) -> list[str]:
    """Best-ranked values (preferred ones when any, else normal ones), in order, without repeats."""
    values = list(values)
    best = [q for q, rank in values if rank == "preferred"] or [q for q, rank in values if rank == "normal"]
    return list(dict.fromkeys(best))
