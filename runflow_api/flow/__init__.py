"""One image's way through the stages: prepared (pixels, cache key), looked up, claimed, bought (journal
first), waited for, stored; a batch of them in flight at once, with the shared state they use
(`shared_state`), the spend checks, the runs' metadata and staging. The path is in
docs/ARCHITECTURE.md.
"""
