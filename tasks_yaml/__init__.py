"""The packaged task and group specs (YAML package data), a package so that
`importlib.resources.files("flextape_bench.tasks_yaml")` is a folder in every install."""
