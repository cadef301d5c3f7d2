"""The promises about money, kept on this machine's disk: never pay twice (the result cache, the recent
results, the claims on an input), never lose a paid run (the journal), know what was spent (the
ledger) and how long runs take (durations). None of these knows that a fleet exists; `fleet/` mirrors
them on a shared store.
"""
