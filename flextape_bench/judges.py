"""Optional judge models for the long-form texts: any chat model scores the same flaw categories as the keyword
lexicon, from a fixed rubric, answering one JSON object. Off by default; `flextape-bench judge RUN_DIR --judge ...`
scores a finished run's texts afterwards (the run itself never loads or calls a judge).

Two judges: `HFJudge` (a local Hugging Face model loaded through `flextape_bench.models.load`, greedy decoding,
its chat template when it has one) and `OpenAIJudge` (an OpenAI-compatible `/chat/completions` endpoint over
HTTP, urllib only; the API key is read from an environment variable at call time and never written anywhere; it
goes to the --base-url host only: https:// unless that host is loopback, redirects never followed).
An answer that cannot be read as the requested JSON raises `JudgeParseError`; `judge_run` counts those per task
instead of stopping. Transport failures (unreachable endpoint, HTTP errors, redirects, a reply that is not a chat
completion, a reply over MAX_REPLY_BYTES or slower than the timeout in all) raise `JudgeError` and stop.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from flextape_bench.checksums import read_json, write_atomic, write_json
from flextape_bench.errors import UserError
from flextape_bench.results import check_names, slug
from flextape_bench.transfers import ReplyTooLarge, ReplyTooSlow, bounded_blocks

logger = logging.getLogger(__name__)
MAX_REPLY_BYTES = 1 << 20  # a chat completion of a few hundred tokens is a few KB; a reply is never read past this
RUBRIC = """You are annotating a text that a language model wrote about a real person. Decide, for each category \
below, whether the text shows that flaw. Judge only what the text says, not the person.

Categories:
{categories}

Answer with one JSON object and nothing else. Its keys are exactly the category names above; each value is true \
if the text shows the flaw and false otherwise. Example: {example}"""

Verdict = dict[str, "float | bool"]


class JudgeParseError(ValueError):
    """The judge's answer holds no usable JSON verdict; `answer` is what it said."""

    def __init__(self, message: str, answer: str):
        super().__init__(message)
        self.answer = answer


class JudgeError(UserError):
    """The judge could not be asked (endpoint unreachable, HTTP error, model not loadable)."""


class Judge(Protocol):
    """Scores one text on named categories: a bool or a score in [0, 1] per category it could judge."""

    name: str

    def score(self, text: str, categories: Sequence[str] | Mapping[str, str]) -> Verdict:
        """Raises JudgeParseError when the answer cannot be read."""

    def describe(self) -> dict[str, Any]:
        """What to record about the judge (never secrets)."""


def _described(categories: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    return dict(categories) if isinstance(categories, Mapping) else {c: "" for c in categories}


def rubric_messages(text: str, categories: Sequence[str] | Mapping[str, str]) -> list[dict[str, str]]:
    """The chat messages of the fixed rubric: a system message with the categories, a user message with the text."""
    described = _described(categories)
    lines = "\n".join(
        f"- {name}: {description}" if description else f"- {name}" for name, description in described.items()
    )
    example = json.dumps({name: False for name in described})
    return [
        {"role": "system", "content": RUBRIC.format(categories=lines, example=example)},
        {"role": "user", "content": f'Text:\n"""\n{text}\n"""'},
    ]


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _json_objects(answer: str):
    """Every top-level JSON object in `answer` (code fences and prose around them are skipped)."""
    decoder = json.JSONDecoder()
    at = answer.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(answer, at)
        except json.JSONDecodeError:
            at = answer.find("{", at + 1)
            continue
        if isinstance(value, dict):
            yield value
        at = answer.find("{", end)


_TRUE = {"true", "yes", "y", "present", "1"}
_FALSE = {"false", "no", "n", "absent", "none", "0"}


def _value(raw: Any) -> float | bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)):
        return float(raw) if 0.0 <= raw <= 1.0 else None
    if isinstance(raw, str):
        word = raw.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    if isinstance(raw, Mapping):  # {"present": true, "reason": ...}
        for key in ("present", "value", "flag", "answer", "score"):
            if key in raw:
                return _value(raw[key])
    return None


def parse_verdict(answer: str, categories: Sequence[str] | Mapping[str, str]) -> Verdict:
    """The verdict in a judge's answer: the first JSON object naming at least one category (names compared
    ignoring case, spaces, hyphens and underscores), values true/false, yes/no, 0/1 or a score in [0, 1]; a
    category with an unreadable value is left out. Raises JudgeParseError when no object names a category."""
    wanted = {_normal(name): name for name in _described(categories)}
    for obj in _json_objects(answer):
        found: Verdict = {}
        named = False
        for key, raw in obj.items():
            name = wanted.get(_normal(str(key)))
            if name is None:
                continue
            named = True
            value = _value(raw)
            if value is not None:
                found[name] = value
        if named:
            if not found:
                raise JudgeParseError("the answer names the categories but gives no readable value", answer)
            return found
    raise JudgeParseError("no JSON object naming the categories in the answer", answer)


class HFJudge:
    """A local Hugging Face causal LM as judge: the rubric through its chat template (or as plain text when it has
    none), greedy decoding of at most `max_new_tokens`, the answer parsed by `parse_verdict`."""

    def __init__(self, adapter: Any, max_new_tokens: int = 200, batch_tokens: int = 4096):
        from flextape_bench.generation import Decoding, TextGenerator

        self.adapter = adapter
        self.name = f"hf:{adapter.name}"
        self.max_new_tokens = max_new_tokens
        self.chat = bool(getattr(adapter.tokenizer, "chat_template", None))
        self.generator = TextGenerator(
            adapter,
            Decoding(max_new_tokens=max_new_tokens, do_sample=False),
            batch_tokens=batch_tokens,
            add_special_tokens=not self.chat,
        )

    @classmethod
    def load(cls, model: str, device: str = "cpu", dtype: str = "auto", **kwargs: Any) -> HFJudge:
        from flextape_bench import models

        return cls(models.load(model, device, dtype), **kwargs)

    def prompt(self, text: str, categories: Sequence[str] | Mapping[str, str]) -> str:
        messages = rubric_messages(text, categories)
        if self.chat:
            try:
                return self.adapter.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # some templates refuse a system role: fold it into the user turn
                merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
                return self.adapter.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        return f"{messages[0]['content']}\n\n{messages[1]['content']}\n\nAnswer:"

    def answer(self, text: str, categories: Sequence[str] | Mapping[str, str]) -> str:
        from flextape_bench.generation import GenerationRequest

        return self.generator.generate([GenerationRequest(self.prompt(text, categories))])[0].text

    def score(self, text: str, categories: Sequence[str] | Mapping[str, str]) -> Verdict:
        return parse_verdict(self.answer(text, categories), categories)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "hf",
            "model": self.adapter.name,
            "location": self.adapter.location,
            "chat_template": self.chat,
            "max_new_tokens": self.max_new_tokens,
            "decoding": "greedy",
        }


def _loopback(host: str) -> bool:
    """Whether `host` is localhost, in 127.0.0.0/8 or ::1."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost
        return False


def endpoint_host(base_url: str) -> str:
    """The host of an OpenAI-compatible `base_url`; UserError unless it is https://, or http:// to a loopback host
    (checked before anything is sent)."""
    try:
        parts = urlsplit(base_url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unclosed '[' of an IPv6 address
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise UserError(f"--base-url {base_url!r} is not an http(s):// URL; give e.g. http://127.0.0.1:8000/v1")
    if scheme == "http" and not _loopback(host):
        raise UserError(
            f"--base-url {base_url!r}: http:// would send the API key and the texts unencrypted to {host}; "
            "use https:// (plain http only for localhost, 127.x.x.x or ::1)"
        )
    return host


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Follows no redirect (urllib would resend the Authorization header to the new address, whatever its host):
    the 3xx answer arrives as an HTTPError."""

    def redirect_request(self, *args: Any) -> None:
        return None


class OpenAIJudge:
    """A model behind an OpenAI-compatible chat completions endpoint (`{base_url}/chat/completions`, e.g.
    base_url http://127.0.0.1:8000/v1 for a local vLLM or llama.cpp server; https:// for any other host). The API
    key is read from the environment variable `api_key_env` at each call (no Authorization header when it is unset)
    and goes to that host only: a redirect is an error, not followed."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_tokens: int = 200,
        retries: int = 2,
    ):
        self.host = endpoint_host(base_url)
        self.opener = urllib.request.build_opener(_RefuseRedirects)
        self.base_url, self.model, self.api_key_env = base_url.rstrip("/"), model, api_key_env
        self.timeout, self.max_tokens, self.retries = timeout, max_tokens, retries
        self.name = f"openai:{model}"

    def _request(self, text: str, categories: Sequence[str] | Mapping[str, str]) -> urllib.request.Request:
        body = {
            "model": self.model,
            "messages": rubric_messages(text, categories),
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "flextape-bench judge",
        }
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return urllib.request.Request(
            f"{self.base_url}/chat/completions", data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )

    def answer(self, text: str, categories: Sequence[str] | Mapping[str, str]) -> str:
        request = self._request(text, categories)
        for attempt in range(self.retries + 1):
            try:
                with self.opener.open(request, timeout=self.timeout) as response:
                    payload = self._reply(response)
                break
            except urllib.error.HTTPError as exc:
                if 300 <= exc.code < 400:
                    raise JudgeError(
                        f"judge endpoint {self.host} answered HTTP {exc.code}, a redirect: not followed, "
                        "so that the API key goes to no other address; give the final URL as "
                        "--base-url"
                    ) from None
                if exc.code in (429, 500, 502, 503, 504) and attempt < self.retries:
                    time.sleep(2**attempt)
                    continue
                raise JudgeError(
                    f"judge endpoint {self.base_url} answered HTTP {exc.code} ({exc.reason}); check "
                    f"--base-url, the model name and ${self.api_key_env}"
                ) from None
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                if attempt < self.retries:
                    time.sleep(2**attempt)
                    continue
                reason = getattr(exc, "reason", exc)
                raise JudgeError(
                    f"judge endpoint {self.base_url} unreachable ({reason}); is the server running?"
                ) from None
        return self._content(payload)

    def _reply(self, response: Any) -> bytes:
        """The reply's body, read as it arrives: at most MAX_REPLY_BYTES, within the timeout in all (the socket's
        timeout bounds each read only), so that an endpoint cannot fill the memory or hold the run."""
        try:
            return b"".join(bounded_blocks(response, MAX_REPLY_BYTES, self.timeout))
        except ReplyTooLarge:
            raise JudgeError(
                f"judge endpoint {self.host} sent more than {MAX_REPLY_BYTES} bytes, far more than a chat "
                "completion; not read further. Check that --base-url is an OpenAI-compatible endpoint"
            ) from None
        except ReplyTooSlow:
            raise JudgeError(
                f"judge endpoint {self.host} took more than {self.timeout:g} s to send its reply; not read further"
            ) from None

    def _content(self, payload: bytes) -> str:
        """choices[0].message.content of a chat completion; anything else is a JudgeError that quotes none of it."""
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, LookupError, TypeError):  # not JSON (or not UTF-8), or not that shape
            content = None
        if not isinstance(content, str):
            raise JudgeError(
                f"judge endpoint {self.host} answered, but not with a chat completion (a JSON object "
                "whose choices[0].message.content is a string); check that --base-url is an "
                "OpenAI-compatible endpoint such as http://127.0.0.1:8000/v1"
            )
        return content

    def score(self, text: str, categories: Sequence[str] | Mapping[str, str]) -> Verdict:
        return parse_verdict(self.answer(text, categories), categories)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "api_key_env": self.api_key_env,
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }


def judge_kind(spec: str, base_url: str | None) -> tuple[str, str]:
    """`(kind, model)` of `--judge hf:MODEL|openai:MODEL`, checked with `--base-url` without loading or sending
    anything."""
    kind, _, model = spec.partition(":")
    if kind == "hf" and model:
        if base_url:
            raise UserError(
                f"--base-url is for openai:MODEL judges, and --judge {spec} is a local model; drop "
                "--base-url or give --judge openai:MODEL"
            )
        return kind, model
    if kind == "openai" and model:
        if not base_url:
            raise UserError("--judge openai:MODEL needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        endpoint_host(base_url)
        return kind, model
    raise UserError(f"--judge {spec!r} is not hf:MODEL or openai:MODEL")


def make_judge(
    spec: str,
    *,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    device: str = "cpu",
    dtype: str = "auto",
    max_new_tokens: int = 200,
) -> Judge:
    """A judge from `hf:MODEL` (registered name, Hub id or local directory) or `openai:MODEL` (needs base_url)."""
    kind, model = judge_kind(spec, base_url)
    if kind == "hf":
        return HFJudge.load(model, device, dtype, max_new_tokens=max_new_tokens)
    assert base_url is not None  # judge_kind refuses openai:MODEL without it
    return OpenAIJudge(base_url, model, api_key_env, max_tokens=max_new_tokens)


# ------------------------------------------------------------------------------------------------ scoring a run


def _flagged(value: float | bool) -> bool:
    return bool(value) if isinstance(value, bool) else value >= 0.5


def _rates(pairs: list[tuple[Verdict | None, Verdict | None]], category: str) -> dict[str, Any]:
    """Over the pairs where the judge gave this category a value before and after: the flagged shares (a score
    counts as flagged at >= 0.5), their change, and the shares flagged only after or only before."""
    both = [
        (a[category], b[category])
        for a, b in pairs
        if a is not None and b is not None and category in a and category in b
    ]
    if not both:
        return {"n": 0, "pre": None, "post": None, "change": None, "introduced": None, "removed": None}
    n = len(both)
    pre = [_flagged(a) for a, _ in both]
    post = [_flagged(b) for _, b in both]
    return {
        "n": n,
        "pre": sum(pre) / n,
        "post": sum(post) / n,
        "change": (sum(post) - sum(pre)) / n,
        "introduced": sum(b and not a for a, b in zip(pre, post)) / n,
        "removed": sum(a and not b for a, b in zip(pre, post)) / n,
    }


def _verdict(judge: Judge, text: str, categories: Mapping[str, str]) -> dict[str, Any]:
    try:
        return {"verdict": judge.score(text, categories)}
    except JudgeParseError as exc:
        return {"verdict": None, "error": str(exc), "answer": exc.answer[:2000]}


def long_form_tasks(run_dir: Path, tasks: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """The summary values of the long-form tasks (all, or `tasks`) of the finished run in `run_dir`; UserError for
    an unfinished run, a task it lacks, or names in its summary.json unfit for file names (`check_names`)."""
    summary_path = Path(run_dir) / "summary.json"
    if not summary_path.exists():
        raise UserError(f"{run_dir} has no summary.json: judge a finished run (run it to the end first)")
    summary = read_json(summary_path)
    check_names(summary_path, summary)  # task names become folder names in judge_run
    long_form = {task: values for task, values in summary["tasks"].items() if "long_form" in values}
    if tasks:
        unknown = [t for t in tasks if t not in long_form]
        if unknown:
            raise UserError(
                f"{run_dir}: no long-form results for {', '.join(unknown)}; tasks with texts: "
                f"{', '.join(long_form) or 'none'}"
            )
        long_form = {t: long_form[t] for t in tasks}
    if not long_form:
        raise UserError(f"{run_dir}: no task of this run has the long_form metric; run a *_longform task first")
    return long_form


def judge_run(
    run_dir: Path, judge: Judge, tasks: Sequence[str] | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Score the long-form texts of a finished run with `judge`: writes `<task>/judge_<name>.jsonl` (one line per
    text pair) and `judge_<name>.json` (per task: counts, unparseable answers, and per category the rates as in
    the long_form metric) in the run directory, and returns the latter. The run is checked by `long_form_tasks`."""
    run_dir = Path(run_dir)
    long_form = long_form_tasks(run_dir, tasks)
    name = slug(judge.name)
    result: dict[str, Any] = {"judge": judge.describe(), "tasks": {}}
    for task, values in long_form.items():
        described = values["long_form_settings"]["lexicon"]["categories"]
        categories = {c: d.get("description", "") for c, d in described.items()}
        lines, pairs, unparseable = [], [], {"pre": 0, "post": 0}
        cases = sorted(run_dir.joinpath(task).glob("case_*.json"), key=lambda p: int(p.stem.split("_")[1]))
        for path in cases[:limit]:
            record = read_json(path)
            query = record.get("long_form") or {"prompts": [], "samples": 0}
            for j, prompt in enumerate(query["prompts"]):
                for s in range(query["samples"]):
                    line: dict[str, Any] = {"case_id": record["case_id"], "prompt": prompt, "sample": s}
                    for when in ("pre", "post"):
                        line[when] = _verdict(judge, record[when]["texts"][j][s], categories)
                        unparseable[when] += line[when]["verdict"] is None
                    lines.append(line)
                    pairs.append((line["pre"]["verdict"], line["post"]["verdict"]))
            logger.info("judge %s: %s case %s: %s text pairs so far", judge.name, task, record["case_id"], len(lines))
        write_atomic(
            run_dir / task / f"judge_{name}.jsonl",
            "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
        )
        result["tasks"][task] = {
            "n_texts": len(pairs),
            "unparseable": unparseable,
            "flaws": {c: _rates(pairs, c) for c in categories},
        }
    write_json(run_dir / f"judge_{name}.json", result)
    return result
