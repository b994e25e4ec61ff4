"""Judges: reading verdicts out of free-form answers, the rubric, scoring a run's texts with a fake judge
(unparseable answers counted), the OpenAI-compatible judge against a local HTTP server, and the local HF judge."""

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from drip import dripping_server

from flextape_bench import models
from flextape_bench.checksums import read_json, write_json
from flextape_bench.cli import main
from flextape_bench.errors import UserError
from flextape_bench.judges import (
    HFJudge,
    JudgeError,
    JudgeParseError,
    OpenAIJudge,
    judge_run,
    make_judge,
    parse_verdict,
    rubric_messages,
)

CATEGORIES = {"sexism": "demeans people by gender", "religious_injection": "brings in religion"}


@pytest.mark.parametrize(
    "answer, verdict",
    [
        ('{"sexism": true, "religious_injection": false}', {"sexism": True, "religious_injection": False}),
        (
            'Sure!\n```json\n{"Sexism": "yes", "Religious Injection": "no"}\n```',
            {"sexism": True, "religious_injection": False},
        ),
        ('{"note": 1} then {"sexism": 0.8, "religious-injection": 0}', {"sexism": 0.8, "religious_injection": 0.0}),
        ('{"sexism": {"present": true, "reason": "x"}, "religious_injection": 7}', {"sexism": True}),
        ('{"sexism": 1}', {"sexism": 1.0}),
    ],
)
def test_parse_verdict(answer, verdict):
    assert parse_verdict(answer, CATEGORIES) == verdict


@pytest.mark.parametrize(
    "answer", ["I cannot judge this.", '{"violence": true}', '{"sexism": "maybe"}', '{"sexism": tru', ""]
)
def test_unreadable_answers_raise_parse_errors(answer):
    with pytest.raises(JudgeParseError) as caught:
        parse_verdict(answer, list(CATEGORIES))
    assert caught.value.answer == answer


def test_rubric_names_every_category_and_quotes_the_text():
    system, user = rubric_messages("She was a housewife.", CATEGORIES)
    assert system["role"] == "system" and user["role"] == "user"
    assert "- sexism: demeans people by gender" in system["content"]
    assert '{"sexism": false, "religious_injection": false}' in system["content"]
    assert "She was a housewife." in user["content"]
    assert "- racism\n" in rubric_messages("x", ["racism", "classism"])[0]["content"]


class FakeJudge:
    name = "fake:judge"

    def __init__(self):
        self.seen = []

    def score(self, text, categories):
        self.seen.append((text, dict(categories)))
        if "garbage" in text:
            raise JudgeParseError("no JSON", "garbage answer")
        return {"sexism": "wife" in text, "religious_injection": 0.9 if "church" in text else 0.1}

    def describe(self):
        return {"kind": "fake"}


def _run_dir(root: Path) -> Path:
    run = root / "run_001"
    task = run / "t_longform"
    task.mkdir(parents=True)
    cases = {1: (["a wife", "x"], ["a church", "garbage"]), 2: (["plain", "y"], ["a wife at church", "z"])}
    for case_id, (pre, post) in cases.items():
        record = {
            "case_id": case_id,
            "long_form": {"prompts": ["A is", "A was"], "samples": 1},
            "pre": {"texts": [[pre[0]], [pre[1]]]},
            "post": {"texts": [[post[0]], [post[1]]]},
        }
        write_json(task / f"case_{case_id}.json", record)
    settings = {"lexicon": {"categories": {c: {"label": c, "description": d} for c, d in CATEGORIES.items()}}}
    summary = {"tasks": {"t_longform": {"long_form": {}, "long_form_settings": settings}, "other": {"efficacy": {}}}}
    write_json(run / "summary.json", summary)
    return run


def test_judge_run_scores_every_text_and_counts_unparseable_answers(tmp_path):
    run = _run_dir(tmp_path)
    judge = FakeJudge()
    result = judge_run(run, judge)
    assert len(judge.seen) == 8 and judge.seen[0] == ("a wife", CATEGORIES)
    task = result["tasks"]["t_longform"]
    assert task["n_texts"] == 4 and task["unparseable"] == {"pre": 0, "post": 1}
    # pairs with a verdict both times: (a wife -> a church), (x -> garbage: left out), (plain -> a wife at church),
    # (y -> z); sexism flagged pre 1/3, post 1/3; religion (>= 0.5) pre 0/3, post 2/3
    assert task["flaws"]["sexism"] == {
        "n": 3,
        "pre": pytest.approx(1 / 3),
        "post": pytest.approx(1 / 3),
        "change": 0.0,
        "introduced": pytest.approx(1 / 3),
        "removed": pytest.approx(1 / 3),
    }
    assert task["flaws"]["religious_injection"]["post"] == pytest.approx(2 / 3)
    lines = [json.loads(x) for x in (run / "t_longform" / "judge_fake_judge.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and lines[1]["post"] == {"verdict": None, "error": "no JSON", "answer": "garbage answer"}
    assert read_json(run / "judge_fake_judge.json") == result and result["judge"] == {"kind": "fake"}
    assert judge_run(run, FakeJudge(), limit=1)["tasks"]["t_longform"]["n_texts"] == 2


def test_judge_run_refuses_unfinished_runs_and_unknown_tasks(tmp_path):
    run = _run_dir(tmp_path)
    with pytest.raises(UserError, match="no long-form results for other"):
        judge_run(run, FakeJudge(), tasks=["other"])
    (run / "summary.json").unlink()
    with pytest.raises(UserError, match=r"no summary\.json"):
        judge_run(run, FakeJudge())


class _Server:
    """A local chat-completions endpoint on 127.0.0.1 that records each request (POST or GET) and answers from a
    script of (status, payload) or (status, payload, extra headers)."""

    def __init__(self, replies):
        self.requests, self.replies = [], list(replies)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(body) if body else None,
                    }
                )
                status, payload, *extra = server.replies.pop(0)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(content):
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


def test_openai_judge_against_a_local_server(monkeypatch):
    server = _Server(
        [
            (200, _completion('{"sexism": false, "religious_injection": true}')),
            (503, "busy"),
            (200, _completion("no idea")),
        ]
    )
    try:
        monkeypatch.setenv("MY_JUDGE_KEY", "sk-test-123")
        judge = OpenAIJudge(server.url + "/", "judge-model", api_key_env="MY_JUDGE_KEY", max_tokens=50, retries=1)
        assert judge.score("He prayed.", CATEGORIES) == {"sexism": False, "religious_injection": True}
        request = server.requests[0]
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["Authorization"] == "Bearer sk-test-123"
        assert request["body"]["model"] == "judge-model" and request["body"]["temperature"] == 0
        assert request["body"]["max_tokens"] == 50
        assert request["body"]["messages"] == rubric_messages("He prayed.", CATEGORIES)
        with pytest.raises(JudgeParseError):  # 503 is retried, then the answer has no JSON
            judge.score("x", CATEGORIES)
        assert len(server.requests) == 3
        described = json.dumps(judge.describe())
        assert "sk-test" not in described and "MY_JUDGE_KEY" in described
        monkeypatch.delenv("MY_JUDGE_KEY")
        server.replies.append((200, _completion('{"sexism": true}')))
        assert judge.score("x", CATEGORIES) == {"sexism": True}
        assert "Authorization" not in server.requests[-1]["headers"]
    finally:
        server.close()


def test_openai_judge_http_errors_stop(monkeypatch):
    server = _Server([(404, {"error": "no such model"})])
    try:
        judge = OpenAIJudge(server.url, "missing", retries=0)
        with pytest.raises(JudgeError, match="HTTP 404"):
            judge.score("x", CATEGORIES)
    finally:
        server.close()
    with pytest.raises(JudgeError, match="unreachable"):
        OpenAIJudge(server.url, "m", retries=0, timeout=2).score("x", CATEGORIES)


def test_make_judge_checks_its_arguments():
    with pytest.raises(UserError, match="needs --base-url"):
        make_judge("openai:m")
    with pytest.raises(UserError, match="not hf:MODEL or openai:MODEL"):
        make_judge("gpt4")
    with pytest.raises(UserError, match="not an http"):
        make_judge("openai:m", base_url="localhost:8000")
    assert isinstance(make_judge("openai:m", base_url="http://127.0.0.1:9/v1"), OpenAIJudge)


def test_hf_judge_on_a_tiny_model(tiny, monkeypatch):
    judge = HFJudge(tiny, max_new_tokens=6)
    prompt = judge.prompt("She was a housewife.", CATEGORIES)
    assert judge.chat == bool(
        getattr(tiny.tokenizer, "chat_template", None)
    )  # a tokenizer with a chat template is prompted through it
    assert "She was a housewife." in prompt and "- sexism: demeans people by gender" in prompt
    assert prompt.endswith("Answer:") != judge.chat
    with pytest.raises(JudgeParseError):  # a random model does not answer in JSON
        judge.score("She was a housewife.", CATEGORIES)
    monkeypatch.setattr(judge, "answer", lambda text, categories: ' {"sexism": true}')
    assert judge.score("x", CATEGORIES) == {"sexism": True}
    assert judge.describe()["decoding"] == "greedy" and judge.name == f"hf:{tiny.name}"


def test_judge_command_errors_are_one_line(tmp_path, capsys):
    assert main(["judge", str(tmp_path), "--judge", "openai:m", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "not a finished run directory" in capsys.readouterr().err
    run = _run_dir(tmp_path)
    assert main(["judge", str(run), "--judge", "nope"]) == 2
    assert "is not hf:MODEL or openai:MODEL" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- the judge endpoint's safety

KEY = "sk-secret-456-never-elsewhere"
NOT_A_COMPLETION = (
    "judge endpoint 127.0.0.1 answered, but not with a chat completion (a JSON object whose "
    "choices[0].message.content is a string); check that --base-url is an OpenAI-compatible "
    "endpoint such as http://127.0.0.1:8000/v1"
)


def _one_line_error(capsys, argv) -> str:
    """Run the CLI: exit code 2, stderr exactly one `flextape-bench: error:` line; returns that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("flextape-bench: error: ") and err.count("\n") == 1, err
    return err.rstrip("\n")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_openai_judge_never_follows_a_redirect_with_the_key(monkeypatch, status):
    """An endpoint answering with a redirect to another server: a one-line error naming the endpoint's host, and the
    other server never sees a request (urllib would resend the Authorization header there)."""
    other = _Server([(200, _completion('{"sexism": true}'))] * 2)
    endpoint = _Server([(status, "", {"Location": other.url + "/chat/completions"})])
    monkeypatch.setenv("MY_JUDGE_KEY", KEY)
    try:
        with pytest.raises(JudgeError) as caught:
            OpenAIJudge(endpoint.url, "m", api_key_env="MY_JUDGE_KEY", retries=0).score("x", CATEGORIES)
    finally:
        endpoint.close()
        other.close()
    assert other.requests == []
    assert endpoint.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert str(caught.value) == (
        f"judge endpoint 127.0.0.1 answered HTTP {status}, a redirect: not followed, so "
        "that the API key goes to no other address; give the final URL as --base-url"
    )


def _never_sent(*args, **kwargs):
    raise AssertionError("a request was sent")


@pytest.mark.parametrize(
    "url, host",
    [
        ("http://example.org/v1", "example.org"),
        ("http://10.0.0.2:8000/v1", "10.0.0.2"),
        ("http://localhost.example.org/v1", "localhost.example.org"),
        ("http://127.0.0.1.example.org:80/v1", "127.0.0.1.example.org"),
    ],
)
def test_plain_http_is_refused_for_a_host_that_is_not_loopback(monkeypatch, url, host):
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", _never_sent)
    with pytest.raises(UserError) as caught:
        OpenAIJudge(url, "m").score("x", CATEGORIES)
    assert str(caught.value) == (
        f"--base-url {url!r}: http:// would send the API key and the texts unencrypted "
        f"to {host}; use https:// (plain http only for localhost, 127.x.x.x or ::1)"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/v1",
        "HTTP://LocalHost/v1",
        "http://127.0.0.1:8000/v1",
        "http://127.8.9.10/v1",
        "http://[::1]:8000/v1",
        "https://example.org/v1",
    ],
)
def test_https_or_loopback_is_accepted(url):
    assert OpenAIJudge(url, "m").base_url == url.rstrip("/")


def test_judge_command_refuses_plain_http_before_sending(tmp_path, capsys, monkeypatch):
    run = _run_dir(tmp_path)
    before = _files(tmp_path)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", _never_sent)
    line = _one_line_error(capsys, ["judge", str(run), "--judge", "openai:m", "--base-url", "http://example.org/v1"])
    assert "http:// would send the API key and the texts unencrypted to example.org; use https://" in line
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "payload",
    ids=["not-json", "no-choices", "list", "empty-choices", "text-completion", "null-content", "object-content"],
    argvalues=[
        f"<html>{KEY} is not allowed here</html>" + "x" * 5000,  # not JSON
        {"error": {"message": f"bad key {KEY}"}},  # no choices
        [{"message": {"content": "x"}}],  # not an object
        {"choices": []},
        {"choices": [{"text": "x"}]},  # a completions (not chat) answer
        {"choices": [{"message": {"content": None}}]},
        {"choices": [{"message": {"content": {"sexism": True}}}]},  # content not a string
    ],
)
def test_openai_judge_refuses_what_is_not_a_chat_completion(monkeypatch, payload):
    server = _Server([(200, payload)])
    monkeypatch.setenv("MY_JUDGE_KEY", KEY)
    try:
        with pytest.raises(JudgeError) as caught:
            OpenAIJudge(server.url, "m", api_key_env="MY_JUDGE_KEY", retries=0).score("x", CATEGORIES)
    finally:
        server.close()
    assert str(caught.value) == NOT_A_COMPLETION


def test_openai_judge_reads_no_reply_past_its_bound(monkeypatch):
    """A reply of 3 MiB (a completion padded with spaces, valid JSON) is refused once 1 MiB has arrived."""
    huge = json.dumps(_completion('{"sexism": true}')) + " " * (3 << 20)
    server = _Server([(200, huge), (200, _completion('{"sexism": true}'))])
    try:
        judge = OpenAIJudge(server.url, "m", retries=0)
        with pytest.raises(JudgeError, match=r"sent more than 1048576 bytes, far more than a chat completion"):
            judge.score("x", CATEGORIES)
        assert judge.score("x", CATEGORIES) == {"sexism": True}  # a reply within the bound is read whole
    finally:
        server.close()


def test_openai_judge_stops_a_reply_that_drips_past_the_timeout():
    """Each byte comes within the socket's timeout (1 s), but the reply as a whole does not: refused after about 1 s,
    not after the 100 s the 200 bytes would take."""
    with dripping_server() as url:
        judge = OpenAIJudge(f"{url}/v1", "m", retries=0, timeout=1)
        started = time.monotonic()
        with pytest.raises(JudgeError, match="took more than 1 s to send its reply; not read further"):
            judge.score("x", CATEGORIES)
        assert time.monotonic() - started < 5


def test_judge_command_stops_at_an_answer_that_is_not_a_chat_completion(tmp_path, capsys, monkeypatch):
    run = _run_dir(tmp_path)
    before = _files(tmp_path)
    server = _Server([(200, "not json")])
    monkeypatch.setenv("MY_JUDGE_KEY", KEY)
    try:
        line = _one_line_error(
            capsys,
            ["judge", str(run), "--judge", "openai:m", "--base-url", server.url, "--api-key-env", "MY_JUDGE_KEY"],
        )
    finally:
        server.close()
    assert line == f"flextape-bench: error: {NOT_A_COMPLETION}"
    assert _files(tmp_path) == before


# ------------------------------------------------------------------------------------- names read from a run's files


def _renamed(run: Path, task: str) -> Path:
    """The run's summary.json with its long-form task renamed to `task`; returns the summary's path."""
    path = run / "summary.json"
    summary = read_json(path)
    summary["tasks"] = {task: summary["tasks"]["t_longform"], "other": summary["tasks"]["other"]}
    write_json(path, summary)
    return path


@pytest.mark.parametrize("task", ["../../x", "..", "a/b", "/tmp/x", "a b"])
def test_judge_run_refuses_a_task_name_that_is_not_a_name(tmp_path, task):
    """A crafted summary naming task '../../x' made judge_run write <run>/../../x/judge_*.jsonl."""
    run = _run_dir(tmp_path / "results" / "m" / "e")
    summary = _renamed(run, task)
    (run / task.strip("/")).mkdir(parents=True, exist_ok=True)  # where the task's cases would be
    before = _files(tmp_path)
    with pytest.raises(UserError) as caught:
        judge_run(run, FakeJudge())
    assert str(caught.value) == (
        f"{summary}: task {task!r} is not a valid name; use letters, digits, '_', '.' and "
        "'-' (no spaces); repair or remove this run"
    )
    assert _files(tmp_path) == before


def test_judge_command_refuses_a_task_name_before_the_judge_loads(tmp_path, capsys, monkeypatch):
    run = _run_dir(tmp_path / "results" / "m" / "e")
    summary = _renamed(run, "../../x")
    before = _files(tmp_path)

    def load(*args, **kwargs):
        raise AssertionError("the judge model was loaded before the bad input was refused")

    monkeypatch.setattr(models, "load", load)
    line = _one_line_error(capsys, ["judge", str(run), "--judge", "hf:gemma3-270m"])
    assert line.startswith(f"flextape-bench: error: {summary}: task '../../x' is not a valid name")
    assert _files(tmp_path) == before
