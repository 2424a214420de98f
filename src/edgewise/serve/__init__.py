"""`edgewise serve`: a local OpenAI-compatible server, optionally fronting a cloud model via the router."""

from __future__ import annotations

import sys

import uvicorn

from edgewise.errors import EdgewiseError
from edgewise.route import CloudClient, CloudConfig, Router
from edgewise.runtime import load_model
from edgewise.runtime.api import text_model
from edgewise.serve.app import create_app
from edgewise.serve.config import ServeConfig
from edgewise.serve.errors import configure_logging
from edgewise.serve.state import ServerState


def build_state(cfg: ServeConfig) -> ServerState:
    main = text_model(load_model(cfg.model, backend=cfg.backend, precision=cfg.precision, threads=cfg.threads), "any")
    encoder = main if main.encoder is not None else None
    generator = main if main.decoder is not None else None
    if cfg.embed_model:
        encoder = load_model(cfg.embed_model, backend="ort", threads=cfg.threads)
        if encoder.encoder is None:
            raise EdgewiseError(f"--embed-model {cfg.embed_model} is not an encoder: use e.g. minilm-l6")
    router = None
    if cfg.cloud_url:
        client = CloudClient(CloudConfig(url=cfg.cloud_url, model=cfg.cloud_model, key_env=cfg.cloud_key_env))
        router = Router.from_policy_file(cfg.policy, cloud_fn=client, cloud_stream_fn=client.stream_fn)
        for w in router.warnings():
            print(f"warning: {w}", file=sys.stderr)
    elif cfg.policy:
        raise EdgewiseError("--policy needs a cloud to route to: add --cloud URL --cloud-model NAME")
    return ServerState(generator=generator, encoder=encoder, default_max_tokens=cfg.default_max_tokens,
                       api_key=cfg.api_key, router=router, max_queue=cfg.max_queue,
                       queue_timeout_s=cfg.queue_timeout_s, request_log=cfg.request_log, parallel=cfg.parallel,
                       max_sessions=cfg.sessions, draft=cfg.draft, threads=cfg.threads)


def serve(cfg: ServeConfig, ready_message: bool = True) -> None:
    configure_logging(cfg.log)  # 5xx tracebacks: stderr, or --log FILE
    state = build_state(cfg)
    if not cfg.is_loopback:
        print(f"warning: binding to {cfg.host} exposes the model beyond this machine"
              + ("" if cfg.api_key else "; consider --api-key-env"), file=sys.stderr)
    app = create_app(state)
    config = uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    if ready_message:
        names = ", ".join(lm.name for lm in (state.generator, state.encoder) if lm is not None)
        print(f"edgewise serving {names} on http://{cfg.host}:{cfg.port}/v1"
              + (f" (router → {cfg.cloud_model} at {cfg.cloud_url})" if state.router else ""), file=sys.stderr,
              flush=True)
    server.run()


__all__ = ["ServeConfig", "ServerState", "create_app", "build_state", "serve"]
