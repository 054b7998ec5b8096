"""How rows get through a model: `local` (one process, worker threads; `score_file` and
`translate_file` for apps) and `ray` (Ray Data over many files; the `ray` extra, imported lazily).
Both read and write through runtime.io, so both give the same records for the same input.
"""
