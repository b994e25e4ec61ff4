"""flextape-bench: what knowledge editing does to a language model beyond the edit itself (Seesaw-CF)."""

from flextape_bench import logs

__version__ = "0.1.0"

logs.install()
