"""PII detection, reversible redaction, and the on-device tagger's training.

    pii.py        detect / redact / restore over every registered detector
    base.py       the detector registry (Entity, register_detector), below every detector
    patterns.py   validated patterns: e-mail, phone, card, IBAN, IP, SSN, NINO
    tagger.py     the int8 ONNX token classifier for person names and street addresses (package data)
    evaluate.py   span-level precision and recall on labelled text
    train.py      `edgewise privacy train`: the tagger's recipe, trained on synth.py's synthetic text

The router (edgewise.route) sits above this package and imports it; nothing here imports the router. Import the
modules directly; this package imports nothing on its own.
"""
