"""flextape-bench: what knowledge editing does to a language model beyond the edit itself (Seesaw-CF)."""

__version__ = "0.1.0"
