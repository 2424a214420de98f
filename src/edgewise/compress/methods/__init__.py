"""The built-in quantization methods, one module each: a config dataclass and the handler registered for it.

Nothing is imported here: `edgewise.plugins` imports the modules it lists (BUILTINS["compression method"]) on the
first method lookup, and a plugin's module registers the same way (docs/quantization-methods.md, docs/plugins.md).
"""
