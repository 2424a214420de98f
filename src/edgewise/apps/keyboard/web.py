"""`edgewise keyboard --web`: the keyboard as a page served on 127.0.0.1.

The page (static/) sends the text on every keystroke and shows three suggestion chips; the server keeps one
TypingSession per page, so learning works the same as in the terminal. It binds to loopback only: a keyboard
has no reason to listen on a network.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from edgewise.apps.keyboard.engine import KeyboardEngine
from edgewise.apps.keyboard.session import TypingSession, apply_suggestion

STATIC = Path(__file__).parent / "static"
MAX_TEXT = 20_000  # characters: a composer, not a document editor
MAX_SESSIONS = 16


# Request bodies live at module level: FastAPI resolves annotations by name, and these are strings here.
class SuggestIn(BaseModel):
    text: str = Field("", max_length=MAX_TEXT)  # the text before the caret
    session: str = Field("default", min_length=1, max_length=64)


class AcceptIn(SuggestIn):
    word: str = Field(..., min_length=1, max_length=64)


def create_app(engine: KeyboardEngine, k: int = 3, learn: bool = True, model_label: str | None = None):
    app = FastAPI(title="Edgewise keyboard", docs_url=None, redoc_url=None, openapi_url=None)
    sessions: OrderedDict[str, TypingSession] = OrderedDict()
    lock = threading.Lock()

    def session_for(sid: str) -> TypingSession:
        with lock:
            s = sessions.get(sid)
            if s is None:
                s = sessions[sid] = TypingSession(engine, k=k, learn=learn)
                while len(sessions) > MAX_SESSIONS:
                    sessions.popitem(last=False)
            sessions.move_to_end(sid)
            return s

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.post("/api/suggest")
    def suggest(body: SuggestIn):
        s = session_for(body.session)
        with s.lock:
            learned = s.set_text(body.text)
            r = s.suggest()
        return {"suggestions": r.words, "prefix": r.prefix, "latency_ms": round(r.latency_ms, 2),
                "cpu_ms": round(r.cpu_ms, 2), "learned": learned}

    @app.post("/api/accept")
    def accept(body: AcceptIn):
        s = session_for(body.session)
        with s.lock:
            s.set_text(body.text)
            text = apply_suggestion(body.text, body.word)
            learned = s.set_text(text)
            r = s.suggest()
        return {"text": text, "suggestions": r.words, "prefix": r.prefix, "latency_ms": round(r.latency_ms, 2),
                "cpu_ms": round(r.cpu_ms, 2), "learned": learned}

    @app.get("/api/info")
    def info():
        store = engine.personal
        return {"model": model_label or engine.model.name, "backend": engine.model.backend,
                "precision": engine.model.precision, "model_bytes": engine.size_bytes(), "suggestions": k,
                "learning": bool(learn and store is not None),
                "personal_words": store.total_words if store is not None else 0}

    @app.post("/api/forget")
    def forget():
        if engine.personal is None:
            raise HTTPException(status_code=409, detail="this keyboard runs without a personal store")
        engine.personal.forget()
        return {"personal_words": 0}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def serve(engine: KeyboardEngine, port: int = 8765, k: int = 3, learn: bool = True,
          model_label: str | None = None) -> None:
    uvicorn.run(create_app(engine, k, learn, model_label), host="127.0.0.1", port=port, log_level="warning")
