"""The authorization-code + PKCE flow as a load: flows per second (plain OAuth, or OpenID
Connect's with ``scope=openid`` and a nonce).

wrk cannot chain requests, so this is an asyncio load generator with httpx: N workers, each
looping GET /oauth2/authorize with a signed-in session cookie (a confidential client the user
already consented to, so the answer is a redirect with a code, no page), then POST
/oauth2/token with the code and its PKCE verifier. A flow counts when both answers are what a
real client expects. Latency is per whole flow.

Run as ``python -m bench.flows SPEC.json`` (a separate process, so its CPU is its own and can
be reported: a load generator on the same two cores may be what limits the figure).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from bench.measure import Load, summary

RESULT_PREFIX = "BENCH_RESULT "
READY = "BENCH_READY"


@dataclass(frozen=True)
class FlowSpec:
    base_url: str
    warmup: float
    duration: float
    workers: int
    client_id: str
    client_secret: str
    redirect_uri: str
    cookie_name: str
    cookies: list[str]
    scope: str = "read write"
    # OpenID Connect: ask for an ID token (scope openid) with a nonce, and check that the ID
    # token carries it back (its signature is not verified: that is the client's CPU).
    nonce: bool = False

    def dump(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path


class _Stats:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.latencies: list[float] = []
        self.unexpected = 0
        self.transport_errors = 0
        self.first_problem: str | None = None

    def counts(self, now: float) -> bool:
        return self.start <= now < self.end

    def problem(self, text: str) -> None:
        self.unexpected += 1
        self.first_problem = self.first_problem or text[:300]


async def _flow(client: httpx.AsyncClient, spec: FlowSpec, cookie: str) -> str | None:
    """One flow; None when it went as a client expects, else what went wrong."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    state = secrets.token_urlsafe(12)
    params = {
        "response_type": "code",
        "client_id": spec.client_id,
        "redirect_uri": spec.redirect_uri,
        "scope": spec.scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    nonce = secrets.token_urlsafe(12) if spec.nonce else None
    if nonce is not None:
        params["nonce"] = nonce
    answer = await client.get(
        "/oauth2/authorize", params=params, headers={"Cookie": f"{spec.cookie_name}={cookie}"}
    )
    location = answer.headers.get("location", "")
    if answer.status_code != 302 or not location.startswith(spec.redirect_uri + "?"):
        return f"authorize answered {answer.status_code} {location or answer.text[:200]}"
    query = parse_qs(urlsplit(location).query)
    if query.get("state") != [state] or "code" not in query:
        return f"authorize redirected without the code or state: {location}"
    answer = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": spec.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(spec.client_id, spec.client_secret),
    )
    if answer.status_code != 200 or "access_token" not in answer.json():
        return f"token answered {answer.status_code} {answer.text[:200]}"
    if nonce is not None and _id_token_nonce(answer.json().get("id_token")) != nonce:
        return f"token answered without an ID token carrying the nonce: {answer.text[:200]}"
    return None


def _id_token_nonce(id_token: object) -> object:
    """The ``nonce`` claim of a JWS's payload, unverified; None if there is none."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    return claims.get("nonce") if isinstance(claims, dict) else None


async def _worker(client: httpx.AsyncClient, spec: FlowSpec, cookie: str, stats: _Stats) -> None:
    while time.monotonic() < stats.end:
        began = time.monotonic()
        try:
            problem = await _flow(client, spec, cookie)
        except httpx.TransportError:
            problem = "transport"
        now = time.monotonic()
        if not stats.counts(now):
            continue  # warm-up, or finished after the window closed
        if problem == "transport":
            stats.transport_errors += 1
        elif problem is not None:
            stats.problem(problem)
        else:
            stats.latencies.append((now - began) * 1000)


async def run(spec: FlowSpec) -> dict[str, object]:
    start = time.monotonic() + spec.warmup
    stats = _Stats(start, start + spec.duration)
    limits = httpx.Limits(max_connections=spec.workers, max_keepalive_connections=spec.workers)
    async with httpx.AsyncClient(base_url=spec.base_url, limits=limits, timeout=10) as client:
        workers = [
            _worker(client, spec, spec.cookies[i % len(spec.cookies)], stats)
            for i in range(spec.workers)
        ]
        cpu = asyncio.get_running_loop().create_task(_cpu_in_window(stats))
        await asyncio.gather(*workers)
        cpu_seconds = await cpu
    latencies = [round(ms, 3) for ms in stats.latencies]
    return {
        "completed": len(latencies),
        "seconds": spec.duration,
        "unexpected": stats.unexpected,
        "transport_errors": stats.transport_errors,
        "first_problem": stats.first_problem,
        "latencies_ms": latencies,
        "client_cpu_share": cpu_seconds / spec.duration,
    }


async def _cpu_in_window(stats: _Stats) -> float:
    await asyncio.sleep(max(0.0, stats.start - time.monotonic()))
    began = time.process_time()
    await asyncio.sleep(max(0.0, stats.end - time.monotonic()))
    return time.process_time() - began


def main() -> None:
    spec = FlowSpec(**json.loads(Path(sys.argv[1]).read_text()))
    # Imported and ready: the caller starts its CPU accounting, then says go, so the
    # interpreter's start-up is not counted as the server's idle time.
    print(READY, flush=True)
    sys.stdin.readline()
    result = asyncio.run(run(spec))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


async def measure_flows(
    spec: FlowSpec, spec_file: Path, log: Path, on_go: Callable[[], object] = lambda: None
) -> Load:
    """Run the generator in its own process (``on_go`` is called as its load starts); its
    result line becomes a Load."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.flows",
        str(spec.dump(spec_file)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None  # both pipes were asked for above
    assert proc.stdout is not None
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        if ready.decode().strip() != READY:
            raise RuntimeError(f"the flow load generator did not start: {ready!r}")
        on_go()
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        stdout, stderr = await asyncio.wait_for(
            proc.communicate(), timeout=spec.warmup + spec.duration + 60
        )
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    out, err = stdout.decode(errors="replace"), stderr.decode(errors="replace")
    await asyncio.to_thread(log.write_text, f"{out}\n--- stderr\n{err}")
    lines = [line for line in out.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the flow load generator failed; see {log}")
    data = json.loads(lines[-1][len(RESULT_PREFIX) :])
    points = tuple((float(ms), 1.0) for ms in data["latencies_ms"])
    return Load(
        completed=int(data["completed"]),
        seconds=float(data["seconds"]),
        ok=int(data["completed"]),
        unexpected=int(data["unexpected"]),
        socket_errors={"transport": int(data["transport_errors"])},
        latency_ms=summary(points),
        points=points,
        extra={
            "client_cpu_share": data["client_cpu_share"],
            "first_problem": data["first_problem"],
        },
    )


if __name__ == "__main__":
    main()
