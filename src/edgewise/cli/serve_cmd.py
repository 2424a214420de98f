"""`edgewise serve`: the local OpenAI-compatible server."""

from __future__ import annotations

from typing import Optional

import typer

from edgewise.cli.app import app
from edgewise.cli.run_cmd import PRECISION_HELP, _quiet_libraries

# edgewise.serve is imported inside the command: it loads fastapi, numpy and the runtime, and every command module
# loads when `edgewise` starts.


@app.command()
def serve(
    model: str = typer.Argument(..., help="Alias, path, bundle or hub id of the model to serve."),
    host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
    port: int = typer.Option(8000),
    backend: str = typer.Option("ort", help="ort | torch | llamacpp"),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    threads: Optional[int] = typer.Option(None),
    embed_model: Optional[str] = typer.Option(None, "--embed-model", help="Also serve /v1/embeddings with this encoder."),
    max_queue: int = typer.Option(8, "--max-queue", help="Running + waiting requests before 429."),
    parallel: int = typer.Option(2, "--parallel", help="Generations running at once, each on its own session."),
    sessions: int = typer.Option(4, "--sessions", help="KV-cache sessions kept for follow-up turns (an LRU)."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Default max_tokens when a request gives none."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="Env var holding a bearer key to require."),
    cloud: Optional[str] = typer.Option(None, "--cloud", help="OpenAI-compatible cloud endpoint URL."),
    cloud_model: Optional[str] = typer.Option(None, "--cloud-model"),
    cloud_key_env: Optional[str] = typer.Option(None, "--cloud-key-env", help="Env var holding the cloud's key."),
    policy: Optional[str] = typer.Option(None, "--policy", help="Router policy file (TOML)."),
    request_log: Optional[str] = typer.Option(None, "--request-log", help="Append every request body to this JSONL."),
    log: Optional[str] = typer.Option(None, "--log", help="Append the server log (5xx tracebacks) here, not stderr."),
    draft: Optional[str] = typer.Option(None, "--draft", help="Speculative decoding for every generation, built at "
                                                              "start: lookup or model:REF (docs/speculative.md)."),
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API, with optional hybrid edge-cloud routing."""
    from edgewise.serve import ServeConfig
    from edgewise.serve import serve as run_server

    _quiet_libraries()
    if cloud:
        # Fail closed before the model loads (seconds to minutes): a privacy mode whose PII tagger is missing or
        # broken stops the server here. The router, built later, finds the tagger already loaded.
        from edgewise.route.config import check_privacy, load_policy_file

        check_privacy(load_policy_file(policy) if policy else {})
    run_server(ServeConfig(model=model, backend=backend, precision=precision, threads=threads, host=host, port=port,
                           embed_model=embed_model, max_queue=max_queue, default_max_tokens=max_tokens,
                           api_key_env=api_key_env, cloud_url=cloud, cloud_model=cloud_model,
                           cloud_key_env=cloud_key_env, policy=policy,
                           request_log=request_log, log=log, parallel=parallel, sessions=sessions, draft=draft))
