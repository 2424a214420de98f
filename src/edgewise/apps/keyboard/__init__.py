"""An on-device keyboard: next-word prediction and word completion from a small local LM, personalised
on the device, with a terminal and a browser demo. Nothing typed ever leaves the machine."""

from edgewise.apps.keyboard.engine import KeyboardConfig, KeyboardEngine, Suggestions, default_model_ref, load_keyboard
from edgewise.apps.keyboard.personal import PersonalStore, default_store_path

__all__ = ["KeyboardConfig", "KeyboardEngine", "Suggestions", "PersonalStore", "load_keyboard",
           "default_model_ref", "default_store_path"]
