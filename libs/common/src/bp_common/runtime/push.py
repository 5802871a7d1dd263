"""The FastAPI app of a service: Pub/Sub push endpoint, /healthz and /readyz.

The app bounds its own concurrency, as Cloud Run's request concurrency does: it admits the
deliverer's admission count of pushes at once (working, or waiting for their unit's holder),
each on a thread of its own; a push that finds no room within its wait budget is handed back
(a fresh copy on its topic, then 204), so a burst never uses up delivery attempts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Header, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from bp_common.bus import Message
from bp_common.runtime.delivery import Deliverer, Outcome
from bp_common.runtime.oidc import PushAuthError, PushTokenVerifier
from bp_common.runtime.sinks import DeadLetterSink, Redelivery

# Threads beyond the admitted deliveries: token checks, dead letters, hand-backs, probes.
_SPARE_THREADS = 16

log = logging.getLogger("bp.push")


class PushedMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    data: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)
    message_id: str = Field(alias="messageId")
    publish_time: datetime | None = Field(default=None, alias="publishTime")


class PushRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    message: PushedMessage
    subscription: str
    delivery_attempt: int | None = Field(default=None, alias="deliveryAttempt")


def create_app(
    deliverer: Deliverer,
    dead_letters: DeadLetterSink,
    redelivery: Redelivery,
    *,
    verifier: PushTokenVerifier | None,
    ready: Callable[[], list[str]] = lambda: [],
) -> FastAPI:
    """`verifier=None` only in `local`: everywhere else every push must carry a valid token."""
    stage = deliverer.stage.name
    admission = asyncio.Semaphore(deliverer.limits.admission)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each admitted delivery may sleep on its thread while it waits for its unit's holder.
        limiter = anyio.to_thread.current_default_thread_limiter()
        wanted = deliverer.limits.admission + _SPARE_THREADS
        limiter.total_tokens = max(limiter.total_tokens, wanted)
        yield

    app = FastAPI(title=f"bp-{stage}", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "stage": stage}

    @app.get("/readyz")
    def readyz(response: Response) -> dict[str, Any]:
        problems = ready()
        if problems:
            response.status_code = 503
        return {"status": "not ready" if problems else "ready", "problems": problems}

    @app.post("/push", status_code=204)
    async def push(body: PushRequest, authorization: str | None = Header(default=None)) -> Response:
        if verifier is not None:
            try:
                await run_in_threadpool(verifier.verify, authorization)
            except PushAuthError as exc:
                log.warning("push refused: %s", exc.reason, extra={"stage": stage})
                return Response(status_code=exc.status)
        try:
            data = base64.b64decode(body.message.data, validate=True)
        except binascii.Error:
            data = b"\x00invalid base64"  # the contract check dead-letters it with a clear error
        message = Message(
            id=body.message.message_id,
            topic=deliverer.stage.route.consumes,
            data=data,
            attributes=body.message.attributes,
            delivery_attempt=body.delivery_attempt or 1,
            publish_time=body.message.publish_time,
        )
        try:
            await asyncio.wait_for(admission.acquire(), deliverer.limits.wait_budget_s)
        except TimeoutError:
            log.info("no room for the push: handing it back", extra={"stage": stage})
            return await _settle(Outcome.DEFER, message)
        try:
            verdict = await run_in_threadpool(deliverer.deliver, message)
        finally:
            admission.release()
        if verdict.outcome is Outcome.DEAD_LETTER and verdict.error is not None:
            try:
                await run_in_threadpool(dead_letters.send, message, verdict.error)
            except Exception:
                log.exception(
                    "could not dead-letter; Pub/Sub will redeliver", extra={"stage": stage}
                )
                return Response(status_code=503)
        return await _settle(verdict.outcome, message)

    async def _settle(outcome: Outcome, message: Message) -> Response:
        if outcome is Outcome.DEFER:
            try:
                await run_in_threadpool(redelivery.send, message)
            except Exception:
                log.exception("could not hand the push back; Pub/Sub will redeliver")
                return Response(status_code=503)
        if outcome is Outcome.RETRY:
            return Response(status_code=503)
        return Response(status_code=204)

    return app
