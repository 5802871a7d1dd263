"""Benchmark push-token verification under a flood of forged tokens, against valid tokens alone.

One local OIDC issuer on 127.0.0.1 (bp_ops.oidc_issuer) that counts the certificate fetches it
serves; one PushTokenVerifier with its certificate cache, as a push service holds it. Threads
(`--threads`, as the push app's thread pool) verify, interleaved:

  (a) valid     RS256 tokens of the push account: signature, expiry, audience, issuer, email
  (b) unknown   RS256 tokens signed by keys the issuer never published (unknown `kid`s)
  (c) garbage   `alg none`, HS256 and malformed tokens

It prints verifications per second, p50/p99 latency per kind, the refusal statuses, and the
certificate fetches the whole flood cost. Target: fetches <= 1 + duration / 30 s (the minimum
refetch interval), valid tokens never refused, no status but 401/403 for a bad token.

    .venv/bin/python benchmarks/push_tokens.py [--requests 3000] [--threads 16]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bp_common.runtime.oidc import PushAuthError, PushTokenVerifier
from bp_ops.oidc_issuer import LocalIssuer, SigningKey

AUDIENCE = "https://bp-export.example.run.app/push"
ACCOUNT = "bp-push@bp-local.iam.gserviceaccount.com"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    with LocalIssuer() as issuer:
        verifier = PushTokenVerifier(
            audience=AUDIENCE, service_account=ACCOUNT, certs_url=issuer.certs_url
        )
        valid = f"Bearer {issuer.token(audience=AUDIENCE, email=ACCOUNT)}"
        foreign = [
            f"Bearer {issuer.token(audience=AUDIENCE, email=ACCOUNT, signer=SigningKey().signer)}"
            for _ in range(8)
        ]
        claims = b64(
            json.dumps({"aud": AUDIENCE, "email": ACCOUNT, "exp": int(time.time()) + 600}).encode()
        )
        none = b64(json.dumps({"alg": "none"}).encode())
        hs256 = b64(json.dumps({"alg": "HS256", "kid": "k"}).encode())
        garbage = [
            f"Bearer {none}.{claims}.",
            f"Bearer {hs256}.{claims}.AAAA",
            "Bearer not.a.jwt",
            "Bearer ###",
        ]

        work = []
        for i in range(args.requests):
            kind = ("valid", "unknown", "garbage")[i % 3]
            if kind == "valid":
                header = valid
            elif kind == "unknown":
                header = foreign[i % len(foreign)]
            else:
                header = garbage[i % len(garbage)]
            work.append((kind, header))

        def verify(item: tuple[str, str]) -> tuple[str, int, float]:
            kind, header = item
            start = time.perf_counter()
            try:
                verifier.verify(header)
                status = 200
            except PushAuthError as exc:
                status = exc.status
            return kind, status, time.perf_counter() - start

        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            results = list(pool.map(verify, work))
        elapsed = time.perf_counter() - started

    statuses: Counter[tuple[str, int]] = Counter((k, s) for k, s, _ in results)
    print(
        f"{args.requests} verifications on {args.threads} threads in {elapsed:.2f} s"
        f" ({args.requests / elapsed:.0f}/s, a third of each kind)"
    )
    for kind in ("valid", "unknown", "garbage"):
        times = sorted(t for k, _, t in results if k == kind)
        p99 = times[int(len(times) * 0.99) - 1]
        seen = sorted((s, n) for (k, s), n in statuses.items() if k == kind)
        print(
            f"  {kind:8}"
            f"  p50 {statistics.median(times) * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms"
            f"  statuses {seen}"
        )
    bound = 1 + int(elapsed // 30)
    print(f"certificate fetches: {issuer.fetches} (bound {bound})")
    bad = [s for (k, s) in statuses if k != "valid" and s not in (401, 403)]
    ok = issuer.fetches <= bound and statuses[("valid", 200)] == len(work[::3]) and not bad
    print("target met" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
